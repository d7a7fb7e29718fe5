//! etcd cluster operations.
//!
//! fild knows every member's configuration (the kit's env files, see [`members`]) and
//! process; this module asks the cluster itself (through `etcd-client`) and drives the
//! programs through the same control API a person uses with filc, so every operation obeys
//! the same rules and shows up in the same logs.
//!
//! - [`envfile`]: read the settings files (`key=value`, sh-style expansions) without a shell.
//! - [`settings`]: the one evaluator of a member's or the gateway's settings and argv.
//! - [`runtime`]: what operations learn, layered over the settings files (never written).
//! - [`launch`]: `fild --exec-etcd FILE`, the launcher the kit's `launch.sh` runs.
//! - [`adopt`]: settings files an older fild rewrote, moved into the runtime layer.
//! - [`members`]: which programs are members or the gateway.
//! - [`show`]: `filc etcd show NAME`, one member's settings for a person.
//! - [`cluster`]: membership, status, health, alarms and the verdict.
//! - [`snapshot`]: take and verify snapshots.
//! - [`bolt`]: the revision a snapshot file holds, read from its bbolt pages.
//! - [`private`]: the backup folder 0700 and snapshot files 0600 from their creation.
//! - [`membership`]: replace, add, remove, move, rescue (a file each).
//! - [`conn`]: the operations' etcd connection (failover, retries, health and read checks).
//! - [`quorum`]: quorum arithmetic and the refusals every membership change shares.
//! - [`datadir`]: data dirs moved aside or copied, never deleted.
//! - [`errors`]: etcd errors classified by gRPC code and etcd's own strings (one table).
//! - [`health`]: a member's health in one word (the status table's HEALTH cell).
//! - [`poll`]: `poll_until`, the one bounded wait every etcd wait uses.
//! - [`programs`]: the operations' way to fild's programs (members view, start/stop/restart).
//! - [`backup`]: on-demand and scheduled snapshots, listing, restore.
//! - [`backup_restore`]: restoring a snapshot into a new cluster (recovery mode three).
//! - [`guard`]: the quorum guard on stop/restart, and rolling restarts.
//! - [`liveness`]: restarts of members that stopped answering.
//! - [`defrag`]: `filc etcd defrag`, with NOSPACE recovery.

/// Where an operation reports each step as it runs.
pub type Say<'a> = &'a dyn Fn(&str);

pub mod adopt;
pub mod backup;
pub mod backup_restore;
pub mod bolt;
pub mod cluster;
pub mod conn;
pub mod datadir;
pub mod defrag;
pub mod envfile;
pub mod errors;
pub mod guard;
pub mod health;
pub mod launch;
pub mod liveness;
pub mod members;
pub mod membership;
pub mod poll;
pub mod private;
pub mod programs;
pub mod quorum;
pub mod runtime;
pub mod settings;
pub mod show;
pub mod snapshot;

/// The hooks the control server runs for etcd: the quorum guard in front of start, stop and
/// restart, and the members view ([`members::collect`]). `daemon` hands them to the server.
pub fn hooks() -> crate::control::server::EtcdHooks {
    use std::sync::Arc;
    crate::control::server::EtcdHooks {
        action: Arc::new(|handle, op, names, force| {
            Box::pin(async move { guard::action(&handle, op, names, force).await })
        }),
        members: Arc::new(|view| Box::pin(members::collect_off_loop(view))),
    }
}
