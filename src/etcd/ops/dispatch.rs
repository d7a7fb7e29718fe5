//! An operation request to the operation's code, run with the supervisor's [`Handle`] as
//! its way to the programs.

use std::path::{Path, PathBuf};

use crate::api::{EtcdOpKind, EtcdOpRequest};
use crate::etcd::gate::Gate;
use crate::etcd::{Say, backup, backup_restore, defrag, guard, membership};
use crate::supervisor::Handle;

/// Run `req`; what it produced (a snapshot's path), if anything.
pub(super) async fn run(
    ctl: &Handle,
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
        EtcdOpKind::Rolling { names, force } => {
            guard::rolling_op(ctl, names.clone(), *force, say).await?
        }
    }
    Ok(None)
}
