//! What an adapter knows about a request before the core looks at it ([`RequestContext`]: the
//! transport and the raw credentials), and who the caller turned out to be ([`Principal`]).
//!
//! Adapters only collect credentials; deciding what they are worth is step 1 of the pipeline,
//! so every adapter authenticates the same way.

use std::net::SocketAddr;

use ace_envelope::SourceType;

/// The id of the development principal: loud on purpose, it shows up in every envelope source
/// and log line written while authentication is off.
pub const DEVELOPMENT_PRINCIPAL_ID: &str = "DEVELOPMENT-MODE-UNAUTHENTICATED";

/// Credentials as presented, not yet verified.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// None presented.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// An API key header.
    ApiKey(String),
}

impl std::fmt::Debug for Credentials {
    // Never print a secret, even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// One request as the adapter received it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The adapter (`http`, `ws`, `mcp`, `cli`).
    pub transport: &'static str,
    /// The peer address, when the transport has one.
    pub remote: Option<SocketAddr>,
    /// The credentials presented.
    pub credentials: Credentials,
}

impl RequestContext {
    /// A request over `transport` with no credentials and no peer address.
    pub fn new(transport: &'static str) -> Self {
        RequestContext {
            transport,
            remote: None,
            credentials: Credentials::None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id (token subject, key owner, certificate CN).
    pub id: String,
    /// What kind of party it is; stamped as the envelope source type when the envelope has none.
    pub kind: SourceType,
    /// Roles for RBAC.
    pub roles: Vec<String>,
    /// Clearance 0..=5.
    pub clearance: u8,
}

impl Principal {
    /// The fixed principal of development mode: an admin with full clearance whose id says that
    /// nobody was authenticated.
    pub fn development() -> Self {
        Principal {
            id: DEVELOPMENT_PRINCIPAL_ID.to_owned(),
            kind: SourceType::Service,
            roles: vec!["admin".to_owned()],
            clearance: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_credentials_when_debug_printed_then_the_secret_is_redacted() {
        let shown = format!("{:?}", Credentials::Bearer("s3cret".into()));
        assert!(!shown.contains("s3cret"));
        assert_eq!(shown, "Bearer(<redacted>)");
    }
}
