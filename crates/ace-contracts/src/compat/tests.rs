//! The rule tables of `compat/mod.rs`, one test row per documented case. Each row states the
//! expected verdict (accepted, or the rule and pointer of the refusal) and why. It is one long
//! file because it is the table: a row per case reads better than rows spread over files.

use serde_json::{Value, json};

use super::{CheckOptions, CompatibilityMode, Direction, OpenModelReading, Rule, check_with};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Optional,
    Required,
}

use Change::{Add, Remove};
use Kind::{Optional, Required};
use Model::{Closed, Open};
use OpenModelReading::{Lenient, Strict};

/// One row of the content-model matrix: property `p` (an integer) added to or removed from an
/// object that always has a required string `a`.
struct Row {
    model: Model,
    change: Change,
    kind: Kind,
    direction: Direction,
    reading: OpenModelReading,
    /// `None`: compatible; `Some(rule)`: refused at `/properties/p` with that rule.
    expect: Option<Rule>,
    why: &'static str,
}

const fn row(
    model: Model,
    change: Change,
    kind: Kind,
    direction: Direction,
    reading: OpenModelReading,
    expect: Option<Rule>,
    why: &'static str,
) -> Row {
    Row {
        model,
        change,
        kind,
        direction,
        reading,
        expect,
        why,
    }
}

const B: Direction = Direction::Backward;
const F: Direction = Direction::Forward;
const OK: Option<Rule> = None;
const REQUIRED_ADDED: Option<Rule> = Some(Rule::RequiredAdded);
const REFUSED: Option<Rule> = Some(Rule::PropertyRefused);
const CONSTRAINED: Option<Rule> = Some(Rule::PropertyConstrained);

/// The matrix open/closed × added/removed × required/optional × backward/forward, in the
/// default (lenient) reading, then the open-model rows again in the strict reading.
const CONTENT_MODEL_MATRIX: &[Row] = &[
    row(
        Open,
        Add,
        Optional,
        B,
        Lenient,
        OK,
        "old data lacks p or carries it as extension data nobody relies on",
    ),
    row(
        Open,
        Add,
        Optional,
        F,
        Lenient,
        OK,
        "the old open reader ignores p",
    ),
    row(
        Open,
        Add,
        Required,
        B,
        Lenient,
        REQUIRED_ADDED,
        "old data may lack p",
    ),
    row(
        Open,
        Add,
        Required,
        F,
        Lenient,
        OK,
        "the old open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Optional,
        B,
        Lenient,
        OK,
        "the new open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Optional,
        F,
        Lenient,
        OK,
        "new writers leave p undeclared; no one relies on undeclared data",
    ),
    row(
        Open,
        Remove,
        Required,
        B,
        Lenient,
        OK,
        "the new open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Required,
        F,
        Lenient,
        REQUIRED_ADDED,
        "the old reader still requires p, new data may lack it",
    ),
    row(
        Closed,
        Add,
        Optional,
        B,
        Lenient,
        OK,
        "old closed data never carries p",
    ),
    row(
        Closed,
        Add,
        Optional,
        F,
        Lenient,
        REFUSED,
        "the old closed reader refuses p, which new data may carry",
    ),
    row(
        Closed,
        Add,
        Required,
        B,
        Lenient,
        REQUIRED_ADDED,
        "old closed data never has p",
    ),
    row(
        Closed,
        Add,
        Required,
        F,
        Lenient,
        REFUSED,
        "new data always carries p, the old closed reader refuses it",
    ),
    row(
        Closed,
        Remove,
        Optional,
        B,
        Lenient,
        REFUSED,
        "old data may carry p, the new closed reader refuses it",
    ),
    row(
        Closed,
        Remove,
        Optional,
        F,
        Lenient,
        OK,
        "new closed data never carries p",
    ),
    row(
        Closed,
        Remove,
        Required,
        B,
        Lenient,
        REFUSED,
        "old data always carries p, the new closed reader refuses it",
    ),
    row(
        Closed,
        Remove,
        Required,
        F,
        Lenient,
        REQUIRED_ADDED,
        "the old reader requires p, new closed data never has it",
    ),
    row(
        Open,
        Add,
        Optional,
        B,
        Strict,
        CONSTRAINED,
        "old open writers may have sent p with any value, e.g. a string",
    ),
    row(
        Open,
        Add,
        Optional,
        F,
        Strict,
        OK,
        "the old open reader ignores p",
    ),
    row(
        Open,
        Add,
        Required,
        B,
        Strict,
        REQUIRED_ADDED,
        "old data may lack p (and may carry it with any value)",
    ),
    row(
        Open,
        Add,
        Required,
        F,
        Strict,
        OK,
        "the old open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Optional,
        B,
        Strict,
        OK,
        "the new open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Optional,
        F,
        Strict,
        CONSTRAINED,
        "new open writers may send p with any value, the old reader wants an integer",
    ),
    row(
        Open,
        Remove,
        Required,
        B,
        Strict,
        OK,
        "the new open reader ignores p",
    ),
    row(
        Open,
        Remove,
        Required,
        F,
        Strict,
        REQUIRED_ADDED,
        "the old reader requires p (and constrains it), new data may lack it",
    ),
];

fn object(model: Model, p: Option<Kind>) -> Value {
    let mut schema =
        json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
    if let Some(kind) = p {
        schema["properties"]["p"] = json!({"type": "integer"});
        if kind == Required {
            schema["required"] = json!(["a", "p"]);
        }
    }
    if model == Closed {
        schema["additionalProperties"] = json!(false);
    }
    schema
}

fn mode(direction: Direction) -> CompatibilityMode {
    match direction {
        Direction::Backward => CompatibilityMode::Backward,
        Direction::Forward => CompatibilityMode::Forward,
    }
}

#[test]
fn given_the_content_model_matrix_when_each_row_is_checked_then_the_verdict_and_pointer_match() {
    assert_eq!(
        CONTENT_MODEL_MATRIX.len(),
        24,
        "16 lenient rows and 8 strict open-model rows"
    );
    for r in CONTENT_MODEL_MATRIX {
        let (without, with) = (object(r.model, None), object(r.model, Some(r.kind)));
        let (old, new) = if r.change == Add {
            (&without, &with)
        } else {
            (&with, &without)
        };
        let found = check_with(
            old,
            new,
            mode(r.direction),
            CheckOptions {
                open_model: r.reading,
            },
        );
        let label = format!(
            "{:?} {:?} {:?} {:?} {:?} ({})",
            r.model, r.change, r.kind, r.direction, r.reading, r.why
        );
        match r.expect {
            None => assert!(
                found.is_empty(),
                "{label}: expected compatible, got {found:#?}"
            ),
            Some(rule) => {
                let hit = found.iter().find(|i| i.rule == rule);
                let hit = hit.unwrap_or_else(|| panic!("{label}: expected {rule}, got {found:#?}"));
                assert_eq!(hit.pointer, "/properties/p", "{label}");
                assert_eq!(hit.direction, r.direction, "{label}");
                assert!(
                    hit.reason.contains("`p`"),
                    "{label}: reason names the property: {}",
                    hit.reason
                );
            }
        }
    }
}

#[test]
fn given_the_matrix_when_checked_in_full_mode_then_only_rows_compatible_both_ways_pass() {
    for model in [Open, Closed] {
        for change in [Add, Remove] {
            for kind in [Optional, Required] {
                let verdict = |d: Direction| {
                    CONTENT_MODEL_MATRIX
                        .iter()
                        .find(|r| {
                            (r.model, r.change, r.kind, r.direction, r.reading)
                                == (model, change, kind, d, Lenient)
                        })
                        .map(|r| r.expect.is_none())
                        .expect("row exists")
                };
                let (without, with) = (object(model, None), object(model, Some(kind)));
                let (old, new) = if change == Add {
                    (&without, &with)
                } else {
                    (&with, &without)
                };
                let full = super::check(old, new, CompatibilityMode::Full).is_empty();
                assert_eq!(
                    full,
                    verdict(B) && verdict(F),
                    "{model:?} {change:?} {kind:?}"
                );
            }
        }
    }
}

/// One row of the other rules: old and new schema, the direction checked, and the expected
/// refusals as `(rule, pointer)`; empty means compatible.
struct RuleRow {
    name: &'static str,
    old: &'static str,
    new: &'static str,
    direction: Direction,
    expect: &'static [(Rule, &'static str)],
}

const RULES: &[RuleRow] = &[
    RuleRow {
        name: "integer widened to number reads old data",
        old: r#"{"type":"integer"}"#,
        new: r#"{"type":"number"}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "integer widened to number breaks old readers",
        old: r#"{"type":"integer"}"#,
        new: r#"{"type":"number"}"#,
        direction: F,
        expect: &[(Rule::TypeNarrowed, "/type")],
    },
    RuleRow {
        name: "number narrowed to integer refuses old data",
        old: r#"{"type":"number"}"#,
        new: r#"{"type":"integer"}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/type")],
    },
    RuleRow {
        name: "null added to a type list breaks old readers",
        old: r#"{"type":"string"}"#,
        new: r#"{"type":["string","null"]}"#,
        direction: F,
        expect: &[(Rule::TypeNarrowed, "/type")],
    },
    RuleRow {
        name: "enum value added reads old data",
        old: r#"{"enum":["a","b"]}"#,
        new: r#"{"enum":["a","b","c"]}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "enum value added breaks old readers",
        old: r#"{"enum":["a","b"]}"#,
        new: r#"{"enum":["a","b","c"]}"#,
        direction: F,
        expect: &[(Rule::EnumNarrowed, "/enum")],
    },
    RuleRow {
        name: "enum value removed refuses old data",
        old: r#"{"enum":["a","b"]}"#,
        new: r#"{"enum":["a"]}"#,
        direction: B,
        expect: &[(Rule::EnumNarrowed, "/enum")],
    },
    RuleRow {
        name: "enum put on a free string refuses old data",
        old: r#"{"type":"string"}"#,
        new: r#"{"type":"string","enum":["a"]}"#,
        direction: B,
        expect: &[(Rule::EnumNarrowed, "/enum")],
    },
    RuleRow {
        name: "const changed",
        old: r#"{"const":"v1"}"#,
        new: r#"{"const":"v2"}"#,
        direction: B,
        expect: &[(Rule::ConstChanged, "/const")],
    },
    RuleRow {
        name: "enum value too long for a new maxLength",
        old: r#"{"enum":["ab","abcdef"]}"#,
        new: r#"{"type":"string","maxLength":3}"#,
        direction: B,
        expect: &[(Rule::ValueRefused, "/maxLength")],
    },
    RuleRow {
        name: "maxLength lowered refuses old data",
        old: r#"{"type":"string","maxLength":10}"#,
        new: r#"{"type":"string","maxLength":5}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/maxLength")],
    },
    RuleRow {
        name: "maxLength lowered is read by old readers",
        old: r#"{"type":"string","maxLength":10}"#,
        new: r#"{"type":"string","maxLength":5}"#,
        direction: F,
        expect: &[],
    },
    RuleRow {
        name: "minimum raised",
        old: r#"{"type":"number","minimum":0}"#,
        new: r#"{"type":"number","minimum":1}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/minimum")],
    },
    RuleRow {
        name: "inclusive minimum made exclusive",
        old: r#"{"type":"number","minimum":0}"#,
        new: r#"{"type":"number","exclusiveMinimum":0}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/exclusiveMinimum")],
    },
    RuleRow {
        name: "maximum added",
        old: r#"{"type":"number"}"#,
        new: r#"{"type":"number","maximum":1}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/maximum")],
    },
    RuleRow {
        name: "multipleOf refined",
        old: r#"{"type":"integer","multipleOf":2}"#,
        new: r#"{"type":"integer","multipleOf":4}"#,
        direction: B,
        expect: &[(Rule::MultipleOfChanged, "/multipleOf")],
    },
    RuleRow {
        name: "multipleOf relaxed",
        old: r#"{"type":"integer","multipleOf":4}"#,
        new: r#"{"type":"integer","multipleOf":2}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "pattern added",
        old: r#"{"type":"string"}"#,
        new: r#"{"type":"string","pattern":"^a"}"#,
        direction: B,
        expect: &[(Rule::PatternChanged, "/pattern")],
    },
    RuleRow {
        name: "pattern dropped",
        old: r#"{"type":"string","pattern":"^a"}"#,
        new: r#"{"type":"string"}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "format added",
        old: r#"{"type":"string"}"#,
        new: r#"{"type":"string","format":"uuid"}"#,
        direction: B,
        expect: &[(Rule::FormatChanged, "/format")],
    },
    RuleRow {
        name: "array items narrowed",
        old: r#"{"type":"array","items":{"type":"number"}}"#,
        new: r#"{"type":"array","items":{"type":"integer"}}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/items/type")],
    },
    RuleRow {
        name: "maxItems added",
        old: r#"{"type":"array"}"#,
        new: r#"{"type":"array","maxItems":3}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/maxItems")],
    },
    RuleRow {
        name: "uniqueItems added",
        old: r#"{"type":"array"}"#,
        new: r#"{"type":"array","uniqueItems":true}"#,
        direction: B,
        expect: &[(Rule::UniqueItemsAdded, "/uniqueItems")],
    },
    RuleRow {
        name: "nested required property added",
        old: r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"string"}}}}}"#,
        new: r#"{"type":"object","properties":{"o":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}}}"#,
        direction: B,
        expect: &[(Rule::RequiredAdded, "/properties/o/properties/x")],
    },
    RuleRow {
        name: "local $ref target tightened",
        old: r##"{"$defs":{"U":{"type":"string","maxLength":10}},"properties":{"u":{"$ref":"#/$defs/U"}}}"##,
        new: r##"{"$defs":{"U":{"type":"string","maxLength":5}},"properties":{"u":{"$ref":"#/$defs/U"}}}"##,
        direction: B,
        expect: &[(Rule::BoundTightened, "/properties/u/maxLength")],
    },
    RuleRow {
        name: "anyOf branch removed refuses old data",
        old: r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#,
        new: r#"{"anyOf":[{"type":"string"}]}"#,
        direction: B,
        expect: &[(Rule::BranchUnmatched, "/anyOf")],
    },
    RuleRow {
        name: "anyOf branch added reads old data",
        old: r#"{"anyOf":[{"type":"string"}]}"#,
        new: r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "anyOf branch added breaks old readers",
        old: r#"{"anyOf":[{"type":"string"}]}"#,
        new: r#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#,
        direction: F,
        expect: &[(Rule::BranchUnmatched, "/anyOf")],
    },
    RuleRow {
        name: "oneOf with two branches accepting old data",
        old: r#"{"type":"integer"}"#,
        new: r#"{"oneOf":[{"type":"number"},{"type":"integer"}]}"#,
        direction: B,
        expect: &[(Rule::BranchAmbiguous, "/oneOf")],
    },
    RuleRow {
        name: "oneOf branches with required siblings kept",
        old: r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"oneOf":[{"required":["a"]},{"required":["b"]}]}"#,
        new: r#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"oneOf":[{"required":["a"]},{"required":["b"]}]}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "schema-valued additionalProperties narrowed",
        old: r#"{"type":"object","additionalProperties":{"type":"number"}}"#,
        new: r#"{"type":"object","additionalProperties":{"type":"integer"}}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/additionalProperties/type")],
    },
    RuleRow {
        name: "new property must fit the old additionalProperties schema",
        old: r#"{"type":"object","additionalProperties":{"type":"string"}}"#,
        new: r#"{"type":"object","properties":{"p":{"type":"integer"}},"additionalProperties":{"type":"string"}}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/properties/p/type")],
    },
    RuleRow {
        name: "open model closed refuses old extension data",
        old: r#"{"type":"object","properties":{"a":{}}}"#,
        new: r#"{"type":"object","properties":{"a":{}},"additionalProperties":false}"#,
        direction: B,
        expect: &[(Rule::AdditionalPropertiesClosed, "/additionalProperties")],
    },
    RuleRow {
        name: "closed model opened breaks old readers",
        old: r#"{"type":"object","properties":{"a":{}},"additionalProperties":false}"#,
        new: r#"{"type":"object","properties":{"a":{}}}"#,
        direction: F,
        expect: &[(Rule::AdditionalPropertiesClosed, "/additionalProperties")],
    },
    RuleRow {
        name: "open model given a schema for extras",
        old: r#"{"type":"object"}"#,
        new: r#"{"type":"object","additionalProperties":{"type":"string"}}"#,
        direction: B,
        expect: &[(
            Rule::AdditionalPropertiesConstrained,
            "/additionalProperties",
        )],
    },
    RuleRow {
        name: "unmodelled keyword added",
        old: r#"{"type":"object"}"#,
        new: r#"{"type":"object","patternProperties":{"^x":{"type":"string"}}}"#,
        direction: B,
        expect: &[(Rule::UnsupportedKeyword, "/patternProperties")],
    },
    RuleRow {
        name: "annotations changed",
        old: r#"{"type":"string","description":"a"}"#,
        new: r#"{"type":"string","description":"b","title":"t","examples":["x"]}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "unresolvable $ref",
        old: r#"{"type":"string"}"#,
        new: r##"{"$ref":"#/$defs/missing"}"##,
        direction: B,
        expect: &[(Rule::UnresolvedRef, "")],
    },
    RuleRow {
        name: "false schema",
        old: r#"{"type":"string"}"#,
        new: "false",
        direction: B,
        expect: &[(Rule::RefusesEverything, "")],
    },
    RuleRow {
        name: "recursive schema unchanged terminates",
        old: RECURSIVE,
        new: RECURSIVE,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "allOf part tightened",
        old: r#"{"allOf":[{"type":"string"}]}"#,
        new: r#"{"allOf":[{"type":"string"},{"maxLength":2}]}"#,
        direction: B,
        expect: &[(Rule::BoundTightened, "/allOf/1/maxLength")],
    },
    RuleRow {
        name: "allOf with two `not` parts unchanged (regression: merging kept only one `not`)",
        old: r#"{"type":"string","allOf":[{"pattern":"^a"},{"not":{"pattern":"^ab"}},{"not":{"pattern":"^ac"}}]}"#,
        new: r#"{"type":"string","allOf":[{"pattern":"^a"},{"not":{"pattern":"^ab"}},{"not":{"pattern":"^ac"}}]}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "if/then kept as is",
        old: r#"{"type":"object","if":{"properties":{"k":{"const":"x"}}},"then":{"required":["x"]}}"#,
        new: r#"{"type":"object","if":{"properties":{"k":{"const":"x"}}},"then":{"required":["x"]},"description":"d"}"#,
        direction: B,
        expect: &[],
    },
    RuleRow {
        name: "if/then changed",
        old: r#"{"type":"object","if":{"properties":{"k":{"const":"x"}}},"then":{"required":["x"]}}"#,
        new: r#"{"type":"object","if":{"properties":{"k":{"const":"x"}}},"then":{"required":["x","y"]}}"#,
        direction: B,
        expect: &[(Rule::UnsupportedKeyword, "/then")],
    },
    RuleRow {
        name: "prefixItems element narrowed",
        old: r#"{"type":"array","prefixItems":[{"type":"number"}]}"#,
        new: r#"{"type":"array","prefixItems":[{"type":"integer"}]}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/prefixItems/0/type")],
    },
    RuleRow {
        name: "writer prefix element meets the reader's items",
        old: r#"{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}"#,
        new: r#"{"type":"array","items":{"type":"integer"}}"#,
        direction: B,
        expect: &[(Rule::TypeNarrowed, "/prefixItems/0/type")],
    },
    RuleRow {
        name: "writer patternProperties escape its closed model",
        old: r#"{"type":"object","patternProperties":{"^x":{"type":"string"}},"additionalProperties":false}"#,
        new: r#"{"type":"object","additionalProperties":false}"#,
        direction: B,
        expect: &[(Rule::AdditionalPropertiesClosed, "/additionalProperties")],
    },
    RuleRow {
        name: "reader value keywords that do not compile",
        old: r#"{"enum":["a"]}"#,
        new: r#"{"type":"string","pattern":"("}"#,
        direction: B,
        expect: &[(Rule::ValueRefused, "")],
    },
];

const RECURSIVE: &str = r##"{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}}}"##;

#[test]
fn given_the_rule_table_when_each_row_is_checked_then_exactly_the_expected_refusals_are_found() {
    for r in RULES {
        let old: Value = serde_json::from_str(r.old).expect("old parses");
        let new: Value = serde_json::from_str(r.new).expect("new parses");
        let found = super::check(&old, &new, mode(r.direction));
        let got: Vec<(Rule, &str)> = found.iter().map(|i| (i.rule, i.pointer.as_str())).collect();
        assert_eq!(got, r.expect, "{}: {found:#?}", r.name);
        assert!(
            found
                .iter()
                .all(|i| !i.reason.is_empty() && i.direction == r.direction),
            "{}",
            r.name
        );
    }
}

#[test]
fn given_none_mode_when_anything_changes_then_nothing_is_reported() {
    let found = super::check(
        &json!({"type": "string"}),
        &json!({"type": "integer"}),
        CompatibilityMode::None,
    );
    assert!(found.is_empty());
}

#[test]
fn given_a_breaking_change_when_reported_then_the_reason_says_which_schema_refuses_what() {
    let found = super::check(
        &json!({"type": "number"}),
        &json!({"type": "integer"}),
        CompatibilityMode::Full,
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].reason,
        "the old schema admits number but the new schema accepts only integer"
    );
    assert_eq!(
        found[0].to_string(),
        "backward at `/type`: the old schema admits number but the new schema accepts only integer [type_narrowed]"
    );
}

#[test]
fn given_mode_names_when_parsed_then_each_round_trips_and_unknown_names_are_listed() {
    for mode in CompatibilityMode::ALL {
        assert_eq!(mode.as_str().parse::<CompatibilityMode>(), Ok(mode));
    }
    let err = "sideways"
        .parse::<CompatibilityMode>()
        .expect_err("unknown");
    assert!(err.contains("backward_transitive"), "{err}");
}

/// Guards against unbounded recursion: under the strict reading a newly declared recursive
/// property is compared with "anything" level after level until the pair repeats.
#[test]
fn given_the_strict_reading_when_a_recursive_property_is_declared_then_the_check_terminates() {
    let old = json!({"type": "object"});
    let new = json!({
        "type": "object",
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "$defs": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}
    });
    let strict = CheckOptions { open_model: Strict };
    let found = check_with(&old, &new, CompatibilityMode::Backward, strict);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0].rule, found[0].pointer.as_str()),
        (Rule::PropertyConstrained, "/properties/tree")
    );
    assert!(
        check_with(
            &old,
            &new,
            CompatibilityMode::Backward,
            CheckOptions::default()
        )
        .is_empty()
    );
}
