//! The typed client: one [`ManagementApiClient`] per pod, built from shared [`ClientSettings`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, body_excerpt, status_label};
use crate::metrics::ManagementApiMetrics;
use crate::model::endpoints::{EndpointStates, EndpointsBody};
use crate::model::features::{Feature, FeatureSet, FeatureSetBody};
use crate::model::job::{Job, JobId};
use crate::model::keyspace::{KeyspaceReplication, KeyspaceReplicationRequest};
use crate::model::probe::{ClusterHealth, ConsistencyLevel};
use crate::model::roles::{IdentityRequest, IdentityToRole, NewRole, Role};
use crate::model::tables::{CreateTableRequest, TableOperation};
use crate::query;
use crate::route::Route;
use crate::tls::MutualTls;
use crate::transport::{RawResponse, Transport, exchange};

/// Port the Management API listens on in the Cassandra images.
pub const DEFAULT_PORT: u16 = 8080;

/// Transport, port, timeouts and metrics shared by the clients of every pod of a datacenter.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    transport: Transport,
    port: u16,
    timeouts: BTreeMap<Route, Duration>,
    metrics: Option<ManagementApiMetrics>,
    user_agent: String,
}

impl ClientSettings {
    /// Plain HTTP on the default port.
    pub fn insecure() -> Self {
        Self::with_transport(Transport::Plain)
    }

    /// HTTPS with client certificates on the default port.
    pub fn mutual_tls(tls: MutualTls) -> Self {
        Self::with_transport(Transport::MutualTls(tls))
    }

    /// The same settings (port, timeouts, metrics) over mutual TLS.
    pub fn with_mutual_tls(mut self, tls: MutualTls) -> Self {
        self.transport = Transport::MutualTls(tls);
        self
    }

    fn with_transport(transport: Transport) -> Self {
        Self {
            transport,
            port: DEFAULT_PORT,
            timeouts: BTreeMap::new(),
            metrics: None,
            user_agent: crate::USER_AGENT.to_owned(),
        }
    }

    /// Sends `agent` as the `User-Agent`, so that a server's log tells who called.
    pub fn with_user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Uses another port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Overrides the timeout of one route.
    pub fn with_timeout(mut self, route: Route, timeout: Duration) -> Self {
        self.timeouts.insert(route, timeout);
        self
    }

    /// Overrides the timeout of every route.
    pub fn with_timeout_for_all(mut self, timeout: Duration) -> Self {
        for route in Route::ALL {
            self.timeouts.insert(*route, timeout);
        }
        self
    }

    /// Records call durations in `metrics`.
    pub fn with_metrics(mut self, metrics: ManagementApiMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The timeout of `route`.
    pub fn timeout(&self, route: Route) -> Duration {
        self.timeouts
            .get(&route)
            .copied()
            .unwrap_or_else(|| route.default_timeout())
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.transport.scheme()
    }

    /// A client of the Management API of pod `pod` at `ip`.
    pub fn client(&self, pod: &str, ip: IpAddr) -> ManagementApiClient {
        let label = if pod.is_empty() {
            ip.to_string()
        } else {
            format!("{pod} ({ip})")
        };
        ManagementApiClient {
            inner: Arc::new(ClientInner {
                settings: self.clone(),
                address: SocketAddr::new(ip, self.port),
                pod: pod.to_string(),
                label,
            }),
        }
    }
}

/// Answer of `POST /api/v0/lifecycle/start`: which 2xx it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// 201: Cassandra was started.
    Started,
    /// 202: already running and reachable.
    AlreadyRunning,
    /// 204: already running but not reachable over CQL yet.
    RunningNotReachable,
    /// 206: no process found, but CQL answers.
    ProcessMissingButReachable,
    /// Another 2xx.
    Other(u16),
}

/// How an operation that may run as a job was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Accepted as a job: poll [`ManagementApiClient::job`].
    Job(JobId),
    /// Already done when the call returned (blocking v0 call, or nothing to do).
    Done,
}

/// A client of one pod's Management API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ManagementApiClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    settings: ClientSettings,
    address: SocketAddr,
    pod: String,
    /// `pod (ip)`, as errors name the pod.
    label: String,
}

/// One call's parameters.
struct Call<'a> {
    route: Route,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// Non-2xx statuses the caller handles itself.
    also_accept: &'static [u16],
    /// A value to scrub from error bodies.
    secret: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn new(route: Route) -> Self {
        Self {
            route,
            query: Vec::new(),
            body: None,
            also_accept: &[],
            secret: None,
        }
    }

    fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    fn accept(mut self, statuses: &'static [u16]) -> Self {
        self.also_accept = statuses;
        self
    }

    fn secret(mut self, secret: &'a str) -> Self {
        self.secret = Some(secret);
        self
    }
}

impl ManagementApiClient {
    /// Pod name given at construction.
    pub fn pod(&self) -> &str {
        &self.inner.pod
    }

    /// Pod IP.
    pub fn ip(&self) -> IpAddr {
        self.inner.address.ip()
    }

    /// Base URL, like `http://10.0.0.5:8080`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.inner.settings.scheme(), self.inner.address)
    }

    // ---- probes and lifecycle ----

    /// `GET /api/v0/probes/liveness`: Ok while the Management API answers 2xx.
    pub async fn liveness(&self) -> Result<(), Error> {
        self.send(Call::new(Route::Liveness)).await.map(drop)
    }

    /// `GET /api/v0/probes/readiness`: true on 200, false on 500 (Cassandra not serving yet).
    pub async fn readiness(&self) -> Result<bool, Error> {
        let response = self
            .send(Call::new(Route::Readiness).accept(&[500]))
            .await?;
        Ok(is_success(response.status))
    }

    /// `POST /api/v0/lifecycle/start`, optionally replacing the dead node that had `replace_ip`.
    pub async fn start(&self, replace_ip: Option<IpAddr>) -> Result<StartOutcome, Error> {
        let mut call = Call::new(Route::LifecycleStart);
        if let Some(ip) = replace_ip {
            call = call.query("replace_ip", ip.to_string());
        }
        let response = self.send(call).await?;
        Ok(match response.status {
            201 => StartOutcome::Started,
            202 => StartOutcome::AlreadyRunning,
            204 => StartOutcome::RunningNotReachable,
            206 => StartOutcome::ProcessMissingButReachable,
            other => StartOutcome::Other(other),
        })
    }

    /// `POST /api/v0/lifecycle/stop`.
    pub async fn stop(&self) -> Result<(), Error> {
        self.send(Call::new(Route::LifecycleStop)).await.map(drop)
    }

    // ---- metadata ----

    /// `GET /api/v0/metadata/endpoints`: the gossip view of this node.
    pub async fn endpoints(&self) -> Result<EndpointStates, Error> {
        let body: EndpointsBody = self.json(Call::new(Route::Endpoints)).await?;
        Ok(body.into())
    }

    /// `GET /api/v0/metadata/versions/features`; an old server without the endpoint (404) has none.
    pub async fn features(&self) -> Result<FeatureSet, Error> {
        let response = self.send(Call::new(Route::Features).accept(&[404])).await?;
        if response.status == 404 {
            return Ok(FeatureSet::default());
        }
        let body: FeatureSetBody = self.decode(Route::Features, &response)?;
        Ok(body.into())
    }

    /// `GET /api/v0/probes/cluster`: can every token range reach `level` with `rf_per_dc` replicas
    /// per datacenter. A 500 with a range map is reported as [`ClusterHealth::Unhealthy`].
    pub async fn probe_cluster(
        &self,
        level: ConsistencyLevel,
        rf_per_dc: u32,
    ) -> Result<ClusterHealth, Error> {
        let call = Call::new(Route::ClusterProbe)
            .query("consistency_level", level.as_str())
            .query("rf_per_dc", rf_per_dc.to_string())
            .accept(&[500]);
        let response = self.send(call).await?;
        if is_success(response.status) {
            return Ok(ClusterHealth::Healthy);
        }
        match serde_json::from_slice(&response.body) {
            Ok(ranges) => Ok(ClusterHealth::Unhealthy(ranges)),
            Err(_) => Err(self.status_error(Route::ClusterProbe, &response, None)),
        }
    }

    /// `GET /api/v1/ops/node/schema/versions`: schema version to the addresses that have it.
    pub async fn schema_versions(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        self.json(Call::new(Route::SchemaVersions)).await
    }

    // ---- node operations ----

    /// `POST /api/v0/ops/seeds/reload`: the seed addresses after the reload.
    pub async fn reload_seeds(&self) -> Result<Vec<String>, Error> {
        let response = self.send(Call::new(Route::SeedsReload)).await?;
        // Some versions print a Java list instead of JSON; the seeds are informational only.
        Ok(serde_json::from_slice(&response.body).unwrap_or_default())
    }

    /// `POST /api/v0/ops/node/drain`.
    pub async fn drain(&self) -> Result<(), Error> {
        self.send(Call::new(Route::Drain)).await.map(drop)
    }

    /// `POST /api/v0/ops/node/decommission`: returns once the node left the ring.
    pub async fn decommission_blocking(&self, force: bool) -> Result<(), Error> {
        let call = Call::new(Route::DecommissionV0).query("force", force.to_string());
        self.send(call).await.map(drop)
    }

    /// `POST /api/v1/ops/node/decommission`: returns the job id at once.
    pub async fn decommission_job(&self, force: bool) -> Result<JobId, Error> {
        let call = Call::new(Route::DecommissionV1).query("force", force.to_string());
        self.job_id(call).await
    }

    /// Decommission as a job when the server has `async_sstable_tasks`, else blocking (v0).
    pub async fn decommission(
        &self,
        force: bool,
        features: &FeatureSet,
    ) -> Result<Submission, Error> {
        if features.supports(&Feature::AsyncSstableTasks) {
            self.decommission_job(force).await.map(Submission::Job)
        } else {
            self.decommission_blocking(force)
                .await
                .map(|()| Submission::Done)
        }
    }

    /// `POST /api/v1/ops/node/rebuild`, streaming from `source_dc` (any datacenter when unset).
    pub async fn rebuild_job(&self, source_dc: Option<&str>) -> Result<JobId, Error> {
        let mut call = Call::new(Route::RebuildV1);
        if let Some(dc) = source_dc {
            call = call.query("src_dc", dc);
        }
        self.job_id(call).await
    }

    /// `POST /api/v0/ops/node/move` to `new_token`: a job on servers with `async_move_task`.
    pub async fn move_node(&self, new_token: &str) -> Result<Submission, Error> {
        let call = Call::new(Route::Move).query("newToken", new_token);
        let response = self.send(call).await?;
        if response.status == 202 {
            self.parse_job_id(Route::Move, &response)
                .map(Submission::Job)
        } else {
            Ok(Submission::Done)
        }
    }

    /// `POST /api/v0/ops/node/encryption/internode/truststore/reload`.
    pub async fn reload_truststore(&self) -> Result<(), Error> {
        self.send(Call::new(Route::TruststoreReload))
            .await
            .map(drop)
    }

    /// `GET /api/v0/ops/node/fullquerylogging`: whether full query logging is on.
    pub async fn full_query_logging(&self) -> Result<bool, Error> {
        #[derive(serde::Deserialize)]
        struct Body {
            entity: bool,
        }
        let body: Body = self.json(Call::new(Route::FullQueryLoggingGet)).await?;
        Ok(body.entity)
    }

    /// `POST /api/v0/ops/node/fullquerylogging`.
    pub async fn set_full_query_logging(&self, enabled: bool) -> Result<(), Error> {
        let call = Call::new(Route::FullQueryLoggingSet).query("enabled", enabled.to_string());
        self.send(call).await.map(drop)
    }

    // ---- roles ----

    /// `POST /api/v0/ops/auth/role`. The password travels in the query string, as the API wants;
    /// it never reaches logs or errors.
    pub async fn create_role(&self, role: &NewRole) -> Result<(), Error> {
        let call = Call::new(Route::RoleCreate)
            .query("username", role.username.as_str())
            .query("password", role.password.as_str())
            .query("is_superuser", role.is_superuser.to_string())
            .query("can_login", role.can_login.to_string())
            .secret(&role.password);
        self.send(call).await.map(drop)
    }

    /// `GET /api/v0/ops/auth/role`.
    pub async fn list_roles(&self) -> Result<Vec<Role>, Error> {
        self.json(Call::new(Route::RoleList)).await
    }

    /// `DELETE /api/v0/ops/auth/role`.
    pub async fn delete_role(&self, username: &str) -> Result<(), Error> {
        let call = Call::new(Route::RoleDelete).query("username", username);
        self.send(call).await.map(drop)
    }

    /// `POST /api/v1/ops/auth/identity_to_role`.
    pub async fn create_identity_to_role(&self, mapping: &IdentityToRole) -> Result<(), Error> {
        let call = self.with_json(Call::new(Route::IdentityToRoleCreate), mapping)?;
        self.send(call).await.map(drop)
    }

    /// `DELETE /api/v1/ops/auth/identity_to_role`.
    pub async fn delete_identity_to_role(&self, identity: &str) -> Result<(), Error> {
        let request = IdentityRequest {
            identity: identity.to_string(),
        };
        let call = self.with_json(Call::new(Route::IdentityToRoleDelete), &request)?;
        self.send(call).await.map(drop)
    }

    // ---- keyspaces and tables ----

    /// `GET /api/v0/ops/keyspace`: keyspace names, or just `name` when it exists.
    pub async fn list_keyspaces(&self, name: Option<&str>) -> Result<Vec<String>, Error> {
        let mut call = Call::new(Route::KeyspaceList);
        if let Some(name) = name {
            call = call.query("keyspaceName", name);
        }
        self.json(call).await
    }

    /// `POST /api/v0/ops/keyspace/create` with NetworkTopologyStrategy.
    pub async fn create_keyspace(&self, request: &KeyspaceReplicationRequest) -> Result<(), Error> {
        let call = self.with_json(Call::new(Route::KeyspaceCreate), request)?;
        self.send(call).await.map(drop)
    }

    /// `POST /api/v0/ops/keyspace/alter`: set the replication of an existing keyspace.
    pub async fn alter_keyspace(&self, request: &KeyspaceReplicationRequest) -> Result<(), Error> {
        let call = self.with_json(Call::new(Route::KeyspaceAlter), request)?;
        self.send(call).await.map(drop)
    }

    /// `GET /api/v0/ops/keyspace/replication`; `None` when the keyspace does not exist (404).
    pub async fn keyspace_replication(
        &self,
        keyspace: &str,
    ) -> Result<Option<KeyspaceReplication>, Error> {
        let call = Call::new(Route::KeyspaceReplication)
            .query("keyspaceName", keyspace)
            .accept(&[404]);
        let response = self.send(call).await?;
        if response.status == 404 {
            return Ok(None);
        }
        self.decode(Route::KeyspaceReplication, &response).map(Some)
    }

    /// `GET /api/v0/ops/tables`: table names of `keyspace`.
    pub async fn list_tables(&self, keyspace: &str) -> Result<Vec<String>, Error> {
        self.json(Call::new(Route::TableList).query("keyspaceName", keyspace))
            .await
    }

    /// `POST /api/v0/ops/tables/create`.
    pub async fn create_table(&self, request: &CreateTableRequest) -> Result<(), Error> {
        let call = self.with_json(Call::new(Route::TableCreate), request)?;
        self.send(call).await.map(drop)
    }

    /// The blocking (v0) call of `operation`: returns when it finished.
    pub async fn run_blocking(&self, operation: &TableOperation) -> Result<(), Error> {
        let call = self.operation_call(operation.blocking_route(), operation)?;
        self.send(call).await.map(drop)
    }

    /// The v1 call of `operation`. Cleanup of node-local keyspaces answers 200 without a job:
    /// that is [`Submission::Done`].
    pub async fn submit_job(&self, operation: &TableOperation) -> Result<Submission, Error> {
        let route = operation.job_route();
        let response = self.send(self.operation_call(route, operation)?).await?;
        if response.status == 202 {
            self.parse_job_id(route, &response).map(Submission::Job)
        } else {
            Ok(Submission::Done)
        }
    }

    /// `operation` as a job when the server announces the matching feature, else blocking.
    pub async fn run_table_operation(
        &self,
        operation: &TableOperation,
        features: &FeatureSet,
    ) -> Result<Submission, Error> {
        if features.supports(&operation.job_feature()) {
            self.submit_job(operation).await
        } else {
            self.run_blocking(operation)
                .await
                .map(|()| Submission::Done)
        }
    }

    // ---- jobs ----

    /// `GET /api/v0/ops/executor/job`; `None` when the server does not know the job (404 or an
    /// empty answer: evicted, or the Management API restarted).
    pub async fn job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        let call = Call::new(Route::JobStatus)
            .query("job_id", id.as_str())
            .accept(&[404]);
        let response = self.send(call).await?;
        if response.status == 404 || is_blank(&response.body) {
            return Ok(None);
        }
        self.decode(Route::JobStatus, &response).map(Some)
    }

    // ---- plumbing ----

    fn operation_call(
        &self,
        route: Route,
        operation: &TableOperation,
    ) -> Result<Call<'static>, Error> {
        let mut call = Call::new(route);
        for (key, value) in operation.query() {
            call = call.query(key, value);
        }
        let body = operation
            .body()
            .map_err(|error| self.decode_error(route, format!("encode request: {error}")))?;
        call.body = Some(body);
        Ok(call)
    }

    fn with_json<'a, T: Serialize>(&self, mut call: Call<'a>, body: &T) -> Result<Call<'a>, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|error| self.decode_error(call.route, format!("encode request: {error}")))?;
        call.body = Some(bytes);
        Ok(call)
    }

    async fn json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let route = call.route;
        let response = self.send(call).await?;
        self.decode(route, &response)
    }

    async fn job_id(&self, call: Call<'_>) -> Result<JobId, Error> {
        let route = call.route;
        let response = self.send(call).await?;
        self.parse_job_id(route, &response)
    }

    fn parse_job_id(&self, route: Route, response: &RawResponse) -> Result<JobId, Error> {
        let text = String::from_utf8_lossy(&response.body);
        JobId::parse(&text).ok_or_else(|| {
            self.decode_error(
                route,
                format!("expected a job id, got {:?}", body_excerpt(&response.body)),
            )
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        route: Route,
        response: &RawResponse,
    ) -> Result<T, Error> {
        serde_json::from_slice(&response.body).map_err(|error| {
            self.decode_error(
                route,
                format!("{error} in {:?}", body_excerpt(&response.body)),
            )
        })
    }

    fn decode_error(&self, route: Route, message: String) -> Error {
        Error::Decode {
            pod: self.inner.label.clone(),
            route,
            message,
        }
    }

    fn status_error(&self, route: Route, response: &RawResponse, secret: Option<&str>) -> Error {
        let excerpt = body_excerpt(&response.body);
        Error::Status {
            pod: self.inner.label.clone(),
            route,
            status: response.status,
            body: secret.map_or(excerpt.clone(), |secret| query::scrub(&excerpt, secret)),
        }
    }

    /// Sends `call` with its timeout, records metrics and turns unexpected statuses into errors.
    async fn send(&self, call: Call<'_>) -> Result<RawResponse, Error> {
        let inner = &self.inner;
        let route = call.route;
        let query_string = query::build(&call.query);
        let path_and_query = format!("{}{query_string}", route.path());
        let timeout = inner.settings.timeout(route);
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            timeout,
            exchange(
                &inner.settings.transport,
                inner.address,
                route,
                &path_and_query,
                call.body,
                &inner.settings.user_agent,
            ),
        )
        .await;
        let result = match outcome {
            Err(_) => Err(Error::Timeout {
                pod: inner.label.clone(),
                route,
                after: timeout,
            }),
            Ok(Err(message)) => Err(Error::Transport {
                pod: inner.label.clone(),
                route,
                message: call
                    .secret
                    .map_or(message.clone(), |s| query::scrub(&message, s)),
            }),
            Ok(Ok(response))
                if is_success(response.status) || call.also_accept.contains(&response.status) =>
            {
                Ok(response)
            }
            Ok(Ok(response)) => Err(self.status_error(route, &response, call.secret)),
        };
        let elapsed = started.elapsed();
        let label = match &result {
            Ok(response) => status_label(response.status),
            Err(error) => error.result_label(),
        };
        if let Some(metrics) = &inner.settings.metrics {
            metrics.observe(route, label, elapsed);
        }
        tracing::debug!(
            pod = %inner.label,
            route = route.name(),
            query = %query::redact(query_string.trim_start_matches('?')),
            result = label,
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "management API call"
        );
        result
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn is_blank(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    trimmed.is_empty() || trimmed == "{}" || trimmed == "null"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_timeouts_and_urls() {
        let settings = ClientSettings::insecure()
            .with_port(9000)
            .with_timeout(Route::Drain, Duration::from_secs(1));
        assert_eq!(settings.timeout(Route::Drain), Duration::from_secs(1));
        assert_eq!(
            settings.timeout(Route::LifecycleStart),
            Duration::from_secs(600)
        );
        let client = settings.client("dc1-sts-0", "10.1.2.3".parse().unwrap());
        assert_eq!(client.base_url(), "http://10.1.2.3:9000");
        assert_eq!(client.pod(), "dc1-sts-0");
        let all = ClientSettings::insecure().with_timeout_for_all(Duration::from_millis(5));
        assert!(
            Route::ALL
                .iter()
                .all(|r| all.timeout(*r) == Duration::from_millis(5))
        );
    }

    #[tokio::test]
    async fn connection_failure_names_pod_and_call() {
        // Port 1 on loopback is closed on any sane machine.
        let client = ClientSettings::insecure()
            .with_port(1)
            .client("dc1-sts-0", "127.0.0.1".parse().unwrap());
        let error = client.drain().await.unwrap_err();
        assert!(matches!(error, Error::Transport { .. }), "{error}");
        let message = error.to_string();
        assert!(
            message.starts_with("POST /api/v0/ops/node/drain on dc1-sts-0 (127.0.0.1)"),
            "{message}"
        );
    }

    #[test]
    fn blank_bodies() {
        assert!(is_blank(b""));
        assert!(is_blank(b" {} "));
        assert!(!is_blank(b"{\"id\":\"1\"}"));
    }
}
