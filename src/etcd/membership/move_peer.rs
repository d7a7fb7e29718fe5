//! Recovery mode one: a member keeps its data and ID under a new peer URL.

use anyhow::{anyhow, bail};

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

/// Recovery mode one: the member's data moved to a new address; tell the cluster its new
/// peer URL, record it in the runtime layer, (re)start it.
pub async fn move_peer(
    ctl: &impl Programs,
    program: &str,
    peer_url: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd move {program} --peer-url {peer_url}");
    plan::peer_url_port(peer_url).map_err(|why| anyhow!("{what}: {why}"))?;
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    plan::move_request(&local, &me, peer_url).map_err(|why| anyhow!("{what}: {why}"))?;
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let Some(mine) = plan::moving(&list, &me, peer_url) else {
        bail!(
            "{what}: {} is not in the cluster's member list; use filc etcd add {program}. Nothing changed.",
            me.name
        );
    };
    let others = plan::voters_except(&list, mine.id);
    let change = Change::Move {
        voter: mine.voter(),
    };
    let op = Op::new(ctl, say, &local, &me, &what);
    op.run(gate, describe::voters(&list), &others, change, |h| {
        plan::move_peer(&list, &mine, peer_url, h)
    })
    .await
    .within(&what)?;
    say(&format!("move {program}: done"));
    Ok(())
}
