//! Validation: every error of a value comes back, each with the JSON pointer of the offending
//! part of the value and of the failing keyword, through `$ref`s into other files; formats are
//! asserted.

use ace_contracts::ContractError;
use serde_json::json;

use crate::support::fixture_registry;

#[test]
fn given_a_conforming_order_when_validated_then_it_passes() {
    let registry = fixture_registry("shop");
    let order = json!({"id": "o-1", "placed_at": "2026-11-21T23:00:00Z", "lines": [{"sku": "ABC-1234", "qty": 2}]});
    assert!(registry.validate("shop.order@1.0.0", &order).is_ok());
    assert!(
        registry
            .resolve("shop.order")
            .expect("latest")
            .is_valid(&order)
    );
}

#[test]
fn given_an_order_with_several_faults_when_validated_then_every_error_has_its_pointers() {
    let registry = fixture_registry("shop");
    let order = json!({
        "id": "",
        "placed_at": "yesterday",
        "lines": [{"sku": "ABC-1234", "qty": 1}, {"sku": "abc", "qty": 0}],
        "colour": "red"
    });
    let errors = registry
        .resolve("shop.order@1.1.0")
        .expect("known")
        .validate(&order)
        .expect_err("invalid");
    let mut pointers: Vec<_> = errors.iter().map(|e| e.instance_pointer.as_str()).collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        ["", "/id", "/lines/1/qty", "/lines/1/sku", "/placed_at"],
        "{errors:#?}"
    );
    let qty = errors
        .iter()
        .find(|e| e.instance_pointer == "/lines/1/qty")
        .expect("qty error");
    assert!(
        qty.schema_pointer.ends_with("/minimum"),
        "{}",
        qty.schema_pointer
    );
    assert!(qty.message.contains('0'), "{}", qty.message);
    let extra = errors
        .iter()
        .find(|e| e.instance_pointer.is_empty())
        .expect("additional property error");
    assert!(extra.message.contains("colour"), "{}", extra.message);
}

#[test]
fn given_an_invalid_value_when_validated_through_the_registry_then_the_error_names_the_exact_version()
 {
    let registry = fixture_registry("shop");
    let err = registry
        .validate("shop.order", &json!({"id": "x"}))
        .expect_err("lines missing");
    let ContractError::Invalid { schema_ref, errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(schema_ref, "shop.order@1.1.0");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("lines"), "{}", errors[0].message);
    assert!(err.to_string().contains("shop.order@1.1.0"), "{err}");
}
