//! `/openapi.json` against the code: the document is OpenAPI 3.1, it and the router agree both
//! ways (every routed path and method is documented, every documented one is routed), and real
//! answers of the server validate against the schemas the document gives for them.

use std::collections::BTreeSet;

use ace_server::LimitsConfig;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{EVENT_SUBJECT, Server, event};

/// Routes that are not OpenAPI operations: the WebSocket upgrade (its frames are documented in
/// `/asyncapi.json`, not expressible as an HTTP operation) and the MCP endpoint (JSON-RPC of the
/// Model Context Protocol's streamable HTTP transport; its tools announce their own schemas).
const UNDOCUMENTED: &[&str] = &["/ws", "/mcp"];

/// The methods probed on every route.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

fn app(dir: &std::path::Path) -> Router {
    let state = crate::router::state(dir, LimitsConfig::default());
    state.set_ready(true);
    ace_server::router(state)
}

async fn call(app: &Router, method: Method, path: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn document(app: &Router) -> Value {
    let (status, doc) = call(app, Method::GET, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    doc
}

/// The path templates the router holds, read from its `Debug` (axum lists each route's path).
fn routed_paths(app: &Router) -> BTreeSet<String> {
    let debug = format!("{app:?}");
    let routes = debug
        .split("fallback_router")
        .next()
        .expect("the router's own routes come first");
    routes
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        // The ML kernel's routes have their own document, `contracts/ml/ml_api.json` (`mlt`).
        .filter(|s| !s.starts_with("/api/ml/v1/"))
        .map(str::to_owned)
        .collect()
}

/// A concrete path for a template: every `{param}` filled (`{seq}` with a number).
fn concrete(template: &str) -> String {
    template
        .replace("{seq}", "1")
        .split('/')
        .map(|part| if part.starts_with('{') { "probe" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the router has a handler for `method` on `template`: anything but the 405 of a
/// known path and the fallback's 404 (`no route for …`) comes from a handler.
async fn is_routed(app: &Router, method: Method, template: &str) -> bool {
    let (status, body) = call(app, method, &concrete(template)).await;
    let fallback = status == StatusCode::NOT_FOUND
        && body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no route for"));
    status != StatusCode::METHOD_NOT_ALLOWED && !fallback
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if METHODS
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(method))
            {
                operations.insert((path.clone(), method.to_uppercase()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn given_the_served_document_when_read_then_it_is_openapi_3_1_with_the_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&app(dir.path())).await;
    let version = doc["openapi"].as_str().expect("an openapi field");
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert!(doc["info"]["title"].is_string());
    let schemas = &doc["components"]["schemas"];
    for name in [
        "Envelope",
        "ErrorBody",
        "ErrorCode",
        "StreamInfo",
        "ConsumerConfig",
    ] {
        assert!(schemas[name].is_object(), "no component schema {name}");
    }
    // every operation documents its error answers with the one error body
    for (path, method) in documented(&doc) {
        let responses = &doc["paths"][&path][method.to_lowercase()]["responses"];
        let errors: Vec<&Value> = responses
            .as_object()
            .unwrap()
            .iter()
            .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
            .map(|(_, r)| &r["content"]["application/json"]["schema"]["$ref"])
            .collect();
        let open =
            ["/health", "/metrics", "/openapi.json", "/asyncapi.json"].contains(&path.as_str());
        assert!(open || !errors.is_empty(), "{method} {path} has no error");
        for reference in errors {
            assert_eq!(
                reference, "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn given_the_served_document_when_checked_by_openapi_spec_validator_then_it_passes() {
    let test = "openapi_spec_validator";
    let Some(python) = ace_testkit::python(test, &["openapi_spec_validator"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&app(dir.path())).await;
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn given_the_served_document_when_read_then_credentials_are_required_on_the_api_only() {
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&app(dir.path())).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "X-ACE-API-Key", "{schemes}");
    assert_eq!(schemes["mutual_tls"]["type"], "mutualTLS", "{schemes}");
    let mut ids = BTreeSet::new();
    for (path, method) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let id = operation["operationId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} twice");
        let security = operation["security"].as_array().expect("security");
        if path.starts_with("/api/") {
            let names: Vec<&str> = security
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys())
                .map(String::as_str)
                .collect();
            assert_eq!(
                names,
                ["bearer", "api_key", "mutual_tls"],
                "{method} {path}"
            );
        } else if path == "/metrics" {
            assert_eq!(security.len(), 4, "open or authenticated by configuration");
        } else {
            assert_eq!(security, &[json!({})], "{method} {path} is open");
        }
    }
}

#[tokio::test]
async fn given_the_router_when_every_route_and_method_is_probed_then_the_document_lists_exactly_them()
 {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let doc = document(&app).await;
    let documented = documented(&doc);

    let paths = routed_paths(&app);
    assert!(
        paths.contains("/api/v1/messages") && paths.len() > 10,
        "{paths:?}"
    );
    let mut routed = BTreeSet::new();
    for path in paths.iter().filter(|p| !UNDOCUMENTED.contains(&p.as_str())) {
        for method in METHODS {
            if is_routed(&app, method.clone(), path).await {
                routed.insert((path.clone(), method.to_string()));
            }
        }
    }
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routed, not documented: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(unrouted.is_empty(), "documented, not routed: {unrouted:?}");

    // and each documented operation, probed on its own, reaches a handler
    for (path, method) in &documented {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        assert!(
            is_routed(&app, method.clone(), path).await,
            "{method} {path}"
        );
    }
    // the probe tells a missing route apart
    assert!(!is_routed(&app, Method::GET, "/api/v1/nowhere").await);
    assert!(!is_routed(&app, Method::PATCH, "/api/v1/streams").await);
}

/// A validator for the schema the document gives, its `$ref`s resolved in the document.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::validator_for(&root).expect("the document's schema compiles")
}

fn assert_valid(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    assert!(schema.is_object(), "no schema for {what}");
    let validator = validator(doc, schema);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{instance:#}");
}

fn answer_schema<'d>(doc: &'d Value, path: &str, method: &str, status: &str) -> &'d Value {
    &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn given_real_answers_of_the_server_when_checked_then_they_match_the_documented_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);

    let (status, accepted) = server.post("/api/v1/messages", &event(1)).await;
    assert_eq!(status, 202, "{accepted}");
    let schema = answer_schema(&doc, "/api/v1/messages", "post", "202");
    assert_valid(&doc, schema, &accepted, "publish 202");

    let stream = accepted["stream"].as_str().expect("captured by a stream");
    let (status, info) = server.get(&format!("/api/v1/streams/{stream}")).await;
    assert_eq!(status, 200);
    let schema = answer_schema(&doc, "/api/v1/streams/{stream}", "get", "200");
    assert_valid(&doc, schema, &info, "stream info");

    let (status, list) = server.get("/api/v1/streams").await;
    assert_eq!(status, 200);
    let schema = answer_schema(&doc, "/api/v1/streams", "get", "200");
    assert_valid(&doc, schema, &list, "stream list");

    let seq = &accepted["seq"];
    let (status, stored) = server
        .get(&format!("/api/v1/streams/{stream}/messages/{seq}"))
        .await;
    assert_eq!(status, 200);
    let schema = answer_schema(
        &doc,
        "/api/v1/streams/{stream}/messages/{seq}",
        "get",
        "200",
    );
    assert_valid(&doc, schema, &stored, "stored message");
    assert_eq!(stored["envelope"]["subject"], EVENT_SUBJECT);

    let (status, missing) = server.get("/api/v1/streams/NOPE").await;
    assert_eq!(status, 404);
    let schema = answer_schema(&doc, "/api/v1/streams/{stream}", "get", "404");
    assert_valid(&doc, schema, &missing, "stream 404");

    // The ledger's answers: the checkpoint, its key, both proofs and a page of entries.
    let (status, checkpoint) = server.get("/api/v1/ledger/checkpoint").await;
    assert_eq!(status, 200, "{checkpoint}");
    let size = checkpoint["size"].as_u64().expect("a size");
    assert!(size >= 1, "the publish is recorded: {checkpoint}");
    for (url, route) in [
        (
            "/api/v1/ledger/checkpoint".to_owned(),
            "/api/v1/ledger/checkpoint",
        ),
        ("/api/v1/ledger/key".to_owned(), "/api/v1/ledger/key"),
        (
            "/api/v1/ledger/proof/inclusion/0".to_owned(),
            "/api/v1/ledger/proof/inclusion/{seq}",
        ),
        (
            format!("/api/v1/ledger/proof/consistency?from=1&to={size}"),
            "/api/v1/ledger/proof/consistency",
        ),
        (
            "/api/v1/ledger/entries?limit=5".to_owned(),
            "/api/v1/ledger/entries",
        ),
    ] {
        let (status, answer) = server.get(&url).await;
        assert_eq!(status, 200, "{url}: {answer}");
        assert_valid(
            &doc,
            answer_schema(&doc, route, "get", "200"),
            &answer,
            &url,
        );
    }

    // a schema that must refuse: the answer of another operation
    let wrong = validator(&doc, answer_schema(&doc, "/api/v1/streams", "get", "200"));
    assert!(!wrong.is_valid(&info), "a stream info is not a stream list");
    let wrong = validator(
        &doc,
        answer_schema(&doc, "/api/v1/ledger/proof/inclusion/{seq}", "get", "200"),
    );
    assert!(
        !wrong.is_valid(&checkpoint),
        "a checkpoint is not an inclusion proof"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_the_served_document_when_read_then_every_successful_answer_with_a_body_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (_, doc) = server.get("/openapi.json").await;
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an operation map") {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(content) = response["content"].as_object() else {
                    continue;
                };
                for (media, body) in content {
                    if !body["schema"].is_object() {
                        untyped.push(format!("{method} {path} {status} {media}"));
                    }
                }
            }
        }
    }
    assert!(untyped.is_empty(), "answers without a schema: {untyped:#?}");
    server.stop().await;
}
