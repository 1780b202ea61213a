//! Label and annotation keys users and tools read, with upstream's spelling, and the label sets the
//! operators put on what they create.

use std::collections::BTreeMap;

use crate::names::clean_label_value;

/// `app.kubernetes.io/name`.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/version`.
pub const VERSION: &str = "app.kubernetes.io/version";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/created-by`.
pub const CREATED_BY: &str = "app.kubernetes.io/created-by";
/// `app.kubernetes.io/part-of`.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/component`.
pub const COMPONENT: &str = "app.kubernetes.io/component";

/// Value of `managed-by` and `created-by` on what the data plane creates (upstream's, so tools match).
pub const DATA_PLANE_MANAGER: &str = "cass-operator";
/// Value of `managed-by` on what the control plane creates.
pub const CONTROL_PLANE_MANAGER: &str = "k8ssandra-operator";

/// Cassandra cluster a data-plane object belongs to.
pub const CLUSTER: &str = "cassandra.datastax.com/cluster";
/// Cassandra datacenter a data-plane object belongs to.
pub const DATACENTER: &str = "cassandra.datastax.com/datacenter";
/// Rack a data-plane object belongs to.
pub const RACK: &str = "cassandra.datastax.com/rack";
/// Set to `true` on the pods chosen as seeds.
pub const SEED_NODE: &str = "cassandra.datastax.com/seed-node";
/// A Cassandra pod's place in the node life cycle (see [`node_state`]).
pub const NODE_STATE: &str = "cassandra.datastax.com/node-state";
/// Set to `true` on the Service that metrics scrapers select.
pub const PROM_METRICS: &str = "cassandra.datastax.com/prom-metrics";
/// On a Secret a datacenter reads: `"true"` (the operator watches only Secrets labelled so).
pub const WATCHED: &str = "cassandra.datastax.com/watched";
/// Label Kubernetes uses to tie an EndpointSlice to its Service.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Values of the [`NODE_STATE`] label.
pub mod node_state {
    /// The pod is up, Cassandra is not started yet.
    pub const READY_TO_START: &str = "Ready-to-Start";
    /// The operator asked Cassandra to start and waits for it.
    pub const STARTING: &str = "Starting";
    /// Cassandra runs and the pod is ready.
    pub const STARTED: &str = "Started";
    /// Cassandra was started but the pod lost its readiness.
    pub const STARTED_NOT_READY: &str = "Started-not-Ready";
    /// The node is leaving the ring.
    pub const DECOMMISSIONING: &str = "Decommissioning";
}

/// Name of the K8ssandraCluster that owns an object, possibly in another Kubernetes cluster.
pub const K8SSANDRA_CLUSTER_NAME: &str = "k8ssandra.io/cluster-name";
/// Namespace of the K8ssandraCluster that owns an object.
pub const K8SSANDRA_CLUSTER_NAMESPACE: &str = "k8ssandra.io/cluster-namespace";
/// Marks objects deleted with their K8ssandraCluster (owner references cannot cross clusters).
pub const CLEANED_UP_BY: &str = "k8ssandra.io/cleaned-up-by";
/// Marks Secrets replicated by a K8ssandraCluster's ReplicatedSecret.
pub const REPLICATED_BY: &str = "k8ssandra.io/replicated-by";
/// Value of [`CLEANED_UP_BY`] and [`REPLICATED_BY`].
pub const K8SSANDRA_CLUSTER_CONTROLLER: &str = "k8ssandracluster-controller";
/// `<namespace>.<name>` of the source of a replicated Secret.
pub const REPLICATED_SECRET_NAME: &str = "k8ssandra.io/replicated-secret-name";
/// Datacenter of an object the control plane creates for one datacenter.
pub const K8SSANDRA_DATACENTER: &str = "k8ssandra.io/datacenter";
/// Name of the K8ssandraTask that created a CassandraTask.
pub const TASK_NAME: &str = "k8ssandra.io/task-name";
/// Namespace of the K8ssandraTask that created a CassandraTask.
pub const TASK_NAMESPACE: &str = "k8ssandra.io/task-namespace";
/// `active` or `completed`, on CassandraTasks.
pub const TASK_STATUS: &str = "control.k8ssandra.io/status";

/// Annotations that change what the operators do.
pub mod annotations {
    /// Hash of the desired object, to tell a real change from a re-apply.
    pub const RESOURCE_HASH: &str = "k8ssandra.io/resource-hash";
    /// Hash of what a CassandraDatacenter was built from (its datacenter of the K8ssandraCluster,
    /// merged): tells a change of the spec, which is applied, from a change of the operator,
    /// which waits for `k8ssandra.io/autoupdate-spec` (this operator's).
    pub const DATACENTER_SPEC_HASH: &str = "k8ssandra.io/datacenter-spec-hash";
    /// Hash of the desired object on what the data plane creates (upstream cass-operator's key).
    pub const DATA_PLANE_RESOURCE_HASH: &str = "cassandra.datastax.com/resource-hash";
    /// On a CassandraDatacenter: `"true"` builds the configuration with the k8ssandra-client image
    /// even where the version would use the legacy config builder.
    pub const USE_NEW_CONFIG_BUILDER: &str = "cassandra.datastax.com/use-new-config-builder";
    /// Hash of a ClientConfig's kubeconfig Secret.
    pub const SECRET_HASH: &str = "k8ssandra.io/secret-hash";
    /// Hash of a datacenter's per-node ConfigMap, on the pod template.
    pub const PER_NODE_CONFIG_HASH: &str = "k8ssandra.io/per-node-config-hash";
    /// Replication of the system keyspaces chosen when the cluster was created.
    pub const INITIAL_SYSTEM_REPLICATION: &str = "k8ssandra.io/initial-system-replication";
    /// Replication of user keyspaces in a datacenter being added.
    pub const DC_REPLICATION: &str = "k8ssandra.io/dc-replication";
    /// Datacenter being rebuilt.
    pub const REBUILD_DC: &str = "k8ssandra.io/rebuild-dc";
    /// On a K8ssandraCluster: let an operator upgrade change its datacenters (`once` or `always`).
    pub const K8SSANDRA_AUTOUPDATE_SPEC: &str = "k8ssandra.io/autoupdate-spec";
    /// Do not delete a replicated Secret's copies.
    pub const REPLICATED_ORPHAN: &str = "replicatedresource.k8ssandra.io/orphan";

    /// On a CassandraDatacenter: let an operator upgrade change its pods (`once` or `always`).
    pub const AUTOUPDATE_SPEC: &str = "cassandra.datastax.com/autoupdate-spec";
    /// Decommission every node before the datacenter is deleted.
    pub const DECOMMISSION_ON_DELETE: &str = "cassandra.datastax.com/decommission-on-delete";
    /// `"false"` keeps the volume claims when the datacenter is deleted.
    pub const DELETE_PVC: &str = "cassandra.datastax.com/delete-pvc";
    /// Do not add the datacenter finalizer.
    pub const NO_FINALIZER: &str = "cassandra.datastax.com/no-finalizer";
    /// Do not run cleanup after a scale-up.
    pub const NO_CLEANUP: &str = "cassandra.datastax.com/no-cleanup";
    /// Keep `ScalingUp` until the cleanup after a scale-up is done.
    pub const TRACK_CLEANUP_TASKS: &str = "cassandra.datastax.com/track-cleanup-tasks";
    /// Run the cleanup after a scale-up on a whole rack at once.
    pub const ENABLE_PARALLEL_CLEANUP_WITHIN_RACK: &str =
        "cassandra.datastax.com/enable-parallel-cleanup-within-rack";
    /// `"false"` starts already bootstrapped nodes one at a time too.
    pub const ALLOW_PARALLEL_STARTS: &str = "cassandra.datastax.com/allow-parallel-starts";
    /// `"true"` allows growing the data volumes.
    pub const ALLOW_STORAGE_CHANGES: &str = "cassandra.datastax.com/allow-storage-changes";
    /// Do not create a PodDisruptionBudget.
    pub const DISABLE_PDB_CREATION: &str = "cassandra.datastax.com/disable-pdb-creation";
    /// Upstream skips its webhook's update checks; here it has no effect (CEL rules cannot be
    /// bypassed), which an Event says.
    pub const BYPASS_WEBHOOK_VALIDATIONS: &str =
        "cassandra.datastax.com/bypass-webhook-validations";
    /// `"true"` skips creating the superuser and the roles named in `spec.users`.
    pub const SKIP_USER_CREATION: &str = "cassandra.datastax.com/skip-user-creation";
    /// On a Secret: the datacenters that read it, as a JSON list of `namespace/name`.
    pub const WATCHED_BY: &str = "cassandra.datastax.com/watched-by";
    /// Hash of the datacenter's configuration Secret.
    pub const CONFIG_HASH: &str = "cassandra.datastax.com/config-hash";
    /// On a Cassandra pod: `"true"` asks the datacenter controller to replace the node (delete its
    /// volume and pod, then start the new pod with `replace_ip`); set by a replacenode task.
    pub const REPLACE_NODE: &str = "k8ssandra.io/replace-node";
    /// On a pod template: when a restart was requested.
    pub const RESTARTED_AT: &str = "control.k8ssandra.io/restartedAt";
}

/// Labels naming the Cassandra cluster, as on every data-plane object.
#[must_use]
pub fn cluster_labels(cluster_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(CLUSTER.to_owned(), clean_label_value(cluster_name))])
}

/// Labels naming the Cassandra cluster and datacenter (the datacenter's object name, as upstream).
#[must_use]
pub fn datacenter_labels(cluster_name: &str, dc_object_name: &str) -> BTreeMap<String, String> {
    let mut labels = cluster_labels(cluster_name);
    labels.insert(DATACENTER.to_owned(), clean_label_value(dc_object_name));
    labels
}

/// Labels naming the Cassandra cluster, datacenter and rack.
#[must_use]
pub fn rack_labels(
    cluster_name: &str,
    dc_object_name: &str,
    rack_name: &str,
) -> BTreeMap<String, String> {
    let mut labels = datacenter_labels(cluster_name, dc_object_name);
    labels.insert(RACK.to_owned(), clean_label_value(rack_name));
    labels
}

/// The `app.kubernetes.io/*` labels of every object the data plane creates for a Cassandra cluster.
#[must_use]
pub fn data_plane_app_labels(cluster_name: &str, server_version: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), "cassandra".to_owned()),
        (
            INSTANCE.to_owned(),
            format!("cassandra-{}", clean_label_value(cluster_name)),
        ),
        (VERSION.to_owned(), clean_label_value(server_version)),
        (MANAGED_BY.to_owned(), DATA_PLANE_MANAGER.to_owned()),
        (CREATED_BY.to_owned(), DATA_PLANE_MANAGER.to_owned()),
    ])
}

/// Labels that point an object back to the K8ssandraCluster that owns it, in whatever cluster it is.
#[must_use]
pub fn owned_by_k8ssandra_cluster(name: &str, namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (K8SSANDRA_CLUSTER_NAME.to_owned(), name.to_owned()),
        (K8SSANDRA_CLUSTER_NAMESPACE.to_owned(), namespace.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rack_labels_carry_cluster_dc_and_rack() {
        let labels = rack_labels("Test Cluster", "dc1", "r1");
        assert_eq!(labels[CLUSTER], "TestCluster");
        assert_eq!(labels[DATACENTER], "dc1");
        assert_eq!(labels[RACK], "r1");
    }

    #[test]
    fn app_labels_match_upstream() {
        let labels = data_plane_app_labels("demo", "4.0.1");
        assert_eq!(labels[NAME], "cassandra");
        assert_eq!(labels[INSTANCE], "cassandra-demo");
        assert_eq!(labels[MANAGED_BY], "cass-operator");
        assert_eq!(labels[VERSION], "4.0.1");
    }

    #[test]
    fn data_plane_hash_key_is_upstreams() {
        assert_eq!(
            annotations::DATA_PLANE_RESOURCE_HASH,
            "cassandra.datastax.com/resource-hash"
        );
    }

    #[test]
    fn ownership_labels_name_the_cluster() {
        let labels = owned_by_k8ssandra_cluster("demo", "k8ssandra-operator");
        assert_eq!(labels[K8SSANDRA_CLUSTER_NAME], "demo");
        assert_eq!(labels[K8SSANDRA_CLUSTER_NAMESPACE], "k8ssandra-operator");
    }
}
