//! `ace-contracts`: the contracts of ACE::COMMS, embedded from `contracts/` at compile time, served
//! by a schema registry that checks compatibility structurally and validates payloads.
//!
//! - [`Registry`] — subjects → semver versions → schemas; [`Registry::embedded`] loads the
//!   manifest `contracts/comms/registry.yaml`; [`Registry::register`] admits a new version only
//!   if it compiles and is compatible under the subject's [`CompatibilityMode`] (refusals list
//!   every [`Incompatibility`]; the outcome lists what the mode let through as advisories);
//!   [`Registry::check_compatibility`] is the dry run;
//!   [`Registry::validate`] / [`RegisteredSchema::validate`] return every [`ValidationError`]
//!   with its JSON pointers.
//! - [`compat`] — the seven modes and the structural checker, with its rule table (including the
//!   open/closed content-model matrix) in the module documentation.
//! - [`embedded_files`] — the raw embedded tree, for tools that list or print contracts.
//!
//! # Invariants
//!
//! - Every registered schema compiled; its validator is built once, at registration, and reused
//!   for every validation (no per-message compilation).
//! - No reference is ever fetched: `$ref`s resolve among the embedded documents (or inside the
//!   schema) and validators are built offline; a missing target is a compile error.
//! - A subject's versions only grow: a version at or below the latest is refused, a registered
//!   version is immutable (re-registering the identical schema is a no-op).
//! - A version is admitted only if the structural check finds no incompatibility with the
//!   versions its mode names; the embedded manifest goes through the same check at load.
//! - Every incompatibility and every validation error carries a JSON pointer and a reason.

pub mod compat;
mod documents;
mod error;
mod manifest;
mod registry;
mod validate;

pub use compat::{
    CheckOptions, CompatibilityMode, Direction, Incompatibility, OpenModelReading, Rule,
};
pub use error::ContractError;
pub use manifest::MANIFEST;
pub use registry::{RegisterOutcome, RegisteredSchema, Registry, SchemaRef, SchemaSource};
pub use semver::Version;
pub use validate::ValidationError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// Every JSON and YAML file under `contracts/` at build time: `(path relative to contracts/,
/// text)`, sorted by path.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}
