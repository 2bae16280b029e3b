//! Fuzzes the `ace-log` record decoder, asserting properties rather than only "no crash":
//! 1. arbitrary bytes never panic, and whatever decodes re-encodes to exactly the bytes it
//!    came from (the frame format has one encoding per record);
//! 2. a record built from the input round-trips: `decode(encode(r)) == r`, consuming the frame.
#![no_main]

use ace_log::codec::{RecordRef, decode, encode_into};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((rec, len)) = decode(data) {
        let mut again = Vec::new();
        encode_into(&mut again, &rec);
        assert_eq!(&again[..], &data[..len]);
    }

    let word = |at: usize| {
        let mut b = [0u8; 8];
        for (i, x) in data.iter().skip(at).take(8).enumerate() {
            b[i] = *x;
        }
        u64::from_le_bytes(b)
    };
    let rest = data.get(16..).unwrap_or_default();
    let cut1 = (word(0) as usize) % (rest.len() + 1);
    let cut2 = cut1 + (word(8) as usize) % (rest.len() - cut1 + 1);
    let subject = String::from_utf8_lossy(&rest[..cut1.min(u16::MAX as usize / 4)]);
    let rec = RecordRef {
        seq: word(0),
        timestamp_ns: word(8),
        subject: &subject,
        headers: &rest[cut1..cut2],
        payload: &rest[cut2..],
    };
    let mut frame = Vec::new();
    encode_into(&mut frame, &rec);
    let (back, len) = decode(&frame).expect("an encoded record decodes");
    assert_eq!(back, rec);
    assert_eq!(len, frame.len());
});
