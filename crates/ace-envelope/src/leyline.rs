//! The Leyline protobuf messages and the gme/1 envelope in protobuf
//! (`GmeEnvelope`), generated at build time from `contracts/leyline/*.proto`.
//!
//! The generated code is prost's: plain structs with `prost::Message` (`encode_to_vec`,
//! `decode`), enums as `i32` fields with typed enums beside them.
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    rust_2018_idioms
)]

include!(concat!(env!("OUT_DIR"), "/leyline.rs"));
