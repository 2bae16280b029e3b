//! Model test: random appends, batch appends, deletes, retention passes and reopens against an
//! in-memory `BTreeMap` of what must be there. After every step the log's live records, counts
//! and sequences must equal the model's; retention may only drop a prefix and must keep at least
//! `max_msgs`.

use std::collections::BTreeMap;

use ace_log::{Log, LogConfig, NewRecord, Retention, SyncPolicy};
use proptest::prelude::*;

const MAX_MSGS: u64 = 15;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u16>),
    Delete(usize),
    Retention,
    Reopen { close: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(0u16..400, 1..6).prop_map(Op::Append),
        3 => any::<usize>().prop_map(Op::Delete),
        1 => Just(Op::Retention),
        1 => any::<bool>().prop_map(|close| Op::Reopen { close }),
    ]
}

fn config(sync: SyncPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        sync,
        retention: Retention {
            max_msgs: Some(MAX_MSGS),
            ..Retention::default()
        },
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn payload(seq: u64, len: u16) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect()
}

type Model = BTreeMap<u64, Vec<u8>>;

fn check(log: &Log, model: &Model, next_seq: u64) {
    let all = log.read_from(1, usize::MAX).unwrap();
    let got: Model = all
        .into_iter()
        .map(|r| (r.seq, r.payload.to_vec()))
        .collect();
    assert_eq!(&got, model);
    let state = log.state();
    assert_eq!(state.messages, model.len() as u64);
    assert_eq!(state.last_seq, next_seq - 1);
    assert_eq!(
        state.first_seq,
        model.keys().next().copied().unwrap_or(next_seq)
    );
    for (&seq, p) in model.iter().take(3) {
        assert_eq!(log.read(seq).unwrap().unwrap().payload, &p[..]);
    }
}

fn run(ops: Vec<Op>, sync: SyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(sync);
    let (mut log, _) = Log::open(dir.path(), cfg.clone()).unwrap();
    let mut model = Model::new();
    let mut next_seq = 1u64;
    for op in ops {
        match op {
            Op::Append(lens) => {
                let payloads: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| payload(next_seq + i as u64, l))
                    .collect();
                let recs: Vec<NewRecord<'_>> = payloads
                    .iter()
                    .map(|p| NewRecord {
                        subject: "m.s",
                        headers: b"h",
                        payload: p,
                        timestamp_ns: 0,
                    })
                    .collect();
                let acks = log.append_batch(&recs).unwrap();
                for (a, p) in acks.iter().zip(payloads) {
                    assert_eq!(a.seq, next_seq);
                    model.insert(next_seq, p);
                    next_seq += 1;
                }
            }
            Op::Delete(i) => {
                let seq = if model.is_empty() {
                    next_seq
                } else {
                    *model.keys().nth(i % model.len()).unwrap()
                };
                assert_eq!(log.delete(seq).unwrap(), model.remove(&seq).is_some());
            }
            Op::Retention => {
                let before = model.len() as u64;
                let report = log.apply_retention(0).unwrap();
                let first = log.state().first_seq;
                let dropped: Vec<u64> = model.range(..first).map(|(s, _)| *s).collect();
                for s in &dropped {
                    model.remove(s);
                }
                assert_eq!(report.messages_dropped, dropped.len() as u64);
                assert!(
                    model.len() as u64 >= before.min(MAX_MSGS),
                    "kept at least the limit"
                );
            }
            Op::Reopen { close } => {
                if close {
                    log.close().unwrap();
                } else {
                    drop(log);
                }
                let (reopened, report) = Log::open(dir.path(), cfg.clone()).unwrap();
                assert!(
                    report.corruption.is_none() && report.truncated.is_empty(),
                    "{report:?}"
                );
                log = reopened;
            }
        }
        check(&log, &model, next_seq);
    }
}

/// A case proptest once found: a segment all of whose records were deleted while it was the
/// active one was removed when it rolled although older segments still held records, so the
/// reopened log saw a hole between them and called it lost data.
#[test]
fn given_a_fully_deleted_middle_segment_when_it_rolls_and_the_log_reopens_then_there_is_no_hole() {
    let ops = vec![
        Op::Append(vec![242, 256, 297, 0, 103]),
        Op::Delete(0),
        Op::Delete(8_374_227_554_337),
        Op::Delete(12_164_172_564_148_617_068),
        Op::Delete(7_149_877_372_670_765_615),
        Op::Append(vec![361, 198, 2, 340, 396]),
        Op::Reopen { close: false },
    ];
    for sync in [SyncPolicy::Never, SyncPolicy::Always] {
        run(ops.clone(), sync);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn given_random_operations_when_compared_to_a_model_then_the_log_agrees(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(ops, SyncPolicy::Never);
    }

    #[test]
    fn given_random_operations_under_group_commit_when_compared_to_a_model_then_the_log_agrees(
        ops in proptest::collection::vec(op(), 1..25),
    ) {
        run(ops, SyncPolicy::default());
    }
}

/// Regression (found by this model): a segment whose messages were all deleted while it was
/// active stayed after its roll and `state().first_seq` pointed into it.
#[test]
fn given_a_segment_emptied_by_deletes_before_its_roll_then_first_seq_skips_it() {
    use Op::*;
    run(
        vec![
            Append(vec![367]),
            Append(vec![91]),
            Delete(0),
            Delete(0),
            Append(vec![337, 3, 36]),
            Append(vec![4, 178, 146]),
            Append(vec![352, 97, 292]),
            Delete(6390833380447153167),
        ],
        SyncPolicy::Never,
    );
}
