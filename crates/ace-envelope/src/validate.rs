//! The rules of `gme/1` beyond its shape: [`Envelope::validate`] returns every
//! [`Violation`], each with the JSON-pointer path of the field at fault.
//!
//! Each rule here has its twin in `contracts/comms/envelope.schema.json`; the integration test
//! `schema` walks a table of bad envelopes through both and expects both to refuse each one.
//! The only rule the schema cannot state is a configured hop limit lower than [`MAX_HOPS`].

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::envelope::{Envelope, SPEC, is_json_content_type};
use crate::subject;
use crate::trace::TraceParent;

/// The ceiling of the hop limit, and the default limit (the schema's `maximum` of `hops`).
pub const MAX_HOPS: u32 = 32;
/// Longest id-like string field (`idempotency_key`, `source.id`, …), in characters.
pub const MAX_ID_LEN: usize = 256;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON pointer of the field at fault (`/governance/ehi_score`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Limits that deployments may tighten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Highest `hops` accepted; at most [`MAX_HOPS`].
    pub max_hops: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_hops: MAX_HOPS }
    }
}

pub(crate) fn summary(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.path, v.message))
        .collect();
    parts.join("; ")
}

struct Findings(Vec<Violation>);

impl Findings {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Violation {
            path: path.into(),
            message: message.into(),
        });
    }

    fn id_like(&mut self, path: &str, value: Option<&str>) {
        if let Some(v) = value {
            let len = v.chars().count();
            if len == 0 || len > MAX_ID_LEN {
                self.add(path, format!("must be 1 to {MAX_ID_LEN} characters"));
            }
        }
    }

    fn pattern(&mut self, path: &str, value: Option<&str>, ok: fn(&str) -> bool, what: &str) {
        if let Some(v) = value
            && !ok(v)
        {
            self.add(path, format!("{v:?} is not {what}"));
        }
    }
}

impl Envelope {
    /// Every broken rule, with default [`Limits`]; empty when the envelope is valid.
    pub fn validate(&self) -> Vec<Violation> {
        self.validate_with(&Limits::default())
    }

    /// Every broken rule under `limits`.
    pub fn validate_with(&self, limits: &Limits) -> Vec<Violation> {
        let mut f = Findings(Vec::new());
        self.check_identity(&mut f);
        self.check_payload(&mut f);
        self.check_delivery(&mut f, limits);
        self.check_governance(&mut f);
        f.0
    }

    /// `Ok` when valid, else [`EnvelopeError::Invalid`](crate::EnvelopeError::Invalid) with
    /// every violation.
    pub fn check(&self) -> Result<(), crate::EnvelopeError> {
        let violations = self.validate();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(crate::EnvelopeError::Invalid(violations))
        }
    }

    fn check_identity(&self, f: &mut Findings) {
        if self.spec != SPEC {
            f.add("/spec", format!("must be {SPEC:?}"));
        }
        if !is_rfc9562_uuid(&self.id) {
            f.add(
                "/id",
                "must be an RFC 9562 UUID (variant 10, version 1 to 8)",
            );
        }
        if let Err(reason) = subject::check(&self.subject, false) {
            f.add("/subject", format!("{:?} {reason}", self.subject));
        }
        f.pattern(
            "/domain",
            self.domain.as_deref(),
            is_name,
            "1-256 of [A-Za-z0-9_.:-]",
        );
        f.pattern(
            "/name",
            self.name.as_deref(),
            is_name,
            "1-256 of [A-Za-z0-9_.:-]",
        );
        if let Some(source) = &self.source {
            f.id_like("/source/id", Some(&source.id));
        }
        f.pattern(
            "/schema",
            self.schema.as_deref(),
            is_schema_ref,
            "name@semver",
        );
        if !is_media_type(&self.content_type) {
            f.add(
                "/content_type",
                format!("{:?} is not type/subtype[;params]", self.content_type),
            );
        }
        f.id_like("/idempotency_key", self.idempotency_key.as_deref());
        f.id_like("/correlation_id", self.correlation_id.as_deref());
        f.id_like("/causation_id", self.causation_id.as_deref());
        f.id_like("/partition_key", self.partition_key.as_deref());
        for (key, _) in self.headers.iter().filter(|(k, _)| !is_header_key(k)) {
            f.add(
                format!("/headers/{}", escape_pointer(key)),
                "key must be 1-128 of [A-Za-z0-9_.:-]",
            );
        }
        if let Some(signature) = &self.signature {
            if signature.alg != "ed25519" {
                f.add("/signature/alg", "must be \"ed25519\"");
            }
            f.id_like("/signature/key_id", Some(&signature.key_id));
            if !is_signature_b64(&signature.sig) {
                f.add(
                    "/signature/sig",
                    "must be 64 bytes in standard padded base64",
                );
            }
        }
    }

    fn check_payload(&self, f: &mut Findings) {
        match (&self.payload, &self.payload_ref) {
            (Some(_), Some(_)) | (None, None) => {
                f.add(
                    "/payload",
                    "exactly one of payload and payload_ref is required",
                );
            }
            _ => {}
        }
        if self
            .payload
            .as_ref()
            .is_some_and(serde_json::Value::is_null)
        {
            f.add(
                "/payload",
                "must not be null (JSON null cannot be told from an absent payload)",
            );
        }
        if let Some(payload) = &self.payload
            && !is_json_content_type(&self.content_type)
            && !payload.as_str().is_some_and(is_base64)
        {
            f.add(
                "/payload",
                "must be a standard padded base64 string for non-JSON content",
            );
        }
        if let Some(r) = &self.payload_ref {
            f.pattern("/payload_ref/uri", Some(&r.uri), is_uri, "an absolute URI");
            f.pattern(
                "/payload_ref/sha256",
                Some(&r.sha256),
                is_sha256_hex,
                "64 lower-case hex digits",
            );
        }
    }

    fn check_delivery(&self, f: &mut Findings, limits: &Limits) {
        if self.ttl_ms.is_some() && self.deadline.is_some() {
            f.add("/deadline", "ttl_ms and deadline are exclusive");
        }
        if self.ttl_ms == Some(0) {
            f.add("/ttl_ms", "must be at least 1");
        }
        let max_hops = limits.max_hops.min(MAX_HOPS);
        if self.hops > max_hops {
            f.add(
                "/hops",
                format!("{} exceeds the hop limit {max_hops}", self.hops),
            );
        }
        if self.max_attempts == 0 {
            f.add("/max_attempts", "must be at least 1");
        }
        if let Some(trace) = &self.trace {
            if let Err(e) = TraceParent::parse(&trace.traceparent) {
                f.add("/trace/traceparent", e.to_string());
            }
            if trace
                .tracestate
                .as_ref()
                .is_some_and(|s| s.chars().count() > 512)
            {
                f.add("/trace/tracestate", "must be at most 512 characters");
            }
        }
        for (i, permission) in self.rbac.iter().enumerate() {
            f.id_like(&format!("/rbac/{i}"), Some(permission));
        }
    }

    fn check_governance(&self, f: &mut Findings) {
        let g = &self.governance;
        if let Some(score) = g.ehi_score
            && !(0.0..=1.0).contains(&score)
        {
            f.add("/governance/ehi_score", format!("{score} is outside 0..=1"));
        }
        for (i, field) in g.pii.iter().enumerate() {
            f.id_like(&format!("/governance/pii/{i}"), Some(field));
        }
        f.id_like("/governance/consent_scope", g.consent_scope.as_deref());
        f.id_like("/governance/approval_id", g.approval_id.as_deref());
    }
}

/// `~` and `/` escaped per RFC 6901.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub(crate) fn is_name(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| subject::is_token_byte(b) || b == b'.' || b == b':')
}

/// An RFC 9562 UUID of any version: the RFC's variant and a version from 1 to 8 (the nil and
/// max UUIDs are neither). The builder makes UUIDv7s; a client may bring any version.
pub(crate) fn is_rfc9562_uuid(id: &uuid::Uuid) -> bool {
    id.get_variant() == uuid::Variant::RFC4122 && (1..=8).contains(&id.get_version_num())
}

fn is_header_key(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| subject::is_token_byte(b) || b == b'.' || b == b':')
}

/// `name@MAJOR.MINOR.PATCH[-pre][+build]`, the name made of `[A-Za-z0-9_.-]`.
pub(crate) fn is_schema_ref(s: &str) -> bool {
    let Some((name, version)) = s.split_once('@') else {
        return false;
    };
    let name_ok = !name.is_empty() && name.bytes().all(|b| subject::is_token_byte(b) || b == b'.');
    name_ok && is_semver(version)
}

fn is_semver(v: &str) -> bool {
    let (rest, build) = match v.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let core_ok = numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (*n == "0" || !n.starts_with('0'))
        });
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    core_ok && pre.is_none_or(ident_ok) && build.is_none_or(ident_ok)
}

fn is_media_type(s: &str) -> bool {
    let media = s.split(';').next().unwrap_or("");
    let mut parts = media.split('/');
    let part_ok =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && !p.chars().any(char::is_whitespace));
    part_ok(parts.next()) && part_ok(parts.next()) && parts.next().is_none()
}

fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !s.chars().any(char::is_whitespace)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

fn is_signature_b64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .is_ok_and(|bytes| bytes.len() == 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_semver_strings_when_checked_then_only_valid_ones_pass() {
        for good in [
            "a@1.0.0",
            "orders.created@10.2.3-rc.1+build.5",
            "x_y-z@0.0.0",
        ] {
            assert!(is_schema_ref(good), "{good}");
        }
        for bad in [
            "a",
            "@1.0.0",
            "a@1.0",
            "a@01.0.0",
            "a@1.0.0-",
            "a b@1.0.0",
            "a@1.0.0+",
        ] {
            assert!(!is_schema_ref(bad), "{bad}");
        }
    }

    #[test]
    fn given_uuids_of_every_version_when_checked_then_rfc_ones_pass_and_nil_max_and_ncs_do_not() {
        for good in [
            "c232ab00-9414-11ec-b3c8-9f6bdeced846", // v1
            "000003e8-9414-21ec-8200-325096b39f47", // v2
            "5df41881-3aed-3515-88a7-2f4a814cf09e", // v3
            "919108f7-52d1-4320-9bac-f847db4148a8", // v4
            "2ed6657d-e927-568b-95e1-2665a8aea6a2", // v5
            "1ec9414c-232a-6b00-b3c8-9f6bdeced846", // v6
            "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", // v7
            "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", // v8
        ] {
            let id = uuid::Uuid::parse_str(good).unwrap();
            assert!(is_rfc9562_uuid(&id), "{good}");
        }
        for bad in [
            "00000000-0000-0000-0000-000000000000", // nil
            "ffffffff-ffff-ffff-ffff-ffffffffffff", // max
            "919108f7-52d1-4320-7bac-f847db4148a8", // NCS variant
            "919108f7-52d1-9320-9bac-f847db4148a8", // version 9
        ] {
            let id = uuid::Uuid::parse_str(bad).unwrap();
            assert!(!is_rfc9562_uuid(&id), "{bad}");
        }
    }

    #[test]
    fn given_media_types_when_checked_then_type_and_subtype_are_required() {
        assert!(is_media_type("application/json"));
        assert!(is_media_type("text/plain; charset=utf-8"));
        assert!(!is_media_type("json"));
        assert!(!is_media_type("a/b/c"));
        assert!(!is_media_type("a /b"));
    }
}
