//! `workflows list|show|enable|disable|reload|stats` against the server, and `validate`, which
//! loads a directory of workflow files offline with the server's own loader
//! (`ace_workflows::validate_dir`) and prints every problem with its file, workflow and JSON
//! path (exit 1 when any).

use std::io::Write;

use ace_workflows::{Problem, ReloadReport, StatsSnapshot};
use anyhow::Result;
use serde_json::Value;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::{ServerArgs, WorkflowsCommand};
use crate::output::{Format, Table};

/// Runs one `workflows` verb.
pub(crate) fn run(
    command: WorkflowsCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if let WorkflowsCommand::Validate(args) = &command {
        return validate(&args.dir, format, out);
    }
    let session = Session::new(server)?;
    let client = &session.client;
    let enabled = matches!(command, WorkflowsCommand::Enable(_));
    match command {
        WorkflowsCommand::List => {
            let list: Value = match session.block_on(client.workflows()) {
                Ok(list) => list,
                Err(err) => return failed(err),
            };
            format.print(out, &list, |out| list_table(&list, out))?;
        }
        WorkflowsCommand::Show(args) => {
            let workflow: Value = match session.block_on(client.workflow(&args.name)) {
                Ok(workflow) => workflow,
                Err(err) => return failed(err),
            };
            format.print(out, &workflow, |out| {
                Ok(writeln!(out, "{}", serde_yaml_ng::to_string(&workflow)?)?)
            })?;
        }
        WorkflowsCommand::Enable(args) | WorkflowsCommand::Disable(args) => {
            let call = client.set_workflow_enabled::<Value>(&args.name, enabled);
            let workflow = match session.block_on(call) {
                Ok(workflow) => workflow,
                Err(err) => return failed(err),
            };
            format.print(out, &workflow, |out| {
                let state = if enabled { "enabled" } else { "disabled" };
                Ok(writeln!(out, "{} {state}", args.name)?)
            })?;
        }
        WorkflowsCommand::Reload => {
            let report: ReloadReport = match session.block_on(client.reload_workflows()) {
                Ok(report) => report,
                Err(err) => return failed(err),
            };
            format.print(out, &report, |out| {
                writeln!(
                    out,
                    "{} workflows loaded; changed: {}",
                    report.workflows,
                    report.changed.join(", ")
                )?;
                problems_table(&report.problems, out)
            })?;
        }
        WorkflowsCommand::Stats => {
            let stats: StatsSnapshot = match session.block_on(client.workflow_stats()) {
                Ok(stats) => stats,
                Err(err) => return failed(err),
            };
            format.print(out, &stats, |out| stats_table(&stats, out))?;
        }
        WorkflowsCommand::Validate(_) => unreachable!("handled above"),
    }
    Ok(Outcome::Success)
}

fn validate(dir: &std::path::Path, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    match ace_workflows::validate_dir(dir) {
        Ok(count) => {
            let answer = serde_json::json!({ "valid": true, "workflows": count });
            format.print(out, &answer, |out| {
                Ok(writeln!(out, "{} valid: {count} workflows", dir.display())?)
            })?;
            Ok(Outcome::Success)
        }
        Err(problems) => {
            let answer = serde_json::json!({ "valid": false, "problems": problems });
            format.print(out, &answer, |out| problems_table(&problems, out))?;
            Ok(Outcome::Invalid)
        }
    }
}

fn list_table(list: &Value, out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&["NAME", "ENABLED", "TRIGGER", "FILE"]);
    for w in list["workflows"].as_array().into_iter().flatten() {
        let trigger = &w["definition"]["trigger"];
        let event = trigger["event"]
            .as_str()
            .map_or_else(|| "conditions".to_owned(), str::to_owned);
        table.row(vec![
            w["name"].as_str().unwrap_or_default().to_owned(),
            w["enabled"].to_string(),
            event,
            w["file"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    table.write(out)?;
    let problems: Vec<Problem> =
        serde_json::from_value(list["problems"].clone()).unwrap_or_default();
    problems_table(&problems, out)
}

fn problems_table(problems: &[Problem], out: &mut dyn Write) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let mut table = Table::new(&["FILE", "WORKFLOW", "PATH", "PROBLEM"]);
    for p in problems {
        table.row(vec![
            p.file.clone(),
            p.workflow.clone().unwrap_or_default(),
            p.path.clone(),
            p.message.clone(),
        ]);
    }
    table.write(out)
}

fn stats_table(stats: &StatsSnapshot, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "events_received={} workflows_triggered={} workflows_completed={} workflows_failed={} \
         events_filtered={} events_rate_limited={} actions_retried={} actions_timed_out={}",
        stats.events_received,
        stats.workflows_triggered,
        stats.workflows_completed,
        stats.workflows_failed,
        stats.events_filtered,
        stats.events_rate_limited,
        stats.actions_retried,
        stats.actions_timed_out
    )?;
    let mut table = Table::new(&[
        "WORKFLOW",
        "TRIGGERED",
        "COMPLETED",
        "FAILED",
        "FILTERED",
        "RATE LIMITED",
        "P50 MS",
        "P90 MS",
        "P99 MS",
    ]);
    for (name, w) in &stats.workflows {
        table.row(vec![
            name.clone(),
            w.triggered.to_string(),
            w.completed.to_string(),
            w.failed.to_string(),
            w.filtered.to_string(),
            w.rate_limited.to_string(),
            w.latency_p50_ms.to_string(),
            w.latency_p90_ms.to_string(),
            w.latency_p99_ms.to_string(),
        ]);
    }
    table.write(out)
}
