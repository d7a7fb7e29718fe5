//! Recovery mode two: a member gets a fresh data dir and a new member ID.

use anyhow::bail;

use super::gateway::sync_gateway;
use super::rejoin::rejoin;
use super::*;
use crate::control::client::Client;
use crate::etcd::Say;
use crate::etcd::conn::{Conn, Mem, client_urls, cluster_list, settled_health};
use crate::etcd::programs::{find_local, members};
use crate::etcd::quorum::{self, Change, Verdict, describe_unhealthy, refuse_other_change};

/// Recovery mode two: give `program`'s member a fresh data dir and a new member ID.
pub async fn replace(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd replace {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;
    say(&format!(
        "replace {program}: member {}, peer URL {}, data dir {}",
        me.name, me.peer_url, me.data_dir
    ));
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let mine = list.iter().find(|m| m.is(&me)).cloned();
    refuse_other_change(&list, &me).within(&what)?;
    // The others must hold quorum of the cluster the member belongs (or will belong) to.
    let others: Vec<&Mem> = list.iter().filter(|m| m.voter() && !m.is(&me)).collect();
    let f = quorum::figures(Change::Replace, others.len());
    if quorum::verdict(Change::Replace, f, 0) == Verdict::OnlyVoter {
        bail!(
            "{what}: refused: {} is the only voting member; there is nothing to copy its data from (use filc etcd restore or rescue). Nothing changed.",
            me.name
        );
    }
    let health = settled_health(&others, f.quorum).await;
    let healthy = quorum::healthy(&others, &health);
    let (size, quorum) = (f.size, f.quorum);
    say(&format!(
        "check quorum: {} of {} other voting members healthy, quorum of {size} is {quorum}",
        healthy.len(),
        others.len()
    ));
    if quorum::verdict(Change::Replace, f, healthy.len()) == Verdict::NoQuorum {
        bail!(
            "{what}: refused: the other members do not hold quorum on their own ({} of {} healthy, quorum {quorum}: {}). Nothing changed.",
            healthy.len(),
            others.len(),
            describe_unhealthy(&others, &health)
        );
    }
    let urls = client_urls(&healthy);
    take_snapshot(say, &local, &healthy).await.within(&what)?;
    let mut conn = Conn::new(urls);
    rejoin(ctl, say, &mut conn, &me, mine, true, &what)
        .await
        .within(&what)?;
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("replace {program}: done"));
    Ok(())
}
