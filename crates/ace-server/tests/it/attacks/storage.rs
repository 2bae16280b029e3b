//! Attacks defended by storage; see `attacks/mod.rs`.
