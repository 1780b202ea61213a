//! Finalizers, written with a merge patch guarded by the resourceVersion, so that a concurrent
//! edit of the finalizer list is never overwritten (the API server answers 409 instead).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Whether `finalizer` is on the object.
#[must_use]
pub fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// The merge patch that adds (or removes) `finalizer`; `None` when there is nothing to change. A
/// finalizer is never added to an object being deleted.
#[must_use]
pub fn finalizer_patch(meta: &ObjectMeta, finalizer: &str, add: bool) -> Option<serde_json::Value> {
    let present = has_finalizer(meta, finalizer);
    let mut list = meta.finalizers.clone().unwrap_or_default();
    if add {
        if present || meta.deletion_timestamp.is_some() {
            return None;
        }
        list.push(finalizer.to_owned());
    } else {
        if !present {
            return None;
        }
        list.retain(|f| f != finalizer);
    }
    Some(serde_json::json!({
        "metadata": {
            "resourceVersion": meta.resource_version,
            "finalizers": list,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_keep_other_finalizers_and_guard_the_version() {
        let meta = ObjectMeta {
            finalizers: Some(vec!["other".into()]),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        };
        let added = finalizer_patch(&meta, "mine", true).expect("added");
        assert_eq!(
            added["metadata"]["finalizers"],
            serde_json::json!(["other", "mine"])
        );
        assert_eq!(added["metadata"]["resourceVersion"], "7");
        assert!(finalizer_patch(&meta, "mine", false).is_none());
        let with = ObjectMeta {
            finalizers: Some(vec!["other".into(), "mine".into()]),
            ..meta
        };
        assert!(finalizer_patch(&with, "mine", true).is_none());
        let removed = finalizer_patch(&with, "mine", false).expect("removed");
        assert_eq!(
            removed["metadata"]["finalizers"],
            serde_json::json!(["other"])
        );
    }
}
