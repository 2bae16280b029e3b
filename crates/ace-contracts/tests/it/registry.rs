//! Registration: semver order and immutability, the compatibility modes as the registry applies
//! them (latest only or every earlier version, per-subject and default modes, `none`), references
//! from run-time schemas into loaded documents, lookups and their errors, manifest errors.

use ace_contracts::{
    CompatibilityMode, ContractError, Direction, Registry, Rule, SchemaSource, Version,
};
use serde_json::{Value, json};

use crate::support::fixture_registry;

fn v(text: &str) -> Version {
    Version::parse(text).expect("semver")
}

/// An object with a required string `a` and, optionally, a property `p` of the given schema.
fn open_object(p: Option<Value>) -> Value {
    let mut schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    if let Some(p) = p {
        schema["properties"]["p"] = p;
    }
    schema
}

fn closed_object(p: Option<Value>) -> Value {
    let mut schema = open_object(p);
    schema["additionalProperties"] = json!(false);
    schema
}

fn incompatibilities(
    result: Result<ace_contracts::RegisterOutcome, ContractError>,
) -> Vec<ace_contracts::Incompatibility> {
    match result {
        Err(ContractError::Incompatible {
            incompatibilities, ..
        }) => incompatibilities,
        other => panic!("expected an incompatibility, got {other:?}"),
    }
}

#[test]
fn given_the_fixture_tree_when_loaded_then_subjects_versions_and_latest_follow_the_manifest() {
    let registry = fixture_registry("shop");
    assert_eq!(
        registry.subjects().collect::<Vec<_>>(),
        ["shop.line", "shop.order"]
    );
    assert_eq!(
        registry.versions("shop.order").expect("known"),
        [v("1.0.0"), v("1.1.0")]
    );
    assert_eq!(
        registry.latest("shop.order").expect("latest").version(),
        &v("1.1.0")
    );
    let first = registry
        .get("shop.order", Some(&v("1.0.0")))
        .expect("first");
    assert_eq!(first.schema_ref(), "shop.order@1.0.0");
    assert!(first.schema()["properties"].get("note").is_none());
    let line = registry.resolve("shop.line").expect("line");
    assert_eq!(
        line.source(),
        &SchemaSource::File {
            file: "shop/common.json".into(),
            pointer: "/$defs/Line".into()
        }
    );
    assert_eq!(
        registry.compatibility("shop.audit"),
        CompatibilityMode::None
    );
    assert_eq!(
        registry.compatibility("shop.order"),
        CompatibilityMode::Backward
    );
}

#[test]
fn given_a_version_not_above_the_latest_when_registered_then_it_is_refused() {
    let mut registry = Registry::new();
    registry
        .register("t.s", v("1.2.0"), open_object(None))
        .expect("first");
    let lower = registry.register("t.s", v("1.1.9"), open_object(None));
    assert!(
        matches!(lower, Err(ContractError::VersionNotIncreasing { ref latest, .. }) if *latest == v("1.2.0")),
        "{lower:?}"
    );
    let changed = registry.register("t.s", v("1.2.0"), closed_object(None));
    assert!(
        matches!(changed, Err(ContractError::VersionExists { .. })),
        "{changed:?}"
    );
    let same = registry
        .register("t.s", v("1.2.0"), open_object(None))
        .expect("idempotent");
    assert!(same.already_registered);
    assert_eq!(registry.versions("t.s").expect("known").len(), 1);
}

#[test]
fn given_backward_mode_when_a_required_property_is_added_then_the_refusal_has_pointer_reason_and_version()
 {
    let mut registry = Registry::new();
    registry
        .register("t.s", v("1.0.0"), open_object(None))
        .expect("first");
    let found = incompatibilities(registry.register("t.s", v("2.0.0"), {
        let mut s = open_object(Some(json!({"type": "integer"})));
        s["required"] = json!(["a", "p"]);
        s
    }));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].rule, found[0].pointer.as_str()),
        (Rule::RequiredAdded, "/properties/p")
    );
    assert_eq!(found[0].direction, Direction::Backward);
    assert_eq!(found[0].against, Some(v("1.0.0")));
    assert!(
        found[0].reason.contains("requires property `p`"),
        "{}",
        found[0].reason
    );
    assert_eq!(
        registry.versions("t.s").expect("known"),
        [v("1.0.0")],
        "nothing registered on refusal"
    );
}

#[test]
fn given_each_mode_when_an_optional_property_is_added_to_a_closed_model_then_only_forward_checks_refuse()
 {
    for mode in CompatibilityMode::ALL {
        let mut registry = Registry::new();
        registry.set_compatibility("t.s", mode);
        registry
            .register("t.s", v("1.0.0"), closed_object(None))
            .expect("first");
        let result = registry.register(
            "t.s",
            v("1.1.0"),
            closed_object(Some(json!({"type": "integer"}))),
        );
        if mode.directions().contains(&Direction::Forward) {
            let found = incompatibilities(result);
            assert_eq!(
                (found[0].rule, found[0].direction),
                (Rule::PropertyRefused, Direction::Forward),
                "{mode}"
            );
        } else {
            let outcome = result.unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!(outcome.mode, mode);
            let advised: Vec<_> = outcome
                .advisories
                .iter()
                .map(|i| (i.direction, i.rule))
                .collect();
            assert_eq!(
                advised,
                [(Direction::Forward, Rule::PropertyRefused)],
                "{mode}: old closed readers will refuse"
            );
            let expected = if mode == CompatibilityMode::None {
                vec![]
            } else {
                vec![v("1.0.0")]
            };
            assert_eq!(outcome.checked_against, expected, "{mode}");
        }
    }
}

#[test]
fn given_full_mode_when_an_optional_property_is_added_to_an_open_model_then_it_is_accepted() {
    let mut registry = Registry::new();
    registry.set_default_compatibility(CompatibilityMode::Full);
    registry
        .register("t.s", v("1.0.0"), open_object(None))
        .expect("first");
    let outcome = registry
        .register(
            "t.s",
            v("1.1.0"),
            open_object(Some(json!({"type": "integer"}))),
        )
        .expect("open add is full compatible");
    assert_eq!(outcome.checked_against, [v("1.0.0")]);
}

/// Under the lenient open-model reading a property can be dropped and re-added with another
/// type, each step compatible with its predecessor: only a transitive mode sees the break.
#[test]
fn given_a_property_re_added_with_another_type_when_checked_transitively_then_only_the_transitive_mode_refuses()
 {
    let history = [
        open_object(None),
        open_object(Some(json!({"type": "string"}))),
        open_object(None),
        open_object(Some(json!({"type": "integer"}))),
    ];
    let register_all = |mode| {
        let mut registry = Registry::new();
        registry.set_compatibility("t.s", mode);
        let mut last = None;
        for (minor, schema) in history.iter().enumerate() {
            last = Some(registry.register("t.s", Version::new(1, minor as u64, 0), schema.clone()));
        }
        last.expect("four registrations")
    };
    let outcome =
        register_all(CompatibilityMode::Backward).expect("each step is backward compatible");
    assert_eq!(outcome.checked_against, [v("1.2.0")]);
    let found = incompatibilities(register_all(CompatibilityMode::BackwardTransitive));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].rule, found[0].pointer.as_str()),
        (Rule::TypeNarrowed, "/properties/p/type")
    );
    assert_eq!(found[0].against, Some(v("1.1.0")));
}

#[test]
fn given_none_mode_when_the_type_changes_then_it_is_accepted_without_checks() {
    let mut registry = fixture_registry("shop");
    registry
        .register("shop.audit", v("1.0.0"), json!({"type": "string"}))
        .expect("first");
    let outcome = registry
        .register("shop.audit", v("2.0.0"), json!({"type": "integer"}))
        .expect("none");
    assert!(outcome.checked_against.is_empty());
    let advised: Vec<_> = outcome
        .advisories
        .iter()
        .map(|i| (i.direction, i.rule))
        .collect();
    let narrowed = [Direction::Backward, Direction::Forward].map(|d| (d, Rule::TypeNarrowed));
    assert_eq!(
        advised, narrowed,
        "none enforces nothing but still says what broke"
    );
    assert!(registry.validate("shop.audit", &json!(3)).is_ok());
    assert!(registry.validate("shop.audit@1.0.0", &json!(3)).is_err());
}

#[test]
fn given_a_run_time_schema_when_it_references_a_loaded_document_by_path_then_it_resolves_offline() {
    let mut registry = fixture_registry("shop");
    let refund = json!({
        "type": "object",
        "properties": {"line": {"$ref": "shop/common.json#/$defs/Line"}},
        "required": ["line"]
    });
    registry
        .register("shop.refund", v("1.0.0"), refund)
        .expect("compiles against the fixture tree");
    assert!(
        registry
            .validate(
                "shop.refund",
                &json!({"line": {"sku": "ABC-1234", "qty": 1}})
            )
            .is_ok()
    );
    let Err(ContractError::Invalid { errors, .. }) = registry.validate(
        "shop.refund",
        &json!({"line": {"sku": "ABC-1234", "qty": 0}}),
    ) else {
        panic!("qty 0 is invalid");
    };
    assert_eq!(errors[0].instance_pointer, "/line/qty");
}

#[test]
fn given_a_schema_that_does_not_compile_when_registered_then_the_reason_is_given() {
    let mut registry = Registry::new();
    let bad_type = registry.register("t.s", v("1.0.0"), json!({"type": 12}));
    assert!(
        matches!(bad_type, Err(ContractError::SchemaDoesNotCompile { .. })),
        "{bad_type:?}"
    );
    let remote = registry.register(
        "t.s",
        v("1.0.0"),
        json!({"$ref": "https://example.com/x.json"}),
    );
    let Err(ContractError::SchemaDoesNotCompile { reason, .. }) = remote else {
        panic!("no network: {remote:?}")
    };
    assert!(!reason.is_empty());
    assert!(registry.subjects().next().is_none());
}

/// A predicate over the error a case expects.
type Expect = fn(&ContractError) -> bool;

#[test]
fn given_bad_references_when_resolved_then_each_error_names_what_is_wrong() {
    let registry = fixture_registry("shop");
    let cases: [(&str, Expect); 4] = [
        ("shop.order@1.x", |e| {
            matches!(e, ContractError::BadSchemaRef { .. })
        }),
        ("shop order", |e| {
            matches!(e, ContractError::BadSchemaRef { .. })
        }),
        (
            "shop.unknown",
            |e| matches!(e, ContractError::UnknownSubject { subject } if subject == "shop.unknown"),
        ),
        (
            "shop.order@9.0.0",
            |e| matches!(e, ContractError::UnknownVersion { version, .. } if version.major == 9),
        ),
    ];
    for (schema_ref, expected) in cases {
        let err = registry.resolve(schema_ref).expect_err(schema_ref);
        assert!(expected(&err), "{schema_ref}: {err:?}");
        assert!(
            err.to_string()
                .contains(schema_ref.split('@').next().unwrap_or(schema_ref)),
            "{err}"
        );
    }
}

#[test]
fn given_broken_manifests_when_loaded_then_the_error_names_the_file_and_key() {
    let schema = r#"{"$defs": {"A": {"type": "string"}}}"#;
    let manifest = |entry: &str| format!("schemas:\n  - {entry}\n");
    let cases = [
        (
            manifest("{subject: a.b, version: 1.0.0, file: missing.json}"),
            "schemas[0].file",
        ),
        (
            manifest("{subject: a.b, version: 1.0.0, file: x.json, pointer: /$defs/B}"),
            "schemas[0].pointer",
        ),
    ];
    for (text, key) in cases {
        let err =
            Registry::from_files([("comms/registry.yaml", text.as_str()), ("x.json", schema)])
                .expect_err(key);
        assert!(
            matches!(&err, ContractError::Manifest { key: k, .. } if k == key),
            "{err:?}"
        );
        assert!(err.to_string().contains("comms/registry.yaml"), "{err}");
    }
    let missing = Registry::from_files([("x.json", schema)]).expect_err("no manifest");
    assert!(
        matches!(missing, ContractError::Manifest { .. }),
        "{missing:?}"
    );
    let not_json = Registry::from_files([("comms/registry.yaml", "schemas: []"), ("x.json", "{")])
        .expect_err("bad json");
    assert!(
        matches!(&not_json, ContractError::Manifest { file, .. } if file == "x.json"),
        "{not_json:?}"
    );
}

#[test]
fn given_a_manifest_whose_history_breaks_its_mode_when_loaded_then_loading_fails() {
    let text = "schemas:\n  - {subject: a.b, version: 1.0.0, file: x.json, pointer: /$defs/V1}\n  - {subject: a.b, version: 2.0.0, file: x.json, pointer: /$defs/V2}\n";
    let schema = r#"{"$defs": {"V1": {"type": "number"}, "V2": {"type": "integer"}}}"#;
    let err = Registry::from_files([("comms/registry.yaml", text), ("x.json", schema)])
        .expect_err("narrowed");
    assert!(
        matches!(&err, ContractError::Incompatible { subject, .. } if subject == "a.b"),
        "{err:?}"
    );
    assert!(err.to_string().contains("/type"), "{err}");
}

#[test]
fn given_an_example_that_looks_like_a_broken_schema_when_loading_then_it_is_not_a_document() {
    let manifest = "schemas:\n  - {subject: a.b, version: 1.0.0, file: x.json}\n";
    let example = r#"{"$id": 3, "$ref": 12}"#;
    let files = [
        ("comms/registry.yaml", manifest),
        ("x.json", r#"{"type": "object"}"#),
        ("ml/examples/a.b.json", example),
    ];
    let registry = Registry::from_files(files).expect("examples are instances, not documents");
    assert!(
        registry
            .validate("a.b", &serde_json::from_str(example).expect("json"))
            .is_ok()
    );
}
