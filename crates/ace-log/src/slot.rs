//! The 32-byte slot of the double-slot files (`highwater`, the header of a `.del` file):
//!
//! ```text
//! magic [u8; 8] | generation u64 | value u64 | crc32c(previous 24) u32 | pad
//! ```
//! A file keeps two; each update overwrites the one not written last (`generation % 2`), so a
//! torn update leaves the other intact, and the valid slot with the higher generation wins.

/// Bytes per slot.
pub(crate) const SLOT: usize = 32;

/// The slot holding `value` at `generation`.
pub(crate) fn encode(magic: &[u8; 8], generation: u64, value: u64) -> [u8; SLOT] {
    let mut s = [0u8; SLOT];
    s[..8].copy_from_slice(magic);
    s[8..16].copy_from_slice(&generation.to_le_bytes());
    s[16..24].copy_from_slice(&value.to_le_bytes());
    let crc = crc32c::crc32c(&s[..24]);
    s[24..28].copy_from_slice(&crc.to_le_bytes());
    s
}

/// `(generation, value)` of a valid slot with `magic`.
pub(crate) fn decode(magic: &[u8; 8], s: &[u8]) -> Option<(u64, u64)> {
    let s = s.get(..SLOT)?;
    let crc = u32::from_le_bytes([s[24], s[25], s[26], s[27]]);
    (&s[..8] == magic && crc32c::crc32c(&s[..24]) == crc)
        .then(|| (crate::codec::u64_at(s, 8), crate::codec::u64_at(s, 16)))
}

/// The valid slot with the higher generation among those at the start of `bytes`.
pub(crate) fn latest(magic: &[u8; 8], bytes: &[u8]) -> Option<(u64, u64)> {
    bytes
        .chunks_exact(SLOT)
        .take(2)
        .filter_map(|s| decode(magic, s))
        .max_by_key(|(generation, _)| *generation)
}

/// Where the slot of `generation` lives.
pub(crate) fn offset(generation: u64) -> u64 {
    (generation % 2) * SLOT as u64
}
