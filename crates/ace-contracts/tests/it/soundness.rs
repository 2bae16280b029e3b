//! The checker's promise, tested on random schema pairs: under the strict (set-inclusion)
//! reading, when `check` finds nothing in a direction, every instance the writer schema accepts
//! is accepted by the reader schema. Schemas are drawn from the keywords the rule table covers
//! (types, enums, bounds, lengths, properties, required, open/closed/schema-valued
//! `additionalProperties`, arrays), half of the pairs as an evolution of the old schema, and
//! instances from a small domain that hits them often.

use ace_contracts::{CheckOptions, CompatibilityMode, OpenModelReading, compat::check_with};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({"type": "integer"})),
        Just(json!({"type": "number"})),
        Just(json!({"type": "string"})),
        Just(json!({"type": ["string", "null"]})),
        (0i64..3).prop_map(|m| json!({"type": "integer", "minimum": m})),
        (0i64..3).prop_map(|m| json!({"type": "number", "maximum": m})),
        (1u64..4).prop_map(|m| json!({"type": "string", "maxLength": m})),
        proptest::sample::subsequence(vec![json!("a"), json!("b"), json!(1)], 1..=3)
            .prop_map(|e| json!({"enum": e})),
        Just(json!({"type": "array", "items": {"type": "integer"}})),
        (0u64..3).prop_map(|m| json!({"type": "array", "maxItems": m})),
    ]
}

fn object() -> impl Strategy<Value = Value> {
    let names = ["a", "b", "c"];
    (
        proptest::collection::vec(proptest::option::of(leaf()), 3),
        proptest::collection::vec(any::<bool>(), 3),
        prop_oneof![Just(None), Just(Some(json!(false))), leaf().prop_map(Some)],
    )
        .prop_map(move |(props, required, extra)| {
            let mut properties = Map::new();
            let mut req = Vec::new();
            for ((name, schema), is_required) in names.iter().zip(props).zip(required) {
                if let Some(schema) = schema {
                    properties.insert((*name).to_owned(), schema);
                }
                if is_required {
                    req.push(json!(name));
                }
            }
            let mut schema = json!({"type": "object", "properties": properties, "required": req});
            if let Some(extra) = extra {
                schema["additionalProperties"] = extra;
            }
            schema
        })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        (-1i64..4).prop_map(|n| json!(n)),
        Just(json!(1.5)),
        Just(json!("a")),
        Just(json!("b")),
        Just(json!("abcdef")),
        proptest::collection::vec((0i64..3).prop_map(|n| json!(n)), 0..4).prop_map(Value::Array),
        Just(json!(["x"])),
    ]
}

fn instance() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        proptest::collection::btree_map(
            proptest::sample::select(vec!["a", "b", "c", "d"]),
            scalar(),
            0..4
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    prop_oneof![leaf(), object()]
}

/// `old` changed in one of the ways schemas usually evolve (most of them compatible), so that
/// many pairs reach the assertion.
fn evolved(old: Value) -> impl Strategy<Value = Value> {
    (0usize..6, leaf()).prop_map(move |(change, property)| {
        let mut new = old.clone();
        let Some(map) = new.as_object_mut() else {
            return new;
        };
        match change {
            0 if map.contains_key("properties") => {
                map["properties"]["d"] = property;
            }
            1 => {
                if let Some(required) = map.get_mut("required").and_then(Value::as_array_mut) {
                    required.pop();
                }
            }
            2 if map.get("type") == Some(&json!("integer")) => {
                map.insert("type".into(), json!("number"));
            }
            3 => {
                if let Some(values) = map.get_mut("enum").and_then(Value::as_array_mut) {
                    values.push(json!("z"));
                }
            }
            4 => {
                map.remove("additionalProperties");
            }
            _ => {
                for bound in ["maxLength", "maximum", "minimum", "maxItems"] {
                    map.remove(bound);
                }
            }
        }
        new
    })
}

/// Half independent pairs, half an old schema and an evolution of it.
fn pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![
        (schema(), schema()),
        schema().prop_flat_map(|old| (Just(old.clone()), evolved(old))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn given_schemas_found_backward_compatible_when_old_data_is_read_then_the_new_schema_accepts_it(
        (old, new) in pair(),
        instances in proptest::collection::vec(instance(), 24),
    ) {
        let strict = CheckOptions { open_model: OpenModelReading::Strict };
        let found = check_with(&old, &new, CompatibilityMode::Backward, strict);
        let (old_v, new_v) = (jsonschema::validator_for(&old).expect("old compiles"), jsonschema::validator_for(&new).expect("new compiles"));
        if found.is_empty() {
            for instance in &instances {
                if old_v.is_valid(instance) {
                    prop_assert!(new_v.is_valid(instance), "declared compatible, yet {instance} passes {old} and fails {new}");
                }
            }
        }
    }
}
