//! Symbolic links in a log directory are never followed: a segment, a tombstone file or the
//! directory itself that is a link makes `Log::open` fail with `LogError::Symlink` naming the
//! link, and the file it points at is left byte for byte as it was.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ace_log::{Log, LogConfig, LogError};

use crate::api::rec;

const VICTIM: &[u8] = b"victim bytes that must never change\n";

/// A log with three records in `dir`, closed again.
fn write_log(dir: &Path) {
    let (log, _) = Log::open(dir, LogConfig::default()).unwrap();
    for i in 0..3u8 {
        log.append(rec("a", &[i], 0)).unwrap();
    }
    log.delete(2).unwrap();
    log.sync().unwrap();
}

/// The only file of `dir` with the extension `ext`.
fn only(dir: &Path, ext: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Replaces `path` by a symlink to a fresh victim file; returns the victim's path.
fn replace_by_link(path: &Path, victim_dir: &Path) -> PathBuf {
    let victim = victim_dir.join("victim");
    std::fs::write(&victim, VICTIM).unwrap();
    std::fs::remove_file(path).unwrap();
    symlink(&victim, path).unwrap();
    victim
}

fn assert_refused(result: Result<(Log, ace_log::RecoveryReport), LogError>, link: &Path) {
    match result {
        Err(LogError::Symlink { path }) => assert_eq!(path, link),
        Err(other) => panic!("expected a symlink refusal naming {link:?}, got {other}"),
        Ok(_) => panic!("the log opened through the symlink {link:?}"),
    }
}

#[test]
fn given_a_segment_replaced_by_a_symlink_when_opened_then_it_fails_naming_it_and_the_victim_is_unchanged()
 {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let segment = only(dir.path(), "log");
    let victim = replace_by_link(&segment, outside.path());

    let result = Log::open(dir.path(), LogConfig::default());

    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        message.starts_with(&format!("refusing to follow symlink {}", segment.display())),
        "{message}"
    );
    assert_refused(result, &segment);
    assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
}

#[test]
fn given_a_tombstone_file_replaced_by_a_symlink_when_opened_then_it_fails_and_the_victim_is_unchanged()
 {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let tombstones = only(dir.path(), "del");
    let victim = replace_by_link(&tombstones, outside.path());

    assert_refused(Log::open(dir.path(), LogConfig::default()), &tombstones);
    assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
}

#[test]
fn given_a_log_directory_that_is_a_symlink_when_opened_then_it_is_refused() {
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    write_log(real.path());
    let link = links.path().join("stream");
    symlink(real.path(), &link).unwrap();

    assert_refused(Log::open(&link, LogConfig::default()), &link);
}

#[test]
fn given_a_planted_segment_symlink_when_the_log_creates_that_segment_then_it_refuses_to_write_through_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, VICTIM).unwrap();
    // The first segment of an empty log starts at sequence 1.
    let first = dir.path().join(format!("{:020}.log", 1));
    symlink(&victim, &first).unwrap();

    assert_refused(Log::open(dir.path(), LogConfig::default()), &first);
    assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
}
