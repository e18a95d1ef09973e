//! Persistence: every version of every contract, the outbox and the audit trail, on
//! SQLite (the embedded default) or PostgreSQL, behind one [`Store`].
//!
//! The store is the single gate through which a contract changes: it checks the domain
//! invariants, enforces optimistic concurrency (an update names the version it is based
//! on), and writes the new version, its outbox row and its audit row in one transaction.
//! It must not know about HTTP or FHIR; callers translate [`StoreError`] to their own
//! errors.
//!
//! Both backends run the same SQL through sqlx's `Any` driver (`$1` placeholders work on
//! both); where the dialects differ (migrations) the [`Backend`] picks. On SQLite all
//! writes go through one connection, so writers queue instead of failing on a busy lock,
//! and contract writes that arrive together share one commit (`group`); the head
//! lookups reads start with, and reads of one version, run on the calling thread
//! (`inline`).
//!
//! On PostgreSQL, reads that may lag the primary can go to a read-only streaming
//! replica (`database.read_url`): the handle [`Store::replica`] gives reads the current
//! versions, a person's contracts and histories there, and falls back to the primary for
//! a contract or version the replica does not have yet, so what a caller has just
//! written is never answered as unknown. Writes, and every read a write or the sync
//! engine makes, stay on the primary.

mod audit;
mod contracts;
mod error;
mod group;
mod inline;
mod migrate;
mod outbox;
mod responses;
mod scheduled;
mod subscriptions;
mod sync;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub use crate::domain::{Change, History, Record, Revision};
pub use audit::{AccessRecord, AuditLog, AuditQuery, AuditRow, RequestTrace};
pub use contracts::{Head, Pending};
pub use error::StoreError;
pub use outbox::OutboxRow;
pub use responses::{ResponseQuery, StoredResponse};
pub use scheduled::ScheduledTransfer;
pub use subscriptions::StoredSubscription;
pub use sync::{Claim, Conflict, DeadLetter, Dispatch, QueueStatus, Recorded, Remote, Routing};

/// How long a PostgreSQL connection may have lain in the pool before it is checked (one
/// round trip) before use. Every connection is checked as it goes back to the pool
/// (sqlx pings it there), so one in use moments ago is known to be live; checking it
/// again on every acquire was one more round trip each time, about a seventh of a
/// read's time at one connection (`docs/scaling.md`). A server restarted and back
/// within this time may cost each pooled connection one request answered 503; a slower
/// restart, or a connection the server or the network dropped while it lay idle, costs
/// none.
pub const IDLE_BEFORE_PING: Duration = Duration::from_millis(100);

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL points at.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "database URL must start with sqlite: or postgres:, got '{}'",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }
}

/// The contract store. Cheap to clone: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Connections for writes (one, on SQLite).
    writer: AnyPool,
    /// Connections for reads that must see every commit (the primary's, on PostgreSQL).
    reader: AnyPool,
    /// A read-only replica's connections (`database.read_url`), if one is set.
    replica: Option<AnyPool>,
    /// Whether this handle reads from the replica where a read may lag
    /// ([`Store::replica`]).
    lagging: bool,
    /// On SQLite, the head lookups and reads of one version run on the calling thread
    /// (`inline`).
    inline: Option<std::sync::Arc<inline::InlineReads>>,
    /// On SQLite, where contract writes go to share commits ([`group`]).
    group: Option<group::GroupCommit>,
    /// Told when a change is committed, so this process's sync engine need not wait
    /// for its next poll ([`Store::committed`]).
    changes: std::sync::Arc<tokio::sync::Notify>,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// A read-only PostgreSQL replica of `url`'s database, for reads that may lag.
    pub read_url: Option<String>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            read_url: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// The URL of the embedded SQLite database in `data_dir`, created if missing.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self::new(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("pkgw.db").display()
        ))
    }
}

impl Store {
    /// Connects, without migrating; see [`Store::migrate`].
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(&options.url)?;
        let options_of = |url: &str| {
            AnyConnectOptions::from_str(url)
                .map(|o| o.disable_statement_logging())
                .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))
        };
        let connect = options_of(&options.url)?;
        let replica = match &options.read_url {
            None => None,
            Some(url) if backend == Backend::Postgres => {
                if Backend::of_url(url)? != Backend::Postgres {
                    return Err(StoreError::Config(
                        "the read replica's URL must start with postgres:".into(),
                    ));
                }
                Some(options_of(url)?)
            }
            Some(_) => {
                return Err(StoreError::Config(
                    "a read replica needs PostgreSQL: SQLite's readers already see every commit"
                        .into(),
                ));
            }
        };
        let pool = |max: u32, connect: AnyConnectOptions| {
            let pool_options = AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(options.acquire_timeout)
                // No ping before each use of a SQLite connection: every statement is a
                // hand-off to the connection's thread and back, and the ping doubled
                // them; a file does not go away as a server can. A PostgreSQL connection
                // idle for a while is checked (below).
                .test_before_acquire(false)
                // A connection sqlx still counts as inside a transaction once the
                // transaction is over is closed, never handed to the next request: when a
                // statement fails (SQLite's SQLITE_FULL, say) the database may roll the
                // transaction back itself, the driver's ROLLBACK then fails, and its count
                // stays one too high — the next "transaction" would be a savepoint inside
                // nothing, answered as committed and never stored (found by
                // tests/disk_full.rs). A dropped transaction's rollback is still queued
                // at release: one round trip lets it run before the count is read again.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        if !conn.is_in_transaction() {
                            return Ok(true);
                        }
                        let _ = conn.ping().await;
                        Ok(!conn.is_in_transaction())
                    })
                })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            sqlx::query("PRAGMA journal_mode = WAL")
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                });
            // A PostgreSQL connection idle for `IDLE_BEFORE_PING` is checked before use, so
            // a restarted server costs no failed request; a failed check closes it, and
            // the pool takes another.
            let pool_options = if backend == Backend::Postgres {
                pool_options.before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= IDLE_BEFORE_PING {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
            } else {
                pool_options
            };
            pool_options.connect_with(connect)
        };
        let (writer, reader) = match backend {
            Backend::Sqlite => (
                pool(1, connect.clone()).await?,
                pool(options.max_connections.max(2), connect).await?,
            ),
            Backend::Postgres => {
                let shared = pool(options.max_connections, connect).await?;
                (shared.clone(), shared)
            }
        };
        let replica = match replica {
            Some(connect) => Some(pool(options.max_connections, connect).await?),
            None => None,
        };
        let group = (backend == Backend::Sqlite).then(|| group::GroupCommit::start(writer.clone()));
        Ok(Store {
            backend,
            group,
            writer,
            reader,
            replica,
            lagging: false,
            inline: match backend {
                Backend::Sqlite => inline::InlineReads::of_url(&options.url).map(Into::into),
                Backend::Postgres => None,
            },
            changes: std::sync::Arc::default(),
        })
    }

    /// Connects and applies any pending migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        let store = Store::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This store, reading the current versions of contracts, a person's contracts and
    /// histories from the read replica when one is set (`database.read_url`): what
    /// these reads give may then lag the primary by the replica's replay delay. A
    /// contract or version the replica does not have yet is read from the primary.
    /// Writes through the handle, and every other read, go to the primary. Without a
    /// replica the handle is the store itself.
    pub fn replica(&self) -> Store {
        Store {
            lagging: self.replica.is_some(),
            ..self.clone()
        }
    }

    /// Where a read that may lag goes first: the replica, in a [`Store::replica`] handle.
    fn lagging_reader(&self) -> Option<&AnyPool> {
        self.replica.as_ref().filter(|_| self.lagging)
    }

    /// Where a read that may lag goes: the replica in a [`Store::replica`] handle, else
    /// the reader.
    fn reads(&self) -> &AnyPool {
        self.lagging_reader().unwrap_or(&self.reader)
    }

    /// Where a read of one contract or version goes, in turn, until one has it: the
    /// replica in a [`Store::replica`] handle, then the reader (a contract or version
    /// the replica has not replayed yet, or none at all: the primary says which).
    fn lagging_then_primary(&self) -> impl Iterator<Item = &AnyPool> + Send {
        self.lagging_reader().into_iter().chain([&self.reader])
    }

    /// Whether the database (and the read replica, if one is set) answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        if let Some(replica) = &self.replica
            && let Err(e) = sqlx::query("SELECT 1").execute(replica).await
        {
            tracing::error!(error = %e, "the read replica (database.read_url) does not answer");
            return Err(e.into());
        }
        Ok(())
    }

    /// Refreshes the query planner's statistics (`ANALYZE`), as after a bulk load: until
    /// they exist (PostgreSQL's autovacuum may be off, or not yet round), the planner
    /// guesses how many rows a person has and may choose a scan of the whole table.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE").execute(&self.writer).await?;
        Ok(())
    }

    /// Writes out what the database holds only in memory and in its log, as after a bulk
    /// load: PostgreSQL's `CHECKPOINT`, so that the first timed checkpoint does not
    /// write gigabytes under the first requests (docs/scaling.md). `Ok(false)` when the
    /// role may not (a superuser's or `pg_checkpoint`'s right). SQLite writes its log
    /// into the database file when the store closes: nothing to do.
    pub async fn checkpoint(&self) -> Result<bool, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(true);
        }
        match sqlx::query("CHECKPOINT").execute(&self.writer).await {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves once a change is committed through this store (or a clone of it) after
    /// the last time it resolved: what this process wrote is dispatched at once, while
    /// other processes' writes wait for the dispatcher's poll. One waiter is woken.
    pub async fn committed(&self) {
        self.changes.notified().await;
    }

    /// Wakes the one waiting in [`Store::committed`], or the next to wait.
    fn changed(&self) {
        self.changes.notify_one();
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        if let Some(replica) = &self.replica {
            replica.close().await;
        }
        if let Some(inline) = &self.inline {
            inline.close();
        }
    }
}

/// The current instant at the precision the store keeps (microseconds), so what a write
/// returns equals what a later read gives.
fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(jiff::Timestamp::now().as_microsecond())
        .unwrap_or_else(|_| jiff::Timestamp::now())
}

/// Microseconds since the epoch, as instants are stored.
fn micros(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

fn from_micros(us: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_microsecond(us)
        .map_err(|e| StoreError::Corrupt(format!("bad instant {us}: {e}")))
}

/// A stored version number, which must be a valid [`crate::domain::Version`].
fn version_of(n: i64) -> Result<crate::domain::Version, StoreError> {
    u64::try_from(n)
        .ok()
        .and_then(|n| crate::domain::Version::try_from(n).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("bad version number {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::of_url("mysql://secret@h").unwrap_err().to_string();
        assert!(err.contains("mysql") && !err.contains("secret"), "{err}");
    }
}

impl Store {
    /// On SQLite, the commits of contract writes made since the store was opened and
    /// the writes they stored: with writers sharing commits, more writes than commits.
    pub fn group_commits(&self) -> Option<(u64, u64)> {
        self.group.as_ref().map(group::GroupCommit::counts)
    }
}

/// One connection pool's use at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// `writer`, `reader` or `replica`.
    pub pool: &'static str,
    /// Connections open, in use or idle.
    pub open: u32,
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

impl Store {
    /// The use of the write and the read pools, and of the read replica's if one is set.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        let of = |pool: &'static str, p: &AnyPool| PoolUse {
            pool,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        };
        let mut pools = vec![of("writer", &self.writer), of("reader", &self.reader)];
        pools.extend(self.replica.as_ref().map(|p| of("replica", p)));
        pools
    }
}
