//! A reconcile pass that panics, on a real API server: the pass ends with an error, the panic is
//! counted, a Warning Event `ReconcilePanicked` tells of it on the object, and the next pass runs.
#![allow(clippy::expect_used)]

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use k8ssandra_e2e::{FleetConfig, wait};
use k8ssandra_reconcile::{
    events::EventPublisher,
    metrics::{PanicReport, Panicked, ReconcileMetrics},
};
use kube::{Api, Resource, api::PostParams};
use prometheus_client::{encoding::text::encode, registry::Registry};

#[tokio::test]
async fn a_panicking_pass_is_reported_on_its_object_and_the_next_one_runs() {
    let fleet = FleetConfig::new("panic_guard", 1)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts");
    let client = fleet.cluster(0).client();
    let mut object = ConfigMap::default();
    object.metadata.name = Some("victim".into());
    let object = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &object)
        .await
        .expect("created");
    let events = EventPublisher::new(client.clone(), "k8ssandra-operator");
    let mut registry = Registry::default();
    let metrics = ReconcileMetrics::register(&mut registry);
    let report = || PanicReport {
        events: &events,
        object: object.object_ref(&()),
    };
    let outcome: Result<(), Panicked> = metrics
        .measure("configmap", |_| "never", Some(report()), async {
            if std::hint::black_box(true) {
                panic!("a bug in a pass");
            }
            Ok(())
        })
        .await;
    assert_eq!(outcome, Err(Panicked("a bug in a pass".into())));
    let next: Result<u8, Panicked> = metrics
        .measure("configmap", |_| "never", Some(report()), async { Ok(7) })
        .await;
    assert_eq!(next, Ok(7));
    let mut text = String::new();
    encode(&mut text, &registry).expect("encodes");
    assert!(
        text.contains(r#"reconcile_panics_total{controller="configmap"} 1"#),
        "{text}"
    );
    let found = wait::until(
        "the ReconcilePanicked Event",
        std::time::Duration::from_secs(30),
        || {
            let client = client.clone();
            async move {
                let list = Api::<Event>::namespaced(client, "default")
                    .list(&Default::default())
                    .await
                    .ok()?;
                list.items.into_iter().find(|e| {
                    e.reason.as_deref() == Some("ReconcilePanicked")
                        && e.involved_object.name.as_deref() == Some("victim")
                        && e.type_.as_deref() == Some("Warning")
                })
            }
        },
    )
    .await
    .expect("an Event");
    assert!(
        found
            .message
            .as_deref()
            .is_some_and(|m| m.contains("a bug in a pass")),
        "{found:?}"
    );
}
