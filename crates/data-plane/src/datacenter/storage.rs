//! Storage: a change of the data volumes, judged against the claim templates of the live
//! StatefulSets (Kubernetes never lets those change in place).
//!
//! - A larger storage request, with `cassandra.datastax.com/allow-storage-changes: "true"` (as
//!   upstream) and a StorageClass that allows volume expansion, grows the volumes: every claim of
//!   the rack is expanded, then the StatefulSet is deleted without its pods (orphaned) and made
//!   anew with the new templates. The pods keep running and are adopted again.
//! - Without the annotation, a larger request is refused with a message that says how to proceed;
//!   the way back (the request the volumes have) is always admitted.
//! - A smaller request, and any other change of a claim template (access modes, volume mode, a
//!   template added or removed), is refused.
//!
//! A refusal is `Valid=False` and nothing is touched.

use std::time::Duration;

use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec},
        storage::v1::StorageClass,
    },
    apimachinery::pkg::api::resource::Quantity,
};
use k8ssandra_api::{
    cassandra::CassandraDatacenter,
    labels::{self, annotations},
    quantity,
};
use k8ssandra_reconcile::{
    apply::{apply, delete_if_present},
    events::Severity,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PropagationPolicy},
};
use serde_json::json;

use super::{Context, FIELD_MANAGER, observe::Observed, validate::Problem};
use crate::build::{self, BuildError, images::ImageConfig};

/// Why growing the volumes failed for a reason other than a refusal.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A builder failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The API server could not be asked.
    #[error("could not {what}: {source}")]
    Kube {
        /// What the pass tried.
        what: String,
        /// The API error.
        source: kube::Error,
    },
}

/// One claim template whose storage request grows.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimGrowth {
    /// Template name (`server-data`, or an additional volume).
    pub template: String,
    /// The new request.
    pub to: Quantity,
    /// The StorageClass of the template, when it names one.
    pub storage_class: Option<String>,
}

/// A rack whose volumes grow.
#[derive(Clone, Debug, PartialEq)]
pub struct RackGrowth {
    /// The rack's StatefulSet.
    pub statefulset: String,
    /// The templates that grow.
    pub claims: Vec<ClaimGrowth>,
}

/// The storage request of a claim spec, in bytes.
fn request_bytes(spec: &PersistentVolumeClaimSpec) -> Option<f64> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity::parse(&q.0))
}

fn request(spec: &PersistentVolumeClaimSpec) -> Option<&Quantity> {
    spec.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
}

fn volume_mode(spec: &PersistentVolumeClaimSpec) -> &str {
    spec.volume_mode.as_deref().unwrap_or("Filesystem")
}

fn claim_templates(sts: &StatefulSet) -> Vec<(String, PersistentVolumeClaimSpec)> {
    sts.spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
        .map(|c| (c.name_any(), c.spec.clone().unwrap_or_default()))
        .collect()
}

/// Judges the data volumes of the spec against the live StatefulSets: the racks whose volumes
/// grow (empty when nothing changed), or why the change is refused.
///
/// # Errors
/// The refusal, when a change cannot be made.
pub fn judge(
    dc: &CassandraDatacenter,
    live: &[StatefulSet],
    images: &ImageConfig,
) -> Result<Vec<RackGrowth>, Problem> {
    let refuse = |reason, message: String| Problem { reason, message };
    let allowed = dc
        .annotations()
        .get(annotations::ALLOW_STORAGE_CHANGES)
        .is_some_and(|v| v == "true");
    let mut growths = Vec::new();
    for plan in build::statefulset::rack_plan(dc) {
        let desired = build::statefulset::statefulset(dc, &plan.rack, 0, images)
            .map_err(|e| refuse("InvalidSpec", e.to_string()))?;
        let Some(current) = live.iter().find(|s| s.name_any() == desired.name_any()) else {
            continue;
        };
        let sts = current.name_any();
        let wanted = claim_templates(&desired);
        let have = claim_templates(current);
        let names = |list: &[(String, PersistentVolumeClaimSpec)]| {
            list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        };
        let (mut wanted_names, mut have_names) = (names(&wanted), names(&have));
        wanted_names.sort();
        have_names.sort();
        if wanted_names != have_names {
            return Err(refuse(
                "StorageChangeUnsupported",
                format!(
                    "StatefulSet {sts} has volume claim templates [{}] and the spec asks for [{}]: \
                     claim templates cannot be added to or removed from a running rack",
                    have_names.join(", "),
                    wanted_names.join(", ")
                ),
            ));
        }
        let mut claims = Vec::new();
        for (name, want) in &wanted {
            let Some((_, has)) = have.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let modes = |s: &PersistentVolumeClaimSpec| {
                let mut m = s.access_modes.clone().unwrap_or_default();
                m.sort();
                m
            };
            if modes(want) != modes(has) || volume_mode(want) != volume_mode(has) {
                return Err(refuse(
                    "StorageChangeUnsupported",
                    format!(
                        "the access modes or volume mode of claim template {name} of StatefulSet \
                         {sts} cannot change; only the storage request can grow"
                    ),
                ));
            }
            let (Some(want_bytes), Some(has_bytes)) = (request_bytes(want), request_bytes(has))
            else {
                continue;
            };
            let show = |s: &PersistentVolumeClaimSpec| request(s).map(|q| q.0.clone());
            let (want_text, has_text) = (
                show(want).unwrap_or_default(),
                show(has).unwrap_or_default(),
            );
            if want_bytes < has_bytes {
                return Err(refuse(
                    "StorageShrinkRefused",
                    format!(
                        "claim template {name} of StatefulSet {sts} asks for {want_text}, less \
                         than the {has_text} its volumes have: volumes cannot shrink; set it back \
                         to {has_text} or more"
                    ),
                ));
            }
            if want_bytes > has_bytes {
                if !allowed {
                    return Err(refuse(
                        "StorageChangeNotAllowed",
                        format!(
                            "claim template {name} of StatefulSet {sts} asks for {want_text}, its \
                             volumes have {has_text}: growing volumes needs the annotation {}=true \
                             (and a StorageClass that allows volume expansion); or set the request \
                             back to {has_text}",
                            annotations::ALLOW_STORAGE_CHANGES
                        ),
                    ));
                }
                claims.push(ClaimGrowth {
                    template: name.clone(),
                    to: request(want).cloned().unwrap_or_default(),
                    storage_class: want.storage_class_name.clone(),
                });
            }
        }
        if !claims.is_empty() {
            growths.push(RackGrowth {
                statefulset: sts,
                claims,
            });
        }
    }
    Ok(growths)
}

/// Grows the volumes of `growths`: checks that every StorageClass allows expansion, expands the
/// claims, then recreates each StatefulSet with the new templates, leaving its pods running.
/// Returns the refusal to report, if any.
///
/// # Errors
/// When the API server cannot be reached.
pub async fn grow(
    ctx: &Context,
    dc: &CassandraDatacenter,
    observed: &Observed,
    growths: &[RackGrowth],
) -> Result<Option<Problem>, StorageError> {
    let namespace = dc.namespace().unwrap_or_default();
    let claims_api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace);
    let sts_api = Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace);
    let classes = Api::<StorageClass>::all(ctx.client.clone());
    for growth in growths {
        for claim in &growth.claims {
            let prefix = format!("{}-{}-", claim.template, growth.statefulset);
            let live: Vec<&PersistentVolumeClaim> = observed
                .claims
                .iter()
                .filter(|c| c.name_any().starts_with(&prefix))
                .collect();
            let class = claim.storage_class.clone().or_else(|| {
                live.iter()
                    .find_map(|c| c.spec.as_ref()?.storage_class_name.clone())
            });
            if let Some(problem) = expansion_refused(&classes, class.as_deref()).await? {
                return Ok(Some(problem));
            }
            for pvc in live {
                let small = pvc
                    .spec
                    .as_ref()
                    .and_then(request_bytes)
                    .is_none_or(|b| Some(b) < quantity::parse(&claim.to.0));
                if !small {
                    continue;
                }
                let patch =
                    json!({ "spec": { "resources": { "requests": { "storage": claim.to } } } });
                match claims_api
                    .patch(
                        &pvc.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                {
                    Ok(grown) => ctx.caches.claims.wrote(&grown.metadata),
                    Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
                        return Ok(Some(Problem {
                            reason: "StorageExpansionRefused",
                            message: format!(
                                "the API server refuses to expand volume claim {}: {}",
                                pvc.name_any(),
                                status.message
                            ),
                        }));
                    }
                    Err(source) => {
                        return Err(StorageError::Kube {
                            what: format!("expand volume claim {}", pvc.name_any()),
                            source,
                        });
                    }
                }
            }
        }
        recreate(ctx, dc, &sts_api, observed, &growth.statefulset).await?;
    }
    Ok(None)
}

/// Why the StorageClass `class` cannot expand volumes, if it cannot.
async fn expansion_refused(
    classes: &Api<StorageClass>,
    class: Option<&str>,
) -> Result<Option<Problem>, StorageError> {
    let Some(class) = class else {
        return Ok(Some(Problem {
            reason: "StorageExpansionUnsupported",
            message: "the volumes name no StorageClass, so they cannot be expanded".to_owned(),
        }));
    };
    let found = classes
        .get_opt(class)
        .await
        .map_err(|source| StorageError::Kube {
            what: format!("read StorageClass {class}"),
            source,
        })?;
    let expands = found
        .as_ref()
        .and_then(|c| c.allow_volume_expansion)
        .unwrap_or(false);
    if expands {
        return Ok(None);
    }
    Ok(Some(Problem {
        reason: "StorageExpansionUnsupported",
        message: match found {
            Some(_) => format!(
                "StorageClass {class} does not allow volume expansion (allowVolumeExpansion), so \
                 the volumes cannot grow; set the storage request back"
            ),
            None => format!("StorageClass {class} does not exist, so the volumes cannot grow"),
        },
    }))
}

/// Deletes the StatefulSet without its pods, waits until it is gone, and makes it anew with the
/// spec's claim templates and its replica count.
async fn recreate(
    ctx: &Context,
    dc: &CassandraDatacenter,
    api: &Api<StatefulSet>,
    observed: &Observed,
    name: &str,
) -> Result<(), StorageError> {
    let kube_error = |what: String| move |source| StorageError::Kube { what, source };
    let Some(live) = observed.statefulsets.iter().find(|s| s.name_any() == name) else {
        return Ok(());
    };
    let replicas = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let rack = live.labels().get(labels::RACK).cloned().unwrap_or_default();
    let rack = dc
        .spec
        .racks_or_default()
        .into_iter()
        .find(|r| k8ssandra_api::names::clean_label_value(&r.name) == rack)
        .ok_or(BuildError::UnknownRack(rack))?;
    let desired = build::statefulset::statefulset(dc, &rack, replicas, &ctx.images)?;
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    delete_if_present(api, name, &orphan)
        .await
        .map_err(kube_error(format!("delete StatefulSet {name}")))?;
    // The garbage collector first takes the pods off the StatefulSet; only then is it gone.
    for _ in 0..60 {
        let still = api
            .get_metadata_opt(name)
            .await
            .map_err(kube_error(format!("read StatefulSet {name}")))?;
        if still.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let created = apply(api, FIELD_MANAGER, &desired)
        .await
        .map_err(kube_error(format!("create StatefulSet {name}")))?;
    ctx.written.record(&created);
    ctx.caches.statefulsets.wrote(&created.metadata);
    ctx.events
        .publish(
            &dc.object_ref(&()),
            Severity::Normal,
            "ExpandedVolumes",
            "Storage",
            format!(
                "expanded the volumes of StatefulSet {name} and made it anew with the new claim \
                 templates; its pods kept running"
            ),
        )
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use k8s_openapi::api::core::v1::VolumeResourceRequirements;
    use k8ssandra_api::cassandra::{CassandraDatacenterSpec, Rack};

    fn dc(storage: &str) -> CassandraDatacenter {
        let mut dc = CassandraDatacenter::new(
            "dc1",
            CassandraDatacenterSpec {
                cluster_name: "demo".into(),
                server_version: "4.1.5".into(),
                size: 3,
                racks: Some(vec![Rack {
                    name: "r1".into(),
                    ..Rack::default()
                }]),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("cass".into());
        dc.metadata.uid = Some("uid".into());
        dc.spec.storage_config.cassandra_data_volume_claim_spec = Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: Some("standard".into()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(storage.into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        });
        dc
    }

    fn live(storage: &str) -> Vec<StatefulSet> {
        build::statefulset::desired_statefulsets(&dc(storage), &ImageConfig::default()).unwrap()
    }

    #[test]
    fn the_same_request_changes_nothing_however_it_is_written() {
        let images = ImageConfig::default();
        assert_eq!(judge(&dc("1Gi"), &live("1Gi"), &images), Ok(vec![]));
        assert_eq!(judge(&dc("1024Mi"), &live("1Gi"), &images), Ok(vec![]));
        // A rack with no StatefulSet yet has nothing to judge.
        assert_eq!(judge(&dc("5Gi"), &[], &images), Ok(vec![]));
    }

    #[test]
    fn a_grow_needs_the_annotation_and_a_shrink_is_refused() {
        let images = ImageConfig::default();
        let refused = judge(&dc("2Gi"), &live("1Gi"), &images).unwrap_err();
        assert_eq!(refused.reason, "StorageChangeNotAllowed");
        assert!(refused.message.contains("2Gi"), "{}", refused.message);
        assert!(
            refused
                .message
                .contains("cassandra.datastax.com/allow-storage-changes=true"),
            "{}",
            refused.message
        );
        let shrink = judge(&dc("1Gi"), &live("2Gi"), &images).unwrap_err();
        assert_eq!(shrink.reason, "StorageShrinkRefused");

        let mut allowed = dc("2Gi");
        allowed.metadata.annotations = Some(BTreeMap::from([(
            annotations::ALLOW_STORAGE_CHANGES.to_owned(),
            "true".to_owned(),
        )]));
        let growth = judge(&allowed, &live("1Gi"), &images).unwrap();
        assert_eq!(
            growth,
            vec![RackGrowth {
                statefulset: "demo-dc1-r1-sts".into(),
                claims: vec![ClaimGrowth {
                    template: "server-data".into(),
                    to: Quantity("2Gi".into()),
                    storage_class: Some("standard".into()),
                }],
            }]
        );
    }

    #[test]
    fn other_claim_changes_are_refused() {
        let images = ImageConfig::default();
        let mut other_mode = dc("1Gi");
        if let Some(spec) = other_mode
            .spec
            .storage_config
            .cassandra_data_volume_claim_spec
            .as_mut()
        {
            spec.access_modes = Some(vec!["ReadWriteMany".into()]);
        }
        let refused = judge(&other_mode, &live("1Gi"), &images).unwrap_err();
        assert_eq!(refused.reason, "StorageChangeUnsupported");
    }

    #[test]
    fn claim_templates_do_not_change_with_the_version_or_labels() {
        let mut upgraded = dc("1Gi");
        upgraded.spec.server_version = "4.1.6".into();
        upgraded.spec.additional_labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        upgraded.spec.additional_annotations = Some(BTreeMap::from([("note".into(), "b".into())]));
        let images = ImageConfig::default();
        let before = live("1Gi");
        let after = build::statefulset::desired_statefulsets(&upgraded, &images).unwrap();
        let claims = |s: &StatefulSet| s.spec.as_ref().unwrap().volume_claim_templates.clone();
        assert_eq!(claims(&before[0]), claims(&after[0]));
        assert_eq!(judge(&upgraded, &before, &images), Ok(vec![]));
    }
}
