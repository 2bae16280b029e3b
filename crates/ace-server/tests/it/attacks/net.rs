//! Attacks defended by net; see `attacks/mod.rs`.
