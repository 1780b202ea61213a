//! Seeds: when the datacenter's seed set changes (a pod labelled or unlabelled
//! `cassandra.datastax.com/seed-node`, a seed pod's address, `spec.additionalSeeds`, or the
//! seeds of other datacenters that the control plane lists behind the additional-seed Service), every
//! started node is asked to read its seed list again (`POST /api/v0/ops/seeds/reload`), as upstream
//! does, since Cassandra resolves the seed Services only at start or on reload.
//!
//! The seed set a datacenter's nodes last reloaded is remembered in memory; after a restart of
//! the operator the running nodes reload once more, so that a crash between a label and the
//! reload cannot leave them on a stale list.

use k8s_openapi::api::core::v1::Pod;
use k8ssandra_api::{cassandra::CassandraDatacenter, labels};
use k8ssandra_mgmt_api::ClientSettings;
use kube::ResourceExt;

use super::{
    Context, done,
    observe::{Observed, pod_ip, started_nodes},
    plan::{Action, Plan},
};

/// Why the seeds could not be reloaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedsError {
    /// A node refused the reload; the pass is retried and reloads every node again.
    #[error("could not reload the seeds of {pod}: {source}")]
    Reload {
        /// The pod asked.
        pod: String,
        /// The Management API error.
        source: k8ssandra_mgmt_api::Error,
    },
}

/// The seed set as the nodes resolve it: each seed pod with its address, then the additional
/// seeds of the spec, then those others list behind the additional-seed Service, sorted.
#[must_use]
pub fn seed_set(dc: &CassandraDatacenter, observed: &Observed) -> Vec<String> {
    let mut seeds: Vec<String> = observed
        .pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && is_seed(p))
        .map(|p| {
            let ip = pod_ip(p).map(|ip| ip.to_string()).unwrap_or_default();
            format!("{}={ip}", p.name_any())
        })
        .collect();
    seeds.sort();
    let mut additional = dc.spec.additional_seeds.clone().unwrap_or_default();
    additional.sort();
    seeds.extend(additional.into_iter().map(|s| format!("additional={s}")));
    seeds.extend(
        observed
            .external_seeds
            .iter()
            .map(|s| format!("external={s}")),
    );
    seeds
}

fn is_seed(pod: &Pod) -> bool {
    pod.labels()
        .get(labels::SEED_NODE)
        .is_some_and(|v| v == "true")
}

/// Whether this pass changes seed labels: the observed set is then not the one to reload with,
/// and the label events start the pass that is.
fn relabels(plan: &Plan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::LabelSeed { .. }))
}

/// Reloads the seeds on every started node when the seed set changed since they last did.
///
/// # Errors
/// When a node refuses; nothing is recorded, so the next pass asks every node again.
pub async fn reload_seeds(
    ctx: &Context,
    mgmt: &ClientSettings,
    dc: &CassandraDatacenter,
    observed: &Observed,
    plan: &Plan,
) -> Result<(), SeedsError> {
    if relabels(plan) {
        return Ok(());
    }
    let uid = dc.uid().unwrap_or_default();
    let set = seed_set(dc, observed);
    let print = done::fingerprint(set.iter().map(String::as_bytes));
    if ctx.seeds.is_current(&uid, &print) {
        return Ok(());
    }
    for (pod, ip) in started_nodes(observed) {
        let seeds = mgmt
            .client(&pod, ip)
            .reload_seeds()
            .await
            .map_err(|source| SeedsError::Reload {
                pod: pod.clone(),
                source,
            })?;
        tracing::debug!(datacenter = %dc.name_any(), %pod, ?seeds, "seeds reloaded");
    }
    // With no node running yet there is nothing to tell: nodes read the seeds when they start.
    ctx.seeds.record(&uid, print);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8ssandra_api::cassandra::CassandraDatacenterSpec;
    use std::collections::BTreeMap;

    fn pod(name: &str, ip: &str, seed: bool, state: &str) -> Pod {
        let mut labels = BTreeMap::from([(labels::NODE_STATE.to_owned(), state.to_owned())]);
        if seed {
            labels.insert(labels::SEED_NODE.to_owned(), "true".to_owned());
        }
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn dc(additional: &[&str]) -> CassandraDatacenter {
        CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                server_version: "4.1.5".into(),
                additional_seeds: Some(additional.iter().map(|s| (*s).to_owned()).collect()),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_seed_set_follows_labels_addresses_and_additional_seeds() {
        let observed = |pods| Observed {
            pods,
            ..Observed::default()
        };
        let one = observed(vec![
            pod("b", "10.0.0.2", false, "Started"),
            pod("a", "10.0.0.1", true, "Started"),
        ]);
        assert_eq!(seed_set(&dc(&[]), &one), ["a=10.0.0.1"]);
        assert_eq!(
            seed_set(&dc(&["x.example", "10.9.9.9"]), &one),
            ["a=10.0.0.1", "additional=10.9.9.9", "additional=x.example"]
        );
        let moved = observed(vec![pod("a", "10.0.0.7", true, "Started")]);
        assert_ne!(seed_set(&dc(&[]), &one), seed_set(&dc(&[]), &moved));
        let other_dc = Observed {
            external_seeds: vec!["10.1.0.1".into()],
            ..one.clone()
        };
        assert_eq!(
            seed_set(&dc(&[]), &other_dc),
            ["a=10.0.0.1", "external=10.1.0.1"]
        );
    }

    #[test]
    fn only_started_ready_pods_are_asked() {
        let observed = Observed {
            pods: vec![
                pod("a", "10.0.0.1", true, "Started"),
                pod("b", "10.0.0.2", false, "Starting"),
                pod("c", "10.0.0.3", false, "Ready-to-Start"),
            ],
            ..Observed::default()
        };
        let names: Vec<String> = started_nodes(&observed)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(names, ["a"]);
    }
}
