//! JWT bearer-token verification: [`TokenVerifier`] checks a token against configured keys and
//! maps its claims to a [`Principal`].
//!
//! Security choices, each closing a known attack:
//! - Every key is bound to exactly one algorithm when it is loaded; a token whose header names
//!   another algorithm is refused before any signature check. This is what stops algorithm
//!   confusion (an HS256 token "signed" with the RSA public key as HMAC secret).
//! - Only the configured algorithms are accepted; `alg: none` cannot even be parsed.
//! - A token with a `kid` must name a configured key exactly; a token without one may only use
//!   the key configured without a `kid`.
//! - `exp` is required; `nbf` is checked when present; `iss` and `aud` are required and checked
//!   when configured.
//! - `iat` is required ([`JwtConfig::require_iat`], on by default) and may not be later than now
//!   plus the leeway: a token "issued" in the future was minted by a clock or an issuer that
//!   cannot be trusted, and would outlive any lifetime bound (RFC 8725 §3.10's spirit).
//! - The lifetime is bounded ([`JwtConfig::max_lifetime_secs`], 24 h by default): `exp - iat`
//!   above it is refused, and so is `exp - now` above it (plus the leeway), which bounds a
//!   token without `iat` too when `iat` is not required. A stolen token is worth at most that
//!   long, however far its issuer set `exp`.
//! - `sub` may not name a reserved principal ([`crate::RESERVED_PRINCIPAL_IDS`]: the server's
//!   own identity and the development principal), as no other credential may.
//! - Each refusal is an [`AuthFailure`] whose text names the claim at fault. Claims: `sub` -> id, `roles` (array, or a space-separated string),
//!   `clearance` (0..=5, default 0), `principal_type` or `typ` (default `service`).

use std::collections::HashMap;
use std::path::PathBuf;

use ace_envelope::SourceType;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{AuthFailure, PolicyError};
use crate::files::read;
use crate::principal::{Principal, parse_kind};

/// The four accepted JWT algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
    /// HMAC with SHA-256 (shared secret).
    HS256,
}

impl JwtAlgorithm {
    fn to_jwt(self) -> Algorithm {
        match self {
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::HS256 => Algorithm::HS256,
        }
    }

    fn from_jwt(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::RS256 => Some(JwtAlgorithm::RS256),
            Algorithm::ES256 => Some(JwtAlgorithm::ES256),
            Algorithm::EdDSA => Some(JwtAlgorithm::EdDSA),
            Algorithm::HS256 => Some(JwtAlgorithm::HS256),
            _ => None,
        }
    }
}

/// Where one verification key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A PEM public key (RS256, ES256, EdDSA) for one algorithm.
    Pem {
        /// The PEM file.
        path: PathBuf,
        /// The algorithm the key verifies.
        alg: JwtAlgorithm,
        /// The key id tokens name; none for the default key.
        #[serde(default)]
        kid: Option<String>,
    },
    /// A JWKS file; every key must have a `kid`.
    Jwks {
        /// The JWKS JSON file.
        path: PathBuf,
    },
    /// An HS256 shared secret, the raw bytes of a file.
    HmacSecret {
        /// The secret file.
        path: PathBuf,
        /// The key id tokens name; none for the default key.
        #[serde(default)]
        kid: Option<String>,
    },
}

/// JWT configuration (the `auth.jwt` block of the server config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required member of `aud`.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Refuse a token without `iat` (default true). Turn off only for an issuer that cannot
    /// set it; [`Self::max_lifetime_secs`] then bounds `exp - now` alone.
    #[serde(default = "default_require_iat")]
    pub require_iat: bool,
    /// The longest lifetime a token may claim, `exp - iat`, in seconds (default 86400, 24 h;
    /// at least 1).
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: u64,
    /// The verification keys.
    pub keys: Vec<KeySource>,
}

impl JwtConfig {
    /// A configuration verifying with `keys`, every other setting at its default.
    pub fn with_keys(keys: Vec<KeySource>) -> Self {
        JwtConfig {
            issuer: None,
            audience: None,
            leeway_secs: default_leeway(),
            require_iat: default_require_iat(),
            max_lifetime_secs: default_max_lifetime(),
            keys,
        }
    }

    /// Refuses settings that cannot work, naming the key (`max_lifetime_secs` of 0 would
    /// refuse every token).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_lifetime_secs == 0 {
            return Err(PolicyError::Invalid {
                key: "max_lifetime_secs".into(),
                reason: "must be at least 1 (a token lifetime in seconds)".into(),
            });
        }
        Ok(())
    }
}

/// The default of [`JwtConfig::leeway_secs`].
fn default_leeway() -> u64 {
    30
}

fn default_require_iat() -> bool {
    true
}

/// The default of [`JwtConfig::max_lifetime_secs`]: 24 hours.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 60 * 60;

fn default_max_lifetime() -> u64 {
    DEFAULT_MAX_TOKEN_LIFETIME_SECS
}

#[derive(Clone)]
struct VerificationKey {
    alg: JwtAlgorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens and maps their claims to principals.
#[derive(Clone)]
pub struct TokenVerifier {
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
    require_iat: bool,
    max_lifetime_secs: u64,
    keys: HashMap<Option<String>, VerificationKey>,
}

impl std::fmt::Debug for TokenVerifier {
    // Key material is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("require_iat", &self.require_iat)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier with no keys yet, checking `issuer` and `audience` when given, with the
    /// defaults of [`JwtConfig`] otherwise (`iat` required, 24 h maximum lifetime, 30 s leeway).
    pub fn new(issuer: Option<String>, audience: Option<String>) -> Self {
        TokenVerifier {
            issuer,
            audience,
            leeway_secs: default_leeway(),
            require_iat: default_require_iat(),
            max_lifetime_secs: default_max_lifetime(),
            keys: HashMap::new(),
        }
    }

    /// A verifier with every key of `config` loaded from its file.
    pub fn from_config(config: &JwtConfig) -> Result<Self, PolicyError> {
        config.validate()?;
        let mut verifier = TokenVerifier::new(config.issuer.clone(), config.audience.clone())
            .with_lifetime(config.require_iat, config.max_lifetime_secs);
        verifier.leeway_secs = config.leeway_secs;
        for source in &config.keys {
            match source {
                KeySource::Pem { path, alg, kid } => {
                    verifier.add_pem(kid.clone(), *alg, &read(path)?)?
                }
                KeySource::Jwks { path } => verifier.add_jwks(&read(path)?)?,
                KeySource::HmacSecret { path, kid } => {
                    verifier.add_hmac_secret(kid.clone(), &read(path)?)?
                }
            }
        }
        Ok(verifier)
    }

    /// Sets the tolerated clock skew.
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// Sets whether `iat` is required and the longest lifetime a token may claim (seconds; 0 is
    /// taken as 1).
    pub fn with_lifetime(mut self, require_iat: bool, max_lifetime_secs: u64) -> Self {
        self.require_iat = require_iat;
        self.max_lifetime_secs = max_lifetime_secs.max(1);
        self
    }

    /// Adds a PEM public key for `alg` (not HS256: use [`Self::add_hmac_secret`]).
    pub fn add_pem(
        &mut self,
        kid: Option<String>,
        alg: JwtAlgorithm,
        pem: &[u8],
    ) -> Result<(), PolicyError> {
        let key = match alg {
            JwtAlgorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            JwtAlgorithm::ES256 => DecodingKey::from_ec_pem(pem),
            JwtAlgorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            JwtAlgorithm::HS256 => {
                return Err(key_error(&kid, alg, "an HS256 key is a secret, not a PEM"));
            }
        }
        .map_err(|e| key_error(&kid, alg, &e.to_string()))?;
        self.insert(kid, VerificationKey { alg, key })
    }

    /// Adds an HS256 shared secret (at least 32 bytes, the size of its hash).
    pub fn add_hmac_secret(
        &mut self,
        kid: Option<String>,
        secret: &[u8],
    ) -> Result<(), PolicyError> {
        if secret.len() < 32 {
            let reason = "the secret is shorter than 32 bytes";
            return Err(key_error(&kid, JwtAlgorithm::HS256, reason));
        }
        let key = DecodingKey::from_secret(secret);
        self.insert(
            kid,
            VerificationKey {
                alg: JwtAlgorithm::HS256,
                key,
            },
        )
    }

    /// Adds every key of a JWKS document. Each key needs a `kid`; its algorithm is its `alg`
    /// or follows from its type (RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA).
    /// Symmetric (`oct`) keys are refused: secrets do not belong in a key set.
    pub fn add_jwks(&mut self, json: &[u8]) -> Result<(), PolicyError> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| PolicyError::Invalid {
            key: "jwks".into(),
            reason: e.to_string(),
        })?;
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let Some(kid_text) = kid.as_deref() else {
                return Err(PolicyError::Invalid {
                    key: "jwks.keys[].kid".into(),
                    reason: "every JWKS key needs a kid".into(),
                });
            };
            let alg = jwk_algorithm(jwk).ok_or_else(|| PolicyError::Key {
                kid: kid_text.to_owned(),
                alg: "?".into(),
                reason: "key type or algorithm is not RS256, ES256 or EdDSA".into(),
            })?;
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| key_error(&kid, alg, &e.to_string()))?;
            self.insert(kid, VerificationKey { alg, key })?;
        }
        Ok(())
    }

    fn insert(&mut self, kid: Option<String>, key: VerificationKey) -> Result<(), PolicyError> {
        if self.keys.contains_key(&kid) {
            return Err(PolicyError::DuplicateKid(kid_name(&kid).to_owned()));
        }
        self.keys.insert(kid, key);
        Ok(())
    }

    /// Verifies `token` and maps its claims to a principal.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// [`Self::verify`], also answering the token's `exp` (seconds since the epoch), so a
    /// caller may cache the principal until then ([`crate::TokenCache`]).
    pub fn verify_until(&self, token: &str) -> Result<(Principal, u64), AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let Some(alg) = JwtAlgorithm::from_jwt(header.alg) else {
            return Err(AuthFailure::Algorithm(format!("{:?}", header.alg)));
        };
        let Some(key) = self.keys.get(&header.kid) else {
            return Err(AuthFailure::UnknownKey(kid_name(&header.kid).to_owned()));
        };
        if key.alg != alg {
            return Err(AuthFailure::KeyAlgorithmMismatch(
                kid_name(&header.kid).to_owned(),
            ));
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &self.validation(alg))
                .map_err(|e| map_error(e.kind()))?;
        let exp = data
            .claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| AuthFailure::Claim("exp".into()))?;
        self.check_issued(&data.claims, exp, jsonwebtoken::get_current_timestamp())?;
        Ok((principal_from_claims(&data.claims)?, exp))
    }

    /// `iat` present (when required), not in the future beyond the leeway, and the lifetime
    /// within the maximum (module docs), at `now`.
    fn check_issued(
        &self,
        claims: &Map<String, Value>,
        exp: u64,
        now: u64,
    ) -> Result<(), AuthFailure> {
        let iat = match claims.get("iat") {
            None if self.require_iat => return Err(AuthFailure::Claim("iat".into())),
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or_else(|| AuthFailure::Claim("iat".into()))?,
            ),
        };
        if let Some(iat) = iat {
            if iat > now.saturating_add(self.leeway_secs) {
                return Err(AuthFailure::IssuedInFuture {
                    iat,
                    now,
                    leeway: self.leeway_secs,
                });
            }
            let lifetime = exp.saturating_sub(iat);
            if lifetime > self.max_lifetime_secs {
                return Err(AuthFailure::Lifetime {
                    from: "iat",
                    lifetime,
                    max: self.max_lifetime_secs,
                });
            }
        }
        // Also bounds a token without `iat`; with one, `iat <= now + leeway` makes this follow
        // from the check above except within the leeway.
        let remaining = exp.saturating_sub(now);
        if remaining > self.max_lifetime_secs.saturating_add(self.leeway_secs) {
            return Err(AuthFailure::Lifetime {
                from: "now",
                lifetime: remaining,
                max: self.max_lifetime_secs,
            });
        }
        Ok(())
    }

    fn validation(&self, alg: JwtAlgorithm) -> Validation {
        let mut validation = Validation::new(alg.to_jwt());
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

fn kid_name(kid: &Option<String>) -> &str {
    kid.as_deref().unwrap_or("<default>")
}

fn key_error(kid: &Option<String>, alg: JwtAlgorithm, reason: &str) -> PolicyError {
    PolicyError::Key {
        kid: kid_name(kid).to_owned(),
        alg: format!("{alg:?}"),
        reason: reason.to_owned(),
    }
}

fn jwk_algorithm(jwk: &Jwk) -> Option<JwtAlgorithm> {
    let from_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(JwtAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(JwtAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(JwtAlgorithm::EdDSA)
        }
        _ => None,
    }?;
    let declared = match jwk.common.key_algorithm {
        None => return Some(from_type),
        Some(KeyAlgorithm::RS256) => JwtAlgorithm::RS256,
        Some(KeyAlgorithm::ES256) => JwtAlgorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => JwtAlgorithm::EdDSA,
        Some(_) => return None,
    };
    (declared == from_type).then_some(declared)
}

fn map_error(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidIssuer => AuthFailure::Issuer,
        ErrorKind::InvalidAudience => AuthFailure::Audience,
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            AuthFailure::Claim(claim.clone())
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthFailure::Algorithm("mismatch".into())
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthFailure::Malformed,
        _ => AuthFailure::Signature,
    }
}

/// Maps verified claims to a principal (see the module docs for the claim names).
pub fn principal_from_claims(claims: &Map<String, Value>) -> Result<Principal, AuthFailure> {
    let claim = |name: &str| AuthFailure::Claim(name.to_owned());
    let id = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(|| claim("sub"))?;
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().map(str::to_owned).ok_or_else(|| claim("roles")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(claim("roles")),
    };
    let clearance = match claims.get("clearance") {
        None => 0,
        Some(value) => value
            .as_u64()
            .and_then(|c| u8::try_from(c).ok())
            .ok_or_else(|| claim("clearance"))?,
    };
    let kind_claim = claims.get("principal_type").or_else(|| claims.get("typ"));
    let kind = match kind_claim {
        None => SourceType::Service,
        Some(value) => value
            .as_str()
            .and_then(parse_kind)
            .ok_or_else(|| claim("principal_type"))?,
    };
    Principal::new(id, kind, roles, clearance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn given_full_claims_when_mapped_then_every_field_is_read() {
        let c = claims(
            json!({"sub": "a1", "roles": ["agent"], "clearance": 3, "principal_type": "agent"}),
        );
        let p = principal_from_claims(&c).unwrap();
        assert_eq!(
            p,
            Principal::new("a1", SourceType::Agent, vec!["agent".into()], 3).unwrap()
        );
    }

    #[test]
    fn given_space_separated_roles_and_typ_when_mapped_then_both_are_read() {
        let c = claims(json!({"sub": "h", "roles": "human approver", "typ": "human"}));
        let p = principal_from_claims(&c).unwrap();
        assert_eq!(p.roles, ["human", "approver"]);
        assert_eq!(p.kind, SourceType::Human);
    }

    #[test]
    fn given_out_of_range_or_wrong_claims_when_mapped_then_the_claim_is_named() {
        let bad = [
            (json!({"sub": "x", "clearance": 9}), "clearance"),
            (json!({"sub": "x", "clearance": -1}), "clearance"),
            (json!({"sub": "x", "roles": [1]}), "roles"),
            (json!({"sub": "x", "typ": "group"}), "principal_type"),
            (json!({"roles": []}), "sub"),
        ];
        for (c, name) in bad {
            assert_eq!(
                principal_from_claims(&claims(c)),
                Err(AuthFailure::Claim(name.into()))
            );
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn issued(v: &TokenVerifier, iat: Option<u64>, exp: u64) -> Result<(), AuthFailure> {
        let mut c = claims(json!({"sub": "a1", "exp": exp}));
        if let Some(iat) = iat {
            c.insert("iat".into(), json!(iat));
        }
        v.check_issued(&c, exp, NOW)
    }

    #[test]
    fn given_iat_in_the_future_beyond_the_leeway_when_checked_then_iat_is_named() {
        let v = TokenVerifier::new(None, None).with_leeway(30);
        assert_eq!(
            issued(&v, Some(NOW + 30), NOW + 600),
            Ok(()),
            "within the leeway"
        );
        let err = issued(&v, Some(NOW + 31), NOW + 600).unwrap_err();
        assert_eq!(
            err,
            AuthFailure::IssuedInFuture {
                iat: NOW + 31,
                now: NOW,
                leeway: 30
            }
        );
        assert!(err.to_string().contains("`iat` is in the future"), "{err}");
    }

    #[test]
    fn given_no_iat_when_required_or_not_then_it_is_refused_or_bounded_by_now() {
        let required = TokenVerifier::new(None, None);
        let err = issued(&required, None, NOW + 600).unwrap_err();
        assert_eq!(err, AuthFailure::Claim("iat".into()));
        assert!(err.to_string().contains("`iat`"), "{err}");
        let optional = TokenVerifier::new(None, None)
            .with_leeway(0)
            .with_lifetime(false, 3600);
        assert_eq!(issued(&optional, None, NOW + 3600), Ok(()));
        assert_eq!(
            issued(&optional, None, NOW + 3601),
            Err(AuthFailure::Lifetime {
                from: "now",
                lifetime: 3601,
                max: 3600
            })
        );
        let not_a_number = claims(json!({"sub": "a1", "exp": NOW + 60, "iat": "yesterday"}));
        assert_eq!(
            optional.check_issued(&not_a_number, NOW + 60, NOW),
            Err(AuthFailure::Claim("iat".into()))
        );
    }

    #[test]
    fn given_a_lifetime_above_the_maximum_when_checked_then_the_lifetime_is_named() {
        let v = TokenVerifier::new(None, None).with_leeway(0);
        let day = DEFAULT_MAX_TOKEN_LIFETIME_SECS;
        assert_eq!(
            issued(&v, Some(NOW), NOW + day),
            Ok(()),
            "exactly the maximum"
        );
        let err = issued(&v, Some(NOW), NOW + day + 1).unwrap_err();
        assert_eq!(
            err,
            AuthFailure::Lifetime {
                from: "iat",
                lifetime: day + 1,
                max: day
            }
        );
        assert!(
            err.to_string().contains("auth.jwt.max_lifetime_secs"),
            "{err}"
        );
        // Issued long ago, expiring soon: the claimed lifetime is what counts.
        let old = issued(&v, Some(NOW - 10 * day), NOW + 60).unwrap_err();
        assert!(
            matches!(old, AuthFailure::Lifetime { from: "iat", .. }),
            "{old}"
        );
    }

    #[test]
    fn given_a_zero_maximum_lifetime_when_validated_then_the_key_is_named() {
        let mut config = JwtConfig::with_keys(vec![]);
        assert!(config.require_iat);
        assert_eq!(config.max_lifetime_secs, DEFAULT_MAX_TOKEN_LIFETIME_SECS);
        config.max_lifetime_secs = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_lifetime_secs"), "{err}");
        let yaml: JwtConfig = serde_yaml_ng::from_str("keys: []").unwrap();
        assert_eq!(yaml, JwtConfig::with_keys(vec![]));
    }

    #[test]
    fn given_a_reserved_sub_when_mapped_then_it_is_refused() {
        for sub in [crate::SYSTEM_PRINCIPAL_ID, crate::DEVELOPMENT_PRINCIPAL_ID] {
            let c = claims(json!({"sub": sub, "roles": ["admin"]}));
            assert_eq!(
                principal_from_claims(&c),
                Err(AuthFailure::ReservedPrincipal(sub.into()))
            );
        }
    }

    #[test]
    fn given_a_short_hmac_secret_when_added_then_it_is_refused() {
        let mut v = TokenVerifier::new(None, None);
        assert!(v.add_hmac_secret(None, b"short").is_err());
        assert!(v.add_hmac_secret(None, &[7; 32]).is_ok());
        assert!(matches!(
            v.add_hmac_secret(None, &[8; 32]),
            Err(PolicyError::DuplicateKid(_))
        ));
    }

    #[test]
    fn given_a_jwks_key_without_kid_when_loaded_then_it_is_refused() {
        let jwks = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let err = TokenVerifier::new(None, None).add_jwks(jwks).unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
    }
}
