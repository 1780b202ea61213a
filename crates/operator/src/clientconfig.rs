//! `k8ssandra-operator clientconfig create`: access for the control plane to a remote cluster,
//! made from the user's kubeconfig, written into the control-plane cluster or printed.

use std::path::PathBuf;

use anyhow::Context as _;
use k8ssandra_control_plane::client_config::create::{self, Access, Request};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// What `clientconfig create` is asked for.
#[derive(Clone, Debug, clap::Args)]
pub struct CreateArgs {
    /// The remote cluster's context in the kubeconfig (the name datacenters give in
    /// `k8sContext`).
    #[arg(long)]
    pub context: String,
    /// The kubeconfig holding both contexts (default: `KUBECONFIG` or `~/.kube/config`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The operator's namespace: the ServiceAccount's in the remote cluster, the Secret's and
    /// ClientConfig's in the control-plane cluster.
    #[arg(long, default_value = "k8ssandra-operator")]
    pub namespace: String,
    /// The control-plane cluster's context (default: the kubeconfig's current one).
    #[arg(long)]
    pub control_plane_context: Option<String>,
    /// The ServiceAccount made in the remote cluster.
    #[arg(long, default_value = "k8ssandra-control-plane")]
    pub service_account: String,
    /// Apply the Secret and the ClientConfig in the control-plane cluster.
    #[arg(long, conflicts_with = "output")]
    pub apply: bool,
    /// Print them instead (`yaml`); the Secret holds the token.
    #[arg(short = 'o', long, value_parser = ["yaml"])]
    pub output: Option<String>,
}

fn kubeconfig(path: Option<&PathBuf>) -> anyhow::Result<Kubeconfig> {
    match path {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display())),
        None => Kubeconfig::read().context("reading the kubeconfig (KUBECONFIG or ~/.kube/config)"),
    }
}

async fn client_of(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
) -> anyhow::Result<(kube::Client, String)> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let what = context.unwrap_or("the current context");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .with_context(|| format!("context {what} of the kubeconfig"))?;
    k8ssandra_reconcile::identity::identify(&mut config);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).with_context(|| format!("a client of {what}"))?;
    Ok((client, server))
}

/// Runs `clientconfig create`.
///
/// # Errors
/// When a kubeconfig or context cannot be used, or a cluster refuses a write.
pub async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let file = kubeconfig(args.kubeconfig.as_ref())?;
    let (remote, server) = client_of(&file, Some(&args.context)).await?;
    let request = Request {
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        service_account: args.service_account.clone(),
        server: server.trim_end_matches('/').to_owned(),
    };
    let access = create::create(&remote, &request).await?;
    if args.apply {
        let (control, _) = client_of(&file, args.control_plane_context.as_deref()).await?;
        apply(&control, &args.namespace, &access).await?;
        eprintln!(
            "ClientConfig {ns}/{name} and Secret {ns}/{secret} applied: the control plane reaches \
             context {context} as ServiceAccount {ns}/{account}",
            ns = args.namespace,
            name = kube::ResourceExt::name_any(&access.client_config),
            secret = kube::ResourceExt::name_any(&access.secret),
            context = args.context,
            account = args.service_account,
        );
        return Ok(());
    }
    let mut out = serde_yaml::to_string(&access.secret)?;
    out.push_str("---\n");
    out.push_str(&serde_yaml::to_string(&access.client_config)?);
    print!("{out}");
    Ok(())
}

async fn apply(client: &kube::Client, namespace: &str, access: &Access) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use k8ssandra_api::config::ClientConfig;
    use kube::Api;
    let manager = "k8ssandra-operator-clientconfig";
    let namespaces = Api::<Namespace>::all(client.clone());
    if namespaces.get_opt(namespace).await?.is_none() {
        let mut object = Namespace::default();
        object.metadata.name = Some(namespace.to_owned());
        namespaces
            .create(&Default::default(), &object)
            .await
            .with_context(|| format!("creating namespace {namespace}"))?;
    }
    k8ssandra_reconcile::apply::apply(
        &Api::<Secret>::namespaced(client.clone(), namespace),
        manager,
        &access.secret,
    )
    .await
    .context("applying the kubeconfig Secret")?;
    k8ssandra_reconcile::apply::apply(
        &Api::<ClientConfig>::namespaced(client.clone(), namespace),
        manager,
        &access.client_config,
    )
    .await
    .context("applying the ClientConfig")?;
    Ok(())
}
