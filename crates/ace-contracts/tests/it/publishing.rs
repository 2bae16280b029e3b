//! The publishing flow `contracts/README.md` describes, on the real tree: copy a schema file to
//! a versioned name, change the copy, append a manifest entry. A compatible change loads and
//! becomes the latest; a breaking one makes loading fail with the pointer and reason.

use ace_contracts::{ContractError, MANIFEST, Registry, Rule, Version, embedded_files};
use serde_json::{Value, json};

const COPY: &str = "ml/ml_schemas.1.1.0.json";

fn embedded(path: &str) -> &'static str {
    embedded_files()
        .iter()
        .find(|(p, _)| *p == path)
        .unwrap_or_else(|| panic!("{path} embedded"))
        .1
}

/// The embedded tree plus `ml/ml_schemas.1.1.0.json` (the ML types' `$defs` changed by
/// `change`) registered as `mlt.insight@1.1.0`, under the manifest's default mode, backward.
fn publish(change: impl FnOnce(&mut Value)) -> Result<Registry, ContractError> {
    let mut copy: Value = serde_json::from_str(embedded("ml/ml_schemas.json")).expect("parses");
    copy["$id"] = json!("https://contracts.ace-comms.dev/ml/ml_schemas.1.1.0.json");
    change(&mut copy["$defs"]);
    let copy = serde_json::to_string(&copy).expect("serializes");
    let manifest = embedded(MANIFEST).to_owned()
        + "  - subject: mlt.insight\n    version: 1.1.0\n    file: ml/ml_schemas.1.1.0.json\n    pointer: /$defs/Insight\n";
    let files = embedded_files()
        .iter()
        .filter(|(p, _)| *p != MANIFEST)
        .copied();
    Registry::from_files(files.chain([(MANIFEST, manifest.as_str()), (COPY, copy.as_str())]))
}

fn refusals(result: Result<Registry, ContractError>) -> Vec<(Rule, String)> {
    match result {
        Err(ContractError::Incompatible {
            subject,
            incompatibilities,
            ..
        }) => {
            assert_eq!(subject, "mlt.insight");
            incompatibilities
                .into_iter()
                .map(|i| (i.rule, i.pointer))
                .collect()
        }
        other => panic!("expected an incompatibility, got {other:?}"),
    }
}

#[test]
fn given_an_optional_property_added_to_the_closed_insight_when_published_then_it_becomes_the_latest()
 {
    let registry =
        publish(|defs| defs["Insight"]["properties"]["notes"] = json!({"type": "string"}))
            .expect("adding an optional property to a closed model is backward compatible");
    assert_eq!(
        registry.latest("mlt.insight").expect("known").version(),
        &Version::new(1, 1, 0)
    );
    assert_eq!(registry.versions("mlt.insight").expect("known").len(), 2);
}

#[test]
fn given_a_required_property_added_to_insight_when_published_then_loading_names_the_pointer() {
    let found = refusals(publish(|defs| {
        defs["Insight"]["properties"]["owner"] = json!({"$ref": "#/$defs/UID"});
        defs["Insight"]["required"]
            .as_array_mut()
            .expect("required list")
            .push(json!("owner"));
    }));
    assert_eq!(
        found,
        [(Rule::RequiredAdded, "/properties/owner".to_owned())]
    );
}

#[test]
fn given_a_shared_definition_tightened_in_the_copy_when_published_then_the_pointer_goes_through_the_ref()
 {
    let found = refusals(publish(|defs| defs["Probability"]["maximum"] = json!(0.5)));
    assert_eq!(
        found,
        [(
            Rule::BoundTightened,
            "/properties/confidence/maximum".to_owned()
        )]
    );
}
