//! Held messages through the client: a risky publish over HTTP and over the WebSocket is
//! `ClientError::Held` with its approval id (not a decoding failure), `approvals` lists them,
//! `decide` approves one (released onto its stream) and rejects the other, and deciding again
//! is the server's 409 `CONFLICT`.

use ace_client::{ApprovalStatus, ClientError, Verdict};
use ace_envelope::{Envelope, ErrorCode, Kind};

use crate::Server;

/// An envelope the development mode's EHI gate holds (score 0.95 on action `delete`).
fn risky(n: u64) -> Envelope {
    Envelope::builder(Kind::Event, "ace.comms.http.ops.db.evt.dropped.v1")
        .payload_json(serde_json::json!({ "n": n }))
        .header("ace-action", "delete")
        .ehi_score(0.95)
        .build()
        .expect("a valid envelope")
}

fn held(err: &ClientError) -> String {
    assert_eq!(err.code(), Some(ErrorCode::PendingApproval), "{err}");
    assert_eq!(err.status(), Some(202));
    err.held().expect("held").approval_id.clone()
}

#[tokio::test]
async fn given_risky_publishes_over_http_and_ws_when_decided_then_each_decision_holds() {
    let server = Server::start().await;
    let over_http = risky(1);
    let err = server.client.publish(&over_http).await.unwrap_err();
    assert_eq!(err.held().map(|p| p.id), Some(over_http.id));
    let first = held(&err);
    let ws = server.client.connect_ws().await.expect("connected");
    let second = held(&ws.publish(&risky(2)).await.unwrap_err());

    let pending = server
        .client
        .approvals(Some(ApprovalStatus::Pending))
        .await
        .unwrap();
    let ids: Vec<&str> = pending.iter().map(|a| a.approval_id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");

    let approved = server
        .client
        .decide(&first, Verdict::Approve, Some("ok"))
        .await
        .unwrap();
    let accepted = approved.accepted.expect("released");
    let stored = server
        .client
        .get_message("ACE_EVENTS", accepted.seq.unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored.envelope.governance.approval_id.as_deref(),
        Some(first.as_str())
    );
    let rejected = server
        .client
        .decide(&second, Verdict::Reject, None)
        .await
        .unwrap();
    assert_eq!(rejected.approval.status, ApprovalStatus::Rejected);
    assert!(rejected.accepted.is_none());
    let again = server
        .client
        .decide(&second, Verdict::Approve, None)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::Conflict));
    let one = server.client.approval(&first).await.unwrap();
    assert_eq!(one.comment.as_deref(), Some("ok"));
    assert_eq!(server.client.approvals(None).await.unwrap().len(), 2);
    server.stop().await;
}
