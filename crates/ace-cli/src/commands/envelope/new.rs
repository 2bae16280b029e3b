//! `envelope new`: a valid gme/1 envelope from flags, through the envelope builder.

use std::{io::Write, time::Duration};

use ace_envelope::Envelope;
use anyhow::{Context, Result};

use crate::{
    args::NewArgs,
    commands::{Outcome, input},
    output::{self, Format},
};

pub(super) fn run(mut args: NewArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let payload = payload(&args)?;
    let compact = args.compact;
    let pii = std::mem::take(&mut args.pii);
    let signer = match (args.sign_key.take(), args.key_id.take()) {
        (Some(path), Some(key_id)) => {
            // A PEM `PRIVATE KEY` or the seed in hex or base64.
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("--sign-key {}: cannot read it", path.display()))?;
            let key = ace_core::parse_signing_key(&text)
                .with_context(|| format!("--sign-key {}", path.display()))?;
            Some((key, key_id))
        }
        _ => None,
    };
    let mut envelope = build(args, payload)?;
    if !pii.is_empty() {
        envelope.governance.pii = pii;
        envelope.check().context("the envelope is not valid")?;
    }
    // Last: every field above is inside the signed bytes.
    if let Some((key, key_id)) = signer {
        envelope.sign(&key, key_id);
    }
    match (format, compact) {
        (Format::Yaml, _) => output::yaml(out, &envelope)?,
        (_, true) => writeln!(out, "{}", String::from_utf8(envelope.to_json_vec())?)?,
        (_, false) => output::json(out, &envelope)?,
    }
    Ok(Outcome::Success)
}

fn payload(args: &NewArgs) -> Result<Option<serde_json::Value>> {
    if let Some(text) = &args.payload {
        return serde_json::from_str(text)
            .map(Some)
            .context("--payload is not valid JSON");
    }
    match &args.payload_file {
        Some(path) => input::read_json(path).map(Some),
        None => Ok(None),
    }
}

fn build(args: NewArgs, payload: Option<serde_json::Value>) -> Result<Envelope> {
    let mut builder = Envelope::builder(args.kind, args.subject);
    // An envelope carries exactly one of payload and payload_ref: with no payload given, an
    // empty JSON object keeps the envelope valid.
    builder = builder.payload_json(payload.unwrap_or_else(|| serde_json::json!({})));
    if let Some(name) = args.name {
        builder = builder.name(name);
    }
    if let Some(domain) = args.domain {
        builder = builder.domain(domain);
    }
    if let (Some(source_type), Some(id)) = (args.source_type, args.source_id) {
        builder = builder.source(source_type, id);
    }
    if let Some(schema) = args.schema {
        builder = builder.schema(schema);
    }
    if let Some(priority) = args.priority {
        builder = builder.priority(priority);
    }
    if let Some(qos) = args.qos {
        builder = builder.qos(qos);
    }
    if let Some(label) = args.label {
        builder = builder.label(label);
    }
    if let Some(key) = args.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    if let Some(key) = args.partition_key {
        builder = builder.partition_key(key);
    }
    if let Some(id) = args.correlation_id {
        builder = builder.correlation_id(id);
    }
    if let Some(ms) = args.ttl_ms {
        builder = builder.ttl(Duration::from_millis(ms));
    }
    if args.trace {
        builder = builder.new_trace();
    }
    for (key, value) in args.headers {
        builder = builder.header(key, value);
    }
    builder.build().context("the envelope is not valid")
}
