//! How the operator introduces itself to the API server: a `User-Agent` that names it and its
//! version, so that audit logs and API priority and fairness can tell its requests apart.

use http::{HeaderValue, header::USER_AGENT as USER_AGENT_HEADER};

/// The `User-Agent` of every Kubernetes request.
pub const USER_AGENT: &str = concat!("k8ssandra-operator/", env!("CARGO_PKG_VERSION"));

/// Makes every request of clients built from `config` carry [`USER_AGENT`].
pub fn identify(config: &mut kube::Config) {
    config.headers.retain(|(name, _)| name != USER_AGENT_HEADER);
    config
        .headers
        .push((USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_the_operator_and_its_version_once() {
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        identify(&mut config);
        identify(&mut config);
        let agents: Vec<&HeaderValue> = config
            .headers
            .iter()
            .filter(|(name, _)| name == USER_AGENT_HEADER)
            .map(|(_, value)| value)
            .collect();
        assert_eq!(agents.len(), 1);
        assert!(
            agents[0]
                .to_str()
                .unwrap()
                .starts_with("k8ssandra-operator/")
        );
    }
}
