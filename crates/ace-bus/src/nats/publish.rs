//! Publishing: the headers of the mapping (module docs), the route cache (which stream captures
//! a subject), JetStream publishes answered by a `PubAck`, core publishes for the rest, and
//! batches pipelined on one inbox.

use std::collections::HashMap;

use ace_envelope::{Envelope, Subject};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::api::{self, ApiError};
use super::{Inner, MAX_ROUTES};
use crate::bus::PublishAck;
use crate::embedded::scoped_idempotency_key;
use crate::error::BusError;

/// The `Nats-Msg-Id` of an envelope: its sender-scoped idempotency key when it has one, else
/// its id.
pub(crate) fn msg_id(envelope: &Envelope) -> String {
    match &envelope.idempotency_key {
        Some(key) => format!(
            "k-{:032x}",
            scoped_idempotency_key(envelope.source.as_ref(), key)
        ),
        None => format!("id-{}", envelope.id),
    }
}

/// The NATS headers of an envelope (module docs, "How the `Bus` maps onto NATS").
pub(crate) fn headers(envelope: &Envelope) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", msg_id(envelope).as_str());
    h.insert("Content-Type", "application/json");
    h.insert("ace-id", envelope.id.to_string().as_str());
    h.insert("ace-kind", envelope.kind.as_str());
    h.insert("ace-priority", envelope.priority.as_str());
    if let Some(s) = &envelope.source {
        h.insert(
            "ace-source",
            format!("{}:{}", s.source_type.as_str(), s.id).as_str(),
        );
    }
    let optional = [
        ("ace-schema", &envelope.schema),
        ("ace-correlation-id", &envelope.correlation_id),
        ("ace-causation-id", &envelope.causation_id),
        ("ace-partition-key", &envelope.partition_key),
        ("ace-idempotency-key", &envelope.idempotency_key),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            h.insert(name, v.as_str());
        }
    }
    h
}

/// The body of an envelope on NATS: its JSON.
pub(crate) fn body(envelope: &Envelope) -> Result<Bytes, BusError> {
    serde_json::to_vec(envelope)
        .map(Bytes::from)
        .map_err(|e| BusError::InvalidEnvelope {
            subject: envelope.subject.clone(),
            reason: e.to_string(),
        })
}

impl Inner {
    /// The ACE stream capturing `subject` (`None`: none), from the cache or the server.
    pub(super) async fn route(&self, subject: &str) -> Result<Option<String>, BusError> {
        if let Some(hit) = self.routes.lock().get(subject) {
            return Ok(hit.clone());
        }
        let answer = self
            .api("STREAM.NAMES", &json!({ "subject": self.wire(subject) }))
            .await
            .map_err(|e| e.into_bus("route", "", None))?;
        let stream = answer
            .get("streams")
            .and_then(Value::as_array)
            .and_then(|names| names.first())
            .and_then(Value::as_str)
            .map(|js| self.ace_name(js).unwrap_or(js).to_owned());
        let mut routes = self.routes.lock();
        if routes.len() >= MAX_ROUTES {
            routes.clear();
        }
        routes.insert(subject.to_owned(), stream.clone());
        Ok(stream)
    }

    pub(super) async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError> {
        Subject::new(envelope.subject.as_str()).map_err(|e| BusError::InvalidSubject {
            subject: envelope.subject.clone(),
            reason: e.to_string(),
        })?;
        let (headers, body) = (headers(&envelope), body(&envelope)?);
        let wire = self.wire(&envelope.subject);
        let Some(stream) = self.route(&envelope.subject).await? else {
            return self.publish_core(wire, headers, body).await;
        };
        let size = body.len();
        let answer = self
            .client
            .request_with_headers(wire.clone(), headers.clone(), body.clone())
            .await;
        match answer {
            Ok(reply) => self.settle(&stream, &envelope, size, &reply.payload).await,
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                // The stream went away since the route was cached: live only now.
                self.invalidate_routes();
                self.publish_core(wire, headers, body).await
            }
            Err(e) => Err(BusError::Engine {
                op: format!("publish on {}", envelope.subject),
                reason: e.to_string(),
            }),
        }
    }

    async fn publish_core(
        &self,
        wire: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<PublishAck, BusError> {
        self.client
            .publish_with_headers(wire.clone(), headers, body)
            .await
            .map_err(|e| BusError::Engine {
                op: format!("publish on {wire}"),
                reason: e.to_string(),
            })?;
        Ok(PublishAck {
            stream: None,
            seq: None,
            duplicate: false,
        })
    }

    /// Turns JetStream's answer to a publish into the ACE answer, counting it.
    async fn settle(
        &self,
        stream: &str,
        envelope: &Envelope,
        size: usize,
        payload: &[u8],
    ) -> Result<PublishAck, BusError> {
        let answer: Value = serde_json::from_slice(payload).map_err(|e| BusError::Engine {
            op: format!("publish on {}", envelope.subject),
            reason: format!("undecodable PubAck: {e}"),
        })?;
        if let Some(err) = answer.get("error") {
            let err_code = err.get("err_code").and_then(Value::as_u64).unwrap_or(0);
            let description = err
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("JetStream error")
                .to_owned();
            return Err(self
                .refused(stream, envelope, size, err_code, description)
                .await);
        }
        let seq = answer.get("seq").and_then(Value::as_u64);
        let duplicate = answer
            .get("duplicate")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        {
            let mut counters = self.stream_counters.lock();
            let c = counters.entry(stream.to_owned()).or_default();
            if duplicate {
                c.duplicates += 1;
            } else {
                c.stored += 1;
            }
        }
        Ok(PublishAck {
            stream: Some(stream.to_owned()),
            seq,
            duplicate,
        })
    }

    /// The `BusError` of a refused JetStream publish, counted.
    async fn refused(
        &self,
        stream: &str,
        envelope: &Envelope,
        size: usize,
        err_code: u64,
        description: String,
    ) -> BusError {
        match err_code {
            api::codes::MAX_MSGS | api::codes::MAX_BYTES => {
                let mut counters = self.stream_counters.lock();
                counters.entry(stream.to_owned()).or_default().refused_full += 1;
                BusError::StreamFull {
                    stream: stream.to_owned(),
                    limit: if err_code == api::codes::MAX_MSGS {
                        "max_msgs"
                    } else {
                        "max_bytes"
                    }
                    .to_owned(),
                }
            }
            api::codes::MSG_SIZE => {
                self.stream_counters
                    .lock()
                    .entry(stream.to_owned())
                    .or_default()
                    .refused_too_large += 1;
                let max = match self.stream_info(stream).await {
                    Ok(info) => info.config.max_msg_size.unwrap_or(0),
                    Err(_) => 0,
                };
                BusError::MessageTooLarge {
                    stream: stream.to_owned(),
                    subject: envelope.subject.clone(),
                    size,
                    max,
                }
            }
            _ => ApiError {
                err_code,
                description,
            }
            .into_bus("publish", stream, None),
        }
    }

    /// Publishes a batch: the captured envelopes pipelined on one inbox (sent in order on one
    /// connection, so JetStream stores them in order), the rest as core publishes; each answered
    /// in order.
    pub(super) async fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> Vec<Result<PublishAck, BusError>> {
        if envelopes.len() == 1 {
            let mut envelopes = envelopes;
            let single = envelopes.pop().map(|e| self.publish(e));
            return match single {
                Some(f) => vec![f.await],
                None => Vec::new(),
            };
        }
        let mut answers: Vec<Option<Result<PublishAck, BusError>>> =
            envelopes.iter().map(|_| None).collect();
        let inbox = self.client.new_inbox();
        let mut sub = match self.client.subscribe(format!("{inbox}.*")).await {
            Ok(s) => s,
            Err(e) => {
                let reason = e.to_string();
                return envelopes
                    .iter()
                    .map(|_| {
                        Err(BusError::Engine {
                            op: "publish_batch".to_owned(),
                            reason: reason.clone(),
                        })
                    })
                    .collect();
            }
        };
        let mut waiting: HashMap<usize, (String, usize)> = HashMap::new();
        for (i, env) in envelopes.iter().enumerate() {
            if let Err(e) = Subject::new(env.subject.as_str()) {
                answers[i] = Some(Err(BusError::InvalidSubject {
                    subject: env.subject.clone(),
                    reason: e.to_string(),
                }));
                continue;
            }
            let body = match body(env) {
                Ok(b) => b,
                Err(e) => {
                    answers[i] = Some(Err(e));
                    continue;
                }
            };
            let wire = self.wire(&env.subject);
            let stream = match self.route(&env.subject).await {
                Ok(Some(s)) => s,
                Ok(None) => {
                    answers[i] = Some(self.publish_core(wire, headers(env), body).await);
                    continue;
                }
                Err(e) => {
                    answers[i] = Some(Err(e));
                    continue;
                }
            };
            let size = body.len();
            let sent = self
                .client
                .publish_with_reply_and_headers(wire, format!("{inbox}.{i}"), headers(env), body)
                .await;
            match sent {
                Ok(()) => {
                    waiting.insert(i, (stream, size));
                }
                Err(e) => {
                    answers[i] = Some(Err(BusError::Engine {
                        op: "publish_batch".to_owned(),
                        reason: e.to_string(),
                    }))
                }
            }
        }
        let _ = self.client.flush().await;
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut retry = Vec::new();
        while !waiting.is_empty() {
            let next = tokio::time::timeout_at(deadline, sub.next()).await;
            let Ok(Some(reply)) = next else { break };
            let Some(i) = reply
                .subject
                .rsplit('.')
                .next()
                .and_then(|t| t.parse::<usize>().ok())
            else {
                continue;
            };
            let Some((stream, size)) = waiting.remove(&i) else {
                continue;
            };
            if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                retry.push(i);
                continue;
            }
            answers[i] = Some(
                self.settle(&stream, &envelopes[i], size, &reply.payload)
                    .await,
            );
        }
        for i in waiting.into_keys() {
            answers[i] = Some(Err(BusError::Timeout {
                subject: envelopes[i].subject.clone(),
                after: self.config.request_timeout,
            }));
        }
        if !retry.is_empty() {
            self.invalidate_routes();
            retry.sort_unstable();
            for i in retry {
                answers[i] = Some(self.publish(envelopes[i].clone()).await);
            }
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or(Err(BusError::Engine {
                    op: "publish_batch".to_owned(),
                    reason: "no answer".to_owned(),
                }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, SourceType};

    fn env(who: &str, key: Option<&str>) -> Envelope {
        let mut b = Envelope::builder(Kind::Event, "ace.comms.test.a")
            .source(SourceType::Service, who)
            .payload_json(json!({}));
        if let Some(k) = key {
            b = b.idempotency_key(k);
        }
        b.build().expect("valid")
    }

    #[test]
    fn given_keys_when_mapped_to_nats_msg_ids_then_they_are_scoped_by_sender() {
        let (a, b) = (env("alice", Some("k")), env("bob", Some("k")));
        assert_ne!(msg_id(&a), msg_id(&b));
        assert_eq!(msg_id(&a), msg_id(&env("alice", Some("k"))));
        let plain = env("alice", None);
        assert_eq!(msg_id(&plain), format!("id-{}", plain.id));
    }

    #[test]
    fn given_an_envelope_when_given_headers_then_they_carry_the_documented_fields() {
        let e = env("alice", Some("k"));
        let h = headers(&e);
        let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned());
        assert_eq!(get("ace-id"), Some(e.id.to_string()));
        assert_eq!(get("ace-kind").as_deref(), Some("event"));
        assert_eq!(get("ace-source").as_deref(), Some("service:alice"));
        assert_eq!(get("ace-idempotency-key").as_deref(), Some("k"));
        assert_eq!(get("Nats-Msg-Id"), Some(msg_id(&e)));
    }
}
