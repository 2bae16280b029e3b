//! The integrity of a message on its way in: required Ed25519 signatures ([`SignaturePolicy`])
//! and personal data named by `governance.pii` ([`PiiPolicy`], [`redact_for_log`]).
//!
//! Both are pure helpers; `pipeline::signature` and `pipeline::redact` call them as steps of
//! the ingress pipeline, and the server builds the policies from its `signatures` and `pii`
//! configuration sections.
//!
//! # Signatures
//!
//! A signature covers the canonical JSON of the envelope without `signature`, `hops`, `attempt`
//! and `governance.approval_id` (see `ace_envelope::canonical`), so a signed message stays
//! verifiable after forwards, redeliveries and its release by an approval. The rules, in the
//! order they are checked (each refusal is also a `denied` ledger entry naming the problem):
//!
//! 1. A **signed envelope without `source`** is refused, whatever its subject or key: ingress
//!    stamps a missing `source` with the sender, and `source` is inside the signed bytes, so the
//!    stored message would carry a signature the server itself broke. The signer must set
//!    `source` before signing.
//! 2. An envelope whose subject matches a pattern of `signatures.require` must carry a signature
//!    by a **registered** key id that verifies: a missing signature, an unknown key id and a
//!    signature that does not verify (wrong key, changed content, another `alg`) are each refused
//!    `UNAUTHENTICATED`, naming the pattern.
//! 3. On any other subject a signature by a registered key is verified all the same, and a bad
//!    one is refused: a registered key id is a claim the server can check, so a false one is
//!    never stored.
//! 4. On any other subject a signature by a key id this server does not know passes unchecked:
//!    it may be meant for a receiver that knows the key (end-to-end), and the subject asks for no
//!    guarantee. The server vouches for nothing there; receivers verify themselves.
//!
//! The server's own messages (internal requests) are not checked: it holds no signing key, and it
//! re-publishes held or dead-lettered envelopes whose transit headers change.
//!
//! # Personal data
//!
//! `governance.pii` names payload fields holding personal data. Each name is either
//!
//! - a JSON pointer into the payload (RFC 6901, starting with `/`: `/customer/email`,
//!   `/items/0/name`), or
//! - a dotted path, optionally starting with `payload.` (`email`, `customer.email`,
//!   `payload.customer.email`), where a number indexes an array and `*` stands for every member
//!   of an object or every element of an array (`items.*.name`).
//!
//! A name *matches* when it reaches at least one value of the payload, or when a `*` of it
//! walks over an empty array or object (there is no member to hold personal data). A name that
//! matches nothing is never taken as "nothing to redact": the sender said personal data is
//! there, so a mistyped path (`custmer.email`, `Email`, `/customer/emial`) would otherwise let
//! the real field through untouched. Hence:
//!
//! - [`redact_for_log`] (or [`LogSafe`] as a log field) is the form of an envelope every log
//!   line uses — the core logs each admitted and each refused envelope at debug level through
//!   it: each named field replaced by `"[REDACTED]"`; the inline payload replaced whole when any
//!   name matches nothing (the field it meant cannot be found, so no part of the payload is
//!   known to be safe) or when the payload is not JSON and names fields (its fields cannot be
//!   found).
//! - With `pii.redact_stored`, [`PiiPolicy::apply`] also replaces the named fields of the stored
//!   payload (after contract validation, so the contract judged what the sender sent; every
//!   later step — policy, held approvals, the bus and the ledger's `content_sha256` — sees the
//!   redacted payload). It refuses (`INVALID_REQUEST` on `governance.pii`), rather than skips,
//!   what it cannot honour: a name that matches nothing in the inline JSON payload (the
//!   refusal names each such path; nothing is stored), a signed envelope whose named fields
//!   are present (redacting would break the signature, and skipping would let any sender opt
//!   out of redaction by signing), and a non-JSON inline payload naming fields. Content held
//!   by reference (`payload_ref`, no inline payload) is not held here and passes.

use std::collections::BTreeMap;
use std::fmt;

use ace_envelope::{Envelope, EnvelopeError, SubjectPattern};
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::Value;

/// What replaces a personal-data field in logs (and, by default, in stored payloads).
pub const REDACTED: &str = "[REDACTED]";

/// The signature and personal-data policies a [`Core`](crate::Core) applies to every message
/// from outside ([`Core::with_integrity`](crate::Core::with_integrity)). The default registers
/// no key and requires no signature (rule 1 still holds) and stores payloads as sent.
#[derive(Debug, Clone, Default)]
pub struct Integrity {
    /// Registered keys and the subjects that require a signature.
    pub signatures: SignaturePolicy,
    /// Redaction of stored personal data.
    pub pii: PiiPolicy,
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The subject requires a signature and the envelope carries none.
    Missing,
    /// The subject requires a signature by a registered key and this key id is not one.
    UnknownKey {
        /// The envelope's `signature.key_id`.
        key_id: String,
    },
    /// The signature does not verify with the registered key of its key id.
    BadSignature {
        /// The envelope's `signature.key_id`.
        key_id: String,
        /// What the verification said.
        reason: String,
    },
    /// The envelope is signed but has no `source`, which ingress would stamp (changing the
    /// signed bytes).
    NoSource,
}

impl SignatureProblem {
    /// A stable one-word name (`missing`, `unknown_key`, `bad_signature`, `no_source`) for
    /// error details.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureProblem::Missing => "missing",
            SignatureProblem::UnknownKey { .. } => "unknown_key",
            SignatureProblem::BadSignature { .. } => "bad_signature",
            SignatureProblem::NoSource => "no_source",
        }
    }

    fn key_id(&self) -> Option<&str> {
        match self {
            SignatureProblem::UnknownKey { key_id }
            | SignatureProblem::BadSignature { key_id, .. } => Some(key_id),
            SignatureProblem::Missing | SignatureProblem::NoSource => None,
        }
    }
}

/// A signature refused by [`SignaturePolicy::check`]; answered `UNAUTHENTICATED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SignatureError {
    /// The envelope's subject.
    pub subject: String,
    /// The pattern of `signatures.require` the subject matched, if any.
    pub pattern: Option<String>,
    /// What is wrong.
    pub problem: SignatureProblem,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            SignatureProblem::Missing => write!(f, "signature missing")?,
            SignatureProblem::UnknownKey { key_id } => write!(
                f,
                "signature key id `{key_id}` is not a key registered on this server"
            )?,
            SignatureProblem::BadSignature { key_id, reason } => write!(
                f,
                "signature by key `{key_id}` does not verify ({reason}): the envelope changed \
                 after signing or another key signed it"
            )?,
            SignatureProblem::NoSource => write!(
                f,
                "the envelope is signed but has no `source`: the server stamps a missing source \
                 with the sender, which changes the signed bytes, so the signer must set \
                 `source` before signing"
            )?,
        }
        match &self.pattern {
            Some(pattern) => write!(
                f,
                "; subject `{}` requires a signature by a registered key (signatures.require \
                 pattern `{pattern}`)",
                self.subject
            ),
            None => Ok(()),
        }
    }
}

impl SignatureError {
    /// Structured details for the error body.
    pub fn details(&self) -> Value {
        serde_json::json!({
            "subject": self.subject,
            "pattern": self.pattern,
            "problem": self.problem.as_str(),
            "key_id": self.problem.key_id(),
        })
    }
}

/// What [`SignaturePolicy::check`] found on an envelope it let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No signature, and none required.
    Unsigned,
    /// Signed by this registered key, and it verifies.
    Verified {
        /// The key id.
        key_id: String,
    },
    /// Signed by a key id this server does not know, on a subject that requires nothing:
    /// passed unchecked (rule 4 of the module documentation).
    Unchecked {
        /// The key id.
        key_id: String,
    },
}

/// The registered public keys and the subjects that require a signature by one of them.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    keys: BTreeMap<String, VerifyingKey>,
    require: Vec<SubjectPattern>,
}

impl SignaturePolicy {
    /// A policy over these keys (by key id) requiring a signature on subjects matching any of
    /// `require`.
    pub fn new(
        keys: impl IntoIterator<Item = (String, VerifyingKey)>,
        require: Vec<SubjectPattern>,
    ) -> Self {
        SignaturePolicy {
            keys: keys.into_iter().collect(),
            require,
        }
    }

    /// The first pattern of `require` that `subject` matches.
    pub fn required_by(&self, subject: &str) -> Option<&SubjectPattern> {
        self.require.iter().find(|p| p.matches(subject))
    }

    /// The registered key ids, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Judges `envelope` by the rules of the module documentation. `source_stamped` says that
    /// ingress gave it the sender as `source` (it had none).
    pub fn check(
        &self,
        envelope: &Envelope,
        source_stamped: bool,
    ) -> Result<SignatureCheck, SignatureError> {
        let pattern = self.required_by(&envelope.subject);
        let refuse = |problem| SignatureError {
            subject: envelope.subject.clone(),
            pattern: pattern.map(|p| p.as_str().to_owned()),
            problem,
        };
        let Some(signature) = &envelope.signature else {
            return match pattern {
                Some(_) => Err(refuse(SignatureProblem::Missing)),
                None => Ok(SignatureCheck::Unsigned),
            };
        };
        if source_stamped {
            return Err(refuse(SignatureProblem::NoSource));
        }
        let key_id = signature.key_id.clone();
        let Some(key) = self.keys.get(&key_id) else {
            return match pattern {
                Some(_) => Err(refuse(SignatureProblem::UnknownKey { key_id })),
                None => Ok(SignatureCheck::Unchecked { key_id }),
            };
        };
        match envelope.verify(key) {
            Ok(()) => Ok(SignatureCheck::Verified { key_id }),
            Err(err) => {
                let reason = match err {
                    EnvelopeError::BadSignature { reason, .. } => reason,
                    other => other.to_string(),
                };
                Err(refuse(SignatureProblem::BadSignature { key_id, reason }))
            }
        }
    }
}

/// A key file that could not be read as an Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 {what} key: {reason}")]
pub struct KeyError {
    /// `public` or `private`.
    pub what: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410): SEQUENCE, algorithm
/// `1.3.101.112`, BIT STRING of 33 bytes; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The DER prefix of an Ed25519 PKCS#8 v1 `PrivateKeyInfo` (RFC 8410, as `openssl genpkey
/// -algorithm ed25519` writes it): version 0, algorithm `1.3.101.112`, an OCTET STRING holding
/// the 32-byte seed as an OCTET STRING.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The 32 raw bytes of a key file: a PEM block labelled `label` whose DER is `prefix` and the
/// key, or the raw bytes as 64 hex digits or base64 (standard or URL-safe, padded or not).
fn key_bytes(
    text: &str,
    label: &str,
    prefix: &[u8],
    what: &'static str,
) -> Result<[u8; 32], KeyError> {
    let bad = |reason: String| KeyError { what, reason };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("the key file is empty".to_owned()));
    }
    let begin = format!("-----BEGIN {label}-----");
    let raw: Vec<u8> = if text.starts_with("-----BEGIN") {
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != begin)
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err(bad(format!("no `{begin}` block")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| bad(format!("the PEM body is not base64: {e}")))?;
        match der.strip_prefix(prefix) {
            Some(key) if key.len() == 32 => key.to_vec(),
            _ => {
                return Err(bad(format!(
                    "the {label} block is not an Ed25519 key (OID 1.3.101.112, RFC 8410)"
                )));
            }
        }
    } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| bad(format!("bad hex: {e}")))?
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| {
                bad(format!(
                    "expected a PEM {label} block, 64 hex digits or base64"
                ))
            })?
    };
    raw.as_slice()
        .try_into()
        .map_err(|_| bad(format!("the key is {} bytes, not 32", raw.len())))
}

/// Reads an Ed25519 public key from the text of a key file: a PEM `PUBLIC KEY` block (RFC 8410
/// `SubjectPublicKeyInfo`, as `openssl pkey -pubout` writes it), or the raw 32 bytes as 64 hex
/// digits or as base64 (standard or URL-safe, padded or not). Surrounding whitespace is ignored.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = key_bytes(text, "PUBLIC KEY", &ED25519_SPKI_PREFIX, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError {
        what: "public",
        reason: e.to_string(),
    })
}

/// Reads an Ed25519 signing key from the text of a key file: a PEM `PRIVATE KEY` block (RFC 8410
/// PKCS#8, as `openssl genpkey -algorithm ed25519` writes it), or the 32-byte seed as 64 hex
/// digits or as base64.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, KeyError> {
    key_bytes(text, "PRIVATE KEY", &ED25519_PKCS8_PREFIX, "private")
        .map(|seed| SigningKey::from_bytes(&seed))
}

/// Personal data in stored payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiPolicy {
    /// Replace the fields named by `governance.pii` in the payload before it is stored.
    pub redact_stored: bool,
    /// What replaces each field in a stored payload.
    pub replacement: String,
}

impl Default for PiiPolicy {
    fn default() -> Self {
        PiiPolicy {
            redact_stored: false,
            replacement: REDACTED.to_owned(),
        }
    }
}

/// Why [`PiiPolicy::apply`] refused an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The envelope is signed and holds named personal data: redacting would break the signature.
    #[error(
        "names personal data present in the payload ({}) and the envelope is signed: this server \
         redacts personal data before storing it (pii.redact_stored), which would break the \
         signature; send it unsigned, or keep personal data out of signed messages",
        fields.join(", ")
    )]
    Signed {
        /// The named fields found in the payload.
        fields: Vec<String>,
    },
    /// Names in `governance.pii` that match nothing in the inline JSON payload.
    #[error(
        "names personal data at {} but the payload has nothing there: this server redacts \
         personal data before storing it (pii.redact_stored) and does not store a payload whose \
         named personal data it cannot find; correct the path (a JSON pointer like \
         /customer/email, or a dotted path like customer.email or items.*.name)",
        fields.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
    )]
    NoMatch {
        /// The names that matched nothing, in the envelope's order.
        fields: Vec<String>,
    },
    /// The inline payload is not JSON, so named fields cannot be found in it.
    #[error(
        "names personal data fields but the payload is `{content_type}`, not JSON: this server \
         redacts personal data before storing it (pii.redact_stored) and cannot find fields \
         there; send the personal data by `payload_ref` or as JSON"
    )]
    NotJson {
        /// The envelope's content type.
        content_type: String,
    },
}

impl PiiPolicy {
    /// With `redact_stored`, replaces each field `governance.pii` names in the inline JSON
    /// payload by [`PiiPolicy::replacement`]; answers how many values were replaced. A name
    /// that matches nothing is [`RedactError::NoMatch`] (module docs). Referenced content
    /// (`payload_ref`) is not held here and is left alone.
    pub fn apply(&self, envelope: &mut Envelope) -> Result<usize, RedactError> {
        if !self.redact_stored || envelope.governance.pii.is_empty() {
            return Ok(0);
        }
        let Some(payload) = &envelope.payload else {
            return Ok(0);
        };
        if !envelope.has_json_payload() {
            return Err(RedactError::NotJson {
                content_type: envelope.content_type.clone(),
            });
        }
        let mut redacted = payload.clone();
        let replacement = Value::String(self.replacement.clone());
        let mut found = Vec::new();
        let mut unmatched = Vec::new();
        let mut count = 0;
        for field in &envelope.governance.pii {
            let hit = redact_found(&mut redacted, field, &replacement);
            if !hit.matched() {
                unmatched.push(field.clone());
            }
            if hit.values > 0 {
                found.push(field.clone());
                count += hit.values;
            }
        }
        if !unmatched.is_empty() {
            return Err(RedactError::NoMatch { fields: unmatched });
        }
        if count == 0 {
            return Ok(0);
        }
        if envelope.signature.is_some() {
            return Err(RedactError::Signed { fields: found });
        }
        envelope.payload = Some(redacted);
        Ok(count)
    }
}

/// One step of a field path.
enum Step {
    /// An object key, or an array index when it is a number.
    Key(String),
    /// Every member or element (dotted paths only).
    Every,
}

fn steps(field: &str) -> Vec<Step> {
    if let Some(pointer) = field.strip_prefix('/') {
        return pointer
            .split('/')
            .map(|s| Step::Key(s.replace("~1", "/").replace("~0", "~")))
            .collect();
    }
    field
        .strip_prefix("payload.")
        .unwrap_or(field)
        .split('.')
        .map(|s| match s {
            "*" => Step::Every,
            key => Step::Key(key.to_owned()),
        })
        .collect()
}

/// Replaces every value at `field` (a JSON pointer or dotted path, see the module
/// documentation) inside `payload` by `replacement`; answers how many were replaced.
pub fn redact_field(payload: &mut Value, field: &str, replacement: &Value) -> usize {
    redact_found(payload, field, replacement).values
}

/// Whether `field` matches in `payload` (module docs: it reaches a value, or a `*` of it walks
/// over an empty array or object).
pub fn pii_field_matches(payload: &Value, field: &str) -> bool {
    // The walk replaces what it reaches, so it runs on a copy; this is asked only where the
    // answer decides a refusal or a log line, never per delivery.
    let mut copy = payload.clone();
    redact_found(&mut copy, field, &Value::Null).matched()
}

/// What one name found in a payload.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    /// Values replaced.
    values: usize,
    /// A `*` walked over an empty array or object.
    empty_wildcard: bool,
}

impl Found {
    fn matched(self) -> bool {
        self.values > 0 || self.empty_wildcard
    }

    fn add(self, other: Found) -> Found {
        Found {
            values: self.values + other.values,
            empty_wildcard: self.empty_wildcard || other.empty_wildcard,
        }
    }
}

fn redact_found(payload: &mut Value, field: &str, replacement: &Value) -> Found {
    redact_at(payload, &steps(field), replacement)
}

fn redact_at(value: &mut Value, path: &[Step], replacement: &Value) -> Found {
    let Some((step, rest)) = path.split_first() else {
        *value = replacement.clone();
        return Found {
            values: 1,
            empty_wildcard: false,
        };
    };
    let empty = Found {
        values: 0,
        empty_wildcard: true,
    };
    match (step, value) {
        (Step::Every, Value::Object(map)) if map.is_empty() => empty,
        (Step::Every, Value::Array(items)) if items.is_empty() => empty,
        (Step::Every, Value::Object(map)) => map
            .values_mut()
            .map(|v| redact_at(v, rest, replacement))
            .fold(Found::default(), Found::add),
        (Step::Every, Value::Array(items)) => items
            .iter_mut()
            .map(|v| redact_at(v, rest, replacement))
            .fold(Found::default(), Found::add),
        (Step::Key(key), Value::Object(map)) => map
            .get_mut(key)
            .map_or_else(Found::default, |v| redact_at(v, rest, replacement)),
        (Step::Key(key), Value::Array(items)) => key
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get_mut(i))
            .map_or_else(Found::default, |v| redact_at(v, rest, replacement)),
        _ => Found::default(),
    }
}

/// The envelope as every log line shows it: its JSON with each field `governance.pii` names
/// replaced by [`REDACTED`]; the inline payload is replaced whole when it is not JSON or when
/// a name matches nothing in it (module docs: the field meant cannot be found).
pub fn redact_for_log(envelope: &Envelope) -> Value {
    let mut value = serde_json::to_value(envelope).unwrap_or(Value::Null);
    if envelope.governance.pii.is_empty() {
        return value;
    }
    if let Some(payload) = value.get_mut("payload") {
        let replacement = Value::String(REDACTED.to_owned());
        let mut all_matched = envelope.has_json_payload();
        if all_matched {
            for field in &envelope.governance.pii {
                all_matched &= redact_found(payload, field, &replacement).matched();
            }
        }
        if !all_matched {
            *payload = replacement;
        }
    }
    value
}

/// Displays an envelope as compact JSON through [`redact_for_log`], for log fields:
/// `tracing::debug!(envelope = %LogSafe(&envelope), ...)` (computed only when the line is
/// enabled).
#[derive(Debug, Clone, Copy)]
pub struct LogSafe<'a>(pub &'a Envelope);

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redact_for_log(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, Source, SourceType};
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn envelope(subject: &str) -> Envelope {
        let mut env = Envelope::builder(Kind::Event, subject)
            .payload_json(json!({"customer": {"email": "ada@example.org", "tier": "gold"}}))
            .build()
            .expect("valid");
        env.source = Some(Source::new(SourceType::Service, "billing"));
        env
    }

    fn policy() -> SignaturePolicy {
        SignaturePolicy::new(
            [("k1".to_owned(), key(1).verifying_key())],
            vec![SubjectPattern::new("ace.comms.http.*.*.cmd.>").unwrap()],
        )
    }

    const REQUIRED: &str = "ace.comms.http.service.pay.cmd.refund.v1";
    const FREE: &str = "ace.comms.http.service.pay.evt.done.v1";

    #[test]
    fn given_a_required_subject_when_unsigned_then_missing_names_the_pattern() {
        let err = policy().check(&envelope(REQUIRED), false).unwrap_err();
        assert_eq!(err.problem, SignatureProblem::Missing);
        assert_eq!(err.pattern.as_deref(), Some("ace.comms.http.*.*.cmd.>"));
        assert!(
            err.to_string().contains("ace.comms.http.*.*.cmd.>"),
            "{err}"
        );
        assert_eq!(err.details()["problem"], "missing");
    }

    #[test]
    fn given_a_required_subject_when_signed_by_a_registered_key_then_it_is_verified() {
        let mut env = envelope(REQUIRED);
        env.sign(&key(1), "k1");
        assert_eq!(
            policy().check(&env, false).unwrap(),
            SignatureCheck::Verified {
                key_id: "k1".into()
            }
        );
    }

    #[test]
    fn given_a_required_subject_when_signed_by_an_unknown_key_then_unknown_key() {
        let mut env = envelope(REQUIRED);
        env.sign(&key(2), "k2");
        let err = policy().check(&env, false).unwrap_err();
        assert_eq!(
            err.problem,
            SignatureProblem::UnknownKey {
                key_id: "k2".into()
            }
        );
        assert!(err.to_string().contains("`k2`"), "{err}");
    }

    #[test]
    fn given_a_signed_envelope_when_the_payload_changes_then_bad_signature() {
        let mut env = envelope(REQUIRED);
        env.sign(&key(1), "k1");
        env.payload = Some(json!({"customer": {"email": "eve@example.org"}}));
        let err = policy().check(&env, false).unwrap_err();
        assert_eq!(err.problem.as_str(), "bad_signature");
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    #[test]
    fn given_a_registered_key_id_signed_by_another_key_when_checked_then_bad_signature() {
        let mut env = envelope(FREE);
        env.sign(&key(9), "k1");
        let err = policy().check(&env, false).unwrap_err();
        assert_eq!(err.problem.as_str(), "bad_signature");
        assert_eq!(err.pattern, None, "not a required subject");
    }

    #[test]
    fn given_a_free_subject_when_unsigned_or_signed_by_an_unknown_key_then_it_passes() {
        let policy = policy();
        assert_eq!(
            policy.check(&envelope(FREE), false).unwrap(),
            SignatureCheck::Unsigned
        );
        let mut env = envelope(FREE);
        env.sign(&key(2), "elsewhere");
        assert_eq!(
            policy.check(&env, false).unwrap(),
            SignatureCheck::Unchecked {
                key_id: "elsewhere".into()
            }
        );
    }

    #[test]
    fn given_a_signed_envelope_whose_source_was_stamped_when_checked_then_no_source() {
        let mut env = envelope(FREE);
        env.source = None;
        env.sign(&key(1), "k1");
        env.source = Some(Source::new(SourceType::Service, "stamped"));
        let err = policy().check(&env, true).unwrap_err();
        assert_eq!(err.problem, SignatureProblem::NoSource);
        assert!(err.to_string().contains("must set `source`"), "{err}");
    }

    #[test]
    fn given_key_files_in_each_format_when_parsed_then_they_give_the_same_key() {
        let public = key(5).verifying_key();
        let raw = public.to_bytes();
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&raw);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let forms = [
            pem,
            hex::encode(raw),
            format!(
                "  {}\n",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        ];
        for form in forms {
            assert_eq!(parse_public_key(&form).unwrap(), public, "{form}");
        }
    }

    #[test]
    fn given_bad_key_files_when_parsed_then_the_error_says_why() {
        let cases = [
            ("", "empty"),
            ("not a key", "expected a PEM"),
            ("AAAA", "3 bytes, not 32"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                "no `-----BEGIN PUBLIC KEY-----`",
            ),
            // an RSA-sized body: not the Ed25519 SPKI prefix
            (
                "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VxAyEAAAAA\n-----END PUBLIC KEY-----",
                "not an Ed25519",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_public_key(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn given_a_private_key_file_when_parsed_then_it_signs_for_its_public_key() {
        let seed = [6u8; 32];
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        for form in [pem, hex::encode(seed)] {
            let signing = parse_signing_key(&form).unwrap();
            assert_eq!(signing.verifying_key(), key(6).verifying_key(), "{form}");
        }
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD
                .encode([&ED25519_SPKI_PREFIX[..], &key(6).verifying_key().to_bytes()].concat())
        );
        let err = parse_signing_key(&public_pem).unwrap_err().to_string();
        assert!(err.contains("not an Ed25519 private key"), "{err}");
        assert!(
            err.contains("no `-----BEGIN PRIVATE KEY-----` block"),
            "{err}"
        );
    }

    fn pii_envelope(pii: &[&str]) -> Envelope {
        let mut env = envelope(FREE);
        env.payload = Some(json!({
            "email": "ada@example.org",
            "customer": {"phone": "+44 20 7946 0000", "tier": "gold"},
            "items": [{"name": "Ada Lovelace", "sku": 1}, {"name": "Charles Babbage", "sku": 2}],
            "a/b": "slash-key"
        }));
        env.governance.pii = pii.iter().map(|s| (*s).to_owned()).collect();
        env
    }

    #[test]
    fn given_each_field_syntax_when_redacted_for_log_then_only_those_values_are_replaced() {
        let env = pii_envelope(&[
            "email",
            "payload.customer.phone",
            "/items/0/name",
            "items.*.name",
            "/a~1b",
        ]);
        let logged = redact_for_log(&env);
        let payload = &logged["payload"];
        assert_eq!(payload["email"], REDACTED);
        assert_eq!(payload["customer"]["phone"], REDACTED);
        assert_eq!(payload["customer"]["tier"], "gold");
        assert_eq!(payload["items"][0]["name"], REDACTED);
        assert_eq!(payload["items"][1]["name"], REDACTED);
        assert_eq!(payload["items"][1]["sku"], 2);
        assert_eq!(payload["a/b"], REDACTED);
        assert_eq!(logged["id"], env.id.to_string(), "the rest is kept");
        let text = LogSafe(&env).to_string();
        for secret in [
            "ada@example.org",
            "7946",
            "Lovelace",
            "Babbage",
            "slash-key",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(
            env.payload.as_ref().unwrap()["email"],
            "ada@example.org",
            "the envelope itself is untouched"
        );
    }

    #[test]
    fn given_a_pii_path_matching_nothing_when_logged_then_the_whole_payload_is_hidden() {
        // `customer.phone` spelled wrong: the phone number must not reach the log.
        let env = pii_envelope(&["email", "customer.phon"]);
        let logged = redact_for_log(&env);
        assert_eq!(logged["payload"], REDACTED);
        assert_eq!(
            logged["governance"]["pii"],
            json!(["email", "customer.phon"])
        );
        let text = LogSafe(&env).to_string();
        for secret in ["ada@example.org", "7946", "Lovelace"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let fixed = pii_envelope(&["email", "customer.phone"]);
        assert_eq!(
            redact_for_log(&fixed)["payload"]["customer"]["tier"],
            "gold"
        );
    }

    #[test]
    fn given_paths_when_matched_then_a_wildcard_over_nothing_matches_and_a_typo_does_not() {
        let payload = json!({"items": [], "tags": {}, "people": [{"sku": 1}], "n": 3});
        assert!(pii_field_matches(&payload, "items.*.name"), "empty array");
        assert!(pii_field_matches(&payload, "tags.*"), "empty object");
        assert!(pii_field_matches(&payload, "n"));
        assert!(
            !pii_field_matches(&payload, "people.*.name"),
            "members lack it"
        );
        assert!(
            !pii_field_matches(&payload, "/n/0"),
            "a number has no members"
        );
        assert!(!pii_field_matches(&payload, "N"), "keys are case-sensitive");
        assert!(!pii_field_matches(&payload, "/items/0"), "no element 0");
    }

    #[test]
    fn given_redact_stored_and_a_path_matching_nothing_when_applied_then_each_such_path_is_named() {
        let policy = PiiPolicy {
            redact_stored: true,
            ..PiiPolicy::default()
        };
        let mut env = pii_envelope(&["email", "custmer.phone", "/items/0/nmae"]);
        let before = env.clone();
        let err = policy.apply(&mut env).unwrap_err();
        assert_eq!(
            err,
            RedactError::NoMatch {
                fields: vec!["custmer.phone".into(), "/items/0/nmae".into()]
            }
        );
        assert!(
            err.to_string()
                .starts_with("names personal data at `custmer.phone`, `/items/0/nmae` but"),
            "{err}"
        );
        assert_eq!(env, before, "nothing redacted, nothing half-done");
        let mut empty = pii_envelope(&["email"]);
        empty.payload = Some(json!({"email": "e@x", "items": []}));
        empty.governance.pii.push("items.*.name".into());
        assert_eq!(
            policy.apply(&mut empty).unwrap(),
            1,
            "an empty list hides no one"
        );
    }

    #[test]
    fn given_a_non_json_payload_naming_pii_when_logged_then_the_whole_payload_is_hidden() {
        let mut env = pii_envelope(&["email"]);
        env.content_type = "application/octet-stream".into();
        env.payload = Some(json!("YWRhQGV4YW1wbGUub3Jn"));
        assert_eq!(redact_for_log(&env)["payload"], REDACTED);
        env.governance.pii.clear();
        assert_eq!(redact_for_log(&env)["payload"], "YWRhQGV4YW1wbGUub3Jn");
    }

    #[test]
    fn given_redact_stored_when_applied_then_the_payload_is_redacted_with_the_replacement() {
        let policy = PiiPolicy {
            redact_stored: true,
            replacement: "<pii>".into(),
        };
        let mut env = pii_envelope(&["email", "items.*.name"]);
        assert_eq!(policy.apply(&mut env).unwrap(), 3);
        let payload = env.payload.as_ref().unwrap();
        assert_eq!(payload["email"], "<pii>");
        assert_eq!(payload["items"][1]["name"], "<pii>");
        assert_eq!(payload["customer"]["phone"], "+44 20 7946 0000");
    }

    #[test]
    fn given_redact_stored_off_when_applied_then_nothing_changes() {
        let mut env = pii_envelope(&["email"]);
        let before = env.clone();
        assert_eq!(PiiPolicy::default().apply(&mut env).unwrap(), 0);
        assert_eq!(env, before);
    }

    #[test]
    fn given_a_signed_envelope_with_present_pii_when_redacting_stored_then_it_is_refused() {
        let policy = PiiPolicy {
            redact_stored: true,
            ..PiiPolicy::default()
        };
        let mut env = pii_envelope(&["email", "items.*.name"]);
        env.sign(&key(1), "k1");
        let before = env.clone();
        let err = policy.apply(&mut env).unwrap_err();
        assert_eq!(
            err,
            RedactError::Signed {
                fields: vec!["email".into(), "items.*.name".into()]
            }
        );
        assert!(err.to_string().contains("break the signature"), "{err}");
        assert_eq!(env, before, "nothing changed");
        // A signed envelope naming only an empty list has nothing to redact and stays signed.
        let mut nothing_there = pii_envelope(&["list.*"]);
        nothing_there.payload = Some(json!({"list": []}));
        nothing_there.sign(&key(1), "k1");
        assert_eq!(
            policy.apply(&mut nothing_there).unwrap(),
            0,
            "nothing to redact"
        );
        nothing_there.verify(&key(1).verifying_key()).unwrap();
        // A signed envelope naming an absent field is refused for the path, not passed.
        let mut absent = pii_envelope(&["absent"]);
        absent.sign(&key(1), "k1");
        assert_eq!(
            policy.apply(&mut absent).unwrap_err(),
            RedactError::NoMatch {
                fields: vec!["absent".into()]
            }
        );
    }

    #[test]
    fn given_a_non_json_payload_naming_pii_when_redacting_stored_then_it_is_refused() {
        let policy = PiiPolicy {
            redact_stored: true,
            ..PiiPolicy::default()
        };
        let mut env = pii_envelope(&["email"]);
        env.content_type = "application/octet-stream".into();
        env.payload = Some(json!("AAAA"));
        let err = policy.apply(&mut env).unwrap_err();
        assert!(
            err.to_string().contains("application/octet-stream"),
            "{err}"
        );
    }
}

/// The two steps inside [`Core`](crate::Core)'s pipeline, over the real embedded engine: what
/// is refused, what is stored, and what reaches the log.
#[cfg(test)]
mod pipeline_tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use ace_bus::{EmbeddedBus, EmbeddedConfig, StreamConfig};
    use ace_contracts::Registry;
    use ace_envelope::{ErrorCode, Kind, Source, SourceType, SubjectPattern, SystemClock};
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    use super::*;
    use crate::{Core, CoreLimits, Hooks, RequestContext};

    const REQUIRED: &str = "ace.comms.http.service.pay.cmd.refund.v1";
    const FREE: &str = "ace.comms.http.service.pay.evt.done.v1";
    const SECRET: &str = "ada.lovelace@example.org";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[4; 32])
    }

    async fn core(dir: &std::path::Path, redact_stored: bool) -> Core {
        core_with(dir, redact_stored, Hooks::development()).await
    }

    async fn core_with(dir: &std::path::Path, redact_stored: bool, hooks: Hooks) -> Core {
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("bus opens");
        let core = Core::new(
            Arc::new(bus),
            Arc::new(Registry::embedded().expect("contracts load")),
            Arc::new(SystemClock),
            hooks,
            CoreLimits::default(),
        )
        .with_integrity(Integrity {
            signatures: SignaturePolicy::new(
                [("k1".to_owned(), key().verifying_key())],
                vec![SubjectPattern::new("ace.comms.*.*.*.cmd.>").unwrap()],
            ),
            pii: PiiPolicy {
                redact_stored,
                ..PiiPolicy::default()
            },
        });
        core.add_stream(&ctx(), StreamConfig::new("PAY", &["ace.comms.http.>"]))
            .await
            .expect("stream");
        core
    }

    fn ctx() -> RequestContext {
        RequestContext::new("test")
    }

    fn envelope(subject: &str) -> Envelope {
        let mut env = Envelope::builder(Kind::Event, subject)
            .payload_json(json!({"email": SECRET, "amount": 12}))
            .build()
            .expect("valid");
        env.governance.pii = vec!["email".into()];
        env
    }

    fn signed(subject: &str) -> Envelope {
        let mut env = envelope(subject);
        env.source = Some(Source::new(SourceType::Service, "billing"));
        env.sign(&key(), "k1");
        env
    }

    #[tokio::test]
    async fn given_a_required_subject_when_publishing_then_only_a_valid_signature_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), false).await;
        let err = core.publish(&ctx(), envelope(REQUIRED)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
        assert_eq!(err.body().error.details["pattern"], "ace.comms.*.*.*.cmd.>");
        let mut tampered = signed(REQUIRED);
        tampered.payload = Some(json!({"email": SECRET, "amount": 12_000}));
        let err = core.publish(&ctx(), tampered).await.unwrap_err();
        assert_eq!(err.body().error.details["problem"], "bad_signature");
        let good = signed(REQUIRED);
        let accepted = core.publish(&ctx(), good.clone()).await.expect("accepted");
        assert_eq!(accepted.seq, Some(1), "the refused ones appended nothing");
        let stored = core.get_message(&ctx(), "PAY", 1).await.unwrap().envelope;
        assert_eq!(stored.signature, good.signature);
        stored
            .verify(&key().verifying_key())
            .expect("still verifies");
    }

    #[tokio::test]
    async fn given_a_signed_envelope_without_source_when_publishing_then_the_signer_is_told_to_set_it()
     {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), false).await;
        let mut env = envelope(FREE);
        env.sign(&key(), "k1");
        let err = core.publish(&ctx(), env).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
        assert!(err.to_string().contains("must set `source`"), "{err}");
    }

    #[tokio::test]
    async fn given_redact_stored_when_publishing_then_the_stored_payload_is_redacted_unless_signed()
    {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), true).await;
        core.publish(&ctx(), envelope(FREE))
            .await
            .expect("accepted");
        let stored = core.get_message(&ctx(), "PAY", 1).await.unwrap().envelope;
        let payload = stored.payload.expect("payload");
        assert_eq!(payload["email"], REDACTED);
        assert_eq!(payload["amount"], 12);
        let err = core.publish(&ctx(), signed(FREE)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert!(err.to_string().contains("governance.pii"), "{err}");
    }

    #[tokio::test]
    async fn given_redact_stored_and_a_pii_path_matching_nothing_when_publishing_then_400_names_it_and_nothing_is_stored()
     {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), true).await;
        let mut mistyped = envelope(FREE);
        mistyped.governance.pii = vec!["e-mail".into()];
        let err = core.publish(&ctx(), mistyped).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        let text = err.to_string();
        assert!(text.contains("governance.pii"), "{text}");
        assert!(text.contains("`e-mail`"), "{text}");
        assert!(
            core.get_message(&ctx(), "PAY", 1).await.is_err(),
            "nothing stored"
        );
    }

    /// A recorder keeping every entry in memory.
    #[derive(Debug, Default)]
    struct Kept(Mutex<Vec<ace_ledger::NewEntry>>);

    #[async_trait::async_trait]
    impl crate::Recorder for Kept {
        async fn record(&self, entries: Vec<ace_ledger::NewEntry>) -> Result<(), crate::CoreError> {
            self.0.lock().expect("not poisoned").extend(entries);
            Ok(())
        }
    }

    #[tokio::test]
    async fn given_redact_stored_when_accepted_then_the_ledger_hashes_the_redacted_payload() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Arc::new(Kept::default());
        let hooks = Hooks {
            recorder: kept.clone(),
            ..Hooks::development()
        };
        let core = core_with(dir.path(), true, hooks).await;
        let sent = envelope(FREE);
        core.publish(&ctx(), sent.clone()).await.expect("accepted");
        let stored = core.get_message(&ctx(), "PAY", 1).await.unwrap().envelope;
        let entries = kept.0.lock().unwrap().clone();
        let accepted = entries
            .iter()
            .find(|e| e.kind == ace_ledger::EntryKind::Accepted)
            .expect("an accepted entry");
        let hash_of = |env: &Envelope| {
            ace_ledger::NewEntry::for_envelope(ace_ledger::EntryKind::Accepted, "x", env)
                .content_sha256
        };
        assert_eq!(accepted.content_sha256, hash_of(&stored));
        assert_ne!(
            accepted.content_sha256,
            hash_of(&sent),
            "not the sent payload"
        );
    }

    #[tokio::test]
    async fn given_a_refused_signature_when_publishing_then_a_denied_entry_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Arc::new(Kept::default());
        let hooks = Hooks {
            recorder: kept.clone(),
            ..Hooks::development()
        };
        let core = core_with(dir.path(), false, hooks).await;
        let unsigned = envelope(REQUIRED);
        core.publish(&ctx(), unsigned.clone()).await.unwrap_err();
        let entries = kept.0.lock().unwrap().clone();
        let denied: Vec<_> = entries
            .iter()
            .filter(|e| e.kind == ace_ledger::EntryKind::Denied)
            .collect();
        assert_eq!(denied.len(), 1, "{entries:?}");
        let denied = denied[0];
        assert_eq!(denied.message_id, Some(unsigned.id.to_string()));
        assert_eq!(denied.decision, "deny: signature missing");
        assert_eq!(denied.details["pattern"], "ace.comms.*.*.*.cmd.>");
        assert_eq!(denied.details["transport"], "test");
    }

    /// A `MakeWriter` appending every log line to one shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn given_pii_fields_when_messages_are_admitted_or_refused_then_their_values_never_reach_the_log()
     {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        // With a single registered dispatcher, tracing-core judges a callsite first hit on
        // another thread (a parallel test) by that thread's default alone and caches "never".
        // A second, silent dispatcher makes every callsite ask each thread's own default.
        let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        tracing::callsite::rebuild_interest_cache();
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), false).await;
        let accepted = envelope(FREE);
        core.publish(&ctx(), accepted.clone())
            .await
            .expect("accepted");
        let mut unknown_schema = envelope(FREE);
        unknown_schema.schema = Some("no.such.schema@1.0.0".into());
        core.publish(&ctx(), unknown_schema).await.unwrap_err();
        core.publish(&ctx(), envelope(REQUIRED)).await.unwrap_err();
        core.publish_batch(&ctx(), vec![envelope(FREE), envelope(REQUIRED)])
            .await
            .expect("batch answered");
        // A mistyped path (redact_stored is off, so it is stored): the log still hides it.
        let mut mistyped = envelope(FREE);
        mistyped.governance.pii = vec!["e-mail".into()];
        core.publish(&ctx(), mistyped).await.expect("accepted");
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("message admitted").count(), 3, "{text}");
        assert_eq!(text.matches("message refused").count(), 3, "{text}");
        assert!(text.contains(&accepted.id.to_string()), "{text}");
        assert!(text.contains(REDACTED), "{text}");
        assert!(!text.contains(SECRET), "personal data logged:\n{text}");
        let stored = core.get_message(&ctx(), "PAY", 1).await.unwrap().envelope;
        assert_eq!(
            stored.payload.unwrap()["email"],
            SECRET,
            "kept in storage when redact_stored is off"
        );
    }
}
