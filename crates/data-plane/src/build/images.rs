//! Which container images the pods run: the server (with the Management API) chosen from
//! `serverType`/`serverVersion` unless `serverImage` names one, the configuration builder and the
//! log sidecar, with an optional registry that replaces the registry of every default image.
//!
//! The defaults follow upstream v1.32's shipped image configuration (`config.k8ssandra.io`
//! `ImageConfig`): Cassandra `ghcr.io/k8ssandra/cass-management-api:<version>-ubi`, DSE
//! `docker.io/datastax/dse-mgmtapi-6_8:<version>-ubi`, HCD `docker.io/datastax/hcd:<version>-ubi`;
//! an operator's own file replaces them (see [`super::image_file`]).

use std::collections::BTreeMap;

use k8ssandra_api::{
    cassandra::{CassandraDatacenter, ServerType},
    version::parse_version,
};

use super::{BuildError, Result};

/// Where the server images of one server type come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerImages {
    /// Repository (with its registry, if any); the tag is `<prefix><version><suffix>`.
    pub repository: String,
    /// Tag prefix.
    pub prefix: String,
    /// Tag suffix.
    pub suffix: String,
    /// Whole images of given server versions, which win over the repository.
    pub versions: BTreeMap<String, String>,
}

impl ServerImages {
    fn new(repository: &str, suffix: &str) -> Self {
        Self {
            repository: repository.to_owned(),
            prefix: String::new(),
            suffix: suffix.to_owned(),
            versions: BTreeMap::new(),
        }
    }
}

/// The operator-wide image settings (upstream's `ImageConfig` file, see
/// [`super::image_file`]), passed to the builders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfig {
    /// Cassandra server images.
    pub cassandra: ServerImages,
    /// DSE server images.
    pub dse: ServerImages,
    /// HCD server images.
    pub hcd: ServerImages,
    /// Legacy configuration builder (Cassandra before 4.1, DSE).
    pub config_builder: String,
    /// k8ssandra-client, which builds the configuration for Cassandra 4.1 and later and HCD.
    pub client: String,
    /// Vector log sidecar.
    pub system_logger: String,
    /// Registry that replaces the registry of every default image (not of images named in a spec).
    pub registry: Option<String>,
    /// `imagePullPolicy` of the containers whose image the operator chose.
    pub pull_policy: Option<String>,
    /// Pull secrets added to every pod.
    pub pull_secrets: Vec<String>,
}

impl Default for ImageConfig {
    /// Upstream v1.32's shipped image configuration.
    fn default() -> Self {
        Self {
            cassandra: ServerImages::new("ghcr.io/k8ssandra/cass-management-api", "-ubi"),
            dse: ServerImages::new("docker.io/datastax/dse-mgmtapi-6_8", "-ubi"),
            hcd: ServerImages::new("docker.io/datastax/hcd", "-ubi"),
            config_builder: "docker.io/datastax/cass-config-builder:1.0-ubi".into(),
            client: "docker.io/k8ssandra/k8ssandra-client:v0.8.6".into(),
            system_logger: "ghcr.io/k8ssandra/system-logger:v1.32.0".into(),
            registry: None,
            pull_policy: None,
            pull_secrets: Vec::new(),
        }
    }
}

impl ImageConfig {
    /// `image` under the configured registry: its own registry (a first path part with a `.` or
    /// `:`) is replaced, or the registry is prefixed.
    #[must_use]
    pub fn apply_registry(&self, image: &str) -> String {
        let Some(registry) = self
            .registry
            .as_deref()
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty())
        else {
            return image.to_owned();
        };
        let without_registry = match image.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') => rest,
            _ => image,
        };
        format!("{registry}/{without_registry}")
    }

    /// Default server image for a server type and version: the image the configuration names
    /// for that version, else `<repository>:<prefix><version><suffix>`.
    ///
    /// # Errors
    /// When the version is neither named nor one upstream ships images for.
    pub fn server_image(&self, server_type: ServerType, version: &str) -> Result<String> {
        let images = match server_type {
            ServerType::Cassandra => &self.cassandra,
            ServerType::Dse => &self.dse,
            ServerType::Hcd => &self.hcd,
        };
        if let Some(image) = images.versions.get(version) {
            return Ok(self.apply_registry(image));
        }
        if !version_supported(server_type, version) {
            return Err(BuildError::UnsupportedVersion {
                server_type: server_type.as_str().to_owned(),
                version: version.to_owned(),
            });
        }
        Ok(self.apply_registry(&format!(
            "{}:{}{version}{}",
            images.repository, images.prefix, images.suffix
        )))
    }

    /// Default legacy configuration builder image.
    #[must_use]
    pub fn config_builder_image(&self) -> String {
        self.apply_registry(&self.config_builder)
    }

    /// Default k8ssandra-client image.
    #[must_use]
    pub fn client_image(&self) -> String {
        self.apply_registry(&self.client)
    }

    /// Default log sidecar image.
    #[must_use]
    pub fn system_logger_image(&self) -> String {
        self.apply_registry(&self.system_logger)
    }
}

/// The image of the `cassandra` container: `spec.serverImage` as written, else the default for the
/// server type and version.
///
/// # Errors
/// When no `serverImage` is given and the version is not supported.
pub fn server_image(dc: &CassandraDatacenter, images: &ImageConfig) -> Result<String> {
    match dc.spec.server_image.as_deref().filter(|i| !i.is_empty()) {
        Some(image) => Ok(image.to_owned()),
        None => images.server_image(dc.spec.server_type, &dc.spec.server_version),
    }
}

/// Whether upstream ships an image for the version: Cassandra 3.11, 4.x, 5.x; DSE 6.8, 6.9;
/// HCD 1.x.
#[must_use]
pub fn version_supported(server_type: ServerType, version: &str) -> bool {
    let Some((major, minor, _)) = parse_version(version) else {
        return false;
    };
    match server_type {
        ServerType::Cassandra => (major == 3 && minor == 11) || major == 4 || major == 5,
        ServerType::Dse => major == 6 && (minor == 8 || minor == 9),
        ServerType::Hcd => major == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_images_follow_type_and_version() {
        let images = ImageConfig::default();
        assert_eq!(
            images.server_image(ServerType::Cassandra, "4.1.5").unwrap(),
            "ghcr.io/k8ssandra/cass-management-api:4.1.5-ubi"
        );
        assert_eq!(
            images
                .server_image(ServerType::Cassandra, "3.11.17")
                .unwrap(),
            "ghcr.io/k8ssandra/cass-management-api:3.11.17-ubi"
        );
        assert_eq!(
            images.server_image(ServerType::Dse, "6.8.50").unwrap(),
            "docker.io/datastax/dse-mgmtapi-6_8:6.8.50-ubi"
        );
        assert_eq!(
            images.server_image(ServerType::Hcd, "1.0.0").unwrap(),
            "docker.io/datastax/hcd:1.0.0-ubi"
        );
        assert!(images.server_image(ServerType::Dse, "4.0.1").is_err());
        assert!(images.server_image(ServerType::Cassandra, "3.0.1").is_err());
        assert!(images.server_image(ServerType::Cassandra, "6.8.1").is_err());
        assert!(images.server_image(ServerType::Hcd, "4.1.0").is_err());
        assert!(images.server_image(ServerType::Cassandra, "4.1").is_err());
    }

    #[test]
    fn a_registry_replaces_the_default_images_registry() {
        let images = ImageConfig {
            registry: Some("localhost:5000/".into()),
            ..ImageConfig::default()
        };
        assert_eq!(
            images.server_image(ServerType::Cassandra, "4.0.6").unwrap(),
            "localhost:5000/k8ssandra/cass-management-api:4.0.6-ubi"
        );
        assert_eq!(
            images.system_logger_image(),
            "localhost:5000/k8ssandra/system-logger:v1.32.0"
        );
        assert_eq!(
            images.apply_registry("a.io:443/x/y:1"),
            "localhost:5000/x/y:1"
        );
        assert_eq!(images.apply_registry("x/y:1"), "localhost:5000/x/y:1");
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!(parse_version("4.1.10"), Some((4, 1, 10)));
        assert_eq!(parse_version("4.1"), None);
        assert_eq!(parse_version("4.1.0.1"), None);
        assert_eq!(parse_version("4.x.0"), None);
    }
}
