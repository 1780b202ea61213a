//! Mutual TLS towards the Management API (`managementApiAuth.manual`).
//!
//! The server is addressed by pod IP and its certificate rarely names that IP, so, like upstream, the
//! host name is not checked; the chain still has to lead to the configured CA.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Why TLS material could not be turned into a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The CA bundle has no certificate.
    #[error("the CA bundle contains no PEM certificate")]
    NoCaCertificate,
    /// A CA certificate could not be parsed or used as a trust anchor.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCertificate(String),
    /// The client certificate chain has no certificate.
    #[error("the client certificate chain contains no PEM certificate")]
    NoClientCertificate,
    /// The client certificate chain could not be parsed.
    #[error("invalid client certificate chain: {0}")]
    InvalidClientCertificate(String),
    /// The client private key could not be parsed.
    #[error("invalid client private key: {0}")]
    InvalidPrivateKey(String),
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration refused: {0}")]
    Refused(String),
}

/// A rustls client configuration for mutual TLS with the Management API; cheap to clone.
#[derive(Clone)]
pub struct MutualTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for MutualTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("MutualTls { .. }")
    }
}

impl MutualTls {
    /// Builds the configuration from PEM text: CA bundle, client certificate chain, client key.
    pub fn from_pem(
        ca_pem: &str,
        client_chain_pem: &str,
        client_key_pem: &str,
    ) -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = root_store(ca_pem)?;
        let chain =
            certificates(client_chain_pem).map_err(TlsConfigError::InvalidClientCertificate)?;
        if chain.is_empty() {
            return Err(TlsConfigError::NoClientCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(client_key_pem.as_bytes())
            .map_err(|error| TlsConfigError::InvalidPrivateKey(error.to_string()))?;
        let verifier = Arc::new(CaOnlyVerifier {
            roots: Arc::new(roots),
            algorithms: provider.signature_verification_algorithms,
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsConfigError::Refused(error.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(chain, key)
            .map_err(|error| TlsConfigError::Refused(error.to_string()))?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration.
    pub(crate) fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

/// Parses every certificate of a PEM bundle.
pub(crate) fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())
}

/// A root store holding every certificate of a PEM CA bundle.
pub(crate) fn root_store(ca_pem: &str) -> Result<RootCertStore, TlsConfigError> {
    let cas = certificates(ca_pem).map_err(TlsConfigError::InvalidCaCertificate)?;
    if cas.is_empty() {
        return Err(TlsConfigError::NoCaCertificate);
    }
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|error| TlsConfigError::InvalidCaCertificate(error.to_string()))?;
    }
    Ok(roots)
}

/// Verifies the server's chain against the CA roots and its handshake signatures, not its name.
#[derive(Debug)]
struct CaOnlyVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The crypto provider both sides use (ring, as kube does).
#[cfg(feature = "fake")]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_material_is_refused_with_a_reason() {
        assert!(matches!(
            MutualTls::from_pem("", "", ""),
            Err(TlsConfigError::NoCaCertificate)
        ));
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            MutualTls::from_pem(garbage, "", ""),
            Err(TlsConfigError::InvalidCaCertificate(_))
        ));
    }

    #[test]
    fn debug_never_prints_material() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca".into()]).map(|c| c.cert.pem());
        let key = rcgen::generate_simple_self_signed(vec!["client".into()]);
        let (Ok(ca), Ok(client)) = (ca, key) else {
            panic!("rcgen failed");
        };
        let tls = MutualTls::from_pem(&ca, &client.cert.pem(), &client.signing_key.serialize_pem());
        let Ok(tls) = tls else {
            panic!("valid material refused");
        };
        assert_eq!(format!("{tls:?}"), "MutualTls { .. }");
    }
}
