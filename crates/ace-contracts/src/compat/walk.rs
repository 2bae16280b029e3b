//! The structural check behind every compatibility mode: does a *reader* schema accept every
//! instance a *writer* schema admits (is the writer's instance set a subset of the reader's)?
//! Backward runs it with the new schema reading the old one's data, forward the other way round.
//!
//! The check is conservative: when it cannot prove inclusion (an unknown keyword the reader added,
//! a changed `pattern`) it reports an incompatibility rather than guess. Writer-side keywords it
//! does not understand are ignored, which only makes the writer look larger, so it never lets a
//! breaking change through because of them.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{CheckOptions, Direction, Incompatibility, Rule};
use crate::documents::{Documents, Loc};

mod keywords;

/// Keywords the walk understands.
pub(super) const HANDLED: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "allOf",
    "anyOf",
    "oneOf",
];

/// Keywords that never constrain an instance.
pub(super) const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "$anchor",
    "$dynamicAnchor",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
];

/// A sub-schema and the document it lives in.
#[derive(Clone, Copy)]
pub(super) struct Side<'a> {
    pub(super) loc: Loc<'a>,
    pub(super) schema: &'a Value,
}

/// One directional check in progress.
pub(super) struct Walk<'d> {
    docs: &'d Documents,
    options: CheckOptions,
    direction: Direction,
    /// Pairs of (writer, reader) schemas being compared up the stack: `$ref` cycles stop here.
    on_stack: HashSet<(usize, usize)>,
    found: Vec<Incompatibility>,
}

impl<'d> Walk<'d> {
    pub(super) fn new(docs: &'d Documents, options: CheckOptions, direction: Direction) -> Self {
        Self {
            docs,
            options,
            direction,
            on_stack: HashSet::new(),
            found: Vec::new(),
        }
    }

    pub(super) fn finish(self) -> Vec<Incompatibility> {
        self.found
    }

    fn reader(&self) -> &'static str {
        match self.direction {
            Direction::Backward => "the new schema",
            Direction::Forward => "the old schema",
        }
    }

    fn writer(&self) -> &'static str {
        match self.direction {
            Direction::Backward => "the old schema",
            Direction::Forward => "the new schema",
        }
    }

    fn report(&mut self, pointer: String, rule: Rule, reason: String) {
        let direction = self.direction;
        self.found.push(Incompatibility {
            direction,
            pointer,
            rule,
            reason,
            against: None,
        });
    }

    /// Runs a nested check whose findings are returned instead of reported.
    fn trial<'a>(&self, w: Side<'a>, r: Side<'a>, ptr: &str) -> Vec<Incompatibility>
    where
        'd: 'a,
    {
        let mut nested = Walk {
            docs: self.docs,
            options: self.options,
            direction: self.direction,
            on_stack: self.on_stack.clone(),
            found: Vec::new(),
        };
        nested.reads(w, r, ptr);
        nested.found
    }

    /// Reports every way in which an instance admitted by `w` could be refused by `r`.
    pub(super) fn reads<'a>(&mut self, w: Side<'a>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        if let Some(reference) = ref_of(r.schema) {
            return self.reader_ref(w, r, reference, ptr);
        }
        if let Some(reference) = ref_of(w.schema) {
            // Siblings of a writer's `$ref` only narrow the writer: ignoring them is safe.
            let Some((loc, target)) = self.resolve(w.loc, reference, ptr) else {
                return;
            };
            let target = Side {
                loc,
                schema: target,
            };
            return self.guarded(target, r, ptr);
        }
        if accepts_everything(r.schema) || w.schema == &Value::Bool(false) {
            return;
        }
        if r.schema == &Value::Bool(false) {
            let reason = format!(
                "{} accepts nothing here, {} admits values",
                self.reader(),
                self.writer()
            );
            return self.report(ptr.to_owned(), Rule::RefusesEverything, reason);
        }
        let empty = Map::new();
        let wm = w.schema.as_object().unwrap_or(&empty);
        let rm = r.schema.as_object().unwrap_or(&empty);
        if wm.contains_key("allOf") {
            return self.writer_all_of(w, wm, r, ptr);
        }
        if wm.contains_key("anyOf") || wm.contains_key("oneOf") {
            return self.writer_branches(w, wm, r, ptr);
        }
        self.reader_all_of(w, r, rm, ptr);
        self.reader_branches(w, r, rm, ptr);
        self.keywords(w, wm, r, rm, ptr);
    }

    fn resolve<'a>(
        &mut self,
        at: Loc<'a>,
        reference: &str,
        ptr: &str,
    ) -> Option<(Loc<'a>, &'a Value)>
    where
        'd: 'a,
    {
        let found = self.docs.resolve(at, reference);
        if found.is_none() {
            let reason = format!(
                "`$ref` `{reference}` in {} does not resolve among the embedded contracts",
                at.file
            );
            self.report(ptr.to_owned(), Rule::UnresolvedRef, reason);
        }
        found
    }

    /// Compares through a `$ref`, stopping at a pair already being compared (a recursive
    /// schema). Pairs are keyed by address: every pair on the stack is borrowed by a frame
    /// below, so it is alive and no other value can share its address.
    fn guarded<'a>(&mut self, w: Side<'a>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        let key = (
            std::ptr::from_ref(w.schema) as usize,
            std::ptr::from_ref(r.schema) as usize,
        );
        if self.on_stack.insert(key) {
            self.reads(w, r, ptr);
            self.on_stack.remove(&key);
        }
    }

    fn reader_ref<'a>(&mut self, w: Side<'a>, r: Side<'a>, reference: &str, ptr: &str)
    where
        'd: 'a,
    {
        // A reader's `$ref` with constraining siblings is the conjunction of both.
        let siblings: Map<String, Value> = r
            .schema
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !siblings.is_empty() {
            let siblings = Value::Object(siblings);
            self.reads(
                w,
                Side {
                    loc: r.loc,
                    schema: &siblings,
                },
                ptr,
            );
        }
        if let Some((loc, target)) = self.resolve(r.loc, reference, ptr) {
            self.guarded(
                w,
                Side {
                    loc,
                    schema: target,
                },
                ptr,
            );
        }
    }

    /// A writer `allOf` admits what its own keywords and every part admit together: the parts
    /// are merged into one schema (see [`merge`]) and compared as such. A reader `allOf` part
    /// the writer has too is implied by it and replaced with `true` first, because merging can
    /// only keep one of several same-named keywords (two `not`s, say).
    fn writer_all_of<'a>(&mut self, w: Side<'a>, wm: &Map<String, Value>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        let w_parts = wm
            .get("allOf")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let merged = w_parts
            .iter()
            .fold(Value::Object(without(wm, &["allOf"])), |acc, part| {
                merge(acc.as_object().unwrap_or(&Map::new()), part)
            });
        let merged = Side {
            schema: &merged,
            ..w
        };
        let Some(r_parts) = r.schema.get("allOf").and_then(Value::as_array) else {
            return self.reads(merged, r, ptr);
        };
        let implied = |part: &Value| {
            w_parts
                .iter()
                .any(|wp| same_meaning(Side { schema: wp, ..w }, Side { schema: part, ..r }))
        };
        let kept: Vec<Value> = r_parts
            .iter()
            .map(|p| {
                if implied(p) {
                    Value::Bool(true)
                } else {
                    p.clone()
                }
            })
            .collect();
        let mut reduced = r.schema.as_object().cloned().unwrap_or_default();
        reduced.insert("allOf".to_owned(), Value::Array(kept));
        let reduced = Value::Object(reduced);
        self.reads(
            merged,
            Side {
                schema: &reduced,
                ..r
            },
            ptr,
        );
    }

    /// A writer with `anyOf`/`oneOf` admits the union of its branches (each narrowed by the
    /// sibling keywords): every branch must fit in the reader.
    fn writer_branches<'a>(&mut self, w: Side<'a>, wm: &Map<String, Value>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        let own = without(wm, &["anyOf", "oneOf"]);
        for keyword in ["anyOf", "oneOf"] {
            let branches = wm
                .get(keyword)
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for branch in branches {
                let merged = merge(&own, branch);
                self.reads(
                    Side {
                        schema: &merged,
                        ..w
                    },
                    r,
                    ptr,
                );
            }
        }
    }

    fn reader_all_of<'a>(&mut self, w: Side<'a>, r: Side<'a>, rm: &'a Map<String, Value>, ptr: &str)
    where
        'd: 'a,
    {
        let parts = rm
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, part) in parts.enumerate() {
            self.reads(w, Side { schema: part, ..r }, &format!("{ptr}/allOf/{i}"));
        }
    }

    /// A reader with `anyOf`/`oneOf` must have a branch that accepts all of the writer; under
    /// `oneOf` no two branches may both accept all of it (every instance would match twice).
    fn reader_branches<'a>(
        &mut self,
        w: Side<'a>,
        r: Side<'a>,
        rm: &'a Map<String, Value>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        for keyword in ["anyOf", "oneOf"] {
            let Some(branches) = rm.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            let here = format!("{ptr}/{keyword}");
            let findings: Vec<_> = branches
                .iter()
                .enumerate()
                .map(|(i, b)| self.trial(w, Side { schema: b, ..r }, &format!("{here}/{i}")))
                .collect();
            let fitting = findings.iter().filter(|f| f.is_empty()).count();
            if fitting == 0 {
                let closest = findings
                    .iter()
                    .min_by_key(|f| f.len())
                    .and_then(|f| f.first());
                let detail = closest.map_or(String::new(), |c| {
                    format!(" (closest branch: {})", c.reason)
                });
                let reason = format!(
                    "no branch of {}'s `{keyword}` accepts everything {} admits{detail}",
                    self.reader(),
                    self.writer()
                );
                self.report(here, Rule::BranchUnmatched, reason);
            } else if fitting > 1 && keyword == "oneOf" {
                let reason = format!(
                    "{fitting} branches of {}'s `oneOf` accept everything {} admits, so its data matches more than one",
                    self.reader(),
                    self.writer()
                );
                self.report(here, Rule::BranchAmbiguous, reason);
            }
        }
    }
}

/// Whether two schemas certainly admit the same instances: equal JSON, and any `$ref` inside
/// resolves in the same document (equal text in two versions' files may point at different
/// definitions).
fn same_meaning(w: Side<'_>, r: Side<'_>) -> bool {
    w.schema == r.schema
        && (!has_ref(w.schema)
            || (w.loc.file == r.loc.file && std::ptr::eq(w.loc.root, r.loc.root)))
}

fn has_ref(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.iter().any(|(k, v)| k == "$ref" || has_ref(v)),
        Value::Array(items) => items.iter().any(has_ref),
        _ => false,
    }
}

/// The schema that admits everything, at one address so that comparisons of "anything" with
/// a recursive schema meet their own pair again and stop.
pub(super) static ANY: Value = Value::Bool(true);

fn ref_of(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str)
}

/// `true`, or an object with nothing but annotations.
pub(super) fn accepts_everything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(m) => m.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

fn without(m: &Map<String, Value>, keywords: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !keywords.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A writer branch narrowed by its siblings: `required` lists and `properties` are united, other
/// keywords taken from the branch when both have them (which can only make the writer larger).
fn merge(own: &Map<String, Value>, branch: &Value) -> Value {
    let Some(branch) = branch.as_object() else {
        return branch.clone();
    };
    let mut merged = own.clone();
    for (key, value) in branch {
        match (key.as_str(), merged.get_mut(key)) {
            ("required", Some(Value::Array(mine))) => {
                mine.extend(value.as_array().into_iter().flatten().cloned())
            }
            ("properties", Some(Value::Object(mine))) => {
                mine.extend(
                    value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(merged)
}

/// Escapes a name as one JSON pointer token (RFC 6901).
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
