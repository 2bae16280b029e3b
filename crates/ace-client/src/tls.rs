//! TLS of the client: [`ClientBuilder`] takes extra trust anchors ([`ClientBuilder::tls_ca`])
//! and a client certificate for mutual TLS ([`ClientBuilder::tls_identity`]), and
//! [`TlsSettings::client_config`] turns them into the one rustls `ClientConfig` (the `ring`
//! provider, like the server) that both the HTTP pool and every WebSocket use.
//!
//! Trust: Mozilla's roots (`webpki-roots`, compiled in; the platform's store is not read) plus
//! every CA given. The configuration is built even for an `http://` server, so a bad file is
//! refused at [`ClientBuilder::build`] whatever the scheme, never on first use.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::ClientError;
use crate::http::{Client, DEFAULT_MAX_CONNECTIONS};

/// PEM text given to the client: a file, read when the client is built, or bytes.
#[derive(Clone)]
pub enum Pem {
    /// A PEM file.
    File(PathBuf),
    /// PEM text in memory.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // a key's bytes are a secret: only the file name, or the length, is shown
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Bytes(bytes) => write!(f, "Bytes(<{} bytes>)", bytes.len()),
        }
    }
}

impl From<PathBuf> for Pem {
    fn from(path: PathBuf) -> Pem {
        Pem::File(path)
    }
}

impl From<&Path> for Pem {
    fn from(path: &Path) -> Pem {
        Pem::File(path.to_path_buf())
    }
}

impl From<Vec<u8>> for Pem {
    fn from(bytes: Vec<u8>) -> Pem {
        Pem::Bytes(bytes)
    }
}

impl From<&[u8]> for Pem {
    fn from(bytes: &[u8]) -> Pem {
        Pem::Bytes(bytes.to_vec())
    }
}

impl Pem {
    /// `the TLS CA file `ca.pem`` or `the TLS CA PEM given in memory`: how errors name it.
    fn name(&self, what: &str) -> String {
        match self {
            Pem::File(path) => format!("the TLS {what} file `{}`", path.display()),
            Pem::Bytes(_) => format!("the TLS {what} PEM given in memory"),
        }
    }

    fn error(&self, what: &str, reason: impl std::fmt::Display) -> ClientError {
        ClientError::Tls {
            what: format!("read {}", self.name(what)),
            reason: reason.to_string(),
        }
    }

    fn text(&self, what: &str) -> Result<Cow<'_, [u8]>, ClientError> {
        match self {
            Pem::File(path) => std::fs::read(path)
                .map(Cow::Owned)
                .map_err(|e| self.error(what, e)),
            Pem::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
        }
    }

    /// Every `CERTIFICATE` block; at least one.
    fn certificates(&self, what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
        let text = self.text(what)?;
        let certs = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(what, format!("not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(self.error(what, "holds no CERTIFICATE block"));
        }
        Ok(certs)
    }

    /// The first private key block (PKCS#8, PKCS#1 or SEC1).
    fn private_key(&self, what: &str) -> Result<PrivateKeyDer<'static>, ClientError> {
        let text = self.text(what)?;
        PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                self.error(what, "holds no PRIVATE KEY block")
            }
            e => self.error(what, format!("not PEM: {e}")),
        })
    }
}

/// What the client was told about TLS.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    /// Extra trust anchors, beside Mozilla's roots.
    ca: Vec<Pem>,
    /// The client certificate chain and its key, for mutual TLS.
    identity: Option<(Pem, Pem)>,
}

impl TlsSettings {
    /// The one rustls client configuration of a [`Client`]: Mozilla's roots plus every CA
    /// given, the client certificate if one was given, no ALPN (each transport sets its own).
    pub(crate) fn client_config(&self) -> Result<ClientConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for pem in &self.ca {
            for cert in pem.certificates("CA")? {
                roots
                    .add(cert)
                    .map_err(|e| pem.error("CA", format!("not a usable CA certificate: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls {
                what: "set up TLS".into(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots);
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    cert.certificates("client certificate")?,
                    key.private_key("client key")?,
                )
                .map_err(|e| {
                    key.error(
                        "client key",
                        format!("does not go with {}: {e}", cert.name("client certificate")),
                    )
                }),
        }
    }
}

/// The configuration a WebSocket connects with: HTTP/1.1 only (the upgrade is an HTTP/1.1
/// request). Its `Debug` does not print the client key.
#[derive(Clone)]
pub(crate) struct WsTls(pub(crate) Arc<ClientConfig>);

impl std::fmt::Debug for WsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WsTls(<rustls client config>)")
    }
}

/// A [`Client`] to be: the server URL and the TLS settings, read and checked by
/// [`ClientBuilder::build`]. Credentials and the timeout are set on the built [`Client`]
/// ([`Client::with_bearer_token`], [`Client::with_timeout`], …).
///
/// ```no_run
/// use ace_client::Client;
///
/// # fn demo() -> Result<(), ace_client::ClientError> {
/// let client = Client::builder("https://comms.example:8500")
///     .tls_ca(std::path::Path::new("ca.pem"))
///     .tls_identity(std::path::Path::new("agent.pem"), std::path::Path::new("agent.key"))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    server: String,
    tls: TlsSettings,
    max_connections: NonZeroUsize,
}

impl ClientBuilder {
    pub(crate) fn new(server: &str) -> ClientBuilder {
        ClientBuilder {
            server: server.to_owned(),
            tls: TlsSettings::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// At most `n` HTTP requests on the wire at once, so at most `n` connections, each kept
    /// alive for the next request ([`DEFAULT_MAX_CONNECTIONS`] by default). A request waits for
    /// a free connection first; a fetch waiting for messages holds its connection meanwhile.
    /// WebSockets are not counted: each is a connection of its own.
    pub fn max_connections(mut self, n: NonZeroUsize) -> ClientBuilder {
        self.max_connections = n;
        self
    }

    /// Trusts the CA certificates of `ca` (every `CERTIFICATE` block) beside Mozilla's roots:
    /// the CA that signed a private server's certificate. May be given several times.
    pub fn tls_ca(mut self, ca: impl Into<Pem>) -> ClientBuilder {
        self.tls.ca.push(ca.into());
        self
    }

    /// Presents `cert` (a chain, leaf first) and its private `key` when the server asks for a
    /// client certificate (mutual TLS; the server may map it to a principal).
    pub fn tls_identity(mut self, cert: impl Into<Pem>, key: impl Into<Pem>) -> ClientBuilder {
        self.tls.identity = Some((cert.into(), key.into()));
        self
    }

    /// The client: the URL is checked and every PEM read now; an unreadable or invalid file
    /// is [`ClientError::Tls`] naming it, a bad URL [`ClientError::InvalidUrl`].
    pub fn build(self) -> Result<Client, ClientError> {
        Client::build(&self.server, &self.tls, self.max_connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM.
    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    fn built(settings: &TlsSettings) -> ClientError {
        settings.client_config().expect_err("refused")
    }

    #[test]
    fn given_a_missing_ca_file_when_built_then_the_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = Client::builder("https://127.0.0.1:8500")
            .tls_ca(missing.as_path())
            .build()
            .expect_err("no such file");
        assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("TLS CA file") && text.contains("nope.pem"),
            "{text}"
        );
    }

    #[test]
    fn given_pem_without_the_block_asked_for_when_built_then_the_error_says_which_is_missing() {
        let (cert, key) = self_signed();
        let no_cert = built(&TlsSettings {
            ca: vec![Pem::from(key.as_bytes())],
            identity: None,
        });
        assert!(
            no_cert.to_string().contains("holds no CERTIFICATE block"),
            "{no_cert}"
        );
        let no_key = built(&TlsSettings {
            ca: vec![],
            identity: Some((Pem::from(cert.as_bytes()), Pem::from(cert.as_bytes()))),
        });
        let text = no_key.to_string();
        assert!(
            text.contains("client key PEM given in memory") && text.contains("no PRIVATE KEY"),
            "{text}"
        );
    }

    #[test]
    fn given_a_broken_pem_block_when_built_then_it_is_not_pem() {
        let broken =
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
        let err = built(&TlsSettings {
            ca: vec![Pem::from(&broken[..])],
            identity: None,
        });
        assert!(err.to_string().contains("not PEM"), "{err}");
    }

    #[test]
    fn given_a_key_of_another_certificate_when_built_then_the_pair_is_refused() {
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let err = built(&TlsSettings {
            ca: vec![],
            identity: Some((Pem::from(cert.as_bytes()), Pem::from(other_key.as_bytes()))),
        });
        assert!(err.to_string().contains("does not go with"), "{err}");
    }

    #[test]
    fn given_a_ca_and_an_identity_when_built_then_the_config_presents_a_certificate() {
        let (cert, key) = self_signed();
        let config = TlsSettings {
            ca: vec![Pem::from(cert.as_bytes())],
            identity: Some((Pem::from(cert.as_bytes()), Pem::from(key.as_bytes()))),
        }
        .client_config()
        .expect("valid");
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn given_key_bytes_when_debug_printed_then_only_their_length_shows() {
        let (_, key) = self_signed();
        let shown = format!("{:?}", Pem::from(key.as_bytes()));
        assert!(!shown.contains("PRIVATE"), "{shown}");
        assert!(shown.starts_with("Bytes(<"), "{shown}");
    }
}
