//! TLS material and credentials of one local cluster, generated fresh for every run.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{HarnessError, fs_write};

/// User name of the cluster administrator in the token file.
pub const ADMIN_USER: &str = "kubernetes-admin";

/// The files the cluster's processes read, and the values a kubeconfig needs.
#[derive(Clone, Debug)]
pub struct ClusterCredentials {
    /// PEM of the cluster CA, which signs the apiserver's serving certificate.
    pub ca_pem: String,
    /// The CA certificate on disk (`--client-ca-file`, `--root-ca-file`).
    pub ca_file: PathBuf,
    /// The apiserver's serving certificate, valid for 127.0.0.1 and localhost.
    pub serving_cert_file: PathBuf,
    /// Its private key.
    pub serving_key_file: PathBuf,
    /// Private key that signs ServiceAccount tokens.
    pub service_account_key_file: PathBuf,
    /// Its public key, which verifies them.
    pub service_account_public_key_file: PathBuf,
    /// `--token-auth-file`: one admin token in group system:masters.
    pub token_file: PathBuf,
    /// The admin bearer token.
    pub admin_token: String,
}

impl ClusterCredentials {
    /// Generates a CA, a serving certificate, a ServiceAccount key and an admin token in `dir`.
    pub fn generate(dir: &Path, cluster_name: &str) -> Result<Self, HarnessError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{cluster_name}-ca"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving_params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        serving_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        serving_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let serving_cert = serving_params.signed_by(&serving_key, &ca)?;

        let service_account_key = KeyPair::generate()?;
        let admin_token = random_token();

        let credentials = Self {
            ca_pem: ca_cert.pem(),
            ca_file: dir.join("ca.crt"),
            serving_cert_file: dir.join("apiserver.crt"),
            serving_key_file: dir.join("apiserver.key"),
            service_account_key_file: dir.join("service-account.key"),
            service_account_public_key_file: dir.join("service-account.pub"),
            token_file: dir.join("tokens.csv"),
            admin_token,
        };
        fs_write(&credentials.ca_file, &credentials.ca_pem)?;
        fs_write(&credentials.serving_cert_file, serving_cert.pem())?;
        fs_write(&credentials.serving_key_file, serving_key.serialize_pem())?;
        fs_write(
            &credentials.service_account_key_file,
            service_account_key.serialize_pem(),
        )?;
        fs_write(
            &credentials.service_account_public_key_file,
            service_account_key.public_key_pem(),
        )?;
        fs_write(
            &credentials.token_file,
            format!(
                "{},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n",
                credentials.admin_token
            ),
        )?;
        Ok(credentials)
    }
}

/// 128 random bits as hex, from the standard library's per-process random hash keys.
fn random_token() -> String {
    let half = || RandomState::new().build_hasher().finish();
    format!("{:016x}{:016x}", half(), half())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
