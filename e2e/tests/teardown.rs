//! A fleet leaves no process and no pod network behind: not when a test panics, and not even
//! when the test process is killed outright (the next fleet reaps what it left).
#![allow(clippy::expect_used)]

use std::{path::PathBuf, process::Command};

use k8ssandra_e2e::{Fleet, FleetConfig, pod_network::PodNetwork, process::is_running};

/// Set in the child test process that starts a fleet and then dies without any clean-up.
const ABANDON_ENV: &str = "K8SSANDRA_E2E_ABANDON_FLEET_PIDS_FILE";

fn small_fleet(name: &str) -> FleetConfig {
    FleetConfig::new(name, 1)
        .nodes_per_cluster(1)
        .install_crds(false)
}

/// The fleet's pod network and its clusters' ranges, to look for leftovers once it is gone.
fn network_of(fleet: &Fleet) -> (PodNetwork, Vec<String>) {
    let ranges = fleet.clusters().iter().map(|c| c.pod_cidr()).collect();
    (fleet.pod_network().clone(), ranges)
}

#[test]
fn a_panicking_test_stops_its_fleet_and_says_where_the_logs_are() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut fleet = small_fleet("panicking_test")
                .start()
                .await
                .expect("fleet starts");
            sender
                .send((fleet.process_ids(), fleet.log_summary(), network_of(&fleet)))
                .expect("send");
            panic!("a failing assertion while the fleet runs");
        })
    })
    .join();
    assert!(outcome.is_err(), "the test thread panicked");
    let (pids, summary, (network, ranges)) = receiver.recv().expect("fleet details");
    assert_eq!(
        network.leftovers(&ranges).expect("ip"),
        Vec::<String>::new(),
        "the pod network outlived the panicking test"
    );
    assert_eq!(
        pids.len(),
        5,
        "etcd, apiserver, controller-manager, scheduler, kwok"
    );
    for pid in pids {
        assert!(
            !is_running(pid),
            "process {pid} outlived the panicking test"
        );
    }
    for process in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ] {
        assert!(
            summary.contains(process),
            "summary names {process}:\n{summary}"
        );
    }
    assert!(
        summary.contains("panicking_test"),
        "summary gives the log folder:\n{summary}"
    );
    assert!(
        summary.contains(".log"),
        "summary gives log files:\n{summary}"
    );
}

#[tokio::test]
async fn processes_of_a_killed_test_are_reaped_by_the_next_fleet() {
    if let Some(pids_file) = std::env::var_os(ABANDON_ENV) {
        // The child: start a fleet, note its processes, and die with no unwinding or clean-up,
        // as when a test run is killed.
        let mut fleet = small_fleet("abandoned")
            .start()
            .await
            .expect("fleet starts");
        let pids: Vec<String> = fleet.process_ids().iter().map(u32::to_string).collect();
        let network = match network_of(&fleet) {
            (PodNetwork::Namespace { path, link }, ranges) => {
                format!("{}\n{link}\n{}", path.display(), ranges.join(" "))
            }
            (PodNetwork::Loopback { .. }, _) => String::new(),
        };
        std::fs::write(&pids_file, format!("{}\n{network}", pids.join(" "))).expect("write");
        std::process::abort();
    }

    let pids_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("abandoned-fleet.pids");
    let _ = std::fs::remove_file(&pids_file);
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "processes_of_a_killed_test_are_reaped_by_the_next_fleet",
            "--nocapture",
        ])
        .env(ABANDON_ENV, &pids_file)
        .output()
        .expect("run the child test");
    assert!(!child.status.success(), "the child aborted");
    let written = std::fs::read_to_string(&pids_file).unwrap_or_else(|error| {
        panic!(
            "the child wrote no pids ({error}); its output:\n{}",
            String::from_utf8_lossy(&child.stderr)
        )
    });
    let mut lines = written.lines();
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|pid| pid.parse().expect("pid"))
        .collect();
    // The abandoned fleet's pod network, when it had one.
    let abandoned = match (lines.next(), lines.next(), lines.next()) {
        (Some(path), Some(link), Some(ranges)) => Some((
            PodNetwork::Namespace {
                path: path.into(),
                link: link.to_string(),
            },
            ranges
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    assert_eq!(pids.len(), 5);
    assert!(
        pids.iter().all(|&pid| is_running(pid)),
        "without clean-up the processes keep running"
    );
    if let Some((network, ranges)) = &abandoned {
        assert_eq!(
            network.leftovers(ranges).expect("ip").len(),
            3,
            "without clean-up the namespace, link and route stay"
        );
    }

    let fleet = small_fleet("after_abandoned")
        .start()
        .await
        .expect("next fleet starts");
    for pid in pids {
        assert!(!is_running(pid), "abandoned process {pid} was not reaped");
    }
    let after = network_of(&fleet);
    drop(fleet);
    // The next fleet may take the same slot, and so the same names: checked once it is gone too.
    for (network, ranges) in abandoned.iter().chain([&after]) {
        assert_eq!(
            network.leftovers(ranges).expect("ip"),
            Vec::<String>::new(),
            "a pod network was left behind"
        );
    }
}
