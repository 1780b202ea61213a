//! The `k8ssandra-operator` binary as a process, the way a Deployment runs it: it serves
//! `/healthz`, `/readyz` once its watches listed, and `/metrics` with the Kubernetes API
//! requests it made; it logs JSON lines when asked; SIGTERM stops it at once, cleanly.
#![allow(clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8ssandra_e2e::{FleetConfig, wait};

/// The binary cargo built next to this test.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join("k8ssandra-operator");
    assert!(
        path.is_file(),
        "{} is missing: build it with cargo build -p k8ssandra-operator",
        path.display()
    );
    path
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET path`: the status code and the body (`None` when nothing answers).
fn get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

struct Operator(Child);

/// Starts the binary on `cluster` with `extra` arguments, serving on a free port; logs to `log`.
fn start(
    kubeconfig: &std::path::Path,
    log: &std::path::Path,
    extra: &[&str],
) -> (Operator, SocketAddr) {
    let address = free_address();
    let mut args = vec![
        "run".to_owned(),
        "--http-address".to_owned(),
        address.to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let child = Command::new(binary())
        .args(&args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).expect("log file"))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the operator starts");
    (Operator(child), address)
}

/// Whether the process at `address` says it leads.
fn leads(address: SocketAddr) -> Option<bool> {
    let (_, metrics) = get(address, "/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("leader "))
        .map(|v| v.trim() == "1")
}

/// The write requests (other than the Lease's) the process at `address` counted.
fn writes(address: SocketAddr) -> u64 {
    let (_, metrics) = get(address, "/metrics").unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("kubernetes_requests_total{"))
        .filter(|l| !l.contains("resource=\"leases\""))
        .filter(|l| {
            ["create", "update", "patch", "delete"]
                .iter()
                .any(|v| l.contains(&format!("verb=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The kinds of watches the process at `address` opened.
fn watches(address: SocketAddr) -> usize {
    let (_, metrics) = get(address, "/metrics").unwrap_or_default();
    metrics
        .lines()
        .filter(|l| l.starts_with("kubernetes_requests_total{") && l.contains("verb=\"watch\""))
        .count()
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_its_endpoints_logs_json_and_stops_on_sigterm() {
    let fleet = FleetConfig::new("operator_binary", 1)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts");
    let cluster = fleet.cluster(0);
    let address = free_address();
    let log = cluster.dir().join("operator.log");
    let started = Instant::now();
    let mut operator = Operator(
        Command::new(binary())
            .args([
                "run",
                "--http-address",
                &address.to_string(),
                "--log-format",
                "json",
            ])
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the operator starts"),
    );
    wait::until("/readyz to answer 200", Duration::from_secs(60), || async {
        (get(address, "/readyz")?.0 == 200).then_some(())
    })
    .await
    .expect("ready");
    eprintln!("ready {:?} after the start", started.elapsed());
    assert_eq!(get(address, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(address, "/nothing").map(|r| r.0), Some(404));
    let (status, metrics) = get(address, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    for series in [
        r#"kubernetes_requests_total{cluster="local",verb="list",resource="cassandradatacenters",result="200"}"#,
        r#"kubernetes_requests_total{cluster="local",verb="watch",resource="pods",result="200"}"#,
    ] {
        assert!(metrics.contains(series), "{series} in:\n{metrics}");
    }
    assert!(
        !metrics.contains(r#"result="403""#),
        "a forbidden request:\n{metrics}"
    );

    // SIGTERM: the process ends at once and says so.
    let pid = operator.0.id().to_string();
    let stopped = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = loop {
        if let Some(status) = operator.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    eprintln!("stopped {:?} after SIGTERM", stopped.elapsed());
    let lines = std::fs::read_to_string(&log).expect("log");
    assert!(lines.lines().count() >= 2, "{lines}");
    for line in lines.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(lines.contains("\"stopping\""), "{lines}");
}

#[tokio::test]
async fn two_replicas_elect_one_leader_that_hands_over_when_it_goes() {
    let fleet = FleetConfig::new("operator_leader", 1)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts");
    let cluster = fleet.cluster(0);
    let kubeconfig = cluster.kubeconfig_path().to_path_buf();
    // A datacenter, so that a leader has something to write.
    cluster
        .apply_yaml(
            "default",
            "apiVersion: cassandra.datastax.com/v1beta1\nkind: CassandraDatacenter\nmetadata:\n  name: dc1\nspec:\n  clusterName: demo\n  serverType: cassandra\n  serverVersion: 4.1.5\n  size: 1\n  storageConfig:\n    cassandraDataVolumeClaimSpec:\n      storageClassName: standard\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n",
        )
        .await
        .expect("datacenter");
    let elect = ["--leader-elect", "--leader-election-namespace", "default"];
    let (mut a, a_address) = start(&kubeconfig, &cluster.dir().join("a.log"), &elect);
    let (mut b, b_address) = start(&kubeconfig, &cluster.dir().join("b.log"), &elect);
    let (leader, follower) = wait::until("one leader", Duration::from_secs(60), || async {
        match (leads(a_address)?, leads(b_address)?) {
            (true, false) => Some((0, 1)),
            (false, true) => Some((1, 0)),
            _ => None,
        }
    })
    .await
    .expect("a leader");
    let addresses = [a_address, b_address];
    // Both are ready: the follower is idle, not broken.
    for address in addresses {
        wait::until("ready", Duration::from_secs(60), || async {
            (get(address, "/readyz")?.0 == 200).then_some(())
        })
        .await
        .expect("ready");
    }
    wait::until("the leader writes", Duration::from_secs(60), || async {
        (writes(addresses[leader]) > 0).then_some(())
    })
    .await
    .expect("the leader acts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(writes(addresses[follower]), 0, "the follower wrote");
    assert_eq!(
        watches(addresses[follower]),
        0,
        "the follower watches nothing"
    );
    assert_eq!(leads(addresses[leader]), Some(true));
    assert_eq!(leads(addresses[follower]), Some(false));

    // The leader dies without a word: the follower takes over once the Lease expired.
    let killed = Instant::now();
    let processes = [&mut a, &mut b];
    let _ = processes[leader].0.kill();
    let _ = processes[leader].0.wait();
    wait::until("the follower to lead", Duration::from_secs(60), || async {
        leads(addresses[follower]).filter(|l| *l).map(|_| ())
    })
    .await
    .expect("hand-over");
    let handed_over = killed.elapsed();
    eprintln!("hand-over {handed_over:?} after the leader was killed");
    // The lease (15 s), and one retry period (2 s) to notice.
    assert!(
        handed_over <= Duration::from_secs(15 + 2 + 2),
        "hand-over took {handed_over:?}, beyond the lease time"
    );
    wait::until("the new leader writes", Duration::from_secs(60), || async {
        (writes(addresses[follower]) > 0).then_some(())
    })
    .await
    .expect("the new leader acts");

    // A leader that is stopped releases the Lease: a new replica takes it at once.
    let (_c, c_address) = start(&kubeconfig, &cluster.dir().join("c.log"), &elect);
    wait::until("c waiting", Duration::from_secs(60), || async {
        leads(c_address).filter(|l| !*l).map(|_| ())
    })
    .await
    .expect("c is a follower");
    let stopped = Instant::now();
    let survivor = [&mut a, &mut b];
    let pid = survivor[follower].0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    wait::until("c to lead", Duration::from_secs(60), || async {
        leads(c_address).filter(|l| *l).map(|_| ())
    })
    .await
    .expect("c leads");
    let released = stopped.elapsed();
    eprintln!("hand-over {released:?} after the leader was stopped");
    assert!(
        released < Duration::from_secs(15),
        "a released Lease was waited out: {released:?}"
    );
}

#[tokio::test]
async fn clientconfig_create_gives_the_control_plane_just_enough_access() {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use k8ssandra_api::{cassandra::CassandraDatacenter, config::ClientConfig};
    use kube::Api;

    let fleet = FleetConfig::new("operator_clientconfig", 2)
        .nodes_per_cluster(1)
        .start()
        .await
        .expect("fleet starts");
    let remote = fleet.cluster(1).context().to_owned();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "clientconfig",
            "create",
            "--context",
            &remote,
            "--control-plane-context",
            "kind-k8ssandra-0",
        ];
        args.extend_from_slice(extra);
        Command::new(binary())
            .args(&args)
            .arg("--kubeconfig")
            .arg(fleet.kubeconfig_path())
            .output()
            .expect("runs")
    };
    let printed = run(&["-o", "yaml"]);
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        text.contains("kind: Secret") && text.contains("kind: ClientConfig"),
        "{text}"
    );
    let neither = Command::new(binary())
        .args(["clientconfig", "create", "--context", &remote])
        .output()
        .expect("runs");
    assert!(
        !neither.status.success(),
        "neither --apply nor -o is refused"
    );

    let applied = run(&["--apply"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let control = fleet.cluster(0).client();
    let config = Api::<ClientConfig>::namespaced(control.clone(), "k8ssandra-operator")
        .get(&remote)
        .await
        .expect("the ClientConfig");
    assert_eq!(config.spec.context_name.as_deref(), Some(remote.as_str()));
    let secret = Api::<Secret>::namespaced(control, "k8ssandra-operator")
        .get(&config.spec.kube_config_secret.name)
        .await
        .expect("the kubeconfig Secret");
    let kubeconfig = secret.data.expect("data")["kubeconfig"].0.clone();

    // The kubeconfig reaches the remote cluster with what the control plane needs, no more.
    let parsed: kube::config::Kubeconfig =
        serde_yaml::from_slice(&kubeconfig).expect("a kubeconfig");
    let options = kube::config::KubeConfigOptions {
        context: Some(remote.clone()),
        ..Default::default()
    };
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(parsed, &options)
            .await
            .expect("usable"),
    )
    .expect("client");
    Api::<CassandraDatacenter>::all(client.clone())
        .list(&Default::default())
        .await
        .expect("CassandraDatacenters can be listed");
    let namespaces = Api::<Namespace>::all(client)
        .list(&Default::default())
        .await
        .expect_err("namespaces cannot");
    assert!(
        matches!(&namespaces, kube::Error::Api(status) if status.code == 403),
        "{namespaces}"
    );
    // Running it again succeeds (every write is an apply).
    assert!(run(&["--apply"]).status.success());
}
