//! Upstream's defaults, as methods that give the effective value of a field the user left unset.
//! Nothing here changes the objects: a default is applied where the value is used, so what the user
//! wrote stays as written.

use crate::{
    cassandra::{CassandraDatacenterSpec, ManagementApiAuthManual, Rack, ServerType},
    control::CassandraTaskTemplate,
    k8ssandra::{K8ssandraCluster, SecretsProvider},
    names,
};

/// Name of the single rack of a datacenter that lists none.
pub const DEFAULT_RACK: &str = "default";
/// `minReadySeconds` of the StatefulSets when unset.
pub const DEFAULT_MIN_READY_SECONDS: i32 = 5;
/// Seconds a finished task is kept when `ttlSecondsAfterFinished` is unset.
pub const DEFAULT_TASK_TTL_SECONDS: i32 = 86_400;
/// Port of the Management API in every Cassandra pod.
pub const MANAGEMENT_API_PORT: u16 = 8080;
/// CQL port.
pub const NATIVE_PORT: u16 = 9042;
/// Internode port.
pub const INTERNODE_PORT: u16 = 7000;

/// `num_tokens` when cassandra.yaml does not set it: 256 on Cassandra 3.x, 16 after.
#[must_use]
pub fn num_tokens(server_type: ServerType, server_version: &str) -> u32 {
    if server_type == ServerType::Cassandra && server_version.starts_with("3.") {
        256
    } else {
        16
    }
}

impl K8ssandraCluster {
    /// Cassandra cluster name: `spec.cassandra.clusterName`, else the object's name.
    #[must_use]
    pub fn cassandra_cluster_name(&self) -> String {
        self.spec
            .cassandra
            .as_ref()
            .and_then(|c| c.cluster_name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }

    /// Whether Cassandra authentication is on (the default).
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.spec.auth.unwrap_or(true)
    }

    /// Server distribution (`cassandra` by default).
    #[must_use]
    pub fn server_type(&self) -> ServerType {
        self.spec
            .cassandra
            .as_ref()
            .and_then(|c| c.server_type)
            .unwrap_or_default()
    }

    /// Secret with the superuser credentials: the one named, else `<cluster>-superuser`.
    #[must_use]
    pub fn superuser_secret_name(&self) -> String {
        self.spec
            .cassandra
            .as_ref()
            .and_then(|c| c.superuser_secret_ref.as_ref())
            .and_then(|r| r.name().map(str::to_owned))
            .unwrap_or_else(|| names::default_superuser_secret(&self.cassandra_cluster_name()))
    }

    /// Who provides credentials Secrets (`internal` by default).
    #[must_use]
    pub fn secrets_provider(&self) -> SecretsProvider {
        self.spec.secrets_provider.unwrap_or_default()
    }
}

impl CassandraDatacenterSpec {
    /// The racks, or the single rack `default` when none is listed.
    #[must_use]
    pub fn racks_or_default(&self) -> Vec<Rack> {
        match self.racks.as_deref() {
            Some(racks) if !racks.is_empty() => racks.to_vec(),
            _ => vec![Rack {
                name: DEFAULT_RACK.to_owned(),
                ..Rack::default()
            }],
        }
    }

    /// `minReadySeconds` of the StatefulSets.
    #[must_use]
    pub fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(DEFAULT_MIN_READY_SECONDS)
    }

    /// Secret with the superuser credentials: the one named, else `<cluster>-superuser`.
    #[must_use]
    pub fn superuser_secret_name(&self) -> String {
        self.superuser_secret_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| names::default_superuser_secret(&self.cluster_name))
    }

    /// Whether the datacenter is stopped.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stopped.unwrap_or(false)
    }

    /// Whether several Cassandra pods may share a worker node.
    #[must_use]
    pub fn allows_multiple_nodes_per_worker(&self) -> bool {
        self.allow_multiple_nodes_per_worker.unwrap_or(false)
    }

    /// The mutual-TLS settings of the Management API, when it is not plain HTTP.
    #[must_use]
    pub fn management_api_tls(&self) -> Option<&ManagementApiAuthManual> {
        self.management_api_auth
            .as_ref()
            .and_then(|a| a.manual.as_ref())
    }

    /// Service account of the pods: `serviceAccountName`, else the deprecated `serviceAccount`,
    /// else `default`.
    #[must_use]
    pub fn effective_service_account(&self) -> &str {
        self.service_account_name
            .as_deref()
            .or(self.service_account.as_deref())
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }
}

/// What a task does after a failed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRestartPolicy {
    /// Fail the task.
    Never,
    /// Retry the pod's job.
    OnFailure,
}

impl CassandraTaskTemplate {
    /// Seconds a finished task is kept; 0 keeps it forever.
    #[must_use]
    pub fn ttl_seconds(&self) -> i32 {
        self.ttl_seconds_after_finished
            .unwrap_or(DEFAULT_TASK_TTL_SECONDS)
    }

    /// Whether other tasks may run at the same time (`Forbid` by default).
    #[must_use]
    pub fn allows_concurrency(&self) -> bool {
        self.concurrency_policy.as_deref() == Some("Allow")
    }

    /// Pods of one rack the job runs on at once.
    #[must_use]
    pub fn max_concurrent_pods(&self) -> i32 {
        self.max_concurrent_pods.unwrap_or(1)
    }

    /// What to do after a failed job (`Never` by default).
    #[must_use]
    pub fn restart_policy(&self) -> TaskRestartPolicy {
        if self.restart_policy.as_deref() == Some("OnFailure") {
            TaskRestartPolicy::OnFailure
        } else {
            TaskRestartPolicy::Never
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8ssandra::{CassandraClusterTemplate, K8ssandraClusterSpec};

    #[test]
    fn a_cluster_defaults_its_name_auth_type_and_superuser_secret() {
        let mut k8c = K8ssandraCluster::new("Demo_1", K8ssandraClusterSpec::default());
        assert_eq!(k8c.cassandra_cluster_name(), "Demo_1");
        assert!(k8c.auth_enabled());
        assert_eq!(k8c.server_type(), ServerType::Cassandra);
        assert_eq!(k8c.superuser_secret_name(), "demo-1-superuser");
        assert_eq!(k8c.secrets_provider(), SecretsProvider::Internal);

        k8c.spec.auth = Some(false);
        k8c.spec.cassandra = Some(CassandraClusterTemplate {
            cluster_name: Some("prod".into()),
            server_type: Some(ServerType::Hcd),
            ..CassandraClusterTemplate::default()
        });
        assert!(!k8c.auth_enabled());
        assert_eq!(k8c.cassandra_cluster_name(), "prod");
        assert_eq!(k8c.server_type(), ServerType::Hcd);
        assert_eq!(k8c.superuser_secret_name(), "prod-superuser");
    }

    #[test]
    fn a_datacenter_defaults_one_rack_and_upstream_values() {
        let spec = CassandraDatacenterSpec {
            cluster_name: "demo".into(),
            ..Default::default()
        };
        assert_eq!(spec.racks_or_default().len(), 1);
        assert_eq!(spec.racks_or_default()[0].name, "default");
        assert_eq!(spec.min_ready_seconds(), 5);
        assert_eq!(spec.superuser_secret_name(), "demo-superuser");
        assert_eq!(spec.effective_service_account(), "default");
        assert!(!spec.is_stopped());
        assert!(!spec.allows_multiple_nodes_per_worker());
        assert!(spec.management_api_tls().is_none());
    }

    #[test]
    fn token_count_depends_on_the_version() {
        assert_eq!(num_tokens(ServerType::Cassandra, "3.11.14"), 256);
        assert_eq!(num_tokens(ServerType::Cassandra, "4.0.1"), 16);
        assert_eq!(num_tokens(ServerType::Dse, "6.8.40"), 16);
    }

    #[test]
    fn tasks_default_like_upstream() {
        let template = CassandraTaskTemplate::default();
        assert_eq!(template.ttl_seconds(), 86_400);
        assert!(!template.allows_concurrency());
        assert_eq!(template.max_concurrent_pods(), 1);
        assert_eq!(template.restart_policy(), TaskRestartPolicy::Never);
    }
}
