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
