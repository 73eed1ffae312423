//! TLS to a daemon's TCP port, set up as the docker CLI sets it up: with
//! `--tlsverify` the server's certificate must chain to the CA (the system's
//! roots without one) and name the host; with `--tls` alone it is not
//! checked. A client certificate is sent whenever one is configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{ClientError, Result};

/// What TLS a connection uses: the files are already resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Check the server's certificate (`--tlsverify`).
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn bad(path: &Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(format!("could not read {}: {e}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let v = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, e))?;
    if v.is_empty() {
        return Err(bad(path, "no certificate in the file"));
    }
    Ok(v)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `s`.
pub(crate) fn client_config(s: &TlsSettings) -> Result<Arc<ClientConfig>> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let builder = if s.verify {
        let mut roots = RootCertStore::empty();
        match &s.ca {
            Some(ca) => {
                for c in certs(ca)? {
                    roots.add(c).map_err(|e| bad(ca, e))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerCheck(provider)))
    };
    let cfg = match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => {
            let chain = certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(cert, e))?
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ClientError::Tls(
                "a client certificate needs both --tlscert and --tlskey".into(),
            ))
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name the server's certificate must carry: the host of `tcp://HOST:PORT`.
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => addr.rsplit_once(':').map_or(addr, |(h, _)| h),
    };
    ServerName::try_from(host.to_string())
        .map_err(|e| ClientError::Tls(format!("invalid server name {host:?}: {e}")))
}

/// `--tls` without `--tlsverify`: any certificate is accepted (the handshake
/// signatures are still checked), as Go's `InsecureSkipVerify`.
#[derive(Debug)]
struct NoServerCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert_eq!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("[::1]:2376").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert_eq!(
            server_name("daemon.example:2376").unwrap(),
            ServerName::try_from("daemon.example").unwrap()
        );
    }

    #[test]
    fn a_cert_without_its_key_is_refused() {
        let e = client_config(&TlsSettings {
            cert: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("--tlskey"), "{e}");
    }
}
