//! Adding and removing one member at a time, never below quorum.

use std::path::Path;

use anyhow::bail;

use super::describe;
use super::exec::Op;
use super::plan;
use super::*;
use crate::etcd::Say;
use crate::etcd::conn::cluster_list;
use crate::etcd::gate::Gate;
use crate::etcd::programs::Programs;
use crate::etcd::programs::{find_local, members};
use crate::etcd::quorum::Change;

/// Add a configured member that is not in the cluster yet (learner, then promote).
pub async fn add(
    ctl: &impl Programs,
    program: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd add {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    if !Path::new(&me.env_file).is_file() {
        bail!(
            "{what}: {program} is not configured: its env file {} does not exist. Nothing changed.",
            me.env_file
        );
    }
    if let Some(why) = plan::gateway_port_clash(&local, &me) {
        bail!("{what}: {why}");
    }
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let voters = plan::other_voters(&list, &me);
    let op = Op::new(ctl, say, &local, &me, &what);
    op.run(gate, describe::voters(&list), &voters, Change::Add, |h| {
        plan::add(&me, &list, h)
    })
    .await
    .within(&what)?;
    say(&format!("add {program}: done"));
    Ok(())
}

/// Remove a member from the cluster, stop it, move its data dir aside.
pub async fn remove(
    ctl: &impl Programs,
    program: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd remove {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    let list = cluster_list(&local, None).await.within(&what)?;
    let others = plan::other_voters(&list, &me);
    let op = Op::new(ctl, say, &local, &me, &what);
    op.run(
        gate,
        describe::voters(&list),
        &others,
        Change::Remove,
        |h| plan::remove(&me, &list, h),
    )
    .await
    .within(&what)?;
    say(&format!(
        "remove {program}: done (to bring it back: filc etcd add {program})"
    ));
    Ok(())
}
