//! The control plane reaches Kubernetes API servers only: nothing it is built from can speak to a
//! Cassandra pod's Management API, so every Cassandra operation is left to the data plane of the
//! datacenter's own cluster (the e2e tests check, from the fake's call log, who made each call).

#[test]
fn no_management_api_client_is_linked_into_the_control_plane() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            "k8ssandra-control-plane",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("kube ")),
        "the tree lists the dependencies: {tree}"
    );
    for forbidden in ["k8ssandra-mgmt-api", "k8ssandra-data-plane", "reqwest"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{forbidden} "))),
            "{forbidden} is linked into the control plane"
        );
    }
}
