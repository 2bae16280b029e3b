//! The integration tests of `ace-contracts`, one binary. Index:
//!
//! - `embedded`   — the real `contracts/` tree: every schema compiles, every example validates,
//!   every invalid example fails at its `expect_pointer`.
//! - `registry`   — registration over fixtures: semver order, modes (transitive or not, `none`),
//!   references into embedded documents, lookups and their errors.
//! - `validation` — `validate` returns every error with instance and schema pointers.
//! - `support`    — loading a contracts tree from disk.

mod embedded;
mod registry;
mod support;
mod validation;
