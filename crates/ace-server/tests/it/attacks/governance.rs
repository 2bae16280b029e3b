//! Attacks defended by governance; see `attacks/mod.rs`.
