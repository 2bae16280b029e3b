//! Attacks defended by policy; see `attacks/mod.rs`.
//!
//! - JWT claims: a token without `iat`, with `iat` in the future or with a lifetime above
//!   `auth.jwt.max_lifetime_secs` is 401 naming the claim; the reserved principal ids (the
//!   server's own, the development principal) are refused from a token `sub`, from an API-key
//!   file (the server does not start, naming the file and the entry) and from a client
//!   certificate. The token attacks that were always refused (`alg: none`, RS256→HS256
//!   confusion, expired, wrong `iss`/`aud`, a tampered signature, an unknown `kid`) are kept here
//!   with their exact answers.
//! - The shipped Rego rule holding production targets: the environment of a subject configured
//!   in `policies/environments.yaml` cannot be lowered or dodged by the publisher's
//!   `ace-environment` header, and the header itself is compared normalized.
//! - PII: with `pii.redact_stored`, a `governance.pii` path matching nothing is 400
//!   `INVALID_REQUEST` naming the path, and nothing is stored.

use std::sync::Arc;

use ace_envelope::SystemClock;
use serde_json::{Value, json};

use crate::auth::{Cred, b64, claims, key_of, keys_yaml, now, post_as, signed, start_enforced};
use crate::{Server, assert_error};

const SUBJECT: &str = "ace.comms.agent.agent.a1.evt.status.v1";

fn message(subject: &str) -> Value {
    crate::auth::message(subject)
}

/// `claims()` with `changes` applied (`null` removes a claim).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    if let (Some(fields), Value::Object(changes)) = (c.as_object_mut(), changes) {
        for (name, value) in changes {
            if value.is_null() {
                fields.remove(&name);
            } else {
                fields.insert(name, value);
            }
        }
    }
    c
}

/// Publishes with `token` and asserts a 401 whose message is exactly `expected` (the code is
/// not restated in it).
async fn assert_token_refused(server: &Server, token: String, expected: &str, what: &str) {
    let got = post_as(
        server,
        &Cred::Bearer(token),
        "/api/v1/messages",
        &message(SUBJECT),
    )
    .await;
    assert_error(&got, 401, "UNAUTHENTICATED");
    assert_eq!(got.1["error"]["message"], expected, "{what}: {}", got.1);
}

#[tokio::test]
async fn given_tokens_without_iat_issued_in_the_future_or_living_too_long_when_publishing_then_401_names_the_claim()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let ok = post_as(
        &server,
        &Cred::Bearer(signed(&claims())),
        "/api/v1/messages",
        &message(SUBJECT),
    )
    .await;
    assert_eq!(ok.0, 202, "a token with iat passes: {}", ok.1);

    let no_iat = signed(&claims_with(json!({"iat": null})));
    let reason = "bearer token refused: token claim `iat` is missing or invalid";
    assert_token_refused(&server, no_iat, reason, "no iat").await;

    // The message carries the server's clock; only its start is compared exactly.
    let issued = now() + 3600;
    let future = signed(&claims_with(json!({"iat": issued, "exp": issued + 3600})));
    let got = post_as(
        &server,
        &Cred::Bearer(future),
        "/api/v1/messages",
        &message(SUBJECT),
    )
    .await;
    assert_error(&got, 401, "UNAUTHENTICATED");
    let text = got.1["error"]["message"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "bearer token refused: token claim `iat` is in the future ({issued}, \
             now "
        )) && text.ends_with("leeway 0 s)"),
        "{text}"
    );

    let iat = now() - 60;
    let forever = signed(&claims_with(
        json!({"iat": iat, "exp": iat + 10 * 365 * 86_400}),
    ));
    let reason = format!(
        "bearer token refused: token lifetime `exp` - `iat` of {} s is above the maximum of \
         86400 s (auth.jwt.max_lifetime_secs)",
        10 * 365 * 86_400
    );
    assert_token_refused(&server, forever, &reason, "ten years").await;
    server.stop().await;
}

#[tokio::test]
async fn given_a_shorter_configured_lifetime_when_a_token_exceeds_it_then_401_and_within_it_202() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |config| {
        if let Some(jwt) = config.auth.jwt.as_mut() {
            jwt.max_lifetime_secs = 300;
        }
    })
    .await;
    let iat = now() - 10;
    let within = signed(&claims_with(json!({"iat": iat, "exp": iat + 300})));
    let got = post_as(
        &server,
        &Cred::Bearer(within),
        "/api/v1/messages",
        &message(SUBJECT),
    )
    .await;
    assert_eq!(got.0, 202, "{}", got.1);
    let above = signed(&claims_with(json!({"iat": iat, "exp": iat + 301})));
    let reason = "bearer token refused: token lifetime `exp` - `iat` of 301 s is above the \
                  maximum of 300 s (auth.jwt.max_lifetime_secs)";
    assert_token_refused(&server, above, reason, "301 s").await;
    server.stop().await;
}

#[tokio::test]
async fn given_a_token_naming_a_reserved_principal_when_publishing_then_401_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for sub in [
        ace_core::SYSTEM_PRINCIPAL_ID,
        ace_policy::DEVELOPMENT_PRINCIPAL_ID,
        "ACE-COMMS-SYSTEM",
    ] {
        let token = signed(&claims_with(
            json!({"sub": sub, "roles": ["admin"], "clearance": 5}),
        ));
        let reason = format!(
            "bearer token refused: principal id `{sub}` is reserved for the server itself and \
             cannot be presented by a credential"
        );
        assert_token_refused(&server, token, &reason, sub).await;
    }
    server.stop().await;
}

#[test]
fn given_the_core_system_principal_when_compared_then_it_is_the_reserved_policy_id() {
    assert_eq!(
        ace_core::SYSTEM_PRINCIPAL_ID,
        ace_policy::SYSTEM_PRINCIPAL_ID
    );
    assert_eq!(
        ace_core::system_principal().id,
        ace_policy::SYSTEM_PRINCIPAL_ID
    );
    assert!(ace_policy::is_reserved_principal_id(
        ace_core::SYSTEM_PRINCIPAL_ID
    ));
    assert!(ace_policy::is_reserved_principal_id(
        ace_core::DEVELOPMENT_PRINCIPAL_ID
    ));
}

/// An error and its causes, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[tokio::test]
async fn given_an_api_key_file_naming_a_reserved_principal_when_starting_then_it_refuses_naming_file_and_entry()
 {
    for id in [
        ace_core::SYSTEM_PRINCIPAL_ID,
        ace_policy::DEVELOPMENT_PRINCIPAL_ID,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api-keys.yaml");
        let mut yaml = keys_yaml(&[("agent", "agent", "agent", 1)]);
        yaml.push_str(&format!(
            "  - sha256: {}\n    principal: {{id: {id}, type: service, roles: [admin], \
             clearance: 5}}\n",
            ace_policy::hash_api_key(&key_of("mallory"))
        ));
        std::fs::write(&file, yaml).unwrap();
        let config = ace_server::Config {
            data_dir: dir.path().join("data"),
            auth: ace_server::AuthConfig {
                mode: ace_server::AuthMode::Enforced,
                api_keys: Some(file.clone()),
                ..ace_server::AuthConfig::default()
            },
            ..ace_server::Config::default()
        };
        let err = match ace_server::App::open_with_clock(&config, Arc::new(SystemClock)).await {
            Ok(_) => panic!("a key file naming `{id}` was accepted"),
            Err(err) => chain(&err),
        };
        let expected = format!(
            "`{}: keys[1]` is invalid: principal id `{id}` is reserved for the server itself and \
             cannot be presented by a credential",
            file.display()
        );
        assert!(err.contains("auth.api_keys"), "{err}");
        assert!(err.contains(&expected), "{err}");
    }
}

// ---- The token attacks that were always refused ----
//
// `alg: none`, RS256 → HS256 confusion, a wrong `iss` or `aud`, an expired or not-yet-valid
// token, another key's signature, an unknown `kid`, a malformed token, no `sub` and missing or
// unknown credentials are each held, with their 401 reason, by
// `auth::given_every_jwt_attack_and_bad_credential_when_publishing_then_each_is_401`; the one
// it lacked is here.

#[tokio::test]
async fn given_a_token_whose_payload_was_raised_after_signing_when_publishing_then_401_signature() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let token = signed(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let raised = claims_with(json!({"roles": ["admin"], "clearance": 5}));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(raised.to_string().as_bytes()),
        parts[2]
    );
    assert_token_refused(
        &server,
        tampered,
        "bearer token refused: invalid token signature",
        "tampered payload",
    )
    .await;
    server.stop().await;
}

// ---- PII: a declared path that matches nothing ----

/// An event on [`crate::EVENT_SUBJECT`] carrying an e-mail address, naming `pii`.
fn personal(pii: &[&str]) -> Value {
    let mut envelope = crate::envelope_on(
        crate::EVENT_SUBJECT,
        json!({"customer": {"email": "ada@example.org", "tier": "gold"}}),
    );
    envelope["governance"]["pii"] = json!(pii);
    envelope
}

#[tokio::test]
async fn given_redact_stored_when_a_pii_path_matches_nothing_then_400_names_the_path_and_nothing_is_stored()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |config| config.pii.redact_stored = true).await;
    for (pii, named) in [
        (vec!["customer.emial"], "`customer.emial`"),
        (vec!["/customer/Email"], "`/customer/Email`"),
        (vec!["customer.email", "email"], "`email`"),
    ] {
        let got = server.post("/api/v1/messages", &personal(&pii)).await;
        assert_error(&got, 400, "INVALID_REQUEST");
        let text = got.1["error"]["message"].as_str().unwrap();
        assert!(
            text.contains("governance.pii")
                && text.contains(&format!(
                    "names personal data at {named} but the payload has nothing there"
                )),
            "{pii:?}: {text}"
        );
    }
    let (status, info) = server.get("/api/v1/streams/ACE_EVENTS").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["messages"], 0, "nothing was stored: {info}");
    // The right path is redacted and stored.
    let got = server
        .post("/api/v1/messages", &personal(&["customer.email"]))
        .await;
    assert_eq!(got.0, 202, "{}", got.1);
    assert_eq!(got.1["seq"], 1, "no refused message was appended");
    let (status, stored) = server.get("/api/v1/streams/ACE_EVENTS/messages/1").await;
    assert_eq!(status, 200, "{stored}");
    let text = stored.to_string();
    assert!(!text.contains("ada@example.org"), "{text}");
    assert_eq!(
        stored["envelope"]["payload"]["customer"],
        json!({"email": "[REDACTED]", "tier": "gold"})
    );
    server.stop().await;
}

// ---- The shipped Rego rule for production targets ----

/// The commands subject of a payments service the policy directory says is production.
const PAYMENTS: &str = "ace.comms.http.service.payments.cmd.refund.v1";

/// A policy directory under `dir`: the shipped rbac.yaml and Rego policy, and an
/// `environments.yaml` naming the payments service production.
fn policies_with_production_payments(dir: &std::path::Path) -> std::path::PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("rbac.yaml"), ace_policy::EMBEDDED_RBAC).unwrap();
    for (name, text) in ace_policy::EMBEDDED_REGO {
        let file = std::path::Path::new(name).file_name().unwrap();
        std::fs::write(policies.join(file), text).unwrap();
    }
    std::fs::write(
        policies.join("environments.yaml"),
        "environments:\n  - subjects: [\"ace.comms.*.service.payments.>\"]\n    \
         environment: production\n",
    )
    .unwrap();
    policies
}

/// A command on `subject` with the `ace-environment` header set to `environment`, if any.
fn command(subject: &str, environment: Option<&str>) -> Value {
    let mut body = message(subject);
    if let Some(value) = environment {
        body["headers"][ace_policy::ENVIRONMENT_HEADER] = json!(value);
    }
    body
}

#[tokio::test]
async fn given_a_configured_production_subject_when_the_header_is_respelled_or_missing_then_held_for_approval()
 {
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_production_payments(dir.path());
    let server = start_enforced(dir.path(), |config| config.policy.dir = Some(policies)).await;
    let admin = crate::auth::role("admin");
    for header in [
        Some("Production"),
        Some("PRODUCTION"),
        Some(" production "),
        Some("staging"),
        None,
    ] {
        let body = command(PAYMENTS, header);
        let got = post_as(&server, &admin, "/api/v1/messages", &body).await;
        assert_eq!(got.0, 202, "{header:?}: {}", got.1);
        assert_eq!(got.1["status"], "pending_approval", "{header:?}: {}", got.1);
        assert_eq!(got.1["id"], body["id"], "{header:?}");
    }
    // A subject without a configured environment and without the header passes.
    let got = post_as(
        &server,
        &admin,
        "/api/v1/messages",
        &command("ace.comms.http.service.kpi.cmd.refresh.v1", None),
    )
    .await;
    assert_eq!(got.0, 202, "{}", got.1);
    assert_eq!(got.1["seq"], 1, "stored, not held: {}", got.1);
    // There, the publisher's own `Production` claim is honoured, in any spelling.
    let got = post_as(
        &server,
        &admin,
        "/api/v1/messages",
        &command(
            "ace.comms.http.service.kpi.cmd.refresh.v1",
            Some("PRODUCTION"),
        ),
    )
    .await;
    assert_eq!(got.1["status"], "pending_approval", "{}", got.1);
    server.stop().await;
}

#[tokio::test]
async fn given_the_embedded_policies_when_the_header_is_respelled_then_it_is_still_production() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let admin = crate::auth::role("admin");
    for header in ["Production", "PRODUCTION", " production "] {
        let got = post_as(
            &server,
            &admin,
            "/api/v1/messages",
            &command(PAYMENTS, Some(header)),
        )
        .await;
        assert_eq!(got.0, 202, "{header:?}: {}", got.1);
        assert_eq!(got.1["status"], "pending_approval", "{header:?}: {}", got.1);
    }
    server.stop().await;
}

#[tokio::test]
async fn given_an_environments_file_added_when_policies_reload_then_the_subject_is_held_from_then_on()
 {
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_production_payments(dir.path());
    let file = policies.join("environments.yaml");
    std::fs::remove_file(&file).unwrap();
    let config_dir = policies.clone();
    let server = start_enforced(dir.path(), |config| config.policy.dir = Some(config_dir)).await;
    let admin = crate::auth::role("admin");
    let got = post_as(
        &server,
        &admin,
        "/api/v1/messages",
        &command(PAYMENTS, None),
    )
    .await;
    assert_eq!(got.1["seq"], 1, "no environment configured yet: {}", got.1);
    std::fs::write(
        &file,
        "environments:\n  - {subjects: [\"ace.comms.*.service.payments.>\"], environment: production}\n",
    )
    .unwrap();
    let reloaded = post_as(&server, &admin, "/api/v1/admin/reload", &json!({})).await;
    assert_eq!(reloaded.0, 200, "{}", reloaded.1);
    let files = &reloaded.1["files"];
    assert!(
        files.get(file.display().to_string()).is_some(),
        "the reload hashes environments.yaml: {files}"
    );
    let got = post_as(
        &server,
        &admin,
        "/api/v1/messages",
        &command(PAYMENTS, None),
    )
    .await;
    assert_eq!(got.1["status"], "pending_approval", "{}", got.1);
    server.stop().await;
}

// ---- A client certificate naming a reserved principal ----

/// A CA, a server certificate for `localhost` and a client certificate whose CN is `cn`,
/// written under `dir` (`ca.pem`, `server.pem`, `server.key`); answers the client chain, key
/// and the CA certificate.
fn pki_for_client(
    dir: &std::path::Path,
    cn: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
    rustls::pki_types::CertificateDer<'static>,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ace test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, cn);
    client_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "admin clearance=5");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    (
        vec![client.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
        ca.der().clone(),
    )
}

#[tokio::test]
async fn given_a_client_certificate_naming_a_reserved_principal_when_publishing_then_401_reserved()
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for cn in [
        ace_core::SYSTEM_PRINCIPAL_ID,
        ace_policy::DEVELOPMENT_PRINCIPAL_ID,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (chain, key, ca) = pki_for_client(dir.path(), cn);
        let at = |name: &str| dir.path().join(name);
        let server = start_enforced(dir.path(), |config| {
            config.auth.mtls = true;
            config.tls = Some(ace_server::TlsConfig {
                cert: at("server.pem"),
                key: at("server.key"),
                client_ca: Some(at("ca.pem")),
                client_auth: ace_server::ClientAuth::Optional,
            });
        })
        .await;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let body = message(SUBJECT).to_string();
        let request = format!(
            "POST /api/v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: \
             application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        let (head, json_body) = text.split_once("\r\n\r\n").expect("a full response");
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        let answer: Value = serde_json::from_str(json_body).expect("a JSON error body");
        assert_error(&(401, answer.clone()), 401, "UNAUTHENTICATED");
        assert_eq!(
            answer["error"]["message"],
            format!(
                "client certificate refused: principal id `{cn}` is reserved \
                 for the server itself and cannot be presented by a credential"
            ),
            "{answer}"
        );
        server.stop().await;
    }
}
