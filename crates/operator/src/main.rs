//! The `k8ssandra-operator` binary.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use k8ssandra_api::crd;

mod clientconfig;
mod http;
mod run;

/// A multi-cluster Apache Cassandra operator, compatible with the K8ssandra stack.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: the data-plane controllers (CassandraDatacenter, CassandraTask,
    /// ScheduledTask) against the cluster of the current kubeconfig or the pod's service account,
    /// and with --control-plane the control-plane ones (ClientConfig, K8ssandraCluster,
    /// K8ssandraTask, ReplicatedSecret).
    Run {
        /// Watch only this namespace (default: every namespace).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Upstream's image configuration file (`config.k8ssandra.io` ImageConfig, v1beta1 or
        /// v1beta2); default: `/configs/image_config.yaml` where cass-operator mounts it, if it
        /// exists, else upstream v1.32's images.
        #[arg(long, env = "IMAGE_CONFIG", value_name = "FILE")]
        image_config: Option<PathBuf>,
        /// Also run the control plane: ClientConfigs, K8ssandraClusters, K8ssandraTasks,
        /// ReplicatedSecrets.
        #[arg(long, env = "K8SSANDRA_CONTROL_PLANE", default_value_t = false)]
        control_plane: bool,
        /// Where `/metrics`, `/healthz` and `/readyz` are served.
        #[arg(long, env = "HTTP_ADDRESS", default_value = "0.0.0.0:8080")]
        http_address: std::net::SocketAddr,
        /// How log lines are written (the level comes from RUST_LOG, `info` by default).
        #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = run::LogFormat::Text)]
        log_format: run::LogFormat,
        /// Elect one leader among the replicas through a Lease: only the leader runs the
        /// controllers; another takes over within the lease duration (15 s) when it is gone.
        #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
        leader_elect: bool,
        /// Namespace of the leader Lease (default: the pod's).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        leader_election_namespace: String,
        /// Name of the leader Lease.
        #[arg(long, default_value = "k8ssandra-operator-leader")]
        leader_election_id: String,
    },
    /// Give the control plane access to a remote cluster (upstream's create-clientconfig.sh).
    Clientconfig {
        #[command(subcommand)]
        action: ClientConfigAction,
    },
    /// Print the CustomResourceDefinitions, or write them into a directory, or check a directory.
    Crd {
        /// Write one file per CRD (and a kustomization.yaml) into this directory.
        #[arg(long, value_name = "DIR", conflicts_with = "check")]
        output_dir: Option<PathBuf>,
        /// Fail if the CRD files in this directory differ from what this binary generates.
        #[arg(long, value_name = "DIR")]
        check: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClientConfigAction {
    /// Make, in the remote cluster, a ServiceAccount with a long-lived token and the RBAC the
    /// control plane needs there; then apply (`--apply`) or print (`-o yaml`) the kubeconfig
    /// Secret and the ClientConfig for the control-plane cluster.
    Create(clientconfig::CreateArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Clientconfig {
            action: ClientConfigAction::Create(args),
        } => {
            if !args.apply && args.output.is_none() {
                bail!("say what to do with the result: --apply, or -o yaml to print it");
            }
            runtime()?.block_on(clientconfig::create(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            namespace,
            control_plane,
            image_config,
            http_address,
            log_format,
            leader_elect,
            leader_election_namespace,
            leader_election_id,
        } => {
            let options = run::Options {
                namespace,
                images: run::images(image_config.as_deref())?,
                control_plane,
                http_address,
                log_format,
                leader_lease: leader_elect
                    .then_some((leader_election_namespace, leader_election_id)),
            };
            runtime()?.block_on(run::operator(options))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crd {
            output_dir: Some(dir),
            ..
        } => {
            write_crds(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crd {
            check: Some(dir), ..
        } => check_crds(&dir),
        Command::Crd { .. } => print_crds(),
    }
}

fn print_crds() -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for definition in crd::all() {
        match out.write_all(crd::to_yaml(&definition)?.as_bytes()) {
            Ok(()) => {}
            // The reader stopped early (`| head`): not an error of ours.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every generated file of a CRD directory, by file name, with its content.
fn generated_files() -> anyhow::Result<Vec<(String, String)>> {
    let definitions = crd::all();
    let mut files = Vec::with_capacity(definitions.len() + 1);
    let mut kustomization = String::from(
        "# Generated by `k8ssandra-operator crd --output-dir`; do not edit.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for definition in &definitions {
        let name = crd::file_name(definition);
        kustomization.push_str(&format!("  - {name}\n"));
        files.push((name, crd::to_yaml(definition)?));
    }
    files.push(("kustomization.yaml".to_owned(), kustomization));
    Ok(files)
}

fn write_crds(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = generated_files()?;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "yaml")
            && !files
                .iter()
                .any(|(name, _)| path.file_name().is_some_and(|f| f == name.as_str()));
        if stale {
            fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    for (name, content) in files {
        let path = dir.join(name);
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn check_crds(dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let files = generated_files()?;
    let mut problems = Vec::new();
    for (name, content) in &files {
        match fs::read_to_string(dir.join(name)) {
            Ok(existing) if existing == *content => {}
            Ok(_) => problems.push(format!("{name} differs from the generated CRD")),
            Err(_) => problems.push(format!("{name} is missing")),
        }
    }
    for entry in fs::read_dir(dir)? {
        let file_name = entry?.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.ends_with(".yaml") && !files.iter().any(|(name, _)| *name == file_name) {
            problems.push(format!("{file_name} is not generated by this binary"));
        }
    }
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        eprintln!("{}: {problem}", dir.display());
    }
    eprintln!("run `make crds` and commit the result");
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("k8ssandra-crd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn written_crds_pass_the_check_and_any_drift_fails_it() {
        let dir = scratch_dir("drift");
        write_crds(&dir).expect("CRDs written");
        assert_eq!(check_crds(&dir).expect("checked"), ExitCode::SUCCESS);

        let file = dir.join("k8ssandra.io_k8ssandraclusters.yaml");
        let edited = fs::read_to_string(&file)
            .expect("readable")
            .replace("k8c", "kc");
        fs::write(&file, edited).expect("writable");
        assert_eq!(check_crds(&dir).expect("checked"), ExitCode::FAILURE);

        write_crds(&dir).expect("CRDs rewritten");
        fs::write(dir.join("stale.yaml"), "---\n").expect("writable");
        assert_eq!(check_crds(&dir).expect("checked"), ExitCode::FAILURE);
        write_crds(&dir).expect("stale file removed");
        assert!(!dir.join("stale.yaml").exists());
        assert_eq!(check_crds(&dir).expect("checked"), ExitCode::SUCCESS);
        fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
