//! The record layout of the embedded engine on `ace-log`: the log record's subject is the
//! envelope's subject, its payload the envelope's canonical JSON, and its opaque header block a
//! small fixed binary layout holding what delivery and dedup decide on without decoding the
//! envelope: priority, expiry, `not_before`, partition key, idempotency key, and the two dedup
//! keys. The block is rebuilt into [`Meta`] (and the dedup window) on open, so recovery never
//! parses JSON.
//!
//! Layout (little endian): `version u8 = 2 | priority u8 | expires_ns u64 | not_before_ns u64 |
//! key_len u16 | key | idem_len u16 | idem | id u128 | idem_scope u128` — 0 in a time field means
//! "none". `id` is the envelope id (a UUID as its 128 bits). `idem_scope` is the sender-scoped
//! idempotency key ([`scoped_idempotency_key`]), meaningful only when `idem` is not empty.
//! Version 1 blocks (no `id`, no `idem_scope`) still decode; their records take no part in
//! dedup, which only ever looks back one dedup window.

use std::sync::Arc;

use ace_envelope::{Envelope, Source};

use crate::error::BusError;

const VERSION: u8 = 2;
/// The layout before the dedup keys were stored.
const VERSION_1: u8 = 1;

/// What the engine needs of a stored message to deliver it (shared by every consumer holding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Stream sequence.
    pub(crate) seq: u64,
    /// Priority lane 0 (P0, most urgent) ..= 3 (P3).
    pub(crate) priority: u8,
    /// Unix nanos after which the message is expired, 0 when it never expires.
    pub(crate) expires_ns: u64,
    /// Unix nanos before which no consumer may see it, 0 when none.
    pub(crate) not_before_ns: u64,
    /// The ordering key.
    pub(crate) key: Option<Arc<str>>,
}

impl Meta {
    /// True when its TTL or deadline has passed at `now_ns`.
    pub(crate) fn is_expired(&self, now_ns: u64) -> bool {
        self.expires_ns != 0 && now_ns >= self.expires_ns
    }
}

/// The header block of one envelope, before it has a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) priority: u8,
    pub(crate) expires_ns: u64,
    pub(crate) not_before_ns: u64,
    pub(crate) key: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    /// The envelope id's 128 bits (`None` only in a version 1 block).
    pub(crate) id: Option<u128>,
    /// [`scoped_idempotency_key`] of the sender and `idempotency_key` (`None` without a key or in
    /// a version 1 block).
    pub(crate) idem_scope: Option<u128>,
}

impl Header {
    /// Reads the delivery-relevant fields of an envelope.
    pub(crate) fn of(env: &Envelope) -> Self {
        Header {
            priority: u8::try_from(env.priority.as_index()).unwrap_or(3),
            expires_ns: env.expires_at().map_or(0, unix_nanos),
            not_before_ns: env.not_before.map_or(0, unix_nanos),
            key: env.partition_key.clone(),
            idempotency_key: env.idempotency_key.clone(),
            id: Some(env.id.as_u128()),
            idem_scope: env
                .idempotency_key
                .as_deref()
                .map(|key| scoped_idempotency_key(env.source.as_ref(), key)),
        }
    }

    /// The binary header block.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let key = self.key.as_deref().unwrap_or("").as_bytes();
        let idem = self.idempotency_key.as_deref().unwrap_or("").as_bytes();
        let mut out = Vec::with_capacity(54 + key.len() + idem.len());
        out.push(VERSION);
        out.push(self.priority);
        out.extend_from_slice(&self.expires_ns.to_le_bytes());
        out.extend_from_slice(&self.not_before_ns.to_le_bytes());
        for part in [key, idem] {
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&part[..usize::from(len)]);
        }
        out.extend_from_slice(&self.id.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.idem_scope.unwrap_or(0).to_le_bytes());
        out
    }

    /// Parses a header block written by [`Header::encode`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader(bytes);
        let version = r.take(1)?[0];
        if version != VERSION && version != VERSION_1 {
            return Err(format!("unknown header version {version}"));
        }
        let priority = r.take(1)?[0].min(3);
        let expires_ns = r.u64()?;
        let not_before_ns = r.u64()?;
        let key = r.string()?;
        let idempotency_key = r.string()?;
        let (id, idem_scope) = if version == VERSION_1 {
            (None, None)
        } else {
            let id = r.u128()?;
            let scope = r.u128()?;
            (Some(id), idempotency_key.as_ref().map(|_| scope))
        };
        Ok(Header {
            priority,
            expires_ns,
            not_before_ns,
            key,
            idempotency_key,
            id,
            idem_scope,
        })
    }

    /// The shared delivery view of this header once stored at `seq`.
    pub(crate) fn meta(&self, seq: u64) -> Arc<Meta> {
        Arc::new(Meta {
            seq,
            priority: self.priority,
            expires_ns: self.expires_ns,
            not_before_ns: self.not_before_ns,
            key: self.key.as_deref().map(Arc::from),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("header block truncated".to_owned());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "bad u64")?))
    }

    fn u128(&mut self) -> Result<u128, String> {
        let b = self.take(16)?;
        Ok(u128::from_le_bytes(b.try_into().map_err(|_| "bad u128")?))
    }

    fn string(&mut self) -> Result<Option<String>, String> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let s = std::str::from_utf8(self.take(len)?).map_err(|e| e.to_string())?;
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }
}

/// The dedup key of an idempotency key: the first 128 bits of
/// `SHA-256("ace-idem" | len | source type | len | source id | len | key)` (each `len` the
/// next part's byte length as u64 LE, so no two splits hash alike), so a key is scoped by
/// its sender (two senders using the same key never collide) and a sender cannot choose a key
/// that collides with another sender's (the hash is collision resistant; a plain `Hash` would
/// let a sender craft one). An envelope without `source` hashes an empty type and id; the
/// server stamps the authenticated principal as `source` before a publish reaches the bus.
pub(crate) fn scoped_idempotency_key(source: Option<&Source>, key: &str) -> u128 {
    use sha2::{Digest as _, Sha256};
    let (kind, id) = source.map_or(("", ""), |s| (s.source_type.as_str(), s.id.as_str()));
    let mut h = Sha256::new();
    h.update(b"ace-idem");
    for part in [kind.as_bytes(), id.as_bytes(), key.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// Unix nanoseconds of a time (0 before 1970, saturating after 2262).
pub(crate) fn unix_nanos(t: chrono::DateTime<chrono::Utc>) -> u64 {
    t.timestamp_nanos_opt()
        .map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(0))
}

/// The stored form of an envelope: its canonical JSON. The buffer starts at 1 KiB, which holds a
/// typical envelope with a few hundred bytes of payload without growing (growing a `Vec` while
/// serialising cost ~15% of the publish path in profiles).
pub(crate) fn encode_envelope(env: &Envelope) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    // Every field of an envelope serialises infallibly (string keys, finite-or-null floats).
    let _ = serde_json::to_writer(&mut buf, env);
    buf
}

/// The envelope stored in a record's payload.
pub(crate) fn decode_envelope(
    stream: &str,
    seq: u64,
    payload: &[u8],
) -> Result<Envelope, BusError> {
    serde_json::from_slice(payload).map_err(|e| BusError::Corrupt {
        what: format!("{stream}/{seq}"),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_header_when_encoded_then_it_decodes_to_the_same_fields() {
        let h = Header {
            priority: 0,
            expires_ns: 42,
            not_before_ns: 7,
            key: Some("customer-9".to_owned()),
            idempotency_key: Some("order-1".to_owned()),
            id: Some(u128::MAX - 7),
            idem_scope: Some(42),
        };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn given_a_truncated_block_when_decoded_then_it_is_refused() {
        let bytes = Header {
            priority: 2,
            expires_ns: 0,
            not_before_ns: 0,
            key: None,
            idempotency_key: None,
            id: Some(1),
            idem_scope: None,
        }
        .encode();
        assert!(Header::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
