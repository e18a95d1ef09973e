//! Sync: every accepted change reaches the systems that should have it — EHRs and portals
//! configured as `[[targets]]` — reliably, in order per contract, once, and never back to
//! the system it came from.
//!
//! The path of a change: the store writes an outbox row in the same transaction as the
//! version; the [`Engine`]'s dispatcher moves the row into the queue of every target that
//! should have it (by responsible unit and contract; not the change's origin); each
//! target's worker claims due contracts and delivers their current version
//! ([`deliver`]). Superseded versions coalesce in the queue; failures are retried with
//! backoff for as long as it takes ([`retry`]), or, when the target refuses a change for
//! good, kept as dead letters that `pkgw sync replay` queues again.

mod client;
pub mod deliver;
mod engine;
pub mod notify;
pub mod outbound;
pub mod pull;
pub mod retry;
pub mod settings;
pub mod verify;

pub use engine::{Counters, DeliveryLatency, Engine, TargetLabel};
pub use settings::{
    AuthSettings, Mode, SyncSettings, Target, TargetSettings, WriteBy, targets_from_settings,
};
