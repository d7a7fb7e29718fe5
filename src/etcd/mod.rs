//! etcd cluster operations.
//!
//! fild knows every member's configuration (the kit's env files, see [`members`]) and
//! process; this module asks the cluster itself (through `etcd-client`) and drives the
//! programs through the same control API a person uses with filc, so every operation obeys
//! the same rules and shows up in the same logs.
//!
//! - [`envfile`]: read and rewrite the member env files without a shell.
//! - [`members`]: which programs are members or the gateway.
//! - [`cluster`]: membership, status, health, alarms and the verdict.
//! - [`snapshot`]: take and verify snapshots.
//! - [`membership`]: replace, add, remove, move, rescue.
//! - [`backup`]: on-demand and scheduled snapshots, listing, restore.
//! - [`backup_restore`]: restoring a snapshot into a new cluster (recovery mode three).
//! - [`guard`]: quorum guard, rolling restart, liveness, defrag.

pub mod backup;
pub mod backup_restore;
pub mod cluster;
pub mod envfile;
pub mod guard;
pub mod members;
pub mod membership;
pub mod snapshot;
