//! An example kernel process for the shipped workflows (`workflows/trigger_mesh_workflows.yaml`):
//! it subscribes on `ace.comms.internal.kernel.*.cmd.>` — every handler the nine workflows call
//! (`avn_core.escalate_healing`, `learning_kernel.adapt_thresholds`, `governance.audit_change`,
//! …) — and answers each command on its `reply_to` inbox with what it did, including the ids
//! the workflows' follow-up events template (`tracking_id`, `audit_id`).
//!
//! ```text
//! ace-comms serve --config <a file with `workflows: {enabled: true, dir: ./workflows}`>
//! cargo run -p ace-client --example workflow_kernel -- http://127.0.0.1:8500 [API_KEY]
//! ```
//!
//! In enforced mode give it an API key whose principal may subscribe to the kernel commands and
//! publish on inboxes.

use ace_client::Client;
use ace_envelope::{Envelope, Kind};
use serde_json::{Value, json};

/// What the kernel answers to `kernel.handler` with `params`.
fn handle(kernel: &str, handler: &str, params: &Value) -> Value {
    let component = params["component_id"].as_str().unwrap_or("unknown");
    let id = uuid::Uuid::now_v7().simple().to_string();
    match (kernel, handler) {
        ("learning_kernel", "track_improvement") => {
            json!({"tracking_id": id, "component_id": component})
        }
        ("governance", "audit_change") => json!({"audit_id": id, "table": params["table"]}),
        _ => {
            json!({"handled_by": format!("{kernel}.{handler}"), "component_id": component, "ticket": id})
        }
    }
}

/// `ace.comms.internal.kernel.{kernel}.cmd.{handler}.v1` → (kernel, handler).
fn target(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("ace.comms.internal.kernel.")?;
    let (kernel, rest) = rest.split_once(".cmd.")?;
    let (handler, _version) = rest.rsplit_once('.')?;
    Some((kernel, handler))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8500".to_owned());
    let mut client = Client::new(&server)?;
    if let Some(key) = args.next() {
        client = client.with_api_key(key);
    }
    let connection = client.connect_ws().await?;
    let mut commands = connection
        .subscribe("ace.comms.internal.kernel.*.cmd.>", None)
        .await?;
    eprintln!("kernel listening on {server} for ace.comms.internal.kernel.*.cmd.>");
    while let Some(delivery) = commands.next().await {
        let command = delivery?.envelope;
        let (Some((kernel, handler)), Some(inbox)) =
            (target(&command.subject), command.headers.get("reply_to"))
        else {
            continue;
        };
        let params = command.payload.clone().unwrap_or(Value::Null);
        let result = handle(kernel, handler, &params);
        eprintln!("{kernel}.{handler} {params} -> {result}");
        let reply = Envelope::builder(Kind::Reply, inbox.as_str())
            .correlation_id(
                command
                    .correlation_id
                    .clone()
                    .unwrap_or_else(|| command.id.to_string()),
            )
            .causation_id(command.id.to_string())
            .payload_json(result)
            .build()?;
        connection.publish(&reply).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_kernel_command_subjects_when_parsed_then_kernel_and_handler_are_named() {
        assert_eq!(
            target("ace.comms.internal.kernel.avn_core.cmd.escalate_healing.v1"),
            Some(("avn_core", "escalate_healing"))
        );
        assert_eq!(target("ace.comms.internal.agent.x.cmd.y.v1"), None);
        assert!(handle("governance", "audit_change", &json!({}))["audit_id"].is_string());
    }
}
