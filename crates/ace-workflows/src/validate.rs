//! Loading one workflow file: YAML → JSON document → `workflow.schema.json` (every error with
//! its JSON path) → serde types → the checks a schema cannot make (unique names, a compiling
//! regex, a valid subject pattern, a parsable condition expression naming only its events,
//! template syntax). Every problem names the file, the workflow and the JSON path.

use std::sync::{Arc, OnceLock};

use ace_envelope::SubjectPattern;
use regex::Regex;
use serde_json::Value;

use crate::error::{LoadError, Problem};
use crate::expr::Expr;
use crate::format::{Action, Configuration, Filter, Op, Workflow, WorkflowFile};
use crate::template::Templates;

/// Path of the schema inside the embedded contracts.
pub const SCHEMA_PATH: &str = "orchestration/workflow.schema.json";

/// A workflow checked and ready to route: the definition and what was compiled from it.
#[derive(Debug)]
pub struct Compiled {
    /// The file it came from.
    pub file: String,
    /// The definition.
    pub workflow: Workflow,
    /// The file's configuration.
    pub configuration: Arc<Configuration>,
    /// The subject pattern of the trigger.
    pub subject: Option<SubjectPattern>,
    /// Compiled regexes of `regex` comparisons, by filter index.
    pub regexes: Vec<Option<Regex>>,
    /// Compiled regexes of the conditions' named events' filters, by name then index.
    pub condition_regexes: std::collections::BTreeMap<String, Vec<Option<Regex>>>,
    /// The parsed condition expression.
    pub expression: Option<Expr>,
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let text = ace_contracts::embedded_files()
            .iter()
            .find(|(path, _)| *path == SCHEMA_PATH)
            .map(|(_, text)| *text)
            .expect("contracts/orchestration/workflow.schema.json is embedded");
        let schema: Value = serde_json::from_str(text).expect("the workflow schema is JSON");
        jsonschema::options()
            .offline()
            .build(&schema)
            .expect("the workflow schema compiles")
    })
}

/// Loads the text of file `file`; every problem found, or the compiled workflows.
pub fn load(file: &str, text: &str) -> Result<Vec<Compiled>, LoadError> {
    let problem = |workflow: Option<String>, path: &str, message: String| Problem {
        file: file.to_owned(),
        workflow,
        path: path.to_owned(),
        message,
    };
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| LoadError {
        problems: vec![problem(None, "", format!("not YAML: {e}"))],
    })?;
    let problems: Vec<Problem> = validator()
        .iter_errors(&doc)
        .map(|e| {
            let path = e.instance_path().as_str().to_owned();
            problem(workflow_at(&doc, &path), &path, e.to_string())
        })
        .collect();
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }
    let parsed: WorkflowFile = serde_json::from_value(doc).map_err(|e| LoadError {
        problems: vec![problem(None, "", e.to_string())],
    })?;
    let configuration = Arc::new(parsed.configuration);
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut compiled = Vec::new();
    for (i, workflow) in parsed.workflows.into_iter().enumerate() {
        let at = format!("/workflows/{i}");
        let name = workflow.name.clone();
        let mut report = |path: String, message: String| {
            problems.push(problem(Some(name.clone()), &path, message));
        };
        if !seen.insert(workflow.name.clone()) {
            report(
                format!("{at}/name"),
                "a workflow of this name is already defined".into(),
            );
        }
        check_workflow(&workflow, &at, &mut report);
        if let Some(c) = compile(file, workflow, &configuration, &at, &mut report) {
            compiled.push(c);
        }
    }
    if problems.is_empty() {
        Ok(compiled)
    } else {
        Err(LoadError { problems })
    }
}

/// The workflow a JSON pointer falls in, by its name.
fn workflow_at(doc: &Value, pointer: &str) -> Option<String> {
    let index = pointer.strip_prefix("/workflows/")?.split('/').next()?;
    let name = doc.pointer(&format!("/workflows/{index}/name"))?;
    Some(
        name.as_str()
            .map_or_else(|| name.to_string(), str::to_owned),
    )
}

fn check_workflow(workflow: &Workflow, at: &str, report: &mut dyn FnMut(String, String)) {
    let templates = Templates::default();
    let mut names = std::collections::BTreeSet::new();
    let groups: Vec<(String, &Vec<Action>)> = if workflow.steps.is_empty() {
        vec![(format!("{at}/actions"), &workflow.actions)]
    } else {
        workflow
            .steps
            .iter()
            .enumerate()
            .map(|(s, step)| (format!("{at}/steps/{s}/actions"), &step.actions))
            .collect()
    };
    for (path, actions) in groups {
        for (a, action) in actions.iter().enumerate() {
            let here = format!("{path}/{a}");
            if !names.insert(action.name.clone()) {
                report(
                    format!("{here}/name"),
                    "an action of this name is already defined in the workflow".into(),
                );
            }
            if let Some(params) = &action.params
                && let Err(e) = templates.check(params)
            {
                report(
                    format!("{here}/params"),
                    format!("template does not parse: {e}"),
                );
            }
        }
    }
    for (list, emits) in [
        ("on_success", &workflow.on_success),
        ("on_failure", &workflow.on_failure),
    ] {
        for (e, emit) in emits.iter().enumerate() {
            if let Some(params) = &emit.params
                && let Err(err) = templates.check(params)
            {
                report(
                    format!("{at}/{list}/{e}/params"),
                    format!("template does not parse: {err}"),
                );
            }
        }
    }
}

fn regexes(
    filters: &[Filter],
    at: &str,
    report: &mut dyn FnMut(String, String),
) -> Vec<Option<Regex>> {
    filters
        .iter()
        .enumerate()
        .map(|(i, filter)| match filter {
            Filter::Compare(c) if c.op == Op::Regex => {
                let text = c.value.as_ref().and_then(Value::as_str).unwrap_or_default();
                Regex::new(text)
                    .map_err(|e| {
                        report(
                            format!("{at}/{i}/value"),
                            format!("not a regular expression: {e}"),
                        )
                    })
                    .ok()
            }
            _ => None,
        })
        .collect()
}

fn compile(
    file: &str,
    workflow: Workflow,
    configuration: &Arc<Configuration>,
    at: &str,
    report: &mut dyn FnMut(String, String),
) -> Option<Compiled> {
    let trigger = &workflow.trigger;
    let subject = match trigger.subject.as_deref().map(SubjectPattern::new) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            report(
                format!("{at}/trigger/subject"),
                format!("not a subject pattern: {e}"),
            );
            None
        }
    };
    let filter_regexes = regexes(&trigger.filters, &format!("{at}/trigger/filters"), report);
    let mut condition_regexes = std::collections::BTreeMap::new();
    let mut expression = None;
    if let Some(conditions) = &trigger.conditions {
        for (name, named) in &conditions.events {
            let path = format!("{at}/trigger/conditions/events/{name}/filters");
            condition_regexes.insert(name.clone(), regexes(&named.filters, &path, report));
        }
        match Expr::parse(&conditions.expression) {
            Ok(expr) => {
                for name in expr.names() {
                    if !conditions.events.contains_key(name) {
                        report(
                            format!("{at}/trigger/conditions/expression"),
                            format!("names `{name}`, which is not one of `events`"),
                        );
                    }
                }
                expression = Some(expr);
            }
            Err(e) => report(format!("{at}/trigger/conditions/expression"), e),
        }
    }
    Some(Compiled {
        file: file.to_owned(),
        workflow,
        configuration: Arc::clone(configuration),
        subject,
        regexes: filter_regexes,
        condition_regexes,
        expression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
configuration: { max_parallel_workflows: 4 }
workflows:
  - name: w
    trigger:
      event: kpi.threshold_breach
      subject: "ace.comms.internal.kernel.*.evt.>"
      filters:
        - { field: payload.severity, op: eq, value: CRITICAL }
        - { field: payload.metric_name, op: regex, value: "^resp" }
        - rate_limit: { per_minute: 10, key: payload.component_id }
    actions:
      - name: escalate
        kernel: avn_core.escalate_healing
        params: { component_id: "{{ payload.component_id }}" }
"#;

    #[test]
    fn given_a_good_file_when_loaded_then_its_workflows_are_compiled() {
        let loaded = load("good.yaml", GOOD).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].configuration.max_parallel_workflows, 4);
        assert!(loaded[0].regexes[1].is_some());
        assert!(loaded[0].subject.is_some());
    }

    #[test]
    fn given_schema_errors_when_loaded_then_each_names_file_workflow_and_path() {
        let bad = GOOD
            .replace("op: eq", "op: equals")
            .replace("kernel: avn_core.escalate_healing", "kernel: nodot");
        let err = load("bad.yaml", &bad).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("/workflows/0/trigger/filters/0")),
            "{err:?}"
        );
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("/workflows/0/actions/0")),
            "{err:?}"
        );
        assert!(
            err.problems
                .iter()
                .all(|p| p.file == "bad.yaml" && p.workflow.as_deref() == Some("w"))
        );
    }

    #[test]
    fn given_semantic_errors_when_loaded_then_they_are_reported_with_their_path() {
        let bad = GOOD.replace("\"^resp\"", "\"(unclosed\"").replace(
            "\"{{ payload.component_id }}\"",
            "\"{{ payload.component_id \"",
        );
        let err = load("bad.yaml", &bad).unwrap_err();
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"/workflows/0/trigger/filters/1/value"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"/workflows/0/actions/0/params"),
            "{paths:?}"
        );
        let twice = format!("{GOOD}{}", &GOOD[GOOD.find("  - name: w").unwrap()..]);
        let err = load("twice.yaml", &twice).unwrap_err();
        assert!(
            err.problems.iter().any(|p| p.path == "/workflows/1/name"),
            "{err:?}"
        );
    }

    #[test]
    fn given_a_condition_naming_an_unknown_event_when_loaded_then_it_is_refused() {
        let text = r#"
workflows:
  - name: multi
    trigger:
      conditions:
        events:
          breach: { event: kpi.threshold_breach }
        expression: "breach && crash"
        window_ms: 1000
    actions: [ { name: a, kernel: k.h } ]
"#;
        let err = load("m.yaml", text).unwrap_err();
        assert!(err.problems[0].message.contains("`crash`"), "{err:?}");
        assert_eq!(
            err.problems[0].path,
            "/workflows/0/trigger/conditions/expression"
        );
    }

    #[test]
    fn given_text_that_is_not_yaml_when_loaded_then_the_error_says_so() {
        let err = load("x.yaml", "workflows: [").unwrap_err();
        assert!(err.problems[0].message.starts_with("not YAML"));
    }
}
