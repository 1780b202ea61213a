//! `k8ssandra-operator run`: logging, the Kubernetes clients (their requests counted), the HTTP
//! endpoints, and the data-plane controllers (with the control-plane ones when asked) until
//! Ctrl-C or SIGTERM.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, atomic::AtomicBool},
};

use anyhow::Context as _;
use k8ssandra_data_plane::{
    Controllers,
    build::{image_file, images::ImageConfig},
    caches, datacenter, schedule, task,
};
use k8ssandra_mgmt_api::{ClientSettings, ManagementApiMetrics};
use k8ssandra_reconcile::{api_metrics::ApiRequestMetrics, leader, metrics::ReconcileMetrics};
use kube::client::ClientBuilder;
use prometheus_client::registry::Registry;

use crate::http;

/// How the log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What `run` is asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace watched; every namespace when `None`.
    pub namespace: Option<String>,
    /// The images of the pods.
    pub images: ImageConfig,
    /// Whether the control plane runs too.
    pub control_plane: bool,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub http_address: SocketAddr,
    /// The log format.
    pub log_format: LogFormat,
    /// The leader Lease (`namespace`, `name`), when replicas elect one.
    pub leader_lease: Option<(String, String)>,
}

/// This replica's name in the leader Lease: the pod's name, else the host's, with the process id.
fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "k8ssandra-operator".to_owned());
    format!("{host}_{}", std::process::id())
}

/// Where cass-operator's deployments mount the image configuration.
const UPSTREAM_IMAGE_CONFIG: &str = "/configs/image_config.yaml";

/// The images of the pods: from `file`, else from upstream's mount point when a file is there,
/// else upstream v1.32's.
///
/// # Errors
/// When the file cannot be read or is not a usable ImageConfig: the operator does not start
/// with images other than the ones asked for.
pub fn images(file: Option<&Path>) -> anyhow::Result<ImageConfig> {
    let upstream = Path::new(UPSTREAM_IMAGE_CONFIG);
    let Some(path) = file.or_else(|| upstream.is_file().then_some(upstream)) else {
        return Ok(ImageConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the image configuration {}", path.display()))?;
    image_file::parse(&text).with_context(|| format!("in {}", path.display()))
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // kube's client logs a whole response body at WARN when it cannot decode one; the
        // controllers report such objects themselves.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Runs the CassandraDatacenter, CassandraTask and ScheduledTask controllers, and with
/// `control_plane` the ClientConfig, K8ssandraCluster, K8ssandraTask and ReplicatedSecret ones,
/// until the process is asked to stop.
pub async fn operator(options: Options) -> anyhow::Result<()> {
    let Options {
        namespace,
        images,
        control_plane,
        http_address,
        log_format,
        leader_lease,
    } = options;
    init_logs(log_format);
    let mut config = kube::Config::infer().await.context(
        "reading the Kubernetes configuration (kubeconfig or in-cluster service account)",
    )?;
    k8ssandra_reconcile::identity::identify(&mut config);
    let server = config.cluster_url.to_string();
    let mut registry = Registry::default();
    let requests = ApiRequestMetrics::register(&mut registry);
    let client = ClientBuilder::try_from(config)
        .context("building the Kubernetes client")?
        .with_layer(&requests.layer(""))
        .build();
    let metrics = ReconcileMetrics::register(&mut registry);
    let mgmt =
        ClientSettings::insecure().with_metrics(ManagementApiMetrics::register(&mut registry));
    let mut elector = leader_lease.map(|(lease_namespace, name)| {
        leader::Elector::new(
            client.clone(),
            &lease_namespace,
            &name,
            &identity(),
            leader::Timings::default(),
            &mut registry,
        )
    });
    // A replica waiting to lead serves its probes, and is ready: it is healthy, only idle.
    let ready = Arc::new(AtomicBool::new(elector.is_some()));
    let listener = http::bind(http_address).await?;
    let endpoints = http::Endpoints {
        registry: Arc::new(registry),
        ready: Arc::clone(&ready),
    };
    tokio::spawn(http::serve(listener, endpoints));
    if let Some(elector) = elector.as_mut() {
        tracing::info!("waiting to lead");
        tokio::select! {
            () = elector.acquire() => {}
            () = shutdown_signal() => {
                tracing::info!("stopping");
                return Ok(());
            }
        }
        ready.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    let (caches, feeds) = caches::watch_all(&client, namespace.as_deref());
    tokio::spawn({
        let caches = caches.clone();
        async move {
            // Ready once every watch listed: passes then act on what is there.
            while let Err(error) = caches.settle().await {
                tracing::info!(%error, "waiting for the watch caches");
            }
            ready.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::info!("watch caches listed: ready");
        }
    });
    let mut datacenters = datacenter::Context::new(
        client.clone(),
        caches.clone(),
        mgmt.clone(),
        metrics.clone(),
        datacenter::Timings::default(),
    );
    datacenters.images = images;
    let datacenters = Arc::new(datacenters);
    let tasks = Arc::new(task::Context::new(
        client.clone(),
        caches.clone(),
        mgmt,
        metrics.clone(),
        task::Timings::default(),
    ));
    let schedules = Arc::new(schedule::Context::new(
        client.clone(),
        caches,
        metrics.clone(),
        schedule::Timings::default(),
    ));
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        control_plane,
        %http_address,
        "operator starting"
    );
    let control = async {
        if !control_plane {
            return std::future::pending().await;
        }
        // Each remote cluster's client counts its requests under its context.
        let remotes = k8ssandra_control_plane::remote::Registry::with_client_factory(Arc::new(
            move |context, config| {
                ClientBuilder::try_from(config)
                    .map(|builder| builder.with_layer(&requests.layer(context)).build())
                    .map_err(|error| format!("cannot build a client: {error}"))
            },
        ));
        remotes.set_local(client.clone(), &server);
        k8ssandra_control_plane::run(client.clone(), namespace.as_deref(), remotes, metrics).await;
    };
    let lost = async {
        match elector.as_mut() {
            Some(elector) => elector.keep().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = k8ssandra_data_plane::run(
            Controllers { datacenters, tasks, schedules },
            feeds,
        ) => {}
        () = control => {}
        // Two leaders must never act: the process ends, and its restart waits to lead again.
        lost = lost => return Err(lost.into()),
        () = shutdown_signal() => tracing::info!("stopping"),
    }
    if let Some(elector) = elector.as_mut() {
        elector.release().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_configuration_file_is_read_or_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("k8ssandra-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let good = dir.join("good.yaml");
        std::fs::write(
            &good,
            "apiVersion: config.k8ssandra.io/v1beta1\nkind: ImageConfig\nimages:\n  system-logger: my/logger:1\n",
        )
        .expect("written");
        assert_eq!(
            images(Some(&good)).expect("read").system_logger,
            "my/logger:1"
        );

        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "apiVersion: v1\nkind: ConfigMap\n").expect("written");
        let error = format!("{:#}", images(Some(&bad)).expect_err("refused"));
        assert!(
            error.contains("bad.yaml") && error.contains("ImageConfig"),
            "{error}"
        );

        let missing = dir.join("missing.yaml");
        let error = format!("{:#}", images(Some(&missing)).expect_err("refused"));
        assert!(error.contains("missing.yaml"), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
