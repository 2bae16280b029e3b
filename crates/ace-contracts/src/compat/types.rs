//! The set of JSON types a schema admits, from its `type` keyword or, failing that, from the
//! values its `enum`/`const` lists. `integer` is a subset of `number`, which the checks honour.

use std::fmt;

use serde_json::{Map, Value};

/// A set of JSON Schema types as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u8);

const NAMES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "integer", "string",
];

impl TypeSet {
    pub(crate) const OBJECT: TypeSet = TypeSet(1 << 2);
    pub(crate) const ARRAY: TypeSet = TypeSet(1 << 3);
    const NUMBER: TypeSet = TypeSet(1 << 4);
    const INTEGER: TypeSet = TypeSet(1 << 5);
    pub(crate) const STRING: TypeSet = TypeSet(1 << 6);
    const ALL: TypeSet = TypeSet(0x7f);

    /// The types a schema object admits.
    pub(crate) fn of(schema: &Map<String, Value>) -> TypeSet {
        match schema.get("type") {
            Some(Value::String(name)) => TypeSet::named(name),
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(Value::as_str)
                .fold(TypeSet(0), |set, n| set.union(TypeSet::named(n))),
            _ => match schema.get("const").map(std::slice::from_ref).or_else(|| {
                schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
            }) {
                Some(values) => values
                    .iter()
                    .fold(TypeSet(0), |set, v| set.union(TypeSet::of_value(v))),
                None => TypeSet::ALL,
            },
        }
    }

    fn named(name: &str) -> TypeSet {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(TypeSet(0), |i| TypeSet(1 << i))
    }

    fn of_value(value: &Value) -> TypeSet {
        match value {
            Value::Null => TypeSet(1),
            Value::Bool(_) => TypeSet(1 << 1),
            Value::Object(_) => TypeSet::OBJECT,
            Value::Array(_) => TypeSet::ARRAY,
            Value::Number(n) if n.is_i64() || n.is_u64() => TypeSet::INTEGER,
            Value::Number(_) => TypeSet::NUMBER,
            Value::String(_) => TypeSet::STRING,
        }
    }

    fn union(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    /// `number` admits integers, so a set with `number` is widened with `integer` for comparisons.
    fn widened(self) -> TypeSet {
        if self.contains(TypeSet::NUMBER) {
            self.union(TypeSet::INTEGER)
        } else {
            self
        }
    }

    /// Types both sets admit.
    pub(crate) fn intersect(self, other: TypeSet) -> TypeSet {
        TypeSet(self.widened().0 & other.widened().0)
    }

    pub(crate) fn contains(self, other: TypeSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub(crate) fn may_be_number(self) -> bool {
        self.0 & (TypeSet::NUMBER.0 | TypeSet::INTEGER.0) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types of `self` (a writer) that `reader` does not admit.
    pub(crate) fn refused_by(self, reader: TypeSet) -> TypeSet {
        TypeSet(self.0 & !reader.widened().0)
    }
}

impl fmt::Display for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == TypeSet::ALL {
            return f.write_str("any type");
        }
        let names: Vec<_> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect();
        f.write_str(&names.join("|"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn of(v: &Value) -> TypeSet {
        TypeSet::of(v.as_object().expect("object"))
    }

    #[test]
    fn given_integer_writer_when_number_reader_then_nothing_is_refused() {
        let (integer, number) = (
            of(&json!({"type": "integer"})),
            of(&json!({"type": "number"})),
        );
        assert!(integer.refused_by(number).is_empty());
        assert_eq!(number.refused_by(integer).to_string(), "number");
    }

    #[test]
    fn given_enum_without_type_when_typed_then_types_come_from_values() {
        assert_eq!(
            of(&json!({"enum": ["a", 1, null]})).to_string(),
            "null|integer|string"
        );
        assert_eq!(of(&json!({})).to_string(), "any type");
    }
}
