//! SIGKILL and restart: this test binary re-executes itself in "child" mode (the ignored test
//! `kill_child_appender`, selected by an environment variable), which appends with
//! `SyncPolicy::Always` and prints every acknowledged sequence. The parent kills it after a
//! random short time, reopens the log and checks that every acknowledged record is there with
//! its payload — 200 times on the same directory, so recovery also runs over its own earlier
//! recoveries and segment rolls.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ace_log::{Log, LogConfig, SyncPolicy};

use crate::api::rec;

const DIR_VAR: &str = "ACE_LOG_KILL_CHILD_DIR";
const CYCLES: usize = 200;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        sync: SyncPolicy::Always,
        ..LogConfig::default()
    }
}

fn payload(seq: u64) -> Vec<u8> {
    format!("{seq}:")
        .repeat((seq % 37 + 1) as usize)
        .into_bytes()
}

/// Child mode: append forever (until killed), printing `ACK <seq>` after each acknowledgement.
#[test]
#[ignore = "child process of given_an_always_synced_writer_killed_200_times_then_no_acknowledged_record_is_lost"]
fn kill_child_appender() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let (log, _) = Log::open(Path::new(&dir), config()).unwrap();
    let mut out = std::io::stdout().lock();
    loop {
        let seq = log.state().last_seq + 1;
        let acked = log.append(rec("kill.s", &payload(seq), 0)).unwrap();
        assert_eq!(acked.seq, seq);
        writeln!(out, "ACK {seq}").unwrap();
        out.flush().unwrap();
    }
}

/// A small xorshift: the kill delays only need to vary, not to be good randomness.
fn next_delay(state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_micros(3_000 + *state % 30_000)
}

#[test]
fn given_an_always_synced_writer_killed_200_times_then_no_acknowledged_record_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut acked: BTreeMap<u64, ()> = BTreeMap::new();
    let mut truncations = 0;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "kill::kill_child_appender",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = String::new();
        let mut pipe = BufReader::new(child.stdout.take().unwrap());
        if cycle % 2 == 0 {
            // Half the kills land after the first ack; the others may hit start-up and recovery.
            while !stdout.contains("ACK ") && pipe.read_line(&mut stdout).unwrap() > 0 {}
        }
        std::thread::sleep(next_delay(&mut rng));
        child.kill().unwrap();
        child.wait().unwrap();
        pipe.read_to_string(&mut stdout).unwrap();
        let new: Vec<u64> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ACK ")?.parse().ok())
            .collect();
        let (log, report) = Log::open(dir.path(), config()).unwrap();
        assert!(report.corruption.is_none(), "cycle {cycle}: {report:?}");
        truncations += report.truncated.len();
        for &seq in &new {
            let r = log.read(seq).unwrap();
            let r = r.unwrap_or_else(|| panic!("cycle {cycle}: acknowledged seq {seq} lost"));
            assert_eq!(r.payload, payload(seq), "cycle {cycle}: seq {seq}");
            acked.insert(seq, ());
        }
    }
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    let all = log.read_from(1, usize::MAX).unwrap();
    let stored: BTreeMap<u64, ()> = all.iter().map(|r| (r.seq, ())).collect();
    assert!(acked.keys().all(|s| stored.contains_key(s)));
    assert!(all.iter().all(|r| r.payload == payload(r.seq)));
    assert!(
        acked.len() >= CYCLES / 2,
        "every other child acked: {} acks",
        acked.len()
    );
    eprintln!(
        "{CYCLES} kills, {} acked records, {truncations} torn tails",
        acked.len()
    );
}
