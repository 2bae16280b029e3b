//! Integration tests of ace-envelope: one binary, one module per concern.

// The Leyline sample messages, shared with the benches.
#[path = "../../benches/common/mod.rs"]
mod fixtures;

// Builder outputs pass envelope.schema.json; bad envelopes are refused by both the schema and
// Envelope::validate, and a proptest holds both to the same verdict on mutated envelopes;
// errors.schema.json and ErrorCode list the same codes; rpc.schema.json.
mod schema;

// proptest: arbitrary valid envelopes round-trip JSON <-> protobuf <-> CloudEvents (both modes);
// decoders never panic on arbitrary or truncated input.
mod roundtrip;

// The Leyline messages encode and decode; sizes against the 280-byte target.
mod leyline;

// The QoS classes of contracts/comms/qos.yaml against `Qos` and the lifetime each class gives.
mod qos;
