//! `envelope convert FILE --to FORMAT`: one envelope between its wire forms. The input form is
//! detected: a JSON object with `specversion` is a structured CloudEvent, any other JSON object a
//! gme/1 envelope, text opening with `ce-` or `content-type:` header lines a binary-mode
//! CloudEvent (as `--binary` writes it), anything else protobuf.

use std::io::Write;

use ace_envelope::{
    Envelope, EnvelopeError, ErrorCode, from_binary, from_cloudevent_json, to_binary,
    to_cloudevent_json,
};
use anyhow::{Context, Result};

use crate::{
    args::{ConvertArgs, Format},
    commands::{Outcome, input},
    output::Failure,
};

pub(super) fn run(args: &ConvertArgs, out: &mut dyn Write) -> Result<Outcome> {
    let bytes = input::read(&args.file)?;
    let file = args.file.display();
    let envelope = match decode(&bytes) {
        Ok(envelope) => envelope,
        Err(e) => {
            let message = format!("{file} is not an envelope in any known form: {e}");
            return Err(Failure::refused(e.code().as_str(), message).into());
        }
    };
    let violations = envelope.validate();
    if !violations.is_empty() {
        let message = format!("{file}: {} rule(s) of gme/1 broken", violations.len());
        let details = serde_json::json!({ "violations": violations });
        return Err(
            Failure::refused(ErrorCode::InvalidEnvelope.as_str(), message)
                .details(details)
                .into(),
        );
    }
    let encoded = encode(&envelope, args.to, args.binary)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, encoded).with_context(|| format!("writing {}", path.display()))?
        }
        None => out.write_all(&encoded)?,
    }
    Ok(Outcome::Success)
}

fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let text = bytes.trim_ascii_start();
    if text.starts_with(b"{") {
        let is_cloudevent = serde_json::from_slice::<serde_json::Value>(text)
            .map(|v| v.get("specversion").is_some())
            .unwrap_or(false);
        return if is_cloudevent {
            from_cloudevent_json(text)
        } else {
            Envelope::from_json_slice(text)
        };
    }
    let lower = text
        .get(..13)
        .map(<[u8]>::to_ascii_lowercase)
        .unwrap_or_default();
    if lower.starts_with(b"ce-") || lower.starts_with(b"content-type:") {
        return decode_binary_mode(text);
    }
    Envelope::from_protobuf_slice(bytes)
}

/// `name: value` lines, a blank line, then the body.
fn decode_binary_mode(text: &[u8]) -> Result<Envelope, EnvelopeError> {
    let split = text
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(text.len(), |i| i + 2);
    let (head, body) = text.split_at(split);
    let head = String::from_utf8_lossy(head);
    let headers = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()));
    from_binary(headers, body)
}

fn encode(envelope: &Envelope, to: Format, binary: bool) -> Result<Vec<u8>> {
    let mut bytes = match (to, binary) {
        (Format::Json, _) => serde_json::to_vec_pretty(envelope)?,
        (Format::Protobuf, _) => return Ok(envelope.to_protobuf_vec()?),
        (Format::Cloudevents, false) => to_cloudevent_json(envelope)?,
        (Format::Cloudevents, true) => {
            let (headers, body) = to_binary(envelope)?;
            let mut text = Vec::new();
            for (name, value) in headers {
                writeln!(text, "{name}: {value}")?;
            }
            text.push(b'\n');
            text.extend_from_slice(&body);
            // The body is the payload's bytes exactly: no newline is added after it.
            return Ok(text);
        }
    };
    bytes.push(b'\n');
    Ok(bytes)
}
