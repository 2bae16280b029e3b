//! The ML kernel over HTTP (`/api/ml/v1`): the served document is `contracts/ml/ml_api.json`
//! byte for byte; the event flow of the ML contracts driven end to end on a real server
//! (experiences → drift insight → plan proposed → held for a human → approved → applied →
//! snapshot → rollback completed), every event read back from its stream, checked by
//! python-jsonschema against `contracts/` and the catalogue, and present in the ledger;
//! schemathesis (PyPI) fuzzing every operation against the document; the error answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Server, assert_error};

const DOCUMENT: &str = include_str!("../../../../contracts/ml/ml_api.json");

/// A server whose kernel compares windows of ten experiences.
async fn server(dir: &Path) -> Server {
    Server::start_with(dir, |config| {
        config.mlt.baseline_window = 10;
        config.mlt.current_window = 10;
    })
    .await
}

fn experience(n: usize, accuracy: f64) -> Value {
    json!({
        "experience_id": format!("exp_churn_{n:04}"),
        "source": "inference",
        "task": "classification",
        "context": {"model_key": "churn_model", "model_version": "1.0.0", "env": "prod"},
        "signals": {"metrics": {"accuracy": accuracy}, "latency": {"p95_ms": 80.0 + n as f64 % 3.0}},
        "timestamp": format!("2026-06-01T00:{:02}:{:02}Z", n / 60, n % 60),
    })
}

#[tokio::test]
async fn given_the_ml_api_when_its_document_is_fetched_then_it_is_contracts_ml_ml_api_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let response = server
        .http
        .get(server.url("/api/ml/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), DOCUMENT);
    let (status, schemas) = server.get("/api/ml/v1/ml_schemas.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        schemas["$id"],
        "https://contracts.ace-comms.dev/ml/ml_schemas.json"
    );
    let (status, health) = server.get("/api/ml/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert!(
        health["version"].as_str().unwrap().split('.').count() == 3,
        "{health}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_bad_requests_when_sent_then_each_gets_its_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut bad = experience(0, 0.9);
    bad["signals"]["metrics"]["accuracy"] = json!("high");
    let answer = server.post("/api/ml/v1/experience", &bad).await;
    assert_error(&answer, 422, "CONTRACT_VIOLATION");
    assert_eq!(
        answer.1["error"]["details"]["errors"][0]["instance_pointer"],
        "/signals/metrics/accuracy"
    );
    let answer = server
        .post_raw(
            "/api/ml/v1/experience",
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_error(&answer, 400, "INVALID_JSON");
    assert_error(
        &server.get("/api/ml/v1/insights").await,
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &server
            .get("/api/ml/v1/insights?since=2026-01-01T00:00:00Z&limit=0")
            .await,
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &server.get("/api/ml/v1/plans/plan_nowhere/status").await,
        404,
        "NOT_FOUND",
    );
    let missing = json!({"target": "mlt", "to_snapshot": "snap_missing", "reason": "x"});
    assert_error(
        &server.post("/api/ml/v1/rollback", &missing).await,
        404,
        "NOT_FOUND",
    );
    let answer = server
        .post("/api/ml/v1/snapshot/export", &json!({"kind": "everything"}))
        .await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    assert_eq!(
        answer.1["error"]["details"]["errors"][0]["instance_pointer"],
        "/kind"
    );
    server.stop().await;
}

/// Waits until plan `id` reaches `status`.
async fn plan_reaches(server: &Server, id: &str, status: &str) {
    for _ in 0..100 {
        let (_, got) = server.get(&format!("/api/ml/v1/plans/{id}/status")).await;
        if got["status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("plan {id} never reached {status}");
}

#[tokio::test]
async fn given_the_ml_event_flow_when_driven_over_http_then_every_event_conforms_and_is_in_the_ledger()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    flow(server, dir.path(), "mlt_event_flow").await;
}

#[tokio::test]
async fn given_the_postgres_store_when_the_ml_event_flow_runs_then_it_behaves_as_embedded() {
    let test = "mlt_event_flow_postgres";
    let Some(url) = ace_testkit::postgres_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("mlt_server_it_{}_{nanos}", std::process::id());
    let server = Server::start_with(dir.path(), |config| {
        config.mlt.baseline_window = 10;
        config.mlt.current_window = 10;
        config.mlt.store = ace_mlt::StoreKind::Postgres;
        config.mlt.postgres = ace_mlt::PostgresConfig { url, schema };
    })
    .await;
    flow(server, dir.path(), test).await;
    assert!(
        !dir.path().join("mlt.redb").exists(),
        "nothing kept in the embedded store"
    );
}

/// Experiences in → drift insight → plan proposed → held for a human → approved → applied →
/// snapshot → rollback completed; then every event read from its stream, in the ledger, and
/// valid for python-jsonschema.
async fn flow(server: Server, dir: &Path, test: &str) {
    let python = ace_testkit::python(test, &["jsonschema", "referencing", "yaml"]);

    // Experiences: ten around 0.90, then ten around 0.70 — a drift of accuracy.
    for n in 0..20 {
        let accuracy = if n < 10 { 0.90 } else { 0.70 } + (n % 5) as f64 * 0.002;
        let (status, body) = server
            .post("/api/ml/v1/experience", &experience(n, accuracy))
            .await;
        assert_eq!((status, &body["duplicate"]), (202, &json!(false)), "{body}");
    }
    let (status, again) = server
        .post("/api/ml/v1/experience", &experience(3, 0.9))
        .await;
    assert_eq!((status, &again["duplicate"]), (202, &json!(true)));
    let (status, insights) = server
        .get("/api/ml/v1/insights?since=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(status, 200);
    let insight = &insights[0];
    assert_eq!(
        (insight["type"].as_str(), insight["target"].as_str()),
        (Some("drift"), Some("churn_model"))
    );

    // The rollback point, then a high-risk plan: held for a human.
    let (status, snapshot) = server
        .post("/api/ml/v1/snapshot/export", &json!({"kind": "mlt"}))
        .await;
    assert_eq!(status, 201, "{snapshot}");
    let plan = json!({
        "plan_id": "plan_churn_001",
        "derived_from": [insight["insight_id"]],
        "actions": [{"type": "reweight_specialists", "weights": {"spec_gbm": 0.8, "spec_mlp": 0.2}}],
        "risk_level": "high",
        "timestamp": "2026-06-01T01:00:00Z"
    });
    let (status, proposed) = server.post("/api/ml/v1/plan/propose", &plan).await;
    assert_eq!(
        (status, proposed["status"].as_str()),
        (202, Some("pending")),
        "{proposed}"
    );
    let (_, pending) = server.get("/api/v1/approvals?status=pending").await;
    let approval = pending["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["envelope"]["name"] == "GOVERNANCE_VALIDATION")
        .unwrap_or_else(|| panic!("the validation is held: {pending}"));
    let id = approval["approval_id"].as_str().unwrap();
    let (status, decided) = server
        .post(
            &format!("/api/v1/approval/{id}"),
            &json!({"decision": "approve", "comment": "ok to reweight"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    plan_reaches(&server, "plan_churn_001", "applied").await;

    // Roll the MLT state back to before the plan.
    let rollback = json!({"target": "mlt", "to_snapshot": snapshot["snapshot_id"], "reason": "undo the reweight"});
    let (status, accepted) = server.post("/api/ml/v1/rollback", &rollback).await;
    assert_eq!(
        (status, accepted["status"].as_str()),
        (202, Some("accepted")),
        "{accepted}"
    );

    // Every event of the kernel, from its stream.
    let consumer = json!({"name": "mlt_check", "filter": "ace.comms.internal.kernel.>"});
    let (status, body) = server
        .post("/api/v1/streams/ACE_EVENTS/consumers", &consumer)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, fetched) = server
        .post(
            "/api/v1/streams/ACE_EVENTS/consumers/mlt_check/fetch",
            &json!({"batch": 200, "expires_ms": 500}),
        )
        .await;
    assert_eq!(status, 200);
    let envelopes: Vec<Value> = fetched["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["envelope"].clone())
        .collect();
    let mut counts = BTreeMap::new();
    for e in &envelopes {
        *counts
            .entry(e["name"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    let expected: BTreeMap<String, i32> = [
        ("EXPERIENCE_INGESTED", 20),
        ("MLT_INSIGHT_READY", 1),
        ("MODEL_DRIFT_ALERT", 1),
        ("ADAPTATION_PLAN_PROPOSED", 1),
        ("GOVERNANCE_VALIDATION", 1),
        ("GOVERNANCE_APPROVED", 1),
        ("MLT_PLAN_APPLIED", 1),
        ("ROLLBACK_REQUESTED", 1),
        ("ROLLBACK_COMPLETED", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);
    let by_name = |name: &str| {
        envelopes
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    let validation = by_name("GOVERNANCE_VALIDATION");
    assert_eq!(
        validation["governance"]["approval_id"], id,
        "released by the approval"
    );
    assert_eq!(validation["governance"]["ehi_score"], 0.9);
    assert_eq!(
        by_name("GOVERNANCE_APPROVED")["payload"]["reason"],
        "ok to reweight"
    );
    let completed = by_name("ROLLBACK_COMPLETED");
    assert_eq!(completed["payload"]["status"], "completed");
    assert_eq!(completed["payload"]["state_hash"], snapshot["state_hash"]);

    // Each one is in the ledger, accepted; the validation was held and approved first.
    let (status, page) = server.get("/api/v1/ledger/entries?limit=1000").await;
    assert_eq!(status, 200);
    let entries = page["entries"].as_array().unwrap();
    let kinds_of = |id: &Value| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["message_id"] == *id)
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    for e in &envelopes {
        assert!(
            kinds_of(&e["id"]).contains(&"accepted".to_owned()),
            "{} not accepted in the ledger",
            e["name"]
        );
    }
    assert_eq!(
        kinds_of(&validation["id"]),
        ["held", "approved", "accepted"]
    );

    // And python-jsonschema agrees with the contracts and the catalogue.
    if let Some(python) = python {
        let (passed, stdout, stderr) = crate::system_messages::check(&python, dir, &envelopes);
        assert!(
            passed,
            "python-jsonschema refused an ML event:\n{stderr}{stdout}"
        );
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("ok ")).count(),
            envelopes.len()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn given_the_served_ml_api_when_schemathesis_fuzzes_it_then_every_check_passes() {
    let test = "mlt_schemathesis";
    let Some(python) = ace_testkit::python(test, &["schemathesis"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Enforced: schemathesis checks that missing and bad credentials are refused, and sends
    // an operator's JWT otherwise.
    let server = crate::auth::start_enforced(dir.path(), |config| {
        config.mlt.baseline_window = 10;
        config.mlt.current_window = 10;
    })
    .await;
    let mut claims = crate::auth::claims();
    claims["sub"] = json!("ml-operator");
    claims["roles"] = json!(["admin"]);
    claims["principal_type"] = json!("human");
    let token = crate::auth::signed(&claims);
    let base = server.url("/api/ml/v1");
    let args = vec![
        "-m".to_owned(),
        "schemathesis.cli".to_owned(),
        "run".to_owned(),
        format!("{base}/openapi.json"),
        "--url".to_owned(),
        base.clone(),
        "--checks".to_owned(),
        "all".to_owned(),
        "--max-examples".to_owned(),
        "15".to_owned(),
        "--seed".to_owned(),
        "1".to_owned(),
        "--max-time".to_owned(),
        "40".to_owned(),
        "--workers".to_owned(),
        "1".to_owned(),
        "--header".to_owned(),
        format!("Authorization: Bearer {token}"),
    ];
    // Run inside the temporary directory: schemathesis keeps its state in `./.schemathesis`.
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_subject_that_requires_a_contract_when_messages_arrive_then_only_valid_ones_pass() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |config| {
        config.contracts.require = vec![ace_server::ContractRequirement {
            subjects: "ace.comms.http.service.ml.evt.>".to_owned(),
            contract: "mlt.experience".to_owned(),
        }];
    })
    .await;
    let subject = "ace.comms.http.service.ml.evt.experience.v1";
    let with_schema = |payload: Value, schema: Option<&str>| {
        let mut envelope = crate::envelope_on(subject, payload);
        if let Some(schema) = schema {
            envelope["schema"] = json!(schema);
        }
        envelope
    };
    let pointer = |answer: &(u16, Value)| {
        answer.1["error"]["details"]["errors"][0]["instance_pointer"].clone()
    };
    // No schema named, a payload breaking the contract: refused with the payload's pointer.
    let mut broken = experience(1, 0.9);
    broken["task"] = json!("astrology");
    let answer = server
        .post("/api/v1/messages", &with_schema(broken.clone(), None))
        .await;
    assert_error(&answer, 422, "CONTRACT_VIOLATION");
    assert_eq!(pointer(&answer), "/task");
    // Another contract named, which the payload satisfies: refused at `/schema`.
    let presence = json!({"id": "a1", "status": "online"});
    let other = with_schema(presence, Some("comms.agent.presence@1.0.0"));
    let answer = server.post("/api/v1/messages", &other).await;
    assert_error(&answer, 422, "CONTRACT_VIOLATION");
    assert_eq!(pointer(&answer), "/schema");
    // The contract named, the payload breaking it: refused with the payload's pointer.
    let named = with_schema(broken, Some("mlt.experience@1.0.0"));
    let answer = server.post("/api/v1/messages", &named).await;
    assert_error(&answer, 422, "CONTRACT_VIOLATION");
    assert_eq!(pointer(&answer), "/task");
    // Valid, named or not: stored.
    for (n, schema) in [(3, Some("mlt.experience@1.0.0")), (4, None)] {
        let valid = with_schema(experience(n, 0.9), schema);
        let (status, body) = server.post("/api/v1/messages", &valid).await;
        assert_eq!(status, 202, "{body}");
    }
    // Other subjects are free.
    assert_eq!(
        server.post("/api/v1/messages", &crate::event(1)).await.0,
        202
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_plan_held_when_the_server_restarts_then_approving_it_still_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let plan = json!({
        "plan_id": "plan_restart_1",
        "actions": [{"type": "hpo", "target": "churn_model", "budget": {"trials": 20}, "success_metric": "auroc"}],
        "risk_level": "high",
        "timestamp": "2026-06-01T01:00:00Z"
    });
    let (status, proposed) = server.post("/api/ml/v1/plan/propose", &plan).await;
    assert_eq!(
        (status, proposed["status"].as_str()),
        (202, Some("pending"))
    );
    // Stopping releases every store (the kernel's decision task holds the core until then).
    server.stop().await;

    let server = self::server(dir.path()).await;
    plan_reaches(&server, "plan_restart_1", "pending").await;
    let (_, pending) = server.get("/api/v1/approvals?status=pending").await;
    let id = pending["approvals"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let decide = json!({"decision": "approve"});
    assert_eq!(
        server
            .post(&format!("/api/v1/approval/{id}"), &decide)
            .await
            .0,
        200
    );
    plan_reaches(&server, "plan_restart_1", "applied").await;
    server.stop().await;
}
