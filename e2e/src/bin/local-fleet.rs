//! Starts a local fleet and keeps it running until Ctrl-C, for trying things by hand with kubectl.

use anyhow::Context;
use clap::Parser;
use k8ssandra_e2e::FleetConfig;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// Local Kubernetes clusters from real components, named like kind's (`kind-k8ssandra-0`, ...).
#[derive(Parser)]
struct Args {
    /// Number of clusters.
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// Fake nodes per cluster.
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    /// Name of the log folder (under target/e2e).
    #[arg(long, default_value = "local-fleet")]
    name: String,
    /// Do not install the project's CRDs.
    #[arg(long)]
    no_crds: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let fleet = FleetConfig::new(&args.name, args.clusters)
        .nodes_per_cluster(args.nodes)
        .install_crds(!args.no_crds)
        .start()
        .await
        .context("starting the local fleet")?;
    println!(
        "{} local clusters ready in {:.1?}; logs in {}",
        fleet.clusters().len(),
        fleet.started_in(),
        fleet.run_dir().display()
    );
    println!("  export KUBECONFIG={}", fleet.kubeconfig_path().display());
    println!("  pods: {}", fleet.pod_network());
    for cluster in fleet.clusters() {
        println!(
            "  context {}: {}, pod IPs in {}",
            cluster.context(),
            cluster.access().server,
            cluster.pod_cidr()
        );
    }
    println!("Ctrl-C (or SIGTERM) stops every process.");
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    drop(fleet);
    println!("stopped");
    Ok(())
}
