//! [`Event`]: what a workflow sees of the envelope that triggered it, and the document
//! (`{payload, event}`) filters and templates read.

use ace_envelope::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A triggering event: the envelope's identity, routing and JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The envelope id.
    pub id: String,
    /// The envelope `name` (what triggers match on).
    pub name: String,
    /// Its subject.
    pub subject: String,
    /// Its domain, if any.
    #[serde(default)]
    pub domain: Option<String>,
    /// Who published it (`source.id`).
    #[serde(default)]
    pub source: Option<String>,
    /// Hops so far: what the workflow publishes continues the count, so a loop of workflows
    /// triggering each other stops at the hop limit.
    pub hops: u32,
    /// The correlation id to carry on.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The JSON payload (`null` without one).
    pub payload: Value,
}

impl Event {
    /// The event of an envelope with a `name` (an envelope without one triggers nothing).
    pub fn from_envelope(envelope: &Envelope) -> Option<Event> {
        Some(Event {
            id: envelope.id.simple().to_string(),
            name: envelope.name.clone()?,
            subject: envelope.subject.clone(),
            domain: envelope.domain.clone(),
            source: envelope.source.as_ref().map(|s| s.id.clone()),
            hops: envelope.hops,
            correlation_id: envelope.correlation_id.clone(),
            payload: envelope.payload.clone().unwrap_or(Value::Null),
        })
    }

    /// The document field paths start from: `payload.…` and `event.{id,name,subject,domain,source,hops}`.
    pub fn doc(&self) -> Value {
        json!({
            "payload": self.payload,
            "event": {
                "id": self.id,
                "name": self.name,
                "subject": self.subject,
                "domain": self.domain,
                "source": self.source,
                "hops": self.hops,
            }
        })
    }
}
