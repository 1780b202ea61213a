//! A fleet leaves no process behind: not when a test panics, and not even when the test process
//! is killed outright (the next fleet reaps what it left).
#![allow(clippy::expect_used)]

use std::{path::PathBuf, process::Command};

use k8ssandra_e2e::{FleetConfig, process::is_running};

/// Set in the child test process that starts a fleet and then dies without any clean-up.
const ABANDON_ENV: &str = "K8SSANDRA_E2E_ABANDON_FLEET_PIDS_FILE";

fn small_fleet(name: &str) -> FleetConfig {
    FleetConfig::new(name, 1)
        .nodes_per_cluster(1)
        .install_crds(false)
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
                .send((fleet.process_ids(), fleet.log_summary()))
                .expect("send");
            panic!("a failing assertion while the fleet runs");
        })
    })
    .join();
    assert!(outcome.is_err(), "the test thread panicked");
    let (pids, summary) = receiver.recv().expect("fleet details");
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
        std::fs::write(&pids_file, pids.join(" ")).expect("write pids");
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
    let pids: Vec<u32> = std::fs::read_to_string(&pids_file)
        .unwrap_or_else(|error| {
            panic!(
                "the child wrote no pids ({error}); its output:\n{}",
                String::from_utf8_lossy(&child.stderr)
            )
        })
        .split_whitespace()
        .map(|pid| pid.parse().expect("pid"))
        .collect();
    assert_eq!(pids.len(), 5);
    assert!(
        pids.iter().all(|&pid| is_running(pid)),
        "without clean-up the processes keep running"
    );

    let fleet = small_fleet("after_abandoned")
        .start()
        .await
        .expect("next fleet starts");
    for pid in pids {
        assert!(!is_running(pid), "abandoned process {pid} was not reaped");
    }
    drop(fleet);
}
