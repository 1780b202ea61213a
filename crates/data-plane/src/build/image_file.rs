//! Upstream's image configuration file (`config.k8ssandra.io` `ImageConfig`), read into
//! [`ImageConfig`], so that images are pinned the way cass-operator's users pin them. Pure.
//!
//! - **v1beta1** (the file cass-operator mounts): `images.system-logger`, `images.config-builder`,
//!   `images.k8ssandra-client` (whole image names); `images.cassandra`, `images.dse`,
//!   `images.hcd` (server version → image); `defaults.<type>.repository` and `.suffix` (the image
//!   of any other version is `<repository>:<version><suffix>`); `imageRegistry`,
//!   `imagePullPolicy`, `imagePullSecret.name`.
//! - **v1beta2**: `images.<component>` and `types.<server type>` as registry, repository, name
//!   and tag or digest (`types` add a tag prefix and suffix around the server version);
//!   `defaults` fill what an image leaves empty (registry, repository, pull policy, pull
//!   secrets), `overrides` replace it.
//!
//! What a file sets replaces the built-in default; what it leaves out keeps it. A field this
//! operator does not act on (`imageNamespace`, a per-image pull policy) is refused by name, never
//! silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::images::{ImageConfig, ServerImages};

/// Why an image configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    /// Not YAML of the expected shape.
    #[error("the image configuration is not a valid {api_version} ImageConfig: {source}")]
    Parse {
        /// The version it was read as.
        api_version: String,
        /// What the parser said.
        source: serde_yaml::Error,
    },
    /// Another kind or version.
    #[error(
        "the image configuration is {api_version} {kind}; expected kind ImageConfig of \
         config.k8ssandra.io/v1beta1 or config.k8ssandra.io/v1beta2"
    )]
    Kind {
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// A field this operator does not act on.
    #[error("the image configuration sets {0}, which this operator does not support")]
    Unsupported(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Reads an image configuration file.
///
/// # Errors
/// When the file is not an ImageConfig of a known version, or sets what this operator does not
/// act on.
pub fn parse(text: &str) -> Result<ImageConfig, ImageFileError> {
    let meta: TypeMeta = serde_yaml::from_str(text).map_err(|source| ImageFileError::Parse {
        api_version: "config.k8ssandra.io".to_owned(),
        source,
    })?;
    let parse_error = |source| ImageFileError::Parse {
        api_version: meta.api_version.clone(),
        source,
    };
    match (meta.api_version.as_str(), meta.kind.as_str()) {
        ("config.k8ssandra.io/v1beta1", "ImageConfig") => {
            v1beta1(serde_yaml::from_str(text).map_err(parse_error)?)
        }
        ("config.k8ssandra.io/v1beta2", "ImageConfig") => {
            v1beta2(serde_yaml::from_str(text).map_err(parse_error)?)
        }
        _ => Err(ImageFileError::Kind {
            api_version: meta.api_version.clone(),
            kind: meta.kind.clone(),
        }),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct V1beta1 {
    // Read (and checked) by `parse`; declared so that unknown fields can be refused.
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde_yaml::Value>,
    #[serde(default)]
    images: V1beta1Images,
    #[serde(default)]
    defaults: BTreeMap<String, V1beta1Component>,
    #[serde(default)]
    image_registry: Option<String>,
    #[serde(default)]
    image_namespace: Option<String>,
    #[serde(default)]
    image_pull_policy: Option<String>,
    #[serde(default)]
    image_pull_secret: Option<NameRef>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct V1beta1Images {
    #[serde(default)]
    cassandra: BTreeMap<String, String>,
    #[serde(default)]
    dse: BTreeMap<String, String>,
    #[serde(default)]
    hcd: BTreeMap<String, String>,
    #[serde(default, rename = "system-logger")]
    system_logger: Option<String>,
    #[serde(default, rename = "config-builder")]
    config_builder: Option<String>,
    #[serde(default, rename = "k8ssandra-client")]
    client: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct V1beta1Component {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NameRef {
    #[serde(default)]
    name: Option<String>,
}

fn v1beta1(file: V1beta1) -> Result<ImageConfig, ImageFileError> {
    if file.image_namespace.is_some() {
        return Err(ImageFileError::Unsupported("imageNamespace".to_owned()));
    }
    let mut config = ImageConfig::default();
    let server = |servers: &mut ServerImages,
                  versions: BTreeMap<String, String>,
                  defaults: Option<&V1beta1Component>| {
        servers.versions = versions;
        // As upstream: the suffix counts only with a repository.
        if let Some(repository) = defaults.and_then(|d| d.repository.clone()) {
            servers.repository = repository;
            servers.prefix = String::new();
            servers.suffix = defaults.and_then(|d| d.suffix.clone()).unwrap_or_default();
        }
    };
    for name in file.defaults.keys() {
        if !["cassandra", "dse", "hcd"].contains(&name.as_str()) {
            return Err(ImageFileError::Unsupported(format!("defaults.{name}")));
        }
    }
    server(
        &mut config.cassandra,
        file.images.cassandra,
        file.defaults.get("cassandra"),
    );
    server(&mut config.dse, file.images.dse, file.defaults.get("dse"));
    server(&mut config.hcd, file.images.hcd, file.defaults.get("hcd"));
    if let Some(image) = file.images.system_logger {
        config.system_logger = image;
    }
    if let Some(image) = file.images.config_builder {
        config.config_builder = image;
    }
    if let Some(image) = file.images.client {
        config.client = image;
    }
    config.registry = file.image_registry.filter(|r| !r.is_empty());
    config.pull_policy = file.image_pull_policy.filter(|p| !p.is_empty());
    config.pull_secrets = file
        .image_pull_secret
        .and_then(|s| s.name)
        .filter(|n| !n.is_empty())
        .into_iter()
        .collect();
    Ok(config)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct V1beta2 {
    // Read (and checked) by `parse`; declared so that unknown fields can be refused.
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde_yaml::Value>,
    #[serde(default)]
    images: BTreeMap<String, Image>,
    #[serde(default)]
    defaults: Policy,
    #[serde(default)]
    types: BTreeMap<String, Image>,
    #[serde(default)]
    overrides: Option<Policy>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Image {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    pull_policy: Option<String>,
    #[serde(default)]
    pull_secret: Option<String>,
    // Server types only.
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Policy {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    pull_policy: Option<String>,
    #[serde(default)]
    pull_secrets: Option<Vec<String>>,
}

impl Image {
    /// `[registry/][repository/]name` once the defaults filled it and the overrides replaced
    /// it.
    fn base(&self, defaults: &Policy, overrides: Option<&Policy>) -> Option<String> {
        let name = self.name.clone().filter(|n| !n.is_empty())?;
        let pick =
            |own: &Option<String>, default: &Option<String>, over: Option<&Option<String>>| {
                match over.and_then(Option::as_ref) {
                    Some(over) => Some(over.clone()),
                    None => own
                        .clone()
                        .filter(|v| !v.is_empty())
                        .or_else(|| default.clone()),
                }
            };
        let registry = pick(
            &self.registry,
            &defaults.registry,
            overrides.map(|o| &o.registry),
        );
        let repository = pick(
            &self.repository,
            &defaults.repository,
            overrides.map(|o| &o.repository),
        );
        let mut base = String::new();
        for part in [registry, repository].into_iter().flatten() {
            if !part.is_empty() {
                base.push_str(part.trim_end_matches('/'));
                base.push('/');
            }
        }
        base.push_str(&name);
        Some(base)
    }

    /// The whole image name: the base with `@digest` or `:tag` (`latest` when neither is set).
    fn full(&self, defaults: &Policy, overrides: Option<&Policy>) -> Option<String> {
        let base = self.base(defaults, overrides)?;
        Some(match (&self.digest, &self.tag) {
            (Some(digest), _) if !digest.is_empty() => format!("{base}@{digest}"),
            // A tag written as a digest (`sha256:...`) is one.
            (_, Some(tag)) if is_digest(tag) => format!("{base}@{tag}"),
            (_, Some(tag)) if !tag.is_empty() => format!("{base}:{tag}"),
            _ => format!("{base}:latest"),
        })
    }
}

fn is_digest(tag: &str) -> bool {
    tag.split_once(':').is_some_and(|(algorithm, encoded)| {
        !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._+-".contains(c))
            && encoded.len() >= 32
            && encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
    })
}

fn v1beta2(file: V1beta2) -> Result<ImageConfig, ImageFileError> {
    let mut config = ImageConfig::default();
    let overrides = file.overrides.as_ref();
    for (kind, image) in file.images.iter().chain(file.types.iter()) {
        if image.pull_policy.is_some() {
            return Err(ImageFileError::Unsupported(format!(
                "a pull policy of its own for {kind} (set defaults.pullPolicy or \
                 overrides.pullPolicy)"
            )));
        }
    }
    for (component, image) in &file.images {
        let Some(full) = image.full(&file.defaults, overrides) else {
            return Err(ImageFileError::Unsupported(format!(
                "images.{component} without a name"
            )));
        };
        match component.as_str() {
            "system-logger" => config.system_logger = full,
            "config-builder" => config.config_builder = full,
            "k8ssandra-client" => config.client = full,
            // Images of other components (medusa, reaper) are the control plane's.
            _ => {}
        }
    }
    for (server_type, image) in &file.types {
        let servers = match server_type.as_str() {
            "cassandra" => &mut config.cassandra,
            "dse" => &mut config.dse,
            "hcd" => &mut config.hcd,
            other => return Err(ImageFileError::Unsupported(format!("types.{other}"))),
        };
        let Some(base) = image.base(&file.defaults, overrides) else {
            return Err(ImageFileError::Unsupported(format!(
                "types.{server_type} without a name"
            )));
        };
        servers.repository = base;
        servers.prefix = image.prefix.clone().unwrap_or_default();
        servers.suffix = image.suffix.clone().unwrap_or_default();
    }
    // The images carry their registry already.
    config.registry = None;
    config.pull_policy = overrides
        .and_then(|o| o.pull_policy.clone())
        .or_else(|| file.defaults.pull_policy.clone())
        .filter(|p| !p.is_empty());
    config.pull_secrets = match overrides.and_then(|o| o.pull_secrets.clone()) {
        // Overrides name every pull secret, or none with an empty list.
        Some(secrets) => secrets,
        None => {
            let mut secrets: Vec<String> = file.defaults.pull_secrets.clone().unwrap_or_default();
            for image in file.images.values().chain(file.types.values()) {
                if let Some(secret) = image.pull_secret.clone().filter(|s| !s.is_empty())
                    && !secrets.contains(&secret)
                {
                    secrets.push(secret);
                }
            }
            secrets
        }
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use k8ssandra_api::cassandra::ServerType;

    use super::*;

    #[test]
    fn a_v1beta1_file_as_cass_operator_ships_it() {
        let config = parse(
            "apiVersion: config.k8ssandra.io/v1beta1
kind: ImageConfig
metadata:
  name: image-config
images:
  system-logger: \"k8ssandra/system-logger:v1.32.0\"
  config-builder: \"docker.io/datastax/cass-config-builder:1.0-ubi\"
  k8ssandra-client: \"docker.io/k8ssandra/k8ssandra-client:v0.8.6\"
  cassandra:
    \"4.0.0\": \"k8ssandra/cassandra-ubi:latest\"
imageRegistry: \"localhost:5000\"
imagePullPolicy: Always
imagePullSecret:
  name: my-secret-pull-registry
defaults:
  cassandra:
    repository: \"docker.io/k8ssandra/cass-management-api\"
    suffix: \"-ubi\"
  dse:
    repository: \"docker.io/datastax/dse-mgmtapi-6_8\"
    suffix: \"-ubi\"
",
        )
        .expect("parses");
        assert_eq!(
            config
                .server_image(ServerType::Cassandra, "4.1.5")
                .expect("image"),
            "localhost:5000/k8ssandra/cass-management-api:4.1.5-ubi"
        );
        assert_eq!(
            config
                .server_image(ServerType::Cassandra, "4.0.0")
                .expect("image"),
            "localhost:5000/k8ssandra/cassandra-ubi:latest"
        );
        assert_eq!(
            config
                .server_image(ServerType::Dse, "6.8.50")
                .expect("image"),
            "localhost:5000/datastax/dse-mgmtapi-6_8:6.8.50-ubi"
        );
        assert_eq!(
            config.system_logger_image(),
            "localhost:5000/k8ssandra/system-logger:v1.32.0"
        );
        assert_eq!(config.pull_policy.as_deref(), Some("Always"));
        assert_eq!(config.pull_secrets, ["my-secret-pull-registry"]);
    }

    #[test]
    fn a_v1beta2_file_with_defaults_overrides_and_digests() {
        let config = parse(
            "apiVersion: config.k8ssandra.io/v1beta2
kind: ImageConfig
images:
  system-logger:
    registry: ghcr.io
    repository: k8ssandra
    name: system-logger
    tag: v1.32.0
  config-builder:
    repository: datastax
    name: cass-config-builder
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  k8ssandra-client:
    repository: k8ssandra
    name: k8ssandra-client
    tag: v0.8.6
    pullSecret: client-pull
defaults:
  registry: docker.io
  pullPolicy: IfNotPresent
  pullSecrets: [shared-pull]
types:
  cassandra:
    registry: ghcr.io
    repository: k8ssandra
    name: cass-management-api
    suffix: -ubi
  hcd:
    repository: datastax
    name: hcd
    prefix: v
    suffix: -ubi
",
        )
        .expect("parses");
        assert_eq!(
            config.system_logger_image(),
            "ghcr.io/k8ssandra/system-logger:v1.32.0"
        );
        assert_eq!(
            config.config_builder_image(),
            "docker.io/datastax/cass-config-builder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            config
                .server_image(ServerType::Cassandra, "5.0.2")
                .expect("image"),
            "ghcr.io/k8ssandra/cass-management-api:5.0.2-ubi"
        );
        assert_eq!(
            config
                .server_image(ServerType::Hcd, "1.0.0")
                .expect("image"),
            "docker.io/datastax/hcd:v1.0.0-ubi"
        );
        assert_eq!(config.pull_policy.as_deref(), Some("IfNotPresent"));
        assert_eq!(config.pull_secrets, ["shared-pull", "client-pull"]);

        let overridden = parse(
            "apiVersion: config.k8ssandra.io/v1beta2
kind: ImageConfig
images:
  system-logger: { registry: ghcr.io, repository: k8ssandra, name: system-logger, tag: v1 }
defaults: { registry: docker.io }
overrides:
  registry: mirror.example.com
  repository: \"\"
  pullSecrets: []
types:
  cassandra: { repository: k8ssandra, name: cass-management-api, suffix: -ubi }
",
        )
        .expect("parses");
        assert_eq!(
            overridden.system_logger_image(),
            "mirror.example.com/system-logger:v1"
        );
        assert_eq!(
            overridden
                .server_image(ServerType::Cassandra, "4.1.5")
                .expect("image"),
            "mirror.example.com/cass-management-api:4.1.5-ubi"
        );
        assert!(overridden.pull_secrets.is_empty());
    }

    #[test]
    fn what_a_file_leaves_out_keeps_the_default_and_bad_files_say_why() {
        let config = parse(
            "apiVersion: config.k8ssandra.io/v1beta1\nkind: ImageConfig\nimages:\n  system-logger: my/logger:1\n",
        )
        .expect("parses");
        assert_eq!(config.system_logger, "my/logger:1");
        assert_eq!(config.client, ImageConfig::default().client);
        assert_eq!(config.cassandra, ImageConfig::default().cassandra);

        let error = |text: &str| parse(text).expect_err(text).to_string();
        assert!(error("apiVersion: v1\nkind: ConfigMap\n").contains("expected kind ImageConfig"));
        assert!(
            error("apiVersion: config.k8ssandra.io/v1beta1\nkind: ImageConfig\nimageNamespace: internal\n")
                .contains("imageNamespace")
        );
        assert!(
            error("apiVersion: config.k8ssandra.io/v1beta1\nkind: ImageConfig\nimagez: {}\n")
                .contains("imagez")
        );
        assert!(
            error(
                "apiVersion: config.k8ssandra.io/v1beta2\nkind: ImageConfig\nimages:\n  system-logger: { name: l, pullPolicy: Always }\n"
            )
            .contains("pull policy")
        );
        assert!(
            error("apiVersion: config.k8ssandra.io/v1beta2\nkind: ImageConfig\ntypes:\n  scylla: { name: s }\n")
                .contains("types.scylla")
        );
    }
}
