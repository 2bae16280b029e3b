//! Reloading credentials and policies without a restart, over real sockets: an enforced server
//! whose API-key file, HS256 secret and policy directory live in a temporary directory, and
//! `POST /api/v1/admin/reload` after each edit.
//!
//! - keys added to the file work only after the reload, keys removed stop working; a token
//!   verified (and cached) under a rotated secret is refused at once;
//! - a Rego rule added to the directory is enforced after the reload;
//! - a broken `rbac.yaml` or `.rego` file: the reload is refused 400 naming the key and the
//!   file, the old policy keeps serving, `ace_comms_reloads_total{result="error"}` counts it;
//! - the policy counters never go backwards across engines;
//! - only `admin` may reload (403 for every other role, 401 without credentials);
//! - each reload is a `config_changed` ledger entry by its requester with every file's SHA-256;
//! - development mode answers that there is nothing to reload.

use std::path::{Path, PathBuf};

use ace_policy::{EMBEDDED_RBAC, JwtConfig, KeySource};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::auth::{Cred, get_as, key_of, keys_yaml, message, post_as, role, start_enforced};
use crate::{Server, assert_error};

const RELOAD: &str = "/api/v1/admin/reload";
/// A subject the `human` role may publish on.
const MATRIX: &str = "ace.comms.matrix.room.ops.evt.v1";

/// The files of one enforced server.
struct Files {
    keys: PathBuf,
    secret: PathBuf,
    policies: PathBuf,
}

impl Files {
    /// `policies/` holds the shipped `rbac.yaml` and Rego; the HS256 secret is `secret-a`.
    fn write(dir: &Path) -> Files {
        let policies = dir.join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join("rbac.yaml"), EMBEDDED_RBAC).unwrap();
        for (name, text) in ace_policy::EMBEDDED_REGO {
            let file = Path::new(name).file_name().unwrap();
            std::fs::write(policies.join(file), text).unwrap();
        }
        let secret = dir.join("jwt.secret");
        std::fs::write(&secret, secret_of("a")).unwrap();
        Files {
            keys: dir.join("api-keys.yaml"),
            secret,
            policies,
        }
    }
}

/// A 32-byte-plus HS256 secret named `name`.
fn secret_of(name: &str) -> String {
    format!("secret-{name}-0123456789abcdef0123456789abcdef")
}

/// An HS256 token of a `human` principal signed with the secret `name`.
fn token(name: &str) -> String {
    let claims = json!({
        "sub": "jwt-human", "exp": crate::auth::now() + 600, "iat": crate::auth::now() - 60,
        "roles": ["human"], "clearance": 1, "principal_type": "human",
    });
    let key = EncodingKey::from_secret(secret_of(name).as_bytes());
    jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

/// An enforced server over `Files` (API keys of every role, the HS256 secret, `policies/`).
async fn start(dir: &Path) -> (Server, Files) {
    let files = Files::write(dir);
    let (secret, policies) = (files.secret.clone(), files.policies.clone());
    let server = start_enforced(dir, |config| {
        config.auth.jwt = Some(JwtConfig {
            leeway_secs: 0,
            ..JwtConfig::with_keys(vec![KeySource::HmacSecret {
                path: secret,
                kid: None,
            }])
        });
        config.policy.dir = Some(policies);
    })
    .await;
    (server, files)
}

async fn reload(server: &Server, cred: &Cred) -> (u16, Value) {
    post_as(server, cred, RELOAD, &json!({})).await
}

async fn publish(server: &Server, cred: &Cred, subject: &str) -> (u16, Value) {
    post_as(server, cred, "/api/v1/messages", &message(subject)).await
}

/// The value of the sample `line` (a metric name with its labels) in `/metrics`.
async fn sample(server: &Server, line: &str) -> u64 {
    let text = server.metrics().await;
    let prefix = format!("{line} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{line}` in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn given_keys_added_and_removed_when_reloaded_then_only_the_keys_on_disk_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let newcomer = Cred::Key(key_of("newcomer"));
    assert_error(
        &publish(&server, &newcomer, MATRIX).await,
        401,
        "UNAUTHENTICATED",
    );
    assert_eq!(publish(&server, &role("human"), MATRIX).await.0, 202);
    // The human's key leaves the file and a newcomer's arrives: nothing changes until reload.
    let yaml = keys_yaml(&[
        ("admin", "admin", "service", 5),
        ("newcomer", "human", "human", 1),
    ]);
    std::fs::write(&files.keys, &yaml).unwrap();
    assert_error(
        &publish(&server, &newcomer, MATRIX).await,
        401,
        "UNAUTHENTICATED",
    );
    let (status, body) = reload(&server, &role("admin")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reloaded"],
        json!(["auth.jwt", "auth.api_keys", "policy.dir"])
    );
    let sha = ace_ledger::Hash::of(&[yaml.as_bytes()]).to_hex();
    assert_eq!(body["files"][files.keys.display().to_string()], sha);
    assert_eq!(publish(&server, &newcomer, MATRIX).await.0, 202);
    let gone = publish(&server, &role("human"), MATRIX).await;
    assert_error(&gone, 401, "UNAUTHENTICATED");
    assert_eq!(
        sample(&server, "ace_comms_reloads_total{result=\"ok\"}").await,
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_cached_token_when_its_secret_is_rotated_and_reloaded_then_it_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let old = Cred::Bearer(token("a"));
    // Twice: the second answer comes from the cache of verified tokens.
    for _ in 0..2 {
        assert_eq!(publish(&server, &old, MATRIX).await.0, 202);
    }
    std::fs::write(&files.secret, secret_of("b")).unwrap();
    assert_eq!(reload(&server, &role("admin")).await.0, 200);
    let refused = publish(&server, &old, MATRIX).await;
    assert_error(&refused, 401, "UNAUTHENTICATED");
    let new = Cred::Bearer(token("b"));
    assert_eq!(publish(&server, &new, MATRIX).await.0, 202);
    server.stop().await;
}

#[tokio::test]
async fn given_a_rego_rule_added_when_reloaded_then_its_denial_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let human = role("human");
    assert_eq!(publish(&server, &human, MATRIX).await.0, 202);
    let rule = "package ace.comms\n\n\
        deny contains \"matrix rooms are closed for maintenance\" if {\n\
        \tstartswith(input.subject, \"ace.comms.matrix.\")\n}\n";
    std::fs::write(files.policies.join("maintenance.rego"), rule).unwrap();
    assert_eq!(publish(&server, &human, MATRIX).await.0, 202, "not before");
    let (status, body) = reload(&server, &role("admin")).await;
    assert_eq!(status, 200, "{body}");
    let added = files.policies.join("maintenance.rego");
    assert!(
        body["files"][added.display().to_string()].is_string(),
        "{body}"
    );
    let denied = publish(&server, &human, MATRIX).await;
    assert_error(&denied, 403, "FORBIDDEN");
    let reasons = denied.1["error"]["details"]["reasons"].to_string();
    assert!(reasons.contains("closed for maintenance"), "{reasons}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_broken_policy_file_when_reloaded_then_refused_naming_it_and_the_old_policy_serves()
{
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let rbac = files.policies.join("rbac.yaml");
    let bad_rego = files.policies.join("broken.rego");
    let breakages: [(&Path, &str); 2] = [
        (&rbac, "roles: [this is not a table\n"),
        (&bad_rego, "package ace.comms\ndeny contains if {\n"),
    ];
    for (n, (file, text)) in breakages.into_iter().enumerate() {
        let good = std::fs::read(file).ok();
        std::fs::write(file, text).unwrap();
        let refused = reload(&server, &role("admin")).await;
        assert_error(&refused, 400, "INVALID_REQUEST");
        assert_eq!(refused.1["error"]["details"]["field"], "policy.dir");
        let said = refused.1["error"]["message"].as_str().unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(said.contains(name), "`{said}` names no `{name}`");
        // The old policy still decides: the human publishes, the observer may not.
        assert_eq!(publish(&server, &role("human"), MATRIX).await.0, 202);
        assert_error(
            &publish(&server, &role("observer"), MATRIX).await,
            403,
            "FORBIDDEN",
        );
        let errors = sample(&server, "ace_comms_reloads_total{result=\"error\"}").await;
        assert_eq!(errors, n as u64 + 1);
        match good {
            Some(bytes) => std::fs::write(file, bytes).unwrap(),
            None => std::fs::remove_file(file).unwrap(),
        }
    }
    assert_eq!(
        sample(&server, "ace_comms_reloads_total{result=\"ok\"}").await,
        0
    );
    assert_eq!(
        reload(&server, &role("admin")).await.0,
        200,
        "fixed files load"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_broken_key_file_or_secret_when_reloaded_then_refused_and_old_credentials_work() {
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let keys = std::fs::read(&files.keys).unwrap();
    let bearer = Cred::Bearer(token("a"));
    let breakages: [(&Path, &str, &str); 3] = [
        (&files.keys, "keys: {not: a list}\n", "auth.api_keys"),
        (&files.secret, "too short", "auth.jwt"),
        (&files.keys, "", "auth.api_keys"),
    ];
    for (file, text, key) in breakages {
        let good = std::fs::read(file).unwrap();
        if text.is_empty() {
            std::fs::remove_file(file).unwrap();
        } else {
            std::fs::write(file, text).unwrap();
        }
        let refused = reload(&server, &role("admin")).await;
        assert_error(&refused, 400, "INVALID_REQUEST");
        assert_eq!(refused.1["error"]["details"]["field"], key, "{}", refused.1);
        assert_eq!(publish(&server, &role("human"), MATRIX).await.0, 202);
        assert_eq!(publish(&server, &bearer, MATRIX).await.0, 202);
        std::fs::write(file, good).unwrap();
    }
    let fixed = reload(&server, &role("admin")).await;
    assert_eq!(fixed.0, 200, "{}", fixed.1);
    assert_eq!(std::fs::read(&files.keys).unwrap(), keys);
    server.stop().await;
}

#[tokio::test]
async fn given_denials_before_and_after_reloads_when_scraped_then_the_counter_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _files) = start(dir.path()).await;
    let observer = role("observer");
    let denials = "ace_comms_policy_denials_total";
    for _ in 0..2 {
        assert_eq!(publish(&server, &observer, MATRIX).await.0, 403);
    }
    assert_eq!(sample(&server, denials).await, 2);
    // One more on the old engine, a reload, one on the new engine, and only then a scrape:
    // the old engine's last denial is carried, the new one's added.
    assert_eq!(publish(&server, &observer, MATRIX).await.0, 403);
    assert_eq!(reload(&server, &role("admin")).await.0, 200);
    assert_eq!(publish(&server, &observer, MATRIX).await.0, 403);
    assert_eq!(sample(&server, denials).await, 4);
    assert_eq!(reload(&server, &role("admin")).await.0, 200);
    assert_eq!(
        sample(&server, denials).await,
        4,
        "a reload alone changes nothing"
    );
    assert_eq!(publish(&server, &observer, MATRIX).await.0, 403);
    assert_eq!(sample(&server, denials).await, 5);
    server.stop().await;
}

#[tokio::test]
async fn given_any_role_but_admin_when_reloading_then_403_and_nothing_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _files) = start(dir.path()).await;
    for name in ["agent", "human", "observer", "approver", "auditor"] {
        let refused = reload(&server, &role(name)).await;
        assert_error(&refused, 403, "FORBIDDEN");
        let reasons = refused.1["error"]["details"]["reasons"].to_string();
        assert!(reasons.contains("ace.comms.system."), "{name}: {reasons}");
    }
    assert_error(
        &reload(&server, &Cred::Nothing).await,
        401,
        "UNAUTHENTICATED",
    );
    for result in ["ok", "error"] {
        let line = format!("ace_comms_reloads_total{{result=\"{result}\"}}");
        assert_eq!(sample(&server, &line).await, 0, "{result}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_reload_when_the_ledger_is_read_then_a_config_changed_entry_names_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (server, files) = start(dir.path()).await;
    let (status, body) = reload(&server, &role("admin")).await;
    assert_eq!(status, 200, "{body}");
    let path = "/api/v1/ledger/entries?kind=config_changed&limit=1000";
    let (status, page) = get_as(&server, &role("admin"), path).await;
    assert_eq!(status, 200, "{page}");
    let entry = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == "server.reload")
        .cloned()
        .expect("the reload is recorded");
    assert_eq!(entry["actor"], "admin-1");
    assert_eq!(entry["decision"], "reload");
    assert_eq!(entry["details"]["reloaded"], body["reloaded"]);
    assert_eq!(entry["details"]["files"], body["files"]);
    let secret = std::fs::read(&files.secret).unwrap();
    let sha = ace_ledger::Hash::of(&[&secret]).to_hex();
    assert_eq!(
        entry["details"]["files"][files.secret.display().to_string()],
        sha
    );
    // rbac.yaml, the shipped Rego, the secret and the key file.
    assert_eq!(entry["details"]["files"].as_object().unwrap().len(), 4);
    // The start recorded the same files (unchanged since), so every stretch of the ledger
    // names the policies it ran under.
    let start = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subject"] == "server.start")
        .cloned()
        .expect("the start is recorded");
    assert_eq!(start["details"]["files"], body["files"]);
    server.stop().await;
}

#[tokio::test]
async fn given_development_mode_when_reloading_then_200_says_there_is_nothing_to_reload() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, body) = server.post(RELOAD, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reloaded"], json!([]));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("development mode")
    );
    server.stop().await;
}
