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
