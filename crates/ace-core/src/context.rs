//! What an adapter knows about a request before the core looks at it ([`RequestContext`]: the
//! transport and the raw credentials), and who the caller turned out to be ([`Principal`], `ace-policy`'s type, re-exported).
//!
//! Adapters only collect credentials; deciding what they are worth is step 1 of the pipeline,
//! so every adapter authenticates the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use ace_envelope::SourceType;
pub use ace_policy::{DEVELOPMENT_PRINCIPAL_ID, Principal};

/// The id of the server's own principal: presence events, approval requests and released
/// messages are published as it, through [`RequestContext::internal`]. No adapter can present it.
pub const SYSTEM_PRINCIPAL_ID: &str = "ace-comms-system";

/// The principal of [`RequestContext::internal`] requests: the server itself. It is never
/// authorized against RBAC or Rego (the server decided already), but what it does is recorded.
pub fn system_principal() -> Principal {
    Principal {
        id: SYSTEM_PRINCIPAL_ID.to_owned(),
        kind: SourceType::Service,
        roles: vec!["system".to_owned()],
        clearance: ace_policy::MAX_CLEARANCE,
    }
}

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
    /// The DER of the client certificate the TLS handshake verified (mTLS), if any. Used when
    /// no bearer token or API key is presented.
    pub peer_certificate: Option<Arc<[u8]>>,
    /// Set only by [`RequestContext::internal`]: the server acting on its own behalf.
    internal: bool,
    /// Set only by [`RequestContext::acting_as`]: a principal the server itself runs (a
    /// workflow), authenticated by construction and authorized like any other.
    acting: Option<Arc<Principal>>,
}

impl RequestContext {
    /// A request over `transport` with no credentials and no peer address.
    pub fn new(transport: &'static str) -> Self {
        RequestContext {
            transport,
            remote: None,
            credentials: Credentials::None,
            peer_certificate: None,
            internal: false,
            acting: None,
        }
    }

    /// The server acting on its own behalf (presence events, approval requests, released
    /// messages): authenticated as [`system_principal`] and not authorized again. Adapters never
    /// build one from what a client sent.
    pub fn internal() -> Self {
        RequestContext {
            internal: true,
            ..RequestContext::new("internal")
        }
    }

    /// Whether this is [`RequestContext::internal`].
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// The server running an actor of its own under that actor's principal (a workflow is
    /// `workflow:<name>`): step 1 answers `principal` without asking the authenticator (the
    /// server made it; no credential names it), and every later step — identity, RBAC, Rego,
    /// EHI holds, the ledger — judges it exactly like a client. Adapters never build one from
    /// what a client sent.
    pub fn acting_as(transport: &'static str, principal: Principal) -> Self {
        RequestContext {
            acting: Some(Arc::new(principal)),
            ..RequestContext::new(transport)
        }
    }

    /// The principal of [`RequestContext::acting_as`], if this is one.
    pub fn acting(&self) -> Option<&Principal> {
        self.acting.as_deref()
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
