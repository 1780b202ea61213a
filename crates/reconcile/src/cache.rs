//! Watch caches: one reflector per watched kind, which passes read instead of the API server.
//!
//! [`watch`] gives a [`Cache`] (the reflector's store, read by every controller that needs the
//! kind) and a [`Feed`] (the watch itself). Each controller that a change of the kind should
//! trigger takes its own [`Feed::subscribe`] stream, so that one watch serves them all; the store
//! is updated before a subscriber hears of a change, so a pass it triggers reads the change.
//!
//! A pass triggered by something else may run before the watch shows this operator's own last
//! write. [`Cache::wrote`] remembers the resource version each write returned, and
//! [`Cache::catch_up`] waits, in memory and briefly, until the store holds it: a pass then never
//! repeats a write because it read its own past.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    hash::Hash,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    Api, Resource,
    runtime::{
        reflector::{self, ObjectRef, Store, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::backoff::BackoffPolicy;

/// Delays between the retries of a failing watch: short enough that a cluster whose API server
/// comes back is followed again within seconds, long enough not to press one that is down.
pub const WATCH_BACKOFF: BackoffPolicy = BackoffPolicy {
    base: Duration::from_millis(500),
    max: Duration::from_secs(8),
};

/// Whether the API server answered that the watch's resource version is gone (410).
fn expired(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// How often [`Cache::catch_up`] looks at the store again.
const CATCH_UP_POLL: Duration = Duration::from_millis(10);

/// The watch cache of one kind; clones share the store.
#[derive(Clone)]
pub struct Cache<K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    written: Written,
}

/// The resource version of this operator's last write of each object (by namespace and name),
/// until the store shows it or the object is deleted.
type Written = Arc<Mutex<HashMap<(String, String), u64>>>;

impl<K> Cache<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// The reflector's store.
    #[must_use]
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// The object `namespace/name`, if the watch saw it.
    #[must_use]
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The cache's version of `object` (a pass reads that one, not the one that triggered it).
    #[must_use]
    pub fn current(&self, object: &K) -> Option<Arc<K>> {
        let meta = object.meta();
        self.get(meta.namespace.as_deref()?, meta.name.as_deref()?)
    }

    /// The objects of `namespace` that carry every label of `selector`, sorted by name as a list
    /// request would return them.
    #[must_use]
    pub fn list(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<Arc<K>> {
        let mut found: Vec<Arc<K>> = self
            .store
            .state()
            .into_iter()
            .filter(|object| object.meta().namespace.as_deref() == Some(namespace))
            .filter(|object| {
                let labels = object.meta().labels.as_ref();
                selector
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect();
        found.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        found
    }

    /// Every object the watch saw.
    #[must_use]
    pub fn state(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Records a write of this operator: `meta` is what the API server returned.
    pub fn wrote(&self, meta: &ObjectMeta) {
        let (Some(namespace), Some(name), Some(version)) = (
            meta.namespace.clone(),
            meta.name.clone(),
            meta.resource_version.as_deref().and_then(version_number),
        ) else {
            return;
        };
        if let Ok(mut written) = self.written.lock() {
            let entry = written.entry((namespace, name)).or_insert(version);
            *entry = (*entry).max(version);
        }
    }

    /// Waits until the watch has listed everything once.
    pub async fn ready(&self) {
        // The writer lives as long as the feed; a dropped one leaves an empty cache for good.
        let _ = self.store.wait_until_ready().await;
    }

    /// Whether the watch has listed everything once.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.store
            .wait_until_ready()
            .now_or_never()
            .is_some_and(|ready| ready.is_ok())
    }

    /// Waits, at most `limit`, until the store holds every recorded write of this operator (or a
    /// later version, or saw the object deleted). A write the store does not show in `limit` (the
    /// watch is being re-established) is given up on.
    pub async fn catch_up(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let behind = self.prune();
            if behind == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(
                    kind = %K::kind(&()),
                    behind,
                    "the watch cache did not show this operator's writes in time"
                );
                if let Ok(mut written) = self.written.lock() {
                    written.clear();
                }
                return;
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }

    /// Forgets the writes the store shows; returns how many it does not show yet.
    fn prune(&self) -> usize {
        let Ok(mut written) = self.written.lock() else {
            return 0;
        };
        written.retain(|(namespace, name), version| {
            let seen = self.get(namespace, name).and_then(|object| {
                object
                    .meta()
                    .resource_version
                    .as_deref()
                    .and_then(version_number)
            });
            seen.is_none_or(|seen| seen < *version)
        });
        written.len()
    }
}

/// A resource version as a number: the API server's are etcd revisions, which only grow. (They
/// are opaque by contract; one that is not a number is not tracked.)
fn version_number(version: &str) -> Option<u64> {
    version.parse().ok()
}

/// Told of every watch outcome: `Ok` when the API server answered (a list or an event), the
/// error when it did not, so that a remote cluster's health follows its watches and needs no
/// requests of its own.
pub type HealthHook = Arc<dyn Fn(Result<(), &watcher::Error>) + Send + Sync>;

/// The watch that fills a [`Cache`], and the controllers it triggers.
pub struct Feed<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    config: watcher::Config,
    writer: Writer<K>,
    written: Written,
    subscribers: Vec<mpsc::UnboundedSender<K>>,
    health: Option<HealthHook>,
}

/// A watch of `api`'s objects that `config` selects: its cache, and the feed to run.
#[must_use]
pub fn watch<K>(api: Api<K>, config: watcher::Config) -> (Cache<K>, Feed<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let written = Written::default();
    let cache = Cache {
        store,
        written: written.clone(),
    };
    let feed = Feed {
        api,
        config,
        writer,
        written,
        subscribers: Vec::new(),
        health: None,
    };
    (cache, feed)
}

impl<K> Feed<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// A stream of every object the watch sees change, created or deleted, for a controller's
    /// `for_stream`, `owns_stream` or `watches_stream`.
    pub fn subscribe(&mut self) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers.push(sender);
        futures::stream::unfold(receiver, |mut receiver| async move {
            let object = receiver.recv().await?;
            Some((Ok(object), receiver))
        })
    }

    /// Tells `hook` of every watch outcome.
    #[must_use]
    pub fn report_health(mut self, hook: HealthHook) -> Self {
        self.health = Some(hook);
        self
    }

    /// Runs the watch until every subscriber is gone. A failed watch is retried after
    /// [`WATCH_BACKOFF`] (reset by any event), but at once when the API server says the resource
    /// version expired (as after its restart): the watcher then lists again, and waiting would
    /// only keep the cache stale.
    pub async fn run(self) {
        let Self {
            api,
            config,
            writer,
            written,
            subscribers,
            health,
        } = self;
        let report = |outcome: Result<(), &watcher::Error>| {
            if let Some(hook) = &health {
                hook(outcome);
            }
        };
        let kind = K::kind(&()).into_owned();
        let mut events = std::pin::pin!(reflector::reflector(writer, watcher(api, config)));
        let mut failures = 0;
        while let Some(event) = events.next().await {
            match &event {
                Ok(watcher::Event::Init) => {}
                Ok(_) => {
                    failures = 0;
                    report(Ok(()));
                }
                Err(error) => report(Err(error)),
            }
            let object = match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => object,
                Ok(watcher::Event::Delete(object)) => {
                    // A deleted object's last write is caught up with for good.
                    if let (Ok(mut written), Some(namespace)) =
                        (written.lock(), object.meta().namespace.clone())
                    {
                        written
                            .remove(&(namespace, object.meta().name.clone().unwrap_or_default()));
                    }
                    object
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
                Err(error) => {
                    tracing::warn!(%kind, %error, "watch failed; retrying");
                    if !expired(&error) {
                        failures += 1;
                        tokio::time::sleep(WATCH_BACKOFF.delay(failures)).await;
                    }
                    continue;
                }
            };
            for subscriber in &subscribers {
                // A subscriber that is gone stopped its controller; the cache lives on.
                let _ = subscriber.send(object.clone());
            }
            if !subscribers.is_empty() && subscribers.iter().all(mpsc::UnboundedSender::is_closed) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn config_map(namespace: &str, name: &str, version: &str, label: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                resource_version: Some(version.to_owned()),
                labels: label.map(|l| BTreeMap::from([("app".to_owned(), l.to_owned())])),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn cache() -> (Cache<ConfigMap>, Writer<ConfigMap>) {
        let (store, writer) = reflector::store();
        let cache = Cache {
            store,
            written: Written::default(),
        };
        (cache, writer)
    }

    #[test]
    fn a_list_is_the_namespace_objects_with_every_label_sorted_by_name() {
        let (cache, mut writer) = cache();
        for object in [
            config_map("a", "b", "1", Some("x")),
            config_map("a", "a", "2", Some("x")),
            config_map("a", "c", "3", Some("y")),
            config_map("other", "d", "4", Some("x")),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        let selector = BTreeMap::from([("app".to_owned(), "x".to_owned())]);
        let names: Vec<String> = cache
            .list("a", &selector)
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(cache.list("a", &BTreeMap::new()).len(), 3);
        assert!(cache.get("other", "d").is_some());
        assert!(cache.get("a", "d").is_none());
    }

    #[tokio::test]
    async fn catching_up_waits_for_the_own_write_and_no_longer_than_the_limit() {
        let (cache, mut writer) = cache();
        writer.apply_watcher_event(&watcher::Event::Apply(config_map("a", "b", "5", None)));
        // Nothing written: no wait.
        cache.catch_up(Duration::from_secs(60)).await;

        // A write the watch shows later is waited for.
        cache.wrote(&config_map("a", "b", "7", None).metadata);
        assert_eq!(cache.prune(), 1);
        let shown = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.catch_up(Duration::from_secs(60)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !shown.is_finished(),
            "waits while the store shows version 5"
        );
        writer.apply_watcher_event(&watcher::Event::Apply(config_map("a", "b", "9", None)));
        tokio::time::timeout(Duration::from_secs(5), shown)
            .await
            .expect("a later version catches up")
            .expect("joined");

        // A write the watch never shows is given up on after the limit, and forgotten.
        cache.wrote(&config_map("a", "new", "11", None).metadata);
        let started = tokio::time::Instant::now();
        cache.catch_up(Duration::from_millis(100)).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(cache.prune(), 0);

        // A resource version that is not a number is not tracked.
        cache.wrote(&config_map("a", "b", "opaque", None).metadata);
        assert_eq!(cache.prune(), 0);
    }
}
