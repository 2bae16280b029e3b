//! The embedded `contracts/` tree, as shipped: the manifest loads (so every listed schema
//! compiles and each subject's history is compatible), every example under `*/examples/`
//! validates against the subject its file name starts with, and every document under
//! `*/examples/invalid/` fails with an error at its `expect_pointer`.

use ace_contracts::{ContractError, MANIFEST, Registry, embedded_files};
use serde_json::Value;

fn registry() -> Registry {
    Registry::embedded().unwrap_or_else(|e| panic!("the embedded contracts load: {e}"))
}

/// The subject an example is an instance of: the longest registered subject its file name
/// starts with (`ml.event.rollback_requested.2.json` → `ml.event.rollback_requested`).
fn subject_of<'r>(registry: &'r Registry, path: &str) -> &'r str {
    let name = path
        .rsplit('/')
        .next()
        .expect("file name")
        .trim_end_matches(".json");
    registry
        .subjects()
        .filter(|s| {
            name == *s
                || name
                    .strip_prefix(*s)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|s| s.len())
        .unwrap_or_else(|| panic!("{path}: no registered subject starts its name"))
}

fn examples(invalid: bool) -> impl Iterator<Item = (&'static str, Value)> {
    embedded_files().iter().filter_map(move |(path, text)| {
        let in_examples = path.contains("/examples/") && path.ends_with(".json");
        let is_invalid = path.contains("/examples/invalid/");
        (in_examples && is_invalid == invalid).then(|| {
            (
                *path,
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}")),
            )
        })
    })
}

#[test]
fn given_the_embedded_tree_when_loaded_then_every_manifest_entry_is_registered() {
    let registry = registry();
    let (_, manifest) = embedded_files()
        .iter()
        .find(|(p, _)| *p == MANIFEST)
        .expect("manifest embedded");
    let entries = manifest
        .lines()
        .filter(|l| l.trim_start().starts_with("- subject:"))
        .count();
    let registered: usize = registry
        .subjects()
        .map(|s| registry.versions(s).expect("listed").len())
        .sum();
    assert_eq!(registered, entries);
    assert!(entries > 0);
}

#[test]
fn given_every_valid_example_when_validated_then_it_conforms() {
    let registry = registry();
    let mut checked = 0;
    for (path, instance) in examples(false) {
        let subject = subject_of(&registry, path);
        if let Err(e) = registry.validate(subject, &instance) {
            panic!("{path} should validate against {subject}: {e}");
        }
        checked += 1;
    }
    assert!(checked > 0, "no examples embedded");
}

#[test]
fn given_every_invalid_example_when_validated_then_it_fails_at_its_expect_pointer() {
    let registry = registry();
    let mut checked = 0;
    for (path, doc) in examples(true) {
        let subject = doc["subject"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: subject"));
        let expect = doc["expect_pointer"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: expect_pointer"));
        match registry.validate(subject, &doc["instance"]) {
            Ok(()) => panic!("{path} ({}) should fail against {subject}", doc["rule"]),
            Err(ContractError::Invalid { errors, .. }) => {
                let pointers: Vec<_> = errors.iter().map(|e| e.instance_pointer.as_str()).collect();
                assert!(
                    pointers.contains(&expect),
                    "{path}: expected an error at `{expect}`, got {errors:#?}"
                );
            }
            Err(other) => panic!("{path}: {other}"),
        }
        checked += 1;
    }
    assert!(checked > 0, "no invalid examples embedded");
}
