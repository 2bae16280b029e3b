//! Versioned sessions over real HTTP: create, read with its `ETag`, replace with `If-Match`,
//! the strict refusals (412 stale or create-only, 428 blind overwrite), size and shape errors,
//! and a restart on the same data directory that keeps every session.

use serde_json::{Value, json};

use crate::{Server, answer, assert_error};

const PATH: &str = "/api/v1/sessions/chat-42";

impl Server {
    /// `PUT path` with a JSON body and extra headers; the status, the `ETag` and the answer.
    pub(crate) async fn put_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, Value) {
        let mut request = self.http.put(self.url(path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let etag = etag(&response);
        let (status, body) = answer(response).await;
        (status, etag, body)
    }

    /// `GET path`; the status, the `ETag` and the answer.
    async fn get_with_etag(&self, path: &str) -> (u16, Option<String>, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let etag = etag(&response);
        let (status, body) = answer(response).await;
        (status, etag, body)
    }
}

fn etag(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
}

fn error(status: u16, body: Value) -> (u16, Value) {
    (status, body)
}

#[tokio::test]
async fn given_a_new_session_when_written_then_read_then_replaced_then_versions_follow_the_etag() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, tag, created) = server
        .put_with(PATH, &json!({"data": {"turn": 1}}), &[])
        .await;
    assert_eq!((status, tag.as_deref()), (201, Some("\"1\"")), "{created}");
    assert_eq!(created["version"], 1);
    let (status, tag, read) = server.get_with_etag(PATH).await;
    assert_eq!((status, tag.as_deref()), (200, Some("\"1\"")));
    assert_eq!(read["data"], json!({"turn": 1}));
    assert_eq!(read["id"], "chat-42");
    assert!(read["updated_at"].is_string(), "{read}");
    let replace = json!({"data": {"turn": 2}});
    let (status, tag, replaced) = server
        .put_with(PATH, &replace, &[("if-match", "\"1\"")])
        .await;
    assert_eq!((status, tag.as_deref()), (200, Some("\"2\"")), "{replaced}");
    let (_, _, read) = server.get_with_etag(PATH).await;
    assert_eq!(
        (read["version"].as_u64(), &read["data"]),
        (Some(2), &json!({"turn": 2}))
    );
    let create_only = [("if-none-match", "*")];
    let (status, _, _) = server
        .put_with("/api/v1/sessions/fresh", &replace, &create_only)
        .await;
    assert_eq!(status, 201, "If-None-Match: * creates an absent session");
    server.stop().await;
}

#[tokio::test]
async fn given_an_existing_session_when_preconditions_do_not_hold_then_412_or_428_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let body = json!({"data": [1, 2]});
    assert_eq!(server.put_with(PATH, &body, &[]).await.0, 201);
    assert_eq!(
        server
            .put_with(PATH, &body, &[("if-match", "\"1\"")])
            .await
            .0,
        200
    );
    let (status, _, stale) = server.put_with(PATH, &body, &[("if-match", "\"1\"")]).await;
    assert_error(&error(status, stale.clone()), 412, "PRECONDITION_FAILED");
    assert_eq!(stale["error"]["details"]["current_version"], 2);
    let (status, _, weak) = server
        .put_with(PATH, &body, &[("if-match", "W/\"2\"")])
        .await;
    assert_error(&error(status, weak), 412, "PRECONDITION_FAILED");
    let (status, _, blind) = server.put_with(PATH, &body, &[]).await;
    assert_error(&error(status, blind.clone()), 428, "PRECONDITION_REQUIRED");
    assert_eq!(blind["error"]["details"]["required"], "If-Match");
    assert_eq!(blind["error"]["details"]["current_version"], 2);
    let (status, _, exists) = server
        .put_with(PATH, &body, &[("if-none-match", "*")])
        .await;
    assert_error(&error(status, exists), 412, "PRECONDITION_FAILED");
    let absent = "/api/v1/sessions/absent";
    let (status, _, missing) = server
        .put_with(absent, &body, &[("if-match", "\"1\"")])
        .await;
    assert_error(&error(status, missing.clone()), 412, "PRECONDITION_FAILED");
    assert_eq!(missing["error"]["details"]["current_version"], Value::Null);
    let (_, _, kept) = server.get_with_etag(PATH).await;
    assert_eq!(kept["version"], 2, "no refused write changed anything");
    server.stop().await;
}

#[tokio::test]
async fn given_bad_session_requests_when_sent_then_each_answers_its_error_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.state.max_session_bytes = 64).await;
    assert_error(&server.get("/api/v1/sessions/nope").await, 404, "NOT_FOUND");
    let (status, _, no_data) = server.put_with(PATH, &json!({"state": 1}), &[]).await;
    assert_error(&error(status, no_data), 400, "INVALID_JSON");
    let broken = server
        .http
        .put(server.url(PATH))
        .header("content-type", "application/json")
        .body("{\"data\": ")
        .send()
        .await
        .unwrap();
    assert_error(&answer(broken).await, 400, "INVALID_JSON");
    let big = json!({"data": "x".repeat(100)});
    let (status, _, too_big) = server.put_with(PATH, &big, &[]).await;
    assert_error(&error(status, too_big.clone()), 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(too_big["error"]["details"]["max"], 64);
    let (status, _, bad_id) = server
        .put_with("/api/v1/sessions/a.b", &json!({"data": 1}), &[])
        .await;
    assert_error(&error(status, bad_id), 400, "INVALID_REQUEST");
    let both = [("if-match", "\"1\""), ("if-none-match", "*")];
    let (status, _, mixed) = server.put_with(PATH, &json!({"data": 1}), &both).await;
    assert_error(&error(status, mixed), 400, "INVALID_REQUEST");
    assert_eq!(
        server.delete(PATH).await.0,
        405,
        "a session is read and written, not deleted"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_written_sessions_when_the_server_restarts_then_each_keeps_its_version_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    server.put_with(PATH, &json!({"data": {"a": 1}}), &[]).await;
    server
        .put_with(PATH, &json!({"data": {"a": 2}}), &[("if-match", "\"1\"")])
        .await;
    server.stop().await;
    let server = Server::start(dir.path()).await;
    let (status, tag, read) = server.get_with_etag(PATH).await;
    assert_eq!((status, tag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(read["data"], json!({"a": 2}));
    let (status, _, _) = server
        .put_with(PATH, &json!({"data": {"a": 3}}), &[("if-match", "\"2\"")])
        .await;
    assert_eq!(status, 200, "writes continue from the kept version");
    server.stop().await;
}
