//! Schema compatibility: the seven modes and the structural check behind them.
//!
//! Every mode reduces to one directional question, *does a reader schema accept every instance a
//! writer schema admits?* (`walk.rs` answers it):
//!
//! | mode | direction(s) checked | against |
//! | --- | --- | --- |
//! | `backward` | new reads old data (upgrade consumers first) | the latest version |
//! | `backward_transitive` | new reads old data | every earlier version |
//! | `forward` | old reads new data (upgrade producers first) | the latest version |
//! | `forward_transitive` | old reads new data | every earlier version |
//! | `full` | both | the latest version |
//! | `full_transitive` | both | every earlier version |
//! | `none` | nothing | — |
//!
//! # The content-model matrix
//!
//! The rule table for properties, one row per case of *model × change × property kind ×
//! direction*. "Open" means `additionalProperties` absent or `true`, "closed" means
//! `additionalProperties: false` in both versions. Backward: the new schema reads data written
//! with the old one; forward: the old schema reads data written with the new one. The test
//! table `compat::tests::CONTENT_MODEL_MATRIX` has exactly these rows.
//!
//! | model | change | property | backward | forward |
//! | --- | --- | --- | --- | --- |
//! | open | add | optional | ok — old data lacks it or carries it as extension data ¹ | ok — the old open reader ignores it |
//! | open | add | required | `required_added` — old data may lack it | ok — the old open reader ignores it |
//! | open | remove | optional | ok — the new open reader ignores it | ok — the new writer leaves it undeclared ¹ |
//! | open | remove | required | ok — the new open reader ignores it | `required_added` — the old reader still requires it |
//! | closed | add | optional | ok — old closed data never carries it | `property_refused` — the old closed reader refuses it |
//! | closed | add | required | `required_added` — old data never has it | `property_refused` — new data always carries it |
//! | closed | remove | optional | `property_refused` — old data may carry it | ok — new closed data never carries it |
//! | closed | remove | required | `property_refused` — old data always carries it | `required_added` — new data never has it |
//!
//! ¹ Under an open model a property the schema does not declare is *extension data*: anything may
//! sit there and nothing validates it. The default reading ([`OpenModelReading::Lenient`]) holds
//! that no one may rely on undeclared data, so a later version may claim such a name and give it
//! a schema: adding or removing an optional property of an open model is then fully compatible,
//! which is what people evolving JSON contracts expect. The strict reading
//! ([`OpenModelReading::Strict`], the set-inclusion semantics Confluent's registry applies) says
//! that old writers may already have sent that name with any value, so a constrained newly
//! declared property breaks backward (and a removed one breaks forward) with `property_constrained`.
//! Both readings are in the test table.
//!
//! Changing the model itself: closing an open model (or giving `additionalProperties` a schema)
//! breaks backward with `additional_properties_closed` / `additional_properties_constrained`
//! because old data may carry undeclared properties; opening a closed model breaks forward for
//! the same reason seen from the old reader. A schema-valued `additionalProperties` is compared
//! like a property: a writer's undeclared property must fit the reader's declared one or its
//! `additionalProperties` schema.
//!
//! # The other rules
//!
//! | rule | breaks when the reader... |
//! | --- | --- |
//! | `type_narrowed` | admits fewer types than the writer (`integer` ⊂ `number`, so number→integer narrows, integer→number widens) |
//! | `enum_narrowed` | lacks an `enum` value the writer admits, or adds an `enum` to a free value |
//! | `const_changed` | requires a `const` the writer does not guarantee |
//! | `value_refused` | refuses one of a finite writer's (`enum`/`const`) values through a bound, length, pattern or format |
//! | `bound_tightened` | raises a minimum or lowers a maximum (`minimum`, `exclusive*`, `min/maxLength`, `min/maxItems`, `min/maxProperties`) |
//! | `multiple_of_changed` | requires a `multipleOf` the writer's does not imply |
//! | `pattern_changed`, `format_changed` | adds or changes a `pattern` / `format` (inclusion of regular languages is not decided) |
//! | `unique_items_added` | requires `uniqueItems` |
//! | `branch_unmatched` | has `anyOf`/`oneOf` and no branch accepts all the writer admits (a removed branch); every writer branch must fit (an added writer branch) |
//! | `branch_ambiguous` | has `oneOf` and more than one branch accepts all the writer admits |
//! | `refuses_everything` | is `false` |
//! | `unresolved_ref` | (or writer) has a `$ref` that does not resolve among the embedded documents |
//! | `unsupported_keyword` | changes a keyword the checker does not model (`patternProperties`, `not`, `if`...) |
//!
//! Widening (a reader admitting more) is always fine in that direction and is exactly what
//! breaks the opposite one, so `full` refuses both. `items` and `prefixItems` (position by
//! position), `properties`, `additionalProperties`,
//! `allOf`/`anyOf`/`oneOf` branches and `$ref` targets (local `#/$defs/...` or another embedded
//! file) are compared recursively; recursive schemas stop at a pair already being compared.
//!
//! # Limits (all on the safe side)
//!
//! - Keywords not modelled (`not`, `if`/`then`/`else`, `patternProperties`, `propertyNames`,
//!   `dependent*`, `contains`, `unevaluated*`) are refused when the reader changes them and
//!   ignored in the writer, which can only make the writer look larger; a writer with
//!   `patternProperties` is taken as an open model. Identical `patternProperties` on both sides
//!   of a closed model may therefore raise a false alarm.
//! - A finite writer (`enum`/`const`) is compared value by value with the reader's `enum`,
//!   `const`, type and scalar keywords; object or array values are not walked into.
//! - `pattern` and `format` are compared by equality, not by language inclusion.
//!
//! Each [`Incompatibility`] carries the rule, a sentence naming both schemas, and the JSON
//! pointer of the schema location at fault as if every `$ref` were inlined: the path both
//! schemas share down to the keyword that differs (`/properties/a/maxLength`), which for a
//! property only one of them declares is its path in that one, and for branches the reading
//! schema's `anyOf`/`oneOf`.

mod types;
mod walk;

#[cfg(test)]
mod tests;

use std::{fmt, str::FromStr};

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::documents::{Documents, Loc};

/// How a subject's versions must relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompatibilityMode {
    /// The new schema reads data written with the latest one.
    Backward,
    /// The new schema reads data written with every earlier one.
    BackwardTransitive,
    /// The latest schema reads data written with the new one.
    Forward,
    /// Every earlier schema reads data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier version.
    FullTransitive,
    /// No check.
    None,
}

impl CompatibilityMode {
    /// Every mode, in the order of the table above.
    pub const ALL: [CompatibilityMode; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    /// The directions this mode checks.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            Self::Backward | Self::BackwardTransitive => &[Direction::Backward],
            Self::Forward | Self::ForwardTransitive => &[Direction::Forward],
            Self::Full | Self::FullTransitive => &[Direction::Backward, Direction::Forward],
            Self::None => &[],
        }
    }

    /// Whether a new version is checked against every earlier version, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The name used in `registry.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "backward",
            Self::BackwardTransitive => "backward_transitive",
            Self::Forward => "forward",
            Self::ForwardTransitive => "forward_transitive",
            Self::Full => "full",
            Self::FullTransitive => "full_transitive",
            Self::None => "none",
        }
    }
}

impl fmt::Display for CompatibilityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|m| m.as_str()).collect();
                format!(
                    "unknown compatibility mode `{s}`, expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Which schema reads which schema's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The new schema reads data written with the old one.
    Backward,
    /// The old schema reads data written with the new one.
    Forward,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Backward => "backward",
            Self::Forward => "forward",
        })
    }
}

/// The rule an incompatibility breaks (see the tables in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The reader admits fewer types.
    TypeNarrowed,
    /// The reader requires a property the writer does not guarantee.
    RequiredAdded,
    /// The reader's closed model refuses a property the writer declares.
    PropertyRefused,
    /// Strict reading: the reader constrains a name the writer's open model left free.
    PropertyConstrained,
    /// The reader closes a model the writer leaves open.
    AdditionalPropertiesClosed,
    /// The reader constrains undeclared properties the writer leaves free.
    AdditionalPropertiesConstrained,
    /// The reader's `enum` lacks values the writer admits.
    EnumNarrowed,
    /// The reader's `const` is not guaranteed by the writer.
    ConstChanged,
    /// The reader refuses one of a finite writer's values.
    ValueRefused,
    /// A minimum raised or a maximum lowered.
    BoundTightened,
    /// A `multipleOf` the writer's does not imply.
    MultipleOfChanged,
    /// A `pattern` added or changed.
    PatternChanged,
    /// A `format` added or changed.
    FormatChanged,
    /// `uniqueItems` required.
    UniqueItemsAdded,
    /// No reader branch accepts everything the writer admits.
    BranchUnmatched,
    /// Several reader `oneOf` branches accept everything the writer admits.
    BranchAmbiguous,
    /// The reader is `false`.
    RefusesEverything,
    /// A `$ref` does not resolve.
    UnresolvedRef,
    /// A keyword the checker does not model changed.
    UnsupportedKeyword,
}

impl Rule {
    /// The rule's stable `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TypeNarrowed => "type_narrowed",
            Self::RequiredAdded => "required_added",
            Self::PropertyRefused => "property_refused",
            Self::PropertyConstrained => "property_constrained",
            Self::AdditionalPropertiesClosed => "additional_properties_closed",
            Self::AdditionalPropertiesConstrained => "additional_properties_constrained",
            Self::EnumNarrowed => "enum_narrowed",
            Self::ConstChanged => "const_changed",
            Self::ValueRefused => "value_refused",
            Self::BoundTightened => "bound_tightened",
            Self::MultipleOfChanged => "multiple_of_changed",
            Self::PatternChanged => "pattern_changed",
            Self::FormatChanged => "format_changed",
            Self::UniqueItemsAdded => "unique_items_added",
            Self::BranchUnmatched => "branch_unmatched",
            Self::BranchAmbiguous => "branch_ambiguous",
            Self::RefusesEverything => "refuses_everything",
            Self::UnresolvedRef => "unresolved_ref",
            Self::UnsupportedKeyword => "unsupported_keyword",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason why a new schema is not compatible with an old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incompatibility {
    /// Which way the data would flow to be refused.
    pub direction: Direction,
    /// JSON pointer of the schema location at fault, as if every `$ref` were inlined.
    pub pointer: String,
    /// The rule broken.
    pub rule: Rule,
    /// A sentence naming both schemas and what one admits that the other refuses.
    pub reason: String,
    /// The earlier version compared against, when the registry made the comparison.
    pub against: Option<Version>,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let against = self
            .against
            .as_ref()
            .map_or(String::new(), |v| format!(" against {v}"));
        write!(
            f,
            "{}{against} at `{}`: {} [{}]",
            self.direction, self.pointer, self.reason, self.rule
        )
    }
}

/// How undeclared properties of an open content model are read; see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OpenModelReading {
    /// Undeclared properties are extension data nobody may rely on: a later version may
    /// declare (or stop declaring) them freely.
    #[default]
    Lenient,
    /// Set inclusion: an open writer may already carry any name with any value.
    Strict,
}

/// Options of a compatibility check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CheckOptions {
    /// How open content models are read.
    pub open_model: OpenModelReading,
}

/// Every incompatibility of `new` with `old` under `mode`, for self-contained schemas (their
/// `$ref`s point into themselves), with the default options.
pub fn check(old: &Value, new: &Value, mode: CompatibilityMode) -> Vec<Incompatibility> {
    check_with(old, new, mode, CheckOptions::default())
}

/// [`check`] with explicit options.
pub fn check_with(
    old: &Value,
    new: &Value,
    mode: CompatibilityMode,
    options: CheckOptions,
) -> Vec<Incompatibility> {
    let docs = Documents::new();
    let old = Located {
        loc: Loc {
            file: "old.json",
            root: old,
        },
        schema: old,
    };
    let new = Located {
        loc: Loc {
            file: "new.json",
            root: new,
        },
        schema: new,
    };
    check_located(&docs, old, new, mode.directions(), options)
}

/// A schema and the document its `$ref`s resolve in.
#[derive(Clone, Copy)]
pub(crate) struct Located<'a> {
    pub(crate) loc: Loc<'a>,
    pub(crate) schema: &'a Value,
}

/// The check the registry runs: schemas inside documents, references resolved through `docs`.
pub(crate) fn check_located<'a>(
    docs: &'a Documents,
    old: Located<'a>,
    new: Located<'a>,
    directions: &[Direction],
    options: CheckOptions,
) -> Vec<Incompatibility> {
    let mut found = Vec::new();
    for &direction in directions {
        let (writer, reader) = match direction {
            Direction::Backward => (side(old), side(new)),
            Direction::Forward => (side(new), side(old)),
        };
        let mut walk = walk::Walk::new(docs, options, direction);
        walk.reads(writer, reader, "");
        found.extend(walk.finish());
    }
    found
}

fn side(s: Located<'_>) -> walk::Side<'_> {
    walk::Side {
        loc: s.loc,
        schema: s.schema,
    }
}
