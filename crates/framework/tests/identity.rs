//! The framework's resource identity, RPC by RPC, over a fake provider whose identity is at
//! version 1 (version 0 stored `id`, version 1 stores `name`): GetResourceIdentitySchemas,
//! UpgradeResourceIdentity (0 → 1 rewritten, 1 as is), ImportResourceState by identity
//! (valid, and a bad part refused naming the attribute) and ReadResource keeping the
//! identity Terraform sent when it names the same object in another case.

use std::sync::Arc;

use clara_framework::{
    ApplyRequest, Attribute, Block, DataSource, Diagnostics, IdentitySchema, Provider,
    ProviderServer, Resource, ResourceIdentity, Schema, Type, Value, async_trait,
};
use clara_tfplugin::pb::tfplugin5 as pb;
use clara_tfplugin::pb::tfplugin5::provider_server::Provider as _;
use tonic::Request;

struct Thing;

fn thing_schema() -> Schema {
    Schema::new(
        0,
        Block::new("thing").attribute(Attribute::string("id").computed()),
    )
}

#[async_trait]
impl Resource<()> for Thing {
    fn type_name(&self) -> &'static str {
        "fake_thing"
    }
    fn schema(&self) -> Schema {
        thing_schema()
    }
    fn identity(&self) -> Option<&dyn ResourceIdentity> {
        Some(self)
    }
    async fn create(&self, _: &(), r: &ApplyRequest, _: &mut Diagnostics) -> Value {
        r.planned.clone()
    }
    async fn read(&self, _: &(), s: &Value, _: &mut Diagnostics) -> Value {
        s.clone()
    }
    async fn update(&self, _: &(), r: &ApplyRequest, _: &mut Diagnostics) -> Value {
        r.planned.clone()
    }
    async fn delete(&self, _: &(), _: &Value, _: &mut Diagnostics) {}
    async fn import(&self, _: &(), id: &str, _: &mut Diagnostics) -> Value {
        Value::Object([("id".to_string(), Value::string(id))].into())
    }
}

impl ResourceIdentity for Thing {
    fn identity_schema(&self) -> IdentitySchema {
        IdentitySchema::new(1).required("name", "The thing's name.")
    }
    fn identity_of(&self, state: &Value) -> Option<Value> {
        let id = state.get("id").as_str()?.to_string();
        Some(self.identity_schema().value([("name", id)]))
    }
    fn import_id(&self, identity: &Value) -> Result<String, String> {
        match identity.get("name").as_str() {
            Some(n) if n.chars().all(|c| c.is_ascii_alphanumeric()) => Ok(n.to_string()),
            _ => Err("identity attribute \"name\" must be letters and digits".into()),
        }
    }
    fn upgrade_identity(
        &self,
        from: i64,
        mut identity: serde_json::Value,
        _: &mut Diagnostics,
    ) -> serde_json::Value {
        if from == 0
            && let Some(obj) = identity.as_object_mut()
            && let Some(id) = obj.remove("id")
        {
            obj.insert("name".into(), id);
        }
        identity
    }
}

struct Fake;

#[async_trait]
impl Provider for Fake {
    type Client = ();
    fn schema(&self) -> Schema {
        Schema::new(0, Block::new("fake"))
    }
    async fn configure(&self, _: &Value, _: &str, _: &mut Diagnostics) -> Option<()> {
        Some(())
    }
    fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
        vec![Arc::new(Thing)]
    }
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<()>>> {
        Vec::new()
    }
}

fn id_type() -> Type {
    Type::object([("name", Type::String)])
}

fn identity(name: &str) -> pb::ResourceIdentityData {
    let v = Value::Object([("name".to_string(), Value::string(name))].into());
    pb::ResourceIdentityData {
        identity_data: Some(pb::DynamicValue {
            msgpack: v.to_msgpack(&id_type()),
            json: Vec::new(),
        }),
    }
}

fn name_of(d: Option<pb::ResourceIdentityData>) -> String {
    let dv = d
        .expect("an identity")
        .identity_data
        .expect("identity data");
    let v = Value::from_msgpack(&dv.msgpack, &id_type()).unwrap();
    v.get("name").as_str().unwrap().to_string()
}

async fn server() -> ProviderServer<Fake> {
    let s = ProviderServer::new(Fake);
    let empty = Value::Object(Default::default());
    s.configure(Request::new(pb::configure::Request {
        config: Some(pb::DynamicValue {
            msgpack: empty.to_msgpack(&Type::object(Vec::<(String, Type)>::new())),
            json: Vec::new(),
        }),
        ..Default::default()
    }))
    .await
    .unwrap();
    s
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn identity_schemas_are_served() {
    rt().block_on(async {
        let s = server().await;
        let r = s
            .get_resource_identity_schemas(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        let schema = &r.identity_schemas["fake_thing"];
        assert_eq!(schema.version, 1);
        assert_eq!(schema.identity_attributes.len(), 1);
        let a = &schema.identity_attributes[0];
        assert_eq!(a.name, "name");
        assert!(a.required_for_import && !a.optional_for_import);
        assert_eq!(a.r#type, b"\"string\"");
    });
}

#[test]
fn upgrade_resource_identity_rewrites_older_versions_and_keeps_the_current_one() {
    rt().block_on(async {
        let s = server().await;
        let up = |version: i64, json: &str| {
            let req = pb::upgrade_resource_identity::Request {
                type_name: "fake_thing".into(),
                version,
                raw_identity: Some(pb::RawState {
                    json: json.as_bytes().to_vec(),
                    ..Default::default()
                }),
            };
            let s = &s;
            async move {
                s.upgrade_resource_identity(Request::new(req))
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        let r = up(0, r#"{"id":"old"}"#).await;
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        assert_eq!(name_of(r.upgraded_identity), "old");
        let r = up(1, r#"{"name":"same"}"#).await;
        assert_eq!(name_of(r.upgraded_identity), "same");
        let r = up(1, "not json").await;
        assert!(r.upgraded_identity.is_none());
        assert_eq!(r.diagnostics[0].summary, "Unreadable identity");
    });
}

#[test]
fn import_by_identity_and_read_keep_the_identity() {
    rt().block_on(async {
        let s = server().await;
        let import = |name: &str| pb::import_resource_state::Request {
            type_name: "fake_thing".into(),
            id: String::new(),
            identity: Some(identity(name)),
            ..Default::default()
        };
        let r = s
            .import_resource_state(Request::new(import("abc1")))
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        assert_eq!(r.imported_resources.len(), 1);
        let got = &r.imported_resources[0];
        let state = Value::from_msgpack(
            &got.state.as_ref().unwrap().msgpack,
            &thing_schema().block.object_type(),
        )
        .unwrap();
        assert_eq!(state.get("id").as_str(), Some("abc1"));
        assert_eq!(name_of(got.identity.clone()), "abc1");

        let r = s
            .import_resource_state(Request::new(import("../x")))
            .await
            .unwrap()
            .into_inner();
        assert!(r.imported_resources.is_empty());
        assert_eq!(r.diagnostics[0].summary, "Invalid import identity");
        assert!(r.diagnostics[0].detail.contains("\"name\""));

        // Refresh: the state says "abc1", Terraform holds "ABC1": the same object, kept.
        let r = s
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "fake_thing".into(),
                current_state: got.state.clone(),
                current_identity: Some(identity("ABC1")),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(name_of(r.new_identity), "ABC1");
        // Without one (state written by Terraform < 1.12), read supplies it.
        let r = s
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "fake_thing".into(),
                current_state: got.state.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(name_of(r.new_identity), "abc1");
    });
}
