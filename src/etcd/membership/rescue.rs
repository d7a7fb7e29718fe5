//! Quorum lost for good: one survivor restarts with `--force-new-cluster`, once.

use std::time::Duration;

use anyhow::{anyhow, bail};

use super::exec::{Ctx, Seen, carry_out};
use super::plan;
use super::*;
use crate::etcd::Say;
use crate::etcd::backup_restore::RESTORE_INSTEAD;
use crate::etcd::conn::{Conn, Mem, Tls, client_urls, settled_health, wait_list};
use crate::etcd::gate::Gate;
use crate::etcd::programs::Programs;
use crate::etcd::programs::{find_local, is_up, members, start, stop};
use crate::etcd::quorum::quorum_of;

/// Quorum lost for good: restart `program` (whose data is good) alone with
/// `--force-new-cluster` once, then without, then re-add the other local members one at a
/// time as in replace.
pub async fn rescue(
    ctl: &impl Programs,
    program: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd rescue {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    let tls = Tls::of(&local);

    // A next-start flag an interrupted rescue left (its start never came) must never stay.
    if !me.next_start_flags.is_empty() {
        say(&format!(
            "found next-start flags {} left in {} by an interrupted rescue: {}",
            me.next_start_flags.join(" "),
            me.runtime_file,
            if gate.dry_run {
                "a real run removes them"
            } else {
                "removing them"
            }
        ));
        if !gate.dry_run {
            clear_once(&me).within(&what)?;
        }
    }

    // The survivor must run to be asked (member list is served locally, without quorum).
    let started_here = !is_up(me.state);
    if started_here && gate.dry_run {
        say(&crate::etcd::steps::planned(
            1,
            1,
            &format!(
                "start {} to read its member list; what follows depends on what it lists",
                me.program
            ),
        ));
        return Err(crate::etcd::gate::Halt::DryRun.into());
    }
    if started_here {
        start(ctl, say, &me.program).await.within(&what)?;
    }
    let mut own = Conn::new(vec![me.client_url.clone()], &tls);
    let list = match wait_list(&mut own, Duration::from_secs(30)).await {
        Ok(l) => l,
        Err(e) => {
            if started_here {
                let _ = stop(ctl, say, &me.program).await;
            }
            bail!(
                "{what}: {} does not answer at {} ({e:#}); its data may be damaged too: {RESTORE_INSTEAD}",
                me.name,
                me.client_url
            );
        }
    };
    let Some(mine) = plan::mine(&list, &me) else {
        bail!(
            "{what}: {} is not in its own member list (its data is another cluster's, or it was removed): rescue from another survivor (see `filc etcd status`), or {RESTORE_INSTEAD}. Nothing changed.",
            me.name
        );
    };
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
    let health = settled_health(&voters, quorum_of(voters.len()), &tls).await;
    let planned = plan::rescue(&local, &me, &list, &mine, &health);
    let cx = Ctx {
        ctl,
        say,
        local: &local,
        me: &me,
        healthy: &[],
        by: &what,
    };
    let seen = Seen {
        voters: voters.len(),
        me_healthy: false,
    };
    let first = carry_out(&cx, &mut own, planned, gate, seen).await;
    if let Err(e) = &first
        && e.is::<crate::etcd::gate::Halt>()
        && started_here
    {
        // Halted at the gate: the survivor started only to be asked goes back to stopped.
        let _ = stop(ctl, say, &me.program).await;
    }
    first.within(&what)?;
    // The re-adds below were part of what was confirmed.
    let confirmed = Gate {
        yes: true,
        ..Gate::default()
    };

    // Re-add the other local members, one at a time.
    let mut conn = Conn::new(vec![me.client_url.clone()], &tls);
    for other in local.members.iter().filter(|m| m.program != me.program) {
        let list = conn.list().await.map_err(|e| anyhow!("{what}: {e}"))?;
        let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
        let health = if plan::mine(&list, other).is_some_and(|t| t.voter() && t.started()) {
            Vec::new()
        } else {
            settled_health(&voters, voters.len(), &tls).await
        };
        let planned = plan::readd(other, &list, &health);
        let seen = Seen {
            voters: voters.len(),
            me_healthy: false,
        };
        conn = Conn::new(client_urls(&voters), &tls);
        let cx = Ctx { me: other, ..cx };
        carry_out(&cx, &mut conn, planned, &confirmed, seen)
            .await
            .within(&what)?;
    }
    super::gateway::sync_gateway(ctl, say, &mut conn)
        .await
        .within(&what)?;
    say(&format!("rescue {program}: done"));
    Ok(())
}
