//! The hottest reads on SQLite, run on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every statement is a
//! message to that thread and an answer back: in the profile of reads by id the kernel's
//! thread switching was about 45 % of the gateway's CPU (docs/scaling.md). A contract's
//! head is one indexed row in pages the operating system has cached, a few
//! microseconds — less than the hand-off itself. So the head lookups every read,
//! search and `$coordinated-plan` starts with, and the reads of one version (the
//! current one an update is based on, a version not in the read cache), run here, on
//! read-only connections of their own, by the task that asks, with nothing in between;
//! every other statement goes through sqlx.
//!
//! A read here never waits on a writer: in WAL mode a reader reads the last commit
//! before it began, so a read after a write (by any connection) sees that write.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use super::StoreError;

/// Read-only connections to the store's SQLite file, each used by one read at a time.
#[derive(Debug)]
pub(super) struct InlineReads {
    path: PathBuf,
    /// Connections not in use; a read takes one (or opens one) and gives it back.
    idle: Mutex<Vec<Connection>>,
}

/// How long a read waits for a lock it cannot get at once (in WAL mode, only while a
/// connection recovers the log after a crash).
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

impl InlineReads {
    /// Reads of the SQLite database `url` names, or `None` for one that lives in memory
    /// (only its own connections can see it).
    pub(super) fn of_url(url: &str) -> Option<InlineReads> {
        use std::str::FromStr as _;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if path == Path::new(":memory:") || path.as_os_str().is_empty() {
            return None;
        }
        Some(InlineReads {
            path: path.to_owned(),
            idle: Mutex::default(),
        })
    }

    /// At most one row of `sql` (with `$1`, `$2`… bound to `params`), as `row` makes it.
    pub(super) fn optional<T>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        row: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        self.with(|conn| conn.prepare_cached(sql)?.query_row(params, row).optional())
    }

    /// Every row of `sql` (with `$1`, `$2`… bound to `params`), as `row` makes each.
    pub(super) fn all<T>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|conn| conn.prepare_cached(sql)?.query_map(params, row)?.collect())
    }

    /// Runs `read` on an idle connection (or a new one), which is then idle again.
    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().map_err(failed)?,
        };
        let result = read(&conn).map_err(failed);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// Closes the idle connections.
    pub(super) fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

/// A failed read, as the store reports a failed database (HTTP 503): what went wrong is
/// in the message.
fn failed(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(std::io::Error::other(e)))
}
