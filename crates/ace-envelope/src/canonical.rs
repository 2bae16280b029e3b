//! Canonical JSON and Ed25519 signatures.
//!
//! The canonical form is RFC 8785 style: object keys sorted by their UTF-16 code units, no
//! whitespace, strings escaped as `serde_json` does (which matches RFC 8785 for every string),
//! numbers as `serde_json` writes them (identical to RFC 8785 for integers and for the floats
//! an envelope normally holds; exotic exponents such as `1e21` may be spelled differently).
//!
//! What is signed is the canonical form of the envelope **without** `signature`, `hops`,
//! `attempt` and `governance.approval_id`: the others change legitimately in transit (every
//! forward, every redelivery, and the release of a message a human approved, which the server
//! stamps with its approval id), and a signature must survive them. The approval id is the
//! server's statement, not the sender's: it is attested by the ledger, not by the signature.

use std::io::Write as _;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::envelope::{Envelope, Signature};
use crate::error::EnvelopeError;

/// Fields left out of the signed form.
pub const UNSIGNED_FIELDS: [&str; 3] = ["signature", "hops", "attempt"];

/// Fields of `governance` left out of the signed form.
pub const UNSIGNED_GOVERNANCE_FIELDS: [&str; 1] = ["approval_id"];

/// Writes `value` in canonical form.
pub fn to_canonical_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(&mut out, value);
    out
}

/// Appends the canonical form of `value` to `out` (what [`to_canonical_vec`] returns), so a
/// caller building a larger document writes it in place.
pub fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            if in_utf16_order(map.keys()) {
                // The map's own order is already canonical (always so for ASCII keys in
                // serde_json's sorted map): no list of entries to build and sort.
                write_entries(out, map.iter());
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                write_entries(out, entries.into_iter());
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        scalar => write_scalar(out, scalar),
    }
}

/// Whether `keys` come in increasing order of their UTF-16 code units.
fn in_utf16_order<'a>(keys: impl Iterator<Item = &'a String>) -> bool {
    let mut previous: Option<&String> = None;
    for key in keys {
        if let Some(previous) = previous
            && previous.encode_utf16().cmp(key.encode_utf16()) != std::cmp::Ordering::Less
        {
            return false;
        }
        previous = Some(key);
    }
    true
}

fn write_entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, item)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, key.as_str());
        out.push(b':');
        write_canonical(out, item);
    }
}

fn write_scalar(out: &mut Vec<u8>, scalar: &Value) {
    // Writing a scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, scalar);
    let _ = out.flush();
}

/// The bytes a signature covers: the canonical form without [`UNSIGNED_FIELDS`] and
/// [`UNSIGNED_GOVERNANCE_FIELDS`].
pub fn signing_bytes(envelope: &Envelope) -> Vec<u8> {
    let mut value = serde_json::to_value(envelope).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for field in UNSIGNED_FIELDS {
            map.remove(field);
        }
        if let Some(Value::Object(governance)) = map.get_mut("governance") {
            for field in UNSIGNED_GOVERNANCE_FIELDS {
                governance.remove(field);
            }
        }
    }
    to_canonical_vec(&value)
}

impl Envelope {
    /// The canonical JSON form of the whole envelope (signature included).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        to_canonical_vec(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// Signs with `key`, replacing any earlier signature.
    pub fn sign(&mut self, key: &SigningKey, key_id: impl Into<String>) {
        let signature = key.sign(&signing_bytes(self));
        self.signature = Some(Signature {
            alg: "ed25519".to_owned(),
            key_id: key_id.into(),
            sig: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
    }

    /// Verifies the signature with `key` (strict Ed25519 verification).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), EnvelopeError> {
        let signature = self
            .signature
            .as_ref()
            .ok_or(EnvelopeError::Unsigned { id: self.id })?;
        let bad = |reason: String| EnvelopeError::BadSignature {
            id: self.id,
            reason,
        };
        if signature.alg != "ed25519" {
            return Err(bad(format!("unsupported alg {:?}", signature.alg)));
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&signature.sig)
            .map_err(|e| bad(format!("sig is not base64: {e}")))?;
        let raw: [u8; 64] = raw
            .try_into()
            .map_err(|_| bad("sig is not 64 bytes".to_owned()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&raw);
        key.verify_strict(&signing_bytes(self), &signature)
            .map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Kind;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn envelope() -> Envelope {
        Envelope::builder(Kind::Event, "a.b")
            .payload_json(serde_json::json!({"z": 1, "a": [true, null, "é\n"]}))
            .header("b", "2")
            .header("a", "1")
            .build()
            .expect("valid")
    }

    #[test]
    fn given_nested_objects_when_canonicalised_then_keys_are_sorted_without_whitespace() {
        let v = serde_json::json!({"b": {"d": 1, "c": [1, {"f": 2, "e": 3}]}, "a": "x\u{1}"});
        let text = String::from_utf8(to_canonical_vec(&v)).expect("utf8");
        assert_eq!(text, r#"{"a":"x\u0001","b":{"c":[1,{"e":3,"f":2}],"d":1}}"#);
    }

    #[test]
    fn given_keys_outside_the_bmp_when_canonicalised_then_utf16_order_is_used() {
        // U+FB01 sorts after U+1F600 in UTF-16 (surrogate 0xD83D < 0xFB01), before it in UTF-8.
        let v = serde_json::json!({"\u{fb01}": 1, "\u{1f600}": 2});
        let text = String::from_utf8(to_canonical_vec(&v)).expect("utf8");
        assert_eq!(text, "{\"\u{1f600}\":2,\"\u{fb01}\":1}");
    }

    #[test]
    fn given_a_signed_envelope_when_forwarded_then_it_still_verifies() {
        let mut env = envelope();
        env.sign(&key(7), "k1");
        env.forward(10).expect("below limit");
        env.attempt = 3;
        env.verify(&key(7).verifying_key()).expect("verifies");
    }

    #[test]
    fn given_a_signed_envelope_when_released_with_an_approval_id_then_only_that_is_unsigned() {
        let mut env = envelope();
        env.governance.ehi_score = Some(0.95);
        env.sign(&key(7), "k1");
        env.governance.approval_id = Some("01a2-approval".to_owned());
        env.verify(&key(7).verifying_key()).expect("verifies");
        env.governance.ehi_score = Some(0.1);
        assert!(
            env.verify(&key(7).verifying_key()).is_err(),
            "the rest of governance is signed"
        );
    }

    #[test]
    fn given_a_signed_envelope_when_a_field_changes_then_verification_fails() {
        let mut env = envelope();
        env.sign(&key(7), "k1");
        env.subject = "a.c".to_owned();
        assert!(matches!(
            env.verify(&key(7).verifying_key()),
            Err(EnvelopeError::BadSignature { .. })
        ));
    }

    #[test]
    fn given_another_key_when_verifying_then_it_fails_and_unsigned_is_reported() {
        let mut env = envelope();
        assert!(matches!(
            env.verify(&key(7).verifying_key()),
            Err(EnvelopeError::Unsigned { .. })
        ));
        env.sign(&key(7), "k1");
        assert!(env.verify(&key(8).verifying_key()).is_err());
        assert!(env.check().is_ok(), "a signed envelope stays valid");
    }
}
