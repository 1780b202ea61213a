//! A fleet: several independent local clusters on one etcd, started in parallel, with a merged
//! kubeconfig, torn down when dropped.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use futures::future::try_join_all;

use crate::{
    HarnessError,
    cluster::{ClusterLayout, LocalCluster},
    etcd::Etcd,
    fs_write, kubeconfig,
    pod_network::{FleetNetwork, PodNetwork, PodNetworkChoice},
    slots::Slot,
    tools::Tools,
};

/// How to build a fleet.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    name: String,
    clusters: usize,
    layout: ClusterLayout,
    pod_network: Option<PodNetworkChoice>,
}

impl FleetConfig {
    /// A fleet of `clusters` clusters; `name` names its log folder (use the test's name).
    pub fn new(name: impl Into<String>, clusters: usize) -> Self {
        Self {
            name: name.into(),
            clusters,
            layout: ClusterLayout {
                nodes: 6,
                zones: ["zone-a", "zone-b", "zone-c"].map(String::from).to_vec(),
                install_crds: true,
                startup_timeout: Duration::from_secs(90),
            },
            pod_network: None,
        }
    }

    /// Fake nodes per cluster (default 6).
    #[must_use]
    pub fn nodes_per_cluster(mut self, nodes: usize) -> Self {
        self.layout.nodes = nodes;
        self
    }

    /// Zones the nodes are spread over (default `zone-a`, `zone-b`, `zone-c`, as in the samples).
    #[must_use]
    pub fn zones(mut self, zones: &[&str]) -> Self {
        self.layout.zones = zones.iter().map(|zone| zone.to_string()).collect();
        self
    }

    /// Whether the project's CRDs are installed while starting (default yes).
    #[must_use]
    pub fn install_crds(mut self, install: bool) -> Self {
        self.layout.install_crds = install;
        self
    }

    /// Which pod network to make (default: as `K8SSANDRA_E2E_POD_NETWORK` says, else a network
    /// namespace where one can be made).
    #[must_use]
    pub fn pod_network(mut self, choice: PodNetworkChoice) -> Self {
        self.pod_network = Some(choice);
        self
    }

    /// Starts the fleet: etcd, then every cluster's processes in parallel.
    pub async fn start(self) -> Result<Fleet, HarnessError> {
        if self.clusters == 0 || self.layout.zones.is_empty() || self.layout.nodes == 0 {
            return Err(HarnessError::Config(
                "a fleet needs at least one cluster, one zone and one node".into(),
            ));
        }
        if self.layout.nodes > crate::nodes::MAX_NODES {
            return Err(HarnessError::Config(format!(
                "at most {} nodes per cluster",
                crate::nodes::MAX_NODES
            )));
        }
        let started = Instant::now();
        let tools = Tools::locate()?;
        let choice = match self.pod_network {
            Some(choice) => choice,
            None => PodNetworkChoice::from_env()?,
        };
        let run_dir = crate::run_dir(&self.name)?;
        Slot::reap_abandoned()?;
        let slots = (0..self.clusters)
            .map(|_| Slot::acquire())
            .collect::<Result<Vec<_>, _>>()?;
        let numbers: Vec<u8> = slots.iter().map(Slot::number).collect();
        let (network, pod_network) = FleetNetwork::make(choice, &numbers)?;

        let mut fleet = Fleet {
            name: self.name.clone(),
            etcd_data_dir: run_dir.join("etcd-data"),
            kubeconfig_path: run_dir.join("kubeconfig"),
            run_dir,
            clusters: Vec::new(),
            etcd: None,
            network,
            pod_network: pod_network.clone(),
            started_in: Duration::ZERO,
        };
        // From here on, an error drops `fleet`, which stops whatever was started.
        let limit = self.layout.startup_timeout;
        let etcd = Etcd::start(
            &tools,
            &fleet.etcd_data_dir,
            &fleet.run_dir.join("etcd.log"),
            &slots[0],
        )?;
        let etcd_url = etcd.url.clone();
        fleet.etcd = Some(etcd);
        if let Some(etcd) = fleet.etcd.as_mut() {
            etcd.wait_healthy(limit).await?;
        }
        for (index, slot) in slots.into_iter().enumerate() {
            let cluster = LocalCluster::launch(
                index,
                &fleet.run_dir,
                &tools,
                &etcd_url,
                slot,
                pod_network.clone(),
                self.layout.clone(),
            )
            .await?;
            fleet.clusters.push(cluster);
        }
        try_join_all(
            fleet
                .clusters
                .iter_mut()
                .map(LocalCluster::wait_apiserver_ready),
        )
        .await?;
        for cluster in &mut fleet.clusters {
            cluster.start_controllers(&tools)?;
        }
        try_join_all(fleet.clusters.iter_mut().map(LocalCluster::prepare)).await?;

        let accesses: Vec<_> = fleet.clusters.iter().map(LocalCluster::access).collect();
        fs_write(
            &fleet.kubeconfig_path,
            kubeconfig::kubeconfig_yaml(&accesses),
        )?;
        fleet.started_in = started.elapsed();
        tracing::info!(
            fleet = %fleet.name,
            clusters = fleet.clusters.len(),
            seconds = fleet.started_in.as_secs_f64(),
            "fleet started"
        );
        Ok(fleet)
    }
}

/// Running local clusters. Dropping the fleet stops every process; if the thread is panicking
/// (a failed test), it first prints where the logs are.
#[derive(Debug)]
pub struct Fleet {
    name: String,
    run_dir: PathBuf,
    etcd_data_dir: PathBuf,
    kubeconfig_path: PathBuf,
    /// Dropped before `etcd`'s slot (held by the first cluster) is released: see `Drop`.
    clusters: Vec<LocalCluster>,
    etcd: Option<Etcd>,
    /// Removed in `Drop` while the clusters still hold their slots, which name it.
    network: Option<FleetNetwork>,
    pod_network: PodNetwork,
    started_in: Duration,
}

impl Fleet {
    /// The clusters, in context order (`kind-k8ssandra-0`, ...).
    pub fn clusters(&self) -> &[LocalCluster] {
        &self.clusters
    }

    /// Cluster `index`.
    ///
    /// # Panics
    /// If the fleet has fewer clusters; a test asking for one it did not start is a bug.
    pub fn cluster(&self, index: usize) -> &LocalCluster {
        &self.clusters[index]
    }

    /// Cluster `index`, to stop parts of it.
    ///
    /// # Panics
    /// As [`Fleet::cluster`].
    pub fn cluster_mut(&mut self, index: usize) -> &mut LocalCluster {
        &mut self.clusters[index]
    }

    /// One kubeconfig with every cluster's context, the first one current.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// Where every process log is.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// How the fleet's pods are addressed.
    pub fn pod_network(&self) -> &PodNetwork {
        &self.pod_network
    }

    /// How long `start` took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Process IDs of every running process of the fleet.
    pub fn process_ids(&mut self) -> Vec<u32> {
        let etcd = self.etcd.as_ref().and_then(|etcd| etcd.process.pid());
        self.clusters
            .iter_mut()
            .flat_map(|cluster| {
                cluster
                    .processes_mut()
                    .filter_map(|process| process.pid())
                    .collect::<Vec<_>>()
            })
            .chain(etcd)
            .collect()
    }

    /// A few lines saying where each process's log is and which processes have exited.
    pub fn log_summary(&mut self) -> String {
        let mut lines = vec![format!(
            "local fleet `{}`: logs in {} (kubeconfig: {})",
            self.name,
            self.run_dir.display(),
            self.kubeconfig_path.display()
        )];
        let etcd = self.etcd.as_mut().map(|etcd| &mut etcd.process);
        let processes = etcd.into_iter().chain(
            self.clusters
                .iter_mut()
                .flat_map(LocalCluster::processes_mut),
        );
        for process in processes {
            let state = match process.exit_status() {
                Some(status) => format!("EXITED ({status})"),
                None if process.pid().is_some() => "running".to_string(),
                None => "stopped".to_string(),
            };
            lines.push(format!(
                "  {:<36} {:<22} {}",
                process.name(),
                state,
                process.log_file().display()
            ));
        }
        lines.join("\n")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_summary());
        }
        for cluster in &mut self.clusters {
            cluster.stop();
        }
        if let Some(etcd) = self.etcd.as_mut() {
            etcd.process.stop();
        }
        drop(self.network.take());
        // etcd preallocates large write-ahead-log files; the logs are what is worth keeping.
        let _ = std::fs::remove_dir_all(&self.etcd_data_dir);
    }
}
