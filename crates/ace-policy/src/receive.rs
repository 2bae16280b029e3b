//! Who may receive a message: the envelope's `rbac` permissions and its sensitivity label
//! against the receiver's roles and clearance.
//!
//! | label          | clearance needed |
//! |----------------|------------------|
//! | `public`       | 0                |
//! | `internal`     | 1                |
//! | `confidential` | 3                |
//! | `secret`       | 5                |
//!
//! Every entry of the envelope's `rbac` list is a permission (`intel.read`) the receiver must
//! hold through one of its roles (see [`crate::Role::grants`]); an empty list asks for none.
//! Both checks must pass; the denial lists every failed one.

use ace_envelope::{Envelope, Label};

use crate::decision::Decision;
use crate::principal::Principal;
use crate::rbac::Rbac;

/// The clearance a receiver needs to see a message with `label` (the table above).
pub const fn required_clearance(label: Label) -> u8 {
    match label {
        Label::Public => 0,
        Label::Internal => 1,
        Label::Confidential => 3,
        Label::Secret => 5,
    }
}

/// Whether `principal` may receive `envelope`.
pub fn can_receive(rbac: &Rbac, principal: &Principal, envelope: &Envelope) -> Decision {
    let mut reasons = Vec::new();
    let label = envelope.governance.label;
    let needed = required_clearance(label);
    if principal.clearance < needed {
        reasons.push(format!(
            "clearance {} is below {needed} required for label `{label}`",
            principal.clearance
        ));
    }
    for permission in &envelope.rbac {
        if !rbac.grants(principal, permission) {
            reasons.push(format!("permission `{permission}` is not held"));
        }
    }
    Decision::deny_if_any(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, SourceType};

    fn envelope(label: Label, rbac: &[&str]) -> Envelope {
        Envelope::builder(Kind::Event, "ace.comms.agent.a.b.evt.v1")
            .label(label)
            .rbac(rbac.iter().copied())
            .build_unchecked()
    }

    fn principal(clearance: u8, roles: &[&str]) -> Principal {
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        Principal::new("r", SourceType::Agent, roles, clearance).unwrap()
    }

    #[test]
    fn given_each_label_when_clearance_is_just_enough_or_one_short_then_the_table_holds() {
        let rbac = Rbac::default();
        for label in Label::ALL {
            let needed = required_clearance(label);
            assert!(can_receive(&rbac, &principal(needed, &[]), &envelope(label, &[])).is_allow());
            if needed > 0 {
                let short = principal(needed - 1, &[]);
                assert!(can_receive(&rbac, &short, &envelope(label, &[])).is_deny());
            }
        }
    }

    #[test]
    fn given_rbac_permissions_when_one_is_missing_then_it_is_named() {
        let rbac =
            Rbac::from_yaml("roles:\n  analyst: {permissions: ['intel.read']}\n", "t").unwrap();
        let msg = envelope(Label::Public, &["intel.read", "ops.write"]);
        let d = can_receive(&rbac, &principal(0, &["analyst"]), &msg);
        assert_eq!(d, Decision::deny("permission `ops.write` is not held"));
        let ok = envelope(Label::Public, &["intel.read"]);
        assert!(can_receive(&rbac, &principal(0, &["analyst"]), &ok).is_allow());
    }
}
