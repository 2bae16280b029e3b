//! The keyword-by-keyword half of the walk: once references and combinators are out of the way
//! (`walk.rs`), two plain schemas are compared type by type — values, numbers, strings, arrays,
//! objects and their content models — and any constraining keyword the reader adds that is not
//! modelled here is refused.

use serde_json::{Map, Value};

use super::{ANNOTATIONS, ANY, HANDLED, Side, Walk, accepts_everything, escape, same_meaning};
use crate::compat::{OpenModelReading, Rule, types::TypeSet};

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

impl<'d> Walk<'d> {
    /// The keyword-by-keyword comparison of two schemas without references or combinators.
    pub(super) fn keywords<'a>(
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
        self.unsupported(w, wm, r, rm, ptr);
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
            if let Some(Err(error)) = &scalar {
                let reason = format!("{}'s value keywords do not compile: {error}", self.reader());
                self.report(ptr.to_owned(), Rule::ValueRefused, reason);
                break;
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
        self.elements(w, wm, r, rm, ptr);
    }

    /// Array elements, position by position: element `i` is governed by `prefixItems[i]` when
    /// there is one and by `items` after the prefix, on both sides (so a writer's prefix is
    /// compared with whatever of the reader governs the same positions).
    fn elements<'a>(
        &mut self,
        w: Side<'a>,
        wm: &'a Map<String, Value>,
        r: Side<'a>,
        rm: &'a Map<String, Value>,
        ptr: &str,
    ) where
        'd: 'a,
    {
        let prefix = |m: &'a Map<String, Value>| {
            m.get("prefixItems")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let rest =
            |m: &'a Map<String, Value>| m.get("items").filter(|i| !i.is_array()).unwrap_or(&ANY);
        let (w_prefix, r_prefix) = (prefix(wm), prefix(rm));
        let (w_rest, r_rest) = (rest(wm), rest(rm));
        for i in 0..w_prefix.len().max(r_prefix.len()) {
            let (wi, ri) = (
                w_prefix.get(i).unwrap_or(w_rest),
                r_prefix.get(i).unwrap_or(r_rest),
            );
            let here = format!("{ptr}/prefixItems/{i}");
            self.reads(Side { schema: wi, ..w }, Side { schema: ri, ..r }, &here);
        }
        let here = format!("{ptr}/items");
        self.reads(
            Side {
                schema: w_rest,
                ..w
            },
            Side {
                schema: r_rest,
                ..r
            },
            &here,
        );
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
        let (w_extra, r_extra) = (Extra::writer(wm), Extra::reader(rm));
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
        let findings = self.refusals_of_anything(w, rp, &here);
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

    /// What `r` refuses of a writer that admits anything (an open model's undeclared values).
    fn refusals_of_anything<'a>(
        &self,
        w: Side<'a>,
        r: Side<'a>,
        ptr: &str,
    ) -> Vec<crate::Incompatibility>
    where
        'd: 'a,
    {
        self.trial(Side { schema: &ANY, ..w }, r, ptr)
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
                if let Some(first) = self
                    .refusals_of_anything(w, Side { schema: s, ..r }, &here)
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
    /// Constraining keywords of the reader that the walk does not model must be unchanged
    /// (equal, with any `$ref` inside resolving in the same document).
    fn unsupported(
        &mut self,
        w: Side<'_>,
        wm: &Map<String, Value>,
        r: Side<'_>,
        rm: &Map<String, Value>,
        ptr: &str,
    ) {
        for (keyword, value) in rm {
            let known =
                HANDLED.contains(&keyword.as_str()) || ANNOTATIONS.contains(&keyword.as_str());
            let modelled = known && !(keyword == "items" && value.is_array());
            let unchanged = wm.get(keyword).is_some_and(|wv| {
                same_meaning(Side { schema: wv, ..w }, Side { schema: value, ..r })
            });
            if !modelled && !unchanged {
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
    /// The reader's treatment of undeclared properties.
    fn reader(m: &'a Map<String, Value>) -> Self {
        match m.get("additionalProperties") {
            None => Extra::Open,
            Some(Value::Bool(false)) => Extra::Closed,
            Some(v) if accepts_everything(v) => Extra::Open,
            Some(v) => Extra::Schema(v),
        }
    }

    /// The writer's: as the reader's, except that `patternProperties` (not modelled) lets
    /// matching names escape `additionalProperties`, so such a writer is taken as open.
    fn writer(m: &'a Map<String, Value>) -> Self {
        if m.contains_key("patternProperties") {
            Extra::Open
        } else {
            Extra::reader(m)
        }
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
