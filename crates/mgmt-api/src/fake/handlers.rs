//! What each route answers, with the status codes and body shapes of the real server.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::fake::cluster::{Shared, schedule};
use crate::fake::state::{FakeRole, NodeKey, Refusal};
use crate::model::features::{Feature, FeatureSetBody};
use crate::model::keyspace::KeyspaceReplicationRequest;
use crate::model::probe::ConsistencyLevel;
use crate::model::roles::{IdentityRequest, IdentityToRole};
use crate::model::tables::{CompactRequest, CreateTableRequest, KeyspaceRequest, ScrubRequest};
use crate::route::Route;

/// Keyspaces whose cleanup the v1 endpoint answers with 200 and no job.
const NO_CLEANUP_KEYSPACES: &[&str] = &["system", "system_schema"];

/// A request after routing.
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

impl ParsedRequest {
    /// A query parameter; empty values count as absent.
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn flag(&self, name: &str) -> Result<bool, Reply> {
        match self.param(name) {
            None => Ok(false),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
            Some(value) => Err(Reply::text(
                400,
                format!("{name} must be true or false, not {value}"),
            )),
        }
    }

    /// The JSON body; an empty body is the type's default.
    fn json<T: DeserializeOwned + Default>(&self) -> Result<T, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.body).map_err(|error| error.to_string())
    }

    fn required_json<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|error| error.to_string())
    }
}

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'static str>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Some("text/plain"),
            body: body.into(),
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: String::new(),
        }
    }

    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: value.to_string(),
        }
    }

    fn ok() -> Self {
        Self::text(200, "OK")
    }

    fn job(id: &str) -> Self {
        Self::text(202, id)
    }

    fn refused(refusal: Refusal) -> Self {
        Self::text(refusal.status, refusal.message)
    }

    fn cassandra_unreachable() -> Self {
        Self::text(
            500,
            "Cassandra is not running: the Management API cannot reach it",
        )
    }
}

/// The feature without which a route does not exist on a server.
fn required_feature(route: Route) -> Option<Feature> {
    match route {
        Route::DecommissionV1 | Route::CleanupV1 => Some(Feature::AsyncSstableTasks),
        Route::RebuildV1 => Some(Feature::Rebuild),
        Route::FlushV1 => Some(Feature::AsyncFlushTask),
        Route::CompactV1 => Some(Feature::AsyncCompactionTask),
        Route::ScrubV1 => Some(Feature::AsyncScrubTask),
        Route::UpgradeSstablesV1 => Some(Feature::AsyncUpgradeSstableTask),
        Route::GarbageCollectV1 => Some(Feature::AsyncGcTask),
        _ => None,
    }
}

/// Routes that work while Cassandra is down: probes, lifecycle, and what the agent keeps itself.
fn needs_cassandra(route: Route) -> bool {
    !matches!(
        route,
        Route::Liveness
            | Route::Readiness
            | Route::LifecycleStart
            | Route::LifecycleStop
            | Route::Features
            | Route::JobStatus
    )
}

/// Answers one request of node `key`; `stall` holds the long-running part until released.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    key: NodeKey,
    route: Route,
    request: &ParsedRequest,
    stall: bool,
) -> Reply {
    {
        let state = shared.lock();
        if let Some(feature) = required_feature(route) {
            let known = state
                .features(key)
                .is_some_and(|set| set.supports(&feature));
            if !known {
                return Reply::empty(404);
            }
        }
        if needs_cassandra(route) && !state.reachable(key) {
            return Reply::cassandra_unreachable();
        }
    }
    let stall_route = stall.then_some(route);
    match route {
        Route::Liveness => Reply::ok(),
        Route::Readiness => {
            if shared.lock().is_ready(key) {
                Reply::ok()
            } else {
                Reply::empty(500)
            }
        }
        Route::LifecycleStart => start(shared, key, request, stall),
        Route::LifecycleStop => {
            shared.lock().stop(key);
            Reply::ok()
        }
        Route::Endpoints => Reply::json(200, &shared.lock().endpoints_json(key)),
        Route::Features => features(shared, key),
        Route::ClusterProbe => cluster_probe(shared, key, request),
        Route::SeedsReload => Reply::json(200, &json!(shared.lock().seeds(key))),
        Route::SchemaVersions => Reply::json(200, &json!(shared.lock().schema_versions())),
        Route::Drain => {
            let delay = shared.lock().config.timings.drain;
            tokio::time::sleep(delay).await;
            shared.lock().drain(key);
            Reply::ok()
        }
        Route::DecommissionV0 | Route::DecommissionV1 => {
            decommission(shared, key, route, request, stall_route).await
        }
        Route::RebuildV1 => rebuild(shared, key, request, stall_route),
        Route::Move => move_node(shared, key, request, stall_route).await,
        Route::TruststoreReload => {
            let supported = shared
                .lock()
                .features(key)
                .is_some_and(|set| set.supports(&Feature::ReloadInternodeTruststore));
            if supported {
                Reply::ok()
            } else {
                Reply::text(
                    400,
                    "Reloading the truststore is not supported by this server",
                )
            }
        }
        Route::FullQueryLoggingGet => {
            let enabled = shared.lock().full_query_logging(key);
            Reply::json(200, &json!({ "entity": enabled }))
        }
        Route::FullQueryLoggingSet => match request.flag("enabled") {
            Ok(enabled) => {
                shared.lock().set_full_query_logging(key, enabled);
                Reply::ok()
            }
            Err(reply) => reply,
        },
        Route::RoleCreate => create_role(shared, request),
        Route::RoleList => Reply::json(200, &shared.lock().roles_json()),
        Route::RoleDelete => match request.param("username") {
            None => Reply::text(400, "Username is empty"),
            Some(name) => {
                shared.lock().drop_role(name);
                Reply::ok()
            }
        },
        Route::IdentityToRoleCreate => match request.required_json::<IdentityToRole>() {
            Err(error) => Reply::text(400, format!("Invalid identity-to-role request: {error}")),
            Ok(mapping) => match shared.lock().map_identity(&mapping.identity, &mapping.role) {
                Ok(()) => Reply::ok(),
                Err(refusal) => Reply::refused(refusal),
            },
        },
        Route::IdentityToRoleDelete => match request.required_json::<IdentityRequest>() {
            Err(error) => Reply::text(400, format!("Invalid identity request: {error}")),
            Ok(identity) => {
                shared.lock().unmap_identity(&identity.identity);
                Reply::ok()
            }
        },
        Route::KeyspaceList => {
            let names = shared.lock().keyspace_names();
            let names: Vec<String> = match request.param("keyspaceName") {
                Some(wanted) => names.into_iter().filter(|name| name == wanted).collect(),
                None => names,
            };
            Reply::json(200, &json!(names))
        }
        Route::KeyspaceCreate | Route::KeyspaceAlter => {
            keyspace_replication_change(shared, route, request)
        }
        Route::KeyspaceReplication => match request.param("keyspaceName") {
            None => Reply::text(
                400,
                "Get keyspace replication failed. Non-empty 'keyspaceName' must be provided",
            ),
            Some(name) => match shared.lock().replication_json(name) {
                Some(value) => Reply::json(200, &value),
                None => Reply::text(
                    404,
                    format!("Get keyspace replication failed. Keyspace '{name}' does not exist."),
                ),
            },
        },
        Route::TableList => match request.param("keyspaceName") {
            None => Reply::text(
                400,
                "List tables failed. Non-empty 'keyspaceName' must be provided",
            ),
            Some(keyspace) => Reply::json(200, &json!(shared.lock().tables(keyspace))),
        },
        Route::TableCreate => create_table(shared, request),
        Route::JobStatus => match request.param("job_id") {
            None => Reply::text(400, "job_id must be provided"),
            Some(id) => match shared.lock().job_json(key, id) {
                Some(job) => Reply::json(200, &job),
                None => Reply::empty(404),
            },
        },
        Route::CleanupV0
        | Route::CleanupV1
        | Route::FlushV0
        | Route::FlushV1
        | Route::CompactV0
        | Route::CompactV1
        | Route::ScrubV0
        | Route::ScrubV1
        | Route::UpgradeSstablesV0
        | Route::UpgradeSstablesV1
        | Route::GarbageCollectV0
        | Route::GarbageCollectV1 => {
            table_operation(shared, key, route, request, stall_route).await
        }
    }
}

fn start(shared: &Arc<Shared>, key: NodeKey, request: &ParsedRequest, stall: bool) -> Reply {
    let replace_ip = match request.param("replace_ip") {
        None => None,
        Some(raw) => match raw.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => return Reply::text(400, format!("Invalid replace IP passed: {raw}")),
        },
    };
    let outcome = shared.lock().start(key, replace_ip, stall);
    match outcome {
        Err(refusal) => Reply::refused(refusal),
        Ok((status, work)) => {
            if let Some(work) = work {
                drop(schedule(shared, work));
            }
            if status == 201 {
                Reply::text(201, "OK")
            } else {
                Reply::empty(status)
            }
        }
    }
}

fn features(shared: &Arc<Shared>, key: NodeKey) -> Reply {
    let state = shared.lock();
    let Some(set) = state.features(key) else {
        return Reply::empty(404);
    };
    let mut body = FeatureSetBody::from(&set);
    body.cassandra_version = Some(state.config.release_version.clone());
    body.mgmt_version = Some(state.config.mgmt_version.clone());
    match serde_json::to_value(&body) {
        Ok(value) => Reply::json(200, &value),
        Err(error) => Reply::text(500, error.to_string()),
    }
}

fn cluster_probe(shared: &Arc<Shared>, key: NodeKey, request: &ParsedRequest) -> Reply {
    let level = request
        .param("consistency_level")
        .and_then(ConsistencyLevel::parse);
    let rf = request
        .param("rf_per_dc")
        .and_then(|raw| raw.parse::<u32>().ok())
        .filter(|rf| *rf > 0);
    let (Some(level), Some(rf)) = (level, rf) else {
        return Reply::text(
            400,
            "consistency_level and a positive rf_per_dc must be provided",
        );
    };
    let problems = shared.lock().probe(key, level, rf);
    if problems.is_empty() {
        Reply::empty(200)
    } else {
        Reply::json(500, &json!(problems))
    }
}

async fn decommission(
    shared: &Arc<Shared>,
    key: NodeKey,
    route: Route,
    request: &ParsedRequest,
    stall: Option<Route>,
) -> Reply {
    let force = match request.flag("force") {
        Ok(force) => force,
        Err(reply) => return reply,
    };
    if route == Route::DecommissionV0 {
        let begun = shared.lock().begin_decommission(key, force, None, stall);
        return match begun {
            Err(message) => Reply::text(500, message),
            Ok(work) => finished(schedule(shared, work).await),
        };
    }
    let (id, work) = {
        let mut state = shared.lock();
        let id = state.new_job(key, "decommission");
        match state.begin_decommission(key, force, Some(id.clone()), stall) {
            Ok(work) => (id, Some(work)),
            Err(message) => {
                // The job is accepted and fails, as the executor reports Cassandra's refusal.
                state.finish_job(key, &id, Some(message));
                (id, None)
            }
        }
    };
    if let Some(work) = work {
        drop(schedule(shared, work));
    }
    Reply::job(&id)
}

/// The answer of a blocking call once its work is done.
fn finished(outcome: Result<Result<(), String>, tokio::sync::oneshot::error::RecvError>) -> Reply {
    match outcome {
        Ok(Ok(())) => Reply::ok(),
        Ok(Err(message)) => Reply::text(500, message),
        Err(_) => Reply::text(500, "interrupted"),
    }
}

fn rebuild(
    shared: &Arc<Shared>,
    key: NodeKey,
    request: &ParsedRequest,
    stall: Option<Route>,
) -> Reply {
    let work = {
        let mut state = shared.lock();
        let error = request
            .param("src_dc")
            .filter(|dc| !state.datacenter_exists(dc))
            .map(|dc| format!("Unknown source datacenter: {dc}"));
        let id = state.new_job(key, "rebuild");
        (id.clone(), state.job_work(key, Some(id), error, stall))
    };
    drop(schedule(shared, work.1));
    Reply::job(&work.0)
}

async fn move_node(
    shared: &Arc<Shared>,
    key: NodeKey,
    request: &ParsedRequest,
    stall: Option<Route>,
) -> Reply {
    let Some(raw) = request.param("newToken") else {
        return Reply::text(400, "newToken must be specified");
    };
    let Ok(token) = raw.parse::<i64>() else {
        return Reply::text(400, format!("Invalid token: {raw}"));
    };
    let (job, work) = {
        let mut state = shared.lock();
        let as_job = state
            .features(key)
            .is_some_and(|set| set.supports(&Feature::AsyncMoveTask));
        let job = as_job.then(|| state.new_job(key, "move"));
        let work = state.move_work(key, job.clone(), token, stall);
        (job, work)
    };
    let outcome = schedule(shared, work);
    match job {
        Some(id) => Reply::job(&id),
        None => finished(outcome.await),
    }
}

fn create_role(shared: &Arc<Shared>, request: &ParsedRequest) -> Reply {
    let (Some(name), Some(password)) = (request.param("username"), request.param("password"))
    else {
        return Reply::text(400, "Username and/or password is empty");
    };
    let (superuser, login) = match (request.flag("is_superuser"), request.flag("can_login")) {
        (Ok(superuser), Ok(login)) => (superuser, login),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    shared.lock().upsert_role(FakeRole {
        name: name.to_string(),
        password: password.to_string(),
        superuser,
        login,
    });
    Reply::ok()
}

fn keyspace_replication_change(
    shared: &Arc<Shared>,
    route: Route,
    request: &ParsedRequest,
) -> Reply {
    let prefix = if route == Route::KeyspaceCreate {
        "Keyspace creation failed."
    } else {
        "Altering Keyspace failed."
    };
    let parsed: KeyspaceReplicationRequest = match request.required_json() {
        Ok(parsed) => parsed,
        Err(error) => return Reply::text(400, format!("{prefix} {error}")),
    };
    if parsed.keyspace_name.is_empty() {
        return Reply::text(
            400,
            format!("{prefix} Non-empty 'keyspace_name' must be provided"),
        );
    }
    if parsed.replication_settings.is_empty() {
        return Reply::text(
            400,
            format!("{prefix} Non-empty 'replication_settings' must be provided"),
        );
    }
    let factors: BTreeMap<String, u32> = parsed
        .replication_settings
        .iter()
        .map(|setting| (setting.dc_name.clone(), setting.replication_factor))
        .collect();
    let mut state = shared.lock();
    let outcome = if route == Route::KeyspaceCreate {
        state.create_keyspace(&parsed.keyspace_name, factors)
    } else {
        state.alter_keyspace(&parsed.keyspace_name, factors)
    };
    match outcome {
        Ok(()) => Reply::ok(),
        Err(refusal) => Reply::refused(refusal),
    }
}

fn create_table(shared: &Arc<Shared>, request: &ParsedRequest) -> Reply {
    let parsed: CreateTableRequest = match request.required_json() {
        Ok(parsed) => parsed,
        Err(error) => return Reply::text(400, format!("Table creation failed: {error}")),
    };
    if parsed.table_name.is_empty() || parsed.columns.is_empty() {
        return Reply::text(
            400,
            "Table creation failed: a table name and columns are required",
        );
    }
    match shared
        .lock()
        .create_table(&parsed.keyspace_name, &parsed.table_name)
    {
        Ok(()) => Reply::ok(),
        Err(refusal) => Reply::refused(refusal),
    }
}

/// Job type and whether the route is the blocking one.
fn table_operation_kind(route: Route) -> (&'static str, bool) {
    match route {
        Route::CleanupV0 => ("cleanup", true),
        Route::CleanupV1 => ("cleanup", false),
        Route::FlushV0 => ("flush", true),
        Route::FlushV1 => ("flush", false),
        Route::CompactV0 => ("compaction", true),
        Route::CompactV1 => ("compaction", false),
        Route::ScrubV0 => ("scrub", true),
        Route::ScrubV1 => ("scrub", false),
        Route::UpgradeSstablesV0 => ("upgradesstables", true),
        Route::UpgradeSstablesV1 => ("upgradesstables", false),
        Route::GarbageCollectV0 => ("garbagecollect", true),
        _ => ("garbagecollect", false),
    }
}

/// The keyspace a table operation names, after validating its body and query.
fn table_operation_keyspace(
    route: Route,
    request: &ParsedRequest,
) -> Result<Option<String>, String> {
    let keyspace = match route {
        Route::CompactV0 | Route::CompactV1 => {
            let body: CompactRequest = request.json()?;
            if body.user_defined && body.user_defined_files.is_empty() {
                return Err(
                    "Invalid option combination: user_defined needs user_defined_files".into(),
                );
            }
            body.keyspace_name
        }
        Route::ScrubV0 | Route::ScrubV1 => request.json::<ScrubRequest>()?.keyspace_name,
        _ => request.json::<KeyspaceRequest>()?.keyspace_name,
    };
    if matches!(route, Route::GarbageCollectV0 | Route::GarbageCollectV1) {
        let option = request.param("tombstoneOption").unwrap_or("ROW");
        if option != "ROW" && option != "CELL" {
            return Err("tombstoneOption must be either ROW or CELL".into());
        }
    }
    Ok(keyspace.filter(|name| !name.is_empty() && name != "ALL"))
}

async fn table_operation(
    shared: &Arc<Shared>,
    key: NodeKey,
    route: Route,
    request: &ParsedRequest,
    stall: Option<Route>,
) -> Reply {
    let (job_type, blocking) = table_operation_kind(route);
    let keyspace = match table_operation_keyspace(route, request) {
        Ok(keyspace) => keyspace,
        Err(message) => return Reply::text(400, message),
    };
    if let Some(name) = &keyspace {
        if !shared.lock().has_keyspace(name) {
            return Reply::text(400, format!("keyspace {name} does not exists"));
        }
        if route == Route::CleanupV1 && NO_CLEANUP_KEYSPACES.contains(&name.as_str()) {
            return Reply::ok();
        }
    }
    let (job, work) = {
        let mut state = shared.lock();
        // As Cassandra: a node whose ranges are about to change refuses a cleanup (the job
        // fails, or the blocking call answers 500).
        let error = (job_type == "cleanup" && state.range_movement_in_progress()).then(|| {
            "Node is involved in cluster membership changes. Not safe to run cleanup.".to_owned()
        });
        // Blocking cleanup still goes through the executor and answers the job id.
        let job = (!blocking || route == Route::CleanupV0).then(|| state.new_job(key, job_type));
        let work = state.job_work(key, job.clone(), error, stall);
        (job, work)
    };
    let outcome = schedule(shared, work);
    match (blocking, job) {
        (false, Some(id)) => Reply::job(&id),
        (_, job) => match (finished(outcome.await), job) {
            (reply, Some(id)) if reply.status == 200 => Reply::text(200, id),
            (reply, _) => reply,
        },
    }
}
