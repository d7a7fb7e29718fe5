//! An operation request to the operation's code, run with the supervisor's [`Handle`] as
//! its way to the programs.

use std::path::{Path, PathBuf};

use crate::api::{EtcdOpKind, EtcdOpRequest};
use crate::etcd::cluster_lock::{self, Holder};
use crate::etcd::conn::{Tls, endpoints};
use crate::etcd::gate::Gate;
use crate::etcd::{Say, backup, backup_restore, defrag, guard, membership, programs, upgrade};
use crate::supervisor::Handle;

/// Run `req` (operation `id`) under the cluster-wide lock it needs; what it produced (a
/// snapshot's path), if anything.
pub(super) async fn run(
    ctl: &Handle,
    id: u64,
    req: &EtcdOpRequest,
    say: Say<'_>,
) -> anyhow::Result<Option<String>> {
    let need = cluster_lock::need(&req.kind, req.dry_run, req.force);
    let lock = if need == cluster_lock::Need::None {
        None
    } else {
        let local = programs::members(ctl).await?;
        let holder = Holder::here(id, req.kind.title());
        cluster_lock::take(need, &endpoints(&local), &Tls::of(&local), &holder, say).await?
    };
    let out = carry_out(ctl, id, req, say).await;
    if let Some(held) = lock {
        held.release().await;
    }
    out
}

async fn carry_out(
    ctl: &Handle,
    id: u64,
    req: &EtcdOpRequest,
    say: Say<'_>,
) -> anyhow::Result<Option<String>> {
    let gate = Gate {
        dry_run: req.dry_run,
        yes: req.yes,
        confirm: req.confirm.clone(),
    };
    match &req.kind {
        EtcdOpKind::Replace { program } => membership::replace(ctl, program, &gate, say).await?,
        EtcdOpKind::Add { program } => membership::add(ctl, program, &gate, say).await?,
        EtcdOpKind::Remove { program } => membership::remove(ctl, program, &gate, say).await?,
        EtcdOpKind::Move { program, peer_url } => {
            membership::move_peer(ctl, program, peer_url, &gate, say).await?
        }
        EtcdOpKind::Rescue {
            program,
            assume_down,
            allow_behind,
        } => {
            let allow = membership::Allow {
                assume_down: assume_down.clone(),
                allow_behind: *allow_behind,
            };
            membership::rescue(ctl, program, &allow, &gate, say).await?
        }
        EtcdOpKind::Snapshot { dir } => {
            let path = backup::snapshot(ctl, dir.as_ref().map(PathBuf::from), &gate, say).await?;
            return Ok(Some(path.display().to_string()));
        }
        EtcdOpKind::Restore { snapshot } => {
            backup_restore::restore(ctl, Path::new(snapshot), &gate, req.force, say).await?
        }
        EtcdOpKind::Defrag => defrag::defrag(ctl, &gate, say).await?,
        EtcdOpKind::Rolling {
            names,
            force,
            reload,
        } => guard::rolling_op(ctl, names.clone(), *force, *reload, say).await?,
        EtcdOpKind::Upgrade {
            to,
            allow_known_bad,
            step,
        } => upgrade::upgrade(ctl, id, to, *allow_known_bad, step.as_ref(), &gate, say).await?,
        EtcdOpKind::UpgradeBack { program } => upgrade::back(ctl, program, &gate, say).await?,
    }
    Ok(None)
}
