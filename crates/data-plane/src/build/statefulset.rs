//! One StatefulSet per rack, `<cluster>-<dc>-<rack>-sts`: the all-pods Service as its service,
//! `Parallel` pod management (the operator, not Kubernetes, serialises the Cassandra starts),
//! the `server-data` claim template from `storageConfig`, the rack labels as selector.
//!
//! The replica count is an input: the controller decides it (scale up and decommission go one
//! node at a time). [`rack_plan`] gives the desired split of nodes and seeds over the racks.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{
            RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec,
            StatefulSetUpdateStrategy,
        },
        core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use k8ssandra_api::{
    cassandra::{CassandraDatacenter, Rack},
    names,
};

use super::{
    BuildError, Result, cluster_name, fixed_app_labels, hash, images::ImageConfig, merged,
    non_empty, operator_annotations, operator_labels, owned_meta, pod_template, rack_labels,
};

/// One rack's share of the datacenter.
#[derive(Clone, Debug, PartialEq)]
pub struct RackPlan {
    /// The rack.
    pub rack: Rack,
    /// Nodes the rack should run.
    pub nodes: u32,
    /// Seeds the rack should label.
    pub seeds: u32,
}

/// How many seeds the datacenter wants (upstream's rule): three, or every node when there are
/// fewer, or one per rack when there are more than three racks.
#[must_use]
pub fn seed_count(nodes: u32, racks: usize) -> u32 {
    let racks = u32::try_from(racks).unwrap_or(u32::MAX);
    if nodes < 3 {
        nodes
    } else if racks > 3 {
        racks
    } else {
        3
    }
}

/// The desired nodes and seeds of every rack, in spec order: `size` (zero when stopped) and the
/// seed count split like upstream (evenly, the first racks taking the remainder).
#[must_use]
pub fn rack_plan(dc: &CassandraDatacenter) -> Vec<RackPlan> {
    let racks = dc.spec.racks_or_default();
    let nodes = if dc.spec.is_stopped() {
        0
    } else {
        u32::try_from(dc.spec.size).unwrap_or(0)
    };
    let node_split = names::split_racks(nodes, racks.len());
    let seed_split = names::split_racks(seed_count(nodes, racks.len()), racks.len());
    racks
        .into_iter()
        .zip(node_split)
        .zip(seed_split)
        .map(|((rack, nodes), seeds)| RackPlan { rack, nodes, seeds })
        .collect()
}

/// The rack named `name`, from the spec (or the default rack).
///
/// # Errors
/// When the datacenter has no such rack.
pub fn find_rack(dc: &CassandraDatacenter, name: &str) -> Result<Rack> {
    dc.spec
        .racks_or_default()
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| BuildError::UnknownRack(name.to_owned()))
}

/// A claim template. Kubernetes never lets a StatefulSet's claim templates change, so they carry
/// only what no spec change alters: the rack's labels and the operator's fixed app labels (no
/// version, no `additionalLabels`, no annotations).
fn claim_template(
    name: &str,
    labels: &BTreeMap<String, String>,
    spec: PersistentVolumeClaimSpec,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: non_empty(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Puts the claim templates of the `live` StatefulSet into `desired`, as an update must send
/// them (they are immutable; a change of the data volumes is the storage step's).
pub fn keep_live_claims(desired: &mut StatefulSet, live: &StatefulSet) {
    let live_claims = live
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone());
    if let Some(spec) = desired.spec.as_mut() {
        spec.volume_claim_templates = live_claims;
    }
}

/// The update strategy: a partition for canary upgrades, `maxUnavailable` when set; `None`
/// (Kubernetes' default rolling update) otherwise.
fn update_strategy(dc: &CassandraDatacenter, replicas: i32) -> Option<StatefulSetUpdateStrategy> {
    let canary = dc.spec.canary_upgrade.unwrap_or(false);
    if !canary && dc.spec.max_unavailable.is_none() {
        return None;
    }
    let partition = canary.then(|| {
        let count = dc.spec.canary_upgrade_count.unwrap_or(0);
        if count == 0 || count > replicas {
            replicas
        } else {
            replicas - count
        }
    });
    Some(StatefulSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateStatefulSetStrategy {
            partition,
            max_unavailable: dc.spec.max_unavailable.clone(),
        }),
    })
}

/// The StatefulSet of `rack` with `replicas` pods, hash-stamped (replicas left out of the hash).
///
/// # Errors
/// When the datacenter lacks name, uid or data volume claim, or its pod template cannot be built.
pub fn statefulset(
    dc: &CassandraDatacenter,
    rack: &Rack,
    replicas: i32,
    images: &ImageConfig,
) -> Result<StatefulSet> {
    let data_claim = dc
        .spec
        .storage_config
        .cassandra_data_volume_claim_spec
        .clone()
        .ok_or(BuildError::MissingDataVolumeClaim)?;
    let selector = rack_labels(dc, &rack.name)?;
    let labels = merged(selector.clone(), operator_labels(dc));
    let annotations = operator_annotations(dc);
    let claim_labels = merged(selector.clone(), fixed_app_labels(dc));

    let mut claims = vec![claim_template(
        pod_template::DATA_VOLUME,
        &claim_labels,
        data_claim,
    )];
    for additional in dc.spec.storage_config.additional_volumes.iter().flatten() {
        if let Some(spec) = &additional.pvc_spec {
            claims.push(claim_template(
                &additional.name,
                &claim_labels,
                spec.clone(),
            ));
        }
    }

    let name = names::rack_statefulset(cluster_name(dc), &dc.label_resource_name(), &rack.name);
    let mut sts = StatefulSet {
        metadata: owned_meta(dc, name, labels, annotations)?,
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            service_name: Some(names::all_pods_service(
                cluster_name(dc),
                &dc.label_resource_name(),
            )),
            pod_management_policy: Some("Parallel".into()),
            min_ready_seconds: Some(dc.spec.min_ready_seconds()),
            template: pod_template::pod_template(dc, rack, images)?,
            volume_claim_templates: Some(claims),
            update_strategy: update_strategy(dc, replicas),
            ..StatefulSetSpec::default()
        }),
        status: None,
    };
    hash::stamp(&mut sts, hash::STATEFULSET_IGNORED)?;
    Ok(sts)
}

/// The StatefulSets of every rack with the replicas of [`rack_plan`] (what a new datacenter
/// starts with).
///
/// # Errors
/// As [`statefulset`].
pub fn desired_statefulsets(
    dc: &CassandraDatacenter,
    images: &ImageConfig,
) -> Result<Vec<StatefulSet>> {
    rack_plan(dc)
        .iter()
        .map(|plan| {
            statefulset(
                dc,
                &plan.rack,
                i32::try_from(plan.nodes).unwrap_or(i32::MAX),
                images,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;

    fn dc(size: i32, racks: &[&str]) -> CassandraDatacenter {
        CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                size,
                racks: Some(
                    racks
                        .iter()
                        .map(|r| Rack {
                            name: (*r).into(),
                            ..Rack::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        )
    }

    fn split(plan: &[RackPlan]) -> Vec<(u32, u32)> {
        plan.iter().map(|p| (p.nodes, p.seeds)).collect()
    }

    #[test]
    fn seeds_are_three_or_all_nodes_or_one_per_rack() {
        assert_eq!(seed_count(1, 1), 1);
        assert_eq!(seed_count(2, 3), 2);
        assert_eq!(seed_count(3, 1), 3);
        assert_eq!(seed_count(9, 3), 3);
        assert_eq!(seed_count(8, 4), 4);
        assert_eq!(seed_count(2, 5), 2);
    }

    #[test]
    fn racks_get_nodes_and_seeds_like_upstream() {
        assert_eq!(
            split(&rack_plan(&dc(3, &["r1", "r2", "r3"]))),
            vec![(1, 1); 3]
        );
        assert_eq!(
            split(&rack_plan(&dc(7, &["r1", "r2", "r3"]))),
            vec![(3, 1), (2, 1), (2, 1)]
        );
        assert_eq!(split(&rack_plan(&dc(6, &["r1"]))), vec![(6, 3)]);
        assert_eq!(split(&rack_plan(&dc(5, &["a", "b"]))), vec![(3, 2), (2, 1)]);
        assert_eq!(
            split(&rack_plan(&dc(8, &["a", "b", "c", "d"]))),
            vec![(2, 1); 4]
        );
        let mut stopped = dc(3, &["r1", "r2", "r3"]);
        stopped.spec.stopped = Some(true);
        assert_eq!(split(&rack_plan(&stopped)), vec![(0, 0); 3]);
        let mut no_racks = dc(2, &[]);
        no_racks.spec.racks = None;
        let plan = rack_plan(&no_racks);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].rack.name, "default");
        assert_eq!((plan[0].nodes, plan[0].seeds), (2, 2));
    }

    #[test]
    fn canary_partitions_leave_the_old_pods() {
        let mut dc = dc(3, &["r1"]);
        assert_eq!(update_strategy(&dc, 3), None);
        dc.spec.canary_upgrade = Some(true);
        dc.spec.canary_upgrade_count = Some(1);
        let strategy = update_strategy(&dc, 3).unwrap();
        assert_eq!(strategy.rolling_update.unwrap().partition, Some(2));
        dc.spec.canary_upgrade_count = Some(0);
        let strategy = update_strategy(&dc, 3).unwrap();
        assert_eq!(strategy.rolling_update.unwrap().partition, Some(3));
    }
}
