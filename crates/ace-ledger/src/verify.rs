//! [`verify_dir`]: the offline check behind `ace-comms ledger verify [--data DIR]`, and
//! [`verify_postgres`] behind `ace-comms ledger verify --postgres URL`: one checking core walks
//! entry lines in order, read from `entries.jsonl` or from the `line` column of a
//! [`PostgresStore`]; torn tails are file-only.
//!
//! It trusts nothing but the public key: it re-derives every leaf from the stored line (not from
//! this crate's structs), recomputes the hash chain and, with an O(log n) [`Frontier`], the
//! RFC 6962 root at every checkpointed size, and checks every checkpoint signature. It stops at
//! the first problem and names it ([`Problem`]), checkpoints first (an invalid checkpoint makes
//! every later comparison meaningless), then entries in file order.
//!
//! What it cannot see, by construction: entries appended or dropped *after the last checkpoint*
//! by someone who recomputes the unkeyed chain; [`VerifyReport::uncovered`] says how many
//! entries are protected by the chain alone; nor a rollback of entries *together with* their
//! checkpoints to an earlier, self-consistent state. Trust in `signing.pub` itself must come
//! from outside ([`verify_dir_with_key`] takes a key obtained out of band).
//!
//! [`verify_anchors_dir`] and [`verify_anchors_postgres`] close both gaps up to a checkpoint
//! kept outside the ledger (an [`Anchor`]: saved by an operator, or kept by a witness,
//! [`crate::witness`]): the ledger must hold at least the anchor's entries, the RFC 6962
//! consistency proof from the anchor's tree to the ledger's whole tree must verify, and the
//! chain hash at the anchor's size must match. Every anchor is checked and reported
//! ([`AnchorReport`]), not only the first that fails.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize as _;
use serde_json::Value;

use crate::checkpoint::{Checkpoint, load_public_key};
use crate::entry::{Entry, chain_hash, leaf_bytes_of_line};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::ledger::ledger_dir;
use crate::merkle::{Frontier, leaf_hash};
use crate::store::{CHECKPOINTS_FILE, ENTRIES_FILE, PostgresStore, TORN_FILE};

/// The first thing wrong with a ledger directory. Lines are 1-based; seqs 0-based.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A file or the public key could not be read.
    Unreadable {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// An entry line is not a ledger entry.
    MalformedEntry {
        /// Its line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// Entry `seq`'s content no longer matches its chain hash.
    Edited {
        /// The entry.
        seq: u64,
        /// Its line.
        line: u64,
    },
    /// Entry `seq` is missing; `line` holds a later one.
    Dropped {
        /// The missing entry.
        seq: u64,
        /// Where it should be.
        line: u64,
    },
    /// `line` holds `seq` where `expected` belongs (moved or duplicated).
    Reordered {
        /// The seq found.
        seq: u64,
        /// The seq that belongs there.
        expected: u64,
        /// The line.
        line: u64,
    },
    /// Entry `seq`, after the last checkpoint, does not extend the chain (appended, or edited
    /// with nothing after it to tell the two apart).
    UnchainedAppend {
        /// The entry.
        seq: u64,
        /// Its line.
        line: u64,
        /// Size of the last checkpoint (0 if none).
        last_checkpoint: u64,
    },
    /// A file ends in a partial line (a crash before acknowledgement, not yet repaired by
    /// opening the ledger).
    TornTail {
        /// The file.
        file: PathBuf,
        /// Its line number.
        line: u64,
        /// Its length in bytes.
        bytes: u64,
    },
    /// A checkpoint covers more entries than the file holds.
    Truncated {
        /// The largest checkpointed size.
        checkpoint_size: u64,
        /// Entries present.
        entries: u64,
    },
    /// A checkpoint line is not a checkpoint.
    MalformedCheckpoint {
        /// Its line in `checkpoints.jsonl`.
        line: u64,
        /// Why.
        reason: String,
    },
    /// A checkpoint's signature or key id does not verify.
    CheckpointSignature {
        /// Its line in `checkpoints.jsonl`.
        line: u64,
        /// Its size.
        size: u64,
        /// What failed.
        reason: String,
    },
    /// A checkpoint is smaller than the one before it.
    CheckpointOutOfOrder {
        /// Its line in `checkpoints.jsonl`.
        line: u64,
        /// Its size.
        size: u64,
        /// The size before it.
        previous: u64,
    },
    /// The recomputed Merkle root at a checkpoint's size differs from the signed one.
    CheckpointRootMismatch {
        /// Its line in `checkpoints.jsonl`.
        line: u64,
        /// Its size.
        size: u64,
    },
    /// The chain hash of entry `size - 1` differs from the signed chain head.
    CheckpointChainMismatch {
        /// Its line in `checkpoints.jsonl`.
        line: u64,
        /// Its size.
        size: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable { file, reason } => {
                write!(f, "cannot read `{}`: {reason}", file.display())
            }
            Problem::MalformedEntry { line, reason } => {
                write!(f, "entries line {line} is malformed: {reason}")
            }
            Problem::Edited { seq, line } => write!(
                f,
                "entry seq {seq} (line {line}) was edited: chain hash mismatch"
            ),
            Problem::Dropped { seq, line } => {
                write!(f, "entry seq {seq} is missing (dropped before line {line})")
            }
            Problem::Reordered {
                seq,
                expected,
                line,
            } => {
                write!(
                    f,
                    "entry seq {seq} is out of order at line {line} (expected seq {expected})"
                )
            }
            Problem::UnchainedAppend {
                seq,
                line,
                last_checkpoint,
            } => write!(
                f,
                "entry seq {seq} (line {line}) after the last checkpoint (size {last_checkpoint}) does not extend the chain: appended or edited"
            ),
            Problem::TornTail { file, line, bytes } => {
                write!(
                    f,
                    "`{}` ends in a torn line {line} ({bytes} bytes, never acknowledged)",
                    file.display()
                )
            }
            Problem::Truncated {
                checkpoint_size,
                entries,
            } => write!(
                f,
                "truncated: a checkpoint covers {checkpoint_size} entries but only {entries} are present"
            ),
            Problem::MalformedCheckpoint { line, reason } => {
                write!(f, "checkpoint line {line} is malformed: {reason}")
            }
            Problem::CheckpointSignature { line, size, reason } => {
                write!(
                    f,
                    "checkpoint line {line} (size {size}) signature invalid: {reason}"
                )
            }
            Problem::CheckpointOutOfOrder {
                line,
                size,
                previous,
            } => {
                write!(
                    f,
                    "checkpoint line {line} (size {size}) is smaller than the previous one ({previous})"
                )
            }
            Problem::CheckpointRootMismatch { line, size } => {
                write!(
                    f,
                    "checkpoint line {line}: Merkle root at size {size} differs from the signed one"
                )
            }
            Problem::CheckpointChainMismatch { line, size } => {
                write!(
                    f,
                    "checkpoint line {line}: chain head at size {size} differs from the signed one"
                )
            }
        }
    }
}

/// What [`verify_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The ledger directory checked (for [`verify_postgres`]: the URL without its password and
    /// the schema).
    pub dir: PathBuf,
    /// Entries that verified (before the problem, if any).
    pub entries: u64,
    /// Checkpoints whose signature, root and chain head all verified.
    pub checkpoints_verified: u64,
    /// Entries after the last checkpoint: protected by the chain only.
    pub uncovered: u64,
    /// Bytes of torn (unacknowledged) tails moved aside by earlier opens (`entries.jsonl.torn`).
    pub torn_bytes_kept: u64,
    /// The first problem, or `None` if everything verified.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(f, "OK: ")?,
            Some(problem) => write!(f, "FAILED: {problem}; ")?,
        }
        write!(
            f,
            "{} entries verified, {} checkpoints verified, {} entries after the last checkpoint",
            self.entries, self.checkpoints_verified, self.uncovered
        )?;
        if self.torn_bytes_kept > 0 {
            write!(
                f,
                ", {} torn unacknowledged bytes kept in {TORN_FILE}",
                self.torn_bytes_kept
            )?;
        }
        Ok(())
    }
}

/// Verifies the ledger under `<data_dir>/ledger/` against its own `signing.pub`.
pub fn verify_dir(data_dir: &Path) -> VerifyReport {
    let dir = ledger_dir(data_dir);
    match load_public_key(&dir) {
        Ok(key) => verify_dir_with_key(data_dir, &key),
        Err(e) => {
            let mut report = empty_report(dir);
            report.problem = Some(Problem::Unreadable {
                file: report.dir.join(crate::checkpoint::PUBLIC_KEY_FILE),
                reason: e.to_string(),
            });
            report
        }
    }
}

/// Verifies the ledger under `<data_dir>/ledger/` against a key trusted out of band.
pub fn verify_dir_with_key(data_dir: &Path, key: &VerifyingKey) -> VerifyReport {
    let mut report = empty_report(ledger_dir(data_dir));
    report.torn_bytes_kept = std::fs::metadata(report.dir.join(TORN_FILE)).map_or(0, |m| m.len());
    report.problem = verify_files(&report.dir.clone(), key, &mut report).err();
    report
}

fn verify_files(dir: &Path, key: &VerifyingKey, report: &mut VerifyReport) -> Result<(), Problem> {
    let checkpoints_path = dir.join(CHECKPOINTS_FILE);
    let checkpoints = match File::open(&checkpoints_path) {
        Ok(file) => load_checkpoints(Lines::new(BufReader::new(file), checkpoints_path), key)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CheckpointsBySize::new(),
        Err(e) => return Err(unreadable(&checkpoints_path, &e)),
    };
    let entries_path = dir.join(ENTRIES_FILE);
    let file = File::open(&entries_path).map_err(|e| unreadable(&entries_path, &e))?;
    Verifier::new(checkpoints).run(Lines::new(BufReader::new(file), entries_path), report)
}

/// Verifies the ledger a [`PostgresStore`] keeps in `schema` at `url` (`ace-comms ledger verify
/// --postgres`) against `key`, with the same checks as [`verify_dir_with_key`]: each row's
/// `line` is the file store's line, so a problem's "line" is the row's 1-based position in
/// `seq` order (entries) or `id` order (checkpoints) — its line in a dump of that column.
/// [`VerifyReport::dir`] holds the URL without its password and the schema.
///
/// # Errors
/// [`LedgerError::Postgres`] when the database cannot be reached or holds no ledger in
/// `schema`; a row that cannot be read later is [`Problem::Unreadable`].
pub fn verify_postgres(
    url: &str,
    schema: &str,
    key: &VerifyingKey,
) -> Result<VerifyReport, LedgerError> {
    let mut store = PostgresStore::connect_existing(url, schema)?;
    let source = PathBuf::from(format!(
        "{} (schema {schema})",
        PostgresStore::url_without_password(url)
    ));
    let mut report = empty_report(source.clone());
    let checkpoints = store
        .checkpoint_rows()
        .map_err(|e| Problem::Unreadable {
            file: source.clone(),
            reason: e.to_string(),
        })
        .and_then(|rows| {
            let lines = rows.into_iter().zip(1..).map(|(text, number)| {
                Ok(Line {
                    number,
                    bytes: text.into_bytes(),
                })
            });
            load_checkpoints(lines, key)
        });
    report.problem = checkpoints
        .and_then(|checkpoints| {
            let rows = Rows {
                store: &mut store,
                source,
                after: None,
                page: Vec::new().into_iter(),
                number: 0,
                done: false,
            };
            Verifier::new(checkpoints).run(rows, &mut report)
        })
        .err();
    Ok(report)
}

fn empty_report(dir: PathBuf) -> VerifyReport {
    VerifyReport {
        dir,
        entries: 0,
        checkpoints_verified: 0,
        uncovered: 0,
        torn_bytes_kept: 0,
        problem: None,
    }
}

/// Entry rows fetched per round trip by [`verify_postgres`].
const ROWS_PAGE: i64 = 10_000;

/// Checkpoints by size, each with its line in `checkpoints.jsonl`.
type CheckpointsBySize = BTreeMap<u64, Vec<(u64, Checkpoint)>>;

/// The checking core, shared by both stores: it walks entry lines in order (from a file or
/// from rows) against the signature-checked checkpoints.
struct Verifier {
    checkpoints: CheckpointsBySize,
    frontier: Frontier,
    chain: Hash,
}

impl Verifier {
    fn new(checkpoints: CheckpointsBySize) -> Self {
        Verifier {
            checkpoints,
            frontier: Frontier::new(),
            chain: Hash::ZERO,
        }
    }

    fn run<I: Iterator<Item = Result<Line, Problem>>>(
        mut self,
        lines: I,
        report: &mut VerifyReport,
    ) -> Result<(), Problem> {
        let last_checkpoint = self.checkpoints.keys().next_back().copied().unwrap_or(0);
        self.check_checkpoints_at(0, report)?;
        let mut lines = lines.peekable();
        while let Some(line) = lines.next() {
            let line = line?;
            let expected = self.frontier.size();
            let (entry, value) = parse_entry(&line)?;
            if entry.seq != expected {
                return Err(misplaced(entry.seq, expected, line.number, &mut lines));
            }
            let leaf = leaf_bytes_of_line(&value);
            if chain_hash(&self.chain, &leaf) != entry.chain_hash {
                let edited =
                    expected < last_checkpoint || next_chains_on(&entry.chain_hash, &mut lines);
                return Err(if edited {
                    Problem::Edited {
                        seq: expected,
                        line: line.number,
                    }
                } else {
                    Problem::UnchainedAppend {
                        seq: expected,
                        line: line.number,
                        last_checkpoint,
                    }
                });
            }
            self.chain = entry.chain_hash;
            self.frontier.push(leaf_hash(&leaf));
            report.entries = self.frontier.size();
            self.check_checkpoints_at(report.entries, report)?;
        }
        if last_checkpoint > report.entries {
            return Err(Problem::Truncated {
                checkpoint_size: last_checkpoint,
                entries: report.entries,
            });
        }
        report.uncovered = report.entries - last_checkpoint;
        Ok(())
    }

    fn check_checkpoints_at(&self, size: u64, report: &mut VerifyReport) -> Result<(), Problem> {
        for (line, cp) in self.checkpoints.get(&size).into_iter().flatten() {
            if cp.root_hash != self.frontier.root() {
                return Err(Problem::CheckpointRootMismatch { line: *line, size });
            }
            if cp.chain_head != self.chain {
                return Err(Problem::CheckpointChainMismatch { line: *line, size });
            }
            report.checkpoints_verified += 1;
        }
        Ok(())
    }
}

/// Parses, signature-checks and orders every checkpoint.
fn load_checkpoints(
    lines: impl Iterator<Item = Result<Line, Problem>>,
    key: &VerifyingKey,
) -> Result<CheckpointsBySize, Problem> {
    let mut by_size = CheckpointsBySize::new();
    let mut previous = 0;
    for line in lines {
        let line = line?;
        let cp: Checkpoint =
            serde_json::from_slice(&line.bytes).map_err(|e| Problem::MalformedCheckpoint {
                line: line.number,
                reason: e.to_string(),
            })?;
        cp.verify_signature(key)
            .map_err(|reason| Problem::CheckpointSignature {
                line: line.number,
                size: cp.size,
                reason,
            })?;
        if cp.size < previous {
            return Err(Problem::CheckpointOutOfOrder {
                line: line.number,
                size: cp.size,
                previous,
            });
        }
        previous = cp.size;
        by_size.entry(cp.size).or_default().push((line.number, cp));
    }
    Ok(by_size)
}

fn parse_entry(line: &Line) -> Result<(Entry, Value), Problem> {
    let malformed = |e: serde_json::Error| Problem::MalformedEntry {
        line: line.number,
        reason: e.to_string(),
    };
    let value: Value = serde_json::from_slice(&line.bytes).map_err(malformed)?;
    let entry = Entry::deserialize(&value).map_err(malformed)?;
    Ok((entry, value))
}

/// `seq` found where `expected` belongs: reordered if `expected` turns up later, else dropped.
fn misplaced<I: Iterator<Item = Result<Line, Problem>>>(
    seq: u64,
    expected: u64,
    line: u64,
    rest: &mut Peekable<I>,
) -> Problem {
    let later = rest.any(|l| {
        l.ok()
            .and_then(|l| parse_entry(&l).ok())
            .is_some_and(|(e, _)| e.seq == expected)
    });
    if seq < expected || later {
        Problem::Reordered {
            seq,
            expected,
            line,
        }
    } else {
        Problem::Dropped {
            seq: expected,
            line,
        }
    }
}

/// Whether the next entry chains on `stored` (so the current entry's content, not its link, changed).
fn next_chains_on<I: Iterator<Item = Result<Line, Problem>>>(
    stored: &Hash,
    rest: &mut Peekable<I>,
) -> bool {
    let Some(Ok(next)) = rest.peek() else {
        return false;
    };
    parse_entry(next).is_ok_and(|(entry, value)| {
        chain_hash(stored, &leaf_bytes_of_line(&value)) == entry.chain_hash
    })
}

fn unreadable(path: &Path, e: &std::io::Error) -> Problem {
    Problem::Unreadable {
        file: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// One complete line, without its `\n`.
struct Line {
    number: u64,
    bytes: Vec<u8>,
}

/// Complete lines of a file; a last line without `\n` is a [`Problem::TornTail`].
struct Lines {
    reader: BufReader<File>,
    path: PathBuf,
    number: u64,
}

impl Lines {
    fn new(reader: BufReader<File>, path: PathBuf) -> Self {
        Lines {
            reader,
            path,
            number: 0,
        }
    }
}

impl Iterator for Lines {
    type Item = Result<Line, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut bytes = Vec::new();
        match self.reader.read_until(b'\n', &mut bytes) {
            Ok(0) => None,
            Err(e) => Some(Err(unreadable(&self.path, &e))),
            Ok(_) => {
                self.number += 1;
                if bytes.pop() != Some(b'\n') {
                    let bytes = bytes.len() as u64 + 1;
                    return Some(Err(Problem::TornTail {
                        file: self.path.clone(),
                        line: self.number,
                        bytes,
                    }));
                }
                Some(Ok(Line {
                    number: self.number,
                    bytes,
                }))
            }
        }
    }
}

/// Entry rows of a [`PostgresStore`] as [`Line`]s, fetched a page at a time in seq order;
/// numbered by position, as the lines of a dump of the `line` column would be.
struct Rows<'a> {
    store: &'a mut PostgresStore,
    source: PathBuf,
    after: Option<i64>,
    page: std::vec::IntoIter<(i64, String)>,
    number: u64,
    done: bool,
}

impl Iterator for Rows<'_> {
    type Item = Result<Line, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((seq, text)) = self.page.next() {
            self.after = Some(seq);
            self.number += 1;
            return Some(Ok(Line {
                number: self.number,
                bytes: text.into_bytes(),
            }));
        }
        if self.done {
            return None;
        }
        match self.store.entry_rows(self.after, ROWS_PAGE) {
            Ok(page) => {
                self.done = (page.len() as i64) < ROWS_PAGE;
                self.page = page.into_iter();
                if self.page.len() == 0 {
                    return None;
                }
                self.next()
            }
            Err(e) => {
                self.done = true;
                Some(Err(Problem::Unreadable {
                    file: self.source.clone(),
                    reason: e.to_string(),
                }))
            }
        }
    }
}

/// A checkpoint kept outside the ledger (saved by an operator, or by a witness) and where it
/// came from, for [`verify_anchors_dir`] / [`verify_anchors_postgres`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Where it came from, for messages (`FILE line N`, a witness name).
    pub source: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
}

/// Why the ledger does not extend an [`Anchor`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnchorProblem {
    /// The anchor's signature or key id does not verify against the ledger's key.
    Signature(String),
    /// The ledger holds fewer entries than the anchor covers: cut or rolled back (with its own
    /// checkpoints or not).
    RolledBack {
        /// Entries the anchor covers.
        size: u64,
        /// Entries the ledger holds.
        entries: u64,
    },
    /// The consistency proof from the anchor's tree to the ledger's current tree fails: some
    /// entry the anchor covers was rewritten, dropped or reordered.
    Diverged {
        /// Entries the anchor covers.
        size: u64,
        /// Entries the ledger holds.
        entries: u64,
        /// What the proof check said.
        reason: String,
    },
    /// The roots agree but the chain hash at the anchor's size does not.
    ChainMismatch {
        /// Entries the anchor covers.
        size: u64,
    },
}

impl fmt::Display for AnchorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorProblem::Signature(reason) => write!(f, "signature invalid: {reason}"),
            AnchorProblem::RolledBack { size, entries } => write!(
                f,
                "rolled back: the checkpoint covers {size} entries but the ledger holds only {entries}"
            ),
            AnchorProblem::Diverged {
                size,
                entries,
                reason,
            } => write!(
                f,
                "different history: the ledger of {entries} entries is not consistent with the checkpoint's tree of {size} ({reason}); an entry it covers was rewritten, dropped or reordered"
            ),
            AnchorProblem::ChainMismatch { size } => write!(
                f,
                "different history: the chain hash at size {size} differs from the signed one"
            ),
        }
    }
}

/// One [`Anchor`] checked against the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorCheck {
    /// The anchor.
    pub anchor: Anchor,
    /// What is wrong, or `None` when the ledger extends it.
    pub problem: Option<AnchorProblem>,
}

/// What [`verify_anchors_dir`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorReport {
    /// Entries read from the ledger (up to the first unreadable or misplaced one, which the
    /// [`VerifyReport`] of the same ledger names).
    pub entries: u64,
    /// One check per anchor, in the order given.
    pub checks: Vec<AnchorCheck>,
}

impl AnchorReport {
    /// True when the ledger extends every anchor.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.problem.is_none())
    }
}

/// Checks that the ledger under `<data_dir>/ledger/` extends each of `anchors` — checkpoints
/// saved earlier outside it: each must verify against `key`, cover no more entries than the
/// ledger holds (else it was cut or rolled back, with its checkpoints or not), and the RFC 6962
/// consistency proof from its tree to the ledger's current tree must verify (else an entry it
/// covers was rewritten), as must the chain hash at its size. This catches what the ledger's own
/// checkpoints cannot: a rollback of entries together with their checkpoints, and a rewritten
/// tail after the last local checkpoint that a later anchor covers.
pub fn verify_anchors_dir(data_dir: &Path, key: &VerifyingKey, anchors: &[Anchor]) -> AnchorReport {
    let path = ledger_dir(data_dir).join(ENTRIES_FILE);
    match File::open(&path) {
        Ok(file) => check_anchors(Lines::new(BufReader::new(file), path), key, anchors),
        Err(_) => check_anchors(std::iter::empty(), key, anchors),
    }
}

/// [`verify_anchors_dir`] for the ledger a [`PostgresStore`] keeps in `schema` at `url`.
///
/// # Errors
/// [`LedgerError::Postgres`] when the database cannot be reached or holds no ledger in `schema`.
pub fn verify_anchors_postgres(
    url: &str,
    schema: &str,
    key: &VerifyingKey,
    anchors: &[Anchor],
) -> Result<AnchorReport, LedgerError> {
    let mut store = PostgresStore::connect_existing(url, schema)?;
    let rows = Rows {
        store: &mut store,
        source: PathBuf::from(schema),
        after: None,
        page: Vec::new().into_iter(),
        number: 0,
        done: false,
    };
    Ok(check_anchors(rows, key, anchors))
}

/// Rebuilds the tree (and the chain at every anchored size) from the entry lines, stopping at
/// the first line that is unreadable, malformed or out of place, then checks every anchor.
fn check_anchors(
    lines: impl Iterator<Item = Result<Line, Problem>>,
    key: &VerifyingKey,
    anchors: &[Anchor],
) -> AnchorReport {
    let wanted: std::collections::BTreeSet<u64> =
        anchors.iter().map(|a| a.checkpoint.size).collect();
    let mut chains = BTreeMap::from([(0, Hash::ZERO)]);
    let mut tree = crate::merkle::Tree::new();
    let mut chain = Hash::ZERO;
    for line in lines {
        let Ok((entry, value)) = line.and_then(|l| parse_entry(&l)) else {
            break;
        };
        if entry.seq != tree.size() {
            break;
        }
        let leaf = leaf_bytes_of_line(&value);
        chain = chain_hash(&chain, &leaf);
        tree.push(leaf_hash(&leaf));
        if wanted.contains(&tree.size()) {
            chains.insert(tree.size(), chain);
        }
    }
    let entries = tree.size();
    let checks = anchors
        .iter()
        .map(|anchor| AnchorCheck {
            anchor: anchor.clone(),
            problem: check_anchor(&anchor.checkpoint, key, &tree, &chains).err(),
        })
        .collect();
    AnchorReport { entries, checks }
}

fn check_anchor(
    cp: &Checkpoint,
    key: &VerifyingKey,
    tree: &crate::merkle::Tree,
    chains: &BTreeMap<u64, Hash>,
) -> Result<(), AnchorProblem> {
    cp.verify_signature(key).map_err(AnchorProblem::Signature)?;
    let (size, entries) = (cp.size, tree.size());
    if size > entries {
        return Err(AnchorProblem::RolledBack { size, entries });
    }
    let current = tree.root(entries).unwrap_or_else(crate::merkle::empty_root);
    let diverged = |reason: String| AnchorProblem::Diverged {
        size,
        entries,
        reason,
    };
    let proof = tree
        .consistency_proof(size, entries)
        .ok_or_else(|| diverged("no consistency proof between these sizes".to_owned()))?;
    crate::merkle::verify_consistency(size, entries, &cp.root_hash, &current, &proof)
        .map_err(|e| diverged(e.to_string()))?;
    if chains.get(&size) != Some(&cp.chain_head) {
        return Err(AnchorProblem::ChainMismatch { size });
    }
    Ok(())
}
