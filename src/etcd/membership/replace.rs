//! Recovery mode two: a member gets a fresh data dir and a new member ID.

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

/// Recovery mode two: give `program`'s member a fresh data dir and a new member ID.
pub async fn replace(
    ctl: &impl Programs,
    program: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd replace {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    say(&format!(
        "replace {program}: member {}, peer URL {}, data dir {}",
        me.name, me.peer_url, me.data_dir
    ));
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    // The others must hold quorum of the cluster the member belongs (or will belong) to.
    let others = plan::other_voters(&list, &me);
    let op = Op::new(ctl, say, &local, &me, &what);
    // Not listed as a started voter (a rescue left it out), it only joins: an add.
    let listed = plan::mine(&list, &me).is_some_and(|m| m.voter() && m.started());
    let change = if listed { Change::Replace } else { Change::Add };
    op.run(gate, describe::voters(&list), &others, change, |h| {
        plan::replace(&me, &list, h)
    })
    .await
    .within(&what)?;
    say(&format!("replace {program}: done"));
    Ok(())
}
