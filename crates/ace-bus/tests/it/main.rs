//! The one integration-test binary of `ace-bus`. Index:
//!
//! - `embedded`: the conformance kit run against the embedded engine, plus engine-specific
//!   behaviour (restart on the same data directory).
