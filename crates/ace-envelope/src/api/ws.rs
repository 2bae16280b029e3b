//! The frames of the `/ws` WebSocket protocol (owned by the WebSocket adapter's author; see
//! [`super`]): client frames `subscribe`, `unsubscribe`, `publish`, `publish_batch`, `ack`,
//! `nak`, `term`, server frames `message`, `ok`, `error`.
//!
//! Every frame is one JSON object in one text message, discriminated by `"type"`. A client frame
//! may carry an `"id"` that the server's `ok` or `error` answer repeats. A subscription is named by
//! a client-chosen `"sid"`, unique per connection; `message` frames carry it.
//!
//! Close codes the server uses (also [`close`]): 1008 the `Origin` was refused, 1009 a message
//! was larger than the limit, 4008 the connection's outgoing queue overflowed (slow client:
//! too many frames or too many bytes waiting, for the connection or for its principal),
//! 1001 the server is shutting down, 1011 a keepalive went unanswered, 1002 the client broke
//! the WebSocket protocol (an unmasked frame, a reserved opcode or bit, a bad fragment), 1007 a
//! text message was not UTF-8, 4001 the connection's credentials expired or were revoked (a
//! bearer token past its `exp`, or a key a reload removed). Every close carries a reason.

use serde::{Deserialize, Serialize};

use crate::{Envelope, ErrorBody, ErrorDetail};

/// The WebSocket subprotocol of these frames. A client may offer it in
/// `Sec-WebSocket-Protocol`; the server then answers with it. A browser offering a
/// [`BEARER_PROTOCOL_PREFIX`] token must offer it too (the server never echoes the token).
pub const PROTOCOL: &str = "ace.comms.v1";
/// Prefix of the subprotocol that carries a bearer token where a client cannot set
/// `Authorization` (a browser's `WebSocket`): `ace.bearer.<jwt>`, offered next to [`PROTOCOL`].
pub const BEARER_PROTOCOL_PREFIX: &str = "ace.bearer.";
/// The query parameter that carries a bearer token on the upgrade (`/ws?access_token=<jwt>`),
/// the other way for a client that cannot set `Authorization`.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// The close codes of the protocol.
pub mod close {
    /// The upgrade's `Origin` is not allowed (also answered as 403 before upgrading).
    pub const POLICY: u16 = 1008;
    /// A message was larger than the server's limit.
    pub const TOO_BIG: u16 = 1009;
    /// The connection's outgoing queue overflowed: the client reads too slowly.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The client stopped answering pings.
    pub const KEEPALIVE: u16 = 1011;
    /// The client broke the WebSocket protocol (RFC 6455 7.4.1).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message was not valid UTF-8 (RFC 6455 7.4.1).
    pub const INVALID_DATA: u16 = 1007;
    /// The connection's credentials expired or were revoked: it must connect again with valid
    /// ones.
    pub const CREDENTIALS: u16 = 4001;
}

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start a live or a durable-consumer subscription.
    Subscribe(Subscribe),
    /// End a subscription.
    Unsubscribe(Unsubscribe),
    /// Publish an envelope through the ingress pipeline; answered with `ok` and the publish
    /// answer `{id, stream, seq, duplicate}`.
    Publish(Publish),
    /// Publish several envelopes in one frame, answered by one `ok` frame whose result is the
    /// batch answer of HTTP `POST /api/v1/messages/batch` (`{accepted, refused, held,
    /// results}`, one result per envelope in order). The admitted envelopes share one append
    /// (one group commit) and one ledger write.
    PublishBatch(PublishBatch),
    /// Acknowledge a consumer delivery.
    Ack(Acknowledge),
    /// Negatively acknowledge: redeliver after `delay_ms` (or the consumer's backoff).
    Nak(Acknowledge),
    /// Give up on a delivery: it moves to the dead letters with `reason`.
    Term(Acknowledge),
}

impl ClientFrame {
    /// The correlation id the answer repeats.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientFrame::Subscribe(f) => f.id.as_deref(),
            ClientFrame::Unsubscribe(f) => f.id.as_deref(),
            ClientFrame::Publish(f) => f.id.as_deref(),
            ClientFrame::PublishBatch(f) => f.id.as_deref(),
            ClientFrame::Ack(f) | ClientFrame::Nak(f) | ClientFrame::Term(f) => f.id.as_deref(),
        }
    }
}

/// `subscribe`: either `pattern` (live, optionally in a `queue` group) or `stream` and
/// `consumer` (pushed deliveries of a durable consumer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscribe {
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subscription's name, chosen by the client, unique per connection.
    pub sid: String,
    /// Subject pattern of a live subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Queue group of a live subscription: each message goes to one member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Stream of a consumer subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Durable consumer of a consumer subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// What a [`Subscribe`] asks for, once its fields are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeTarget<'a> {
    /// Live messages on a subject pattern.
    Live {
        /// The subject pattern.
        pattern: &'a str,
        /// The queue group, if any.
        queue: Option<&'a str>,
    },
    /// Pushed deliveries of a durable consumer.
    Consumer {
        /// The stream.
        stream: &'a str,
        /// The consumer.
        consumer: &'a str,
    },
}

impl Subscribe {
    /// A live subscription.
    pub fn live(sid: impl Into<String>, pattern: impl Into<String>) -> Self {
        Subscribe {
            sid: sid.into(),
            pattern: Some(pattern.into()),
            ..Subscribe::default()
        }
    }

    /// A durable-consumer subscription.
    pub fn consumer(
        sid: impl Into<String>,
        stream: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        Subscribe {
            sid: sid.into(),
            stream: Some(stream.into()),
            consumer: Some(consumer.into()),
            ..Subscribe::default()
        }
    }

    /// The target, or a message naming the fields that do not fit together.
    pub fn target(&self) -> Result<SubscribeTarget<'_>, String> {
        match (
            self.pattern.as_deref(),
            self.stream.as_deref(),
            self.consumer.as_deref(),
        ) {
            (Some(pattern), None, None) => Ok(SubscribeTarget::Live {
                pattern,
                queue: self.queue.as_deref(),
            }),
            (None, Some(stream), Some(consumer)) if self.queue.is_none() => {
                Ok(SubscribeTarget::Consumer { stream, consumer })
            }
            (None, Some(_), Some(_)) => {
                Err("`queue` applies to a live `pattern` subscription only".to_owned())
            }
            (Some(_), _, _) => {
                Err("give either `pattern` or `stream` with `consumer`, not both".to_owned())
            }
            _ => Err("give `pattern`, or `stream` with `consumer`".to_owned()),
        }
    }
}

/// `unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unsubscribe {
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The subscription to end.
    pub sid: String,
}

/// `publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Publish {
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The envelope to publish.
    pub envelope: Box<Envelope>,
}

/// `publish_batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishBatch {
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The envelopes to publish, judged each alone and answered in this order.
    pub envelopes: Vec<Envelope>,
}

/// `ack`, `nak` and `term` of one consumer delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acknowledge {
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The consumer subscription the delivery came on.
    pub sid: String,
    /// The stream sequence of the delivery.
    pub seq: u64,
    /// `nak` only: redeliver after this delay, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `term` only: why the message is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A message for a subscription.
    Message(Message),
    /// A client frame succeeded.
    Ok {
        /// The client frame's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// What the operation answered (the publish answer), absent when nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
    },
    /// A client frame failed; the connection stays open.
    Error {
        /// The client frame's id, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The error, as in `contracts/comms/errors.schema.json`.
        error: ErrorDetail,
    },
}

impl ServerFrame {
    /// An `error` frame answering `id` with `body`.
    pub fn error(id: Option<String>, body: ErrorBody) -> Self {
        ServerFrame::Error {
            id,
            error: body.error,
        }
    }
}

/// `message`: a live message (`sid` and `envelope`) or a consumer delivery (with `stream`,
/// `seq` and `delivery`, the handle for `ack`/`nak`/`term`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// The subscription it is for.
    pub sid: String,
    /// The envelope (boxed: it dwarfs the other frames).
    pub envelope: Box<Envelope>,
    /// Consumer deliveries: the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Consumer deliveries: the stream sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Consumer deliveries: 1 on first delivery, then one more per redelivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u32>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{ErrorCode, Kind};

    fn envelope() -> Envelope {
        Envelope::builder(Kind::Event, "ace.comms.ws.service.kpi.evt.v1")
            .payload_json(json!({"n": 1}))
            .build()
            .unwrap()
    }

    fn round_trip_client(frame: &ClientFrame) {
        let text = serde_json::to_string(frame).unwrap();
        let back: ClientFrame = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, frame, "{text}");
    }

    #[test]
    fn given_every_client_frame_when_round_tripped_then_it_is_unchanged() {
        let ack = Acknowledge {
            id: Some("5".into()),
            sid: "s2".into(),
            seq: 42,
            delay_ms: Some(1000),
            reason: None,
        };
        for frame in [
            ClientFrame::Subscribe(Subscribe::live("s1", "ace.comms.>")),
            ClientFrame::Subscribe(Subscribe::consumer("s2", "ACE", "worker")),
            ClientFrame::Unsubscribe(Unsubscribe {
                id: None,
                sid: "s1".into(),
            }),
            ClientFrame::Publish(Publish {
                id: Some("4".into()),
                envelope: Box::new(envelope()),
            }),
            ClientFrame::PublishBatch(PublishBatch {
                id: Some("6".into()),
                envelopes: vec![envelope(), envelope()],
            }),
            ClientFrame::Ack(ack.clone()),
            ClientFrame::Nak(ack.clone()),
            ClientFrame::Term(Acknowledge {
                reason: Some("poison".into()),
                delay_ms: None,
                ..ack
            }),
        ] {
            round_trip_client(&frame);
        }
    }

    #[test]
    fn given_the_agreed_wire_text_when_parsed_then_the_fields_land() {
        let frame: ClientFrame = serde_json::from_value(json!({
            "type": "subscribe", "id": "1", "sid": "s1",
            "pattern": "ace.comms.>", "queue": "workers"
        }))
        .unwrap();
        let ClientFrame::Subscribe(sub) = &frame else {
            panic!("{frame:?}")
        };
        assert_eq!(frame.id(), Some("1"));
        assert_eq!(
            sub.target(),
            Ok(SubscribeTarget::Live {
                pattern: "ace.comms.>",
                queue: Some("workers")
            })
        );
        let frame: ClientFrame = serde_json::from_value(json!({
            "type": "nak", "sid": "s2", "seq": 42, "delay_ms": 1000
        }))
        .unwrap();
        assert_eq!(frame.id(), None);
        assert!(matches!(
            frame,
            ClientFrame::Nak(Acknowledge {
                seq: 42,
                delay_ms: Some(1000),
                ..
            })
        ));
    }

    #[test]
    fn given_fields_that_do_not_fit_when_targeted_then_the_message_names_them() {
        let both = Subscribe {
            stream: Some("ACE".into()),
            ..Subscribe::live("s", "a.b")
        };
        assert!(both.target().unwrap_err().contains("not both"));
        let neither = Subscribe {
            sid: "s".into(),
            ..Subscribe::default()
        };
        assert!(neither.target().unwrap_err().contains("`pattern`"));
        let queued_consumer = Subscribe {
            queue: Some("q".into()),
            ..Subscribe::consumer("s", "ACE", "w")
        };
        assert!(queued_consumer.target().unwrap_err().contains("`queue`"));
    }

    #[test]
    fn given_every_server_frame_when_round_tripped_then_it_is_unchanged() {
        let frames = [
            ServerFrame::Message(Message {
                sid: "s1".into(),
                envelope: Box::new(envelope()),
                stream: None,
                seq: None,
                delivery: None,
            }),
            ServerFrame::Message(Message {
                sid: "s2".into(),
                envelope: Box::new(envelope()),
                stream: Some("ACE".into()),
                seq: Some(7),
                delivery: Some(2),
            }),
            ServerFrame::Ok {
                id: Some("4".into()),
                result: Some(json!({"seq": 1})),
            },
            ServerFrame::Ok {
                id: None,
                result: None,
            },
            ServerFrame::error(
                Some("9".into()),
                ErrorBody::new(ErrorCode::InvalidJson, "bad frame"),
            ),
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            let back: ServerFrame = serde_json::from_str(&text).unwrap();
            assert_eq!(back, frame, "{text}");
        }
    }

    #[test]
    fn given_an_error_frame_when_serialized_then_it_carries_the_error_body_shape() {
        let frame = ServerFrame::error(None, ErrorBody::new(ErrorCode::NotFound, "no sid `x`"));
        let value = serde_json::to_value(&frame).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["error"]["code"], "NOT_FOUND");
        assert_eq!(value["error"]["message"], "no sid `x`");
        assert!(value.get("id").is_none());
        let body: ErrorBody =
            serde_json::from_value(json!({ "error": value["error"].clone() })).unwrap();
        assert_eq!(body.error.code, ErrorCode::NotFound);
    }

    #[test]
    fn given_an_unknown_type_when_parsed_then_it_is_refused() {
        let err = serde_json::from_value::<ClientFrame>(json!({"type": "dance"})).unwrap_err();
        assert!(err.to_string().contains("dance"), "{err}");
    }
}
