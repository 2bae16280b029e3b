//! Wire forms of the envelope other than its canonical JSON (which is its serde form, see
//! [`Envelope::to_json_vec`](crate::Envelope::to_json_vec)): protobuf ([`proto`]) and
//! CloudEvents 1.0 ([`cloudevents`]). Each is a lossless view: converting a valid envelope
//! there and back gives an equal envelope (proptested in `tests/it/roundtrip.rs`).

pub mod cloudevents;
pub mod proto;

use base64::Engine as _;

use crate::envelope::is_json_content_type;
use crate::error::EnvelopeError;

pub(crate) fn codec_error(field: &str, reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Codec {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The envelope's `payload` value for raw `bytes` of `content_type`: the parsed JSON for JSON
/// content, a standard base64 string otherwise (the inverse of `Envelope::payload_bytes`).
pub(crate) fn payload_from_bytes(
    content_type: &str,
    bytes: &[u8],
) -> Result<serde_json::Value, EnvelopeError> {
    if is_json_content_type(content_type) {
        serde_json::from_slice(bytes).map_err(|e| codec_error("/payload", e.to_string()))
    } else {
        Ok(serde_json::Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ))
    }
}
