//! [`State`]: everything the workflow layer must remember across a restart — filter state
//! (deltas, token buckets, debounce and dedup windows, multi-event windows), the journal of runs
//! (which actions of which run completed, with their results) and the run-time enable/disable
//! switches — as JSON records in one redb table, `workflows.redb`, keyed by a prefix per kind.
//!
//! Every write is its own committed transaction (redb's default durability), so a record is on
//! disk before the caller goes on: a trigger acknowledged after its run's record is written is
//! never lost, and a completed action is never repeated. `State::memory` keeps the same records
//! in a map, for tests and offline validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StateError;

const RECORDS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("workflow_state");

/// The persistent state.
#[derive(Debug)]
pub struct State {
    inner: Inner,
}

enum Inner {
    Redb(Database, PathBuf),
    Memory(Mutex<BTreeMap<String, Vec<u8>>>),
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inner::Redb(_, path) => write!(f, "Redb({})", path.display()),
            Inner::Memory(_) => f.write_str("Memory"),
        }
    }
}

impl State {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let err = |e: &dyn std::fmt::Display| StateError::Store {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(RECORDS).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(State {
            inner: Inner::Redb(db, path.to_owned()),
        })
    }

    /// State kept in memory only.
    pub fn memory() -> State {
        State {
            inner: Inner::Memory(Mutex::default()),
        }
    }

    fn store_err(&self, e: &dyn std::fmt::Display) -> StateError {
        let path = match &self.inner {
            Inner::Redb(_, path) => path.clone(),
            Inner::Memory(_) => PathBuf::from(":memory:"),
        };
        StateError::Store {
            path,
            message: e.to_string(),
        }
    }

    /// The record at `key`, decoded.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StateError> {
        let bytes = match &self.inner {
            Inner::Memory(map) => map.lock().get(key).cloned(),
            Inner::Redb(db, _) => {
                let txn = db.begin_read().map_err(|e| self.store_err(&e))?;
                let table = txn.open_table(RECORDS).map_err(|e| self.store_err(&e))?;
                let got = table.get(key).map_err(|e| self.store_err(&e))?;
                got.map(|v| v.value().to_vec())
            }
        };
        bytes
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|source| StateError::Decode {
                key: key.to_owned(),
                source,
            })
    }

    /// Writes `value` at `key`, durably.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StateError::Decode {
            key: key.to_owned(),
            source,
        })?;
        match &self.inner {
            Inner::Memory(map) => {
                map.lock().insert(key.to_owned(), bytes);
                Ok(())
            }
            Inner::Redb(db, _) => {
                let txn = db.begin_write().map_err(|e| self.store_err(&e))?;
                {
                    let mut table = txn.open_table(RECORDS).map_err(|e| self.store_err(&e))?;
                    table
                        .insert(key, bytes.as_slice())
                        .map_err(|e| self.store_err(&e))?;
                }
                txn.commit().map_err(|e| self.store_err(&e))
            }
        }
    }

    /// Removes `key` (absent is fine).
    pub fn remove(&self, key: &str) -> Result<(), StateError> {
        match &self.inner {
            Inner::Memory(map) => {
                map.lock().remove(key);
                Ok(())
            }
            Inner::Redb(db, _) => {
                let txn = db.begin_write().map_err(|e| self.store_err(&e))?;
                {
                    let mut table = txn.open_table(RECORDS).map_err(|e| self.store_err(&e))?;
                    table.remove(key).map_err(|e| self.store_err(&e))?;
                }
                txn.commit().map_err(|e| self.store_err(&e))
            }
        }
    }

    /// Every record whose key starts with `prefix`, decoded, in key order.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StateError> {
        let raw: Vec<(String, Vec<u8>)> = match &self.inner {
            Inner::Memory(map) => map
                .lock()
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            Inner::Redb(db, _) => {
                let txn = db.begin_read().map_err(|e| self.store_err(&e))?;
                let table = txn.open_table(RECORDS).map_err(|e| self.store_err(&e))?;
                let mut out = Vec::new();
                for item in table.range(prefix..).map_err(|e| self.store_err(&e))? {
                    let (k, v) = item.map_err(|e| self.store_err(&e))?;
                    if !k.value().starts_with(prefix) {
                        break;
                    }
                    out.push((k.value().to_owned(), v.value().to_vec()));
                }
                out
            }
        };
        raw.into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|source| StateError::Decode { key: k, source })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_records_when_reopened_then_they_are_still_there_and_scanned_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflows.redb");
        {
            let state = State::open(&path).unwrap();
            state.put("f/a/1", &1u32).unwrap();
            state.put("f/a/2", &2u32).unwrap();
            state.put("g/x", &3u32).unwrap();
            state.remove("f/a/2").unwrap();
        }
        let state = State::open(&path).unwrap();
        assert_eq!(state.get::<u32>("f/a/1").unwrap(), Some(1));
        let scanned: Vec<(String, u32)> = state.scan("f/").unwrap();
        assert_eq!(scanned, vec![("f/a/1".to_owned(), 1)]);
    }
}
