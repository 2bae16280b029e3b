//! API keys from a store file and client certificates (generated with rcgen) mapped to
//! principals.

use ace_envelope::SourceType;
use ace_policy::{
    API_KEY_HEADER, ApiKeyStore, AuthFailure, hash_api_key, principal_from_certificate,
};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

#[test]
fn given_a_store_file_on_disk_when_keys_are_presented_then_only_the_stored_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api-keys.yaml");
    let yaml = format!(
        "keys:\n\
         - sha256: {}\n  principal: {{id: ingest, type: service, roles: [agent], clearance: 1}}\n\
         - sha256: {}\n  principal: {{id: alice, type: human, roles: [human, approver], clearance: 3}}\n",
        hash_api_key("key-ingest-0123456789abcdef0123456789"),
        hash_api_key("key-alice-0123456789abcdef0123456789"),
    );
    std::fs::write(&path, yaml).unwrap();
    let store = ApiKeyStore::load(&path).unwrap();
    assert_eq!(store.len(), 2);
    let alice = store
        .verify("key-alice-0123456789abcdef0123456789")
        .unwrap();
    assert_eq!(
        (alice.id.as_str(), alice.kind, alice.clearance),
        ("alice", SourceType::Human, 3)
    );
    assert_eq!(
        store.verify("key-alice-0123456789abcdef012345678"),
        Err(AuthFailure::UnknownApiKey)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("key-alice"), "the store holds hashes only");
    assert_eq!(API_KEY_HEADER, "X-ACE-API-Key");
}

#[test]
fn given_an_unknown_principal_field_when_the_store_loads_then_it_fails_loudly() {
    let yaml = format!(
        "keys:\n- sha256: {}\n  principal: {{id: a, type: agent, role: admin}}\n",
        hash_api_key("k")
    );
    assert!(ApiKeyStore::from_yaml(&yaml, "t").is_err());
}

fn certificate(san: Option<&str>, cn: Option<&str>, ou: Option<&str>) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    // rcgen names every certificate by default; these tests control the subject fully.
    params.distinguished_name = DistinguishedName::new();
    if let Some(uri) = san {
        params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    }
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    if let Some(ou) = ou {
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
    }
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn given_a_spiffe_certificate_when_mapped_then_id_kind_roles_and_clearance_are_read() {
    let der = certificate(
        Some("spiffe://ace.local/agent/planner-1"),
        Some("planner-1"),
        Some("agent approver clearance=3"),
    );
    let p = principal_from_certificate(&der).unwrap();
    assert_eq!(p.id, "spiffe://ace.local/agent/planner-1");
    assert_eq!(p.kind, SourceType::Agent);
    assert_eq!(p.roles, ["agent", "approver"]);
    assert_eq!(p.clearance, 3);
}

#[test]
fn given_a_certificate_with_only_a_cn_when_mapped_then_it_is_a_service_without_roles() {
    let p = principal_from_certificate(&certificate(None, Some("billing"), None)).unwrap();
    assert_eq!(
        (p.id.as_str(), p.kind, p.clearance),
        ("billing", SourceType::Service, 0)
    );
    assert!(p.roles.is_empty());
}

#[test]
fn given_bad_certificate_identities_when_mapped_then_each_is_refused() {
    let cases = [
        ("no identity", certificate(None, None, Some("agent"))),
        (
            "clearance out of range",
            certificate(None, Some("x"), Some("clearance=9")),
        ),
        (
            "two clearances",
            certificate(None, Some("x"), Some("clearance=1,clearance=2")),
        ),
    ];
    for (name, der) in cases {
        assert!(
            matches!(
                principal_from_certificate(&der),
                Err(AuthFailure::Certificate(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn given_a_certificate_naming_a_reserved_principal_when_mapped_then_it_is_refused() {
    // A SPIFFE id is the whole URI, so only a CN can spell a reserved id.
    for (san, cn) in [
        (None::<&str>, Some("ace-comms-system")),
        (None, Some("DEVELOPMENT-MODE-UNAUTHENTICATED")),
    ] {
        let id = san.or(cn).unwrap();
        let err = principal_from_certificate(&certificate(san, cn, Some("admin"))).unwrap_err();
        assert_eq!(err, AuthFailure::ReservedPrincipal(id.to_owned()));
    }
}

#[test]
fn given_an_expired_certificate_when_mapped_then_it_is_refused() {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "old");
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let der = params
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .to_vec();
    let err = principal_from_certificate(&der).unwrap_err();
    assert!(err.to_string().contains("validity"), "{err}");
}
