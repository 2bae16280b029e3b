//! The ledger of a real server, read over HTTP and checked here with nothing of `ace-ledger`'s
//! verification code: an RFC 6962 (RFC 9162 §2.1.3.2 and §2.1.4.2) proof verifier written from
//! the RFC text over `sha2`, the leaf bytes re-derived from each entry as canonical JSON by a
//! canonicalizer of this file, and the checkpoint signature checked with `ed25519-dalek` against
//! `GET /api/v1/ledger/key`. After shutdown `ace_ledger::verify_dir` must find the files intact.

use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{EVENT_SUBJECT, Server, assert_error, event};

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
}

fn unhex32(text: &Value) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.as_str().expect("a hex string"), &mut out).expect("32 hex bytes");
    out
}

/// `HASH(0x01 || left || right)` (RFC 6962 §2.1).
fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1], left, right])
}

/// Right-shifts `fn_` and `sn` together until the low bit of `fn_` is set or `fn_` is 0.
fn shift_while_even(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// RFC 9162 §2.1.3.2, step by step.
fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: [u8; 32],
    path: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let (mut fn_, mut sn, mut r) = (leaf_index, tree_size - 1, leaf_hash);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node(p, &r);
            shift_while_even(&mut fn_, &mut sn);
        } else {
            r = node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2, step by step (for `0 < first < second`).
fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: [u8; 32],
    second_hash: [u8; 32],
    path: &[[u8; 32]],
) -> bool {
    if path.is_empty() || first == 0 || first >= second {
        return false;
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            shift_while_even(&mut fn_, &mut sn);
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

/// Canonical JSON as the ledger documents it: object keys sorted, no whitespace; strings and
/// numbers as JSON writes them.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// The leaf hash of an entry as served: `SHA-256(0x00 || canonical(entry minus chain_hash))`.
fn leaf_hash(entry: &Value) -> [u8; 32] {
    let mut fields = entry.as_object().expect("an entry object").clone();
    fields.remove("chain_hash");
    sha256(&[&[0], canonical(&Value::Object(fields)).as_bytes()])
}

fn path_of(proof: &Value) -> Vec<[u8; 32]> {
    proof["path"]
        .as_array()
        .expect("a path")
        .iter()
        .map(unhex32)
        .collect()
}

/// Checks `checkpoint`'s Ed25519 signature against the served key, and the key id.
fn assert_signed(checkpoint: &Value, key: &Value) {
    assert_eq!(key["algorithm"], "ed25519");
    let public = unhex32(&key["public_key"]);
    assert_eq!(
        key["key_id"].as_str().unwrap(),
        &hex::encode(sha256(&[&public]))[..16],
        "key_id is the first 16 hex characters of SHA-256(public key)"
    );
    assert_eq!(checkpoint["key_id"], key["key_id"]);
    let body = json!({
        "chain_head": checkpoint["chain_head"],
        "key_id": checkpoint["key_id"],
        "root_hash": checkpoint["root_hash"],
        "size": checkpoint["size"],
        "ts": checkpoint["ts"],
    });
    let mut signed = b"ace-ledger/checkpoint/v1\n".to_vec();
    signed.extend(canonical(&body).as_bytes());
    let mut signature = [0u8; 64];
    hex::decode_to_slice(checkpoint["signature"].as_str().unwrap(), &mut signature).unwrap();
    VerifyingKey::from_bytes(&public)
        .expect("a valid public key")
        .verify_strict(&signed, &Signature::from_bytes(&signature))
        .expect("the checkpoint signature verifies");
}

async fn entries(server: &Server, query: &str) -> Vec<Value> {
    let (status, page) = server.get(&format!("/api/v1/ledger/entries?{query}")).await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn given_published_messages_when_the_ledger_is_read_over_http_then_entries_checkpoints_and_proofs_verify_independently()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.ledger.checkpoint_every_entries = 1).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let (status, body) = server.post("/api/v1/messages", &event(n)).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }

    let accepted = entries(&server, "kind=accepted").await;
    assert_eq!(accepted.len(), 3);
    for (n, (entry, id)) in accepted.iter().zip(&ids).enumerate() {
        assert_eq!(entry["message_id"], id.as_str());
        assert_eq!(entry["subject"], EVENT_SUBJECT);
        assert_eq!(entry["decision"], "allow");
        assert_eq!(entry["details"]["stream"], "ACE_EVENTS");
        // The content hash is SHA-256 of the canonical JSON of the payload.
        let payload = format!("{{\"n\":{}}}", n + 1);
        assert_eq!(
            entry["content_sha256"].as_str().unwrap(),
            hex::encode(sha256(&[payload.as_bytes()]))
        );
    }

    let (status, key) = server.get("/api/v1/ledger/key").await;
    assert_eq!(status, 200, "{key}");
    let (status, first) = server.get("/api/v1/ledger/checkpoint").await;
    assert_eq!(status, 200, "{first}");
    assert_signed(&first, &key);
    let first_size = first["size"].as_u64().unwrap();
    let first_root = unhex32(&first["root_hash"]);

    // Every accepted entry is in the checkpointed tree (size defaults to the checkpoint's).
    for entry in &accepted {
        let seq = entry["seq"].as_u64().unwrap();
        let (status, proof) = server
            .get(&format!("/api/v1/ledger/proof/inclusion/{seq}"))
            .await;
        assert_eq!(status, 200, "{proof}");
        assert_eq!(proof["tree_size"].as_u64(), Some(first_size));
        let leaf = leaf_hash(entry);
        assert_eq!(unhex32(&proof["leaf_hash"]), leaf, "the served leaf hash");
        assert!(
            verify_inclusion(seq, first_size, leaf, &path_of(&proof), first_root),
            "inclusion of {seq} in {first_size}: {proof}"
        );
        // A tampered leaf does not verify against the same path.
        let mut other = leaf;
        other[0] ^= 1;
        assert!(!verify_inclusion(
            seq,
            first_size,
            other,
            &path_of(&proof),
            first_root
        ));
    }

    // More entries, a later checkpoint, and the consistency of the two.
    for n in 4..=9 {
        assert_eq!(server.post("/api/v1/messages", &event(n)).await.0, 202);
    }
    let (_, second) = server.get("/api/v1/ledger/checkpoint").await;
    assert_signed(&second, &key);
    let second_size = second["size"].as_u64().unwrap();
    assert!(second_size > first_size, "{first} then {second}");
    let (status, proof) = server
        .get(&format!(
            "/api/v1/ledger/proof/consistency?from={first_size}&to={second_size}"
        ))
        .await;
    assert_eq!(status, 200, "{proof}");
    let second_root = unhex32(&second["root_hash"]);
    assert!(
        verify_consistency(
            first_size,
            second_size,
            first_root,
            second_root,
            &path_of(&proof)
        ),
        "consistency {first_size} → {second_size}: {proof}"
    );
    assert!(!verify_consistency(
        first_size,
        second_size,
        second_root,
        first_root,
        &path_of(&proof)
    ));

    // Every entry chains from the one before, from 32 zero bytes.
    let all = entries(&server, "limit=1000").await;
    let mut chain = [0u8; 32];
    for entry in &all {
        let mut fields = entry.as_object().unwrap().clone();
        fields.remove("chain_hash");
        chain = sha256(&[&chain, canonical(&Value::Object(fields)).as_bytes()]);
        assert_eq!(unhex32(&entry["chain_hash"]), chain, "chain at {entry}");
    }

    let total = all.len() as u64;
    server.stop().await;
    assert_verified_and_covered(dir.path(), total);
}

/// `verify_dir` finds `total` intact entries under `data_dir`, every one covered by a checkpoint.
fn assert_verified_and_covered(data_dir: &std::path::Path, total: u64) {
    let report = ace_ledger::verify_dir(data_dir);
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.entries, total);
    assert_eq!(
        report.uncovered, 0,
        "the final checkpoint covers every entry"
    );
}

#[tokio::test]
async fn given_a_start_and_stream_changes_when_listed_then_config_changed_entries_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, _) = server
        .post(
            "/api/v1/streams",
            &json!({"name": "ORDERS", "subjects": ["orders.>"]}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(server.delete("/api/v1/streams/ORDERS").await.0, 204);
    let changes = entries(&server, "kind=config_changed&limit=1000").await;
    let start = changes
        .iter()
        .find(|e| e["subject"] == "server.start")
        .expect("the start is recorded");
    assert_eq!(start["actor"], "ace-comms-system");
    let sha = start["details"]["config_sha256"].as_str().unwrap();
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        changes
            .iter()
            .any(|e| e["subject"] == "stream.ACE_EVENTS" && e["actor"] == "ace-comms-system"),
        "the default streams' creation is recorded"
    );
    let orders: Vec<&Value> = changes
        .iter()
        .filter(|e| e["subject"] == "stream.ORDERS")
        .collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(orders[0]["decision"], "add_stream");
    assert_eq!(
        orders[0]["details"]["config"]["subjects"],
        json!(["orders.>"])
    );
    assert_eq!(orders[1]["decision"], "delete_stream");
    assert_eq!(orders[0]["actor"], ace_core::DEVELOPMENT_PRINCIPAL_ID);
    server.stop().await;
}

#[tokio::test]
async fn given_a_termed_message_when_it_is_dead_lettered_then_a_dead_lettered_entry_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (_, accepted) = server.post("/api/v1/messages", &event(1)).await;
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    assert_eq!(server.post(base, &json!({"name": "w"})).await.0, 201);
    let (status, got) = server
        .post(
            &format!("{base}/w/fetch"),
            &json!({"batch": 1, "expires_ms": 1000}),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    let seq = got["messages"][0]["seq"].as_u64().unwrap();
    let (status, _) = server
        .post(
            &format!("{base}/w/term"),
            &json!({"seqs": [seq], "reason": "poison"}),
        )
        .await;
    assert_eq!(status, 200);
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = entries(&server, "kind=dead_lettered").await;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "one dead letter recorded: {dead:?}");
    assert_eq!(dead[0]["message_id"], accepted["id"]);
    assert_eq!(dead[0]["actor"], "ace-comms-system");
    assert_eq!(dead[0]["details"]["stream"], "ACE_EVENTS");
    assert_eq!(dead[0]["details"]["consumer"], "w");
    assert_eq!(dead[0]["details"]["reason"], "term");
    assert_eq!(dead[0]["details"]["detail"], "poison");
    assert_eq!(dead[0]["decision"], "dead-letter: term: poison");

    // The bus's own path: deliveries run out on a consumer that never acknowledges.
    let config = json!({"name": "m", "max_deliver": 1, "ack_wait": 100});
    assert_eq!(server.post(base, &config).await.0, 201);
    let fetch = json!({"batch": 1, "expires_ms": 200});
    let (status, got) = server.post(&format!("{base}/m/fetch"), &fetch).await;
    assert_eq!(status, 200, "{got}");
    for _ in 0..100 {
        dead = entries(&server, "kind=dead_lettered").await;
        if dead.len() == 2 {
            break;
        }
        let _ = server.post(&format!("{base}/m/fetch"), &fetch).await;
    }
    assert_eq!(
        dead.len(),
        2,
        "the exhausted message is recorded too: {dead:?}"
    );
    assert_eq!(dead[1]["message_id"], accepted["id"]);
    assert_eq!(dead[1]["details"]["consumer"], "m");
    assert_eq!(dead[1]["details"]["deliveries"], 1);
    server.stop().await;
}

#[tokio::test]
async fn given_bad_ledger_parameters_when_asked_then_400_names_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let cases = [
        ("/api/v1/ledger/proof/inclusion/abc", "seq"),
        ("/api/v1/ledger/proof/inclusion/99999", "seq"),
        ("/api/v1/ledger/proof/inclusion/0?size=x", "size"),
        ("/api/v1/ledger/proof/inclusion/0?size=99999", "tree_size"),
        ("/api/v1/ledger/proof/inclusion/0?sise=1", "query"),
        ("/api/v1/ledger/proof/consistency?from=1", "to"),
        ("/api/v1/ledger/proof/consistency?from=2&to=1", "from"),
        ("/api/v1/ledger/proof/consistency?from=1&to=99999", "to"),
        ("/api/v1/ledger/proof/consistency?from=-1&to=2", "from"),
        ("/api/v1/ledger/entries?kind=bogus", "kind"),
        ("/api/v1/ledger/entries?since=yesterday", "since"),
        ("/api/v1/ledger/entries?until=2026-13-01T00:00:00Z", "until"),
        (
            "/api/v1/ledger/entries?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        ("/api/v1/ledger/entries?after=x", "after"),
        ("/api/v1/ledger/entries?limit=0", "limit"),
        ("/api/v1/ledger/entries?limit=1001", "limit"),
    ];
    for (path, field) in cases {
        let answer = server.get(path).await;
        assert_error(&answer, 400, "INVALID_REQUEST");
        assert_eq!(
            answer.1["error"]["details"]["field"], field,
            "{path}: {}",
            answer.1
        );
        assert!(
            answer.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{path}: {}",
            answer.1
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn given_many_entries_when_paged_then_next_after_walks_them_all_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    for n in 1..=5 {
        assert_eq!(server.post("/api/v1/messages", &event(n)).await.0, 202);
    }
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let query = match after {
            Some(a) => format!("kind=accepted&limit=2&after={a}"),
            None => "kind=accepted&limit=2".to_owned(),
        };
        let (status, page) = server.get(&format!("/api/v1/ledger/entries?{query}")).await;
        assert_eq!(status, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["details"]["seq"].as_u64().unwrap());
        }
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    let until_past = entries(&server, "kind=accepted&until=2000-01-01T00:00:00Z").await;
    assert!(until_past.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn given_the_ledger_disabled_when_read_then_404_says_so_and_publishing_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.ledger.enabled = false).await;
    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);
    let answer = server.get("/api/v1/ledger/checkpoint").await;
    assert_error(&answer, 404, "NOT_FOUND");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ledger.enabled")
    );
    server.stop().await;
    assert!(!dir.path().join("ledger").exists(), "no ledger files");
}

#[tokio::test]
async fn given_a_restart_when_publishing_again_then_the_ledger_continues_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);
    let (_, before) = server.get("/api/v1/ledger/checkpoint").await;
    server.stop().await;
    let server = Server::start(dir.path()).await;
    assert_eq!(server.post("/api/v1/messages", &event(2)).await.0, 202);
    let accepted = entries(&server, "kind=accepted").await;
    assert_eq!(accepted.len(), 2);
    let (_, key) = server.get("/api/v1/ledger/key").await;
    assert_signed(&before, &key); // the same key after a restart
    server.stop().await;
    let report = ace_ledger::verify_dir(dir.path());
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn given_enforced_mode_when_a_publish_is_denied_then_the_denied_entry_names_the_principal_and_only_an_auditor_reads_it()
 {
    const AGENT: &str = "agent-key-0123456789abcdef0123456789abcdef";
    const AUDITOR: &str = "auditor-key-0123456789abcdef0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("api-keys.yaml");
    let line = |key: &str, id: &str, kind: &str, role: &str| {
        format!(
            "  - sha256: {}\n    principal: {{id: {id}, type: {kind}, roles: [{role}], clearance: 1}}\n",
            hex::encode(sha256(&[key.as_bytes()]))
        )
    };
    let yaml = format!(
        "keys:\n{}{}",
        line(AGENT, "agent-1", "agent", "agent"),
        line(AUDITOR, "auditor-1", "human", "auditor")
    );
    std::fs::write(&keys, yaml).unwrap();
    let server = Server::start_with(&dir.path().join("data"), |c| {
        c.auth = ace_server::AuthConfig {
            mode: ace_server::AuthMode::Enforced,
            api_keys: Some(keys),
            ..ace_server::AuthConfig::default()
        };
    })
    .await;
    let as_key = |key: &str, request: reqwest::RequestBuilder| request.header("X-ACE-API-Key", key);
    let publish = |subject: &str| crate::envelope_on(subject, json!({"n": 1}));

    let allowed = publish("ace.comms.a2a.agent.a1.evt.done.v1");
    let request = as_key(AGENT, server.http.post(server.url("/api/v1/messages")));
    let (status, body) = crate::answer(request.json(&allowed).send().await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let refused = publish(EVENT_SUBJECT); // ace.comms.http.…: humans only
    let request = as_key(AGENT, server.http.post(server.url("/api/v1/messages")));
    let answer = crate::answer(request.json(&refused).send().await.unwrap()).await;
    assert_error(&answer, 403, "FORBIDDEN");

    // The agent may not read the ledger; the auditor may.
    let read = |key: &str, path: &str| as_key(key, server.http.get(server.url(path)));
    let path = "/api/v1/ledger/entries?kind=denied";
    let answer = crate::answer(read(AGENT, path).send().await.unwrap()).await;
    assert_error(&answer, 403, "FORBIDDEN");
    let (status, page) = crate::answer(read(AUDITOR, path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let denied = page["entries"].as_array().unwrap();
    let entry = denied
        .iter()
        .find(|e| e["message_id"] == refused["id"])
        .unwrap_or_else(|| panic!("the refused message is recorded: {page}"));
    assert_eq!(entry["actor"], "agent-1");
    assert_eq!(entry["subject"], EVENT_SUBJECT);
    assert!(
        entry["decision"].as_str().unwrap().starts_with("deny"),
        "{entry}"
    );
    assert!(
        !entry["details"]["reasons"].as_array().unwrap().is_empty(),
        "{entry}"
    );
    let path = "/api/v1/ledger/entries?kind=accepted";
    let (_, page) = crate::answer(read(AUDITOR, path).send().await.unwrap()).await;
    let accepted = page["entries"].as_array().unwrap();
    assert!(
        accepted
            .iter()
            .any(|e| e["message_id"] == allowed["id"] && e["actor"] == "agent-1"),
        "{page}"
    );
    server.stop().await;
}

/// Runs `call` on a thread of its own: the `postgres` client blocks on a runtime of its own,
/// which must not run on a tokio thread.
fn off_runtime<T: Send>(call: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(call).join().expect("no panic"))
}

/// A fresh schema on `ACE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
/// dropped when the test ends, pass or fail.
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    /// `None` (after a loud notice) when the server is unreachable; under `CI=true` that fails.
    fn new(test: &str) -> Option<PgSchema> {
        let url = ace_testkit::postgres_url(test)?;
        let name = format!("ace_server_it_{test}_{}", std::process::id());
        Some(PgSchema { url, name })
    }

    /// `SELECT count(*) FROM <schema>.<table>`.
    fn count(&self, table: &str) -> i64 {
        off_runtime(|| {
            let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            let sql = format!("SELECT count(*) FROM {}.{table}", self.name);
            client.query_one(&sql, &[]).unwrap().get(0)
        })
    }

    /// The server configuration that keeps the ledger in this schema (and checkpoints every
    /// entry, so that the latest checkpoint covers what a test just published).
    fn configure(&self, config: &mut ace_server::Config) {
        config.ledger.checkpoint_every_entries = 1;
        config.ledger.store = ace_server::LedgerStoreKind::Postgres;
        config.ledger.postgres.url = self.url.clone();
        config.ledger.postgres.schema = self.name.clone();
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        off_runtime(|| {
            if let Ok(mut client) = postgres::Client::connect(&self.url, postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
            }
        });
    }
}

/// The accepted entry of a message published to `server`, with a proof of its inclusion in the
/// latest checkpoint checked here, and that checkpoint's signature checked against the key.
async fn assert_proven(server: &Server, entry: &Value) -> Value {
    let (_, key) = server.get("/api/v1/ledger/key").await;
    let (status, checkpoint) = server.get("/api/v1/ledger/checkpoint").await;
    assert_eq!(status, 200, "{checkpoint}");
    assert_signed(&checkpoint, &key);
    let (size, seq) = (
        checkpoint["size"].as_u64().unwrap(),
        entry["seq"].as_u64().unwrap(),
    );
    let (status, proof) = server
        .get(&format!("/api/v1/ledger/proof/inclusion/{seq}?size={size}"))
        .await;
    assert_eq!(status, 200, "{proof}");
    assert!(
        verify_inclusion(
            seq,
            size,
            leaf_hash(entry),
            &path_of(&proof),
            unhex32(&checkpoint["root_hash"])
        ),
        "inclusion of {seq} in {size}: {proof}"
    );
    checkpoint
}

#[tokio::test]
async fn given_the_postgres_store_when_publishing_then_entries_checkpoints_and_proofs_are_served_and_a_restart_keeps_them()
 {
    let Some(db) = PgSchema::new("store") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| db.configure(c)).await;
    let (status, body) = server.post("/api/v1/messages", &event(1)).await;
    assert_eq!(status, 202, "{body}");
    let accepted = entries(&server, "kind=accepted").await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["message_id"], body["id"]);
    let before = assert_proven(&server, &accepted[0]).await;
    server.stop().await;
    let ledger = dir.path().join("ledger");
    assert!(
        ledger.join("signing.key").exists(),
        "the key stays in the data dir"
    );
    assert!(!ledger.join("entries.jsonl").exists(), "no entry in a file");
    let stored = db.count("entries");
    assert!(
        stored >= 2,
        "the start and the accepted entry are rows: {stored}"
    );

    // Restarted, here under sync: interval (asynchronous commits), the chain continues.
    let server = Server::start_with(dir.path(), |c| {
        db.configure(c);
        c.ledger.sync = ace_server::LedgerSyncMode::Interval;
    })
    .await;
    assert_eq!(server.post("/api/v1/messages", &event(2)).await.0, 202);
    let after = entries(&server, "kind=accepted").await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], accepted[0], "the first entry is unchanged");
    let (_, key) = server.get("/api/v1/ledger/key").await;
    assert_signed(&before, &key); // the same key after a restart
    let latest = assert_proven(&server, &after[1]).await;
    assert!(latest["size"].as_u64() > before["size"].as_u64());
    server.stop().await;
    assert_eq!(
        db.count("entries"),
        stored + 2,
        "the restart's start entry and the second accepted one"
    );
}

#[tokio::test]
async fn given_an_unreachable_postgres_store_when_the_server_starts_then_it_refuses_naming_the_url_without_its_password()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ace_server::Config {
        data_dir: dir.path().to_path_buf(),
        ..ace_server::Config::default()
    };
    config.ledger.store = ace_server::LedgerStoreKind::Postgres;
    config.ledger.postgres.url = "postgres://ace:s3cret@127.0.0.1:1/ace".to_owned();
    let err = ace_server::App::open(&config).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("PostgreSQL at postgres://ace@127.0.0.1:1/ace (schema ace_ledger)"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn given_ledger_sync_interval_when_publishing_then_entries_are_served_at_once_and_the_final_checkpoint_covers_all()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| {
        c.ledger.sync = ace_server::LedgerSyncMode::Interval;
        // Long: nothing is synced by the clock during the test, only by checkpoints and close.
        c.ledger.sync_interval_ms = 3_600_000;
    })
    .await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let (status, body) = server.post("/api/v1/messages", &event(n)).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].clone());
    }
    let accepted = entries(&server, "kind=accepted").await;
    let served: Vec<Value> = accepted.iter().map(|e| e["message_id"].clone()).collect();
    assert_eq!(served, ids, "answered entries are readable at once");
    let total = entries(&server, "limit=1000").await.len() as u64;
    server.stop().await;
    assert_verified_and_covered(dir.path(), total);
}

/// For every entry of the ledger under `data_dir`, how long after it was written the first
/// checkpoint covering it was signed; the longest, in milliseconds (entry and checkpoint times
/// are the server's clock).
fn longest_uncovered_ms(data_dir: &std::path::Path) -> i64 {
    let dir = ace_ledger::ledger_dir(data_dir);
    let checkpoints = ace_ledger::read_witness_file(&dir.join("checkpoints.jsonl")).unwrap();
    let entries = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
    let mut next = 0;
    let mut longest = 0;
    for line in entries.lines() {
        let entry: ace_ledger::Entry = serde_json::from_str(line).unwrap();
        while checkpoints[next].size <= entry.seq {
            next += 1;
        }
        longest = longest.max((checkpoints[next].ts - entry.ts).num_milliseconds());
    }
    longest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_sustained_publishing_and_a_file_witness_when_checkpoints_come_by_time_then_every_entry_is_covered_within_the_interval_and_the_witness_anchors_the_ledger()
 {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let witness = elsewhere.path().join("ledger-witness.jsonl");
    let server = Server::start_with(dir.path(), |config| {
        // Only time triggers a checkpoint: the count alone would leave a tail of any length.
        config.ledger.checkpoint_every_entries = 1_000_000_000;
        config.ledger.checkpoint_interval_ms = 200;
        config.ledger.witness.file = witness.display().to_string();
    })
    .await;
    let server = std::sync::Arc::new(server);
    let until = std::time::Instant::now() + Duration::from_millis(1_500);
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while std::time::Instant::now() < until {
                    let answer = server
                        .post("/api/v1/messages", &event(p * 1_000_000 + n))
                        .await;
                    assert_eq!(answer.0, 202, "{}", answer.1);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut published = 0;
    for publisher in publishers {
        published += publisher.await.unwrap();
    }
    let metrics = server.metrics().await;
    let name = format!("file:{}", witness.display());
    let sent_line = metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "ace_comms_ledger_witness_sent_total{{witness=\"{name}\"}}"
            ))
        })
        .unwrap_or_else(|| panic!("no witness counter in {metrics}"));
    let sent: u64 = sent_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        sent >= 2,
        "checkpoints reached the witness during the load: {sent_line}"
    );
    assert!(
        metrics.contains(&format!(
            "ace_comms_ledger_witness_failures_total{{witness=\"{name}\"}} 0"
        )),
        "{metrics}"
    );
    let Ok(server) = std::sync::Arc::try_unwrap(server) else {
        panic!("a publisher still holds the server");
    };
    server.stop().await;

    assert!(published > 50, "sustained load: {published} publishes");
    let longest = longest_uncovered_ms(dir.path());
    assert!(
        longest <= 1_000,
        "an entry waited {longest} ms for a checkpoint (interval 200 ms)"
    );
    // The witness holds the final checkpoint (shutdown waits for it), and every checkpoint it
    // holds anchors the ledger.
    let kept = ace_ledger::read_witness_file(&witness).unwrap();
    let local = ace_ledger::read_witness_file(
        &ace_ledger::ledger_dir(dir.path()).join("checkpoints.jsonl"),
    )
    .unwrap();
    assert_eq!(kept.last(), local.last());
    let key = ace_ledger::checkpoint::load_public_key(&ace_ledger::ledger_dir(dir.path())).unwrap();
    let anchors: Vec<ace_ledger::Anchor> = kept
        .into_iter()
        .map(|checkpoint| ace_ledger::Anchor {
            source: "witness".to_owned(),
            checkpoint,
        })
        .collect();
    let report = ace_ledger::verify_anchors_dir(dir.path(), &key, &anchors);
    assert!(report.is_ok(), "{report:?}");
    assert_verified_and_covered(dir.path(), report.entries);
}

#[tokio::test]
async fn given_a_ledger_rolled_back_with_its_checkpoints_when_the_server_starts_with_its_witness_file_then_it_refuses_naming_the_file()
 {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let witness = elsewhere.path().join("witness.jsonl");
    let configure = |config: &mut ace_server::Config| {
        config.data_dir = dir.path().to_path_buf();
        config.ledger.witness.file = witness.display().to_string();
    };
    let server = Server::start_with(dir.path(), configure).await;
    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);
    server.stop().await;
    // A copy of the ledger as it is now…
    let ledger = ace_ledger::ledger_dir(dir.path());
    let files = ["entries.jsonl", "checkpoints.jsonl"];
    let copy: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(ledger.join(f)).unwrap())
        .collect();
    let server = Server::start_with(dir.path(), configure).await;
    assert_eq!(server.post("/api/v1/messages", &event(2)).await.0, 202);
    server.stop().await;
    // …put back: entries and checkpoints rolled back together, which verifies on its own.
    for (file, bytes) in files.iter().zip(&copy) {
        std::fs::write(ledger.join(file), bytes).unwrap();
    }
    assert!(ace_ledger::verify_dir(dir.path()).is_ok());

    let mut config = ace_server::Config::default();
    configure(&mut config);
    let clock = std::sync::Arc::new(ace_envelope::SystemClock);
    let Err(err) = ace_server::App::open_with_clock(&config, clock).await else {
        panic!("the server refuses to start");
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "does not extend the latest checkpoint the witness file {}",
            witness.display()
        )) && text.contains("rolled back"),
        "{text}"
    );

    // Moving the witness aside is the operator's way to accept the restored ledger.
    std::fs::rename(&witness, elsewhere.path().join("witness.old")).unwrap();
    let server = Server::start_with(dir.path(), configure).await;
    assert_eq!(server.post("/api/v1/messages", &event(3)).await.0, 202);
    server.stop().await;
}
