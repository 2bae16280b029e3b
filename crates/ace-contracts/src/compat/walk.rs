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

use super::{CheckOptions, Direction, Incompatibility, OpenModelReading, Rule, types::TypeSet};
use crate::documents::{Documents, Loc};

/// Keywords the walk understands.
const HANDLED: &[&str] = &[
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
const ANNOTATIONS: &[&str] = &[
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

/// Scalar keywords checked value by value when the writer is a finite set (`enum` / `const`).
const SCALAR: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
];

/// A sub-schema and the document it lives in. `persistent` is false for schemas the walk
/// built itself (merged branches), whose addresses must not serve as cycle-guard keys.
#[derive(Clone, Copy)]
pub(super) struct Side<'a> {
    pub(super) loc: Loc<'a>,
    pub(super) schema: &'a Value,
    pub(super) persistent: bool,
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
                persistent: true,
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

    /// Compares through a `$ref`, stopping at a pair already being compared (a recursive schema).
    fn guarded<'a>(&mut self, w: Side<'a>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        if !(w.persistent && r.persistent) {
            return self.reads(w, r, ptr);
        }
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
                    persistent: false,
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
                    persistent: true,
                },
                ptr,
            );
        }
    }

    /// A writer `allOf` admits what its own keywords and every part admit together: the parts
    /// are merged into one schema (see [`merge`]) and compared as such.
    fn writer_all_of<'a>(&mut self, w: Side<'a>, wm: &Map<String, Value>, r: Side<'a>, ptr: &str)
    where
        'd: 'a,
    {
        let parts = wm
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let merged = parts.fold(Value::Object(without(wm, &["allOf"])), |acc, part| {
            merge(acc.as_object().unwrap_or(&Map::new()), part)
        });
        self.reads(
            Side {
                schema: &merged,
                persistent: false,
                ..w
            },
            r,
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
                        persistent: false,
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

    /// The keyword-by-keyword comparison of two schemas without references or combinators.
    fn keywords<'a>(
        &mut self,
        w: Side<'a>,
        wm: &'a Map<String, Value>,
        r: Side<'a>,
        rm: &'a Map<String, Value>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        let (wt, rt) = (TypeSet::of(wm), TypeSet::of(rm));
        self.types(wt, rt, ptr);
        self.unsupported(wm, rm, ptr);
        if let Some(values) = finite_values(wm) {
            return self.values(&values, rm, ptr);
        }
        self.enumerations(rm, ptr);
        let both = wt.intersect(rt);
        if both.may_be_number() {
            self.numbers(wm, rm, ptr);
        }
        if both.contains(TypeSet::STRING) {
            self.bounds(wm, rm, ptr, "minLength", "maxLength");
            self.same_or_absent(wm, rm, ptr, "pattern", Rule::PatternChanged);
            self.same_or_absent(wm, rm, ptr, "format", Rule::FormatChanged);
        }
        if both.contains(TypeSet::ARRAY) {
            self.arrays(w, wm, r, rm, ptr);
        }
        if both.contains(TypeSet::OBJECT) {
            self.objects(w, wm, r, rm, ptr);
        }
    }

    fn types(&mut self, wt: TypeSet, rt: TypeSet, ptr: &str) {
        let refused = wt.refused_by(rt);
        if !refused.is_empty() {
            let reason = format!(
                "{} admits {refused} but {} accepts only {rt}",
                self.writer(),
                self.reader()
            );
            self.report(format!("{ptr}/type"), Rule::TypeNarrowed, reason);
        }
    }

    /// A finite writer (`enum`/`const`): each of its values must pass the reader's value keywords.
    fn values(&mut self, values: &[&Value], rm: &Map<String, Value>, ptr: &str) {
        let allowed = reader_values(rm);
        let scalar: Map<String, Value> = SCALAR
            .iter()
            .filter_map(|k| rm.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        let scalar = (!scalar.is_empty()).then(|| {
            jsonschema::options()
                .should_validate_formats(true)
                .build(&Value::Object(scalar))
        });
        for value in values {
            if let Some((keyword, allowed)) = &allowed
                && !allowed.contains(value)
            {
                let reason = format!(
                    "{} admits the value {value} that {}'s `{keyword}` does not allow",
                    self.writer(),
                    self.reader()
                );
                let rule = if *keyword == "const" {
                    Rule::ConstChanged
                } else {
                    Rule::EnumNarrowed
                };
                self.report(format!("{ptr}/{keyword}"), rule, reason);
            }
            if let Some(Ok(validator)) = &scalar
                && let Err(error) = validator.validate(value)
            {
                let reason = format!(
                    "{} refuses the value {value} that {} admits: {error}",
                    self.reader(),
                    self.writer()
                );
                let at = format!("{ptr}{}", error.schema_path().as_str());
                self.report(at, Rule::ValueRefused, reason);
            }
        }
    }

    /// A reader `enum`/`const` facing a writer that admits unlisted values.
    fn enumerations(&mut self, rm: &Map<String, Value>, ptr: &str) {
        if let Some((keyword, _)) = reader_values(rm) {
            let rule = if keyword == "const" {
                Rule::ConstChanged
            } else {
                Rule::EnumNarrowed
            };
            let reason = format!(
                "{} restricts values with `{keyword}` but {} admits values outside it",
                self.reader(),
                self.writer()
            );
            self.report(format!("{ptr}/{keyword}"), rule, reason);
        }
    }

    fn numbers(&mut self, wm: &Map<String, Value>, rm: &Map<String, Value>, ptr: &str) {
        let (wl, rl) = (
            bound(wm, "minimum", "exclusiveMinimum", f64::max),
            bound(rm, "minimum", "exclusiveMinimum", f64::max),
        );
        if tighter(rl, wl, |r, w| r > w) {
            self.tightened(ptr, rl.map_or("minimum", |b| b.1), "lower bound");
        }
        let (wu, ru) = (
            bound(wm, "maximum", "exclusiveMaximum", f64::min),
            bound(rm, "maximum", "exclusiveMaximum", f64::min),
        );
        if tighter(ru, wu, |r, w| r < w) {
            self.tightened(ptr, ru.map_or("maximum", |b| b.1), "upper bound");
        }
        if let Some(m) = rm.get("multipleOf").and_then(Value::as_f64) {
            let w = wm.get("multipleOf").and_then(Value::as_f64);
            if !w.is_some_and(|w| (w / m).fract().abs() < 1e-9) {
                let reason = format!(
                    "{} requires multiples of {m}, {} does not guarantee them",
                    self.reader(),
                    self.writer()
                );
                self.report(format!("{ptr}/multipleOf"), Rule::MultipleOfChanged, reason);
            }
        }
    }

    fn tightened(&mut self, ptr: &str, keyword: &str, what: &str) {
        let reason = format!(
            "{}'s {what} (`{keyword}`) is tighter than {}'s",
            self.reader(),
            self.writer()
        );
        self.report(format!("{ptr}/{keyword}"), Rule::BoundTightened, reason);
    }

    /// Count bounds (`minLength`/`maxLength`, `minItems`/`maxItems`...).
    fn bounds(
        &mut self,
        wm: &Map<String, Value>,
        rm: &Map<String, Value>,
        ptr: &str,
        min: &str,
        max: &str,
    ) {
        let count = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_u64);
        if count(rm, min).unwrap_or(0) > count(wm, min).unwrap_or(0) {
            self.tightened(ptr, min, "minimum count");
        }
        if count(rm, max).unwrap_or(u64::MAX) < count(wm, max).unwrap_or(u64::MAX) {
            self.tightened(ptr, max, "maximum count");
        }
    }

    /// Keywords whose inclusion cannot be decided structurally: the reader must keep the
    /// writer's exact value or not have the keyword at all.
    fn same_or_absent(
        &mut self,
        wm: &Map<String, Value>,
        rm: &Map<String, Value>,
        ptr: &str,
        keyword: &str,
        rule: Rule,
    ) {
        if let Some(value) = rm.get(keyword)
            && wm.get(keyword) != Some(value)
        {
            let reason = format!(
                "{} requires `{keyword}` {value} which {} does not guarantee",
                self.reader(),
                self.writer()
            );
            self.report(format!("{ptr}/{keyword}"), rule, reason);
        }
    }

    fn arrays<'a>(
        &mut self,
        w: Side<'a>,
        wm: &'a Map<String, Value>,
        r: Side<'a>,
        rm: &'a Map<String, Value>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        self.bounds(wm, rm, ptr, "minItems", "maxItems");
        if rm.get("uniqueItems") == Some(&Value::Bool(true))
            && wm.get("uniqueItems") != Some(&Value::Bool(true))
        {
            let reason = format!(
                "{} requires unique items, {} admits repeats",
                self.reader(),
                self.writer()
            );
            self.report(format!("{ptr}/uniqueItems"), Rule::UniqueItemsAdded, reason);
        }
        if let (Some(ri), true) = (
            rm.get("items"),
            !rm.get("items").is_some_and(Value::is_array),
        ) {
            let wi = wm
                .get("items")
                .filter(|i| !i.is_array())
                .unwrap_or(&Value::Bool(true));
            self.reads(
                Side { schema: wi, ..w },
                Side { schema: ri, ..r },
                &format!("{ptr}/items"),
            );
        }
    }

    fn objects<'a>(
        &mut self,
        w: Side<'a>,
        wm: &'a Map<String, Value>,
        r: Side<'a>,
        rm: &'a Map<String, Value>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        self.bounds(wm, rm, ptr, "minProperties", "maxProperties");
        let (w_required, r_required) = (names(wm, "required"), names(rm, "required"));
        for name in r_required.iter().filter(|n| !w_required.contains(n)) {
            let reason = format!(
                "{} requires property `{name}`, which data written with {} may lack",
                self.reader(),
                self.writer()
            );
            self.report(
                format!("{ptr}/properties/{}", escape(name)),
                Rule::RequiredAdded,
                reason,
            );
        }
        let (w_props, r_props) = (properties(wm), properties(rm));
        let (w_extra, r_extra) = (Extra::of(wm), Extra::of(rm));
        for (name, wp) in w_props {
            let here = format!("{ptr}/properties/{}", escape(name));
            let wp = Side { schema: wp, ..w };
            match (r_props.get(name), r_extra) {
                (Some(rp), _) => self.reads(wp, Side { schema: rp, ..r }, &here),
                (None, Extra::Open) => {}
                (None, Extra::Closed) => self.refused(wp, name, here),
                (None, Extra::Schema(s)) => self.reads(wp, Side { schema: s, ..r }, &here),
            }
        }
        for (name, rp) in r_props.iter().filter(|(n, _)| !w_props.contains_key(*n)) {
            let here = format!("{ptr}/properties/{}", escape(name));
            let rp = Side { schema: rp, ..r };
            match w_extra {
                Extra::Closed => {}
                Extra::Schema(s) => self.reads(Side { schema: s, ..w }, rp, &here),
                Extra::Open => self.claimed(w, rp, name, here),
            }
        }
        self.extras(w, w_extra, r, r_extra, ptr);
    }

    /// The writer declares `name`, the reader's closed model has no place for it.
    fn refused(&mut self, wp: Side<'_>, name: &str, here: String) {
        if wp.schema != &Value::Bool(false) {
            let reason = format!(
                "{}'s closed content model (`additionalProperties: false`) refuses property `{name}`, which {} lets data carry",
                self.reader(),
                self.writer()
            );
            self.report(here, Rule::PropertyRefused, reason);
        }
    }

    /// The reader declares `name`, the writer's open model leaves it undeclared. See
    /// [`OpenModelReading`] for why this is accepted by default.
    fn claimed<'a>(&mut self, w: Side<'a>, rp: Side<'a>, name: &str, here: String)
    where
        'd: 'a,
    {
        if self.options.open_model == OpenModelReading::Lenient {
            return;
        }
        let any = Value::Bool(true);
        let findings = self.trial(
            Side {
                schema: &any,
                persistent: false,
                ..w
            },
            rp,
            &here,
        );
        if let Some(first) = findings.first() {
            let reason = format!(
                "{}'s open content model lets data carry `{name}` with any value, {} constrains it: {}",
                self.writer(),
                self.reader(),
                first.reason
            );
            self.report(here, Rule::PropertyConstrained, reason);
        }
    }

    /// Undeclared properties: the writer's `additionalProperties` against the reader's.
    fn extras<'a>(
        &mut self,
        w: Side<'a>,
        w_extra: Extra<'a>,
        r: Side<'a>,
        r_extra: Extra<'a>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        let here = format!("{ptr}/additionalProperties");
        match (w_extra, r_extra) {
            (Extra::Closed, _) | (_, Extra::Open) => {}
            (Extra::Open | Extra::Schema(_), Extra::Closed) => {
                let reason = format!(
                    "{} closes the content model (`additionalProperties: false`) but {} lets data carry undeclared properties",
                    self.reader(),
                    self.writer()
                );
                self.report(here, Rule::AdditionalPropertiesClosed, reason);
            }
            (Extra::Open, Extra::Schema(s)) => {
                let any = Value::Bool(true);
                if let Some(first) = self
                    .trial(
                        Side {
                            schema: &any,
                            persistent: false,
                            ..w
                        },
                        Side { schema: s, ..r },
                        &here,
                    )
                    .first()
                {
                    let reason = format!(
                        "{} constrains undeclared properties that {} leaves open: {}",
                        self.reader(),
                        self.writer(),
                        first.reason
                    );
                    self.report(here, Rule::AdditionalPropertiesConstrained, reason);
                }
            }
            (Extra::Schema(ws), Extra::Schema(rs)) => {
                self.reads(Side { schema: ws, ..w }, Side { schema: rs, ..r }, &here);
            }
        }
    }

    /// Constraining keywords of the reader that the walk does not understand must be unchanged.
    fn unsupported(&mut self, wm: &Map<String, Value>, rm: &Map<String, Value>, ptr: &str) {
        for (keyword, value) in rm {
            let known =
                HANDLED.contains(&keyword.as_str()) || ANNOTATIONS.contains(&keyword.as_str());
            let tuple_items = keyword == "items" && value.is_array();
            if (!known || tuple_items) && wm.get(keyword) != Some(value) {
                let reason = format!(
                    "`{keyword}` changed and its compatibility cannot be checked structurally; keep it as in {}",
                    self.writer()
                );
                self.report(
                    format!("{ptr}/{}", escape(keyword)),
                    Rule::UnsupportedKeyword,
                    reason,
                );
            }
        }
    }
}

/// What an object schema does with properties it does not declare.
#[derive(Clone, Copy)]
enum Extra<'a> {
    /// `additionalProperties` absent or `true`: anything goes.
    Open,
    /// `additionalProperties: false`.
    Closed,
    /// `additionalProperties: {schema}`.
    Schema(&'a Value),
}

impl<'a> Extra<'a> {
    fn of(m: &'a Map<String, Value>) -> Self {
        match m.get("additionalProperties") {
            None => Extra::Open,
            Some(Value::Bool(false)) => Extra::Closed,
            Some(v) if accepts_everything(v) => Extra::Open,
            Some(v) => Extra::Schema(v),
        }
    }
}

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

/// The writer's values when it admits only finitely many (`const` or `enum`).
fn finite_values(m: &Map<String, Value>) -> Option<Vec<&Value>> {
    if let Some(c) = m.get("const") {
        return Some(vec![c]);
    }
    m.get("enum")
        .and_then(Value::as_array)
        .map(|e| e.iter().collect())
}

/// The reader's allowed values, with the keyword that lists them.
fn reader_values(m: &Map<String, Value>) -> Option<(&'static str, Vec<&Value>)> {
    if let Some(c) = m.get("const") {
        return Some(("const", vec![c]));
    }
    m.get("enum")
        .and_then(Value::as_array)
        .map(|e| ("enum", e.iter().collect()))
}

/// The effective bound from an inclusive and an exclusive keyword: `(value, keyword)`.
fn bound<'k>(
    m: &Map<String, Value>,
    inclusive: &'k str,
    exclusive: &'k str,
    stricter: fn(f64, f64) -> f64,
) -> Option<(f64, &'k str)> {
    let inc = m
        .get(inclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, inclusive));
    let exc = m
        .get(exclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, exclusive));
    match (inc, exc) {
        (Some(i), Some(e)) if stricter(i.0, e.0) == i.0 && i.0 != e.0 => Some(i),
        (Some(_), Some(e)) => Some(e),
        (one, other) => one.or(other),
    }
}

/// Whether the reader's bound is tighter than the writer's (`beyond` says which way is tighter).
fn tighter(r: Option<(f64, &str)>, w: Option<(f64, &str)>, beyond: fn(f64, f64) -> bool) -> bool {
    match (r, w) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some((rv, rk)), Some((wv, wk))) => {
            beyond(rv, wv)
                || (rv == wv && rk.starts_with("exclusive") && !wk.starts_with("exclusive"))
        }
    }
}

fn names<'a>(m: &'a Map<String, Value>, keyword: &str) -> Vec<&'a str> {
    m.get(keyword)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn properties(m: &Map<String, Value>) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    m.get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
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
