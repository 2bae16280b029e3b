//! The one embedded database (redb, `state.redb` under the data directory) holding stream
//! configs, consumer configs and consumer state. Messages never live here — they are in the
//! streams' `ace-log` segments; this file is small and written in batched transactions.
//!
//! Tables (values are JSON, so a config added a field later still reads old rows):
//! `streams`: name -> `StreamConfig`; `consumers`: `stream/consumer` -> `StoredConsumer`;
//! `consumer_state`: `stream/consumer` -> `Persisted`.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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
    /// Opens or creates `state.redb` under `dir`, with every table present.
    ///
    /// The file is opened with `O_NOFOLLOW`: a `state.redb` that is a symbolic link is refused
    /// (`BusError::Io`, "refusing to follow symlink <path>"), never written through.
    pub(crate) fn open(dir: &Path) -> Result<Self, BusError> {
        let path = dir.join("state.redb");
        let file = super::open_nofollow(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &path,
        )?;
        let backend =
            redb::backends::FileBackend::new(file).map_err(|e| BusError::state("open", e))?;
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
