//! Envelope <-> CloudEvents 1.0: structured JSON mode (`application/cloudevents+json`) and
//! binary HTTP mode (`ce-*` headers plus the payload as body).
//!
//! The attribute mapping is the table in the crate documentation ("CloudEvents mapping").
//! Every envelope field maps to exactly one attribute, so the conversion is lossless for a
//! valid envelope. Extension values are strings; JSON-valued fields (`rbac`, `governance`,
//! `payload_ref`, `signature`, `headers`) are their canonical JSON text. In binary mode header
//! values are percent-encoded as the CloudEvents HTTP binding asks (space, `"`, `%` and
//! anything outside printable ASCII).
//!
//! Decoding accepts what encoding produces. A foreign CloudEvent decodes only if it carries
//! what an envelope cannot do without: a UUID `id`, an `/ace-comms[/type/id]` `source`, a
//! `subject` and the `acekind` extension; the bridge that admits foreign events maps them first.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{codec_error, payload_from_bytes};
use crate::canonical::to_canonical_vec;
use crate::envelope::{
    Envelope, Governance, JSON_CONTENT_TYPE, Kind, Priority, Qos, SPEC, Source, SourceType,
};
use crate::error::EnvelopeError;
use crate::trace::TraceContext;

/// Media type of the structured mode.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The `source` of every envelope; the sender's type and id follow as path segments.
pub const SOURCE_PREFIX: &str = "/ace-comms";
/// Prefix of the `type` of an envelope without `name` (never a valid `name`: it holds a `/`).
pub const UNNAMED_TYPE_PREFIX: &str = "gme/1.";

type Attributes = BTreeMap<String, String>;

/// HTTP header pairs, `(name, value)`.
pub type Headers = Vec<(String, String)>;

/// Structured mode: the CloudEvent as a JSON document.
pub fn to_cloudevent_json(envelope: &Envelope) -> Result<Vec<u8>, EnvelopeError> {
    let mut event: serde_json::Map<String, Value> = attributes(envelope)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if let Some(payload) = &envelope.payload {
        let member = if envelope.has_json_payload() {
            "data"
        } else {
            "data_base64"
        };
        event.insert(member.to_owned(), payload.clone());
    }
    serde_json::to_vec(&event).map_err(EnvelopeError::InvalidJson)
}

/// Structured mode: the envelope of a CloudEvent JSON document.
pub fn from_cloudevent_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let event: serde_json::Map<String, Value> =
        serde_json::from_slice(bytes).map_err(EnvelopeError::InvalidJson)?;
    let mut attrs = Attributes::new();
    let mut payload = None;
    for (name, value) in event {
        match (name.as_str(), value) {
            ("data" | "data_base64", value) => payload = Some(value),
            (_, Value::String(s)) => {
                attrs.insert(name, s);
            }
            (_, Value::Null) => {}
            (_, other) => {
                attrs.insert(name, other.to_string());
            }
        }
    }
    from_attributes(attrs, payload)
}

/// Binary mode: `ce-*` headers (plus `content-type`) and the body (the payload bytes).
pub fn to_binary(envelope: &Envelope) -> Result<(Headers, Vec<u8>), EnvelopeError> {
    let headers = attributes(envelope)
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "datacontenttype" => ("content-type".to_owned(), value),
            _ => (format!("ce-{name}"), percent_encode(&value, is_header_safe)),
        })
        .collect();
    let body = envelope.payload_bytes()?.unwrap_or_default();
    Ok((headers, body))
}

/// Binary mode: the envelope of `ce-*` headers (names in any case) and a body.
pub fn from_binary<K, V>(
    headers: impl IntoIterator<Item = (K, V)>,
    body: &[u8],
) -> Result<Envelope, EnvelopeError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut attrs = Attributes::new();
    for (name, value) in headers {
        let name = name.as_ref().to_ascii_lowercase();
        if name == "content-type" {
            attrs.insert("datacontenttype".to_owned(), value.as_ref().to_owned());
        } else if let Some(attr) = name.strip_prefix("ce-") {
            attrs.insert(attr.to_owned(), percent_decode(value.as_ref(), &name)?);
        }
    }
    let content_type = attrs
        .get("datacontenttype")
        .map_or(JSON_CONTENT_TYPE, String::as_str);
    let json = crate::envelope::is_json_content_type(content_type);
    let payload = if attrs.contains_key("acepayloadref") || (json && body.is_empty()) {
        None
    } else {
        Some(payload_from_bytes(content_type, body)?)
    };
    from_attributes(attrs, payload)
}

fn json_text<T: Serialize>(value: &T) -> String {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    String::from_utf8(to_canonical_vec(&value)).unwrap_or_default()
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn attributes(e: &Envelope) -> Attributes {
    let mut a = Attributes::new();
    let mut put = |name: &str, value: String| {
        a.insert(name.to_owned(), value);
    };
    put("specversion", "1.0".to_owned());
    put("id", e.id.to_string());
    put("source", source_text(e.source.as_ref()));
    put(
        "type",
        e.name
            .clone()
            .unwrap_or_else(|| format!("{UNNAMED_TYPE_PREFIX}{}", e.kind.as_str())),
    );
    put("subject", e.subject.clone());
    put("time", time_text(e.created_at));
    put("datacontenttype", e.content_type.clone());
    put("acespec", e.spec.clone());
    put("acekind", e.kind.as_str().to_owned());
    put("acepriority", e.priority.as_str().to_owned());
    put("aceqos", e.qos.as_str().to_owned());
    put("acehops", e.hops.to_string());
    put("aceattempt", e.attempt.to_string());
    put("acemaxattempts", e.max_attempts.to_string());
    put("acegovernance", json_text(&e.governance));
    let optional = [
        ("dataschema", e.schema.clone()),
        ("acedomain", e.domain.clone()),
        ("aceidempotencykey", e.idempotency_key.clone()),
        ("acecorrelationid", e.correlation_id.clone()),
        ("acecausationid", e.causation_id.clone()),
        ("acepartitionkey", e.partition_key.clone()),
        (
            "traceparent",
            e.trace.as_ref().map(|t| t.traceparent.clone()),
        ),
        (
            "tracestate",
            e.trace.as_ref().and_then(|t| t.tracestate.clone()),
        ),
        ("acettlms", e.ttl_ms.map(|t| t.to_string())),
        ("acedeadline", e.deadline.map(time_text)),
        ("acenotbefore", e.not_before.map(time_text)),
        ("acerbac", (!e.rbac.is_empty()).then(|| json_text(&e.rbac))),
        ("acepayloadref", e.payload_ref.as_ref().map(json_text)),
        ("acesignature", e.signature.as_ref().map(json_text)),
        (
            "aceheaders",
            (!e.headers.is_empty()).then(|| json_text(&e.headers)),
        ),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            put(name, value);
        }
    }
    a
}

struct Reader(Attributes);

impl Reader {
    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    fn require(&mut self, name: &str, path: &str) -> Result<String, EnvelopeError> {
        self.take(name)
            .ok_or_else(|| codec_error(path, format!("attribute {name} is missing")))
    }

    fn parse<T>(
        &mut self,
        name: &str,
        path: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, EnvelopeError> {
        match self.take(name) {
            None => Ok(None),
            Some(text) => f(&text).map(Some).ok_or_else(|| {
                codec_error(path, format!("attribute {name} = {text:?} is not valid"))
            }),
        }
    }

    fn json<T: DeserializeOwned>(
        &mut self,
        name: &str,
        path: &str,
    ) -> Result<Option<T>, EnvelopeError> {
        self.parse(name, path, |t| serde_json::from_str(t).ok())
    }

    fn time(&mut self, name: &str, path: &str) -> Result<Option<DateTime<Utc>>, EnvelopeError> {
        self.parse(name, path, |t| {
            DateTime::parse_from_rfc3339(t).ok().map(|t| t.to_utc())
        })
    }

    fn number<T: std::str::FromStr>(
        &mut self,
        name: &str,
        path: &str,
    ) -> Result<Option<T>, EnvelopeError> {
        self.parse(name, path, |t| t.parse().ok())
    }
}

fn from_attributes(attrs: Attributes, payload: Option<Value>) -> Result<Envelope, EnvelopeError> {
    let mut r = Reader(attrs);
    let version = r.require("specversion", "/spec")?;
    if version != "1.0" {
        return Err(codec_error(
            "/spec",
            format!("CloudEvents specversion {version:?} is not 1.0"),
        ));
    }
    let id = r
        .parse("id", "/id", |t| uuid::Uuid::parse_str(t).ok())?
        .ok_or_else(|| codec_error("/id", "attribute id is missing"))?;
    let kind = r
        .parse("acekind", "/kind", Kind::parse)?
        .ok_or_else(|| codec_error("/kind", "attribute acekind is missing"))?;
    let event_type = r.require("type", "/name")?;
    let name = (!event_type.starts_with(UNNAMED_TYPE_PREFIX)).then_some(event_type);
    let source = source_from_text(&r.require("source", "/source")?)?;
    let traceparent = r.take("traceparent");
    let tracestate = r.take("tracestate");
    let created_at = r
        .time("time", "/created_at")?
        .ok_or_else(|| codec_error("/created_at", "attribute time is missing"))?;
    Ok(Envelope {
        spec: r.take("acespec").unwrap_or_else(|| SPEC.to_owned()),
        id,
        kind,
        subject: r.require("subject", "/subject")?,
        domain: r.take("acedomain"),
        name,
        source,
        schema: r.take("dataschema"),
        content_type: r
            .take("datacontenttype")
            .unwrap_or_else(|| JSON_CONTENT_TYPE.to_owned()),
        payload,
        payload_ref: r.json("acepayloadref", "/payload_ref")?,
        priority: r
            .parse("acepriority", "/priority", Priority::parse)?
            .unwrap_or_default(),
        qos: r.parse("aceqos", "/qos", Qos::parse)?.unwrap_or_default(),
        idempotency_key: r.take("aceidempotencykey"),
        correlation_id: r.take("acecorrelationid"),
        causation_id: r.take("acecausationid"),
        partition_key: r.take("acepartitionkey"),
        trace: traceparent.map(|traceparent| TraceContext {
            traceparent,
            tracestate,
        }),
        hops: r.number("acehops", "/hops")?.unwrap_or(0),
        created_at,
        ttl_ms: r.number("acettlms", "/ttl_ms")?,
        deadline: r.time("acedeadline", "/deadline")?,
        not_before: r.time("acenotbefore", "/not_before")?,
        attempt: r.number("aceattempt", "/attempt")?.unwrap_or(0),
        max_attempts: r
            .number("acemaxattempts", "/max_attempts")?
            .unwrap_or(crate::DEFAULT_MAX_ATTEMPTS),
        rbac: r.json("acerbac", "/rbac")?.unwrap_or_default(),
        governance: r
            .json::<Governance>("acegovernance", "/governance")?
            .unwrap_or_default(),
        signature: r.json("acesignature", "/signature")?,
        headers: r.json("aceheaders", "/headers")?.unwrap_or_default(),
    })
}

fn source_text(source: Option<&Source>) -> String {
    match source {
        None => SOURCE_PREFIX.to_owned(),
        Some(s) => format!(
            "{SOURCE_PREFIX}/{}/{}",
            s.source_type.as_str(),
            percent_encode(&s.id, is_unreserved)
        ),
    }
}

fn source_from_text(text: &str) -> Result<Option<Source>, EnvelopeError> {
    let bad = || {
        codec_error(
            "/source",
            format!("CloudEvents source {text:?} is not {SOURCE_PREFIX}[/type/id]"),
        )
    };
    let rest = text.strip_prefix(SOURCE_PREFIX).ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(None);
    }
    let (source_type, id) = rest
        .strip_prefix('/')
        .and_then(|r| r.split_once('/'))
        .ok_or_else(bad)?;
    let source_type = SourceType::parse(source_type).ok_or_else(bad)?;
    Ok(Some(Source::new(
        source_type,
        percent_decode(id, "source")?,
    )))
}

/// RFC 3986 unreserved characters: kept as they are in a URI path segment.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Printable ASCII except space, `"` and `%`: kept as they are in a header value.
fn is_header_safe(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%'
}

fn percent_encode(text: &str, keep: fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str, what: &str) -> Result<String, EnvelopeError> {
    let bad = || {
        codec_error(
            &format!("/{what}"),
            format!("{text:?} is not valid percent-encoded UTF-8"),
        )
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.threshold.v1")
            .name("kpi.threshold_breach")
            .source(SourceType::Service, "kpi monitor/é")
            .schema("kpi.threshold@1.2.0")
            .payload_json(serde_json::json!({"kpi": "latency", "value": 812}))
            .rbac(["kpi.read"])
            .header("x-tenant", "acme \"blue\"")
            .new_trace()
            .build()
            .expect("valid")
    }

    #[test]
    fn given_an_envelope_when_sent_structured_then_core_attributes_are_mapped() {
        let env = sample();
        let bytes = to_cloudevent_json(&env).expect("encodes");
        let event: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], env.id.to_string());
        assert_eq!(event["type"], "kpi.threshold_breach");
        assert_eq!(event["source"], "/ace-comms/service/kpi%20monitor%2F%C3%A9");
        assert_eq!(event["dataschema"], "kpi.threshold@1.2.0");
        assert_eq!(event["data"]["value"], 812);
        assert_eq!(from_cloudevent_json(&bytes).expect("decodes"), env);
    }

    #[test]
    fn given_an_envelope_when_sent_binary_then_headers_are_ascii_and_it_round_trips() {
        let env = sample();
        let (headers, body) = to_binary(&env).expect("encodes");
        assert!(
            headers
                .iter()
                .all(|(_, v)| v.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        );
        assert!(headers.contains(&("content-type".to_owned(), "application/json".to_owned())));
        let upper: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_uppercase(), v))
            .collect();
        assert_eq!(from_binary(upper, &body).expect("decodes"), env);
    }

    #[test]
    fn given_an_unnamed_binary_envelope_when_round_tripped_then_name_stays_absent() {
        let env = Envelope::builder(Kind::Command, "a.b")
            .payload_bytes("application/octet-stream", b"")
            .build()
            .expect("valid");
        let (headers, body) = to_binary(&env).expect("encodes");
        assert!(headers.contains(&("ce-type".to_owned(), "gme/1.command".to_owned())));
        assert_eq!(from_binary(headers, &body).expect("decodes"), env);
        let json = to_cloudevent_json(&env).expect("encodes");
        assert_eq!(from_cloudevent_json(&json).expect("decodes"), env);
    }

    #[test]
    fn given_another_specversion_when_decoded_then_it_is_refused() {
        let doc = br#"{"specversion":"0.3","id":"x","source":"/ace-comms","type":"t"}"#;
        assert!(from_cloudevent_json(doc).is_err());
    }
}
