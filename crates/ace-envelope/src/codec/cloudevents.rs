//! Envelope <-> CloudEvents 1.0: structured JSON mode (`application/cloudevents+json`) and
//! binary HTTP mode (`ce-*` headers plus the payload as body).
//!
//! The attribute mapping is the table in the crate documentation ("CloudEvents mapping").
//! Every envelope field maps to exactly one attribute, so the conversion is lossless for a
//! valid envelope. Extension values are strings; JSON-valued fields (`rbac`, `governance`,
//! `payload_ref`, `signature`, `headers`) are their canonical JSON text. In binary mode header
//! values are percent-encoded as the CloudEvents HTTP binding asks (space, `"`, `%` and
//! anything outside printable ASCII). `dataschema` is a URI: `urn:ace:schema:{name@semver}`.
//!
//! Decoding takes two kinds of event. An envelope's own CloudEvent carries the `acekind`
//! extension and decodes as the table says (its `id` a UUID, its `source`
//! `/ace-comms[/type/id]`, its `subject` an ACE subject). Any other CloudEvent is foreign: the
//! `_mapped` decoders ([`from_cloudevent_json_mapped`], [`from_binary_mapped`]) give it the
//! subject and kind of a [`Mapping`] and keep what has no envelope field in `headers` (see
//! "Foreign CloudEvents" in the crate documentation); the plain decoders refuse it.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

mod mapping;

pub use mapping::{DEFAULT_SUBJECT_TEMPLATE, Mapping, Match, Rule, Target};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{codec_error, payload_from_bytes};
use crate::builder::uuid_v7_at;
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
/// Prefix of the `dataschema` URI of an envelope's `schema` (`urn:ace:schema:orders.created@1.0.0`).
pub const SCHEMA_URN_PREFIX: &str = "urn:ace:schema:";
/// Prefix of the `headers` keys that keep a foreign event's attributes (`ce-id`, `ce-source`).
pub const KEPT_HEADER_PREFIX: &str = "ce-";
/// Media type of a foreign event's payload when it has no data (the payload is empty), and of
/// `data_base64` without a `datacontenttype`.
const NO_DATA_CONTENT_TYPE: &str = "application/octet-stream";

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

/// Structured mode: the envelope of a CloudEvent JSON document that carries `acekind` (as
/// [`to_cloudevent_json`] writes it); a foreign event is refused.
pub fn from_cloudevent_json(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let (attrs, payload) = structured(bytes)?;
    decode(attrs, payload, None)
}

/// Structured mode: the envelope of any CloudEvent JSON document, a foreign one placed by
/// `mapping`, its envelope id and (without `time`) its `created_at` taken at `now`.
pub fn from_cloudevent_json_mapped(
    bytes: &[u8],
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> Result<Envelope, EnvelopeError> {
    let (attrs, payload) = structured(bytes)?;
    decode(attrs, payload, Some((mapping, now)))
}

/// The attributes and the payload of a structured event. `data_base64` is decoded and read as
/// its `datacontenttype` says (`application/octet-stream` when it says none); `data` that is a
/// string under a non-JSON `datacontenttype` is that text's bytes; other `data` is JSON.
fn structured(bytes: &[u8]) -> Result<(Attributes, Option<Value>), EnvelopeError> {
    let event: serde_json::Map<String, Value> =
        serde_json::from_slice(bytes).map_err(EnvelopeError::InvalidJson)?;
    let mut attrs = Attributes::new();
    let mut data = None;
    let mut data_base64 = None;
    for (name, value) in event {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("data", value) => data = Some(value),
            ("data_base64", value) => data_base64 = Some(value),
            (_, Value::String(s)) => {
                attrs.insert(name, s);
            }
            (_, other) => {
                attrs.insert(name, other.to_string());
            }
        }
    }
    let payload = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(codec_error(
                "/payload",
                "an event holds data or data_base64, not both",
            ));
        }
        (None, None) => None,
        (None, Some(encoded)) => {
            let bytes = encoded
                .as_str()
                .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .ok_or_else(|| codec_error("/payload", "data_base64 is not base64 text"))?;
            let content_type = attrs
                .entry("datacontenttype".to_owned())
                .or_insert_with(|| NO_DATA_CONTENT_TYPE.to_owned());
            Some(payload_from_bytes(content_type, &bytes)?)
        }
        (Some(Value::String(text)), None)
            if attrs
                .get("datacontenttype")
                .is_some_and(|t| !crate::envelope::is_json_content_type(t)) =>
        {
            Some(Value::String(
                base64::engine::general_purpose::STANDARD.encode(text),
            ))
        }
        (Some(data), None) => Some(data),
    };
    Ok((attrs, payload))
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

/// Binary mode: the envelope of `ce-*` headers (names in any case) and a body, for an event that
/// carries `acekind` (as [`to_binary`] writes it); a foreign event is refused.
pub fn from_binary<K, V>(
    headers: impl IntoIterator<Item = (K, V)>,
    body: &[u8],
) -> Result<Envelope, EnvelopeError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (attrs, payload) = binary(headers, body)?;
    decode(attrs, payload, None)
}

/// Binary mode: the envelope of any CloudEvent's `ce-*` headers and body, a foreign one placed
/// by `mapping`, its envelope id and (without `time`) its `created_at` taken at `now`.
pub fn from_binary_mapped<K, V>(
    headers: impl IntoIterator<Item = (K, V)>,
    body: &[u8],
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> Result<Envelope, EnvelopeError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let (attrs, payload) = binary(headers, body)?;
    decode(attrs, payload, Some((mapping, now)))
}

fn binary<K, V>(
    headers: impl IntoIterator<Item = (K, V)>,
    body: &[u8],
) -> Result<(Attributes, Option<Value>), EnvelopeError>
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
    Ok((attrs, payload))
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
        (
            "dataschema",
            e.schema.as_ref().map(|s| format!("{SCHEMA_URN_PREFIX}{s}")),
        ),
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

/// What the two kinds of event decode differently.
struct Head {
    id: uuid::Uuid,
    kind: Kind,
    subject: String,
    name: Option<String>,
    source: Option<Source>,
    created_at: DateTime<Utc>,
    /// The idempotency key when the event names none (`aceidempotencykey`).
    idempotency_key: Option<String>,
    /// Attributes kept in `headers`, by attribute name.
    kept: Attributes,
    /// Whether an absent payload becomes an empty one (a foreign event without data).
    empty_without_data: bool,
}

fn decode(
    attrs: Attributes,
    payload: Option<Value>,
    foreign: Option<(&Mapping, DateTime<Utc>)>,
) -> Result<Envelope, EnvelopeError> {
    let mut r = Reader(attrs);
    let version = r.require("specversion", "/spec")?;
    if version != "1.0" {
        return Err(codec_error(
            "/spec",
            format!("CloudEvents specversion {version:?} is not 1.0"),
        ));
    }
    let head = match foreign {
        _ if r.0.contains_key("acekind") => native_head(&mut r)?,
        Some((mapping, now)) => foreign_head(&mut r, mapping, now)?,
        None => {
            return Err(codec_error(
                "/kind",
                "attribute acekind is missing (a foreign CloudEvent needs a mapping)",
            ));
        }
    };
    let content_type = r.take("datacontenttype");
    let no_data = payload.is_none() && !r.0.contains_key("acepayloadref");
    let (payload, content_type) = if no_data && head.empty_without_data {
        // Its `datacontenttype`, if any, describes data that is not there: kept below.
        if let Some(content_type) = content_type {
            r.0.insert("datacontenttype".to_owned(), content_type);
        }
        (
            Some(Value::String(String::new())),
            NO_DATA_CONTENT_TYPE.to_owned(),
        )
    } else {
        (
            payload,
            content_type.unwrap_or_else(|| JSON_CONTENT_TYPE.to_owned()),
        )
    };
    let (schema, foreign_schema) = schema_of(r.take("dataschema"));
    let traceparent = r.take("traceparent");
    let tracestate = r.take("tracestate");
    let mut envelope = Envelope {
        spec: r.take("acespec").unwrap_or_else(|| SPEC.to_owned()),
        id: head.id,
        kind: head.kind,
        subject: head.subject,
        domain: r.take("acedomain"),
        name: head.name,
        source: head.source,
        schema,
        content_type,
        payload,
        payload_ref: r.json("acepayloadref", "/payload_ref")?,
        priority: r
            .parse("acepriority", "/priority", Priority::parse)?
            .unwrap_or_default(),
        qos: r.parse("aceqos", "/qos", Qos::parse)?.unwrap_or_default(),
        idempotency_key: r.take("aceidempotencykey").or(head.idempotency_key),
        correlation_id: r.take("acecorrelationid"),
        causation_id: r.take("acecausationid"),
        partition_key: r.take("acepartitionkey"),
        trace: traceparent.map(|traceparent| TraceContext {
            traceparent,
            tracestate,
        }),
        hops: r.number("acehops", "/hops")?.unwrap_or(0),
        created_at: head.created_at,
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
    };
    let mut kept = head.kept;
    kept.extend(foreign_schema.map(|s| ("dataschema".to_owned(), s)));
    // Whatever is left is an extension the envelope has no field for: kept, not dropped.
    kept.append(&mut r.0);
    for (name, value) in kept {
        if !is_attribute_name(&name) {
            return Err(codec_error(
                "/headers",
                format!(
                    "attribute name {name:?} is not 1 to 64 lower-case letters and digits \
                     (CloudEvents 1.0)"
                ),
            ));
        }
        envelope
            .headers
            .insert(format!("{KEPT_HEADER_PREFIX}{name}"), value);
    }
    Ok(envelope)
}

/// An envelope's own event: every field from its attribute, as the mapping table says.
fn native_head(r: &mut Reader) -> Result<Head, EnvelopeError> {
    let id = r
        .parse("id", "/id", |t| uuid::Uuid::parse_str(t).ok())?
        .ok_or_else(|| codec_error("/id", "attribute id is missing"))?;
    let kind = r
        .parse("acekind", "/kind", Kind::parse)?
        .ok_or_else(|| codec_error("/kind", "attribute acekind is missing"))?;
    let event_type = r.require("type", "/name")?;
    let name = (!event_type.starts_with(UNNAMED_TYPE_PREFIX)).then_some(event_type);
    let source = source_from_text(&r.require("source", "/source")?)?;
    let created_at = r
        .time("time", "/created_at")?
        .ok_or_else(|| codec_error("/created_at", "attribute time is missing"))?;
    Ok(Head {
        id,
        kind,
        subject: r.require("subject", "/subject")?,
        name,
        source,
        created_at,
        idempotency_key: None,
        kept: Attributes::new(),
        empty_without_data: false,
    })
}

/// A foreign event: subject and kind from the mapping, a new UUIDv7 id, no `source` (the
/// server sets the sender from authentication), its `id`, `source`, `subject` (and a `type`
/// that cannot be a `name`) kept, and an idempotency key from its `source` and `id`, so the
/// same event sent again by the same sender is recognised as a duplicate.
fn foreign_head(
    r: &mut Reader,
    mapping: &Mapping,
    now: DateTime<Utc>,
) -> Result<Head, EnvelopeError> {
    let mut required = |name: &str, path: &str| {
        let value = r.require(name, path)?;
        if value.is_empty() {
            return Err(codec_error(path, format!("attribute {name} is empty")));
        }
        Ok(value)
    };
    let event_id = required("id", "/headers/ce-id")?;
    let event_source = required("source", "/headers/ce-source")?;
    let event_type = required("type", "/name")?;
    let event_subject = r.take("subject");
    let (kind, subject) = mapping
        .resolve(mapping::Attrs {
            event_type: &event_type,
            source: &event_source,
            subject: event_subject.as_deref(),
        })
        .map_err(|reason| codec_error("/subject", reason))?;
    let created_at = r.time("time", "/created_at")?.unwrap_or(now);
    let idempotency_key = format!(
        "ce:{}",
        hex::encode(Sha256::digest(
            format!("{event_source}\n{event_id}").as_bytes()
        ))
    );
    let mut kept = Attributes::new();
    kept.insert("id".to_owned(), event_id);
    kept.insert("source".to_owned(), event_source);
    kept.extend(event_subject.map(|s| ("subject".to_owned(), s)));
    let name = if crate::validate::is_name(&event_type) {
        Some(event_type)
    } else {
        kept.insert("type".to_owned(), event_type);
        None
    };
    Ok(Head {
        id: uuid_v7_at(now),
        kind,
        subject,
        name,
        source: None,
        created_at,
        idempotency_key: Some(idempotency_key),
        kept,
        empty_without_data: true,
    })
}

/// The envelope `schema` of a `dataschema`, and the `dataschema` to keep when it names no
/// contract: `urn:ace:schema:{name@semver}` (or a bare `name@semver`, as older encoders wrote
/// it) is a contract; any other URI is kept as `headers.ce-dataschema`.
fn schema_of(dataschema: Option<String>) -> (Option<String>, Option<String>) {
    let Some(text) = dataschema else {
        return (None, None);
    };
    match text.strip_prefix(SCHEMA_URN_PREFIX) {
        Some(schema) => (Some(schema.to_owned()), None),
        None if crate::validate::is_schema_ref(&text) => (Some(text), None),
        None => (None, Some(text)),
    }
}

/// A CloudEvents attribute name: lower-case letters and digits (the specification's rule),
/// at most 64 so the header key that keeps it stays within its limit.
fn is_attribute_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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
        assert_eq!(event["dataschema"], "urn:ace:schema:kpi.threshold@1.2.0");
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

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().expect("a time")
    }

    #[test]
    fn given_an_envelope_with_a_schema_when_encoded_then_dataschema_is_a_urn_and_bare_is_read() {
        let env = sample();
        let bytes = to_cloudevent_json(&env).expect("encodes");
        let mut event: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(event["dataschema"], "urn:ace:schema:kpi.threshold@1.2.0");
        event["dataschema"] = Value::from("kpi.threshold@1.2.0");
        let bare = serde_json::to_vec(&event).expect("JSON");
        assert_eq!(from_cloudevent_json(&bare).expect("decodes"), env);
    }

    #[test]
    fn given_an_envelope_with_a_v4_id_when_round_tripped_then_the_id_is_kept() {
        let mut env = sample();
        env.id = "919108f7-52d1-4320-9bac-f847db4148a8"
            .parse()
            .expect("UUID");
        let bytes = to_cloudevent_json(&env).expect("encodes");
        assert_eq!(from_cloudevent_json(&bytes).expect("decodes"), env);
    }

    #[test]
    fn given_a_foreign_event_when_decoded_plainly_then_acekind_is_asked_for() {
        let doc = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
        let err = from_cloudevent_json(doc).unwrap_err();
        assert!(err.to_string().contains("acekind"), "{err}");
    }

    #[test]
    fn given_a_foreign_structured_event_when_mapped_then_subject_kind_and_attributes_are_placed() {
        let doc = serde_json::json!({
            "specversion": "1.0",
            "id": "order-7/created",
            "source": "https://shop.example/orders",
            "type": "com.example.order.created",
            "subject": "order-7",
            "time": "2026-02-01T10:00:00.5+01:00",
            "dataschema": "https://shop.example/schemas/order.json",
            "tenant": "acme",
            "acepriority": "P1",
            "data": {"total": 12}
        });
        let bytes = serde_json::to_vec(&doc).expect("JSON");
        let env = from_cloudevent_json_mapped(&bytes, &Mapping::default(), now()).expect("maps");
        assert_eq!(
            env.subject,
            "ace.comms.http.service.cloudevents.evt.com.example.order.created"
        );
        assert_eq!(env.kind, Kind::Event);
        assert_eq!(env.name.as_deref(), Some("com.example.order.created"));
        assert_eq!(env.source, None, "the sender comes from authentication");
        assert_eq!(env.id.get_version_num(), 7);
        assert_eq!(env.priority, Priority::P1);
        assert_eq!(env.payload, Some(serde_json::json!({"total": 12})));
        assert_eq!(env.content_type, JSON_CONTENT_TYPE);
        assert_eq!(env.schema, None);
        assert_eq!(
            env.created_at,
            "2026-02-01T09:00:00.5Z".parse::<DateTime<Utc>>().unwrap()
        );
        let header = |k: &str| env.headers.get(k).map(String::as_str);
        assert_eq!(header("ce-id"), Some("order-7/created"));
        assert_eq!(header("ce-source"), Some("https://shop.example/orders"));
        assert_eq!(header("ce-subject"), Some("order-7"));
        assert_eq!(
            header("ce-dataschema"),
            Some("https://shop.example/schemas/order.json")
        );
        assert_eq!(header("ce-tenant"), Some("acme"));
        assert_eq!(header("ce-type"), None, "the type is the name");
        let key = env.idempotency_key.as_deref().expect("a key");
        assert!(key.starts_with("ce:") && key.len() == 67, "{key}");
        assert_eq!(env.validate(), vec![]);
        let again = from_cloudevent_json_mapped(&bytes, &Mapping::default(), now()).unwrap();
        assert_eq!(again.idempotency_key, env.idempotency_key);
        let other: Value = serde_json::json!({"specversion": "1.0", "id": "order-7/created",
            "source": "https://other.example", "type": "t"});
        let other = from_cloudevent_json_mapped(
            &serde_json::to_vec(&other).unwrap(),
            &Mapping::default(),
            now(),
        )
        .unwrap();
        assert_ne!(other.idempotency_key, env.idempotency_key);
    }

    #[test]
    fn given_a_foreign_binary_event_when_mapped_then_the_body_is_the_payload() {
        let mapping = Mapping {
            rules: vec![Rule {
                matches: Match {
                    event_type: Some("*.created".to_owned()),
                    ..Match::default()
                },
                subject: "ace.comms.http.service.shop.cmd.{subject}.v1".to_owned(),
                kind: Kind::Command,
            }],
            default: Target::default(),
        };
        let headers = [
            ("Ce-Specversion", "1.0"),
            ("Ce-Id", "42"),
            ("Ce-Source", "/shop"),
            ("Ce-Type", "urn:shop/order.created"),
            ("Ce-Subject", "order 7"),
            ("Ce-Dataschema", "urn:ace:schema:shop.order@1.0.0"),
            ("Content-Type", "text/plain"),
            ("Authorization", "Bearer not-an-attribute"),
        ];
        let env = from_binary_mapped(headers, b"hello", &mapping, now()).expect("maps");
        assert_eq!(env.kind, Kind::Command);
        assert_eq!(env.subject, "ace.comms.http.service.shop.cmd.order_7.v1");
        assert_eq!(env.name, None, "a type with `/` cannot be a name");
        assert_eq!(env.headers["ce-type"], "urn:shop/order.created");
        assert_eq!(env.schema.as_deref(), Some("shop.order@1.0.0"));
        assert_eq!(env.content_type, "text/plain");
        assert_eq!(env.payload_bytes().unwrap().unwrap(), b"hello");
        assert_eq!(env.created_at, now());
        assert!(!env.headers.contains_key("ce-authorization"));
        assert_eq!(env.validate(), vec![]);
    }

    #[test]
    fn given_a_foreign_event_without_data_when_mapped_then_the_payload_is_empty_bytes() {
        let doc = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json"}"#;
        let env = from_cloudevent_json_mapped(doc, &Mapping::default(), now()).expect("maps");
        assert_eq!(env.content_type, "application/octet-stream");
        assert_eq!(env.payload_bytes().unwrap().unwrap(), b"");
        assert_eq!(env.headers["ce-datacontenttype"], "application/json");
        assert_eq!(env.validate(), vec![]);
    }

    #[test]
    fn given_foreign_binary_and_text_data_in_structured_mode_when_mapped_then_the_bytes_are_kept() {
        let map = |doc: Value| {
            let bytes = serde_json::to_vec(&doc).unwrap();
            from_cloudevent_json_mapped(&bytes, &Mapping::default(), now())
        };
        let base = |extra: Value| {
            let mut doc =
                serde_json::json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"});
            doc.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            doc
        };
        let raw = map(base(serde_json::json!({"data_base64": "AAEC"}))).unwrap();
        assert_eq!(raw.content_type, "application/octet-stream");
        assert_eq!(raw.payload_bytes().unwrap().unwrap(), [0, 1, 2]);
        let json = map(base(serde_json::json!({
            "data_base64": "eyJhIjoxfQ==", "datacontenttype": "application/json"
        })))
        .unwrap();
        assert_eq!(json.payload, Some(serde_json::json!({"a": 1})));
        let text = map(base(
            serde_json::json!({"data": "héllo", "datacontenttype": "text/plain"}),
        ))
        .unwrap();
        assert_eq!(text.payload_bytes().unwrap().unwrap(), "héllo".as_bytes());
        assert_eq!(text.validate(), vec![]);
        let json_string = map(base(serde_json::json!({"data": "just text"}))).unwrap();
        assert_eq!(json_string.payload, Some(Value::from("just text")));
        for bad in [
            serde_json::json!({"data_base64": "not base64!"}),
            serde_json::json!({"data_base64": 7}),
            serde_json::json!({"data": 1, "data_base64": "AA=="}),
        ] {
            let err = map(base(bad.clone())).unwrap_err().to_string();
            assert!(err.contains("/payload"), "{bad}: {err}");
        }
    }

    #[test]
    fn given_bad_foreign_events_when_mapped_then_each_is_refused_naming_the_field() {
        let mapping = Mapping {
            rules: vec![],
            default: Target {
                subject: "ace.comms.ce.{subject}".to_owned(),
                kind: Kind::Event,
            },
        };
        for (doc, field, says) in [
            (
                r#"{"specversion":"1.0","source":"/s","type":"t","subject":"x"}"#,
                "/headers/ce-id",
                "missing",
            ),
            (
                r#"{"specversion":"1.0","id":"","source":"/s","type":"t","subject":"x"}"#,
                "/headers/ce-id",
                "empty",
            ),
            (
                r#"{"specversion":"1.0","id":"1","type":"t","subject":"x"}"#,
                "/headers/ce-source",
                "missing",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","subject":"x"}"#,
                "/name",
                "missing",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#,
                "/subject",
                "needs the attribute subject",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"x","time":"yesterday"}"#,
                "/created_at",
                "not valid",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"x","Bad-Name":"v"}"#,
                "/headers",
                "lower-case",
            ),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"x","acepriority":"P9"}"#,
                "/priority",
                "not valid",
            ),
            (
                r#"{"specversion":"0.3","id":"1","source":"/s","type":"t","subject":"x"}"#,
                "/spec",
                "not 1.0",
            ),
        ] {
            let err = from_cloudevent_json_mapped(doc.as_bytes(), &mapping, now()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(field) && text.contains(says), "{doc}: {text}");
        }
    }

    #[test]
    fn given_an_envelopes_own_event_when_mapped_then_the_mapping_is_not_used() {
        let env = sample();
        let bytes = to_cloudevent_json(&env).expect("encodes");
        let back = from_cloudevent_json_mapped(&bytes, &Mapping::default(), now()).unwrap();
        assert_eq!(back, env);
        let (headers, body) = to_binary(&env).expect("encodes");
        let back = from_binary_mapped(headers, &body, &Mapping::default(), now()).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn given_another_specversion_when_decoded_then_it_is_refused() {
        let doc = br#"{"specversion":"0.3","id":"x","source":"/ace-comms","type":"t"}"#;
        assert!(from_cloudevent_json(doc).is_err());
    }
}
