//! [`FakeNode`]: one Management API server on `<ip>:<port>`, plain or mutual TLS.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::client::DEFAULT_PORT;
use crate::fake::FakeError;
use crate::fake::calls::{CallLog, RecordedCall};
use crate::fake::cluster::Shared;
use crate::fake::faults::{Fault, Times};
use crate::fake::handlers::{self, ParsedRequest, Reply};
use crate::fake::state::{NodeIdentity, NodeKey, NodeProcess};
use crate::model::features::{Feature, FeatureSet};
use crate::query;
use crate::route::Route;
use crate::tls;

/// Largest request body read.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Server certificate and the CA that client certificates must chain to.
#[derive(Clone)]
pub struct FakeTls {
    /// Server certificate chain, PEM.
    pub server_chain_pem: String,
    /// Server private key, PEM.
    pub server_key_pem: String,
    /// CA bundle for client certificates, PEM. Clients without a valid certificate are refused.
    pub client_ca_pem: String,
}

impl std::fmt::Debug for FakeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeTls { .. }")
    }
}

/// Whether a node is a seed, asked when its start runs (Cassandra resolves its seed list then);
/// `None` leaves the node's seed flag as it is.
pub type SeedCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<bool>> + Send>> + Send + Sync>;

/// The addresses a node's seed list resolves to, asked when its start runs and when it reloads
/// its seeds (Cassandra resolves the seed provider's names then); `None` leaves the node on the
/// simple rule (it may start when any seed of the cluster is up).
pub type SeedResolver =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Vec<IpAddr>>> + Send>> + Send + Sync>;

/// Makes a node's listening socket (bound, non-blocking), for a server that must listen
/// somewhere this process cannot bind directly, such as inside another network namespace.
pub type Binder = Arc<dyn Fn(SocketAddr) -> std::io::Result<std::net::TcpListener> + Send + Sync>;

/// Who a node is and where its server listens.
#[derive(Clone)]
pub struct NodeSpec {
    /// Pod name.
    pub pod: String,
    /// Datacenter.
    pub datacenter: String,
    /// Rack.
    pub rack: String,
    /// Identity of the data volume (the PVC's UID, say): the same value keeps the host ID across
    /// restarts; a new value is a node with empty disks.
    pub data_id: String,
    /// Whether the node is a seed (it may start alone); changeable with [`FakeNode::set_seed`].
    pub seed: bool,
    /// Listen address (a loopback address in tests).
    pub ip: IpAddr,
    /// Listen port; 0 picks a free one.
    pub port: u16,
    /// Mutual TLS, or plain HTTP when unset.
    pub tls: Option<FakeTls>,
    /// Feature set; `None` is a server too old for the features endpoint (404, no v1 routes).
    pub features: Option<FeatureSet>,
    /// Asked at each `lifecycle/start` whether the node is a seed.
    pub seed_check: Option<SeedCheck>,
    /// Asked at each `lifecycle/start` and seed reload which addresses its seeds are.
    pub seed_resolver: Option<SeedResolver>,
    /// Makes the listening socket; unset binds in this process's network namespace.
    pub binder: Option<Binder>,
    /// `-Dcassandra.system_distributed_replication`: the replication `system_auth`,
    /// `system_distributed` and `system_traces` get when this node is the cluster's first.
    pub system_replication: Option<BTreeMap<String, u32>>,
}

impl std::fmt::Debug for NodeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSpec")
            .field("pod", &self.pod)
            .field("datacenter", &self.datacenter)
            .field("rack", &self.rack)
            .field("data_id", &self.data_id)
            .field("seed", &self.seed)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("seed_check", &self.seed_check.is_some())
            .field("seed_resolver", &self.seed_resolver.is_some())
            .field("binder", &self.binder.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeSpec {
    /// A non-seed node with every feature, plain HTTP on port 8080.
    pub fn new(pod: &str, datacenter: &str, rack: &str, data_id: &str, ip: IpAddr) -> Self {
        Self {
            pod: pod.to_string(),
            datacenter: datacenter.to_string(),
            rack: rack.to_string(),
            data_id: data_id.to_string(),
            seed: false,
            ip,
            port: DEFAULT_PORT,
            tls: None,
            features: Some(FeatureSet {
                features: Feature::all_known().into_iter().collect(),
                ..FeatureSet::default()
            }),
            seed_check: None,
            seed_resolver: None,
            binder: None,
            system_replication: None,
        }
    }

    /// Starts the node with `-Dcassandra.system_distributed_replication` set to `factors`.
    pub fn system_replication(mut self, factors: BTreeMap<String, u32>) -> Self {
        self.system_replication = Some(factors);
        self
    }

    /// Makes the listening socket with `binder`.
    pub fn binder(mut self, binder: Binder) -> Self {
        self.binder = Some(binder);
        self
    }

    /// Decides whether the node is a seed when each start runs, with `check` (a test harness
    /// reads the pod's current seed label).
    pub fn seed_check(mut self, check: SeedCheck) -> Self {
        self.seed_check = Some(check);
        self
    }

    /// Resolves the node's seed list with `resolver` when a start or a seed reload runs: the node
    /// then starts only when a node at one of those addresses is up (a seed that knows none may
    /// start alone only where no other node of the cluster is alive: a new cluster).
    pub fn seed_resolver(mut self, resolver: SeedResolver) -> Self {
        self.seed_resolver = Some(resolver);
        self
    }

    /// Marks the node as a seed (or not).
    pub fn seed(mut self, seed: bool) -> Self {
        self.seed = seed;
        self
    }

    /// Listens on another port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Serves HTTPS with client certificates.
    pub fn tls(mut self, tls: FakeTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Uses another feature set (`None`: an old server).
    pub fn features(mut self, features: Option<FeatureSet>) -> Self {
        self.features = features;
        self
    }
}

/// One running fake Management API server. Dropping it is like deleting the pod: the server stops
/// and the Cassandra process dies without a word (use drain or `lifecycle/stop` first for a
/// graceful stop).
#[derive(Debug)]
pub struct FakeNode {
    shared: Arc<Shared>,
    key: NodeKey,
    identity: NodeIdentity,
    address: SocketAddr,
    server: Option<JoinHandle<()>>,
}

/// What each request handler needs.
#[derive(Clone)]
struct NodeContext {
    shared: Arc<Shared>,
    key: NodeKey,
    pod: String,
    ip: IpAddr,
    seed_check: Option<SeedCheck>,
    seed_resolver: Option<SeedResolver>,
}

impl FakeNode {
    pub(crate) async fn start(shared: Arc<Shared>, spec: NodeSpec) -> Result<Self, FakeError> {
        let acceptor = spec.tls.as_ref().map(acceptor).transpose()?;
        let requested = SocketAddr::new(spec.ip, spec.port);
        let bound = match &spec.binder {
            Some(binder) => binder(requested).and_then(TcpListener::from_std),
            None => TcpListener::bind(requested).await,
        };
        let listener = bound.map_err(|source| FakeError::Bind {
            address: requested,
            source,
        })?;
        let address = listener.local_addr().map_err(|source| FakeError::Bind {
            address: requested,
            source,
        })?;
        let identity = NodeIdentity {
            pod: spec.pod.clone(),
            datacenter: spec.datacenter.clone(),
            rack: spec.rack.clone(),
            data_id: spec.data_id.clone(),
            ip: spec.ip,
            system_replication: spec.system_replication.clone(),
        };
        let key = shared
            .lock()
            .add_node(identity.clone(), spec.seed, spec.features.clone())
            .map_err(|data_id| FakeError::DataInUse { data_id })?;
        let context = NodeContext {
            shared: Arc::clone(&shared),
            key,
            pod: spec.pod,
            ip: spec.ip,
            seed_check: spec.seed_check,
            seed_resolver: spec.seed_resolver,
        };
        let server = tokio::spawn(serve(listener, acceptor, context));
        Ok(Self {
            shared,
            key,
            identity,
            address,
            server: Some(server),
        })
    }

    /// Pod name.
    pub fn pod(&self) -> &str {
        &self.identity.pod
    }

    /// Datacenter.
    pub fn datacenter(&self) -> &str {
        &self.identity.datacenter
    }

    /// Rack.
    pub fn rack(&self) -> &str {
        &self.identity.rack
    }

    /// Data volume identity.
    pub fn data_id(&self) -> &str {
        &self.identity.data_id
    }

    /// Listen IP.
    pub fn ip(&self) -> IpAddr {
        self.address.ip()
    }

    /// Listen port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Listen address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What the Cassandra process is doing.
    pub fn process(&self) -> NodeProcess {
        self.shared.lock().process(self.key)
    }

    /// Why the process the last start launched exited at once (no seed reachable, another node
    /// bootstrapping), as Cassandra's log would say; `None` after a start that took.
    pub fn exit_reason(&self) -> Option<String> {
        self.shared.lock().exit_reason(self.key)
    }

    /// Whether readiness answers 200.
    pub fn is_ready(&self) -> bool {
        self.shared.lock().is_ready(self.key)
    }

    /// Host ID, once the node started for the first time.
    pub fn host_id(&self) -> Option<String> {
        self.shared.lock().host_id(self.key)
    }

    /// Makes the node a seed or not (the operator's seed label).
    pub fn set_seed(&self, seed: bool) {
        self.shared.lock().set_seed(self.key, seed);
    }

    /// Sets the node's `LOAD` in bytes.
    pub fn set_load(&self, bytes: f64) {
        self.shared.lock().set_load(self.key, bytes);
    }

    /// Changes the feature set (`None`: an old server).
    pub fn set_features(&self, features: Option<FeatureSet>) {
        self.shared.lock().set_features(self.key, features);
    }

    /// Makes the next requests of `route` fail, hang, stall or slow down.
    pub fn inject(&self, route: Route, fault: Fault, times: Times) {
        self.shared.lock().inject(self.key, route, fault, times);
    }

    /// Removes every injected fault (held requests stay held until released).
    pub fn clear_faults(&self) {
        self.shared.lock().clear_faults(self.key);
    }

    /// Lets hung requests and stalled work of `route` go on; returns how many were released.
    pub fn release(&self, route: Route) -> usize {
        self.shared.lock().release(self.key, route)
    }

    /// Forgets every job, as an executor that evicted them: their status becomes 404.
    pub fn evict_jobs(&self) {
        self.shared.lock().evict_jobs(self.key);
    }

    /// Requests this server received.
    pub fn calls(&self) -> CallLog {
        let all = self.shared.lock().calls();
        CallLog {
            calls: all
                .into_iter()
                .filter(|call| call.server == self.key)
                .collect(),
        }
    }

    /// Stops the server (the pod is deleted) and waits until its address is free again.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        // Drop does the rest.
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.shared.lock().remove_node(self.key);
    }
}

fn acceptor(tls: &FakeTls) -> Result<TlsAcceptor, FakeError> {
    let refused = |error: String| FakeError::Tls(error);
    let provider = tls::provider();
    let roots = tls::root_store(&tls.client_ca_pem).map_err(|e| refused(e.to_string()))?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| refused(e.to_string()))?;
    let chain = tls::certificates(&tls.server_chain_pem).map_err(refused)?;
    let key = PrivateKeyDer::from_pem_slice(tls.server_key_pem.as_bytes())
        .map_err(|e| refused(e.to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| refused(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until aborted; aborting drops (and so aborts) every connection.
async fn serve(listener: TcpListener, acceptor: Option<TlsAcceptor>, context: NodeContext) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let context = context.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            match acceptor {
                None => serve_connection(TokioIo::new(stream), context).await,
                Some(acceptor) => {
                    // A refused client certificate ends the handshake; nothing to answer.
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(TokioIo::new(stream), context).await;
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection<I>(io: I, context: NodeContext)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let context = context.clone();
        async move { Ok::<_, Infallible>(respond(context, request).await) }
    });
    // Client disconnects end the connection; nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

async fn respond(
    context: NodeContext,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let raw_query = request.uri().query().unwrap_or_default().to_string();
    let route = Route::from_method_and_path(&method, &path);
    let user_agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.shared.lock().record_call(RecordedCall {
        pod: context.pod.clone(),
        ip: context.ip,
        user_agent,
        method,
        path: path.clone(),
        query: query::redact(&raw_query),
        route,
        server: context.key,
    });
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Reply::text(400, "unreadable request body").into_response(),
    };
    let Some(route) = route else {
        let status = if Route::path_is_known(&path) {
            405
        } else {
            404
        };
        return Reply::empty(status).into_response();
    };
    let parsed = ParsedRequest {
        query: query::parse(&raw_query),
        body,
    };
    // Like a real server, the work goes on when the client gives up waiting.
    let work = tokio::spawn(process(context, route, parsed));
    match work.await {
        Ok(reply) => reply.into_response(),
        Err(_) => Reply::text(500, "request handler failed").into_response(),
    }
}

async fn process(context: NodeContext, route: Route, request: ParsedRequest) -> Reply {
    let fault = context.shared.lock().take_fault(context.key, route);
    let mut stall = false;
    match fault {
        Some(Fault::Status(status)) => return Reply::text(status, "injected failure"),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Hang) => {
            let gate = context.shared.lock().hang(context.key, route);
            if gate.await.is_err() {
                return Reply::text(500, "node shut down while the request was held");
            }
        }
        Some(Fault::Stall) => stall = true,
        None => {}
    }
    if route == Route::LifecycleStart
        && let Some(check) = &context.seed_check
        && let Some(seed) = check().await
    {
        context.shared.lock().set_seed(context.key, seed);
    }
    if matches!(route, Route::LifecycleStart | Route::SeedsReload)
        && let Some(resolve) = &context.seed_resolver
    {
        let known = resolve().await;
        context.shared.lock().set_known_seeds(context.key, known);
    }
    handlers::handle(&context.shared, context.key, route, &request, stall).await
}

impl Reply {
    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        response
    }
}
