//! mTLS client certificates mapped to principals. The TLS layer (rustls with a client
//! certificate verifier over the configured CA) has already proved that the peer holds the
//! key of a certificate the CA issued; this module only reads who that certificate names:
//!
//! - id: the SAN URI `spiffe://<trust-domain>/<kind>/<name>` when present (the whole URI),
//!   otherwise the subject CN;
//! - kind: the first path segment of the SPIFFE id when it is `agent`, `human`, `service` or
//!   `kernel`, otherwise `service`;
//! - roles: the words of the subject OUs (split on spaces and commas, so one OU can carry
//!   several roles: `OU=agent approver`), except a word `clearance=N`, which sets the clearance
//!   (default 0; at most one such word).
//!
//! An id that is a reserved principal id ([`crate::RESERVED_PRINCIPAL_IDS`]) is refused
//! ([`AuthFailure::ReservedPrincipal`]): a CA may issue a certificate named like the server, but
//! it never authenticates as the server.
//!
//! The validity period is checked again here so that a mapping done outside a handshake never
//! accepts an expired certificate.

use ace_envelope::SourceType;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::AuthFailure;
use crate::principal::{Principal, parse_kind};

fn refused(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Certificate(reason.into())
}

/// The principal named by a DER client certificate.
pub fn principal_from_certificate(der: &[u8]) -> Result<Principal, AuthFailure> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| refused(e.to_string()))?;
    if !cert.validity().is_valid() {
        return Err(refused("outside its validity period"));
    }
    let spiffe = spiffe_id(&cert)?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    let id = spiffe
        .or(cn)
        .ok_or_else(|| refused("no SPIFFE URI and no CN"))?;
    let kind = spiffe.map_or(SourceType::Service, spiffe_kind);
    let (roles, clearance) = roles_and_clearance(&cert)?;
    Principal::new(id, kind, roles, clearance).map_err(|e| match e {
        // Already says what is refused and why; wrapping would only repeat "refused".
        AuthFailure::ReservedPrincipal(_) => e,
        other => refused(other.to_string()),
    })
}

fn spiffe_id<'a>(cert: &'a X509Certificate<'_>) -> Result<Option<&'a str>, AuthFailure> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| refused(format!("subjectAltName: {e}")))?;
    Ok(san.and_then(|san| {
        san.value.general_names.iter().find_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
            _ => None,
        })
    }))
}

fn spiffe_kind(uri: &str) -> SourceType {
    let path = uri.trim_start_matches("spiffe://");
    path.split('/')
        .nth(1)
        .and_then(parse_kind)
        .unwrap_or(SourceType::Service)
}

fn roles_and_clearance(cert: &X509Certificate<'_>) -> Result<(Vec<String>, u8), AuthFailure> {
    let mut roles = Vec::new();
    let mut clearance = None;
    for ou in cert.subject().iter_organizational_unit() {
        let ou = ou.as_str().map_err(|_| refused("OU is not a string"))?;
        for word in ou.split([' ', ',']).filter(|w| !w.is_empty()) {
            let Some(level) = word.strip_prefix("clearance=") else {
                roles.push(word.to_owned());
                continue;
            };
            let level: u8 = level
                .parse()
                .map_err(|_| refused("clearance is not 0..=5"))?;
            if clearance.replace(level).is_some() {
                return Err(refused("more than one clearance"));
            }
        }
    }
    Ok((roles, clearance.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_garbage_when_mapped_then_the_certificate_is_refused() {
        assert!(matches!(
            principal_from_certificate(b"not a certificate"),
            Err(AuthFailure::Certificate(_))
        ));
    }

    #[test]
    fn given_spiffe_paths_when_kinds_are_read_then_unknown_kinds_fall_back_to_service() {
        assert_eq!(
            spiffe_kind("spiffe://ace.local/agent/a1"),
            SourceType::Agent
        );
        assert_eq!(
            spiffe_kind("spiffe://ace.local/kernel/k"),
            SourceType::Kernel
        );
        assert_eq!(
            spiffe_kind("spiffe://ace.local/group/g"),
            SourceType::Service
        );
        assert_eq!(spiffe_kind("spiffe://ace.local"), SourceType::Service);
    }
}
