//! The public API end to end on real files: append/read across segment rolls, deletes,
//! retention and reopen.

use ace_log::{Log, LogConfig, NewRecord, SyncPolicy};

pub(crate) fn rec<'a>(subject: &'a str, payload: &'a [u8], ts: u64) -> NewRecord<'a> {
    NewRecord {
        subject,
        headers: b"",
        payload,
        timestamp_ns: ts,
    }
}

#[test]
fn given_appends_across_rolls_when_reopened_then_every_record_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4096,
        sync: SyncPolicy::Always,
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir.path(), config.clone()).unwrap();
    for i in 1..=200u64 {
        let payload = format!("payload-{i}").repeat(5);
        let a = log.append(rec("s.a", payload.as_bytes(), i)).unwrap();
        assert_eq!(a.seq, i);
    }
    log.close().unwrap();
    let (log, report) = Log::open(dir.path(), config).unwrap();
    assert!(report.segments > 1, "{report:?}");
    assert!(report.truncated.is_empty() && report.corruption.is_none());
    for i in 1..=200u64 {
        let r = log.read(i).unwrap().unwrap();
        assert_eq!(r.payload, format!("payload-{i}").repeat(5).as_bytes());
        assert_eq!(r.timestamp_ns, i);
    }
    assert_eq!(log.state().last_seq, 200);
    assert_eq!(log.seq_at_or_after(150), Some(150));
}

fn config(sync: SyncPolicy, segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        sync,
        ..LogConfig::default()
    }
}

#[test]
fn given_a_deleted_message_when_reopened_then_it_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(SyncPolicy::default(), 1 << 20);
    let (log, _) = Log::open(dir.path(), cfg.clone()).unwrap();
    for i in 0..5u64 {
        log.append(rec("q", &[i as u8], 0)).unwrap();
    }
    assert!(log.delete(2).unwrap());
    assert!(!log.delete(2).unwrap(), "a second delete finds nothing");
    assert!(!log.delete(99).unwrap(), "out of range");
    drop(log);
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    assert_eq!(log.read(2).unwrap(), None);
    let seqs: Vec<u64> = log
        .read_from(1, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 3, 4, 5]);
    assert_eq!(log.state().messages, 4);
}

#[test]
fn given_a_sealed_segment_whose_messages_are_all_deleted_when_the_last_goes_then_its_file_is_removed()
 {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(dir.path(), config(SyncPolicy::Always, 4096)).unwrap();
    let payload = [1u8; 1000];
    for _ in 0..8 {
        log.append(rec("q", &payload, 0)).unwrap();
    }
    let count = || std::fs::read_dir(dir.path()).unwrap().count();
    let before = count();
    for seq in 1..=3 {
        assert!(log.delete(seq).unwrap());
    }
    assert!(count() < before, "the first segment (seqs 1..=3) is gone");
    assert_eq!(log.state().first_seq, 4);
    assert_eq!(log.read_from(1, 1).unwrap()[0].seq, 4);
}

#[test]
fn given_retention_by_messages_when_applied_then_only_whole_old_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(SyncPolicy::Never, 4096);
    cfg.retention.max_msgs = Some(10);
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    let payload = [3u8; 500];
    for _ in 0..40 {
        log.append(rec("r", &payload, 0)).unwrap();
    }
    let report = log.apply_retention(0).unwrap();
    let state = log.state();
    assert!(report.segments_dropped > 0);
    assert!(state.messages >= 10, "keeps at least the limit: {state:?}");
    assert_eq!(state.messages + report.messages_dropped, 40);
    assert_eq!(state.first_seq, 41 - state.messages);
    assert_eq!(log.read(state.first_seq - 1).unwrap(), None);
}

#[test]
fn given_retention_by_age_when_everything_expired_then_sequences_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        SyncPolicy::Batch {
            max_delay: std::time::Duration::ZERO,
        },
        4096,
    );
    cfg.retention.max_age = Some(std::time::Duration::from_nanos(100));
    let (log, _) = Log::open(dir.path(), cfg.clone()).unwrap();
    for ts in 1..=20u64 {
        log.append(rec("r", &[0u8; 300], ts)).unwrap();
    }
    let report = log.apply_retention(1_000).unwrap();
    assert_eq!(report.messages_dropped, 20);
    assert_eq!(log.state().messages, 0);
    drop(log);
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    assert_eq!(log.state().first_seq, 21);
    assert_eq!(log.append(rec("r", b"x", 2_000)).unwrap().seq, 21);
}

#[test]
fn given_retention_by_bytes_when_applied_then_newest_bytes_within_the_limit_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(SyncPolicy::Never, 4096);
    cfg.retention.max_bytes = Some(3000);
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    for _ in 0..30 {
        log.append(rec("r", &[9u8; 400], 0)).unwrap();
    }
    let before = log.state().bytes;
    let report = log.apply_retention(0).unwrap();
    let after = log.state().bytes;
    assert!(
        after >= 3000 && after + report.bytes_dropped == before,
        "{after} {report:?}"
    );
}

#[test]
fn given_concurrent_writers_under_group_commit_then_every_ack_is_unique_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(dir.path(), config(SyncPolicy::default(), 64 * 1024)).unwrap();
    let seqs = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let (log, seqs) = (&log, &seqs);
            s.spawn(move || {
                for i in 0..200u8 {
                    let a = log.append(rec("g", &[t, i], 0)).unwrap();
                    let got = log.read(a.seq).unwrap().expect("acked means readable");
                    assert_eq!(&got.payload[..], &[t, i]);
                    seqs.lock().unwrap().push(a.seq);
                }
            });
        }
    });
    let mut seqs = seqs.into_inner().unwrap();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=800).collect::<Vec<u64>>());
}

#[test]
fn given_timestamps_when_searching_by_time_then_the_first_record_at_or_after_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(SyncPolicy::Never, 4096);
    cfg.index_interval_bytes = 256;
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    for i in 1..=100u64 {
        log.append(rec("t", &[0u8; 100], i * 10)).unwrap();
    }
    let stored = log.append(rec("t", b"late", 5)).unwrap();
    assert_eq!(stored.timestamp_ns, 1000, "timestamps never go backwards");
    assert_eq!(log.seq_at_or_after(0), Some(1));
    assert_eq!(log.seq_at_or_after(455), Some(46));
    assert_eq!(log.seq_at_or_after(460), Some(46));
    assert_eq!(log.seq_at_or_after(1001), None);
}

#[test]
fn given_an_oversized_record_when_appended_then_it_is_refused_naming_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(SyncPolicy::Never, 4096);
    cfg.max_record_bytes = 100;
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    let err = log.append(rec("big.one", &[0u8; 100], 0)).unwrap_err();
    assert!(err.to_string().contains("big.one"), "{err}");
    assert_eq!(log.state().last_seq, 0);
}

#[test]
fn given_a_bad_config_when_opening_then_the_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Log::open(dir.path(), config(SyncPolicy::Never, 10)).unwrap_err();
    assert!(err.to_string().contains("segment_bytes"), "{err}");
}

#[test]
fn given_sync_never_when_the_process_drops_the_log_then_written_records_survive_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(SyncPolicy::Never, 4096);
    let (log, _) = Log::open(&dir.path().join("stream"), cfg.clone()).unwrap();
    for i in 0..50u8 {
        let a = log.append(rec("lazy", &[i; 100], 0)).unwrap();
        assert_eq!(
            log.read(a.seq).unwrap().unwrap().payload[0],
            i,
            "visible at once"
        );
    }
    drop(log);
    let (log, report) = Log::open(&dir.path().join("stream"), cfg).unwrap();
    assert!(
        report.truncated.is_empty() && report.corruption.is_none(),
        "{report:?}"
    );
    assert_eq!(log.state().messages, 50);
}

#[test]
fn given_a_batch_of_deletes_when_reopened_then_all_stay_deleted_and_misses_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(SyncPolicy::default(), 4096);
    let (log, _) = Log::open(dir.path(), cfg.clone()).unwrap();
    let payloads: Vec<Vec<u8>> = (0..60u8).map(|i| vec![i; 200]).collect();
    let recs: Vec<NewRecord<'_>> = payloads.iter().map(|p| rec("wq", p, 0)).collect();
    log.append_batch(&recs).unwrap();
    let acks: Vec<u64> = (1..=40).chain([40, 500]).collect();
    assert_eq!(log.delete_batch(&acks).unwrap(), 40);
    drop(log);
    let (log, _) = Log::open(dir.path(), cfg).unwrap();
    let left: Vec<u64> = log
        .read_from(1, 100)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(left, (41..=60).collect::<Vec<u64>>());
    assert_eq!(log.state().first_seq, 41);
}

#[test]
fn given_a_group_commit_delay_when_writers_race_then_all_are_acked_in_order_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let delay = std::time::Duration::from_millis(2);
    let (log, _) = Log::open(
        dir.path(),
        config(SyncPolicy::Batch { max_delay: delay }, 1 << 20),
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let log = &log;
            s.spawn(move || {
                let mut last = 0;
                for i in 0..20u8 {
                    let a = log.append(rec("d", &[t, i], 0)).unwrap();
                    assert!(a.seq > last, "a writer's sequences increase");
                    last = a.seq;
                }
            });
        }
    });
    assert_eq!(log.read_from(1, 100).unwrap().len(), 80);
}
