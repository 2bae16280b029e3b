//! Field paths (`payload.component_id`, `event.subject`) into the document a trigger is judged
//! on, and the name glob of triggers (`*` matches any run of characters).

use serde_json::Value;

/// The value at dotted `path` inside `root` (array elements by index), if any.
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(root, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The value at `path` as a key string (`null` when absent), for per-key state.
pub fn key_of(root: &Value, path: Option<&str>) -> String {
    match path.and_then(|p| lookup(root, p)) {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Whether `glob` matches `text`; `*` matches any characters (dots too), everything else itself.
/// Allocation-free: routing asks it for every glob trigger of every event.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let Some((head, rest)) = glob.split_once('*') else {
        return glob == text;
    };
    let Some(mut remaining) = text.strip_prefix(head) else {
        return false;
    };
    let (middle, last) = match rest.rsplit_once('*') {
        Some((middle, last)) => (Some(middle), last),
        None => (None, rest),
    };
    for part in middle.into_iter().flat_map(|m| m.split('*')) {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Whether `glob` has a wildcard (exact names are routed by a hash lookup).
pub fn is_glob(glob: &str) -> bool {
    glob.contains('*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_paths_when_looked_up_then_objects_and_arrays_are_walked() {
        let doc = json!({"payload": {"a": {"b": [1, {"c": "x"}]}}});
        assert_eq!(lookup(&doc, "payload.a.b.1.c"), Some(&json!("x")));
        assert_eq!(lookup(&doc, "payload.a.z"), None);
        assert_eq!(key_of(&doc, Some("payload.a.b.0")), "1");
        assert_eq!(key_of(&doc, None), "");
    }

    #[test]
    fn given_globs_when_matched_then_star_spans_any_characters() {
        assert!(glob_matches("kpi.*", "kpi.threshold_breach"));
        assert!(glob_matches("*", "anything.at.all"));
        assert!(glob_matches("*.healing_*", "test_quality.healing_required"));
        assert!(glob_matches("kpi.threshold_breach", "kpi.threshold_breach"));
        assert!(!glob_matches("kpi.*", "trust.score_updated"));
        assert!(!glob_matches("a*b*c", "abx"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("*ab", "a"));
    }
}
