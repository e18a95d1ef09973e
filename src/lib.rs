//! `pkgw`, the Patientkontrakt gateway.
//!
//! It keeps each person's Patientkontrakt — the documented agreement between a person and
//! Swedish care about what matters to them, who does what, their fixed care contact, their
//! next agreed time and their other plans — as one versioned record, and serves it to the
//! EHRs and portals that need it.
//!
//! The modules, and what each owns:
//! - [`domain`]: the contract, its four parts, identifiers and invariants. Pure: no I/O.
//! - [`store`]: persistence of every contract version, the outbox and the audit trail, on
//!   SQLite (embedded default) or PostgreSQL.
//! - [`fhir`]: the mapping between a contract and FHIR R4 resources, driven by the
//!   profiles in `mappings/`.
//! - [`sync`]: delivery of every change to the configured target systems (outbox,
//!   queues, retries, dead letters).
//! - [`auth`]: bearer JWTs, SMART scopes, the patient compartment and unit limits.
//! - [`write`]: the one write path: every change to a contract, from any way in, is
//!   checked (access, precondition, merge, rules, nothing lost) and stored here.
//! - [`api`]: the HTTP routers (FHIR, native JSON contract API, health): handlers
//!   translate HTTP to the write path and the store's reads.
//! - [`swedish`]: the contract in Swedish words: dates, times (Europe/Stockholm), labels.
//! - [`config`]: layered settings (defaults < `pkgw.toml` < `PKGW__*` environment).
//! - [`secret`]: values that are never printed (passwords, token secrets).
//! - [`demo`]: the fixture contracts shipped in the binary for `pkgw serve --demo`.
//! - [`ndjson`]: streaming export and import of contracts with their histories.
//! - [`print`]: the contract as a printable Swedish page.
//! - [`samsyn`]: the "7 frågor" samsyn report per unit, as FHIR Parameters and SVG.
//! - [`templates`]: the units' and the region's templates per diagnosis group, which
//!   pre-fill a new contract's draft.
//! - [`generate`]: synthetic contracts for load tests, deterministic by seed.
//! - [`cli`]: the `pkgw` commands (`serve`, `migrate`, `import`, `export`).
//!
//! Dependencies flow one way: `cli` → `api`/`sync` → `write` → `fhir`/`store` → `domain`.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod fhir;
pub mod generate;
pub mod ndjson;
pub mod percent;
pub mod print;
pub mod samsyn;
pub mod secret;
pub mod store;
pub mod swedish;
pub mod sync;
pub mod templates;
pub mod trace;
pub mod write;
