//! Objects of a watched kind that may not decode.
//!
//! The API server admits objects that our types cannot read: an integer beyond its Rust type, a
//! time beyond year 9999, free-form configuration nested deeper than the JSON parser allows, or an
//! object stored before a schema was tightened. A typed watch fails its whole list on one such
//! object, and so the controller sees nothing at all. Watching `Tolerant<K>` instead keeps every
//! object: those that decode as `K`, and the others with their metadata and the decode error, so
//! that the controller can report on that object and carry on with the rest.

use std::{
    borrow::Cow,
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client, Resource};
use serde::{Deserialize, Deserializer, de::DeserializeOwned, de::Error as _};
use serde_json::value::RawValue;

use crate::{
    apply::apply_status,
    events::{EventPublisher, Severity},
    scope::now,
};

/// Reason of the `Valid=False` condition and the Warning Event of an undecodable object.
pub const UNDECODABLE: &str = "Undecodable";

/// An object of kind `K`, decoded or not.
#[derive(Clone, Debug, PartialEq)]
pub enum Tolerant<K> {
    /// The object as `K`.
    Decoded(K),
    /// An object that is not a valid `K`: its metadata, and why it could not be read.
    Undecodable {
        /// The object's metadata.
        metadata: Box<ObjectMeta>,
        /// What the decoder said, without the object's contents.
        error: String,
    },
}

impl<K> Tolerant<K> {
    /// The decoded object, or the decode error.
    ///
    /// # Errors
    /// The decode error of an object that is not a valid `K`.
    pub fn decoded(&self) -> Result<&K, &str> {
        match self {
            Self::Decoded(object) => Ok(object),
            Self::Undecodable { error, .. } => Err(error),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Tolerant<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Decoded(object) => object.meta(),
            Self::Undecodable { metadata, .. } => metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Decoded(object) => object.meta_mut(),
            Self::Undecodable { metadata, .. } => metadata,
        }
    }
}

/// Just the metadata of an object, without `managedFields`: they mirror the object's fields, so
/// they are as deeply nested as whatever made it undecodable.
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: Metadata,
}

/// The parts of `ObjectMeta` a controller reads.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    deletion_timestamp: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
    owner_references: Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    finalizers: Option<Vec<String>>,
}

impl From<Metadata> for ObjectMeta {
    fn from(m: Metadata) -> Self {
        Self {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            finalizers: m.finalizers,
            ..Self::default()
        }
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Tolerant<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The raw text is kept so that a failed typed read can be followed by a metadata-only one.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        match serde_json::from_str::<K>(raw.get()) {
            Ok(object) => Ok(Self::Decoded(object)),
            Err(error) => {
                let metadata = Box::new(ObjectMeta::from(
                    serde_json::from_str::<MetadataOnly>(raw.get())
                        .map_err(D::Error::custom)?
                        .metadata,
                ));
                Ok(Self::Undecodable {
                    metadata,
                    error: describe(&error),
                })
            }
        }
    }
}

/// The decoder's words, with where it stopped (serde_json's messages quote at most a field name
/// or a short value, never the object).
fn describe(error: &serde_json::Error) -> String {
    const MAX: usize = 300;
    let mut out = error.to_string();
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

impl<K> fmt::Display for Tolerant<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decoded(_) => f.write_str("decoded"),
            Self::Undecodable { error, .. } => write!(f, "cannot be read: {error}"),
        }
    }
}

/// Reports undecodable objects on themselves: a `Valid=False` condition with reason
/// [`UNDECODABLE`] and a Warning Event, each once per object and error.
#[derive(Clone)]
pub struct UndecodableReporter {
    client: Client,
    events: EventPublisher,
    field_manager: String,
    reported: Arc<Mutex<HashMap<String, String>>>,
}

impl UndecodableReporter {
    /// A reporter writing as `field_manager` (a manager of its own, so that the controller's
    /// status fields stay as they are) and publishing through `events`.
    #[must_use]
    pub fn new(client: Client, events: EventPublisher, field_manager: &str) -> Self {
        Self {
            client,
            events,
            field_manager: format!("{field_manager}-decode"),
            reported: Arc::default(),
        }
    }

    /// Reports that the object of kind `K` with `metadata` cannot be read, unless this error was
    /// reported for it already.
    ///
    /// # Errors
    /// When the condition cannot be written.
    pub async fn report<K>(&self, metadata: &ObjectMeta, error: &str) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + fmt::Debug,
    {
        let uid = metadata.uid.clone().unwrap_or_default();
        let already = self
            .reported
            .lock()
            .map(|reported| reported.get(&uid).is_some_and(|e| e == error))
            .unwrap_or(false);
        if already {
            return Ok(());
        }
        let name = metadata.name.clone().unwrap_or_default();
        let namespace = metadata.namespace.clone().unwrap_or_default();
        let message = format!(
            "the operator cannot read this {}: {error}; fix the field named or delete the object",
            K::kind(&())
        );
        let status = serde_json::json!({ "conditions": [{
            "type": "Valid",
            "status": "False",
            "reason": UNDECODABLE,
            "message": message,
            "lastTransitionTime": now(),
            "observedGeneration": metadata.generation,
        }]});
        tracing::warn!(kind = %K::kind(&()), %namespace, %name, %error, "object cannot be read");
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: metadata.uid.clone(),
            resource_version: metadata.resource_version.clone(),
            ..Default::default()
        };
        self.events
            .publish(
                &reference,
                Severity::Warning,
                UNDECODABLE,
                "Decode",
                message,
            )
            .await;
        // The answer is the object again, which does not decode as `K`.
        let api: Api<Tolerant<K>> = Api::namespaced(self.client.clone(), &namespace);
        apply_status(&api, &self.field_manager, &name, &status).await?;
        if let Ok(mut reported) = self.reported.lock() {
            reported.insert(uid, error.to_owned());
        }
        Ok(())
    }

    /// The decoded object, or `None` once an undecodable one was reported (the controller then
    /// waits for a change of it).
    ///
    /// # Errors
    /// When the condition of an undecodable object cannot be written.
    pub async fn decoded_or_report<'a, K>(
        &self,
        object: &'a Tolerant<K>,
    ) -> Result<Option<&'a K>, kube::Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + DeserializeOwned
            + Clone
            + fmt::Debug,
    {
        match object {
            Tolerant::Decoded(decoded) => {
                self.forget(decoded.meta().uid.as_deref().unwrap_or_default());
                Ok(Some(decoded))
            }
            Tolerant::Undecodable { metadata, error } => {
                self.report::<K>(metadata, error).await?;
                Ok(None)
            }
        }
    }

    /// Forgets an object that decodes again (or is gone), so that a new error is reported anew.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut reported) = self.reported.lock() {
            reported.remove(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::{ObjectList, WatchEvent};

    #[derive(Clone, Debug, Deserialize, PartialEq)]
    struct Small {
        metadata: ObjectMeta,
        size: i32,
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn one_bad_item_does_not_fail_the_list() {
        let body = format!(
            r#"{{"metadata":{{}},"items":[
                {{"metadata":{{"name":"good"}},"size":3}},
                {{"metadata":{{"name":"huge","namespace":"a"}},"size":2147483648}},
                {{"metadata":{{"name":"deep"}},"size":1,"config":{}}}
            ]}}"#,
            nested(200)
        );
        let list: ObjectList<Tolerant<Small>> = serde_json::from_str(&body).unwrap();
        assert_eq!(list.items.len(), 3);
        assert!(matches!(&list.items[0], Tolerant::Decoded(s) if s.size == 3));
        let Tolerant::Undecodable { metadata, error } = &list.items[1] else {
            panic!("decoded an out-of-range size");
        };
        assert_eq!(metadata.name.as_deref(), Some("huge"));
        assert_eq!(metadata.namespace.as_deref(), Some("a"));
        assert!(error.contains("2147483648"), "{error}");
        // Depth in a field the type skips is no problem.
        assert!(matches!(&list.items[2], Tolerant::Decoded(_)));
    }

    #[test]
    fn too_deep_a_value_is_undecodable_not_fatal() {
        #[derive(Clone, Debug, Deserialize)]
        #[allow(dead_code)]
        struct WithConfig {
            metadata: ObjectMeta,
            config: serde_json::Value,
        }
        // The managed fields mirror the deep value.
        let body = format!(
            r#"{{"type":"ADDED","object":{{"metadata":{{"name":"deep","managedFields":[{{"fieldsV1":{}}}]}},"config":{}}}}}"#,
            nested(200),
            nested(200)
        );
        let event: WatchEvent<Tolerant<WithConfig>> = serde_json::from_str(&body).unwrap();
        let WatchEvent::Added(Tolerant::Undecodable { metadata, error }) = event else {
            panic!("decoded a value nested 200 deep");
        };
        assert_eq!(metadata.name.as_deref(), Some("deep"));
        assert!(error.contains("recursion limit"), "{error}");
    }

    #[test]
    fn a_long_error_is_cut_on_a_character() {
        let text = format!("\"{}\"", "é".repeat(400));
        let error = serde_json::from_str::<i32>(&text).unwrap_err();
        let described = describe(&error);
        assert!(described.len() <= 300 + '…'.len_utf8(), "{described}");
    }

    #[test]
    fn a_tolerant_object_is_the_kind_it_wraps() {
        assert_eq!(Tolerant::<ConfigMap>::kind(&()), "ConfigMap");
        assert_eq!(Tolerant::<ConfigMap>::plural(&()), "configmaps");
        let decoded = Tolerant::Decoded(ConfigMap::default());
        assert!(decoded.decoded().is_ok());
    }
}
