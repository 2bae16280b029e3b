//! Parameters are templates: every string inside an action's `params` (and a webhook's URL and
//! header values, an emit's subject) is rendered with minijinja over the run's context
//! `{payload, event, steps, events}` — `{{ payload.component_id }}`, `{{ event.id }}`,
//! `{{ steps.escalate.result.ticket }}`, `{{ events.breach.payload.value }}`.
//!
//! A string that is exactly one `{{ expression }}` keeps the expression's type (a number stays
//! a number, an object an object), so `score: "{{ payload.score }}"` sends `45.0`, not `"45.0"`.
//! An undefined variable is an error (strict undefined), never an empty string sent to a kernel.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::error::RunError;

/// The template environment (strict about undefined variables, no file loader).
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Templates { env }
    }
}

impl Templates {
    /// `value` with every string rendered over `context`.
    pub fn render(&self, value: &Value, context: &Value) -> Result<Value, RunError> {
        match value {
            Value::String(text) => self.render_str(text, context),
            Value::Array(items) => items
                .iter()
                .map(|v| self.render(v, context))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.render(v, context)?)))
                .collect::<Result<Map<_, _>, RunError>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    /// One string: a lone expression keeps its type, anything else renders to a string.
    pub fn render_str(&self, text: &str, context: &Value) -> Result<Value, RunError> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(Value::String(text.to_owned()));
        }
        if let Some(expr) = lone_expression(text) {
            let compiled = self.env.compile_expression(expr).map_err(template_error)?;
            let out = compiled.eval(context).map_err(template_error)?;
            if out.is_undefined() {
                return Err(RunError::new(
                    "template_error",
                    format!("`{expr}` is undefined"),
                ));
            }
            return serde_json::to_value(&out)
                .map_err(|e| RunError::new("template_error", e.to_string()));
        }
        self.env
            .render_str(text, context)
            .map(Value::String)
            .map_err(template_error)
    }

    /// The text as a string (`render_str`'s value printed when it is not one).
    pub fn render_string(&self, text: &str, context: &Value) -> Result<String, RunError> {
        Ok(match self.render_str(text, context)? {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// Checks a template's syntax without rendering it (validation at load).
    pub fn check(&self, value: &Value) -> Result<(), String> {
        match value {
            Value::String(text) if text.contains("{{") || text.contains("{%") => {
                match lone_expression(text) {
                    Some(expr) => self.env.compile_expression(expr).map(drop),
                    None => self.env.template_from_str(text).map(drop),
                }
                .map_err(|e| e.to_string())
            }
            Value::Array(items) => items.iter().try_for_each(|v| self.check(v)),
            Value::Object(map) => map.values().try_for_each(|v| self.check(v)),
            _ => Ok(()),
        }
    }
}

fn lone_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

#[allow(clippy::needless_pass_by_value)] // the shape `map_err` hands over
fn template_error(err: minijinja::Error) -> RunError {
    RunError::new("template_error", err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_params_when_rendered_then_lone_expressions_keep_their_type() {
        let t = Templates::default();
        let ctx = json!({"payload": {"id": "ingress", "score": 45.0, "tags": ["a"]},
                         "steps": {"esc": {"result": {"ticket": 7}}}});
        let params = json!({
            "component_id": "{{ payload.id }}",
            "score": "{{ payload.score }}",
            "tags": "{{ payload.tags }}",
            "text": "score of {{ payload.id }} is {{ payload.score }}",
            "ticket": "{{ steps.esc.result.ticket }}",
            "fixed": 3,
            "nested": ["{{ payload.score * 2 }}"]
        });
        assert_eq!(
            t.render(&params, &ctx).unwrap(),
            json!({"component_id": "ingress", "score": 45.0, "tags": ["a"],
                   "text": "score of ingress is 45.0", "ticket": 7, "fixed": 3,
                   "nested": [90.0]})
        );
    }

    #[test]
    fn given_an_undefined_variable_when_rendered_then_it_is_a_template_error() {
        let t = Templates::default();
        let err = t
            .render_str("{{ payload.nope }}", &json!({"payload": {}}))
            .unwrap_err();
        assert_eq!(err.code, "template_error");
        let err = t.render_str("x {{ nope.deeper }}", &json!({})).unwrap_err();
        assert_eq!(err.code, "template_error");
        assert!(t.check(&json!({"a": "{{ payload.x "})).is_err());
        assert!(t.check(&json!({"a": "{{ payload.x }}"})).is_ok());
    }
}
