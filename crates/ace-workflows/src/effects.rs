//! [`Effects`]: everything a run does to the world, injected. The engine decides; the
//! implementation (in the server, over the core's pipeline as the workflow's own principal)
//! does: calls a kernel handler by request/reply, calls a webhook, publishes an event, and
//! announces the run's lifecycle events. The crate never touches a bus or a socket itself.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::error::RunError;
use crate::event::Event;

/// Who is acting and why: passed to every effect.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The workflow (its principal is `workflow:<name>`).
    pub workflow: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// The action (`on_success.0` for a follow-up event; the lifecycle event's own name for an
    /// announcement).
    pub action: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The event that started the run (its hops continue, its correlation id is carried).
    pub trigger: &'a Event,
    /// The action's `ehi_score`, for its envelope's governance.
    pub ehi_score: Option<f64>,
}

/// A run's lifecycle events, each with its contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// `workflow.started`.
    Started,
    /// `workflow.action_executed`.
    ActionExecuted,
    /// `workflow.completed`.
    Completed,
    /// `workflow.failed`.
    Failed,
}

impl Lifecycle {
    /// The envelope name (`workflow.started`).
    pub fn name(self) -> &'static str {
        match self {
            Lifecycle::Started => "workflow.started",
            Lifecycle::ActionExecuted => "workflow.action_executed",
            Lifecycle::Completed => "workflow.completed",
            Lifecycle::Failed => "workflow.failed",
        }
    }

    /// Its subject for workflow `workflow`: `ace.comms.system.workflow.{workflow}.evt.workflow_started.v1`.
    pub fn subject(self, workflow: &str) -> String {
        let token = self.name().replace('.', "_");
        format!("ace.comms.system.workflow.{workflow}.evt.{token}.v1")
    }

    /// The registry reference of its payload contract.
    pub fn schema(self) -> String {
        format!("orchestration.{}@1.0.0", self.name())
    }
}

/// The effects of runs.
#[async_trait::async_trait]
pub trait Effects: Send + Sync + std::fmt::Debug {
    /// Sends `params` as a command to `kernel`'s `handler` and waits up to `timeout` for its
    /// reply's payload (`TIMEOUT` without one). A command held for approval waits for the
    /// decision first (the timeout counts from the release).
    async fn kernel(
        &self,
        call: &Call<'_>,
        kernel: &str,
        handler: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RunError>;

    /// Calls `url` with `body` as JSON; the answer's JSON (or text) body on a 2xx.
    async fn webhook(
        &self,
        call: &Call<'_>,
        request: WebhookRequest,
        timeout: Duration,
    ) -> Result<Value, RunError>;

    /// Publishes event `name` on `subject` with `payload`.
    async fn emit(
        &self,
        call: &Call<'_>,
        name: &str,
        subject: &str,
        schema: Option<&str>,
        payload: Value,
    ) -> Result<(), RunError>;

    /// Publishes a lifecycle event of the run (its payload conforms to [`Lifecycle::schema`]).
    async fn announce(
        &self,
        call: &Call<'_>,
        lifecycle: Lifecycle,
        payload: Value,
    ) -> Result<(), RunError>;
}

/// A rendered webhook call.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// JSON body (`null`: none).
    pub body: Value,
}
