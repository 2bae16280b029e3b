//! The one integration-test binary of `ace-log`. Index:
//! - `api`: append, read, roll, delete, retention and reopen through the public API.

mod api;
