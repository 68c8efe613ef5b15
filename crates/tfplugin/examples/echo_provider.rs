//! Smallest useful provider on this crate: one data source, `clara_echo`, whose
//! computed `output` echoes `input`. Handy to check the protocol layer against a real
//! Terraform (dev_overrides pointing at target/debug/examples, binary renamed to
//! `terraform-provider-clara`) and as a `--debug` reattach demo.

use clara_tfplugin::pb::tfplugin5::provider_server::Provider;
use clara_tfplugin::pb::tfplugin5::*;
use clara_tfplugin::{ServeConfig, Type, Value, serve_main};
use std::collections::HashMap;
use tonic::{Request, Response, Status};

fn echo_type() -> Type {
    Type::object([
        ("input", Type::String),
        ("output", Type::String),
        ("tags", Type::map(Type::String)),
        ("extra", Type::Dynamic),
    ])
}

fn attr(name: &str, ty: Type, required: bool, computed: bool) -> schema::Attribute {
    schema::Attribute {
        name: name.into(),
        r#type: ty.to_json_bytes(),
        required,
        optional: !required && !computed,
        computed,
        ..Default::default()
    }
}

fn error(summary: String) -> Diagnostic {
    Diagnostic {
        severity: diagnostic::Severity::Error as i32,
        summary,
        ..Default::default()
    }
}

struct Echo;

#[tonic::async_trait]
impl Provider for Echo {
    async fn get_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        let provider = Schema {
            version: 0,
            block: Some(schema::Block {
                attributes: vec![attr("label", Type::String, false, false)],
                ..Default::default()
            }),
        };
        let echo = Schema {
            version: 0,
            block: Some(schema::Block {
                attributes: vec![
                    attr("input", Type::String, true, false),
                    attr("output", Type::String, false, true),
                    attr("tags", Type::map(Type::String), false, false),
                    attr("extra", Type::Dynamic, false, false),
                ],
                ..Default::default()
            }),
        };
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(provider),
            data_source_schemas: HashMap::from([("clara_echo".to_string(), echo)]),
            server_capabilities: Some(ServerCapabilities {
                get_provider_schema_optional: true,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn prepare_provider_config(
        &self,
        req: Request<prepare_provider_config::Request>,
    ) -> Result<Response<prepare_provider_config::Response>, Status> {
        Ok(Response::new(prepare_provider_config::Response {
            prepared_config: req.into_inner().config,
            diagnostics: vec![],
        }))
    }

    async fn validate_data_source_config(
        &self,
        _: Request<validate_data_source_config::Request>,
    ) -> Result<Response<validate_data_source_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn configure(
        &self,
        _: Request<configure::Request>,
    ) -> Result<Response<configure::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn read_data_source(
        &self,
        req: Request<read_data_source::Request>,
    ) -> Result<Response<read_data_source::Response>, Status> {
        let req = req.into_inner();
        let bytes = req.config.map(|c| c.msgpack).unwrap_or_default();
        let mut state = match Value::from_msgpack(&bytes, &echo_type()) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Response::new(read_data_source::Response {
                    diagnostics: vec![error(format!("bad config: {e}"))],
                    ..Default::default()
                }));
            }
        };
        tracing::info!(config = %state.to_json(), "ReadDataSource clara_echo");
        let input = state.get("input").clone();
        if let Some(obj) = state.as_object_mut() {
            obj.insert("output".into(), input);
        }
        Ok(Response::new(read_data_source::Response {
            state: Some(DynamicValue {
                msgpack: state.to_msgpack(&echo_type()),
                json: vec![],
            }),
            ..Default::default()
        }))
    }

    async fn stop(&self, _: Request<stop::Request>) -> Result<Response<stop::Response>, Status> {
        Ok(Response::new(stop::Response {
            error: String::new(),
        }))
    }
}

fn main() -> std::process::ExitCode {
    serve_main(
        || Echo,
        ServeConfig {
            provider_address: "registry.terraform.io/clara-ml/clara".into(),
        },
    )
}
