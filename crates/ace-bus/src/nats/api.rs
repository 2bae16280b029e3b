//! The JetStream API as plain JSON requests on `$JS.API.*`: the forms NATS 2.9 and 2.10+ both
//! answer (the durable-consumer create subject of 2.9, no 2.10-only field), so one engine runs on
//! either; the mapping of ACE stream and consumer configurations onto JetStream's; and the
//! mapping of JetStream's error codes onto `BusError`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bus::{
    AckPolicy, Backoff, ConsumerConfig, DeliverPolicy, DiscardPolicy, Ordering, RetentionPolicy,
    StorageKind, StreamConfig,
};
use crate::error::BusError;

/// Marks a JetStream stream or consumer as made by ACE::COMMS: its `description` is this prefix
/// and the ACE configuration as JSON (JetStream keeps the description with the stream, so every
/// server reads the same configuration back, lossless).
pub(super) const DESCRIPTION_PREFIX: &str = "ace-comms/1 ";

/// JetStream error codes (`err_code`) the engine tells apart.
pub(super) mod codes {
    /// `stream not found`.
    pub(crate) const STREAM_NOT_FOUND: u64 = 10059;
    /// `consumer not found`.
    pub(crate) const CONSUMER_NOT_FOUND: u64 = 10014;
    /// `no message found`.
    pub(crate) const NO_MESSAGE_FOUND: u64 = 10037;
    /// `stream name already in use with a different configuration`.
    pub(crate) const STREAM_NAME_IN_USE: u64 = 10058;
    /// `subjects overlap with an existing stream`.
    pub(crate) const SUBJECT_OVERLAP: u64 = 10065;
    /// `maximum messages exceeded`.
    pub(crate) const MAX_MSGS: u64 = 10077;
    /// `maximum bytes exceeded`.
    pub(crate) const MAX_BYTES: u64 = 10078;
    /// `message size exceeds maximum allowed`.
    pub(crate) const MSG_SIZE: u64 = 10054;
    /// `multiple non-filtered consumers not allowed on workqueue stream`.
    pub(crate) const WORKQUEUE_UNFILTERED: u64 = 10099;
    /// `filtered consumer not unique on workqueue stream`.
    pub(crate) const WORKQUEUE_NOT_UNIQUE: u64 = 10100;
    /// `consumer already exists` (with another configuration).
    pub(crate) const CONSUMER_EXISTS: u64 = 10148;
    /// `consumer name already in use`.
    pub(crate) const CONSUMER_NAME_IN_USE: u64 = 10013;
}

/// An error JetStream answered with, or a transport failure.
#[derive(Debug)]
pub(super) struct ApiError {
    /// JetStream's `err_code` (0 for a transport failure).
    pub(super) err_code: u64,
    /// What it said.
    pub(super) description: String,
}

impl ApiError {
    /// Maps onto `BusError` with the stream and consumer the call was about.
    pub(super) fn into_bus(self, op: &str, stream: &str, consumer: Option<&str>) -> BusError {
        let reason = self.description.clone();
        match self.err_code {
            codes::STREAM_NOT_FOUND => BusError::StreamNotFound {
                stream: stream.to_owned(),
            },
            codes::CONSUMER_NOT_FOUND => BusError::ConsumerNotFound {
                stream: stream.to_owned(),
                consumer: consumer.unwrap_or_default().to_owned(),
            },
            codes::STREAM_NAME_IN_USE | codes::SUBJECT_OVERLAP => BusError::Conflict {
                what: format!("stream {stream}"),
                reason,
            },
            codes::WORKQUEUE_UNFILTERED
            | codes::WORKQUEUE_NOT_UNIQUE
            | codes::CONSUMER_EXISTS
            | codes::CONSUMER_NAME_IN_USE => BusError::Conflict {
                what: format!("consumer {}", consumer.unwrap_or_default()),
                reason,
            },
            0 => BusError::Engine {
                op: op.to_owned(),
                reason,
            },
            _ if reason.contains("retention") || reason.contains("can not") => {
                BusError::InvalidConfig {
                    field: op.to_owned(),
                    reason,
                }
            }
            _ => BusError::Engine {
                op: op.to_owned(),
                reason: format!("{reason} (JetStream error {})", self.err_code),
            },
        }
    }
}

/// Sends one JetStream API request and returns its answer, or its error.
pub(super) async fn request(
    client: &async_nats::Client,
    subject: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let payload = serde_json::to_vec(body).map_err(|e| ApiError {
        err_code: 0,
        description: e.to_string(),
    })?;
    let reply = client
        .request(format!("$JS.API.{subject}"), payload.into())
        .await
        .map_err(|e| ApiError {
            err_code: 0,
            description: format!("$JS.API.{subject}: {e}"),
        })?;
    let answer: Value = serde_json::from_slice(&reply.payload).map_err(|e| ApiError {
        err_code: 0,
        description: format!("$JS.API.{subject} answered undecodable JSON: {e}"),
    })?;
    if let Some(err) = answer.get("error") {
        return Err(ApiError {
            err_code: err.get("err_code").and_then(Value::as_u64).unwrap_or(1),
            description: err
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("JetStream error")
                .to_owned(),
        });
    }
    Ok(answer)
}

/// Nanoseconds of a duration, as JetStream's JSON wants them.
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `-1` (no limit) or the limit.
fn limit(v: Option<u64>) -> i64 {
    v.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// The JetStream stream configuration of an ACE stream. `subject` maps an ACE subject (or
/// pattern) onto the server (the engine's subject prefix).
pub(super) fn stream_config(
    js_name: &str,
    config: &StreamConfig,
    subject: impl Fn(&str) -> String,
) -> Value {
    let retention = match config.retention {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Workqueue => "workqueue",
        RetentionPolicy::Interest => "interest",
    };
    let discard = match config.discard {
        DiscardPolicy::Old => "old",
        DiscardPolicy::New => "new",
    };
    let storage = match config.storage {
        StorageKind::File => "file",
        StorageKind::Memory => "memory",
    };
    let description = format!(
        "{DESCRIPTION_PREFIX}{}",
        serde_json::to_string(config).unwrap_or_default()
    );
    json!({
        "name": js_name,
        "description": description,
        "subjects": config.subjects.iter().map(|s| subject(s)).collect::<Vec<_>>(),
        "retention": retention,
        "max_consumers": -1,
        "max_msgs": limit(config.max_msgs),
        "max_bytes": limit(config.max_bytes),
        "max_age": config.max_age.map_or(0, nanos),
        "max_msgs_per_subject": -1,
        "max_msg_size": config.max_msg_size.map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        "discard": discard,
        "storage": storage,
        "num_replicas": 1,
        "duplicate_window": nanos(config.dedup_window),
    })
}

/// The ACE configuration kept in a JetStream description, if it is one of ours.
pub(super) fn ace_config<T: serde::de::DeserializeOwned>(info: &Value) -> Option<T> {
    let description = info.pointer("/config/description")?.as_str()?;
    serde_json::from_str(description.strip_prefix(DESCRIPTION_PREFIX)?).ok()
}

/// The JetStream durable pull consumer of an ACE consumer.
///
/// `ordering: strict` and `per_key` are one delivery in flight at a time (`max_ack_pending: 1`):
/// stream order holds for the whole consumer, so it holds per key too (see the module docs).
/// JetStream refuses a backoff list at least as long as `max_deliver`; the list is cut to
/// `max_deliver - 1` delays, the deliveries it can still schedule.
pub(super) fn consumer_config(config: &ConsumerConfig, filter: Option<String>) -> Value {
    let mut c = json!({
        "durable_name": config.name,
        "description": format!(
            "{DESCRIPTION_PREFIX}{}",
            serde_json::to_string(config).unwrap_or_default()
        ),
        "ack_policy": match config.ack {
            AckPolicy::Explicit => "explicit",
            AckPolicy::None => "none",
        },
        "ack_wait": nanos(config.ack_wait),
        "max_deliver": config.max_deliver.map_or(-1, i64::from),
        "max_ack_pending": match config.ordering {
            Ordering::None => i64::try_from(config.max_ack_pending.max(1)).unwrap_or(i64::MAX),
            Ordering::PerKey | Ordering::Strict => 1,
        },
        "replay_policy": "instant",
        "max_waiting": 512,
    });
    match config.deliver {
        DeliverPolicy::All => c["deliver_policy"] = json!("all"),
        DeliverPolicy::Last => c["deliver_policy"] = json!("last"),
        DeliverPolicy::New => c["deliver_policy"] = json!("new"),
        DeliverPolicy::BySeq(seq) => {
            c["deliver_policy"] = json!("by_start_sequence");
            c["opt_start_seq"] = json!(seq);
        }
        DeliverPolicy::ByTime(t) => {
            c["deliver_policy"] = json!("by_start_time");
            c["opt_start_time"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        }
    }
    if let Some(filter) = filter {
        c["filter_subject"] = json!(filter);
    }
    if !config.durable {
        c["inactive_threshold"] = json!(nanos(Duration::from_secs(300)));
    }
    let delays = backoff_delays(&config.backoff, config.max_deliver);
    if !delays.is_empty() {
        c["backoff"] = json!(delays.into_iter().map(nanos).collect::<Vec<_>>());
    }
    c
}

/// The backoff schedule as the explicit list JetStream takes: at most `max_deliver - 1` delays
/// (JetStream requires the list shorter than `max_deliver`), an exponential schedule expanded
/// without its jitter (JetStream's list is fixed).
fn backoff_delays(backoff: &Backoff, max_deliver: Option<u32>) -> Vec<Duration> {
    let room = max_deliver.map_or(64, |m| m.saturating_sub(1).min(64) as usize);
    match backoff {
        Backoff::None => Vec::new(),
        Backoff::List(list) => list.iter().copied().take(room).collect(),
        Backoff::Exponential {
            initial,
            max,
            multiplier,
            ..
        } => {
            let mut out = Vec::new();
            let mut d = initial.as_secs_f64();
            for _ in 0..room.min(16) {
                out.push(Duration::from_secs_f64(d.min(max.as_secs_f64())));
                d *= multiplier;
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_backoff_as_long_as_max_deliver_when_mapped_then_it_is_cut_to_fit_jetstream() {
        let list = Backoff::List(vec![Duration::from_secs(1), Duration::from_secs(5)]);
        assert_eq!(backoff_delays(&list, Some(2)), vec![Duration::from_secs(1)]);
        assert_eq!(backoff_delays(&list, None).len(), 2);
        assert!(backoff_delays(&list, Some(1)).is_empty());
    }

    #[test]
    fn given_strict_or_per_key_ordering_when_mapped_then_one_delivery_is_in_flight() {
        for ordering in [Ordering::Strict, Ordering::PerKey] {
            let c = ConsumerConfig {
                ordering,
                ..ConsumerConfig::new("c")
            };
            assert_eq!(consumer_config(&c, None)["max_ack_pending"], json!(1));
        }
        let c = consumer_config(&ConsumerConfig::new("c"), None);
        assert_eq!(c["max_ack_pending"], json!(1000));
    }

    #[test]
    fn given_an_ace_stream_when_mapped_then_its_config_reads_back_from_the_description() {
        let cfg = StreamConfig {
            max_msgs: Some(5),
            ..StreamConfig::new("orders", &["ace.comms.a.>"])
        };
        let js = stream_config("orders", &cfg, |s| format!("t1.{s}"));
        assert_eq!(js["subjects"], json!(["t1.ace.comms.a.>"]));
        assert_eq!(js["max_msgs"], json!(5));
        let back: StreamConfig = ace_config(&json!({"config": js})).expect("ours");
        assert_eq!(back, cfg);
        assert!(ace_config::<StreamConfig>(&json!({"config": {"description": "x"}})).is_none());
    }
}
