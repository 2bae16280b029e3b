//! A simulated power cut behind the storage seam (`ace_log::Durability`): [`Disk`] runs every
//! mutating call on real files under one root directory (so reads see what a page cache would),
//! keeps a model of what the device has made durable, and at a chosen operation writes the state
//! a power cut would leave — the crash image — into a fresh directory. Every later call fails
//! with `EIO`, so the code under test sees no success, and acknowledges nothing, after the cut.
//!
//! # The model
//! - **Files.** A file's durable content is what it held at its last `sync_file` (empty for a
//!   file never synced). The writes and `set_len`s since are, at the cut, either all dropped
//!   ([`Tear::Drop`]) or torn per 512-byte sector ([`Tear::Sectors`]): each sector independently
//!   holds its content as of the last sync, after all the changes since, or after any number of
//!   them in their order (a page written back between two writes); a file that grew keeps a
//!   random sector-aligned prefix of the growth (sectors of it never written read as zeros), one
//!   that shrank keeps either length.
//! - **Directories.** A directory's entries are what its last `sync_dir` made durable; the
//!   creations, renames and removals since survive as a prefix of their order (a journaled file
//!   system): none of them under [`Tear::Drop`], a random prefix under [`Tear::Sectors`]. A file
//!   or directory whose name never became durable is gone, whatever its content; `sync_file`
//!   does not make a new name durable. The root directory itself is always there.
//! - **The cut.** At operation `k` (every call of the seam counts, the first is 1) the call runs,
//!   the crash image of the state after it (that call itself possibly torn) is written under
//!   [`Crash::image`], and every later call fails with `EIO`.
//!
//! Not modelled: a device that acknowledges a flush it did not do, a sector torn inside itself
//! or written out of order within, metadata other than names and sizes (times, permissions), and
//! hard links. Syncs do not call the real `fsync` (durability is what the model says), so a sweep
//! of thousands of crash points runs in seconds; [`scratch_dir`] puts its files on a tmpfs when
//! there is one.
//!
//! Every mutating call must come through the seam: a file the model does not know (created
//! behind its back) or whose size changed behind it makes the call panic, naming the file, so a
//! write that bypasses the seam cannot go unnoticed by a sweep.

mod image;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ace_log::{Durability, OpenMode, OsDurability};

/// How the changes not yet durable look after the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// Everything not synced is gone: files hold their last synced content, directories their
    /// last synced entries.
    Drop,
    /// Sectors and directory changes survive at random (see the module docs); the same seed
    /// gives the same image for the same history.
    Sectors {
        /// Seed of the random choices.
        seed: u64,
    },
}

/// When the power goes, and where the image of what survived is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The operation (1-based count of seam calls) after which the power goes.
    pub at_op: u64,
    /// How the changes not yet durable survive.
    pub tear: Tear,
    /// An absent or empty directory that receives the crash image of the root directory.
    pub image: PathBuf,
}

/// A device under one root directory that remembers what it made durable; see the module docs.
#[derive(Debug)]
pub struct Disk {
    root: PathBuf,
    crash: Option<Crash>,
    state: Mutex<State>,
}

/// What the model knows.
#[derive(Debug, Default)]
struct State {
    ops: u64,
    crashed: bool,
    next_id: u64,
    /// Real inode number -> model file id (a new file gets a new id, even on a reused inode).
    ids: HashMap<u64, u64>,
    files: HashMap<u64, FileState>,
    /// Directories by path relative to the root ("" is the root).
    dirs: HashMap<PathBuf, DirState>,
}

/// One file: durable content and the changes since its last sync.
#[derive(Debug, Default)]
struct FileState {
    durable: Vec<u8>,
    /// Its length now (after every change).
    len: u64,
    pending: Vec<Change>,
}

/// A change of a file's bytes not yet synced.
#[derive(Debug, Clone)]
enum Change {
    Write { at: u64, data: Vec<u8> },
    SetLen(u64),
}

/// One directory: durable entries and the changes since its last sync.
#[derive(Debug, Default)]
struct DirState {
    durable: BTreeMap<OsString, Entry>,
    pending: Vec<DirChange>,
}

/// What a name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

/// A change of a directory's entries not yet synced.
#[derive(Debug, Clone)]
enum DirChange {
    Link(OsString, Entry),
    Unlink(OsString),
    Rename(OsString, OsString),
}

impl Disk {
    /// A disk that never loses power: it counts the operations of a run (to choose crash points
    /// from) and checks that every change goes through the seam. What `root` holds already is
    /// taken as durable.
    pub fn new(root: &Path) -> Disk {
        Disk::build(root, None)
    }

    /// A disk that loses power after operation `crash.at_op`; see the module docs.
    pub fn crashing(root: &Path, crash: Crash) -> Disk {
        Disk::build(root, Some(crash))
    }

    fn build(root: &Path, crash: Option<Crash>) -> Disk {
        std::fs::create_dir_all(root).expect("create the simulated disk's root");
        let mut state = State::default();
        state.scan(root, Path::new(""));
        Disk {
            root: root.to_path_buf(),
            crash,
            state: Mutex::new(state),
        }
    }

    /// Seam calls so far (including one that failed).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// True once the power went (the crash image is written).
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `path` relative to the root; a path outside it is a bug of the test.
    fn rel(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.root)
            .unwrap_or_else(|_| {
                panic!(
                    "{} is outside the simulated disk {}",
                    path.display(),
                    self.root.display()
                )
            })
            .to_path_buf()
    }

    /// Runs one seam call: refused after the cut, counted, and the cut taken after it when due.
    fn op<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.lock();
        if st.crashed {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        st.ops += 1;
        let result = f(&mut st);
        if let Some(crash) = self.crash.as_ref().filter(|c| c.at_op == st.ops) {
            st.crashed = true;
            image::write(&st, crash);
        }
        result
    }
}

/// Splits a relative path into its parent directory and its name.
fn split(rel: &Path) -> (PathBuf, OsString) {
    let name = rel.file_name().expect("a path with a file name").to_owned();
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    (parent, name)
}

impl State {
    /// Takes everything under `dir` (relative path `rel`) as durable.
    fn scan(&mut self, dir: &Path, rel: &Path) {
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("list the simulated disk") {
            let entry = entry.expect("list the simulated disk");
            let meta = entry.metadata().expect("stat a file of the simulated disk");
            let name = entry.file_name();
            if meta.is_dir() {
                self.scan(&entry.path(), &rel.join(&name));
                entries.insert(name, Entry::Dir);
            } else {
                let content = std::fs::read(entry.path()).expect("read the simulated disk");
                let id = self.new_file(meta.ino(), content);
                entries.insert(name, Entry::File(id));
            }
        }
        self.dirs.insert(
            rel.to_path_buf(),
            DirState {
                durable: entries,
                pending: Vec::new(),
            },
        );
    }

    fn new_file(&mut self, ino: u64, durable: Vec<u8>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.ids.insert(ino, id);
        let len = durable.len() as u64;
        self.files.insert(
            id,
            FileState {
                durable,
                len,
                pending: Vec::new(),
            },
        );
        id
    }

    fn dir(&mut self, rel: &Path) -> &mut DirState {
        self.dirs.get_mut(rel).unwrap_or_else(|| {
            panic!(
                "directory {} was not created through the storage seam",
                rel.display()
            )
        })
    }

    /// The model of the open `file`, checked against the real one.
    fn file(&mut self, file: &File, path: &Path) -> io::Result<&mut FileState> {
        let meta = file.metadata()?;
        let Some(id) = self.ids.get(&meta.ino()) else {
            panic!(
                "{} was not created through the storage seam",
                path.display()
            );
        };
        let state = self.files.get_mut(id).expect("every id has a file");
        assert_eq!(
            state.len,
            meta.len(),
            "{} changed size outside the storage seam",
            path.display()
        );
        Ok(state)
    }
}

impl FileState {
    fn change(&mut self, change: Change) {
        self.len = change.len_after(self.len);
        self.pending.push(change);
    }
}

impl Change {
    /// The file's length after this change, from `len` before it.
    fn len_after(&self, len: u64) -> u64 {
        match self {
            Change::Write { at, data } => len.max(at + data.len() as u64),
            Change::SetLen(l) => *l,
        }
    }

    /// Applies the change to `bytes` (the whole file).
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Change::Write { at, data } => {
                let (at, end) = (*at as usize, *at as usize + data.len());
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[at..end].copy_from_slice(data);
            }
            Change::SetLen(l) => bytes.resize(*l as usize, 0),
        }
    }
}

impl DirChange {
    fn apply(&self, entries: &mut BTreeMap<OsString, Entry>) {
        match self {
            DirChange::Link(name, entry) => {
                entries.insert(name.clone(), *entry);
            }
            DirChange::Unlink(name) => {
                entries.remove(name);
            }
            DirChange::Rename(from, to) => {
                if let Some(entry) = entries.remove(from) {
                    entries.insert(to.clone(), entry);
                }
            }
        }
    }
}

impl Durability for Disk {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        let rel = self.rel(path);
        self.op(|st| {
            let existed = std::fs::symlink_metadata(path).is_ok();
            let file = OsDurability.open(path, mode)?;
            if existed {
                let state = st.file(&file, path)?;
                if mode == OpenMode::Truncate && state.len > 0 {
                    state.change(Change::SetLen(0));
                }
            } else {
                let id = st.new_file(file.metadata()?.ino(), Vec::new());
                let (parent, name) = split(&rel);
                st.dir(&parent)
                    .pending
                    .push(DirChange::Link(name, Entry::File(id)));
            }
            Ok(file)
        })
    }

    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        self.op(|st| {
            let state = st.file(file, path)?;
            OsDurability.write_at(file, path, buf, offset)?;
            state.change(Change::Write {
                at: offset,
                data: buf.to_vec(),
            });
            Ok(())
        })
    }

    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        self.op(|st| {
            let state = st.file(file, path)?;
            OsDurability.set_len(file, path, len)?;
            state.change(Change::SetLen(len));
            Ok(())
        })
    }

    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        self.op(|st| {
            let state = st.file(file, path)?;
            for change in std::mem::take(&mut state.pending) {
                change.apply(&mut state.durable);
            }
            Ok(())
        })
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let rel = self.rel(path);
        self.op(|st| {
            OsDurability.create_dir(path)?;
            let (parent, name) = split(&rel);
            st.dir(&parent)
                .pending
                .push(DirChange::Link(name, Entry::Dir));
            st.dirs.insert(rel, DirState::default());
            Ok(())
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let ((dir, a), (to_dir, b)) = (split(&self.rel(from)), split(&self.rel(to)));
        assert_eq!(
            dir, to_dir,
            "the simulated disk renames within one directory"
        );
        self.op(|st| {
            OsDurability.rename(from, to)?;
            st.dir(&dir).pending.push(DirChange::Rename(a, b));
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (parent, name) = split(&self.rel(path));
        self.op(|st| {
            OsDurability.remove_file(path)?;
            st.dir(&parent).pending.push(DirChange::Unlink(name));
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let rel = self.rel(dir);
        self.op(|st| {
            let state = st.dir(&rel);
            for change in std::mem::take(&mut state.pending) {
                change.apply(&mut state.durable);
            }
            Ok(())
        })
    }
}

/// One crash point: a scratch directory holding `live` (the root of `disk`, where the run under
/// test writes) and `image` (where the crash image is written), removed when dropped.
#[derive(Debug)]
pub struct PowerCut {
    /// The root of the disk: the run under test keeps its files below it.
    pub live: PathBuf,
    /// Where the crash image of `live` is written at the cut.
    pub image: PathBuf,
    /// The disk that loses power.
    pub disk: Arc<Disk>,
    _scratch: tempfile::TempDir,
}

impl PowerCut {
    /// A cut after operation `at_op` of a run on an empty disk.
    pub fn after(at_op: u64, tear: Tear) -> PowerCut {
        PowerCut::on_copy_of(None, at_op, tear)
    }

    /// A cut after operation `at_op` of a run on a disk that starts with a copy of the tree
    /// `from` (taken as durable): a second cut, during the recovery of a crash image.
    pub fn on_copy_of(from: Option<&Path>, at_op: u64, tear: Tear) -> PowerCut {
        let scratch = scratch_dir();
        let (live, image) = (scratch.path().join("live"), scratch.path().join("image"));
        if let Some(from) = from {
            copy_tree(from, &live);
        }
        let crash = Crash {
            at_op,
            tear,
            image: image.clone(),
        };
        let disk = Arc::new(Disk::crashing(&live, crash));
        PowerCut {
            live,
            image,
            disk,
            _scratch: scratch,
        }
    }
}

/// Copies the directory tree `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a copy's directory");
    for entry in std::fs::read_dir(from).expect("list a tree to copy") {
        let entry = entry.expect("list a tree to copy");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("stat a file to copy").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

/// A fresh temporary directory for a sweep: on `/dev/shm` (a tmpfs) when there is one, so that
/// thousands of crash images cost no disk I/O.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix("ace-pl-").tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new()
        .prefix("ace-pl-")
        .tempdir()
        .expect("create a temporary directory")
}

/// How many crash points one sweep runs: `ci_points`, its size in CI, unless
/// `ACE_POWERLOSS_POINTS` is set (a big sweep run by hand): that is then the total over the
/// sweeps that run `ci_total` points in CI together, each taking its share.
pub fn sweep_size(ci_points: usize, ci_total: usize) -> usize {
    std::env::var("ACE_POWERLOSS_POINTS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(ci_points, |total| {
            (total.saturating_mul(ci_points) / ci_total.max(1)).max(1)
        })
}

/// The crash points of a run of `ops` operations: after every operation, once with everything
/// not synced dropped and once torn with a seed derived from `seed` and the operation.
pub fn crash_points(ops: u64, seed: u64) -> impl Iterator<Item = (u64, Tear)> {
    (1..=ops).flat_map(move |at_op| {
        let torn = Tear::Sectors {
            seed: image::mix(seed, at_op),
        };
        [(at_op, Tear::Drop), (at_op, torn)]
    })
}

#[cfg(test)]
mod tests;
