//! The decisions of ACE::COMMS governance, as a pure library: who is calling and what may
//! they do. The server's pipeline (`ace-core` hooks) calls it; nothing here does I/O after
//! loading its configuration.
//!
//! - Who: [`TokenVerifier`] (JWT: RS256, ES256, EdDSA, HS256; [`TokenCache`] remembers verified
//!   tokens until their `exp`), [`ApiKeyStore`] (hashed keys in
//!   the [`API_KEY_HEADER`] header), [`principal_from_certificate`] (mTLS) — each yields a
//!   [`Principal`] or an [`AuthFailure`].
//! - May they: [`Rbac`] (`policies/rbac.yaml`), [`RegoPolicy`] (`policies/*.rego` through
//!   `regorus`, input documented in [`policy_input`]; `target.environment` from
//!   [`Environments`], `policies/environments.yaml`), [`EhiGate`] (hold by EHI score), and
//!   [`can_receive`] (envelope `rbac` permissions and label/clearance), combined by
//!   [`PolicyEngine`] into one [`Decision`]. The shipped `policies/` are compiled in
//!   ([`PolicyEngine::embedded`]).
//!
//! # Invariants
//!
//! - Deny by default: no role, no matching allow pattern, an unknown role, an unknown key, an
//!   unconfigured algorithm — each is a refusal, never a pass.
//! - Deny wins: a deny pattern of any role of a principal beats every allow; a Rego denial
//!   beats an approval request, which beats an allow.
//! - A failing policy engine denies (reason [`POLICY_ENGINE_FAILURE`]), logs at `error`, and
//!   is never cached.
//! - A JWT is only ever checked with the one algorithm its key was loaded for; it needs an `iat`
//!   not in the future and a lifetime within the configured maximum.
//! - No credential (JWT `sub`, API-key entry, client certificate) may name a reserved principal
//!   id ([`RESERVED_PRINCIPAL_IDS`]: the server's own and the development principal).
//! - API keys are stored and compared only as SHA-256 hashes, in constant time.
//! - Decisions are values: `Result` errors ([`PolicyError`]) only come from loading
//!   configuration, keys and policies.

mod apikey;
mod cache;
mod decision;
mod ehi;
mod engine;
mod environments;
mod error;
mod files;
mod input;
mod jwt;
mod mtls;
mod principal;
mod rbac;
pub mod receive;
mod rego;

pub use apikey::{API_KEY_HEADER, ApiKeyStore, hash_api_key};
pub use cache::{DEFAULT_TOKEN_CACHE_CAPACITY, TokenCache};
pub use decision::{Action, Decision};
pub use ehi::{
    ACTION_HEADER, DEFAULT_THRESHOLD, EhiConfig, EhiGate, HoldRule, SENDER_REQUEST_REASON,
};
pub use engine::{
    EMBEDDED_RBAC, EMBEDDED_REGO, PolicyCounters, PolicyEngine, RBAC_FILE, environments_file,
};
pub use environments::{
    EMBEDDED_ENVIRONMENTS, ENVIRONMENTS_FILE, Environments, normalize_environment,
};
pub use error::{AuthFailure, PolicyError};
pub use input::{ENVIRONMENT_HEADER, policy_input, policy_input_with};
pub use jwt::{
    DEFAULT_MAX_TOKEN_LIFETIME_SECS, JwtAlgorithm, JwtConfig, KeySource, TokenVerifier,
    principal_from_claims,
};
pub use mtls::principal_from_certificate;
pub use principal::{
    DEVELOPMENT_PRINCIPAL_ID, MAX_CLEARANCE, Principal, RESERVED_PRINCIPAL_IDS,
    SYSTEM_PRINCIPAL_ID, is_reserved_principal_id, parse_kind,
};
pub use rbac::{Rbac, Role};
pub use receive::{can_receive, required_clearance};
pub use rego::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_PACKAGE, POLICY_ENGINE_FAILURE, RegoPolicy, RegoStats,
    rego_files,
};
