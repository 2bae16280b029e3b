//! One process per data directory: `<data_dir>/LOCK`, locked exclusively with `flock(2)` for as
//! long as the engine is open. Two engines over the same files would each recover, append and
//! cut them under the other; a second `ace-comms serve`, or an offline repair while the server
//! runs, is refused instead (`BusError::Locked`, naming the holder's pid, which the holder
//! writes into the file).
//!
//! The kernel releases an `flock` when its last descriptor closes, including when the process
//! dies (even `SIGKILL`), so a crash never leaves a stale lock: the file staying behind with an
//! old pid means nothing until someone holds the lock. The lock is advisory: it guards against
//! ACE::COMMS processes, not against other programs writing the directory.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use crate::error::BusError;

/// The lock file's name inside the data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (which must exist) without waiting, and writes this
    /// process's pid into it; `BusError::Locked` when another process holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, BusError> {
        let path = data_dir.join(LOCK_FILE);
        // The lock guards the directory, it holds no data: it stays outside the storage seam.
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|source| super::refusal(&path, source))?
        };
        let io = |source: std::io::Error| BusError::Io {
            path: path.display().to_string(),
            source,
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(BusError::Locked {
                    path: data_dir.display().to_string(),
                    pid: holder(&mut file),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0).map_err(io)?;
        file.write_all_at(pid.as_bytes(), 0).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The pid the holder wrote, when it did.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_held_lock_when_taken_again_then_it_is_refused_naming_the_pid_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        let written = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        match DataDirLock::acquire(dir.path()) {
            Err(BusError::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        DataDirLock::acquire(dir.path()).expect("released when dropped");
    }
}
