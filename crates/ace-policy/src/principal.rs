//! [`Principal`]: who is calling, as every authentication path (JWT, API key, client
//! certificate) produces it and every decision consumes it. It is the canonical type for the
//! whole server: `ace-core` re-exports it instead of defining its own, so no conversion layer
//! sits between authentication and the pipeline.
//!
//! # Reserved principal ids
//!
//! [`RESERVED_PRINCIPAL_IDS`] are identities only the server itself hands out: the server's
//! own principal ([`SYSTEM_PRINCIPAL_ID`], which publishes presence events, approval requests and
//! released messages, and writes reloads and expiries into the ledger) and the development
//! principal ([`DEVELOPMENT_PRINCIPAL_ID`]). No credential may name one: [`Principal::check`]
//! refuses them, compared without ASCII case and surrounding white space so a look-alike cannot
//! pass either, and every credential path goes through it — a JWT `sub` (refused when the token
//! is verified), an API-key file entry (refused when the file is loaded, naming the file and the
//! entry) and a client certificate's SPIFFE id or CN (refused at the handshake's mapping). The
//! server builds its own two principals directly, never through [`Principal::new`].

use ace_envelope::SourceType;
use serde::{Deserialize, Serialize};

use crate::error::AuthFailure;

/// The highest clearance level (`secret`).
pub const MAX_CLEARANCE: u8 = 5;

/// The id of the development principal: loud on purpose, it shows up in every envelope source
/// and log line written while authentication is off.
pub const DEVELOPMENT_PRINCIPAL_ID: &str = "DEVELOPMENT-MODE-UNAUTHENTICATED";

/// The id of the server's own principal (`ace-core`'s `SYSTEM_PRINCIPAL_ID` is this value):
/// what the server does on its own account is published and recorded as it.
pub const SYSTEM_PRINCIPAL_ID: &str = "ace-comms-system";

/// The principal ids no credential may name (see the module docs).
pub const RESERVED_PRINCIPAL_IDS: [&str; 2] = [SYSTEM_PRINCIPAL_ID, DEVELOPMENT_PRINCIPAL_ID];

/// Whether `id` is one of [`RESERVED_PRINCIPAL_IDS`], ignoring ASCII case and surrounding white
/// space.
pub fn is_reserved_principal_id(id: &str) -> bool {
    let id = id.trim();
    RESERVED_PRINCIPAL_IDS
        .iter()
        .any(|reserved| id.eq_ignore_ascii_case(reserved))
}

/// An authenticated caller: `{id, type, roles, clearance}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Stable id (token subject, key owner, certificate SPIFFE id or CN).
    pub id: String,
    /// What kind of party it is (`agent`, `human`, `service`, `kernel`); stamped as the
    /// envelope source type when the envelope has none.
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// Role names for RBAC.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Clearance 0..=5 (see [`crate::receive`] for the label table).
    #[serde(default)]
    pub clearance: u8,
}

impl Principal {
    /// A principal, with its kind and clearance checked (`group` is a source type of messages,
    /// never of a caller; clearance is at most [`MAX_CLEARANCE`]).
    pub fn new(
        id: impl Into<String>,
        kind: SourceType,
        roles: Vec<String>,
        clearance: u8,
    ) -> Result<Self, AuthFailure> {
        let principal = Principal {
            id: id.into(),
            kind,
            roles,
            clearance,
        };
        principal.check()?;
        Ok(principal)
    }

    /// The fixed principal of development mode: an admin with full clearance whose id says
    /// that nobody was authenticated.
    pub fn development() -> Self {
        Principal {
            id: DEVELOPMENT_PRINCIPAL_ID.to_owned(),
            kind: SourceType::Service,
            roles: vec!["admin".to_owned()],
            clearance: MAX_CLEARANCE,
        }
    }

    /// Whether the principal holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Refuses an empty id, a reserved id ([`RESERVED_PRINCIPAL_IDS`]), the `group` kind and a
    /// clearance above [`MAX_CLEARANCE`].
    pub fn check(&self) -> Result<(), AuthFailure> {
        if self.id.is_empty() {
            return Err(AuthFailure::Claim("sub".into()));
        }
        if is_reserved_principal_id(&self.id) {
            return Err(AuthFailure::ReservedPrincipal(self.id.clone()));
        }
        if self.kind == SourceType::Group {
            return Err(AuthFailure::Claim("principal_type".into()));
        }
        if self.clearance > MAX_CLEARANCE {
            return Err(AuthFailure::Claim("clearance".into()));
        }
        Ok(())
    }
}

/// The principal kind named by `text` (`agent`, `human`, `service`, `kernel`).
pub fn parse_kind(text: &str) -> Option<SourceType> {
    SourceType::parse(text).filter(|kind| *kind != SourceType::Group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_group_kind_when_checked_then_it_is_refused() {
        let err = Principal::new("g", SourceType::Group, vec![], 0).unwrap_err();
        assert_eq!(err, AuthFailure::Claim("principal_type".into()));
    }

    #[test]
    fn given_clearance_six_when_checked_then_it_is_refused() {
        let err = Principal::new("a", SourceType::Agent, vec![], 6).unwrap_err();
        assert_eq!(err, AuthFailure::Claim("clearance".into()));
    }

    #[test]
    fn given_a_reserved_id_in_any_spelling_when_checked_then_it_is_refused() {
        for id in [
            SYSTEM_PRINCIPAL_ID,
            DEVELOPMENT_PRINCIPAL_ID,
            "ACE-COMMS-SYSTEM",
            " ace-comms-system ",
            "development-mode-unauthenticated",
        ] {
            let err = Principal::new(id, SourceType::Service, vec![], 0).unwrap_err();
            assert_eq!(err, AuthFailure::ReservedPrincipal(id.to_owned()), "{id}");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        assert!(Principal::new("ace-comms-system-2", SourceType::Service, vec![], 0).is_ok());
    }

    #[test]
    fn given_the_servers_own_principals_when_built_directly_then_they_are_the_reserved_ids() {
        assert_eq!(Principal::development().id, DEVELOPMENT_PRINCIPAL_ID);
        assert!(RESERVED_PRINCIPAL_IDS.contains(&SYSTEM_PRINCIPAL_ID));
    }

    #[test]
    fn given_yaml_with_type_when_parsed_then_kind_and_roles_are_read() {
        let p: Principal =
            serde_yaml_ng::from_str("{id: bob, type: human, roles: [human], clearance: 2}")
                .unwrap();
        assert_eq!(p.kind, SourceType::Human);
        assert!(p.has_role("human"));
        assert!(!p.has_role("admin"));
    }
}
