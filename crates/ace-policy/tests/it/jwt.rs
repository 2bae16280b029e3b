//! JWT verification: each accepted algorithm verifies, and every attack named by the issue is
//! refused with its own reason.

use ace_envelope::SourceType;
use ace_policy::{AuthFailure, JwtAlgorithm, JwtConfig, KeySource, TokenVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use crate::support::{AUDIENCE, HMAC_SECRET, ISSUER, claims, fixture, now, sign, sign_with};

/// A verifier with the RSA public key as default key, EC and Ed keys by kid, an HS256 secret
/// by kid, and the JWKS fixture.
fn verifier() -> TokenVerifier {
    let mut v = TokenVerifier::new(Some(ISSUER.into()), Some(AUDIENCE.into()));
    v.add_pem(None, JwtAlgorithm::RS256, &fixture("rsa.pub.pem"))
        .unwrap();
    v.add_pem(
        Some("ec".into()),
        JwtAlgorithm::ES256,
        &fixture("ec.pub.pem"),
    )
    .unwrap();
    v.add_pem(
        Some("ed".into()),
        JwtAlgorithm::EdDSA,
        &fixture("ed.pub.pem"),
    )
    .unwrap();
    v.add_hmac_secret(Some("hs".into()), HMAC_SECRET).unwrap();
    v.add_jwks(&fixture("jwks.json")).unwrap();
    v
}

#[test]
fn given_each_algorithm_when_a_valid_token_is_verified_then_its_principal_is_returned() {
    let v = verifier();
    let cases = [
        (Algorithm::RS256, None),
        (Algorithm::ES256, Some("ec")),
        (Algorithm::EdDSA, Some("ed")),
        (Algorithm::HS256, Some("hs")),
        (Algorithm::RS256, Some("rsa-1")),
        (Algorithm::ES256, Some("ec-1")),
        (Algorithm::EdDSA, Some("ed-1")),
    ];
    for (alg, kid) in cases {
        let p = v
            .verify(&sign(alg, kid, &claims()))
            .unwrap_or_else(|e| panic!("{alg:?} {kid:?}: {e}"));
        assert_eq!(p.id, "agent-7");
        assert_eq!(p.kind, SourceType::Agent);
        assert_eq!(p.roles, ["agent"]);
        assert_eq!(p.clearance, 2);
    }
}

/// Valid claims with the fields of `change` replaced.
fn with(change: serde_json::Value) -> serde_json::Value {
    let mut c = claims();
    if let serde_json::Value::Object(fields) = change {
        for (k, v) in fields {
            c[k] = v;
        }
    }
    c
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn tampered() -> String {
    let token = sign(Algorithm::RS256, None, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let raised = with(json!({"roles": ["admin"], "clearance": 5}));
    format!("{}.{}.{}", parts[0], b64(&raised), parts[2])
}

fn alg_none() -> String {
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    )
}

/// HS256 "signed" with the RSA public key PEM as the HMAC secret: the classic confusion.
fn hs256_with_rsa_public_key(kid: Option<&str>) -> String {
    let key = EncodingKey::from_secret(&fixture("rsa.pub.pem"));
    sign_with(Algorithm::HS256, kid, &claims(), &key)
}

#[test]
fn given_the_attack_table_when_each_token_is_verified_then_each_is_refused_for_its_reason() {
    let other = EncodingKey::from_rsa_pem(&fixture("rsa-other.key.pem")).unwrap();
    let rs = |c| sign(Algorithm::RS256, None, &c);
    let table: Vec<(&str, String, AuthFailure)> = vec![
        (
            "expired",
            rs(with(json!({"exp": now() - 3600}))),
            AuthFailure::Expired,
        ),
        (
            "not yet valid",
            rs(with(json!({"nbf": now() + 3600}))),
            AuthFailure::NotYetValid,
        ),
        (
            "wrong iss",
            rs(with(json!({"iss": "evil"}))),
            AuthFailure::Issuer,
        ),
        (
            "wrong aud",
            rs(with(json!({"aud": "other"}))),
            AuthFailure::Audience,
        ),
        ("alg none", alg_none(), AuthFailure::Malformed),
        (
            "HS256 with the RSA public key as secret",
            hs256_with_rsa_public_key(None),
            AuthFailure::KeyAlgorithmMismatch("<default>".into()),
        ),
        (
            "HS256 with the RSA public key, naming the JWKS RSA key",
            hs256_with_rsa_public_key(Some("rsa-1")),
            AuthFailure::KeyAlgorithmMismatch("rsa-1".into()),
        ),
        (
            "unknown kid",
            sign(Algorithm::ES256, Some("nope"), &claims()),
            AuthFailure::UnknownKey("nope".into()),
        ),
        ("tampered payload", tampered(), AuthFailure::Signature),
        (
            "wrong signature",
            sign_with(Algorithm::RS256, None, &claims(), &other),
            AuthFailure::Signature,
        ),
        (
            "missing exp",
            rs({
                let mut c = claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            AuthFailure::Claim("exp".into()),
        ),
        (
            "missing iat",
            rs({
                let mut c = claims();
                c.as_object_mut().unwrap().remove("iat");
                c
            }),
            AuthFailure::Claim("iat".into()),
        ),
        (
            "a lifetime of ten years",
            rs(with(
                json!({"iat": now() - 60, "exp": now() + 10 * 365 * 86_400}),
            )),
            AuthFailure::Lifetime {
                from: "iat",
                lifetime: 10 * 365 * 86_400 + 60,
                max: 86_400,
            },
        ),
        (
            "the server's own principal",
            rs(with(json!({"sub": "ace-comms-system", "roles": ["admin"]}))),
            AuthFailure::ReservedPrincipal("ace-comms-system".into()),
        ),
        (
            "the development principal",
            rs(with(json!({"sub": "DEVELOPMENT-MODE-UNAUTHENTICATED"}))),
            AuthFailure::ReservedPrincipal("DEVELOPMENT-MODE-UNAUTHENTICATED".into()),
        ),
        ("not a token", "a.b".into(), AuthFailure::Malformed),
    ];
    let v = verifier();
    for (name, token, expected) in table {
        assert_eq!(v.verify(&token), Err(expected), "{name}");
    }
}

#[test]
fn given_a_token_issued_in_the_future_when_verified_then_iat_is_refused() {
    let iat = now() + 3600;
    let token = sign(
        Algorithm::RS256,
        None,
        &with(json!({"iat": iat, "exp": now() + 7200})),
    );
    let err = verifier().verify(&token).unwrap_err();
    assert!(
        matches!(err, AuthFailure::IssuedInFuture { iat: i, leeway: 30, .. } if i == u64::try_from(iat).unwrap()),
        "{err:?}"
    );
    assert!(err.to_string().contains("`iat` is in the future"), "{err}");
}

#[test]
fn given_an_algorithm_outside_the_four_when_verified_then_it_is_refused_before_any_key() {
    let key = EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")).unwrap();
    let token = sign_with(Algorithm::PS256, None, &claims(), &key);
    assert_eq!(
        verifier().verify(&token),
        Err(AuthFailure::Algorithm("PS256".into()))
    );
}

#[test]
fn given_an_expired_token_within_the_leeway_when_verified_then_it_is_accepted() {
    let v = verifier().with_leeway(120);
    let token = sign(Algorithm::RS256, None, &with(json!({"exp": now() - 60})));
    assert!(v.verify(&token).is_ok());
}

#[test]
fn given_a_config_file_set_when_loaded_then_pem_jwks_and_secret_keys_all_verify() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs.secret");
    std::fs::write(&secret, HMAC_SECRET).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let yaml = format!(
        "issuer: {ISSUER}\naudience: {AUDIENCE}\nkeys:\n\
         - {{source: pem, path: {rsa}, alg: RS256}}\n\
         - {{source: jwks, path: {jwks}}}\n\
         - {{source: hmac_secret, path: {secret}, kid: hs}}\n",
        rsa = fixtures.join("rsa.pub.pem").display(),
        jwks = fixtures.join("jwks.json").display(),
        secret = secret.display(),
    );
    let config: JwtConfig = serde_yaml_ng::from_str(&yaml).unwrap();
    assert!(matches!(config.keys[1], KeySource::Jwks { .. }));
    let v = TokenVerifier::from_config(&config).unwrap();
    for (alg, kid) in [
        (Algorithm::RS256, None),
        (Algorithm::EdDSA, Some("ed-1")),
        (Algorithm::HS256, Some("hs")),
    ] {
        assert!(v.verify(&sign(alg, kid, &claims())).is_ok(), "{alg:?}");
    }
}

#[test]
fn given_a_missing_key_file_when_loaded_then_the_path_is_named() {
    let config: JwtConfig =
        serde_yaml_ng::from_str("keys: [{source: pem, path: /nonexistent/k.pem, alg: ES256}]")
            .unwrap();
    let err = TokenVerifier::from_config(&config).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/k.pem"), "{err}");
}

#[test]
fn given_a_pem_of_the_wrong_type_when_added_then_the_key_is_refused() {
    let mut v = TokenVerifier::new(None, None);
    let err = v.add_pem(
        Some("x".into()),
        JwtAlgorithm::ES256,
        &fixture("rsa.pub.pem"),
    );
    assert!(err.is_err());
}
