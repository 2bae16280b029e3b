//! [`CoreEffects`]: the effects of workflow runs, each through `ace_core::Core`.
//!
//! A kernel command, a follow-up event and an emitted event are published as the workflow's
//! own principal (`workflow:<name>`, role `workflow`, through [`RequestContext::acting_as`]):
//! identity, RBAC, Rego, EHI holds and the ledger judge and record them like any client's
//! message. The hop count continues from the trigger, so workflows triggering workflows stop at
//! `limits.max_hops`. The lifecycle events (`workflow.started`, …) are the server's own
//! statements about the run and are published as the system principal, like approval events.
//!
//! A kernel command is a request: a fresh inbox is subscribed first, its subject goes in
//! `headers.reply_to`, and the first answer on it is the result (an `error` kind answer, or one
//! whose payload is an error body, is a failure with its code). A command held for approval
//! keeps waiting on its inbox: released, the handler answers there; rejected or expired, the
//! server answers there with the refusal. An emitted event that is held waits for the
//! approval's decision.

use std::sync::Arc;
use std::time::Duration;

use ace_core::{ApprovalStatus, Core, CoreError, Principal, RequestContext};
use ace_envelope::{Clock, Envelope, Kind, SourceType};
use ace_workflows::{Call, Effects, Lifecycle, RunError, WebhookRequest, principal_of};
use serde_json::Value;

/// The prefix of request inboxes.
const INBOX_PREFIX: &str = "ace.comms.system.inbox.";

/// How often a held event's approval is looked at.
const APPROVAL_POLL: Duration = Duration::from_millis(200);

/// Effects over the core.
#[derive(Debug, Clone)]
pub(crate) struct CoreEffects {
    pub(crate) core: Core,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
    pub(crate) approval_wait: Duration,
    pub(crate) clearance: u8,
}

impl CoreEffects {
    /// The request context of workflow `name`.
    fn context(&self, name: &str) -> RequestContext {
        RequestContext::acting_as(
            "workflow",
            Principal {
                id: principal_of(name),
                kind: SourceType::Service,
                roles: vec!["workflow".to_owned()],
                clearance: self.clearance,
            },
        )
    }

    /// An envelope of the run: the workflow as source, the trigger's hops and correlation.
    fn envelope(
        &self,
        call: &Call<'_>,
        kind: Kind,
        subject: &str,
        name: &str,
        payload: Value,
    ) -> Result<Envelope, RunError> {
        let domain = name.split('.').next().unwrap_or(name).to_owned();
        let mut builder = Envelope::builder(kind, subject);
        if let Some(score) = call.ehi_score {
            builder = builder.ehi_score(score);
        }
        builder
            .clock(&*self.clock)
            .domain(domain)
            .name(name)
            .source(SourceType::Service, principal_of(call.workflow))
            .hops(call.trigger.hops)
            .correlation_id(
                call.trigger
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| call.run_id.to_owned()),
            )
            .causation_id(call.trigger.id.clone())
            .partition_key(call.run_id)
            .payload_json(payload)
            .build()
            .map_err(|e| RunError::new("invalid_envelope", e.to_string()))
    }

    /// Waits until approval `id` is decided: `Ok` once approved.
    async fn decided(&self, id: &str) -> Result<(), RunError> {
        let deadline = tokio::time::Instant::now() + self.approval_wait;
        loop {
            let approval = self
                .core
                .approval(&RequestContext::internal(), id)
                .await
                .map_err(|e| refusal(&e))?;
            match approval.status {
                ApprovalStatus::Approved => return Ok(()),
                ApprovalStatus::Pending if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(APPROVAL_POLL).await;
                }
                ApprovalStatus::Pending => {
                    return Err(RunError::new(
                        "TIMEOUT",
                        format!("approval {id} still pending"),
                    ));
                }
                other => {
                    return Err(RunError::new(
                        "APPROVAL_REJECTED",
                        format!("approval {id} was {other:?}"),
                    ));
                }
            }
        }
    }
}

/// A core refusal as a run error, with its wire code.
fn refusal(err: &CoreError) -> RunError {
    RunError::new(err.code().as_str(), err.to_string())
}

/// The result of an answer: its payload, or the error it carries.
fn answer(reply: &Envelope) -> Result<Value, RunError> {
    let payload = reply.payload.clone().unwrap_or(Value::Null);
    let error = payload.get("error").filter(|e| e.get("code").is_some());
    match (reply.kind, error) {
        (Kind::Error, _) | (_, Some(_)) => {
            let body = error.unwrap_or(&payload);
            let code = body["code"].as_str().unwrap_or("KERNEL_ERROR").to_owned();
            let message = body["message"]
                .as_str()
                .unwrap_or("the handler answered an error");
            Err(RunError::new(code, message))
        }
        _ => Ok(payload),
    }
}

#[async_trait::async_trait]
impl Effects for CoreEffects {
    async fn kernel(
        &self,
        call: &Call<'_>,
        kernel: &str,
        handler: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RunError> {
        let subject = format!("ace.comms.internal.kernel.{kernel}.cmd.{handler}.v1");
        let inbox = format!("{INBOX_PREFIX}{}", uuid::Uuid::now_v7().simple());
        // The answer comes to the server, not to anyone: the inbox is the server's own.
        let mut replies = self
            .core
            .subscribe(&RequestContext::internal(), &inbox, None)
            .await
            .map_err(|e| refusal(&e))?;
        let mut command = self.envelope(
            call,
            Kind::Command,
            &subject,
            &format!("{kernel}.{handler}"),
            params,
        )?;
        command.headers.insert("reply_to".to_owned(), inbox);
        let wait = match self
            .core
            .publish(&self.context(call.workflow), command)
            .await
        {
            Ok(_) => timeout,
            Err(CoreError::PendingApproval { approval_id, .. }) => {
                tracing::info!(workflow = call.workflow, action = call.action, %approval_id, "kernel command held for approval");
                self.approval_wait + timeout
            }
            Err(err) => return Err(refusal(&err)),
        };
        match tokio::time::timeout(wait, replies.next()).await {
            Ok(Some(reply)) => answer(&reply),
            Ok(None) => Err(RunError::new("UNAVAILABLE", "the reply inbox closed")),
            Err(_) => Err(RunError::new(
                "TIMEOUT",
                format!(
                    "no reply from {kernel}.{handler} within {} ms",
                    wait.as_millis()
                ),
            )),
        }
    }

    async fn webhook(
        &self,
        call: &Call<'_>,
        request: WebhookRequest,
        timeout: Duration,
    ) -> Result<Value, RunError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| RunError::new("invalid_action", e.to_string()))?;
        let mut builder = self
            .http
            .request(method, &request.url)
            .timeout(timeout)
            .header("x-ace-workflow", call.workflow)
            .header("x-ace-run-id", call.run_id);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if !request.body.is_null() {
            builder = builder.json(&request.body);
        }
        let response = builder.send().await.map_err(|e| {
            let code = if e.is_timeout() {
                "TIMEOUT"
            } else {
                "UNAVAILABLE"
            };
            RunError::new(code, format!("{}: {e}", request.url))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| RunError::new("UNAVAILABLE", e.to_string()))?;
        if !status.is_success() {
            let shown: String = text.chars().take(500).collect();
            return Err(RunError::new(
                "WEBHOOK_FAILED",
                format!("{} answered {status}: {shown}", request.url),
            ));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn emit(
        &self,
        call: &Call<'_>,
        name: &str,
        subject: &str,
        schema: Option<&str>,
        payload: Value,
    ) -> Result<(), RunError> {
        let mut event = self.envelope(call, Kind::Event, subject, name, payload)?;
        event.schema = schema.map(str::to_owned);
        match self.core.publish(&self.context(call.workflow), event).await {
            Ok(_) => Ok(()),
            Err(CoreError::PendingApproval { approval_id, .. }) => self.decided(&approval_id).await,
            Err(err) => Err(refusal(&err)),
        }
    }

    async fn announce(
        &self,
        call: &Call<'_>,
        lifecycle: Lifecycle,
        payload: Value,
    ) -> Result<(), RunError> {
        let mut event = self.envelope(
            call,
            Kind::Event,
            &lifecycle.subject(call.workflow),
            lifecycle.name(),
            payload,
        )?;
        event.schema = Some(lifecycle.schema());
        // The server's statement about the run: not the workflow's message.
        event.source = None;
        self.core
            .publish(&RequestContext::internal(), event)
            .await
            .map(drop)
            .map_err(|e| refusal(&e))
    }
}
