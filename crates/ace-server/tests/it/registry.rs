//! The schema registry over HTTP on an enforced server: registrations by `admin` only (403 and
//! a `denied` entry for an agent), a version the subject's mode refuses answered 409 with every
//! incompatibility's pointer and reason, the dry-run check, the subject's mode, each change a
//! `config_changed` entry, registrations kept across a restart, and a subject pattern that
//! requires a contract refusing a message without a valid payload whatever it names.

use serde_json::{Value, json};

use crate::auth::{Cred, get_as, post_as, role, start_enforced};
use crate::{Server, assert_error};

const SUBJECTS: &str = "/api/v1/registry/subjects";
/// A subject the `agent` role may publish on, stored by no default stream's filter but live.
const SCORED: &str = "ace.comms.a2a.agent.scorer.evt.scored.v1";

fn score() -> Value {
    json!({"type": "object", "required": ["score"],
           "properties": {"score": {"type": "number", "minimum": 0}}})
}

async fn put_as(server: &Server, cred: &Cred, path: &str, body: &Value) -> (u16, Value) {
    let Cred::Key(key) = cred else {
        panic!("these tests use API keys")
    };
    let response = server
        .http
        .put(server.url(path))
        .header("X-ACE-API-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn scored(payload: Value, schema: Option<&str>) -> Value {
    let mut builder =
        ace_envelope::Envelope::builder(ace_envelope::Kind::Event, SCORED).payload_json(payload);
    if let Some(schema) = schema {
        builder = builder.schema(schema);
    }
    serde_json::to_value(builder.build().unwrap()).unwrap()
}

/// The `config_changed` entries of the ledger whose `details.change` is `change`.
async fn changes(server: &Server, change: &str) -> Vec<Value> {
    let path = "/api/v1/ledger/entries?kind=config_changed&limit=1000";
    let (status, page) = get_as(server, &role("admin"), path).await;
    assert_eq!(status, 200, "{page}");
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["change"] == change)
        .cloned()
        .collect()
}

#[tokio::test]
async fn given_an_enforced_server_when_contracts_are_registered_then_admin_only_checked_recorded_and_kept()
 {
    let dir = tempfile::tempdir().unwrap();
    let admin = role("admin");
    let register = format!("{SUBJECTS}/test.score/versions");
    let first = json!({"version": "1.0.0", "schema": score()});
    {
        let server = start_enforced(dir.path(), |_| {}).await;

        let (status, body) = post_as(&server, &role("agent"), &register, &first).await;
        assert_error(&(status, body.clone()), 403, "FORBIDDEN");
        let path = "/api/v1/ledger/entries?kind=denied&limit=1000";
        let (_, denied) = get_as(&server, &admin, path).await;
        assert!(
            denied["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["subject"] == "ace.comms.system.registry.cmd.register.v1"),
            "the refusal is a denied entry: {denied}"
        );

        let (status, body) = post_as(&server, &admin, &register, &first).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["compatibility"], "backward");
        let (status, body) = post_as(&server, &admin, &register, &first).await;
        assert_eq!(
            (status, &body["already_registered"]),
            (200, &json!(true)),
            "{body}"
        );

        let config = "/api/v1/registry/config/test.score";
        let (status, body) =
            put_as(&server, &admin, config, &json!({"compatibility": "full"})).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = put_as(
            &server,
            &role("agent"),
            config,
            &json!({"compatibility": "none"}),
        )
        .await;
        assert_error(&(status, body.clone()), 403, "FORBIDDEN");
        let (_, body) = get_as(&server, &role("agent"), config).await;
        assert_eq!(body["compatibility"], "full", "any caller reads the mode");
        let versioned = "/api/v1/registry/config/test.score@1.0.0";
        let (status, body) = put_as(
            &server,
            &admin,
            versioned,
            &json!({"compatibility": "none"}),
        )
        .await;
        assert_error(&(status, body.clone()), 400, "INVALID_REQUEST");
        let (status, body) = put_as(
            &server,
            &admin,
            config,
            &json!({"compatibility": "sideways"}),
        )
        .await;
        assert_error(&(status, body.clone()), 400, "INVALID_REQUEST");

        // A new required field: old data lacks it, so `full` (and `backward`) refuse it.
        let narrowed = json!({"type": "object", "required": ["score", "why"],
                              "properties": {"score": {"type": "number"}, "why": {"type": "string"}}});
        let second = json!({"version": "2.0.0", "schema": narrowed});
        let (status, body) = post_as(&server, &admin, &register, &second).await;
        assert_error(&(status, body.clone()), 409, "CONFLICT");
        let found = &body["error"]["details"]["incompatibilities"][0];
        assert_eq!(found["pointer"], "/properties/why", "{body}");
        assert_eq!(found["rule"], "required_added", "{body}");
        assert!(found["reason"].as_str().unwrap().contains("why"), "{body}");

        let check = "/api/v1/registry/compatibility/subjects/test.score/versions/2.0.0";
        let (status, body) = post_as(
            &server,
            &role("agent"),
            &format!("{check}?verbose=true"),
            &json!({"schema": narrowed}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["is_compatible"], false);
        assert!(
            body["messages"][0]
                .as_str()
                .unwrap()
                .contains("/properties/why"),
            "{body}"
        );
        let loose = json!({"schema": narrowed, "compatibility": "none"});
        let (_, body) = post_as(&server, &admin, check, &loose).await;
        assert_eq!(body, json!({"is_compatible": true}));

        // Bad input: every refusal names what is wrong, nothing is registered.
        let (status, body) = post_as(
            &server,
            &admin,
            &register,
            &json!({"version": "two", "schema": narrowed}),
        )
        .await;
        assert_error(&(status, body.clone()), 400, "INVALID_REQUEST");
        let (status, body) = post_as(
            &server,
            &admin,
            &register,
            &json!({"version": "3.0.0", "schema": {"type": 12}}),
        )
        .await;
        assert_error(&(status, body.clone()), 400, "INVALID_REQUEST");
        let (status, body) = post_as(
            &server,
            &admin,
            &register,
            &json!({"version": "0.9.0", "schema": score()}),
        )
        .await;
        assert_error(&(status, body.clone()), 409, "CONFLICT");
        let (status, body) = get_as(&server, &admin, &format!("{SUBJECTS}/no.such/versions")).await;
        assert_error(&(status, body.clone()), 404, "NOT_FOUND");
        let (status, body) = post_as(&server, &admin, &register, &json!({"schema": score()})).await;
        assert_error(&(status, body.clone()), 400, "INVALID_JSON");

        let recorded = changes(&server, "contract_registered").await;
        assert_eq!(
            recorded.len(),
            1,
            "one registration changed something: {recorded:?}"
        );
        assert_eq!(recorded[0]["details"]["contract"], "test.score@1.0.0");
        assert_eq!(recorded[0]["actor"], "admin-1", "the authenticated caller");
        assert_eq!(changes(&server, "contract_compatibility").await.len(), 1);
        server.stop().await;
    }

    // Restarted with the subject requiring the registered contract.
    let server = start_enforced(dir.path(), |config| {
        config.contracts.require = vec![ace_server::ContractRequirement {
            subjects: "ace.comms.a2a.agent.scorer.>".to_owned(),
            contract: "test.score".to_owned(),
        }];
    })
    .await;
    let agent = role("agent");
    let (status, subjects) = get_as(&server, &agent, SUBJECTS).await;
    assert_eq!(status, 200);
    assert!(subjects.as_array().unwrap().contains(&json!("test.score")));
    assert!(
        subjects
            .as_array()
            .unwrap()
            .contains(&json!("comms.envelope")),
        "shipped ones too"
    );
    let (_, latest) = get_as(
        &server,
        &agent,
        &format!("{SUBJECTS}/test.score/versions/latest"),
    )
    .await;
    assert_eq!(
        (
            &latest["version"],
            &latest["schema"],
            &latest["compatibility"]
        ),
        (&json!("1.0.0"), &score(), &json!("full")),
        "kept across the restart"
    );
    let refused = [
        scored(json!({"nothing": "here"}), None),
        scored(json!({"score": -1}), Some("test.score@1.0.0")),
        scored(json!({"text": "hi"}), Some("comms.tool_call@1.0.0")),
    ];
    for message in refused {
        let (status, body) = post_as(&server, &agent, "/api/v1/messages", &message).await;
        assert_eq!(status, 422, "{body}");
    }
    let (status, body) = post_as(
        &server,
        &agent,
        "/api/v1/messages",
        &scored(json!({"score": 0.5}), None),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let path = "/api/v1/ledger/entries?kind=denied&limit=1000";
    let (_, denied) = get_as(&server, &role("admin"), path).await;
    let refusals: Vec<&Value> = denied["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == SCORED)
        .collect();
    assert_eq!(
        refusals.len(),
        3,
        "each contract refusal is a denied entry: {denied}"
    );
    assert!(refusals.iter().all(|e| {
        e["decision"]
            .as_str()
            .is_some_and(|d| d.starts_with("deny: contract"))
    }));
    assert_eq!(
        refusals[1]["details"]["pointers"],
        json!(["/score"]),
        "pointers, never values"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_requirement_naming_an_unknown_contract_when_starting_then_the_start_fails_naming_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ace_server::Config {
        data_dir: dir.path().join("data"),
        ..ace_server::Config::default()
    };
    config.contracts.require = vec![ace_server::ContractRequirement {
        subjects: "ace.comms.>".to_owned(),
        contract: "no.such".to_owned(),
    }];
    let Err(err) = ace_server::App::open(&config).await else {
        panic!("refused")
    };
    assert!(err.to_string().contains("no.such"), "{err}");
    config.contracts.require[0].subjects = "ace..>".to_owned();
    let Err(err) = ace_server::App::open(&config).await else {
        panic!("refused")
    };
    assert!(
        err.to_string().contains("contracts.require[0].subjects"),
        "{err}"
    );
}
