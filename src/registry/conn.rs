//! Where a handler's queries go.
//!
//! A handler asks its [`Ctx`](crate::registry::Ctx) for a connection ([`Db`]) or a transaction
//! ([`Tx`]) and never learns which of two kinds it got:
//!
//! - **its own**: a pooled connection, and a transaction of its own on it;
//! - **the request's unit of work** ([`Unit`]): one connection with one open transaction shared by
//!   every entry of a `batch` and by a request sent with a `request_id`. A handler's transaction
//!   is then a savepoint inside it, and nothing is committed until the unit is.
//!
//! Both give a `&Object` to the `db` functions (`&*tx`, `&*client`).

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use deadpool_postgres::Object;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::ApiError;
use crate::state::AppState;

/// Work to do once the change is committed (evicting caches, waking polls).
pub type AfterCommit = Box<dyn FnOnce(&AppState) + Send>;

/// One connection with one open transaction, shared by the handlers of one request.
pub struct Unit {
    /// Names the unit in the audit log: a batch's entries share it.
    pub id: uuid::Uuid,
    conn: Arc<Mutex<Shared>>,
    after_commit: StdMutex<Vec<AfterCommit>>,
    /// Committed or rolled back: nothing is left to undo when it is dropped.
    finished: AtomicBool,
}

/// The unit's connection, and whether a handler left a savepoint to undo.
pub struct Shared {
    client: Object,
    undo_savepoint: bool,
}

impl Shared {
    /// Rolls back a savepoint a handler dropped without committing.
    async fn settle(&mut self) -> Result<(), ApiError> {
        if self.undo_savepoint {
            self.client
                .batch_execute("ROLLBACK TO SAVEPOINT handler; RELEASE SAVEPOINT handler")
                .await?;
            self.undo_savepoint = false;
        }
        Ok(())
    }
}

impl Unit {
    /// Takes a pooled connection and opens the unit's transaction.
    pub async fn begin(state: &AppState) -> Result<Arc<Unit>, ApiError> {
        let client = state.db().await?;
        client.batch_execute("BEGIN").await?;
        Ok(Arc::new(Unit {
            id: uuid::Uuid::new_v4(),
            conn: Arc::new(Mutex::new(Shared {
                client,
                undo_savepoint: false,
            })),
            after_commit: StdMutex::new(Vec::new()),
            finished: AtomicBool::new(false),
        }))
    }

    /// The unit's connection, for the unit's own statements (between handlers).
    pub async fn client(&self) -> Result<Db, ApiError> {
        self.acquire().await.map(Db::Shared)
    }

    async fn acquire(&self) -> Result<OwnedMutexGuard<Shared>, ApiError> {
        // A handler holding the connection while asking for it again would wait forever.
        let mut guard = Arc::clone(&self.conn).try_lock_owned().map_err(|_| {
            ApiError::internal("a handler asked for a connection while holding the unit's")
        })?;
        guard.settle().await?;
        Ok(guard)
    }

    /// Remembers work for after the commit.
    pub fn after_commit(&self, f: AfterCommit) {
        if let Ok(mut hooks) = self.after_commit.lock() {
            hooks.push(f);
        }
    }

    /// Runs `sql` (SAVEPOINT, RELEASE, ROLLBACK TO ...) on the unit's connection.
    pub async fn execute(&self, sql: &str) -> Result<(), ApiError> {
        let guard = self.acquire().await?;
        guard.client.batch_execute(sql).await?;
        Ok(())
    }

    /// Commits the unit, then runs the work that waited for the commit.
    pub async fn commit(&self, state: &AppState) -> Result<(), ApiError> {
        self.execute("COMMIT").await?;
        self.finished.store(true, Ordering::Release);
        let hooks = self
            .after_commit
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        for hook in hooks {
            hook(state);
        }
        Ok(())
    }

    /// Rolls the unit back; the connection goes back to the pool only if that worked.
    pub async fn rollback(&self) {
        if let Ok(mut guard) = Arc::clone(&self.conn).try_lock_owned() {
            guard.undo_savepoint = false;
            if guard.client.batch_execute("ROLLBACK").await.is_ok() {
                self.finished.store(true, Ordering::Release);
            }
        }
        if let Ok(mut hooks) = self.after_commit.lock() {
            hooks.clear();
        }
    }
}

impl Drop for Unit {
    /// A unit dropped while still open (its request was cancelled) must not return a connection
    /// with an open transaction to the pool: it is rolled back in the background first, and
    /// taken out of the pool if even that fails.
    fn drop(&mut self) {
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        let conn = Arc::clone(&self.conn);
        match tokio::runtime::Handle::try_current() {
            // A ROLLBACK fails only on a broken connection, which the pool then discards.
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = conn.lock().await.client.batch_execute("ROLLBACK").await;
                });
            }
            Err(_) => tracing::warn!("a unit of work was dropped outside the runtime"),
        }
    }
}

/// Rolls back whatever the connection has open, in the background; a connection that cannot
/// is closed instead of going back to the pool.
fn discard_or_rollback(client: Object) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    drop(Object::take(client));
                }
            });
        }
        Err(_) => drop(Object::take(client)),
    }
}

/// A connection for reads: the handler's own, or the unit's.
// Lives on a handler's stack for one request; boxing the pooled one would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Db {
    Own(Object),
    Shared(OwnedMutexGuard<Shared>),
}

impl Deref for Db {
    type Target = Object;
    fn deref(&self) -> &Object {
        match self {
            Db::Own(c) => c,
            Db::Shared(g) => &g.client,
        }
    }
}

impl Db {
    /// The connection of a request: the unit's when it has one, else one from the pool.
    pub async fn get(state: &AppState, unit: Option<&Unit>) -> Result<Db, ApiError> {
        match unit {
            Some(u) => u.client().await,
            None => Ok(Db::Own(state.db().await?)),
        }
    }

    /// Opens a transaction: BEGIN on an own connection, a savepoint inside a unit.
    pub async fn begin(self) -> Result<Tx, ApiError> {
        match &self {
            Db::Own(c) => c.batch_execute("BEGIN").await?,
            Db::Shared(g) => g.client.batch_execute("SAVEPOINT handler").await?,
        }
        Ok(Tx {
            db: Some(self),
            done: false,
        })
    }
}

/// A transaction; dropped without [`commit`](Self::commit), it is rolled back.
pub struct Tx {
    db: Option<Db>,
    done: bool,
}

impl Deref for Tx {
    type Target = Object;
    fn deref(&self) -> &Object {
        match &self.db {
            Some(db) => db,
            None => unreachable!("a transaction's connection is only taken when it is dropped"),
        }
    }
}

impl Tx {
    /// Commits (or, inside a unit, releases the savepoint; the unit commits later).
    pub async fn commit(mut self) -> Result<(), ApiError> {
        let sql = match &self.db {
            Some(Db::Own(_)) => "COMMIT",
            _ => "RELEASE SAVEPOINT handler",
        };
        let outcome = self.batch_execute(sql).await;
        self.done = outcome.is_ok();
        Ok(outcome?)
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match self.db.take() {
            Some(Db::Shared(mut guard)) => guard.undo_savepoint = true,
            Some(Db::Own(client)) => discard_or_rollback(client),
            None => {}
        }
    }
}
