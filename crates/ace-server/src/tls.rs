//! TLS and mutual TLS of the listener: [`Tls::load`] builds a rustls server (the `ring`
//! provider) from the `tls` section of the configuration, and [`Tls::accept`] turns an accepted
//! TCP stream into a TLS stream plus the client certificate the handshake verified.
//!
//! - `client_auth: none`: server authentication only.
//! - `client_auth: optional`: a client certificate is asked for; one that is presented must
//!   chain to `client_ca` (else the handshake fails), and a client without one still connects
//!   (it must then authenticate another way, or it is answered 401).
//! - `client_auth: required`: the handshake fails without a certificate chaining to `client_ca`.
//!
//! The leaf certificate's DER travels with every request of the connection as a
//! [`PeerCertificate`] request extension; the HTTP adapter copies it into
//! `RequestContext::peer_certificate`, where `ace-core`'s authenticator maps it to a principal
//! (SPIFFE URI or CN, roles from OU) when `auth.mtls` is on. Only HTTP/1.1 is offered (ALPN),
//! like the plain listener.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{ClientAuth, TlsConfig};
use crate::error::ServerError;

/// The DER of the client certificate a TLS handshake verified.
#[derive(Debug, Clone)]
pub(crate) struct PeerCertificate(pub(crate) Arc<[u8]>);

/// A loaded TLS server configuration.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(<rustls server config>)")
    }
}

fn tls_error(key: &str, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Tls {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(key, format!("`{shown}`: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(key, format!("`{shown}`: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(
            key,
            format!("`{shown}` holds no CERTIFICATE block"),
        ));
    }
    Ok(certs)
}

impl Tls {
    /// Reads the certificate chain, the private key and (for client authentication) the CA
    /// certificates; every error names its configuration key and file.
    pub fn load(config: &TlsConfig) -> Result<Tls, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates("tls.cert", &config.cert)?;
        let key = PrivateKeyDer::from_pem_file(&config.key)
            .map_err(|e| tls_error("tls.key", format!("`{}`: {e}", config.key.display())))?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls", e))?;
        let builder = match (config.client_auth, &config.client_ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(tls_error(
                    "tls.client_ca",
                    "is required when tls.client_auth is optional or required",
                ));
            }
            (mode, Some(ca)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates("tls.client_ca", ca)? {
                    roots.add(cert).map_err(|e| tls_error("tls.client_ca", e))?;
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if mode == ClientAuth::Optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| tls_error("tls.client_ca", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder
            .with_single_cert(chain, key)
            .map_err(|e| tls_error("tls.key", e))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// The TLS handshake over `stream`; the verified client leaf certificate, if any.
    pub(crate) async fn accept<S>(
        &self,
        stream: S,
    ) -> std::io::Result<(TlsStream<S>, Option<PeerCertificate>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self.acceptor.accept(stream).await?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| PeerCertificate(Arc::from(leaf.as_ref())));
        Ok((tls, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn given_bad_tls_files_when_loaded_then_the_error_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_pem = write(dir.path(), "cert.pem", &cert.cert.pem());
        let key_pem = write(dir.path(), "key.pem", &cert.signing_key.serialize_pem());
        let empty = write(dir.path(), "empty.pem", "");
        let config = |cert: &Path, key: &Path, ca: Option<&Path>, mode| TlsConfig {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_ca: ca.map(Path::to_path_buf),
            client_auth: mode,
        };
        assert!(Tls::load(&config(&cert_pem, &key_pem, None, ClientAuth::None)).is_ok());
        let cases = [
            (config(&empty, &key_pem, None, ClientAuth::None), "tls.cert"),
            (config(&cert_pem, &empty, None, ClientAuth::None), "tls.key"),
            (
                config(&cert_pem, &key_pem, None, ClientAuth::Required),
                "tls.client_ca",
            ),
            (
                config(&cert_pem, &key_pem, Some(&empty), ClientAuth::Optional),
                "tls.client_ca",
            ),
            (
                config(
                    &dir.path().join("missing"),
                    &key_pem,
                    None,
                    ClientAuth::None,
                ),
                "tls.cert",
            ),
        ];
        for (config, key) in cases {
            let err = Tls::load(&config).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
        }
    }
}
