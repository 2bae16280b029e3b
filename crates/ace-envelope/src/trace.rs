//! W3C trace context: the envelope's [`TraceContext`] (`traceparent` + `tracestate`) and the
//! parsed [`TraceParent`] with `new` (a root span) and `child` (the next hop's span).
//!
//! Only version `00` of the `traceparent` header is produced; parsing follows the W3C rules
//! (lower-case hex, trace id and parent id not all zero, version `ff` refused).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::EnvelopeError;

/// The trace fields an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TraceContext {
    /// W3C `traceparent`: `00-{trace-id:32 hex}-{parent-id:16 hex}-{flags:2 hex}`.
    pub traceparent: String,
    /// W3C `tracestate`, vendor data carried as is.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::present"
    )]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// A context from a parsed parent, without `tracestate`.
    pub fn from_parent(parent: &TraceParent) -> Self {
        Self {
            traceparent: parent.to_string(),
            tracestate: None,
        }
    }

    /// Parses the `traceparent`.
    pub fn parent(&self) -> Result<TraceParent, EnvelopeError> {
        TraceParent::parse(&self.traceparent)
    }

    /// The context of the next hop: same trace, a new span id, `tracestate` kept.
    pub fn child(&self) -> Result<TraceContext, EnvelopeError> {
        Ok(TraceContext {
            traceparent: self.parent()?.child().to_string(),
            tracestate: self.tracestate.clone(),
        })
    }
}

/// A parsed `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id, 16 bytes, not all zero.
    pub trace_id: [u8; 16],
    /// The span id of the parent, 8 bytes, not all zero.
    pub parent_id: [u8; 8],
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceParent {
    /// A new root: random trace and span ids, sampled.
    pub fn new() -> Self {
        Self {
            trace_id: nonzero_random(),
            parent_id: nonzero_random(),
            flags: 0x01,
        }
    }

    /// The next span of the same trace: new span id, same trace id and flags.
    pub fn child(&self) -> Self {
        Self {
            parent_id: nonzero_random(),
            ..*self
        }
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// Parses a `traceparent` header value.
    pub fn parse(value: &str) -> Result<TraceParent, EnvelopeError> {
        parse_fields(value).map_err(|reason| EnvelopeError::InvalidTraceparent {
            value: value.to_owned(),
            reason,
        })
    }
}

impl Default for TraceParent {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }
}

fn nonzero_random<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = rand::random();
        if bytes.iter().any(|b| *b != 0) {
            return bytes;
        }
    }
}

fn parse_fields(value: &str) -> Result<TraceParent, &'static str> {
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace_id, parent_id, flags, ..] = parts.as_slice() else {
        return Err("has fewer than four '-'-separated fields");
    };
    if version.len() != 2 || !is_lower_hex(version) || *version == "ff" {
        return Err("has a version that is not two lower-case hex digits other than ff");
    }
    // Version 00 has exactly four fields; later versions may append more.
    if *version == "00" && parts.len() != 4 {
        return Err("has more than four fields for version 00");
    }
    let trace_id: [u8; 16] =
        decode_hex(trace_id).ok_or("has a trace-id that is not 32 lower-case hex digits")?;
    let parent_id: [u8; 8] =
        decode_hex(parent_id).ok_or("has a parent-id that is not 16 lower-case hex digits")?;
    let [flags]: [u8; 1] =
        decode_hex(flags).ok_or("has flags that are not 2 lower-case hex digits")?;
    if trace_id.iter().all(|b| *b == 0) {
        return Err("has an all-zero trace-id");
    }
    if parent_id.iter().all(|b| *b == 0) {
        return Err("has an all-zero parent-id");
    }
    Ok(TraceParent {
        trace_id,
        parent_id,
        flags,
    })
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn given_the_w3c_example_when_parsed_then_fields_and_text_round_trip() {
        let tp = TraceParent::parse(SAMPLE).expect("valid");
        assert!(tp.sampled());
        assert_eq!(tp.to_string(), SAMPLE);
    }

    #[test]
    fn given_malformed_headers_when_parsed_then_each_is_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn given_a_parent_when_child_is_taken_then_trace_id_stays_and_span_changes() {
        let parent = TraceParent::new();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.parent_id, parent.parent_id);
        assert_eq!(
            TraceParent::parse(&child.to_string()).expect("valid"),
            child
        );
    }

    #[test]
    fn given_a_context_with_state_when_child_is_taken_then_state_is_kept() {
        let ctx = TraceContext {
            traceparent: SAMPLE.to_owned(),
            tracestate: Some("congo=t61rcWkgMzE".to_owned()),
        };
        let child = ctx.child().expect("valid");
        assert_eq!(child.tracestate, ctx.tracestate);
        assert_ne!(child.traceparent, ctx.traceparent);
    }
}
