//! The tfplugin5 gRPC service, implemented once for any `Provider`: decodes wire values,
//! dispatches to resources, runs the plan engine, enforces timeouts and Stop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clara_tfplugin::pb::tfplugin5 as pb;
use clara_tfplugin::{Type, Value};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::diag::{AttrPath, Diagnostics};
use crate::function::{Function, FunctionError};
use crate::plan::{plan, validate_config};
use crate::resource::{
    ApplyRequest, DataSource, PlanLedger, PlanRequest, Provider, Resource, TimeoutDefaults,
};
use crate::schema::{Attribute, Block, NestedBlock, Schema};
use crate::validators;
use crate::wire;

type Res<C> = Arc<dyn Resource<C>>;
type Ds<C> = Arc<dyn DataSource<C>>;

struct ResourceEntry<C> {
    resource: Res<C>,
    schema: Schema,
    ty: Type,
}

struct DataSourceEntry<C> {
    data_source: Ds<C>,
    schema: Schema,
    ty: Type,
}

pub struct ProviderServer<P: Provider> {
    provider: P,
    provider_schema: Schema,
    resources: HashMap<&'static str, ResourceEntry<P::Client>>,
    data_sources: HashMap<&'static str, DataSourceEntry<P::Client>>,
    functions: HashMap<&'static str, Arc<dyn Function>>,
    client: RwLock<Option<Arc<P::Client>>>,
    /// Cancelled by the Stop RPC; a fresh token replaces it so a long-lived (debug) process
    /// can serve later walks.
    stop: RwLock<CancellationToken>,
    /// Objects planned so far by this process, for resources that reference them.
    ledger: PlanLedger,
}

impl<P: Provider> ProviderServer<P> {
    pub fn new(provider: P) -> Self {
        let provider_schema = provider.schema();
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| {
                let mut schema = r.schema();
                if let Some(t) = r.timeouts() {
                    schema.block.blocks.push(timeouts_block(t));
                }
                let ty = schema.block.object_type();
                (
                    r.type_name(),
                    ResourceEntry {
                        resource: r,
                        schema,
                        ty,
                    },
                )
            })
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| {
                let schema = d.schema();
                let ty = schema.block.object_type();
                (
                    d.type_name(),
                    DataSourceEntry {
                        data_source: d,
                        schema,
                        ty,
                    },
                )
            })
            .collect();
        let functions = provider
            .functions()
            .into_iter()
            .map(|f| (f.name(), f))
            .collect();
        ProviderServer {
            provider,
            provider_schema,
            resources,
            data_sources,
            functions,
            client: RwLock::new(None),
            stop: RwLock::new(CancellationToken::new()),
            ledger: PlanLedger::default(),
        }
    }

    fn resource(&self, type_name: &str) -> Result<&ResourceEntry<P::Client>, Status> {
        self.resources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {type_name}")))
    }

    fn data_source(&self, type_name: &str) -> Result<&DataSourceEntry<P::Client>, Status> {
        self.data_sources
            .get(type_name)
            .ok_or_else(|| Status::not_found(format!("unknown data source {type_name}")))
    }

    fn client(&self, diags: &mut Diagnostics) -> Option<Arc<P::Client>> {
        let c = self.client.read().expect("client lock").clone();
        if c.is_none() {
            diags.error(
                "Provider not configured",
                "The clara provider was not configured before this operation; check the provider block for errors above.",
            );
        }
        c
    }

    /// The identity to answer with for `state`: the resource's own reading of it, or
    /// `known` (what Terraform sent) when that names the same object (ARM ids ignore case)
    /// or the state says nothing. `None` for types without identity and null states.
    fn identity_for(
        &self,
        entry: &ResourceEntry<P::Client>,
        state: &Value,
        known: &Value,
    ) -> Option<pb::ResourceIdentityData> {
        let id = entry.resource.identity()?;
        if state.is_null() {
            return None;
        }
        let ty = id.identity_schema().object_type();
        let fresh = id.identity_of(state).filter(Value::is_wholly_known);
        let chosen = match fresh {
            Some(f) if !known.is_null() && same_identity(&f, known) => known.clone(),
            Some(f) => f,
            None if known.is_wholly_known() => known.clone(),
            None => Value::Null,
        };
        wire::identity(Some(chosen), &ty)
    }

    fn identity_type(&self, entry: &ResourceEntry<P::Client>) -> Type {
        entry
            .resource
            .identity()
            .map(|i| i.identity_schema().object_type())
            .unwrap_or_else(|| Type::object(Vec::<(String, Type)>::new()))
    }

    /// Runs one provider operation under its timeout and the Stop signal. Dropping the
    /// future on either is what cancels in-flight HTTP calls and waits.
    async fn guarded<T>(
        &self,
        what: &str,
        limit: Duration,
        diags: &mut Diagnostics,
        fut: impl Future<Output = T>,
    ) -> Option<T> {
        let stop = self.stop.read().expect("stop lock").clone();
        tokio::select! {
            out = fut => Some(out),
            _ = stop.cancelled() => {
                diags.error(format!("{what} interrupted"), "Terraform asked the provider to stop; the operation was abandoned. Re-run apply to converge.");
                None
            }
            _ = tokio::time::sleep(limit) => {
                diags.error(format!("{what} timed out"), format!("The operation did not finish within {}. Raise it in the resource's timeouts block, or re-run apply: the provider resumes by adopting what already exists.", humanize(limit)));
                None
            }
        }
    }
}

impl<P: Provider> ProviderServer<P> {
    fn function_definitions(&self) -> HashMap<String, pb::Function> {
        self.functions
            .iter()
            .map(|(n, f)| (n.to_string(), wire::function(f.as_ref())))
            .collect()
    }
}

/// Decodes each argument with its parameter's type, calls, and encodes the result with the
/// declared return type (a result that does not fit it is the function's bug, reported).
fn call(f: &dyn Function, args: &[pb::DynamicValue]) -> Result<pb::DynamicValue, FunctionError> {
    let params = f.parameters();
    if args.len() != params.len() {
        return Err(FunctionError::call(format!(
            "{} takes {} argument(s), got {}",
            f.name(),
            params.len(),
            args.len()
        )));
    }
    let mut values = Vec::with_capacity(args.len());
    for (i, (p, dv)) in params.iter().zip(args).enumerate() {
        let mut diags = Diagnostics::new();
        let v = wire::decode(Some(dv), &p.ty, &mut diags);
        if diags.has_errors() {
            return Err(FunctionError::argument(
                i,
                format!("{} could not be decoded as {:?}", p.name, p.ty),
            ));
        }
        if v.is_null() && !p.allow_null {
            return Err(FunctionError::argument(
                i,
                format!("{} must not be null", p.name),
            ));
        }
        values.push(v);
    }
    let result = f.call(&values)?;
    let ty = f.return_type();
    match result.try_to_msgpack(&ty) {
        Ok(msgpack) => Ok(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => Err(FunctionError::call(format!(
            "{} produced a value that does not match its return type: {e}",
            f.name()
        ))),
    }
}

/// Two identities name the same object: equal attribute by attribute, ignoring ASCII case.
fn same_identity(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().all(
                    |(k, v)| match (v.as_str(), b.get(k).and_then(Value::as_str)) {
                        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
                        _ => b.get(k).is_some_and(|w| w == v),
                    },
                )
        }
        _ => a == b,
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

fn timeouts_block(t: TimeoutDefaults) -> NestedBlock {
    let attr = |name: &str, d: Duration| {
        Attribute::string(name)
            .optional()
            .validate(validators::Duration)
            .describe(format!(
                "How long to wait for {name} (default {}), e.g. \"30m\" or \"1h\".",
                humanize(d)
            ))
    };
    NestedBlock::single(
        "timeouts",
        Block::new("Per-operation time limits, as Go durations.")
            .attribute(attr("create", t.create))
            .attribute(attr("read", t.read))
            .attribute(attr("update", t.update))
            .attribute(attr("delete", t.delete)),
    )
}

fn timeout_for(state: &Value, op: &str, default: Duration) -> Duration {
    state
        .get("timeouts")
        .get(op)
        .as_str()
        .and_then(|s| validators::parse_duration(s).ok())
        .unwrap_or(default)
}

/// Framework-owned parts of a new state: write-only values never stored, empty collections
/// where a `null_is_empty` attribute reads back null, and the
/// `timeouts` block carried over as configured.
fn finish_state(block: &Block, mut state: Value, carry_from: &Value) -> Value {
    if let Some(obj) = state.as_object_mut() {
        for a in block.attributes.iter().filter(|a| a.write_only) {
            obj.insert(a.name.clone(), Value::Null);
        }
        for a in block.attributes.iter().filter(|a| a.is_null_empty()) {
            if obj.get(&a.name).is_none_or(Value::is_null) {
                obj.insert(a.name.clone(), a.default.clone().unwrap_or_default());
            }
        }
        if block.find_block("timeouts").is_some() {
            obj.insert("timeouts".into(), carry_from.get("timeouts").clone());
        }
    }
    state
}

fn diag_response(diags: Diagnostics) -> Vec<pb::Diagnostic> {
    wire::diagnostics(diags)
}

/// Decodes a configuration and runs the schema's validators, then the type's own checks.
fn validate_with(
    block: &Block,
    ty: &Type,
    config: Option<&pb::DynamicValue>,
    custom: impl FnOnce(&Value, &mut Diagnostics),
) -> Vec<pb::Diagnostic> {
    let mut diags = Diagnostics::new();
    let config = wire::decode(config, ty, &mut diags);
    if !diags.has_errors() {
        validate_config(block, &config, &AttrPath::default(), &mut diags);
        custom(&config, &mut diags);
    }
    diag_response(diags)
}

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderServer<P> {
    async fn get_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(wire::schema(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, e)| (n.to_string(), wire::schema(&e.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, e)| (n.to_string(), wire::schema(&e.schema)))
                .collect(),
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
                generate_resource_config: false,
            }),
            functions: self.function_definitions(),
            ..Default::default()
        }))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.function_definitions(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = req.into_inner();
        let outcome = match self.functions.get(req.name.as_str()) {
            None => Err(FunctionError::call(format!(
                "this provider has no function named {:?}",
                req.name
            ))),
            Some(f) => call(f.as_ref(), &req.arguments),
        };
        Ok(Response::new(match outcome {
            Ok(result) => pb::call_function::Response {
                result: Some(result),
                error: None,
            },
            Err(e) => pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text: e.message,
                    function_argument: e.argument.map(|i| i as i64),
                }),
            },
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        let identity_schemas = self
            .resources
            .iter()
            .filter_map(|(n, e)| {
                let schema = e.resource.identity()?.identity_schema();
                Some((n.to_string(), wire::identity_schema(&schema)))
            })
            .collect();
        Ok(Response::new(pb::get_resource_identity_schemas::Response {
            identity_schemas,
            diagnostics: Vec::new(),
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        req: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let mut upgraded = None;
        match entry.resource.identity() {
            None => diags.error(
                "Resource identity not supported",
                format!("{} declares no resource identity.", req.type_name),
            ),
            Some(id) => {
                let schema = id.identity_schema();
                let ty = schema.object_type();
                let raw = req.raw_identity.map(|r| r.json).unwrap_or_default();
                match serde_json::from_slice::<serde_json::Value>(&raw) {
                    Err(e) => diags.error(
                        "Unreadable identity",
                        format!(
                            "The stored identity of this {} is not valid JSON: {e}",
                            req.type_name
                        ),
                    ),
                    Ok(json) => {
                        let json = if req.version < schema.version {
                            id.upgrade_identity(req.version, json, &mut diags)
                        } else {
                            json
                        };
                        match Value::from_json(&json, &ty) {
                            Ok(v) => {
                                upgraded = Some(pb::ResourceIdentityData {
                                    identity_data: Some(wire::encode(&v, &ty)),
                                })
                            }
                            Err(e) => {
                                diags.error("Identity does not match its schema", e.to_string())
                            }
                        }
                    }
                }
            }
        }
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: upgraded,
            diagnostics: diag_response(diags),
        }))
    }

    async fn prepare_provider_config(
        &self,
        req: Request<pb::prepare_provider_config::Request>,
    ) -> Result<Response<pb::prepare_provider_config::Response>, Status> {
        let req = req.into_inner();
        let block = &self.provider_schema.block;
        let diagnostics =
            validate_with(block, &block.object_type(), req.config.as_ref(), |c, d| {
                self.provider.validate(c, d)
            });
        Ok(Response::new(pb::prepare_provider_config::Response {
            prepared_config: req.config,
            diagnostics,
        }))
    }

    async fn configure(
        &self,
        req: Request<pb::configure::Request>,
    ) -> Result<Response<pb::configure::Response>, Status> {
        let req = req.into_inner();
        let mut diags = Diagnostics::new();
        let config = wire::decode(
            req.config.as_ref(),
            &self.provider_schema.block.object_type(),
            &mut diags,
        );
        if !diags.has_errors()
            && let Some(client) = self
                .provider
                .configure(&config, &req.terraform_version, &mut diags)
                .await
        {
            *self.client.write().expect("client lock") = Some(Arc::new(client));
        }
        *self.stop.write().expect("stop lock") = CancellationToken::new();
        Ok(Response::new(pb::configure::Response {
            diagnostics: diag_response(diags),
        }))
    }

    async fn validate_resource_type_config(
        &self,
        req: Request<pb::validate_resource_type_config::Request>,
    ) -> Result<Response<pb::validate_resource_type_config::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let diagnostics = validate_with(
            &entry.schema.block,
            &entry.ty,
            req.config.as_ref(),
            |c, d| entry.resource.validate(c, d),
        );
        Ok(Response::new(pb::validate_resource_type_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_source_config(
        &self,
        req: Request<pb::validate_data_source_config::Request>,
    ) -> Result<Response<pb::validate_data_source_config::Response>, Status> {
        let req = req.into_inner();
        let entry = self.data_source(&req.type_name)?;
        let diagnostics = validate_with(
            &entry.schema.block,
            &entry.ty,
            req.config.as_ref(),
            |c, d| entry.data_source.validate(c, d),
        );
        Ok(Response::new(pb::validate_data_source_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let raw = req.raw_state.map(|r| r.json).unwrap_or_default();
        let mut upgraded = None;
        match serde_json::from_slice::<serde_json::Value>(&raw) {
            Err(e) => diags.error(
                "Unreadable state",
                format!(
                    "The stored state of this {} is not valid JSON: {e}",
                    req.type_name
                ),
            ),
            Ok(json) => {
                let json = if req.version < entry.schema.version {
                    entry.resource.upgrade_state(req.version, json, &mut diags)
                } else {
                    json
                };
                match Value::from_json(&json, &entry.ty) {
                    Ok(v) => upgraded = Some(wire::encode(&v, &entry.ty)),
                    Err(e) => diags.error("State does not match schema", e.to_string()),
                }
            }
        }
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diag_response(diags),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let current = wire::decode(req.current_state.as_ref(), &entry.ty, &mut diags);
        let current_identity = wire::decode_identity(
            req.current_identity.as_ref(),
            &self.identity_type(entry),
            &mut diags,
        );
        let mut new_state = current.clone();
        if !diags.has_errors()
            && !current.is_null()
            && let Some(client) = self.client(&mut diags)
        {
            let limit = timeout_for(
                &current,
                "read",
                entry
                    .resource
                    .timeouts()
                    .map(|t| t.read)
                    .unwrap_or(Duration::from_secs(300)),
            );
            let mut op_diags = Diagnostics::new();
            let read = self
                .guarded(
                    "Read",
                    limit,
                    &mut diags,
                    entry.resource.read(&client, &current, &mut op_diags),
                )
                .await;
            diags.extend(op_diags);
            if let Some(state) = read {
                new_state = if state.is_null() {
                    Value::Null
                } else {
                    finish_state(&entry.schema.block, state, &current)
                };
            }
        }
        let new_identity = self.identity_for(entry, &new_state, &current_identity);
        Ok(Response::new(pb::read_resource::Response {
            new_state: Some(wire::encode(&new_state, &entry.ty)),
            diagnostics: diag_response(diags),
            private: req.private,
            new_identity,
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let prior = wire::decode(req.prior_state.as_ref(), &entry.ty, &mut diags);
        let proposed = wire::decode(req.proposed_new_state.as_ref(), &entry.ty, &mut diags);
        let config = wire::decode(req.config.as_ref(), &entry.ty, &mut diags);
        let prior_identity = wire::decode_identity(
            req.prior_identity.as_ref(),
            &self.identity_type(entry),
            &mut diags,
        );
        if diags.has_errors() {
            return Ok(Response::new(pb::plan_resource_change::Response {
                diagnostics: diag_response(diags),
                ..Default::default()
            }));
        }
        let mut change = plan(&entry.schema.block, &prior, &proposed, &config);
        if !change.planned.is_null() {
            validate_config(
                &entry.schema.block,
                &config,
                &AttrPath::default(),
                &mut diags,
            );
            entry.resource.validate(&config, &mut diags);
            if !diags.has_errors()
                && let Some(client) = self.client(&mut diags)
            {
                let plan_req = PlanRequest {
                    prior: &prior,
                    config: &config,
                    planned: &mut change.planned,
                    requires_replace: &mut change.requires_replace,
                    ledger: &self.ledger,
                };
                let mut op_diags = Diagnostics::new();
                self.guarded(
                    "Plan",
                    Duration::from_secs(300),
                    &mut diags,
                    entry.resource.modify_plan(&client, plan_req, &mut op_diags),
                )
                .await;
                diags.extend(op_diags);
            }
        }
        change.requires_replace.dedup();
        if !diags.has_errors() {
            self.ledger.record(&req.type_name, &change.planned);
        }
        // An update keeps the object, so its identity; a create or replacement plans one
        // only when every part is known now (otherwise apply reports it).
        let keeps = !prior.is_null() && change.requires_replace.is_empty();
        let planned_identity = self.identity_for(
            entry,
            &change.planned,
            if keeps { &prior_identity } else { &Value::Null },
        );
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state: Some(wire::encode(&change.planned, &entry.ty)),
            requires_replace: change
                .requires_replace
                .iter()
                .map(wire::attribute_path)
                .collect(),
            planned_private: req.prior_private,
            diagnostics: diag_response(diags),
            planned_identity,
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let prior = wire::decode(req.prior_state.as_ref(), &entry.ty, &mut diags);
        let planned = wire::decode(req.planned_state.as_ref(), &entry.ty, &mut diags);
        let config = wire::decode(req.config.as_ref(), &entry.ty, &mut diags);
        let planned_identity = wire::decode_identity(
            req.planned_identity.as_ref(),
            &self.identity_type(entry),
            &mut diags,
        );
        let mut new_state = prior.clone();
        let defaults = entry
            .resource
            .timeouts()
            .unwrap_or(TimeoutDefaults::minutes(30, 5, 30, 30));
        if !diags.has_errors()
            && let Some(client) = self.client(&mut diags)
        {
            let apply = ApplyRequest {
                prior: prior.clone(),
                planned: planned.clone(),
                config,
                private: req.planned_private.clone(),
            };
            let mut op_diags = Diagnostics::new();
            let r = &entry.resource;
            if planned.is_null() {
                let limit = timeout_for(&prior, "delete", defaults.delete);
                if self
                    .guarded(
                        "Delete",
                        limit,
                        &mut diags,
                        r.delete(&client, &prior, &mut op_diags),
                    )
                    .await
                    .is_some()
                    && !op_diags.has_errors()
                {
                    new_state = Value::Null;
                }
            } else if prior.is_null() {
                let limit = timeout_for(&planned, "create", defaults.create);
                if let Some(state) = self
                    .guarded(
                        "Create",
                        limit,
                        &mut diags,
                        r.create(&client, &apply, &mut op_diags),
                    )
                    .await
                {
                    new_state = if state.is_null() {
                        Value::Null
                    } else {
                        finish_state(&entry.schema.block, state, &planned)
                    };
                }
            } else {
                let limit = timeout_for(&planned, "update", defaults.update);
                if let Some(state) = self
                    .guarded(
                        "Update",
                        limit,
                        &mut diags,
                        r.update(&client, &apply, &mut op_diags),
                    )
                    .await
                {
                    new_state = finish_state(&entry.schema.block, state, &planned);
                }
            }
            diags.extend(op_diags);
        }
        let new_identity = self.identity_for(entry, &new_state, &planned_identity);
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: Some(wire::encode(&new_state, &entry.ty)),
            private: req.planned_private,
            diagnostics: diag_response(diags),
            new_identity,
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let mut imported = Vec::new();
        let identity = wire::decode_identity(
            req.identity.as_ref(),
            &self.identity_type(entry),
            &mut diags,
        );
        // `import { identity = {…} }` sends an empty id and the identity.
        let id = match entry.resource.identity() {
            Some(i) if req.id.is_empty() && !identity.is_null() => {
                i.import_id(&identity).unwrap_or_else(|e| {
                    diags.error("Invalid import identity", e);
                    String::new()
                })
            }
            None if req.id.is_empty() && !identity.is_null() => {
                diags.error(
                    "Import by identity not supported",
                    format!(
                        "{} declares no resource identity; import it by id.",
                        req.type_name
                    ),
                );
                String::new()
            }
            _ => req.id.clone(),
        };
        if !diags.has_errors()
            && let Some(client) = self.client(&mut diags)
        {
            let mut op_diags = Diagnostics::new();
            let state = self
                .guarded(
                    "Import",
                    Duration::from_secs(300),
                    &mut diags,
                    entry.resource.import(&client, &id, &mut op_diags),
                )
                .await;
            let failed = op_diags.has_errors();
            diags.extend(op_diags);
            if let Some(state) = state.filter(|s| !s.is_null() && !failed) {
                imported.push(pb::import_resource_state::ImportedResource {
                    type_name: req.type_name.clone(),
                    state: Some(wire::encode(&state, &entry.ty)),
                    identity: self.identity_for(entry, &state, &identity),
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: diag_response(diags),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let entry = self.data_source(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let config = wire::decode(req.config.as_ref(), &entry.ty, &mut diags);
        let mut state = Value::Null;
        if !diags.has_errors()
            && let Some(client) = self.client(&mut diags)
        {
            let mut op_diags = Diagnostics::new();
            let read = entry.data_source.read(&client, &config, &mut op_diags);
            if let Some(v) = self
                .guarded("Read", Duration::from_secs(300), &mut diags, read)
                .await
            {
                state = v;
            }
            diags.extend(op_diags);
        }
        Ok(Response::new(pb::read_data_source::Response {
            state: Some(wire::encode(&state, &entry.ty)),
            diagnostics: diag_response(diags),
            ..Default::default()
        }))
    }

    async fn stop(
        &self,
        _req: Request<pb::stop::Request>,
    ) -> Result<Response<pb::stop::Response>, Status> {
        tracing::info!("Terraform asked the provider to stop: cancelling in-flight operations");
        self.stop.read().expect("stop lock").cancel();
        Ok(Response::new(pb::stop::Response {
            error: String::new(),
        }))
    }
}

#[cfg(test)]
mod function_tests {
    use super::*;
    use crate::function::Parameter;
    use pb::provider_server::Provider as _;

    struct Join;
    impl Function for Join {
        fn name(&self) -> &'static str {
            "join2"
        }
        fn parameters(&self) -> Vec<Parameter> {
            vec![
                Parameter::string("left", "left part"),
                Parameter::string("right", "right part").nullable(),
            ]
        }
        fn return_type(&self) -> Type {
            Type::String
        }
        fn summary(&self) -> &'static str {
            "joins"
        }
        fn description(&self) -> String {
            "Joins two strings.".into()
        }
        fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
            let left = args[0].as_str().unwrap_or_default();
            match args[1].as_str() {
                Some("bad") => Err(FunctionError::argument(1, "right may not be \"bad\"")),
                // A bug: a list where a string was declared.
                Some("list") => Ok(Value::List(vec![s("x")])),
                Some(r) => Ok(Value::String(format!("{left}{r}"))),
                None => Ok(Value::String(left.into())),
            }
        }
    }

    struct P;
    #[async_trait::async_trait]
    impl Provider for P {
        type Client = ();
        fn schema(&self) -> Schema {
            Schema::new(0, Block::new("test"))
        }
        async fn configure(&self, _: &Value, _: &str, _: &mut Diagnostics) -> Option<()> {
            Some(())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
            Vec::new()
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<()>>> {
            Vec::new()
        }
        fn functions(&self) -> Vec<Arc<dyn Function>> {
            vec![Arc::new(Join)]
        }
    }

    async fn call(name: &str, args: &[Value]) -> pb::call_function::Response {
        let server = ProviderServer::new(P);
        let arguments = args
            .iter()
            .map(|v| wire::encode(v, &Type::String))
            .collect();
        server
            .call_function(Request::new(pb::call_function::Request {
                name: name.into(),
                arguments,
            }))
            .await
            .unwrap()
            .into_inner()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[tokio::test]
    async fn schema_declares_functions_and_calls_round_trip_the_wire() {
        let server = ProviderServer::new(P);
        let schema = server
            .get_schema(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        let f = &schema.functions["join2"];
        assert_eq!(f.parameters.len(), 2);
        assert_eq!(f.parameters[0].r#type, b"\"string\"");
        assert!(!f.parameters[0].allow_null_value && f.parameters[1].allow_null_value);
        assert!(!f.parameters[1].allow_unknown_values);
        assert_eq!(f.r#return.as_ref().unwrap().r#type, b"\"string\"");
        assert_eq!(f.summary, "joins");

        let ok = call("join2", &[s("a"), s("b")]).await;
        assert!(ok.error.is_none());
        let v = Value::from_msgpack(&ok.result.unwrap().msgpack, &Type::String).unwrap();
        assert_eq!(v, s("ab"));
        let null_ok = call("join2", &[s("a"), Value::Null]).await;
        assert!(null_ok.error.is_none(), "nullable parameter accepts null");

        let e = call("join2", &[s("a"), s("bad")]).await.error.unwrap();
        assert_eq!(
            (e.function_argument, e.text.as_str()),
            (Some(1), "right may not be \"bad\"")
        );
        let e = call("join2", &[Value::Null, s("b")]).await.error.unwrap();
        assert_eq!(e.function_argument, Some(0), "{}", e.text);
        let e = call("join2", &[s("a")]).await.error.unwrap();
        assert_eq!(e.function_argument, None);
        assert!(e.text.contains("takes 2 argument(s), got 1"), "{}", e.text);
        let e = call("nope", &[]).await.error.unwrap();
        assert!(e.text.contains("no function named \"nope\""), "{}", e.text);
        let e = call("join2", &[s("a"), s("list")]).await.error.unwrap();
        assert!(
            e.text.contains("does not match its return type"),
            "{}",
            e.text
        );
    }
}
