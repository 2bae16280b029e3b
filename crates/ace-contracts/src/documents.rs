//! The JSON documents that schemas may reference, and `$ref` resolution among them with no
//! network access. Both the validator compiler (through `jsonschema`'s resource registry) and the
//! structural compatibility checker resolve references here, so they agree on what a `$ref` means.
//!
//! A document lives at a path relative to `contracts/` (`ml/ml_schemas.json`) and is addressed by
//! the URI `BASE` + path unless it declares its own `$id`, which then wins, as JSON Schema says.

use std::collections::BTreeMap;

use serde_json::Value;

/// The base URI of the embedded contracts. `.invalid` guarantees it can never be fetched.
pub(crate) const BASE: &str = "https://contracts.ace-comms.invalid/";

/// Where a sub-schema sits: the file it belongs to and that file's root, for resolving `$ref`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc<'a> {
    /// Path relative to `contracts/` (a virtual one for schemas registered at run time).
    pub(crate) file: &'a str,
    /// The document root that `#/...` fragments point into.
    pub(crate) root: &'a Value,
}

/// JSON documents by path relative to `contracts/`, with an index of their `$id`s.
#[derive(Debug, Default, Clone)]
pub(crate) struct Documents {
    by_file: BTreeMap<String, Value>,
    by_id: BTreeMap<String, String>,
}

impl Documents {
    /// An empty set.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the document at `file`, a path relative to `contracts/`.
    pub(crate) fn insert(&mut self, file: impl Into<String>, document: Value) {
        let file = file.into();
        if let Some(id) = document.get("$id").and_then(Value::as_str) {
            self.by_id
                .insert(without_fragment(id).to_owned(), file.clone());
        }
        self.by_file.insert(file, document);
    }

    /// The document at `file`, if any.
    pub(crate) fn get(&self, file: &str) -> Option<&Value> {
        self.by_file.get(file)
    }

    /// Every document under each URI it is known by (`BASE` + path, and its `$id` if it has
    /// one), for `jsonschema`'s resource registry: run-time schemas reach embedded documents by
    /// path relative to `contracts/`, embedded ones reach each other through their `$id`s.
    pub(crate) fn resources(&self) -> impl Iterator<Item = (String, &Value)> {
        self.by_file.iter().flat_map(|(file, doc)| {
            let by_path = format!("{BASE}{file}");
            let by_id = Some(base_uri(file, doc)).filter(|id| *id != by_path);
            std::iter::once((by_path, doc)).chain(by_id.map(|id| (id, doc)))
        })
    }

    /// Resolves `reference` (a `$ref` value) found in the document at `at`: returns the location of
    /// the target's document and the target itself. `None` when the document or pointer is missing.
    pub(crate) fn resolve<'a>(
        &'a self,
        at: Loc<'a>,
        reference: &str,
    ) -> Option<(Loc<'a>, &'a Value)> {
        let (uri, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if uri.is_empty() {
            at
        } else {
            let absolute = join(&base_uri(at.file, at.root), uri);
            let file = match absolute.strip_prefix(BASE) {
                Some(file) if self.by_file.contains_key(file) => file,
                _ => self.by_id.get(&absolute)?.as_str(),
            };
            let (file, root) = self.by_file.get_key_value(file)?;
            Loc { file, root }
        };
        let pointer = percent_decode(fragment);
        target.root.pointer(&pointer).map(|schema| (target, schema))
    }
}

/// The URI a document is addressed by: its own `$id`, or `BASE` + its path.
pub(crate) fn base_uri(file: &str, document: &Value) -> String {
    match document.get("$id").and_then(Value::as_str) {
        Some(id) => without_fragment(id).to_owned(),
        None => format!("{BASE}{file}"),
    }
}

fn without_fragment(uri: &str) -> &str {
    uri.split('#').next().unwrap_or(uri)
}

/// RFC 3986 reference resolution for the cases schemas use: absolute, root-relative, relative
/// with `.` and `..` segments.
fn join(base: &str, reference: &str) -> String {
    if reference.contains("://") || reference.starts_with("urn:") {
        return reference.to_owned();
    }
    let authority_end = base.find("://").map_or(0, |i| {
        base[i + 3..].find('/').map_or(base.len(), |j| i + 3 + j)
    });
    let (origin, path) = base.split_at(authority_end);
    let mut segments: Vec<&str> = if reference.starts_with('/') {
        Vec::new()
    } else {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        dir.split('/').filter(|s| !s.is_empty()).collect()
    };
    for segment in reference.split('/').filter(|s| !s.is_empty()) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("{origin}/{}", segments.join("/"))
}

/// Decodes `%XX` escapes of a URI fragment (`#/%24defs/X` is `#/$defs/X`).
fn percent_decode(fragment: &str) -> String {
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = fragment.get(i + 1..i + 3).filter(|_| bytes[i] == b'%');
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn given_relative_paths_when_joined_then_dot_segments_are_removed() {
        let base = "https://contracts.ace-comms.invalid/ml/examples/a.json";
        assert_eq!(
            join(base, "../ml_schemas.json"),
            "https://contracts.ace-comms.invalid/ml/ml_schemas.json"
        );
        assert_eq!(
            join(base, "/comms/x.json"),
            "https://contracts.ace-comms.invalid/comms/x.json"
        );
        assert_eq!(join(base, "urn:x"), "urn:x");
    }

    #[test]
    fn given_a_ref_to_another_file_when_resolved_then_the_target_and_its_document_are_returned() {
        let mut docs = Documents::new();
        docs.insert(
            "ml/ml_schemas.json",
            json!({"$defs": {"UID": {"type": "string"}}}),
        );
        let here = json!({"$ref": "ml_schemas.json#/%24defs/UID"});
        let at = Loc {
            file: "ml/other.json",
            root: &here,
        };
        let (loc, target) = docs
            .resolve(at, "ml_schemas.json#/%24defs/UID")
            .expect("resolves");
        assert_eq!(loc.file, "ml/ml_schemas.json");
        assert_eq!(target, &json!({"type": "string"}));
    }

    #[test]
    fn given_a_document_with_an_id_when_referenced_by_that_id_then_it_resolves() {
        let mut docs = Documents::new();
        docs.insert(
            "comms/a.json",
            json!({"$id": "https://ace.example/a.json", "$defs": {"X": true}}),
        );
        let here = json!({});
        let at = Loc {
            file: "comms/b.json",
            root: &here,
        };
        let (loc, target) = docs
            .resolve(at, "https://ace.example/a.json#/$defs/X")
            .expect("resolves");
        assert_eq!((loc.file, target), ("comms/a.json", &json!(true)));
        assert!(docs.resolve(at, "missing.json#/x").is_none());
    }
}
