//! `contracts validate FILE [--schema REF]`: a document against a contract, or an envelope against
//! the envelope contract (JSON Schema and the Rust rules) and its payload against its `schema`.

use std::io::Write;

use ace_contracts::{Registry, ValidationError};
use ace_envelope::Envelope;
use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    args::ValidateArgs,
    commands::{Outcome, input},
    output::Format,
};

/// The registry subject of the envelope contract.
const ENVELOPE_SUBJECT: &str = "comms.envelope";

/// One problem, with the check that found it and where.
#[derive(Debug, Serialize)]
struct Finding {
    /// `json`, `envelope.schema` (the JSON Schema), `envelope` (the Rust rules) or `payload`.
    check: &'static str,
    /// JSON pointer into the document.
    pointer: String,
    message: String,
}

pub(super) fn run(
    registry: &Registry,
    args: &ValidateArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let bytes = input::read(&args.file)?;
    let (against, findings) = match serde_json::from_slice::<Value>(&bytes) {
        Err(e) => ("JSON".to_owned(), vec![malformed(&e)]),
        Ok(value) => match &args.schema {
            Some(schema_ref) => {
                let schema = registry.resolve(schema_ref)?;
                let found = schema.validate(&value).err().unwrap_or_default();
                (schema.schema_ref(), from_schema("schema", "", found))
            }
            None if value.get("spec").is_some() => {
                ("envelope gme/1".to_owned(), envelope(registry, value)?)
            }
            None => bail!(
                "{} is not an envelope (it has no `spec` field); name its contract with --schema NAME[@VERSION]",
                args.file.display()
            ),
        },
    };
    let outcome = if findings.is_empty() {
        Outcome::Success
    } else {
        Outcome::Invalid
    };
    let report = json!({ "valid": findings.is_empty(), "against": against, "errors": findings });
    format.print(out, &report, |out| lines(args, &against, &findings, out))?;
    Ok(outcome)
}

/// The verdict, then one line per finding, for people.
fn lines(
    args: &ValidateArgs,
    against: &str,
    findings: &[Finding],
    out: &mut dyn Write,
) -> Result<()> {
    if findings.is_empty() {
        writeln!(out, "valid: {} conforms to {against}", args.file.display())?;
        return Ok(());
    }
    writeln!(
        out,
        "invalid: {} against {against}: {} error(s)",
        args.file.display(),
        findings.len()
    )?;
    for finding in findings {
        let pointer = if finding.pointer.is_empty() {
            "(document)"
        } else {
            &finding.pointer
        };
        writeln!(out, "  {pointer}: {} [{}]", finding.message, finding.check)?;
    }
    Ok(())
}

fn malformed(e: &serde_json::Error) -> Finding {
    Finding {
        check: "json",
        pointer: String::new(),
        message: format!(
            "malformed JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ),
    }
}

/// Every finding of the three envelope checks: the JSON Schema of gme/1, the Rust rules of
/// `Envelope::validate`, and the payload against the contract its `schema` field names.
fn envelope(registry: &Registry, value: Value) -> Result<Vec<Finding>> {
    let contract = registry.latest(ENVELOPE_SUBJECT)?;
    let mut findings = from_schema(
        "envelope.schema",
        "",
        contract.validate(&value).err().unwrap_or_default(),
    );
    let envelope: Envelope = match serde_json::from_value(value) {
        Ok(envelope) => envelope,
        Err(e) => {
            findings.push(Finding {
                check: "envelope",
                pointer: String::new(),
                message: e.to_string(),
            });
            return Ok(findings);
        }
    };
    findings.extend(envelope.validate().into_iter().map(|v| Finding {
        check: "envelope",
        pointer: v.path,
        message: v.message,
    }));
    if let (Some(schema_ref), Some(payload)) = (&envelope.schema, &envelope.payload)
        && envelope.has_json_payload()
    {
        match registry.resolve(schema_ref) {
            Ok(schema) => {
                let found = schema.validate(payload).err().unwrap_or_default();
                findings.extend(from_schema("payload", "/payload", found));
            }
            Err(e) => findings.push(Finding {
                check: "payload",
                pointer: "/schema".into(),
                message: e.to_string(),
            }),
        }
    }
    Ok(findings)
}

fn from_schema(check: &'static str, prefix: &str, errors: Vec<ValidationError>) -> Vec<Finding> {
    errors
        .into_iter()
        .map(|e| Finding {
            check,
            pointer: format!("{prefix}{}", e.instance_pointer),
            message: e.message,
        })
        .collect()
}
