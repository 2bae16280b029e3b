//! The one embedded database (redb, `state.redb` under the data directory) holding stream
//! configs, consumer configs and consumer state. Messages never live here — they are in the
//! streams' `ace-log` segments; this file is small and written in batched transactions.
//!
//! Tables (values are JSON, so a config added a field later still reads old rows):
//! `streams`: name -> `StreamConfig`; `consumers`: `stream/consumer` -> `StoredConsumer`;
//! `consumer_state`: `stream/consumer` -> `Persisted`.
//!
//! redb's I/O goes through the engine's storage seam (`EmbeddedConfig::durability`, the same
//! `ace_log::Durability` the streams' logs use) by [`SeamBackend`], so a fault or a simulated
//! power cut reaches the state database too; reads and redb's file locks stay with redb's own
//! `FileBackend`, on the same open file description.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ace_log::{Durability, OpenMode};
use redb::backends::FileBackend;
use redb::{
    BackendError, Database, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::consumer::Persisted;
use crate::bus::{ConsumerConfig, StreamConfig};
use crate::error::BusError;

const STREAMS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("streams");
const CONSUMERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("consumers");
const CONSUMER_STATE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("consumer_state");

/// A consumer's config with the sequence it started at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredConsumer {
    pub(crate) config: ConsumerConfig,
    pub(crate) start_seq: u64,
}

/// The state database.
#[derive(Debug)]
pub(crate) struct StateDb {
    db: Database,
}

/// The key of a consumer row.
pub(crate) fn consumer_key(stream: &str, consumer: &str) -> String {
    format!("{stream}/{consumer}")
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Configs and states are plain data: serialising them to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, BusError> {
    serde_json::from_slice(bytes).map_err(|e| BusError::Corrupt {
        what: format!("state row `{key}`"),
        reason: e.to_string(),
    })
}

impl StateDb {
    /// Opens or creates `state.redb` under `dir`, with every table present. Every write, length
    /// change and sync of the file goes through `durability` (see [`SeamBackend`]).
    ///
    /// A new database is built as `state.redb.tmp` — created, its tables committed (redb syncs a
    /// commit) — and only then renamed into place and its directory synced: a crash while it
    /// is built leaves no half-written `state.redb` that redb would refuse to open, only a stale
    /// temporary file, removed at the next open.
    ///
    /// The file is opened with `O_NOFOLLOW`: a `state.redb` that is a symbolic link is refused
    /// (`BusError::Io`, "refusing to follow symlink <path>"), never written through.
    pub(crate) fn open(dir: &Path, durability: Arc<dyn Durability>) -> Result<Self, BusError> {
        let path = dir.join("state.redb");
        let tmp = dir.join("state.redb.tmp");
        if std::fs::symlink_metadata(&tmp).is_ok() {
            durability
                .remove_file(&tmp)
                .map_err(|source| super::refusal(&tmp, source))?;
        }
        if std::fs::symlink_metadata(&path).is_err() {
            drop(Self::build(&tmp, OpenMode::Truncate, durability.clone())?);
            durability
                .rename(&tmp, &path)
                .and_then(|()| durability.sync_dir(dir))
                .map_err(|source| super::refusal(&path, source))?;
        }
        Self::build(&path, OpenMode::Existing, durability)
    }

    /// Opens the database at `path` and makes sure every table exists.
    fn build(
        path: &Path,
        mode: OpenMode,
        durability: Arc<dyn Durability>,
    ) -> Result<Self, BusError> {
        let file = durability
            .open(path, mode)
            .map_err(|source| super::refusal(path, source))?;
        let backend = SeamBackend::new(file, path.to_path_buf(), durability)?;
        let db = redb::Builder::new()
            .create_with_backend(backend)
            .map_err(|e| BusError::state("open", e))?;
        let txn = db.begin_write().map_err(|e| BusError::state("open", e))?;
        for table in [STREAMS, CONSUMERS, CONSUMER_STATE] {
            txn.open_table(table)
                .map_err(|e| BusError::state("open", e))?;
        }
        txn.commit().map_err(|e| BusError::state("open", e))?;
        Ok(StateDb { db })
    }

    /// Every stored stream config.
    pub(crate) fn streams(&self) -> Result<Vec<StreamConfig>, BusError> {
        self.rows(STREAMS, "")
    }

    /// Every stored consumer of `stream`.
    pub(crate) fn consumers(&self, stream: &str) -> Result<Vec<StoredConsumer>, BusError> {
        self.rows(CONSUMERS, &consumer_key(stream, ""))
    }

    /// The persisted state of a consumer, if any.
    pub(crate) fn consumer_state(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<Option<Persisted>, BusError> {
        let key = consumer_key(stream, consumer);
        let txn = self
            .db
            .begin_read()
            .map_err(|e| BusError::state("read", e))?;
        let table = txn
            .open_table(CONSUMER_STATE)
            .map_err(|e| BusError::state("read", e))?;
        let row = table
            .get(key.as_str())
            .map_err(|e| BusError::state("read", e))?;
        row.map(|v| decode(&key, v.value())).transpose()
    }

    fn rows<T: DeserializeOwned>(
        &self,
        def: TableDefinition<'_, &str, &[u8]>,
        prefix: &str,
    ) -> Result<Vec<T>, BusError> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| BusError::state("read", e))?;
        let table = txn
            .open_table(def)
            .map_err(|e| BusError::state("read", e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| BusError::state("read", e))? {
            let (k, v) = row.map_err(|e| BusError::state("read", e))?;
            if k.value().starts_with(prefix) {
                out.push(decode(k.value(), v.value())?);
            }
        }
        Ok(out)
    }

    /// Stores a stream config.
    pub(crate) fn put_stream(&self, config: &StreamConfig) -> Result<(), BusError> {
        self.write("put stream", |txn| {
            let mut t = txn.open_table(STREAMS)?;
            t.insert(config.name.as_str(), encode(config).as_slice())?;
            Ok(())
        })
    }

    /// Removes a stream config and all its consumers.
    pub(crate) fn delete_stream(&self, stream: &str) -> Result<(), BusError> {
        let prefix = consumer_key(stream, "");
        self.write("delete stream", |txn| {
            txn.open_table(STREAMS)?.remove(stream)?;
            for def in [CONSUMERS, CONSUMER_STATE] {
                txn.open_table(def)?
                    .retain(|k, _| !k.starts_with(&prefix))?;
            }
            Ok(())
        })
    }

    /// Stores a consumer config.
    pub(crate) fn put_consumer(
        &self,
        stream: &str,
        stored: &StoredConsumer,
    ) -> Result<(), BusError> {
        let key = consumer_key(stream, &stored.config.name);
        self.write("put consumer", |txn| {
            txn.open_table(CONSUMERS)?
                .insert(key.as_str(), encode(stored).as_slice())?;
            Ok(())
        })
    }

    /// Removes a consumer config and its state.
    pub(crate) fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError> {
        let key = consumer_key(stream, consumer);
        self.write("delete consumer", |txn| {
            txn.open_table(CONSUMERS)?.remove(key.as_str())?;
            txn.open_table(CONSUMER_STATE)?.remove(key.as_str())?;
            Ok(())
        })
    }

    /// Stores many consumer states in one durable transaction.
    pub(crate) fn put_states(&self, states: &[(String, Persisted)]) -> Result<(), BusError> {
        if states.is_empty() {
            return Ok(());
        }
        self.write("flush consumer state", |txn| {
            let mut t = txn.open_table(CONSUMER_STATE)?;
            for (key, state) in states {
                t.insert(key.as_str(), encode(state).as_slice())?;
            }
            Ok(())
        })
    }

    fn write(
        &self,
        op: &'static str,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), BusError> {
        let txn = self.db.begin_write().map_err(|e| BusError::state(op, e))?;
        f(&txn).map_err(|e| BusError::state(op, e))?;
        txn.commit().map_err(|e| BusError::state(op, e))
    }
}

/// redb's storage over the seam: writes, `set_len` and syncs go through `durability` (in
/// production `OsDurability`: the same `pwrite`, `ftruncate` and `fdatasync` as redb's
/// `FileBackend`); reads, the length and the byte-range locks are `FileBackend`'s, on a clone of
/// the same file (one open file description, so its locks are the file's, as before).
#[derive(Debug)]
pub(crate) struct SeamBackend {
    inner: FileBackend,
    file: File,
    path: PathBuf,
    durability: Arc<dyn Durability>,
}

impl SeamBackend {
    fn new(file: File, path: PathBuf, durability: Arc<dyn Durability>) -> Result<Self, BusError> {
        let clone = file.try_clone().map_err(|source| BusError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let inner = FileBackend::new(clone).map_err(|e| BusError::state("open", e))?;
        Ok(SeamBackend {
            inner,
            file,
            path,
            durability,
        })
    }
}

impl StorageBackend for SeamBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.durability.set_len(&self.file, &self.path, len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.durability.sync_file(&self.file, &self.path)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.durability
            .write_at(&self.file, &self.path, data, offset)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_state_database_open_when_opened_again_then_the_file_lock_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path(), Arc::new(ace_log::OsDurability)).unwrap();
        let again = StateDb::open(dir.path(), Arc::new(ace_log::OsDurability)).unwrap_err();
        assert!(
            matches!(&again, BusError::State { source, .. }
                if matches!(**source, redb::Error::DatabaseAlreadyOpen)),
            "redb's lock holds through the seam's backend: {again}"
        );
        drop(db);
        StateDb::open(dir.path(), Arc::new(ace_log::OsDurability)).unwrap();
    }
}
