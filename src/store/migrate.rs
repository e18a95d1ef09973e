//! Embedded schema migrations, one list per backend (the SQL is in `migrations/`).

use std::borrow::Cow;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::{Backend, Store, StoreError};

type Script = (i64, &'static str, &'static str);

const SQLITE: &[Script] = &[
    (
        1,
        "contracts",
        include_str!("../../migrations/sqlite/0001_contracts.sql"),
    ),
    (
        2,
        "foreign fhir",
        include_str!("../../migrations/sqlite/0002_foreign_fhir.sql"),
    ),
    (
        3,
        "deleted",
        include_str!("../../migrations/sqlite/0003_deleted.sql"),
    ),
    (
        4,
        "sync",
        include_str!("../../migrations/sqlite/0004_sync.sql"),
    ),
    (
        5,
        "conflicts",
        include_str!("../../migrations/sqlite/0005_conflicts.sql"),
    ),
    (
        6,
        "pull",
        include_str!("../../migrations/sqlite/0006_pull.sql"),
    ),
    (
        7,
        "subscriptions",
        include_str!("../../migrations/sqlite/0007_subscriptions.sql"),
    ),
    (
        8,
        "transfers",
        include_str!("../../migrations/sqlite/0008_transfers.sql"),
    ),
    (
        9,
        "scheduled transfers",
        include_str!("../../migrations/sqlite/0009_scheduled_transfers.sql"),
    ),
    (
        10,
        "questionnaire responses",
        include_str!("../../migrations/sqlite/0010_questionnaire_responses.sql"),
    ),
    (
        11,
        "access audit",
        include_str!("../../migrations/sqlite/0011_access_audit.sql"),
    ),
    (
        12,
        "resource versions",
        include_str!("../../migrations/sqlite/0012_resource_versions.sql"),
    ),
    (
        13,
        "identifiers",
        include_str!("../../migrations/sqlite/0013_identifiers.sql"),
    ),
    (
        14,
        "merged from",
        include_str!("../../migrations/sqlite/0014_merged_from.sql"),
    ),
    (
        15,
        "recheck",
        include_str!("../../migrations/sqlite/0015_recheck.sql"),
    ),
    (
        16,
        "traceparent",
        include_str!("../../migrations/sqlite/0016_traceparent.sql"),
    ),
    (
        17,
        "outbox dispatched",
        include_str!("../../migrations/sqlite/0017_outbox_dispatched.sql"),
    ),
];
const POSTGRES: &[Script] = &[
    (
        1,
        "contracts",
        include_str!("../../migrations/postgres/0001_contracts.sql"),
    ),
    (
        2,
        "foreign fhir",
        include_str!("../../migrations/postgres/0002_foreign_fhir.sql"),
    ),
    (
        3,
        "deleted",
        include_str!("../../migrations/postgres/0003_deleted.sql"),
    ),
    (
        4,
        "sync",
        include_str!("../../migrations/postgres/0004_sync.sql"),
    ),
    (
        5,
        "conflicts",
        include_str!("../../migrations/postgres/0005_conflicts.sql"),
    ),
    (
        6,
        "pull",
        include_str!("../../migrations/postgres/0006_pull.sql"),
    ),
    (
        7,
        "subscriptions",
        include_str!("../../migrations/postgres/0007_subscriptions.sql"),
    ),
    (
        8,
        "transfers",
        include_str!("../../migrations/postgres/0008_transfers.sql"),
    ),
    (
        9,
        "scheduled transfers",
        include_str!("../../migrations/postgres/0009_scheduled_transfers.sql"),
    ),
    (
        10,
        "questionnaire responses",
        include_str!("../../migrations/postgres/0010_questionnaire_responses.sql"),
    ),
    (
        11,
        "access audit",
        include_str!("../../migrations/postgres/0011_access_audit.sql"),
    ),
    (
        12,
        "resource versions",
        include_str!("../../migrations/postgres/0012_resource_versions.sql"),
    ),
    (
        13,
        "identifiers",
        include_str!("../../migrations/postgres/0013_identifiers.sql"),
    ),
    (
        14,
        "merged from",
        include_str!("../../migrations/postgres/0014_merged_from.sql"),
    ),
    (
        15,
        "recheck",
        include_str!("../../migrations/postgres/0015_recheck.sql"),
    ),
    (
        16,
        "traceparent",
        include_str!("../../migrations/postgres/0016_traceparent.sql"),
    ),
    (
        17,
        "outbox dispatched",
        include_str!("../../migrations/postgres/0017_outbox_dispatched.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(&'static [Script]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, name, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(name),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

impl Store {
    /// Applies the migrations not yet applied. Safe to run from several processes at once
    /// on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let scripts = match self.backend {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        let migrator = Migrator::new(Embedded(scripts)).await?;
        migrator.run(&self.writer).await?;
        Ok(())
    }
}
