//! The record frame, its encoder and its decoder. This is the only code that knows the byte
//! layout; the decoder is fuzzed (`fuzz/fuzz_targets/record_decode.rs`) and never panics.
//!
//! ```text
//! [len u32][crc32c u32][seq u64][ts u64][subject len u16][headers len u32][subject][headers][payload]
//! ```
//! Little endian. `len` counts the bytes after the crc field (the body); the CRC32C covers the
//! body. A zero or oversized `len`, a short buffer, a CRC mismatch, lengths that do not fit the
//! body or a subject that is not UTF-8 are all decode errors, never panics.

/// Bytes before the body: the `len` and `crc` fields.
pub const PREFIX_BYTES: usize = 8;
/// Fixed part of the body: seq, timestamp, subject length, headers length.
pub const BODY_FIXED_BYTES: usize = 8 + 8 + 2 + 4;
/// The smallest possible frame (empty subject, headers and payload).
pub const MIN_FRAME_BYTES: u32 = (PREFIX_BYTES + BODY_FIXED_BYTES) as u32;
/// The largest frame the decoder accepts at all, whatever the configuration (1 GiB).
pub const MAX_FRAME_BYTES: u32 = 1 << 30;

/// A decoded record borrowing from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Subject.
    pub subject: &'a str,
    /// Opaque header block.
    pub headers: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before the frame does (a torn tail when it is the end of the file).
    Incomplete {
        /// Bytes available.
        have: usize,
        /// Bytes the frame needs (at least).
        need: usize,
    },
    /// The length field is below the minimum body size or over the decoder limit.
    BadLength(u32),
    /// The stored CRC does not match the body.
    BadCrc {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the body.
        computed: u32,
    },
    /// Subject and header lengths do not fit in the body.
    BadLayout,
    /// The subject is not UTF-8.
    BadSubject,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Incomplete { have, need } => {
                write!(f, "frame needs {need} bytes, only {have} present")
            }
            DecodeError::BadLength(len) => write!(f, "impossible frame length {len}"),
            DecodeError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            DecodeError::BadLayout => f.write_str("subject/headers lengths overflow the frame"),
            DecodeError::BadSubject => f.write_str("subject is not UTF-8"),
        }
    }
}

/// Framed size of a record with these field sizes.
pub fn frame_len(subject: usize, headers: usize, payload: usize) -> u64 {
    (PREFIX_BYTES + BODY_FIXED_BYTES) as u64 + subject as u64 + headers as u64 + payload as u64
}

/// Appends one frame to `buf`. The caller has checked that the frame is at most
/// [`MAX_FRAME_BYTES`] and the subject at most `u16::MAX` bytes.
pub fn encode_into(buf: &mut Vec<u8>, rec: &RecordRef<'_>) {
    let start = buf.len();
    let body_len =
        frame_len(rec.subject.len(), rec.headers.len(), rec.payload.len()) as usize - PREFIX_BYTES;
    buf.reserve(PREFIX_BYTES + body_len);
    buf.extend_from_slice(&(body_len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&rec.seq.to_le_bytes());
    buf.extend_from_slice(&rec.timestamp_ns.to_le_bytes());
    buf.extend_from_slice(&(rec.subject.len() as u16).to_le_bytes());
    buf.extend_from_slice(&(rec.headers.len() as u32).to_le_bytes());
    buf.extend_from_slice(rec.subject.as_bytes());
    buf.extend_from_slice(rec.headers);
    buf.extend_from_slice(rec.payload);
    let crc = crc32c::crc32c(&buf[start + PREFIX_BYTES..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the frame at the start of `buf`, returning it and its framed length.
pub fn decode(buf: &[u8]) -> Result<(RecordRef<'_>, usize), DecodeError> {
    let prefix = buf.get(..PREFIX_BYTES).ok_or(DecodeError::Incomplete {
        have: buf.len(),
        need: PREFIX_BYTES,
    })?;
    let body_len = u32_at(prefix, 0);
    if (body_len as usize) < BODY_FIXED_BYTES || body_len > MAX_FRAME_BYTES - PREFIX_BYTES as u32 {
        return Err(DecodeError::BadLength(body_len));
    }
    let total = PREFIX_BYTES + body_len as usize;
    let body = buf
        .get(PREFIX_BYTES..total)
        .ok_or(DecodeError::Incomplete {
            have: buf.len(),
            need: total,
        })?;
    let stored = u32_at(prefix, 4);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(DecodeError::BadCrc { stored, computed });
    }
    let subject_len = u16::from_le_bytes([body[16], body[17]]) as usize;
    let headers_len = u32_at(body, 18) as usize;
    let rest = &body[BODY_FIXED_BYTES..];
    if subject_len.saturating_add(headers_len) > rest.len() {
        return Err(DecodeError::BadLayout);
    }
    let (subject, rest) = rest.split_at(subject_len);
    let (headers, payload) = rest.split_at(headers_len);
    let subject = std::str::from_utf8(subject).map_err(|_| DecodeError::BadSubject)?;
    let rec = RecordRef {
        seq: u64_at(body, 0),
        timestamp_ns: u64_at(body, 8),
        subject,
        headers,
        payload,
    };
    Ok((rec, total))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordRef<'static> {
        RecordRef {
            seq: 7,
            timestamp_ns: 99,
            subject: "orders.eu",
            headers: b"h=1",
            payload: b"hello",
        }
    }

    #[test]
    fn given_a_record_when_encoded_then_it_decodes_to_itself_with_its_length() {
        let mut buf = Vec::new();
        encode_into(&mut buf, &sample());
        let (rec, len) = decode(&buf).unwrap();
        assert_eq!(rec, sample());
        assert_eq!(len, buf.len());
        assert_eq!(len as u64, frame_len(9, 3, 5));
    }

    #[test]
    fn given_any_prefix_of_a_frame_when_decoded_then_it_is_incomplete_not_a_panic() {
        let mut buf = Vec::new();
        encode_into(&mut buf, &sample());
        for cut in 0..buf.len() {
            let err = decode(&buf[..cut]).unwrap_err();
            assert!(
                matches!(err, DecodeError::Incomplete { .. }),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn given_a_flipped_body_bit_when_decoded_then_the_crc_refuses_it() {
        let mut buf = Vec::new();
        encode_into(&mut buf, &sample());
        for bit in (PREFIX_BYTES * 8)..(buf.len() * 8) {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode(&bad), Err(DecodeError::BadCrc { .. })),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn given_zeroed_bytes_when_decoded_then_the_length_is_refused() {
        assert_eq!(decode(&[0; 64]), Err(DecodeError::BadLength(0)));
    }
}
