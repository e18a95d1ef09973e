//! Shared test helpers: a fresh database per test on either backend, fixture contracts,
//! and a gateway served on a real socket.

// Test support: a failed setup step should panic the test that needed it.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod app;
pub mod browser;
pub mod fhir;
pub mod peer;
pub mod postgres;

use std::str::FromStr;

use pkgw::domain::Contract;
use pkgw::store::{Store, StoreOptions};
use sqlx::AnyPool;
use sqlx::any::AnyConnectOptions;

/// The server PostgreSQL tests use unless `PKGW_TEST_POSTGRES_URL` says otherwise.
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for one test and is removed after it.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
    Done,
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = StoreOptions::sqlite_in(dir.path()).url;
        TestDb {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A new schema on the test PostgreSQL server, or `None` when `PKGW_SKIP_POSTGRES=1`.
    pub async fn postgres() -> Option<TestDb> {
        if std::env::var("PKGW_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!("PKGW_SKIP_POSTGRES=1: skipping a PostgreSQL test");
            return None;
        }
        let admin_url =
            std::env::var("PKGW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        let admin = connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {admin_url}: {e}\n\
                 Point the tests at a server with PKGW_TEST_POSTGRES_URL=postgres://user@host:port/db, \
                 or set PKGW_SKIP_POSTGRES=1 to skip them (CI never does)."
            )
        });
        let schema = format!("pkgw_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={schema}");
        Some(TestDb {
            url,
            cleanup: Cleanup::Postgres { admin_url, schema },
        })
    }

    /// Another, empty database of the same kind (e.g. for a second gateway).
    pub async fn another(&self) -> TestDb {
        if self.is_postgres() {
            TestDb::postgres().await.expect("PostgreSQL")
        } else {
            TestDb::sqlite()
        }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        Store::open(&StoreOptions::new(&self.url))
            .await
            .expect("open store")
    }

    /// A plain connection pool, for looking behind the store's back.
    pub async fn pool(&self) -> AnyPool {
        connect(&self.url).await.expect("connect")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::Postgres { .. })
    }

    /// Makes every insert into `table` fail, as a crash or a full disk would.
    pub async fn break_inserts_into(&self, table: &str) {
        let pool = self.pool().await;
        let statements: Vec<String> = if self.is_postgres() {
            vec![
                "CREATE FUNCTION injected_failure() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql".into(),
                format!("CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION injected_failure()"),
            ]
        } else {
            vec![format!(
                "CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )]
        };
        for s in statements {
            sqlx::query(&s)
                .execute(&pool)
                .await
                .expect("install failing trigger");
        }
        pool.close().await;
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.count_where(table, "TRUE").await
    }

    /// Rows of `table` for which `condition` (SQL) holds.
    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        let pool = self.pool().await;
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {condition}"))
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    }
}

impl TestDb {
    /// Removes the database; called after a test that passed. (After a panic, [`Drop`]
    /// does it.)
    pub async fn cleanup(mut self) {
        if let Some((admin_url, schema)) = self.take_schema() {
            drop_schema(&admin_url, &schema).await;
        }
    }

    fn take_schema(&mut self) -> Option<(String, String)> {
        match std::mem::replace(&mut self.cleanup, Cleanup::Done) {
            Cleanup::Postgres { admin_url, schema } => Some((admin_url, schema)),
            _ => None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, schema)) = self.take_schema() {
            // On its own thread and runtime, so it works inside a test's runtime too.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(drop_schema(&admin_url, &schema));
                Some(())
            })
            .join();
        }
    }
}

/// Drops a test schema; never waits long on a lock (a schema left behind is harmless).
async fn drop_schema(admin_url: &str, schema: &str) {
    let Ok(admin) = connect(admin_url).await else {
        return;
    };
    if let Ok(mut tx) = admin.begin().await {
        let _ = sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await;
        if sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut *tx)
            .await
            .is_ok()
        {
            let _ = tx.commit().await;
        }
    }
    admin.close().await;
}

async fn connect(url: &str) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?;
    sqlx::pool::PoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
}

/// A fixture contract by file stem.
pub fn fixture(name: &str) -> Contract {
    let (_, json) = pkgw::demo::FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::from_str(json).expect("fixture parses")
}

/// Runs each named async test, taking a `TestDb`, once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::common::TestDb::sqlite();
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::postgres().await {
                        super::$name(&db).await;
                        db.cleanup().await;
                    }
                }
            )*
        }
    };
}

/// The Python interpreter with the test tools `scripts/test.sh` installs (the FHIR
/// validator `fhir.resources`, the FHIR client `fhirpy`): `PKGW_FHIR_PYTHON`, or the
/// virtual environment under `target/`.
pub fn test_python() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("PKGW_FHIR_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/fhir-validator/bin/python"));
    assert!(
        path.exists(),
        "no test Python at {}: run scripts/test.sh (it installs fhir.resources and fhirpy), or set PKGW_FHIR_PYTHON",
        path.display()
    );
    path
}

/// The Python with the OpenAPI validator `scripts/test.sh` installs
/// (openapi-spec-validator, in its own environment: it needs pydantic 2):
/// `PKGW_OPENAPI_PYTHON`, or `target/openapi-validator`.
pub fn test_openapi_python() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("PKGW_OPENAPI_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/openapi-validator/bin/python"));
    assert!(
        path.exists(),
        "no OpenAPI validator at {}: run scripts/test.sh, or set PKGW_OPENAPI_PYTHON",
        path.display()
    );
    path
}

/// The folder with the Node test tools `scripts/test.sh` installs (Medplum's validator and
/// client, fhir-kit-client): `PKGW_FHIR_NODE`, or `target/fhir-node`.
pub fn test_node_tools() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = std::env::var_os("PKGW_FHIR_NODE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/fhir-node"));
    assert!(
        path.join("node_modules/@medplum/core").exists(),
        "no Node test tools at {}: run scripts/test.sh (it installs @medplum/core and fhir-kit-client), or set PKGW_FHIR_NODE",
        path.display()
    );
    path
}

/// Runs both independent FHIR R4 validators on `files` — `scripts/validate_fhir.py`
/// (`fhir.resources` and the required value sets) and `scripts/validate_fhir_medplum.mjs`
/// (Medplum's: reference targets, cardinalities, invariants, bindings, ids) — and
/// returns whether both passed and what they printed.
pub fn validate_files(files: &[std::path::PathBuf]) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::process::Command::new(test_python())
        .arg(root.join("scripts/validate_fhir.py"))
        .args(files)
        .output()
        .expect("run the Python validator");
    let node = std::process::Command::new("node")
        .arg(root.join("scripts/validate_fhir_medplum.mjs"))
        .args(files)
        .env("PKGW_FHIR_NODE", test_node_tools())
        .output()
        .expect("run the Medplum validator");
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    (
        python.status.success() && node.status.success(),
        format!(
            "fhir.resources:\n{}medplum:\n{}",
            text(&python),
            text(&node)
        ),
    )
}

/// Asserts that each value is valid FHIR R4 by both independent validators
/// ([`validate_files`]), showing what they found if not.
pub fn assert_valid_r4(values: &[&serde_json::Value]) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let files: Vec<std::path::PathBuf> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let file = dir.path().join(format!("resource-{i}.json"));
            std::fs::write(&file, v.to_string()).expect("write");
            file
        })
        .collect();
    let (ok, output) = validate_files(&files);
    assert!(ok, "not valid R4: {output}");
}

/// Stores `next` as the version after `record` (a change from `api`); the new version.
pub async fn next_version(
    store: &Store,
    record: &pkgw::store::Record,
    next: Contract,
) -> pkgw::store::Record {
    store
        .update(
            &record.id,
            record.revision.version,
            next,
            pkgw::store::Change::from_source("api"),
        )
        .await
        .expect("update")
}
