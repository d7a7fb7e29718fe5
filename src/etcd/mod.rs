//! etcd cluster operations.
//!
//! fild knows every member's configuration (the kit's env files, see [`members`]) and
//! process; this module asks the cluster itself (through `etcd-client`) and drives the
//! programs through [`programs::Programs`]. The operations run inside fild ([`ops`]), one at
//! a time and journaled; filc starts them and follows what they say.
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
//! - [`restore_plan`]: what a restore would do and lose, said before it changes anything.
//! - [`restore_tool`]: which tool restores for a member, never one older than the snapshot's
//!   writer.
//! - [`guard`]: the quorum guard on stop/restart, and rolling restarts.
//! - [`liveness`]: restarts of members that stopped answering.
//! - [`metrics`]: fild's periodic view of the cluster that `GET /metrics` reports.
//! - [`defrag`]: `filc etcd defrag`, with NOSPACE recovery.
//! - [`child`]: a helper command (etcdctl, etcdutl) run inside fild, whose loop reaps it.
//! - [`gate`]: the plan said, then a dry run's stop or a destructive step's confirmation.
//! - [`steps`]: how plans and steps are said, and read back from a journal.
//! - [`ops`]: operations run inside fild, one at a time, journaled, followed by clients.
//! - [`peers`]: the other hosts' filds (`[cluster]`): their operations, their data positions.

/// Where an operation reports each step as it runs.
pub type Say<'a> = &'a dyn Fn(&str);

pub mod adopt;
pub mod backup;
pub mod backup_copies;
pub mod backup_restore;
pub mod backup_turn;
pub mod binary_probe;
pub mod bolt;
pub mod child;
pub mod cluster;
pub mod cluster_lock;
pub mod conn;
pub mod datadir;
pub mod defrag;
pub mod envfile;
pub mod errors;
pub mod gate;
pub mod guard;
pub mod health;
pub mod launch;
pub mod liveness;
pub mod members;
pub mod membership;
pub mod metrics;
pub mod names;
pub mod ops;
pub mod peers;
pub mod poll;
pub mod private;
pub mod programs;
pub mod quorum;
pub mod releases;
pub mod restore_plan;
pub mod restore_tool;
pub mod runtime;
pub mod settings;
pub mod show;
pub mod snapshot;
pub mod steps;
pub mod upgrade;
pub mod upgrade_plan;

/// The supervisor's reload guard: the quorum guard over what a reload stops or restarts,
/// which holds changed members back for a rolling reload, run as one of `ops`.
pub fn reload_guard(ops: ops::Ops) -> crate::supervisor::ReloadGuard {
    use crate::control::server::OpsHook;
    std::sync::Arc::new(move |handle, stops| {
        let ops = ops.clone();
        Box::pin(async move {
            let busy = ops
                .list()
                .into_iter()
                .find(|o| o.state == crate::api::EtcdOpState::Running)
                .map(|o| format!("operation {} ({}) is running", o.id, o.title));
            let start: guard::StartRollingReload = Box::new(move |names| {
                ops.begin(crate::api::EtcdOpRequest {
                    kind: crate::api::EtcdOpKind::Rolling {
                        names,
                        force: false,
                        reload: true,
                    },
                    dry_run: false,
                    yes: true,
                    confirm: None,
                    force: false,
                })
                .map(|op| op.id)
                .map_err(|e| e.error)
            });
            guard::reload_check(&handle, stops, busy, start).await
        })
    })
}

/// The supervisor's stop order: at shutdown the etcd leader is stopped after the others.
pub fn stop_order() -> crate::supervisor::StopOrder {
    std::sync::Arc::new(|handle| Box::pin(async move { guard::leaders(&handle).await }))
}

/// The hooks the control server runs for etcd: the quorum guard in front of start, stop and
/// restart, the members view ([`members::collect`]) and the operations ([`ops::Ops`]).
/// `daemon` hands them to the server.
pub fn hooks(ops: ops::Ops) -> crate::control::server::EtcdHooks {
    use std::sync::Arc;
    crate::control::server::EtcdHooks {
        action: {
            let ops = ops.clone();
            Arc::new(move |handle, op, names, force| {
                let ops = ops.clone();
                Box::pin(async move {
                    let start = move |names: Vec<String>, force: bool| {
                        crate::control::server::OpsHook::begin(
                            &ops,
                            crate::api::EtcdOpRequest {
                                kind: crate::api::EtcdOpKind::Rolling {
                                    names,
                                    force,
                                    reload: false,
                                },
                                dry_run: false,
                                yes: true,
                                confirm: None,
                                force,
                            },
                        )
                        .map(|op| op.id)
                    };
                    let r = guard::action(&handle, &start, op, names, force).await;
                    metrics::nudge();
                    r
                })
            })
        },
        members: Arc::new(|view| Box::pin(members::collect_off_loop(view))),
        signal: Arc::new(|handle, req| {
            Box::pin(async move {
                let r = guard::signal(&handle, req).await;
                metrics::nudge();
                r
            })
        }),
        ops: Arc::new(ops),
        positions: Arc::new(|view| Box::pin(peers::local_positions(view))),
        backups: Arc::new(|view, here| Box::pin(backup_copies::host_backups(view, here))),
        backup_file: Arc::new(|view, name| Box::pin(backup_copies::backup_file(view, name))),
        metrics: Arc::new(metrics::current),
    }
}
