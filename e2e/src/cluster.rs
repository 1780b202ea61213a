//! One local Kubernetes cluster: kube-apiserver, kube-controller-manager, kube-scheduler and kwok
//! with fake nodes, sharing the fleet's etcd under its own key prefix.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use k8s_openapi::{
    api::{
        core::v1::{Namespace, Node, ServiceAccount},
        storage::v1::StorageClass,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
    config::KubeConfigOptions,
    runtime::wait::{Condition, conditions::is_crd_established},
};

use crate::{
    HarnessError,
    certs::ClusterCredentials,
    fs_write,
    kubeconfig::{self, ClusterAccess},
    nodes::{self, fake_node},
    pod_network::{ClusterAddresses, PodNetwork},
    process::ManagedProcess,
    readiness::{self, is_pod_ready},
    slots::Slot,
    stages,
    storage::standard_storage_class,
    tools::Tools,
    wait,
};

/// Field manager of the harness's server-side applies.
const FIELD_MANAGER: &str = "k8ssandra-e2e";
/// Slot port used by kube-apiserver.
const APISERVER_PORT: u16 = 0;
/// Service IP range, the same in every cluster, as in kind.
const SERVICE_CIDR: &str = "10.96.0.0/16";

/// What a cluster is made of.
#[derive(Clone, Debug)]
pub struct ClusterLayout {
    /// Fake nodes.
    pub nodes: usize,
    /// Zones the nodes are spread over, round robin.
    pub zones: Vec<String>,
    /// Install the project's CRDs while starting.
    pub install_crds: bool,
    /// How long each start-up step may take.
    pub startup_timeout: Duration,
}

/// A running local cluster. Its processes stop when it is dropped.
pub struct LocalCluster {
    index: usize,
    name: String,
    dir: PathBuf,
    access: ClusterAccess,
    credentials: ClusterCredentials,
    kubeconfig_path: PathBuf,
    client: Client,
    client_config: Config,
    apiserver: ManagedProcess,
    /// How kube-apiserver was started, to start it again.
    apiserver_command: (PathBuf, Vec<String>),
    apiserver_starts: usize,
    /// kube-controller-manager, kube-scheduler and kwok, once started.
    controllers: Vec<ManagedProcess>,
    layout: ClusterLayout,
    network: PodNetwork,
    addresses: ClusterAddresses,
    /// Declared last: released only after the processes above are stopped.
    slot: Slot,
}

impl LocalCluster {
    /// Generates credentials and starts kube-apiserver; `wait_apiserver_ready` follows.
    pub(crate) async fn launch(
        index: usize,
        run_dir: &Path,
        tools: &Tools,
        etcd_url: &str,
        slot: Slot,
        network: PodNetwork,
        layout: ClusterLayout,
    ) -> Result<Self, HarnessError> {
        let name = format!("k8ssandra-{index}");
        let dir = run_dir.join(&name);
        crate::create_dir(&dir)?;
        let credentials = ClusterCredentials::generate(&dir, &name)?;
        let port = slot.port(APISERVER_PORT);
        let access = ClusterAccess {
            context: format!("kind-{name}"),
            server: format!("https://127.0.0.1:{port}"),
            ca_pem: credentials.ca_pem.clone(),
            token: credentials.admin_token.clone(),
        };
        let kubeconfig_yaml = kubeconfig::kubeconfig_yaml(&[&access]);
        let kubeconfig_path = dir.join("kubeconfig");
        fs_write(&kubeconfig_path, &kubeconfig_yaml)?;
        let config = kubeconfig::parse(&kubeconfig_yaml)?;
        let client_config =
            Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
        let client = Client::try_from(client_config.clone())?;

        let path = |p: &Path| p.display().to_string();
        let args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--etcd-prefix=/{name}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--tls-cert-file={}", path(&credentials.serving_cert_file)),
            format!(
                "--tls-private-key-file={}",
                path(&credentials.serving_key_file)
            ),
            format!("--client-ca-file={}", path(&credentials.ca_file)),
            format!("--token-auth-file={}", path(&credentials.token_file)),
            "--authorization-mode=Node,RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!(
                "--service-account-key-file={}",
                path(&credentials.service_account_public_key_file)
            ),
            format!(
                "--service-account-signing-key-file={}",
                path(&credentials.service_account_key_file)
            ),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--allow-privileged=true".into(),
            // No kubelets register their own endpoints, and no real traffic needs fairness.
            "--endpoint-reconciler-type=none".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
        ];
        let apiserver = ManagedProcess::spawn(
            format!("{name}/kube-apiserver"),
            &tools.kube_apiserver,
            &args,
            &[],
            dir.join("kube-apiserver.log"),
            &slot,
        )?;
        Ok(Self {
            index,
            name,
            dir,
            access,
            credentials,
            kubeconfig_path,
            client,
            client_config,
            apiserver,
            apiserver_command: (tools.kube_apiserver.clone(), args),
            apiserver_starts: 1,
            controllers: Vec::new(),
            layout,
            addresses: network.addresses(slot.number()),
            network,
            slot,
        })
    }

    /// Waits until kube-apiserver answers `/readyz`, failing early if it exits.
    pub(crate) async fn wait_apiserver_ready(&mut self) -> Result<(), HarnessError> {
        let what = format!("{} to answer /readyz", self.apiserver.name());
        let (apiserver, client) = (&mut self.apiserver, &self.client);
        wait::until_ok(&what, self.layout.startup_timeout, || {
            let running = apiserver.check_running();
            let client = client.clone();
            async move {
                running?;
                let request = http::Request::get("/readyz").body(Vec::new());
                let ready = match request {
                    Ok(request) => client.request_text(request).await.ok(),
                    Err(_) => None,
                };
                Ok(ready.filter(|body| body.trim() == "ok").map(drop))
            }
        })
        .await
    }

    /// Starts kube-controller-manager, kube-scheduler and kwok.
    pub(crate) fn start_controllers(&mut self, tools: &Tools) -> Result<(), HarnessError> {
        let kubeconfig = format!("--kubeconfig={}", self.kubeconfig_path.display());
        let controller_manager_args = vec![
            kubeconfig.clone(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--cluster-name={}", self.name),
            format!(
                "--service-account-private-key-file={}",
                self.credentials.service_account_key_file.display()
            ),
            format!("--root-ca-file={}", self.credentials.ca_file.display()),
            "--use-service-account-credentials=false".into(),
            "--profiling=false".into(),
        ];
        let scheduler_args = vec![
            kubeconfig.clone(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--profiling=false".into(),
        ];
        let kwok_config = stages::write_kwok_config(&tools.kwok_stages_dir, &self.dir)?;
        let kwok_home = self.dir.join("kwok-home");
        crate::create_dir(&kwok_home)?;
        let addresses = self.addresses;
        let kwok_args = vec![
            kubeconfig,
            format!("--config={}", kwok_config.display()),
            "--manage-all-nodes=false".into(),
            format!(
                "--manage-nodes-with-annotation-selector={}={}",
                nodes::KWOK_NODE_ANNOTATION.0,
                nodes::KWOK_NODE_ANNOTATION.1
            ),
            // Fallbacks only: every node has its own address and pod CIDR.
            format!("--node-ip={}", addresses.kwok_node_ip()),
            format!("--cidr={}", addresses.kwok_pod_cidr()),
            "--node-lease-duration-seconds=40".into(),
        ];
        let processes = [
            (
                "kube-controller-manager",
                &tools.kube_controller_manager,
                controller_manager_args,
            ),
            ("kube-scheduler", &tools.kube_scheduler, scheduler_args),
            ("kwok", &tools.kwok, kwok_args),
        ];
        for (process, program, args) in processes {
            let envs: &[(&str, &Path)] = if process == "kwok" {
                // kwok keeps a cache under $HOME; one per cluster keeps them apart.
                &[("HOME", kwok_home.as_path())]
            } else {
                &[]
            };
            self.controllers.push(ManagedProcess::spawn(
                format!("{}/{process}", self.name),
                program,
                &args,
                envs,
                self.dir.join(format!("{process}.log")),
                &self.slot,
            )?);
        }
        Ok(())
    }

    /// Creates the fake nodes, the default StorageClass and (if asked) the CRDs, and waits until
    /// nodes are Ready and the `default` namespace can run pods.
    pub(crate) async fn prepare(&mut self) -> Result<(), HarnessError> {
        let post = PostParams::default();
        let node_api: Api<Node> = Api::all(self.client.clone());
        let zones = &self.layout.zones;
        for index in 0..self.layout.nodes {
            let zone = &zones[index % zones.len()];
            let node = fake_node(&self.name, &self.addresses, index, zone);
            node_api.create(&post, &node).await?;
        }
        Api::<StorageClass>::all(self.client.clone())
            .create(&post, &standard_storage_class())
            .await?;
        if self.layout.install_crds {
            self.install_crds().await?;
            tracing::info!(cluster = %self.name, "CRDs established");
        }
        let limit = self.layout.startup_timeout;
        for index in 0..self.layout.nodes {
            let name = nodes::node_name(&self.name, index);
            self.check_processes()?;
            wait::object(
                &node_api,
                &name,
                &format!("node {name} Ready"),
                limit,
                |node: &Node| node_is_ready(node),
            )
            .await?;
        }
        tracing::info!(cluster = %self.name, "nodes Ready");
        self.wait_default_service_account("default").await
    }

    /// Server-side applies every CRD of the project, then waits until each is established.
    pub async fn install_crds(&self) -> Result<(), HarnessError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let crds = k8ssandra_api::crd::all();
        for crd in &crds {
            api.patch(&crd.name_any(), &params, &Patch::Apply(crd))
                .await?;
        }
        for crd in &crds {
            let name = crd.name_any();
            let what = format!("CRD {name} established in {}", self.name);
            wait::object(&api, &name, &what, self.layout.startup_timeout, |crd| {
                is_crd_established().matches_object(Some(crd))
            })
            .await?;
        }
        Ok(())
    }

    /// Creates a namespace (if absent) and waits until pods can be created in it.
    pub async fn create_namespace(&self, name: &str) -> Result<(), HarnessError> {
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Namespace::default()
        };
        let params = PatchParams::apply(FIELD_MANAGER);
        Api::<Namespace>::all(self.client.clone())
            .patch(name, &params, &Patch::Apply(&namespace))
            .await?;
        self.wait_default_service_account(name).await
    }

    /// Server-side applies every document of `yaml` (objects without a namespace go to
    /// `namespace` when they are namespaced) and returns what the API server stored.
    pub async fn apply_yaml(
        &self,
        namespace: &str,
        yaml: &str,
    ) -> Result<Vec<DynamicObject>, HarnessError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut applied = Vec::new();
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let value: serde_json::Value = serde::Deserialize::deserialize(document)
                .map_err(|error| HarnessError::Manifest(error.to_string()))?;
            if value.is_null() {
                continue;
            }
            let object: DynamicObject = serde_json::from_value(value)
                .map_err(|error| HarnessError::Manifest(error.to_string()))?;
            let types = object.types.clone().ok_or_else(|| {
                HarnessError::Manifest(format!("{} has no apiVersion/kind", object.name_any()))
            })?;
            let gvk = GroupVersionKind::try_from(&types)
                .map_err(|error| HarnessError::Manifest(error.to_string()))?;
            let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk).await?;
            let api: Api<DynamicObject> = match capabilities.scope {
                kube::discovery::Scope::Namespaced => Api::namespaced_with(
                    self.client.clone(),
                    object.namespace().as_deref().unwrap_or(namespace),
                    &resource,
                ),
                kube::discovery::Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            };
            applied.push(
                api.patch(&object.name_any(), &params, &Patch::Apply(&object))
                    .await?,
            );
        }
        Ok(applied)
    }

    /// Sets or clears the readiness signal of a pod (see [`crate::readiness`]).
    pub async fn set_pod_ready(
        &self,
        namespace: &str,
        pod: &str,
        ready: bool,
    ) -> Result<(), HarnessError> {
        readiness::set_pod_ready(&self.client, namespace, pod, ready).await
    }

    /// Waits until the pod's Ready condition is `ready`.
    pub async fn wait_pod_ready(
        &self,
        namespace: &str,
        pod: &str,
        ready: bool,
    ) -> Result<(), HarnessError> {
        let api = Api::namespaced(self.client.clone(), namespace);
        let what = format!("pod {namespace}/{pod} in {} to be Ready={ready}", self.name);
        wait::object(&api, pod, &what, self.layout.startup_timeout, move |pod| {
            is_pod_ready(pod) == ready
        })
        .await
        .map(drop)
    }

    async fn wait_default_service_account(&self, namespace: &str) -> Result<(), HarnessError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("ServiceAccount {namespace}/default in {}", self.name);
        wait::until(&what, self.layout.startup_timeout, || {
            let api = api.clone();
            async move { api.get_opt("default").await.ok().flatten() }
        })
        .await
        .map(drop)
    }

    /// Fails with the log's last lines if any of the cluster's processes has exited.
    pub fn check_processes(&mut self) -> Result<(), HarnessError> {
        self.apiserver.check_running()?;
        self.controllers
            .iter_mut()
            .try_for_each(ManagedProcess::check_running)
    }

    /// Stops this cluster's kube-apiserver (the other processes keep running, as after a crash).
    pub fn stop_apiserver(&mut self) {
        self.apiserver.stop();
    }

    /// Starts this cluster's kube-apiserver again after [`LocalCluster::stop_apiserver`], with the
    /// same settings and data (its log is `kube-apiserver-<n>.log` for the `n`th start), and waits
    /// until it is ready.
    ///
    /// # Errors
    /// When it cannot start or does not become ready.
    pub async fn restart_apiserver(&mut self) -> Result<(), HarnessError> {
        self.apiserver.stop();
        self.apiserver_starts += 1;
        let (program, args) = &self.apiserver_command;
        self.apiserver = ManagedProcess::spawn(
            format!("{}/kube-apiserver", self.name),
            program,
            args,
            &[],
            self.dir
                .join(format!("kube-apiserver-{}.log", self.apiserver_starts)),
            &self.slot,
        )?;
        self.wait_apiserver_ready().await
    }

    /// Stops every process of this cluster.
    pub(crate) fn stop(&mut self) {
        for process in self.controllers.iter_mut().rev() {
            process.stop();
        }
        self.apiserver.stop();
    }

    /// Position in the fleet; the cluster is named `k8ssandra-<index>`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Cluster name, e.g. `k8ssandra-0`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// kubectl context name, e.g. `kind-k8ssandra-0`.
    pub fn context(&self) -> &str {
        &self.access.context
    }

    /// An admin client.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An admin client whose requests are recorded, to count a controller's writes.
    ///
    /// # Errors
    /// When the client cannot be built.
    pub fn recording_client(&self) -> Result<(Client, crate::counting::RequestLog), HarnessError> {
        crate::counting::counting_client(self.client_config.clone())
    }

    /// How to reach the cluster (server, CA, token).
    pub fn access(&self) -> &ClusterAccess {
        &self.access
    }

    /// A kubeconfig file with only this cluster.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// This cluster's kubeconfig, e.g. for a ClientConfig's Secret.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::kubeconfig_yaml(&[&self.access])
    }

    /// A kubeconfig of this cluster (context `kind-<cluster>`) whose user is ServiceAccount
    /// `kube-system/<name>`, bound to `cluster-admin`, with a fresh token (made with the
    /// TokenRequest API, valid for an hour). Deleting the ServiceAccount revokes it.
    ///
    /// # Errors
    /// When the API server refuses a request.
    pub async fn service_account_kubeconfig(&self, name: &str) -> Result<String, HarnessError> {
        let yaml = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: kube-system\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {name}\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\n\
             subjects:\n- kind: ServiceAccount\n  name: {name}\n  namespace: kube-system\n"
        );
        self.apply_yaml("kube-system", &yaml).await?;
        let request = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = Api::<ServiceAccount>::namespaced(self.client.clone(), "kube-system")
            .create_token_request(name, &PostParams::default(), &request)
            .await?
            .status
            .map(|status| status.token)
            .unwrap_or_default();
        let access = ClusterAccess {
            token,
            ..self.access.clone()
        };
        Ok(kubeconfig::kubeconfig_yaml(&[&access]))
    }

    /// The range every pod IP of this cluster is in.
    pub fn pod_cidr(&self) -> String {
        self.addresses.range()
    }

    /// This cluster's pod and node addresses.
    pub fn addresses(&self) -> &ClusterAddresses {
        &self.addresses
    }

    /// The fleet's pod network, where this cluster's pods' stand-ins listen.
    pub fn pod_network(&self) -> &PodNetwork {
        &self.network
    }

    /// Names of the fake nodes.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.layout.nodes)
            .map(|index| nodes::node_name(&self.name, index))
            .collect()
    }

    /// Where this cluster's process logs and files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every process of this cluster, for reports.
    pub(crate) fn processes_mut(&mut self) -> impl Iterator<Item = &mut ManagedProcess> {
        std::iter::once(&mut self.apiserver).chain(self.controllers.iter_mut())
    }
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("name", &self.name)
            .field("server", &self.access.server)
            .field("pod_cidr", &self.pod_cidr())
            .finish_non_exhaustive()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}
