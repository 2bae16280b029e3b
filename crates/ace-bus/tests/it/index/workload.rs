//! The ACE-shaped subscription workload shared by the index tests and `benches/index.rs`, so the
//! figures in BENCHMARKS.md are measured on exactly the patterns whose matches the tests check.

use ace_envelope::{Subject, SubjectPattern};

const AGENT_TYPES: [&str; 8] = [
    "llm", "planner", "critic", "tool", "router", "memory", "vision", "speech",
];

/// The `i`-th subscription of a deterministic mix: 60% literal, 20% `*` in the name position,
/// 10% `*` in the id position, 10% `>` taps, over 8 agent types × 12,500 ids × 23 event names.
pub(crate) fn pattern(i: usize) -> SubjectPattern {
    let (kind, id, name) = (AGENT_TYPES[i % 8], (i / 8) % 12_500, i % 23);
    let text = match i % 10 {
        0..=5 => format!("ace.comms.agent.{kind}.a{id}.evt.e{name}.v1"),
        6 | 7 => format!("ace.comms.agent.{kind}.a{id}.evt.*.v1"),
        8 => format!("ace.comms.agent.{kind}.*.evt.e{name}.v1"),
        _ => format!("ace.comms.agent.{kind}.a{id}.>"),
    };
    SubjectPattern::new(text).expect("valid pattern")
}

/// `count` published subjects spread over the same agents and names.
pub(crate) fn subjects(count: usize) -> Vec<Subject> {
    (0..count)
        .map(|i| {
            let (kind, id, name) = (AGENT_TYPES[i % 8], (i * 7_919) % 12_500, i % 23);
            let text = format!("ace.comms.agent.{kind}.a{id}.evt.e{name}.v1");
            Subject::new(text).expect("valid subject")
        })
        .collect()
}
