//! Fixtures shared by the integration tests.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use ace_envelope::{Envelope, Kind, SourceType};
use ace_policy::Principal;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub(crate) const ISSUER: &str = "ace-auth";
pub(crate) const AUDIENCE: &str = "ace-comms";

/// The repository's `policies/` directory.
pub(crate) fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// The bytes of a fixture file.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub(crate) fn principal(kind: SourceType, roles: &[&str], clearance: u8) -> Principal {
    let roles = roles.iter().map(|r| (*r).to_owned()).collect();
    Principal::new(format!("{kind}-1"), kind, roles, clearance).expect("valid principal")
}

pub(crate) fn message(subject: &str) -> Envelope {
    Envelope::builder(Kind::Command, subject).build_unchecked()
}

pub(crate) fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("seconds fit")
}

/// Valid claims for `sub`, expiring in an hour.
pub(crate) fn claims() -> Value {
    serde_json::json!({
        "sub": "agent-7", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600, "iat": now() - 60,
        "roles": ["agent"], "clearance": 2, "principal_type": "agent",
    })
}

/// `claims` signed with the private key fixture of `alg`, with `kid`.
pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture("ec.key.pem")),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&fixture("ed.key.pem")),
        Algorithm::HS256 => Ok(EncodingKey::from_secret(HMAC_SECRET)),
        other => panic!("no fixture for {other:?}"),
    }
    .expect("fixture key");
    sign_with(alg, kid, claims, &key)
}

pub(crate) fn sign_with(
    alg: Algorithm,
    kid: Option<&str>,
    claims: &Value,
    key: &EncodingKey,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("encode")
}

pub(crate) const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";
