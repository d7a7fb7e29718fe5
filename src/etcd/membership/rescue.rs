//! Quorum lost for good: one survivor restarts with `--force-new-cluster`, once.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::gateway::sync_gateway;
use super::rejoin::rejoin;
use super::*;
use crate::control::client::Client;
use crate::etcd::conn::{
    self, Conn, Mem, VERIFY_BUDGET, client_urls, settled_health, wait_healthy, wait_list,
};
use crate::etcd::datadir::copy_aside;
use crate::etcd::poll::poll_until;
use crate::etcd::programs::{find_local, is_up, members, restart, start, stop};
use crate::etcd::quorum::{describe_unhealthy, quorum_of};
use crate::etcd::{Say, runtime};

/// Quorum lost for good: restart `program` (whose data is good) alone with
/// `--force-new-cluster` once, then without, then re-add the other local members one at a
/// time as in replace.
pub async fn rescue(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd rescue {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;

    // A next-start flag an interrupted rescue left (its start never came) must never stay.
    if !me.next_start_flags.is_empty() {
        say(&format!(
            "found next-start flags {} left in {} by an interrupted rescue: removing them",
            me.next_start_flags.join(" "),
            me.runtime_file
        ));
        clear_once(&me).within(&what)?;
    }

    // The survivor must run to be asked (member list is served locally, without quorum).
    let started_here = !is_up(me.state);
    if started_here {
        start(ctl, say, &me.program).await.within(&what)?;
    }
    let mut own = Conn::new(vec![me.client_url.clone()]);
    let list = match wait_list(&mut own, Duration::from_secs(30)).await {
        Ok(l) => l,
        Err(e) => {
            if started_here {
                let _ = stop(ctl, say, &me.program).await;
            }
            bail!(
                "{what}: {} does not answer at {} ({e:#}); its data may be damaged too: use filc etcd restore",
                me.name,
                me.client_url
            );
        }
    };
    let Some(mine) = list.iter().find(|m| m.is(&me)).cloned() else {
        bail!(
            "{what}: {} is not in its own member list. Nothing changed.",
            me.name
        );
    };
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
    let health = settled_health(&voters, quorum_of(voters.len())).await;
    let healthy = health.iter().filter(|h| **h).count();
    let quorum = voters.len() / 2 + 1;
    say(&format!(
        "check quorum: {healthy} of {} voting members healthy, quorum {quorum}",
        voters.len()
    ));
    if healthy >= quorum {
        let me_ok = voters
            .iter()
            .zip(&health)
            .any(|(m, ok)| m.id == mine.id && *ok);
        if !me_ok {
            bail!(
                "{what}: refused: the cluster holds quorum without {}; rescue is for a lost quorum (use filc etcd replace {program}). Nothing changed.",
                me.name
            );
        }
        say("quorum holds: no forced restart needed; re-adding the members that are missing");
    } else {
        // Snapshot from the survivor (served from its local store, no quorum needed).
        take_snapshot_from(say, &local, &me.client_url, &me.name)
            .await
            .within(&what)?;
        for m in &local.members {
            stop(ctl, say, &m.program).await.within(&what)?;
        }
        let remote: Vec<&Mem> = list
            .iter()
            .filter(|m| m.id != mine.id && !local.members.iter().any(|l| m.is(l)))
            .collect();
        if !remote.is_empty() {
            say(&format!(
                "warning: members on other hosts must be stopped before the forced restart: {}",
                remote
                    .iter()
                    .map(|m| m.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        copy_aside(say, &me.data_dir).within(&what)?;
        say(&format!(
            "runtime {}: {FORCE_NEW_CLUSTER} for the next start only (the launcher uses it up)",
            me.runtime_file
        ));
        runtime::set_once(
            Path::new(&me.runtime_file),
            Path::new(&me.env_file),
            &[FORCE_NEW_CLUSTER],
            &what,
        )
        .map_err(|e| anyhow!("{what}: {e}"))?;
        let forced = async {
            start(ctl, say, &me.program).await?;
            say(&format!(
                "wait for {} to serve as a one-member cluster",
                me.name
            ));
            wait_alone(&mut own, mine.id, &me.client_url).await
        }
        .await;
        // Used up by the start; cleared here too in case that start never reached etcd.
        clear_once(&me).within(&what)?;
        if let Err(e) = forced {
            let _ = stop(ctl, say, &me.program).await;
            return Err(anyhow!("{what}: {e:#}"));
        }
        restart(ctl, say, &me.program).await.within(&what)?;
        wait_healthy(say, &me.name, &me.client_url)
            .await
            .within(&what)?;
    }

    // Re-add the other local members, one at a time.
    let mut conn = Conn::new(vec![me.client_url.clone()]);
    for other in local.members.iter().filter(|m| m.program != me.program) {
        let list = conn.list().await.map_err(|e| anyhow!("{what}: {e}"))?;
        let theirs = list.iter().find(|m| m.is(other)).cloned();
        if let Some(t) = &theirs
            && t.voter()
            && t.started()
        {
            say(&format!(
                "{}: {} is a voting member already ({:x}), skipped",
                other.program, other.name, t.id
            ));
            continue;
        }
        let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
        let health = settled_health(&voters, voters.len()).await;
        if health.iter().any(|h| !h) {
            bail!(
                "{what}: stopped before re-adding {}: not every voting member is healthy ({}). Run the command again once they are.",
                other.program,
                describe_unhealthy(&voters, &health)
            );
        }
        say(&format!("re-add {} ({})", other.program, other.name));
        conn = Conn::new(client_urls(&voters));
        rejoin(ctl, say, &mut conn, other, theirs, true, &what)
            .await
            .within(&what)?;
    }
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("rescue {program}: done"));
    Ok(())
}

/// After `--force-new-cluster`: the member serves and is the only voting member.
pub(crate) async fn wait_alone(conn: &mut Conn, id: u64, client_url: &str) -> anyhow::Result<()> {
    let alone = async || {
        let alone = conn
            .list()
            .await
            .is_ok_and(|l| l.len() == 1 && l[0].id == id);
        if alone && conn::healthy(client_url).await {
            return Ok(());
        }
        conn.failed();
        Err(())
    };
    poll_until(VERIFY_BUDGET, Duration::from_millis(500), alone)
        .await
        .map_err(|()| {
            anyhow!("{client_url} did not come up as a one-member cluster within {VERIFY_BUDGET:?}")
        })
}
