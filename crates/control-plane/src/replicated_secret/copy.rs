//! A replicated copy of a Secret (pure), and which Secrets a ReplicatedSecret selects.
//!
//! A copy has the source's data and type, and its labels and annotations except those of
//! cass-operator (`cassandra.datastax.com/*`, which the data plane of the target cluster sets for
//! itself), with the target's `dropLabels` removed and `addLabels` added, and
//! `k8ssandra.io/replicated-secret-name: <namespace>.<name>` naming the source (upstream's). It
//! carries no owner reference (owners cannot cross namespaces or clusters) and the hash of what it
//! was copied from, so that an unchanged source is never copied again.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta},
};
use k8ssandra_api::{
    labels::{self, annotations},
    names,
    replication::{ReplicatedSecret, ReplicationTarget},
};
use k8ssandra_reconcile::hash;
use kube::ResourceExt;

/// Prefix of the labels and annotations a copy does not take.
const DATA_PLANE_PREFIX: &str = "cassandra.datastax.com/";
/// Annotations that describe the source object, not its content.
const SOURCE_ONLY_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The value of `k8ssandra.io/replicated-secret-name` on the copies of `source`.
#[must_use]
pub fn source_label(source: &Secret) -> String {
    names::clean_label_value(&format!(
        "{}.{}",
        source.namespace().unwrap_or_default(),
        source.name_any()
    ))
}

/// The copy of `source` for `target`, in `namespace`.
///
/// # Errors
/// When the copy cannot be rendered for its hash (a bug).
pub fn copy(
    source: &Secret,
    target: &ReplicationTarget,
    namespace: &str,
) -> Result<Secret, serde_json::Error> {
    let kept = |map: Option<&BTreeMap<String, String>>| -> BTreeMap<String, String> {
        map.into_iter()
            .flatten()
            .filter(|(key, _)| !key.starts_with(DATA_PLANE_PREFIX))
            .filter(|(key, _)| !SOURCE_ONLY_ANNOTATIONS.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut copy_labels = kept(source.metadata.labels.as_ref());
    for dropped in target.drop_labels.iter().flatten() {
        copy_labels.remove(dropped);
    }
    copy_labels.extend(target.add_labels.clone().unwrap_or_default());
    copy_labels.insert(
        labels::REPLICATED_SECRET_NAME.to_owned(),
        source_label(source),
    );
    let mut copy_annotations = kept(source.metadata.annotations.as_ref());
    copy_annotations.remove(annotations::RESOURCE_HASH);
    let mut copy = Secret {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}{}",
                target.target_prefix.as_deref().unwrap_or_default(),
                source.name_any()
            )),
            namespace: Some(namespace.to_owned()),
            labels: Some(copy_labels),
            annotations: (!copy_annotations.is_empty()).then_some(copy_annotations),
            ..ObjectMeta::default()
        },
        data: source.data.clone(),
        string_data: source.string_data.clone(),
        type_: source.type_.clone(),
        immutable: None,
    };
    hash::stamp(&mut copy, annotations::RESOURCE_HASH, &[])?;
    Ok(copy)
}

/// Whether `secret` is one `replicated` selects: by `nameSelector`, else by `selector` (every
/// Secret of its namespace when both are unset), never one of its own copies.
#[must_use]
pub fn selects(replicated: &ReplicatedSecret, secret: &Secret) -> bool {
    if secret.namespace() != replicated.namespace()
        || secret.labels().contains_key(labels::REPLICATED_SECRET_NAME)
    {
        return false;
    }
    if let Some(name) = replicated
        .spec
        .name_selector
        .as_ref()
        .and_then(|n| n.name())
    {
        return secret.name_any() == name;
    }
    replicated
        .spec
        .selector
        .as_ref()
        .is_none_or(|selector| matches(selector, secret.labels()))
}

/// Whether `labels` satisfy a label selector (match labels and match expressions).
#[must_use]
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let requirement = |r: &LabelSelectorRequirement| {
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" => labels.get(&r.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&r.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&r.key),
            "DoesNotExist" => !labels.contains_key(&r.key),
            _ => false,
        }
    };
    by_label && selector.match_expressions.iter().flatten().all(requirement)
}

/// The label selector as a watch or list takes it, when it has one the API server can apply.
#[must_use]
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for r in selector.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default().join(",");
        parts.push(match r.operator.as_str() {
            "In" => format!("{} in ({values})", r.key),
            "NotIn" => format!("{} notin ({values})", r.key),
            "Exists" => r.key.clone(),
            _ => format!("!{}", r.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn source() -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("demo-superuser".into()),
                namespace: Some("ns".into()),
                labels: Some(BTreeMap::from([
                    ("team".into(), "a".into()),
                    ("drop-me".into(), "x".into()),
                    ("cassandra.datastax.com/watched".into(), "true".into()),
                ])),
                annotations: Some(BTreeMap::from([
                    ("cassandra.datastax.com/watched-by".into(), "[]".into()),
                    (
                        "kubectl.kubernetes.io/last-applied-configuration".into(),
                        "{}".into(),
                    ),
                    ("note".into(), "kept".into()),
                ])),
                owner_references: Some(vec![Default::default()]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "password".into(),
                ByteString(b"p".to_vec()),
            )])),
            type_: Some("Opaque".into()),
            immutable: Some(true),
            ..Secret::default()
        }
    }

    #[test]
    fn a_copy_keeps_the_content_and_leaves_the_data_plane_labels_and_owners() {
        let target = ReplicationTarget {
            target_prefix: Some("copy-".into()),
            drop_labels: Some(vec!["drop-me".into()]),
            add_labels: Some(BTreeMap::from([("added".into(), "y".into())])),
            ..ReplicationTarget::default()
        };
        let copy = copy(&source(), &target, "other").expect("copy");
        assert_eq!(copy.metadata.name.as_deref(), Some("copy-demo-superuser"));
        assert_eq!(copy.metadata.namespace.as_deref(), Some("other"));
        let labels = copy.metadata.labels.clone().expect("labels");
        assert_eq!(
            labels.keys().cloned().collect::<Vec<_>>(),
            vec!["added", "k8ssandra.io/replicated-secret-name", "team"]
        );
        assert_eq!(
            labels["k8ssandra.io/replicated-secret-name"],
            "ns.demo-superuser"
        );
        let annotations = copy.metadata.annotations.clone().expect("annotations");
        assert!(annotations.contains_key("note"));
        assert!(annotations.contains_key(annotations::RESOURCE_HASH));
        assert_eq!(annotations.len(), 2);
        assert!(copy.metadata.owner_references.is_none());
        assert_eq!(copy.data, source().data);
        assert_eq!(copy.immutable, None);
        // The same source gives the same copy; another password another one.
        let again = super::copy(&source(), &target, "other").expect("copy");
        assert_eq!(again, copy);
        let mut changed = source();
        changed.data = Some(BTreeMap::from([(
            "password".into(),
            ByteString(b"q".to_vec()),
        )]));
        assert_ne!(super::copy(&changed, &target, "other").expect("copy"), copy);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let selector = |expr: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: Some(BTreeMap::from([("a".into(), "1".into())])),
            match_expressions: Some(expr),
        };
        let requirement = |op: &str, values: &[&str]| LabelSelectorRequirement {
            key: "b".into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        };
        assert!(matches(&selector(vec![]), &labels));
        assert!(matches(
            &selector(vec![requirement("DoesNotExist", &[])]),
            &labels
        ));
        assert!(matches(
            &selector(vec![requirement("NotIn", &["2"])]),
            &labels
        ));
        assert!(!matches(
            &selector(vec![requirement("In", &["2"])]),
            &labels
        ));
        assert!(!matches(
            &selector(vec![requirement("Exists", &[])]),
            &labels
        ));
        assert_eq!(
            selector_string(&selector(vec![requirement("In", &["2", "3"])])),
            "a=1,b in (2,3)"
        );
    }
}
