//! Attacks defended by policy; see `attacks/mod.rs`.
