//! The security regression suite: every attack of the enforced-mode attack run, the ones that
//! once got through and the ones that were always refused, each a test with its expected answer.
//! SECURITY.md at the repository root lists what is defended, how, and what is not.
//!
//! Modules, by the layer that defends:
//! - `governance`: identity from authentication (`source`, heartbeats), confused deputies
//!   (`reply_to`), sessions, approvals, denials in the ledger, envelope times.
//! - `policy`: JWT claims (`iat`, lifetime, reserved principals), the shipped Rego rules, PII.
//! - `storage`: duplicates and idempotency keys across principals, shared consumers and
//!   clearance, symlinks in the data directory.
//! - `net`: memory bounds per connection and principal, slow clients, oversized bodies, the
//!   WebSocket close codes, credentials that lapse under a live subscription.

mod governance;
mod net;
mod policy;
mod storage;
