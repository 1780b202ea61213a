//! The datacenter's PodDisruptionBudget, `<dc>-pdb`: voluntary disruptions (node drains) may take
//! one Cassandra pod at a time, or `maxUnavailable` when it is set.

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use k8ssandra_api::{cassandra::CassandraDatacenter, names};

use super::{
    Result, dc_labels, hash, merged, operator_annotations, operator_labels, owned_meta,
    statefulset::rack_plan,
};

/// How many pods may be down at once: `maxUnavailable` as a number, or as a percentage of the
/// largest rack (rounded down), else one.
#[must_use]
pub fn max_unavailable(dc: &CassandraDatacenter) -> i32 {
    match &dc.spec.max_unavailable {
        Some(IntOrString::Int(n)) => (*n).max(0),
        Some(IntOrString::String(s)) => {
            let largest = rack_plan(dc).iter().map(|p| p.nodes).max().unwrap_or(0);
            s.strip_suffix('%')
                .and_then(|p| p.trim().parse::<u32>().ok())
                .map_or(1, |percent| {
                    i32::try_from(largest.saturating_mul(percent) / 100).unwrap_or(i32::MAX)
                })
        }
        None => 1,
    }
}

/// `minAvailable` of the budget: `size` minus [`max_unavailable`], never below zero.
#[must_use]
pub fn min_available(dc: &CassandraDatacenter) -> i32 {
    (dc.spec.size - max_unavailable(dc)).max(0)
}

/// The PodDisruptionBudget over the datacenter's pods.
///
/// # Errors
/// When the datacenter lacks name or uid.
pub fn pod_disruption_budget(dc: &CassandraDatacenter) -> Result<PodDisruptionBudget> {
    let selector = dc_labels(dc)?;
    let labels = merged(selector.clone(), operator_labels(dc));
    let mut pdb = PodDisruptionBudget {
        metadata: owned_meta(
            dc,
            names::pod_disruption_budget(&dc.label_resource_name()),
            labels,
            operator_annotations(dc),
        )?,
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available(dc))),
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    };
    hash::stamp(&mut pdb, &[])?;
    Ok(pdb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8ssandra_api::cassandra::{CassandraDatacenterSpec, Rack};

    fn dc(size: i32, racks: usize, max: Option<IntOrString>) -> CassandraDatacenter {
        CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                size,
                racks: Some(
                    (0..racks)
                        .map(|i| Rack {
                            name: format!("r{i}"),
                            ..Rack::default()
                        })
                        .collect(),
                ),
                max_unavailable: max,
                ..Default::default()
            },
        )
    }

    #[test]
    fn one_pod_may_go_by_default() {
        assert_eq!(min_available(&dc(3, 3, None)), 2);
        assert_eq!(min_available(&dc(1, 1, None)), 0);
    }

    #[test]
    fn max_unavailable_relaxes_the_budget() {
        assert_eq!(min_available(&dc(6, 3, Some(IntOrString::Int(2)))), 4);
        assert_eq!(min_available(&dc(2, 1, Some(IntOrString::Int(5)))), 0);
        // 50% of the largest rack (3 of 7 nodes over 3 racks) rounds down to 1.
        assert_eq!(
            min_available(&dc(7, 3, Some(IntOrString::String("50%".into())))),
            6
        );
        assert_eq!(
            min_available(&dc(6, 1, Some(IntOrString::String("50%".into())))),
            3
        );
    }
}
