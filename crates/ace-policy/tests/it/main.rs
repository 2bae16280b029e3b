//! Integration tests of `ace-policy`, one binary (see the module index below). They run
//! against the shipped `policies/` directory and the key fixtures in `tests/fixtures/`.

// Shared fixtures: principals, envelopes, keys and signed tokens.
mod support;

// JWT: the accepted algorithms and every attack of the issue, refused with its reason.
mod jwt;
// API keys and mTLS certificates mapped to principals.
mod credentials;
// The full role x action x subject matrix of policies/rbac.yaml.
mod role_matrix;
// The shipped Rego policy and the PolicyEngine facade (RBAC -> Rego -> EHI), receive checks.
mod engine;
