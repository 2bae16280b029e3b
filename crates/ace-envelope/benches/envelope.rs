//! Criterion benches (envelope); filled in below.
fn main() {}
