//! The integration tests of `ace-contracts`, one binary. Index:
//!
//! - `embedded`   — the real `contracts/` tree: every schema compiles, every example validates,
//!   every invalid example fails at its `expect_pointer`.
//! - `publishing` — the README's publishing flow on the real tree: a versioned copy of
//!   `ml/ml_schemas.json` admitted when compatible, refused with pointers when not.
//! - `registry`   — registration over fixtures: semver order, modes (transitive or not, `none`),
//!   references into embedded documents, lookups and their errors.
//! - `soundness`  — random schema pairs: whenever the checker (strict reading) finds a pair
//!   backward compatible, no sampled instance valid under the old schema fails the new one.
//! - `validation` — `validate` returns every error with instance and schema pointers.
//! - `support`    — loading a contracts tree from disk.

mod embedded;
mod publishing;
mod registry;
mod soundness;
mod support;
mod validation;
