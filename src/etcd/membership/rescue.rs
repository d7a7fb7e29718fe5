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

/// What a rescue request allows beyond the plain case.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// `--assume-down NAME`: members that answer nothing, taken as down.
    pub assume_down: Vec<String>,
    /// `--allow-behind`: keep a survivor whose data is behind another member's.
    pub allow_behind: bool,
}

/// Ask every other member of `list` directly (a status call on its client URL, its peer
/// listener), and the data positions: the survivor's own, the other local members', and the
/// other hosts' members' from their filds (`[cluster]`).
#[allow(clippy::too_many_arguments)]
async fn check_others(
    local: &EtcdMembers,
    me: &EtcdMember,
    list: &[Mem],
    mine: &Mem,
    cluster: Option<&crate::config::ClusterSettings>,
    allow: &Allow,
    gate: &Gate,
    say: Say<'_>,
) -> plan::Checks {
    use crate::etcd::conn::{peer_answers, self_status};
    use crate::etcd::peers;
    let tls = Tls::of(local);
    let others: Vec<Mem> = list.iter().filter(|m| m.id != mine.id).cloned().collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in others.iter().enumerate() {
        let client = m.client_urls.first().cloned();
        let peer = m.peer_urls.first().cloned();
        let tls = tls.clone();
        set.spawn(async move {
            let st = match &client {
                Some(u) => self_status(u, &tls).await,
                None => Err("no client URL (never started)".to_string()),
            };
            let answer = match st {
                Ok(s) if s.leader != 0 => plan::Answer::Leader(s.leader),
                Ok(_) => plan::Answer::NoLeader,
                Err(e) => match &peer {
                    Some(p) if peer_answers(p).await => plan::Answer::PeerOnly(e),
                    _ => plan::Answer::Nothing(e),
                },
            };
            (i, answer)
        });
    }
    let mut answers = vec![plan::Answer::Nothing(String::new()); others.len()];
    while let Some(Ok((i, a))) = set.join_next().await {
        answers[i] = a;
    }
    // Data positions: this host's members, then every other host's.
    let here = peers::positions_of(local).await;
    let remote = match cluster {
        Some(c) => peers::positions(c).await,
        None => Vec::new(),
    };
    for r in &remote {
        if let Err(e) = &r.answer {
            say(&format!(
                "host {} ({}) did not answer for its members' data positions: {e}",
                r.host, r.url
            ));
        }
    }
    let my_revision = here
        .members
        .iter()
        .find(|p| p.program == me.program)
        .and_then(|p| p.revision);
    let others = others
        .iter()
        .zip(answers)
        .map(|(m, answer)| {
            let mut o = plan::Other {
                name: m.label(),
                client_url: m.client_urls.first().cloned().unwrap_or_default(),
                answer,
                revision: None,
                from: if cluster.is_some() {
                    "no fild that answered runs it".to_string()
                } else {
                    "not run here, and no [cluster] names the other hosts' filds".to_string()
                },
                program: None,
                host: None,
                down_here: None,
            };
            if let Some(l) = local.members.iter().find(|l| m.is(l))
                && !is_up(l.state)
                && l.pid == 0
            {
                o.down_here = Some(format!(
                    "its program {} is {} on this host",
                    l.program,
                    l.state.as_str()
                ));
            }
            if let Some(p) = here.members.iter().find(|p| p.name == m.name) {
                o.revision = p.revision;
                o.program = Some(p.program.clone());
                o.from = format!("this host: {}", p.error.as_deref().unwrap_or(&p.source));
            }
            for r in &remote {
                if let Ok(pos) = &r.answer
                    && let Some(p) = pos.members.iter().find(|p| p.name == m.name)
                {
                    o.revision = p.revision;
                    o.program = Some(p.program.clone());
                    o.host = Some(r.host.clone());
                    o.from = format!(
                        "host {}'s fild: {}",
                        r.host,
                        p.error.as_deref().unwrap_or(&p.source)
                    );
                }
            }
            o
        })
        .collect();
    plan::Checks {
        others,
        my_revision,
        assume_down: allow.assume_down.clone(),
        allow_behind: allow.allow_behind,
        yes: gate.yes,
        dry_run: gate.dry_run,
        command: format!("filc etcd rescue {}", me.program),
    }
}

/// After the forced start the cluster is `me` (member `id`) alone. Releases before 3.5.22 (and
/// 3.4) can leave other members listed, "zombie members" that would count towards quorum:
/// remove them, and check that none is left.
pub(super) async fn remove_zombies(
    me: &EtcdMember,
    id: u64,
    tls: &Tls,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let mut conn = Conn::new(vec![me.client_url.clone()], tls);
    let list = conn.list().await.map_err(|e| anyhow!(e))?;
    let left = plan::zombies(&list, id);
    if left.is_empty() {
        say(&format!(
            "member list: {} alone, as forced (no zombie members)",
            me.name
        ));
        return Ok(());
    }
    let known = crate::etcd::releases::parse(&me.etcd_version)
        .is_ok_and(crate::etcd::releases::needs_zombie_check);
    say(&format!(
        "member list after the forced start still names {}: zombie members{}; removing them",
        left.iter()
            .map(|m| format!("{} ({:x})", m.label(), m.id))
            .collect::<Vec<_>>()
            .join(", "),
        if known {
            format!(
                " (etcd {} is known to leave them; fixed in 3.5.22)",
                me.etcd_version
            )
        } else {
            String::new()
        }
    ));
    for m in left.into_iter().cloned().collect::<Vec<_>>() {
        super::member_api::member_remove(say, &mut conn, &m).await?;
    }
    let list = conn.list().await.map_err(|e| anyhow!(e))?;
    let still = plan::zombies(&list, id);
    if !still.is_empty() {
        bail!(
            "the member list still names {} after removing them: remove each by hand (etcdctl member remove ID) before re-adding members",
            still
                .iter()
                .map(|m| format!("{:x}", m.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Quorum lost for good: restart `program` (whose data is good) alone with
/// `--force-new-cluster` once, then without, then re-add the other local members one at a
/// time as in replace.
///
/// Before it forces, it asks every other member of the survivor's list directly (client and
/// peer URLs) and every other host's fild (`[cluster]`: their operations, their members'
/// data positions): see [`plan::rescue`] for what that refuses.
pub async fn rescue(
    ctl: &impl Programs,
    program: &str,
    allow: &Allow,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd rescue {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program, &what).within(&what)?;
    let tls = Tls::of(&local);
    let cluster = ctl.cluster().await;

    // One operation without quorum at a time, across the hosts too.
    crate::etcd::peers::refuse_if_busy(cluster.as_ref(), say, |_| true)
        .await
        .within(&what)?;

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
            let why = if started_here {
                " (etcd 3.4 serves clients only once it joined a cluster with a leader: a member started after quorum was lost never answers; rescue from a member still running, if one is)"
            } else {
                ""
            };
            bail!(
                "{what}: {} does not answer at {} ({e:#}){why}; its data may be damaged too: {RESTORE_INSTEAD}",
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
    let checks = check_others(
        &local,
        &me,
        &list,
        &mine,
        cluster.as_ref(),
        allow,
        gate,
        say,
    )
    .await;
    let planned = plan::rescue(&local, &me, &list, &mine, &health, &checks);
    if let Err(why) = &planned.steps
        && started_here
    {
        // Refused: the survivor started only to be asked goes back to stopped.
        for n in &planned.notes {
            say(n);
        }
        let _ = stop(ctl, say, &me.program).await;
        bail!("{what}: {why}");
    }
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
