//! Versioned session state: a JSON document per session id, replaced whole, guarded by its
//! version the way HTTP guards a resource by its `ETag`.
//!
//! - [`SessionStore`]: the storage seam (async, so a PostgreSQL+Redis store can come later;
//!   the scale-out configuration). [`RedbSessionStore`] keeps sessions in one redb file
//!   under the data directory and survives restarts; [`MemorySessionStore`] is the in-process
//!   default of [`Core::new`].
//! - [`Precondition`]: what the writer believes (`If-Match`, `If-None-Match: *`, nothing).
//!   [`decide`] is the one rule every store applies inside its atomic write: creating needs no
//!   precondition (or `If-None-Match: *`); replacing an existing session REQUIRES `If-Match`
//!   (strict: a blind overwrite is refused with [`CoreError::SessionPreconditionRequired`],
//!   HTTP 428), and a version that does not match is [`CoreError::SessionPreconditionFailed`]
//!   (HTTP 412) naming the current version.
//! - Ownership: a session belongs to the principal that created it ([`Session::owner`]). Reading
//!   is authorized as `Action::ReadSession`, writing as `Action::WriteSession` (with the shipped
//!   roles: `agent`, `human` and `admin`), and a session another principal owns needs
//!   `Action::ManageSession` as well (`admin` only); the store checks ownership inside its
//!   atomic write ([`Writer`]), so two principals racing to create one id cannot both own it.
//! - [`Core::session`] and [`Core::put_session`] authenticate, authorize, check the id and the
//!   size limit, and call the store; every write is a `session_written` ledger entry and every
//!   refusal a `denied` one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use ace_envelope::api::http::Session;
use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use ace_ledger::{EntryKind, NewEntry};

use crate::context::{Principal, RequestContext};
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

/// Longest session id accepted.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// Largest session `data` by default, bytes of compact JSON.
pub const DEFAULT_MAX_SESSION_BYTES: usize = 256 * 1024;

const SESSIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sessions");

/// What the writer asserts about the current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No assertion: allowed only to create.
    None,
    /// `If-None-Match: *`: only if the session does not exist.
    Absent,
    /// `If-Match: *`: only if the session exists.
    Exists,
    /// `If-Match: "3", "4"`: only if the current version is one of these (an empty list, from
    /// tags that are not versions, never matches).
    Version(Vec<u64>),
}

/// Who writes, as the store's atomic ownership check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// The writer's principal id: the owner of a session it creates.
    pub id: String,
    /// Whether it may write a session another principal owns (`Action::ManageSession`).
    pub may_manage: bool,
}

/// Why a store refused a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The session belongs to another principal (`None`: to nobody recorded) and the writer
    /// may not manage it.
    NotOwner {
        /// The owner.
        owner: Option<String>,
    },
    /// The precondition does not hold; `current` is `None` when the session does not exist.
    Failed {
        /// The current version.
        current: Option<u64>,
    },
    /// The session exists and the writer asserted nothing.
    Required {
        /// The current version.
        current: u64,
    },
}

/// The one write rule: the version to write given the current one, or why not.
pub fn decide(current: Option<u64>, precondition: &Precondition) -> Result<u64, Refusal> {
    match (current, precondition) {
        (None, Precondition::None | Precondition::Absent) => Ok(1),
        (None, _) => Err(Refusal::Failed { current: None }),
        (Some(v), Precondition::None) => Err(Refusal::Required { current: v }),
        (Some(v), Precondition::Absent) => Err(Refusal::Failed { current: Some(v) }),
        (Some(v), Precondition::Exists) => Ok(v + 1),
        (Some(v), Precondition::Version(list)) if list.contains(&v) => Ok(v + 1),
        (Some(v), Precondition::Version(_)) => Err(Refusal::Failed { current: Some(v) }),
    }
}

/// The session a write would store given the current one, or the refusal: ownership first
/// (a session belongs to the principal that created it), then [`decide`].
pub(crate) fn apply(
    current: Option<&Session>,
    id: &str,
    data: serde_json::Value,
    precondition: &Precondition,
    writer: &Writer,
    now: DateTime<Utc>,
) -> PutOutcome {
    if let Some(current) = current
        && current.owner.as_deref() != Some(writer.id.as_str())
        && !writer.may_manage
    {
        return Err(Refusal::NotOwner {
            owner: current.owner.clone(),
        });
    }
    let owner = match current {
        Some(current) => current.owner.clone(),
        None => Some(writer.id.clone()),
    };
    decide(current.map(|s| s.version), precondition).map(|version| Session {
        id: id.to_owned(),
        version,
        data,
        updated_at: now,
        owner,
    })
}

/// Why a store (of sessions, or of the registry's changes) failed: its own fault, not the
/// caller's.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {reason}")]
pub struct StoreError {
    /// What was being done.
    pub op: &'static str,
    /// What the storage said.
    pub reason: String,
}

impl StoreError {
    pub(crate) fn new(op: &'static str, err: impl std::fmt::Display) -> Self {
        StoreError {
            op,
            reason: err.to_string(),
        }
    }
}

/// A write's outcome: the session written, or the refusal.
pub type PutOutcome = Result<Session, Refusal>;

/// Where sessions live. `put` must apply [`decide`] and write in one atomic step, so two
/// writers holding the same version cannot both succeed.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The session, `None` when it does not exist.
    async fn get(&self, id: &str) -> Result<Option<Session>, StoreError>;
    /// Writes `data` as the next version of `id` if `writer` may (it owns the session, creates
    /// it, or may manage it) and `precondition` holds.
    async fn put(
        &self,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError>;
    /// How many sessions the store holds.
    async fn count(&self) -> Result<u64, StoreError>;
}

/// Sessions in memory (lost at exit): the default of [`Core::new`] and for tests.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    sessions: Mutex<HashMap<String, Session>>,
}

#[async_trait::async_trait]
impl SessionStore for MemorySessionStore {
    async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let table = self
            .sessions
            .lock()
            .map_err(|e| StoreError::new("get", e))?;
        Ok(table.get(id).cloned())
    }

    async fn put(
        &self,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError> {
        let mut table = self
            .sessions
            .lock()
            .map_err(|e| StoreError::new("put", e))?;
        let outcome = apply(table.get(id), id, data, &precondition, &writer, now);
        if let Ok(session) = &outcome {
            table.insert(id.to_owned(), session.clone());
        }
        Ok(outcome)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let table = self
            .sessions
            .lock()
            .map_err(|e| StoreError::new("count", e))?;
        Ok(table.len() as u64)
    }
}

/// Sessions in one redb file (each write is one durable transaction), surviving restarts.
#[derive(Debug, Clone)]
pub struct RedbSessionStore {
    db: Arc<Database>,
}

impl RedbSessionStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::new("open", e))?;
        let txn = db.begin_write().map_err(|e| StoreError::new("open", e))?;
        txn.open_table(SESSIONS)
            .map_err(|e| StoreError::new("open", e))?;
        txn.commit().map_err(|e| StoreError::new("open", e))?;
        Ok(RedbSessionStore { db: Arc::new(db) })
    }

    fn read(db: &Database, id: &str) -> Result<Option<Session>, StoreError> {
        let txn = db.begin_read().map_err(|e| StoreError::new("get", e))?;
        let table = txn
            .open_table(SESSIONS)
            .map_err(|e| StoreError::new("get", e))?;
        let Some(bytes) = table.get(id).map_err(|e| StoreError::new("get", e))? else {
            return Ok(None);
        };
        serde_json::from_slice(bytes.value())
            .map(Some)
            .map_err(|e| StoreError::new("decode", e))
    }

    fn count(db: &Database) -> Result<u64, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new("count", e);
        let txn = db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(SESSIONS).map_err(|e| err(&e))?;
        table.len().map_err(|e| err(&e))
    }

    fn write(
        db: &Database,
        id: &str,
        data: serde_json::Value,
        precondition: &Precondition,
        writer: &Writer,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new("put", e);
        let txn = db.begin_write().map_err(|e| err(&e))?;
        let outcome = {
            let mut table = txn.open_table(SESSIONS).map_err(|e| err(&e))?;
            let current: Option<Session> = match table.get(id).map_err(|e| err(&e))? {
                Some(bytes) => Some(
                    serde_json::from_slice(bytes.value())
                        .map_err(|e| StoreError::new("decode", e))?,
                ),
                None => None,
            };
            let outcome = apply(current.as_ref(), id, data, precondition, writer, now);
            if let Ok(session) = &outcome {
                let bytes = serde_json::to_vec(session).map_err(|e| err(&e))?;
                table.insert(id, bytes.as_slice()).map_err(|e| err(&e))?;
            }
            outcome
        };
        match outcome {
            Ok(_) => txn.commit().map_err(|e| err(&e))?,
            Err(_) => txn.abort().map_err(|e| err(&e))?,
        }
        Ok(outcome)
    }
}

/// Runs a blocking storage call off the async workers.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::new(op, e))?
}

#[async_trait::async_trait]
impl SessionStore for RedbSessionStore {
    async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let (db, id) = (self.db.clone(), id.to_owned());
        blocking("get", move || Self::read(&db, &id)).await
    }

    async fn put(
        &self,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError> {
        let (db, id) = (self.db.clone(), id.to_owned());
        blocking("put", move || {
            Self::write(&db, &id, data, &precondition, &writer, now)
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let db = self.db.clone();
        blocking("count", move || Self::count(&db)).await
    }
}

impl Core {
    /// How many sessions the store holds (none expires: every stored session counts), for the
    /// server's metrics: no caller, so no authentication.
    pub async fn session_count(&self) -> Result<u64, CoreError> {
        Ok(self.sessions.store.count().await?)
    }

    /// The session `id`; `NOT_FOUND` when it was never written. Reading is authorized as
    /// `Action::ReadSession`, and a session another principal owns also needs
    /// `Action::ManageSession`; each refusal is a `denied` ledger entry.
    pub async fn session(&self, ctx: &RequestContext, id: &str) -> Result<Session, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        crate::agents::check_id("id", id, MAX_SESSION_ID_LEN)?;
        self.judged(ctx, &principal, Action::ReadSession(id))
            .await?;
        let session = self
            .sessions
            .store
            .get(id)
            .await?
            .ok_or_else(|| CoreError::SessionNotFound { id: id.to_owned() })?;
        if session.owner.as_deref() != Some(principal.id.as_str()) {
            self.judged(ctx, &principal, Action::ManageSession(id))
                .await?;
        }
        Ok(session)
    }

    /// Writes `data` as the next version of session `id` if `precondition` holds (see the
    /// module docs for the rule); answers the session written. Writing is authorized as
    /// `Action::WriteSession`; a new session belongs to its writer, and one another principal
    /// owns needs `Action::ManageSession` too (checked inside the store's atomic write). Every
    /// write is a `session_written` ledger entry (the content hash is that of the data), every
    /// refusal a `denied` one.
    pub async fn put_session(
        &self,
        ctx: &RequestContext,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
    ) -> Result<Session, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        crate::agents::check_id("id", id, MAX_SESSION_ID_LEN)?;
        self.judged(ctx, &principal, Action::WriteSession(id))
            .await?;
        let bytes = serde_json::to_vec(&data).unwrap_or_default();
        let max = self.sessions.max_bytes;
        if bytes.len() > max {
            return Err(CoreError::SessionTooLarge {
                id: id.to_owned(),
                size: bytes.len(),
                max,
            });
        }
        let writer = Writer {
            id: principal.id.clone(),
            may_manage: ctx.is_internal()
                || self
                    .hooks
                    .authorizer
                    .authorize(&principal, Action::ManageSession(id), None)
                    .is_allow(),
        };
        let outcome = self
            .sessions
            .store
            .put(id, data, precondition, writer, self.clock.now())
            .await?;
        let session = match outcome {
            Ok(session) => session,
            Err(refusal) => return Err(self.refused_write(ctx, &principal, id, refusal).await),
        };
        let entry = NewEntry::new(
            EntryKind::SessionWritten,
            principal.id.clone(),
            crate::auth::action_subject(Action::WriteSession(id)),
        )
        .content_sha256(ace_ledger::Hash::of(&[&bytes]).to_hex())
        .decision("write")
        .details(serde_json::json!({
            "session": id,
            "version": session.version,
            "owner": session.owner,
            "transport": ctx.transport,
        }));
        pipeline::record(&*self.hooks.recorder, vec![entry]).await;
        Ok(session)
    }

    /// The error of a write the store refused; an ownership refusal is recorded as a denial.
    async fn refused_write(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        id: &str,
        refusal: Refusal,
    ) -> CoreError {
        match refusal {
            Refusal::NotOwner { owner } => {
                let action = Action::ManageSession(id);
                let reasons = vec![match owner {
                    Some(owner) => format!("session `{id}` belongs to `{owner}`"),
                    None => format!("session `{id}` has no recorded owner"),
                }];
                self.record_denial(ctx, principal, action, &reasons).await;
                CoreError::Forbidden {
                    principal: principal.id.clone(),
                    action: action.to_string(),
                    reasons,
                }
            }
            Refusal::Failed { current } => CoreError::SessionPreconditionFailed {
                id: id.to_owned(),
                current,
            },
            Refusal::Required { current } => CoreError::SessionPreconditionRequired {
                id: id.to_owned(),
                current,
            },
        }
    }
}

/// The store and the size limit a core writes sessions with.
#[derive(Debug, Clone)]
pub(crate) struct Sessions {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) max_bytes: usize,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            store: Arc::new(MemorySessionStore::default()),
            max_bytes: DEFAULT_MAX_SESSION_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer {
        Writer {
            id: "owner".into(),
            may_manage: false,
        }
    }
    use serde_json::json;

    #[test]
    fn given_each_state_and_precondition_when_decided_then_the_strict_rule_holds() {
        use Precondition::{Absent, Exists, None as Blind, Version};
        assert_eq!(decide(None, &Blind), Ok(1));
        assert_eq!(decide(None, &Absent), Ok(1));
        assert_eq!(
            decide(None, &Exists),
            Err(Refusal::Failed { current: None })
        );
        assert_eq!(
            decide(Some(2), &Blind),
            Err(Refusal::Required { current: 2 })
        );
        assert_eq!(
            decide(Some(2), &Absent),
            Err(Refusal::Failed { current: Some(2) })
        );
        assert_eq!(decide(Some(2), &Exists), Ok(3));
        assert_eq!(decide(Some(2), &Version(vec![1, 2])), Ok(3));
        assert_eq!(
            decide(Some(2), &Version(vec![])),
            Err(Refusal::Failed { current: Some(2) })
        );
    }

    #[tokio::test]
    async fn given_a_redb_store_when_reopened_then_the_last_version_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let now = Utc::now();
        {
            let store = RedbSessionStore::open(&path).unwrap();
            let first = store
                .put("s", json!({"a": 1}), Precondition::None, writer(), now)
                .await;
            assert_eq!(first.unwrap().unwrap().version, 1);
            let stale = store
                .put(
                    "s",
                    json!({"a": 3}),
                    Precondition::Version(vec![7]),
                    writer(),
                    now,
                )
                .await
                .unwrap();
            assert_eq!(stale, Err(Refusal::Failed { current: Some(1) }));
            let second = store
                .put(
                    "s",
                    json!({"a": 2}),
                    Precondition::Version(vec![1]),
                    writer(),
                    now,
                )
                .await;
            assert_eq!(second.unwrap().unwrap().version, 2);
        }
        let store = RedbSessionStore::open(&path).unwrap();
        let read = store.get("s").await.unwrap().expect("kept");
        assert_eq!((read.version, read.data), (2, json!({"a": 2})));
        assert_eq!(store.get("other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn given_sessions_written_and_refused_when_counted_then_each_store_counts_stored_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.redb");
        let redb: Arc<dyn SessionStore> = Arc::new(RedbSessionStore::open(&path).unwrap());
        let memory: Arc<dyn SessionStore> = Arc::new(MemorySessionStore::default());
        let now = Utc::now();
        for store in [&redb, &memory] {
            assert_eq!(store.count().await.unwrap(), 0);
            for (id, precondition) in [
                ("a", Precondition::None),
                ("b", Precondition::None),
                ("a", Precondition::Version(vec![1])),
                ("c", Precondition::Exists),
            ] {
                store
                    .put(id, json!(1), precondition, writer(), now)
                    .await
                    .unwrap()
                    .ok();
            }
            assert_eq!(store.count().await.unwrap(), 2, "{store:?}");
        }
        drop(redb);
        let reopened = RedbSessionStore::open(&path).unwrap();
        assert_eq!(reopened.count().await.unwrap(), 2, "counted from the file");
    }

    #[tokio::test]
    async fn given_two_writers_with_the_same_version_when_racing_then_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbSessionStore::open(&dir.path().join("s.redb")).unwrap();
        let now = Utc::now();
        store
            .put("s", json!(0), Precondition::None, writer(), now)
            .await
            .unwrap()
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put("s", json!(i), Precondition::Version(vec![1]), writer(), now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(task.await.unwrap().is_ok());
        }
        assert_eq!(wins, 1);
        assert_eq!(store.get("s").await.unwrap().unwrap().version, 2);
    }
}
