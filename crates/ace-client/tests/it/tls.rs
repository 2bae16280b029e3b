//! The client over TLS against the real server with a `tls` section: certificates made by rcgen
//! in a temporary directory — a server CA and the server's certificate (for `127.0.0.1` and
//! `localhost`), a client CA and an agent's certificate (SPIFFE id, OU `agent clearance=1`),
//! and a CA nobody uses (to be trusted by mistake).
//!
//! - https: publish then fetch, with the server CA trusted;
//! - wss: a subscription receives what is published;
//! - a server whose CA the client does not trust is refused with [`ClientError::Tls`], over
//!   HTTP and WebSocket;
//! - `client_auth: required`: no client certificate is refused; a certificate from the client CA
//!   is accepted and, with `auth.mtls` enforced, is the principal (the source stamped on what
//!   it publishes, and what RBAC allows it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ace_client::{ClientBuilder, ClientError, Subscription, WsConnection};
use ace_envelope::ErrorCode;
use ace_server::{AuthConfig, AuthMode, ClientAuth, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

use crate::http::{ORDERS, orders};
use crate::ws::next;
use crate::{Server, event};

/// The SPIFFE id of the agent's client certificate: its principal id.
const AGENT: &str = "spiffe://ace.local/agent/tls-agent";

/// A subject of the agent domain the `agent` role publishes and subscribes to.
const AGENT_SUBJECT: &str = "ace.comms.agent.agent.a1.evt.status.v1";

/// The PEM files of one test, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A self-signed CA named `name`, written to `<file>.pem`.
fn ca(dir: &Path, file: &str, name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
    Issuer::new(params, key)
}

/// A leaf certificate `params` signed by `issuer`, written to `<file>.pem` and `<file>.key`.
fn leaf(dir: &Path, file: &str, params: &CertificateParams, issuer: &Issuer<'_, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
}

/// `ca.pem` with `server.pem`/`server.key`; `client-ca.pem` with `agent.pem`/`agent.key`;
/// `stranger-ca.pem`.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    let server_ca = ca(at, "ca", "ace test server CA");
    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf(at, "server", &server, &server_ca);

    let client_ca = ca(at, "client-ca", "ace test client CA");
    let mut agent = CertificateParams::new(Vec::<String>::new()).unwrap();
    agent.subject_alt_names = vec![SanType::URI(AGENT.try_into().unwrap())];
    agent
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "agent clearance=1");
    agent.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf(at, "agent", &agent, &client_ca);

    ca(at, "stranger-ca", "a CA nobody should trust");
    Pki { dir }
}

/// A server with TLS (`client_auth`; `auth.mtls` enforced unless `none`) and a client that
/// trusts its CA and, unless `client_auth` is `none`, presents the agent's certificate.
async fn start(pki: &Pki, client_auth: ClientAuth) -> Server {
    let mutual = client_auth != ClientAuth::None;
    Server::start_with_client(
        |config| {
            config.tls = Some(TlsConfig {
                cert: pki.path("server.pem"),
                key: pki.path("server.key"),
                client_ca: mutual.then(|| pki.path("client-ca.pem")),
                client_auth,
            });
            if mutual {
                config.auth = AuthConfig {
                    mode: AuthMode::Enforced,
                    jwt: None,
                    api_keys: None,
                    mtls: true,
                    ..AuthConfig::default()
                };
            }
        },
        |builder| {
            let builder = builder.tls_ca(pki.path("ca.pem"));
            if mutual {
                builder.tls_identity(pki.path("agent.pem"), pki.path("agent.key"))
            } else {
                builder
            }
        },
    )
    .await
}

/// A client of `server` set up by `setup` (from scratch: no CA, no certificate).
fn client_of(
    server: &Server,
    setup: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> ace_client::Client {
    setup(ace_client::Client::builder(&server.base))
        .build()
        .expect("a valid URL and TLS files")
}

/// A WebSocket of `server`'s client (over wss), subscribed to `pattern`.
async fn subscribed(server: &Server, pattern: &str) -> (WsConnection, Subscription) {
    let ws = server
        .client
        .connect_ws()
        .await
        .expect("connected over wss");
    let sub = ws.subscribe(pattern, None).await.expect("subscribed");
    (ws, sub)
}

/// Asserts a [`ClientError::Tls`] whose text says `says`.
fn assert_tls_refusal(err: &ClientError, says: &str) {
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains(says), "{err}");
}

#[tokio::test]
async fn given_a_tls_server_and_its_ca_when_publishing_and_fetching_over_https_then_both_work() {
    let pki = pki();
    let server = start(&pki, ClientAuth::None).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let client = &server.client;
    orders(client, Duration::from_secs(30)).await;
    let env = event(ORDERS, 1);
    let accepted = client.publish(&env).await.expect("published over https");
    assert_eq!(accepted.stream.as_deref(), Some("ORDERS"));
    let got = client
        .fetch("ORDERS", "worker", 10, Duration::from_millis(500))
        .await
        .expect("fetched over https");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope.id, env.id);
    server.stop().await;
}

#[tokio::test]
async fn given_a_tls_server_when_subscribing_over_wss_then_a_published_message_arrives() {
    let pki = pki();
    let server = start(&pki, ClientAuth::None).await;
    let (ws, mut sub) = subscribed(&server, "ace.comms.shop.>").await;
    let env = event(ORDERS, 2);
    ws.publish(&env).await.expect("published over wss");
    assert_eq!(next(&mut sub).await.envelope.id, env.id);
    ws.close().await.expect("closed politely");
    server.stop().await;
}

#[tokio::test]
async fn given_a_server_signed_by_an_untrusted_ca_when_called_then_the_handshake_is_refused_clearly()
 {
    let pki = pki();
    let server = start(&pki, ClientAuth::None).await;
    let stranger = client_of(&server, |b| b.tls_ca(pki.path("stranger-ca.pem")));
    let err = stranger.health().await.expect_err("not trusted");
    assert_tls_refusal(&err, "not signed by a trusted CA");
    assert!(
        err.to_string().contains("GET https://"),
        "names the call: {err}"
    );
    let err = stranger.connect_ws().await.expect_err("not trusted either");
    assert_tls_refusal(&err, "not signed by a trusted CA");
    assert!(err.to_string().contains("wss://"), "{err}");
    // Mozilla's roots alone do not know a private CA.
    let bare = client_of(&server, |b| b);
    assert_tls_refusal(&bare.health().await.unwrap_err(), "--tls-ca");
    server.stop().await;
}

#[tokio::test]
async fn given_required_client_certificates_when_a_client_has_none_then_it_is_refused_clearly() {
    let pki = pki();
    let server = start(&pki, ClientAuth::Required).await;
    let anonymous = client_of(&server, |b| b.tls_ca(pki.path("ca.pem")));
    let err = anonymous
        .publish(&event(AGENT_SUBJECT, 1))
        .await
        .expect_err("no certificate, no connection");
    assert_tls_refusal(&err, "requires a client certificate");
    let err = anonymous.connect_ws().await.expect_err("nor a WebSocket");
    assert_tls_refusal(&err, "requires a client certificate");
    server.stop().await;
}

#[tokio::test]
async fn given_a_client_certificate_from_the_client_ca_when_enforced_then_it_is_the_principal() {
    let pki = pki();
    let server = start(&pki, ClientAuth::Required).await;
    // the agent role subscribes to agent subjects
    let (ws, mut sub) = subscribed(&server, "ace.comms.agent.>").await;
    // no source: the server stamps the authenticated principal
    let env = event(AGENT_SUBJECT, 3);
    assert!(env.source.is_none());
    server
        .client
        .publish(&env)
        .await
        .expect("published over https");
    let got = next(&mut sub).await;
    assert_eq!(got.envelope.id, env.id);
    let source = got.envelope.source.expect("stamped by the server");
    assert_eq!(source.id, AGENT);
    assert_eq!(source.source_type, ace_envelope::SourceType::Agent);
    // The certificate's roles rule: the agent role may not publish to Matrix rooms.
    let denied = server
        .client
        .publish(&event("ace.comms.matrix.room.ops.evt.v1", 4))
        .await
        .expect_err("RBAC denies the agent role");
    assert_eq!(denied.code(), Some(ErrorCode::Forbidden), "{denied}");
    ws.close().await.expect("closed politely");
    server.stop().await;
}
