//! The one integration-test binary of `ace-log`. Index:
//! - `api`: append, read, roll, delete, retention, time search and group commit on real files.
//! - `crash`: torn tails cut at every byte and flipped bits, judged against the watermark.
//! - `faults`: injected fsync failures halt the log and are never acknowledged.

mod api;
mod crash;
mod faults;
