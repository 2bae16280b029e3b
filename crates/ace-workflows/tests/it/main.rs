//! Integration tests of ace-workflows: the engine over a recording [`Effects`] (the server's
//! tests run the same engine over the real pipeline and bus).
//!
//! - `engine`: runs, retries, timeouts, failures, redelivery, resume after a crash, debounce,
//!   multi-event conditions.
//! - `shipped`: the repository's `workflows/` directory loads and routes the nine workflows.

mod engine;
mod shipped;
