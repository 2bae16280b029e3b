//! The one integration-test binary of `ace-bus`. Index:
//!
//! - `embedded`: the conformance kit run against the embedded engine, plus engine-specific
//!   behaviour (restart on the same data directory).
//! - `index`: the subject index against `SubjectPattern::matches` (proptest), and 100k
//!   subscriptions inserted, matched and removed.
//! - `on_nats`: the conformance kit against the NATS JetStream engine on a real NATS server, its
//!   documented exceptions, a plain NATS client reading and publishing, two engines sharing work.
//! - `live`: the live hub — queue groups, slow-consumer cutoff, request/reply, unsubscribe on drop.
//! - `powerloss`: a simulated power cut after every operation of a run of the engine (its logs
//!   and `state.redb`): no acknowledged publish lost, no sequence reused, dedup kept, no
//!   unacknowledged message skipped by a durable consumer.
//! - `storage`: a full device (`INSUFFICIENT_STORAGE`, resumes by itself) and a failed fsync
//!   (that stream `halted`, the others serve), injected through `EmbeddedConfig::durability`.
//! - `repair`: a damaged stream repaired (dry run changes nothing, the repair keeps the mark and
//!   the consumers), a halted one reopened, damage found while running announced once, and the
//!   data directory's lock refusing a second engine.
//! - `symlinks`: a linked `state.redb`, `streams/` or stream directory is refused, naming it.

mod embedded;
mod index;
mod live;
mod on_nats;
mod powerloss;
mod repair;
mod storage;
mod symlinks;
