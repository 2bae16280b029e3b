//! Criterion benches (leyline); filled in below.
fn main() {}
