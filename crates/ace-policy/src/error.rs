//! The crate's two failure types: [`PolicyError`] for bad configuration, keys and policy files
//! (found at load time, fatal to start-up), and [`AuthFailure`], the small enum of why a
//! credential was refused (expected on the hot path, so a value and not a boxed error).
//! Authorization never fails: a denial is a [`crate::Decision`].

use std::path::PathBuf;

/// A configuration, key or policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file named in the configuration could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A YAML or JSON document does not have the expected shape.
    #[error("`{what}` is not valid: {source}")]
    Parse {
        /// The file or document at fault.
        what: String,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A key could not be loaded for its algorithm.
    #[error("key `{kid}` cannot be used for {alg}: {reason}")]
    Key {
        /// The key id (`<default>` for a key without one).
        kid: String,
        /// The algorithm the key was configured for.
        alg: String,
        /// Why.
        reason: String,
    },
    /// Two keys share one `kid`, so a token naming it would be ambiguous.
    #[error("key id `{0}` is configured twice")]
    DuplicateKid(String),
    /// A role's subject pattern is not a valid pattern.
    #[error("role `{role}`: `{pattern}` is not a valid subject pattern")]
    Pattern {
        /// The role at fault.
        role: String,
        /// The pattern text.
        pattern: String,
    },
    /// A value is out of its allowed range.
    #[error("`{key}` is invalid: {reason}")]
    Invalid {
        /// The configuration key at fault.
        key: String,
        /// Why.
        reason: String,
    },
    /// A Rego policy file does not compile.
    #[error("Rego policy `{path}` does not load: {reason}")]
    Rego {
        /// The policy file.
        path: String,
        /// The engine's message.
        reason: String,
    },
}

/// Why a credential was refused. The `Display` text is safe to return to the caller: it never
/// includes the credential itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The token is not three base64url parts with a JSON header and payload.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm that is not configured (this includes `none`).
    #[error("token algorithm `{0}` is not accepted")]
    Algorithm(String),
    /// No configured key has the token's `kid` (or the token has none and no default key exists).
    #[error("no key for token key id `{0}`")]
    UnknownKey(String),
    /// The token's algorithm is not the one its key is configured for (algorithm confusion).
    #[error("token algorithm does not match the algorithm of key `{0}`")]
    KeyAlgorithmMismatch(String),
    /// The signature does not verify.
    #[error("invalid token signature")]
    Signature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong token issuer")]
    Issuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong token audience")]
    Audience,
    /// A claim is missing or has the wrong shape.
    #[error("token claim `{0}` is missing or invalid")]
    Claim(String),
    /// The credential names a principal id reserved for the server itself
    /// ([`crate::RESERVED_PRINCIPAL_IDS`]).
    #[error(
        "principal id `{0}` is reserved for the server itself and cannot be presented by a \
         credential"
    )]
    ReservedPrincipal(String),
    /// `iat` (issued at) is later than now plus the tolerated clock skew.
    #[error("token claim `iat` is in the future ({iat}, now {now}, leeway {leeway} s)")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
        /// The tolerated clock skew.
        leeway: u64,
    },
    /// `exp` - `iat` (or `exp` - now, for a token without `iat` where that is allowed) is above
    /// the configured maximum lifetime.
    #[error(
        "token lifetime `exp` - `{from}` of {lifetime} s is above the maximum of {max} s \
         (auth.jwt.max_lifetime_secs)"
    )]
    Lifetime {
        /// `iat`, or `now` for a token without one.
        from: &'static str,
        /// The lifetime the token claims, in seconds.
        lifetime: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The API key is not in the store.
    #[error("unknown API key")]
    UnknownApiKey,
    /// The client certificate cannot be parsed or names no identity.
    #[error("client certificate refused: {0}")]
    Certificate(String),
}
