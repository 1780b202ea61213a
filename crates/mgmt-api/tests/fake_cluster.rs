//! The client against the fake over real TCP: every route, the Cassandra rules, failure injection,
//! mutual TLS and call counting.
//!
//! Servers listen on 127.200.<test>.<node>:8080; each test has its own third octet so tests can run
//! in parallel without colliding.

// Test helpers outside #[test] functions panic on purpose too.
#![allow(clippy::expect_used)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use k8ssandra_mgmt_api::fake::{
    Binder, DecommissionCheck, FakeCluster, FakeClusterConfig, FakeNode, FakeTls, Fault, NodeEvent,
    NodeProcess, NodeSpec, NotReadyReason, ReadinessChange, SeedCheck, SeedResolver, Times,
};
use k8ssandra_mgmt_api::{
    ClientSettings, ClusterHealth, Column, CompactRequest, ConsistencyLevel, CreateTableRequest,
    Error, Feature, FeatureSet, IdentityToRole, JobId, JobStatus, KeyspaceReplicationRequest,
    KeyspaceRequest, ManagementApiClient, MutualTls, NewRole, NodeStatus, Route, ScrubRequest,
    StartOutcome, Submission, TableOperation, TombstoneOption,
};

const WAIT: Duration = Duration::from_secs(5);

fn ip(test: u8, node: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 200, test, node))
}

fn settings() -> ClientSettings {
    ClientSettings::insecure().with_timeout_for_all(WAIT)
}

fn fast_cluster() -> FakeCluster {
    FakeCluster::new(FakeClusterConfig::fast())
}

/// A node `dc1-r1-sts-<node>` with data volume `pvc-<node>` on 127.200.<test>.<node>.
async fn node(
    cluster: &FakeCluster,
    test: u8,
    node: u8,
    seed: bool,
) -> (FakeNode, ManagementApiClient) {
    node_in(cluster, test, node, "dc1", &format!("pvc-{node}"), seed).await
}

async fn node_in(
    cluster: &FakeCluster,
    test: u8,
    node: u8,
    dc: &str,
    data_id: &str,
    seed: bool,
) -> (FakeNode, ManagementApiClient) {
    let pod = format!("{dc}-r1-sts-{node}");
    let spec = NodeSpec::new(&pod, dc, "r1", data_id, ip(test, node)).seed(seed);
    let fake = cluster.start_node(spec).await.expect("fake node starts");
    let client = settings().client(&pod, ip(test, node));
    (fake, client)
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn eventually_async<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_ready(fake: &FakeNode, client: &ManagementApiClient) {
    assert_eq!(
        client.start(None).await.expect("start"),
        StartOutcome::Started
    );
    eventually(&format!("{} ready", fake.pod()), || fake.is_ready()).await;
}

async fn job_outcome(client: &ManagementApiClient, id: &JobId) -> k8ssandra_mgmt_api::Job {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let job = client
            .job(id)
            .await
            .expect("job status")
            .expect("job known");
        if job.is_finished() {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn expect_job_completed(client: &ManagementApiClient, submission: Submission) {
    match submission {
        Submission::Job(id) => {
            let job = job_outcome(client, &id).await;
            assert_eq!(job.status, JobStatus::Completed, "{job:?}");
            assert!(job.submit_time.is_some() && job.end_time.is_some());
        }
        Submission::Done => {}
    }
}

fn table_operations() -> Vec<TableOperation> {
    let ks = KeyspaceRequest {
        jobs: Some(2),
        keyspace_name: Some("app".into()),
        tables: vec!["t1".into()],
    };
    vec![
        TableOperation::Cleanup(ks.clone()),
        TableOperation::Flush(ks.clone()),
        TableOperation::Compact(CompactRequest {
            keyspace_name: Some("app".into()),
            ..CompactRequest::default()
        }),
        TableOperation::Scrub(ScrubRequest {
            keyspace_name: Some("app".into()),
            ..ScrubRequest::default()
        }),
        TableOperation::UpgradeSstables {
            request: ks.clone(),
            exclude_current_version: true,
        },
        TableOperation::GarbageCollect {
            request: ks,
            tombstone_option: TombstoneOption::Cell,
        },
    ]
}

#[tokio::test]
async fn every_route_works_through_the_client() {
    let mut config = FakeClusterConfig {
        decommission_check: DecommissionCheck::UnlessForced,
        ..FakeClusterConfig::fast()
    };
    // Long enough to see the JOINING state between two calls.
    config.timings.bootstrap = Duration::from_millis(300);
    let cluster = FakeCluster::new(config);
    let (a, ca) = node(&cluster, 1, 1, true).await;
    let (b, cb) = node(&cluster, 1, 2, false).await;
    let (c, cc) = node(&cluster, 1, 3, false).await;

    // Before start: the API is up, Cassandra is not.
    ca.liveness().await.expect("liveness");
    assert!(!ca.readiness().await.expect("readiness"));
    let error = ca.endpoints().await.expect_err("no gossip before start");
    assert_eq!(error.status(), Some(500));

    start_ready(&a, &ca).await;
    assert!(ca.readiness().await.expect("readiness"));
    assert_eq!(
        ca.start(None).await.expect("start again"),
        StartOutcome::AlreadyRunning
    );
    assert_eq!(
        cb.start(None).await.expect("start b"),
        StartOutcome::Started
    );
    assert_eq!(
        cb.start(None).await.expect("start b again"),
        StartOutcome::RunningNotReachable
    );
    let joining = ca.endpoints().await.expect("endpoints");
    assert_eq!(
        joining.by_ip(b.ip()).map(|e| e.status()),
        Some(NodeStatus::Joining)
    );
    eventually("b ready", || b.is_ready()).await;
    start_ready(&c, &cc).await;

    // Metadata.
    let gossip = cb.endpoints().await.expect("endpoints");
    assert_eq!(gossip.entries.len(), 3);
    let local = gossip.local().expect("local entry");
    assert_eq!(local.host_id(), b.host_id().as_deref());
    assert_eq!(local.rpc_address(), Some(b.ip()));
    assert_eq!(local.status(), NodeStatus::Normal);
    assert!(local.is_alive());
    assert_eq!(local.datacenter(), Some("dc1"));
    assert_eq!(local.release_version(), Some("4.1.5"));
    assert!(local.load_bytes().is_some());
    let features = ca.features().await.expect("features");
    for feature in Feature::all_known() {
        assert!(features.supports(&feature), "{feature:?}");
    }
    assert_eq!(features.cassandra_version.as_deref(), Some("4.1.5"));
    assert_eq!(
        ca.probe_cluster(ConsistencyLevel::LocalQuorum, 3)
            .await
            .expect("probe"),
        ClusterHealth::Healthy
    );
    let ClusterHealth::Unhealthy(ranges) = ca
        .probe_cluster(ConsistencyLevel::LocalQuorum, 4)
        .await
        .expect("probe")
    else {
        panic!("rf 4 on 3 nodes cannot be healthy");
    };
    assert_eq!(ranges.len(), 3);
    let schema = ca.schema_versions().await.expect("schema versions");
    assert_eq!(schema.len(), 1);
    assert_eq!(schema.values().next().map(Vec::len), Some(3));
    assert_eq!(
        cb.reload_seeds().await.expect("seeds"),
        vec![a.ip().to_string()]
    );

    // Keyspaces and tables.
    ca.create_keyspace(&KeyspaceReplicationRequest::new("app", [("dc1", 2)]))
        .await
        .expect("create keyspace");
    ca.alter_keyspace(&KeyspaceReplicationRequest::new("app", [("dc1", 3)]))
        .await
        .expect("alter keyspace");
    let replication = cb
        .keyspace_replication("app")
        .await
        .expect("replication")
        .expect("exists");
    assert_eq!(replication.datacenter_factors().get("dc1"), Some(&3));
    assert_eq!(
        cb.keyspace_replication("missing")
            .await
            .expect("replication"),
        None
    );
    let keyspaces = ca.list_keyspaces(None).await.expect("keyspaces");
    assert!(
        keyspaces.contains(&"app".to_string()) && keyspaces.contains(&"system_auth".to_string())
    );
    assert_eq!(
        ca.list_keyspaces(Some("app")).await.expect("keyspaces"),
        vec!["app"]
    );
    let error = ca
        .alter_keyspace(&KeyspaceReplicationRequest::new("missing", [("dc1", 1)]))
        .await
        .expect_err("alter of a missing keyspace");
    assert_eq!(error.status(), Some(500));
    ca.create_table(&CreateTableRequest {
        keyspace_name: "app".into(),
        table_name: "t1".into(),
        columns: vec![Column {
            name: "id".into(),
            cql_type: "uuid".into(),
            kind: Some("PARTITION_KEY".into()),
            position: Some(0),
            order: None,
        }],
    })
    .await
    .expect("create table");
    assert_eq!(cc.list_tables("app").await.expect("tables"), vec!["t1"]);

    // Roles.
    let role = NewRole {
        username: "demo-superuser".into(),
        password: "s3cret&pw".into(),
        is_superuser: true,
        can_login: true,
    };
    ca.create_role(&role).await.expect("create role");
    let stored = cluster.role("demo-superuser").expect("stored role");
    assert_eq!(stored.password, "s3cret&pw");
    let roles = cb.list_roles().await.expect("roles");
    assert!(
        roles
            .iter()
            .any(|r| r.name == "demo-superuser" && r.superuser && r.login)
    );
    ca.create_identity_to_role(&IdentityToRole {
        identity: "spiffe://demo/reaper".into(),
        role: "demo-superuser".into(),
        ttl: None,
    })
    .await
    .expect("identity mapping");
    assert_eq!(
        cluster.identity_role("spiffe://demo/reaper").as_deref(),
        Some("demo-superuser")
    );
    ca.delete_identity_to_role("spiffe://demo/reaper")
        .await
        .expect("unmap");
    assert_eq!(cluster.identity_role("spiffe://demo/reaper"), None);
    ca.delete_role("demo-superuser").await.expect("delete role");
    assert!(cluster.role("demo-superuser").is_none());

    // Node settings.
    assert!(!ca.full_query_logging().await.expect("fql"));
    ca.set_full_query_logging(true).await.expect("set fql");
    assert!(ca.full_query_logging().await.expect("fql"));
    ca.reload_truststore().await.expect("truststore");

    // Table operations, blocking and as jobs; move; rebuild.
    for operation in table_operations() {
        cb.run_blocking(&operation)
            .await
            .expect("blocking operation");
        let submission = cb.submit_job(&operation).await.expect("job operation");
        assert!(matches!(submission, Submission::Job(_)), "{operation:?}");
        expect_job_completed(&cb, submission).await;
        let chosen = cb
            .run_table_operation(&operation, &features)
            .await
            .expect("by feature");
        expect_job_completed(&cb, chosen).await;
    }
    let system_cleanup = TableOperation::Cleanup(KeyspaceRequest {
        keyspace_name: Some("system".into()),
        ..KeyspaceRequest::default()
    });
    assert_eq!(
        cb.submit_job(&system_cleanup).await.expect("cleanup"),
        Submission::Done
    );
    let moved = cb.move_node("42").await.expect("move");
    expect_job_completed(&cb, moved).await;
    let rebuild = cc.rebuild_job(Some("dc1")).await.expect("rebuild");
    assert_eq!(
        job_outcome(&cc, &rebuild).await.status,
        JobStatus::Completed
    );
    let bad_rebuild = cc.rebuild_job(Some("nowhere")).await.expect("rebuild");
    let failed = job_outcome(&cc, &bad_rebuild).await;
    assert_eq!(failed.status, JobStatus::Error);
    assert!(failed.error.unwrap_or_default().contains("nowhere"));
    assert_eq!(
        cc.job(&JobId("no-such-job".into())).await.expect("job"),
        None
    );

    // Decommission: a job on c, blocking on b (forced, as the operator sends it).
    let job = cc.decommission_job(true).await.expect("decommission job");
    assert_eq!(job_outcome(&cc, &job).await.status, JobStatus::Completed);
    cb.decommission_blocking(true)
        .await
        .expect("blocking decommission");
    assert_eq!(b.process(), NodeProcess::Decommissioned);

    // Drain, then stop.
    ca.drain().await.expect("drain");
    assert!(!ca.readiness().await.expect("readiness"));
    ca.stop().await.expect("stop");
    assert_eq!(a.process(), NodeProcess::NotStarted);

    let calls = cluster.calls();
    for route in Route::ALL {
        assert!(calls.count(*route) > 0, "{route} was never called");
    }
}

#[tokio::test]
async fn old_servers_have_no_features_and_no_v1_routes() {
    let cluster = fast_cluster();
    let spec = NodeSpec::new("old-0", "dc1", "r1", "pvc-old", ip(17, 1))
        .seed(true)
        .features(None);
    let old = cluster.start_node(spec).await.expect("node");
    let client = settings().client("old-0", ip(17, 1));
    start_ready(&old, &client).await;
    let features = client.features().await.expect("features");
    assert_eq!(features, FeatureSet::default());
    let error = client
        .decommission_job(true)
        .await
        .expect_err("no v1 on old servers");
    assert!(error.is_not_found());
    // The v0 fallback is chosen from the empty feature set.
    let flush = TableOperation::Flush(KeyspaceRequest::default());
    assert_eq!(
        client
            .run_table_operation(&flush, &features)
            .await
            .expect("flush"),
        Submission::Done
    );
}

#[tokio::test]
async fn a_node_starts_only_with_a_seed_up() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 2, 1, false).await;
    let (b, cb) = node(&cluster, 2, 2, false).await;
    // As Cassandra: the start answers, then the process exits for want of a seed.
    assert_eq!(
        cb.start(None).await.expect("launched"),
        StartOutcome::Started
    );
    assert_eq!(b.process(), NodeProcess::NotStarted);
    assert!(b.exit_reason().is_some_and(|r| r.contains("seed")));
    assert!(!b.is_ready());
    // The operator labels a as seed, then starts it.
    a.set_seed(true);
    start_ready(&a, &ca).await;
    start_ready(&b, &cb).await;
}

/// A resolver that answers what `list` holds when asked.
fn resolver(list: &Arc<std::sync::Mutex<Vec<IpAddr>>>) -> SeedResolver {
    let list = Arc::clone(list);
    Arc::new(move || {
        let known = list.lock().expect("list").clone();
        Box::pin(async move { Some(known) })
    })
}

#[tokio::test]
async fn a_node_starts_only_when_a_seed_it_knows_is_up() {
    let cluster = fast_cluster();
    let (a_ip, b_ip, c_ip) = (ip(77, 1), ip(77, 2), ip(77, 3));
    // dc1's first seed knows itself only: the first node of a new cluster starts alone.
    let dc1_seeds = Arc::new(std::sync::Mutex::new(vec![a_ip]));
    let spec = NodeSpec::new("dc1-r1-sts-0", "dc1", "r1", "pvc-a", a_ip)
        .seed(true)
        .seed_resolver(resolver(&dc1_seeds));
    let a = cluster.start_node(spec).await.expect("a");
    start_ready(&a, &settings().client("dc1-r1-sts-0", a_ip)).await;

    // dc2's seed, told only of its own datacenter's seeds: it would form a ring of its own.
    let dc2_seeds = Arc::new(std::sync::Mutex::new(vec![b_ip]));
    let spec = NodeSpec::new("dc2-r1-sts-0", "dc2", "r1", "pvc-b", b_ip)
        .seed(true)
        .seed_resolver(resolver(&dc2_seeds));
    let b = cluster.start_node(spec).await.expect("b");
    let cb = settings().client("dc2-r1-sts-0", b_ip);
    cb.start(None).await.expect("launched");
    let reason = b.exit_reason().unwrap_or_default();
    assert!(
        reason.contains("none of the seeds this node knows (127.200.77.2) is up"),
        "{reason}"
    );
    // Once its seed list also holds dc1's seed, it joins.
    dc2_seeds.lock().expect("list").push(a_ip);
    start_ready(&b, &cb).await;
    assert_eq!(
        cb.reload_seeds().await.expect("reload"),
        vec!["127.200.77.2".to_owned(), "127.200.77.1".to_owned()]
    );

    // A non-seed knowing no seed that is up never starts, even with the cluster up.
    let nowhere = Arc::new(std::sync::Mutex::new(vec![ip(77, 9)]));
    let spec =
        NodeSpec::new("dc2-r1-sts-1", "dc2", "r1", "pvc-c", c_ip).seed_resolver(resolver(&nowhere));
    let c = cluster.start_node(spec).await.expect("c");
    let cc = settings().client("dc2-r1-sts-1", c_ip);
    cc.start(None).await.expect("launched");
    assert!(c.exit_reason().is_some_and(|r| r.contains("127.200.77.9")));
    nowhere.lock().expect("list").push(b_ip);
    start_ready(&c, &cc).await;
}

#[tokio::test]
async fn whether_a_node_is_a_seed_is_decided_when_its_start_runs() {
    let cluster = fast_cluster();
    // The pod's seed label, as a harness would read it at start time.
    let label = Arc::new(AtomicBool::new(false));
    let check: SeedCheck = {
        let label = Arc::clone(&label);
        Arc::new(move || {
            let seed = label.load(Ordering::SeqCst);
            Box::pin(async move { Some(seed) })
        })
    };
    let pod = "dc1-r1-sts-1";
    let spec = NodeSpec::new(pod, "dc1", "r1", "pvc-1", ip(14, 1)).seed_check(check);
    let a = cluster.start_node(spec).await.expect("fake node starts");
    let ca = settings().client(pod, ip(14, 1));
    ca.start(None).await.expect("launched");
    assert!(a.exit_reason().is_some_and(|r| r.contains("seed")));
    // Labelled a seed just before the next start: no watch event needed.
    label.store(true, Ordering::SeqCst);
    start_ready(&a, &ca).await;
}

#[tokio::test]
async fn only_one_node_bootstraps_at_a_time() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 3, 1, true).await;
    let (b, cb) = node(&cluster, 3, 2, false).await;
    let (c, cc) = node(&cluster, 3, 3, false).await;
    start_ready(&a, &ca).await;
    assert_eq!(
        cb.start(None).await.expect("b starts"),
        StartOutcome::Started
    );
    assert_eq!(
        cc.start(None).await.expect("launched"),
        StartOutcome::Started
    );
    assert_eq!(
        c.process(),
        NodeProcess::NotStarted,
        "c exits while b bootstraps"
    );
    assert!(c.exit_reason().is_some_and(|r| r.contains("bootstrap")));
    eventually("b ready", || b.is_ready()).await;
    start_ready(&c, &cc).await;
    assert_eq!(c.exit_reason(), None);
}

#[tokio::test]
async fn decommission_is_refused_when_the_rest_cannot_hold_the_data() {
    let cluster = fast_cluster();
    let mut nodes = Vec::new();
    for index in 1..=4 {
        nodes.push(node(&cluster, 4, index, index == 1).await);
    }
    for (fake, client) in &nodes {
        start_ready(fake, client).await;
    }
    cluster.create_keyspace("app", &[("dc1", 4)]);
    let (last, client) = &nodes[3];
    let job = client.decommission_job(true).await.expect("job accepted");
    let failed = job_outcome(client, &job).await;
    assert_eq!(failed.status, JobStatus::Error);
    let message = failed.error.unwrap_or_default();
    assert!(
        message.contains("keyspace app (RF = 4, N = 4 "),
        "{message}"
    );
    let error = client
        .decommission_blocking(true)
        .await
        .expect_err("v0 refuses too");
    assert_eq!(error.status(), Some(500));
    assert_eq!(last.process(), NodeProcess::Normal);
    assert!(last.is_ready());

    // Cassandra's own rule lets force through.
    let forced = FakeCluster::new(FakeClusterConfig {
        decommission_check: DecommissionCheck::UnlessForced,
        ..FakeClusterConfig::fast()
    });
    let (s, cs) = node(&forced, 4, 11, true).await;
    let (t, ct) = node(&forced, 4, 12, false).await;
    start_ready(&s, &cs).await;
    start_ready(&t, &ct).await;
    forced.create_keyspace("app", &[("dc1", 2)]);
    let refused = ct
        .decommission_blocking(false)
        .await
        .expect_err("unforced is refused");
    assert_eq!(refused.status(), Some(500));
    ct.decommission_blocking(true)
        .await
        .expect("forced goes through");
    // The last node never leaves.
    let job = cs.decommission_job(true).await.expect("job");
    let last_one = job_outcome(&cs, &job).await;
    assert!(
        last_one
            .error
            .unwrap_or_default()
            .contains("only ring member")
    );
}

#[tokio::test]
async fn decommission_goes_leaving_then_left_then_out_of_the_ring() {
    let cluster = fast_cluster();
    let mut events = cluster.subscribe();
    let mut nodes = Vec::new();
    for index in 1..=4 {
        nodes.push(node(&cluster, 5, index, index == 1).await);
    }
    for (fake, client) in &nodes {
        start_ready(fake, client).await;
    }
    cluster.create_keyspace("app", &[("dc1", 3)]);
    let (leaver, client) = nodes.pop().expect("four nodes");
    let host_id = leaver.host_id().expect("host id");
    let observer = &nodes[0].1;
    let job = client.decommission_job(true).await.expect("job");
    let gossip = observer.endpoints().await.expect("endpoints");
    assert_eq!(
        gossip.by_host_id(&host_id).map(|e| e.status()),
        Some(NodeStatus::Leaving)
    );
    assert_eq!(
        job_outcome(&client, &job).await.status,
        JobStatus::Completed
    );
    let gossip = observer.endpoints().await.expect("endpoints");
    let left = gossip.by_host_id(&host_id).expect("LEFT entry lingers");
    assert_eq!(left.status(), NodeStatus::Left);
    assert!(!left.is_alive());
    assert!(!leaver.is_ready());
    eventually_async("the LEFT entry expires", || async {
        observer
            .endpoints()
            .await
            .expect("endpoints")
            .by_host_id(&host_id)
            .is_none()
    })
    .await;
    let mut saw_decommissioned = false;
    while let Ok(event) = events.try_recv() {
        saw_decommissioned |= event.pod == leaver.pod()
            && event.change == ReadinessChange::NotReady(NotReadyReason::Decommissioned);
    }
    assert!(saw_decommissioned);
    // The process still runs but serves nothing; its volume never rejoins.
    assert_eq!(
        client.start(None).await.expect("start"),
        StartOutcome::RunningNotReachable
    );
    let pod = leaver.pod().to_string();
    leaver.shutdown().await;
    let again = cluster
        .start_node(NodeSpec::new(&pod, "dc1", "r1", "pvc-4", ip(5, 4)))
        .await
        .expect("restart");
    assert_eq!(
        client.start(None).await.expect("answered"),
        StartOutcome::Started
    );
    let reason = again.exit_reason().unwrap_or_default();
    assert!(reason.contains("decommissioned"), "{reason}");
    assert!(!again.is_ready());
}

#[tokio::test]
async fn replace_ip_takes_over_the_dead_nodes_host_id() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 6, 1, true).await;
    let (b, cb) = node(&cluster, 6, 2, false).await;
    start_ready(&a, &ca).await;
    start_ready(&b, &cb).await;
    let old_host_id = b.host_id().expect("host id");
    let old_ip = b.ip();

    // Replacing a live node or an unknown address fails as Cassandra does: the start is answered
    // once the process is launched, and the process exits.
    let (r, cr) = node_in(&cluster, 6, 3, "dc1", "pvc-new", false).await;
    assert_eq!(
        cr.start(Some(old_ip)).await.expect("answered"),
        StartOutcome::Started
    );
    let reason = r.exit_reason().unwrap_or_default();
    assert!(reason.contains("alive"), "{reason}");
    assert!(!r.is_ready());
    assert_eq!(
        cr.start(Some(ip(6, 99))).await.expect("answered"),
        StartOutcome::Started
    );
    let reason = r.exit_reason().unwrap_or_default();
    assert!(reason.contains("gossip"), "{reason}");

    b.shutdown().await;
    assert_eq!(
        cr.start(Some(old_ip)).await.expect("replace"),
        StartOutcome::Started
    );
    eventually("replacement ready", || r.is_ready()).await;
    assert_eq!(r.host_id().as_deref(), Some(old_host_id.as_str()));
    let gossip = ca.endpoints().await.expect("endpoints");
    assert_eq!(gossip.entries.len(), 2);
    assert!(gossip.by_ip(old_ip).is_none());
    let entry = gossip.by_host_id(&old_host_id).expect("entry kept");
    assert_eq!(entry.endpoint_ip(), Some(r.ip()));
    assert_eq!(entry.status(), NodeStatus::Normal);
    assert_eq!(
        ca.start(Some(r.ip())).await.expect("running"),
        StartOutcome::AlreadyRunning
    );
}

#[tokio::test]
async fn a_restarted_node_keeps_its_host_id_even_on_a_new_ip() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 7, 1, true).await;
    let (b, cb) = node(&cluster, 7, 2, false).await;
    start_ready(&a, &ca).await;
    start_ready(&b, &cb).await;
    let host_id = b.host_id().expect("host id");
    cb.drain().await.expect("drain");
    b.shutdown().await;
    let gossip = ca.endpoints().await.expect("endpoints");
    let down = gossip.by_host_id(&host_id).expect("still in the ring");
    assert_eq!(down.status(), NodeStatus::Shutdown);
    assert!(!down.is_alive());

    let (b2, cb2) = node_in(&cluster, 7, 12, "dc1", "pvc-2", false).await;
    start_ready(&b2, &cb2).await;
    assert_eq!(b2.host_id().as_deref(), Some(host_id.as_str()));
    let gossip = ca.endpoints().await.expect("endpoints");
    assert_eq!(gossip.entries.len(), 2);
    assert_eq!(
        gossip.by_host_id(&host_id).and_then(|e| e.endpoint_ip()),
        Some(b2.ip())
    );

    // Same volume twice at once is a harness bug.
    let duplicate = cluster
        .start_node(NodeSpec::new("dup", "dc1", "r1", "pvc-2", ip(7, 13)))
        .await;
    assert!(duplicate.is_err());
    // A fresh volume is a new node with a new host ID.
    let (c, cc) = node_in(&cluster, 7, 3, "dc1", "pvc-fresh", false).await;
    start_ready(&c, &cc).await;
    assert_ne!(c.host_id(), Some(host_id));
}

#[tokio::test]
async fn start_fails_twice_then_succeeds() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 8, 1, true).await;
    a.inject(Route::LifecycleStart, Fault::Status(500), Times::Next(2));
    for _ in 0..2 {
        let error = ca.start(None).await.expect_err("injected failure");
        assert_eq!(error.status(), Some(500));
        assert_eq!(a.process(), NodeProcess::NotStarted);
    }
    start_ready(&a, &ca).await;
    assert_eq!(a.calls().count(Route::LifecycleStart), 3);
}

#[tokio::test]
async fn a_hanging_start_times_out_and_proceeds_once_released() {
    let cluster = fast_cluster();
    let (a, _) = node(&cluster, 9, 1, true).await;
    a.inject(Route::LifecycleStart, Fault::Hang, Times::Once);
    let impatient = settings()
        .with_timeout(Route::LifecycleStart, Duration::from_millis(150))
        .client(a.pod(), a.ip());
    let error = impatient.start(None).await.expect_err("hangs");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.result_label(), "timeout");
    assert_eq!(a.process(), NodeProcess::NotStarted);
    assert_eq!(a.release(Route::LifecycleStart), 1);
    eventually("start proceeds after release", || a.is_ready()).await;
}

#[tokio::test]
async fn a_stalled_decommission_finishes_once_released() {
    let cluster = FakeCluster::new(FakeClusterConfig {
        decommission_check: DecommissionCheck::Never,
        ..FakeClusterConfig::fast()
    });
    let (a, ca) = node(&cluster, 10, 1, true).await;
    let (b, cb) = node(&cluster, 10, 2, false).await;
    start_ready(&a, &ca).await;
    start_ready(&b, &cb).await;
    b.inject(Route::DecommissionV1, Fault::Stall, Times::Once);
    let job = cb.decommission_job(true).await.expect("job");
    tokio::time::sleep(cluster.config().timings.decommission * 4).await;
    let waiting = cb.job(&job).await.expect("job").expect("known");
    assert_eq!(waiting.status, JobStatus::Waiting);
    assert_eq!(b.process(), NodeProcess::Leaving);
    assert!(b.is_ready(), "a leaving node still serves");
    assert_eq!(b.release(Route::DecommissionV1), 1);
    assert_eq!(job_outcome(&cb, &job).await.status, JobStatus::Completed);
    assert_eq!(b.process(), NodeProcess::Decommissioned);
}

#[tokio::test]
async fn injected_status_and_delay_surface_as_typed_errors() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 11, 1, true).await;
    start_ready(&a, &ca).await;
    a.inject(Route::Endpoints, Fault::Status(500), Times::Once);
    let error = ca.endpoints().await.expect_err("injected 500");
    assert_eq!(error.status(), Some(500));
    assert_eq!(error.result_label(), "http_5xx");
    assert_eq!(
        error.to_string(),
        "GET /api/v0/metadata/endpoints on dc1-r1-sts-1 (127.200.11.1): HTTP 500: injected failure"
    );
    ca.endpoints().await.expect("only once");

    a.inject(
        Route::Drain,
        Fault::Delay(Duration::from_millis(400)),
        Times::Always,
    );
    let impatient = settings()
        .with_timeout(Route::Drain, Duration::from_millis(100))
        .client(a.pod(), a.ip());
    let error = impatient
        .drain()
        .await
        .expect_err("delayed past the timeout");
    assert!(matches!(error, Error::Timeout { .. }));
    assert!(
        error
            .to_string()
            .contains("POST /api/v0/ops/node/drain on dc1-r1-sts-1"),
        "{error}"
    );
    a.clear_faults();
    ca.readiness().await.expect("still answering");
}

#[tokio::test]
async fn evicted_jobs_answer_404() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 12, 1, true).await;
    start_ready(&a, &ca).await;
    let Submission::Job(id) = ca
        .submit_job(&TableOperation::Flush(KeyspaceRequest::default()))
        .await
        .expect("flush")
    else {
        panic!("flush is a job on a current server");
    };
    assert!(ca.job(&id).await.expect("job").is_some());
    a.evict_jobs();
    assert_eq!(ca.job(&id).await.expect("404 is not an error"), None);
    // 500 for evicted jobs (seen on real servers) stays an error the caller sees.
    a.inject(Route::JobStatus, Fault::Status(500), Times::Once);
    assert_eq!(ca.job(&id).await.expect_err("500").status(), Some(500));
}

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("ca");
        Self {
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `name` with the given usage.
    fn issue(&self, name: &str, usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("issue");
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test]
async fn mutual_tls_needs_the_right_ca_and_a_client_certificate() {
    let pki = Pki::new("management-api-ca");
    // The server certificate names a host, not the pod IP: the name is not checked.
    let (server_cert, server_key) = pki.issue(
        "cassandra.example",
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) =
        pki.issue("operator", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let cluster = fast_cluster();
    let spec = NodeSpec::new("tls-0", "dc1", "r1", "pvc-tls", ip(13, 1))
        .seed(true)
        .tls(FakeTls {
            server_chain_pem: server_cert,
            server_key_pem: server_key,
            client_ca_pem: pki.ca_pem.clone(),
        });
    let node = cluster.start_node(spec).await.expect("tls node");

    let good = MutualTls::from_pem(&pki.ca_pem, &client_cert, &client_key).expect("tls config");
    let settings = ClientSettings::mutual_tls(good).with_timeout_for_all(WAIT);
    let client = settings.client("tls-0", node.ip());
    assert!(client.base_url().starts_with("https://"));
    client.liveness().await.expect("mutual TLS works");
    start_ready(&node, &client).await;

    // Trusting another CA: the server's chain is rejected.
    let other = Pki::new("other-ca");
    let (other_cert, other_key) =
        other.issue("operator", rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let wrong_trust =
        MutualTls::from_pem(&other.ca_pem, &client_cert, &client_key).expect("config");
    let error = ClientSettings::mutual_tls(wrong_trust)
        .with_timeout_for_all(WAIT)
        .client("tls-0", node.ip())
        .liveness()
        .await
        .expect_err("server not trusted");
    assert!(matches!(error, Error::Transport { .. }), "{error}");

    // A client certificate from another CA is refused by the server.
    let wrong_cert = MutualTls::from_pem(&pki.ca_pem, &other_cert, &other_key).expect("config");
    let error = ClientSettings::mutual_tls(wrong_cert)
        .with_timeout_for_all(WAIT)
        .client("tls-0", node.ip())
        .liveness()
        .await
        .expect_err("client not trusted");
    assert!(matches!(error, Error::Transport { .. }), "{error}");

    // No client certificate at all, and plain HTTP, are refused too.
    assert!(no_client_certificate_is_refused(&pki.ca_pem, node.address()).await);
    let error = settings_plain_to(node.ip())
        .liveness()
        .await
        .expect_err("plain HTTP to TLS");
    assert!(matches!(error, Error::Transport { .. }), "{error}");
}

fn settings_plain_to(ip: IpAddr) -> ManagementApiClient {
    ClientSettings::insecure()
        .with_timeout_for_all(Duration::from_secs(2))
        .client("tls-0", ip)
}

/// A TLS client that trusts the CA but sends no certificate gets no HTTP answer.
async fn no_client_certificate_is_refused(ca_pem: &str, address: std::net::SocketAddr) -> bool {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("cassandra.example").expect("name");
    let Ok(mut stream) = connector.connect(name, tcp).await else {
        return true;
    };
    let request = b"GET /api/v0/probes/liveness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return true;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    matches!(read, Ok(Err(_))) || !String::from_utf8_lossy(&answer).contains("200")
}

#[tokio::test]
async fn calls_are_recorded_and_reads_are_not_writes() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 14, 1, true).await;
    ca.liveness().await.expect("liveness");
    ca.readiness().await.expect("readiness");
    ca.features().await.expect("features");
    let _ = ca.endpoints().await;
    let _ = ca.job(&JobId("x".into())).await;
    assert_eq!(a.calls().len(), 5);
    assert_eq!(a.calls().write_count(), 0, "no Management API writes");
    start_ready(&a, &ca).await;
    ca.create_role(&NewRole {
        username: "u".into(),
        password: "hunter2".into(),
        is_superuser: false,
        can_login: true,
    })
    .await
    .expect("role");
    let calls = a.calls();
    assert_eq!(calls.write_count(), 2);
    assert_eq!(calls.count(Route::RoleCreate), 1);
    let recorded = calls
        .calls
        .iter()
        .find(|c| c.route == Some(Route::RoleCreate))
        .expect("recorded");
    assert!(
        recorded.query.contains("password=***"),
        "{}",
        recorded.query
    );
    assert!(!recorded.query.contains("hunter2"));
    assert_eq!(cluster.calls().for_pod(a.pod()).len(), calls.len());
    assert_eq!(cluster.calls().count(Route::Drain), 0);
}

#[tokio::test]
async fn readiness_changes_are_reported() {
    let cluster = fast_cluster();
    let mut events = cluster.subscribe();
    let (a, ca) = node(&cluster, 15, 1, true).await;
    let (b, cb) = node(&cluster, 15, 2, false).await;
    start_ready(&a, &ca).await;
    start_ready(&b, &cb).await;
    cb.drain().await.expect("drain");
    assert!(!b.is_ready());
    let gossip = ca.endpoints().await.expect("endpoints");
    let drained = gossip.by_ip(b.ip()).expect("drained node stays in gossip");
    assert_eq!(drained.status(), NodeStatus::Shutdown);
    assert!(!drained.is_alive());
    assert_eq!(
        cb.start(None).await.expect("drained"),
        StartOutcome::RunningNotReachable
    );
    drop(a);
    let mut received: Vec<NodeEvent> = Vec::new();
    while let Ok(event) = events.try_recv() {
        received.push(event);
    }
    let summary: Vec<(String, ReadinessChange)> =
        received.iter().map(|e| (e.pod.clone(), e.change)).collect();
    assert_eq!(
        summary,
        vec![
            ("dc1-r1-sts-1".to_string(), ReadinessChange::Ready),
            ("dc1-r1-sts-2".to_string(), ReadinessChange::Ready),
            (
                "dc1-r1-sts-2".to_string(),
                ReadinessChange::NotReady(NotReadyReason::Drained)
            ),
            (
                "dc1-r1-sts-1".to_string(),
                ReadinessChange::NotReady(NotReadyReason::ShutDown)
            ),
        ]
    );
    assert_eq!(received[1].ip, b.ip());
    assert_eq!(received[1].datacenter, "dc1");
}

#[tokio::test]
async fn passwords_never_appear_in_errors() {
    let cluster = fast_cluster();
    let (a, ca) = node(&cluster, 16, 1, true).await;
    start_ready(&a, &ca).await;
    a.inject(Route::RoleCreate, Fault::Status(400), Times::Once);
    let error = ca
        .create_role(&NewRole {
            username: "u".into(),
            password: "injected failure".into(),
            is_superuser: false,
            can_login: true,
        })
        .await
        .expect_err("injected");
    // The server's body happens to equal the password: it is scrubbed.
    let message = error.to_string();
    assert!(!message.contains("injected failure"), "{message}");
    assert!(
        message.contains("POST /api/v0/ops/auth/role on dc1-r1-sts-1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_binder_makes_the_listening_socket() {
    let cluster = fast_cluster();
    let called = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&called);
    let binder: Binder = Arc::new(move |address| {
        seen.store(true, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    });
    let spec = NodeSpec::new("dc1-r1-sts-1", "dc1", "r1", "pvc-1", ip(30, 1))
        .seed(true)
        .binder(binder);
    let fake = cluster.start_node(spec).await.expect("fake node starts");
    assert!(called.load(Ordering::SeqCst), "the binder made the socket");
    settings()
        .client("dc1-r1-sts-1", ip(30, 1))
        .liveness()
        .await
        .expect("served on the binder's socket");

    // A binder that fails fails the start, naming the address.
    let failing: Binder = Arc::new(|_| Err(std::io::Error::other("no namespace")));
    let spec = NodeSpec::new("dc1-r1-sts-2", "dc1", "r1", "pvc-2", ip(30, 2)).binder(failing);
    let error = cluster.start_node(spec).await.expect_err("cannot bind");
    let message = error.to_string();
    assert!(
        message.contains("127.200.30.2") && message.contains("no namespace"),
        "{message}"
    );
    drop(fake);
}

/// Cassandra 4.1's replication rules: the first node applies
/// `-Dcassandra.system_distributed_replication`, a factor for a datacenter without nodes is refused,
/// and `system_auth` keeps a datacenter whose nodes are alive.
#[tokio::test]
async fn replication_follows_cassandras_rules() {
    let cluster = fast_cluster();
    let test = 40;
    let pod = "dc1-r1-sts-1";
    let spec = NodeSpec::new(pod, "dc1", "r1", "pvc-1", ip(test, 1))
        .seed(true)
        .system_replication([("dc1".to_owned(), 3)].into());
    let a = cluster.start_node(spec).await.expect("fake node starts");
    let ca = settings().client(pod, ip(test, 1));
    start_ready(&a, &ca).await;
    for keyspace in ["system_auth", "system_distributed", "system_traces"] {
        let replication = cluster.keyspace_replication(keyspace).expect("exists");
        assert_eq!(
            replication.datacenter_factors(),
            [("dc1".to_owned(), 3)].into(),
            "{keyspace}"
        );
    }
    let unknown = ca
        .alter_keyspace(&KeyspaceReplicationRequest::new(
            "system_auth",
            [("dc1", 3), ("dc9", 3)],
        ))
        .await
        .expect_err("a datacenter without nodes");
    assert!(
        unknown
            .to_string()
            .contains("Unrecognized strategy option {dc9}"),
        "{unknown}"
    );
    let (b, cb) = node_in(&cluster, test, 2, "dc2", "pvc-2", false).await;
    start_ready(&b, &cb).await;
    ca.alter_keyspace(&KeyspaceReplicationRequest::new(
        "system_auth",
        [("dc1", 3), ("dc2", 1)],
    ))
    .await
    .expect("both datacenters have nodes");
    let live = ca
        .alter_keyspace(&KeyspaceReplicationRequest::new(
            "system_auth",
            [("dc1", 3)],
        ))
        .await
        .expect_err("dc2's nodes are alive");
    assert!(
        live.to_string()
            .contains("Following datacenters have active nodes and must be present in replication options for keyspace system_auth: [dc2]"),
        "{live}"
    );
    // A user keyspace may drop it.
    ca.create_keyspace(&KeyspaceReplicationRequest::new(
        "app",
        [("dc1", 1), ("dc2", 1)],
    ))
    .await
    .expect("create");
    ca.alter_keyspace(&KeyspaceReplicationRequest::new("app", [("dc1", 1)]))
        .await
        .expect("user keyspaces may leave a live datacenter");
}
