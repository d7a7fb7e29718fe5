//! The membership operations' executor: carries out a plan ([`super::plan`]) step by step,
//! saying each step, through fild's programs ([`Programs`]), the cluster connection
//! ([`Conn`]), the data dir ([`crate::etcd::datadir`]) and the runtime layer. It decides
//! nothing the plan did not; a step that finds its work done says so and goes on.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::describe;
use super::gateway::sync_gateway;
use super::member_api::{
    initial_cluster, member_add, member_remove, promote, same_cluster, verify,
};
use super::plan::{Planned, Step};
use super::{
    CHANGE_BUDGET, FORCE_NEW_CLUSTER, clear_once, learn, take_snapshot, take_snapshot_from,
};
use crate::api::{EtcdMember, EtcdMembers};
use crate::etcd::conn::{self, Conn, Mem, Tls, VERIFY_BUDGET, read_works, retry, wait_healthy};
use crate::etcd::datadir::{copy_aside, move_aside};
use crate::etcd::gate::Gate;
use crate::etcd::poll::poll_until;
use crate::etcd::programs::{Programs, restart, start, stop};
use crate::etcd::quorum::{self, Change};
use crate::etcd::{Say, runtime, steps as marks};

/// What every step of one operation on one member shares.
pub(crate) struct Ctx<'a, P> {
    pub(crate) ctl: &'a P,
    pub(crate) say: Say<'a>,
    pub(crate) local: &'a EtcdMembers,
    pub(crate) me: &'a EtcdMember,
    /// The healthy members a snapshot may come from.
    pub(crate) healthy: &'a [&'a Mem],
    /// The operation, as the runtime layer records who learned a value.
    pub(crate) by: &'a str,
}

/// One operation on one member, before its health check: what [`Op::run`] needs.
pub(crate) struct Op<'a, P> {
    ctl: &'a P,
    say: Say<'a>,
    local: &'a EtcdMembers,
    me: &'a EtcdMember,
    tls: Tls,
    /// The operation, as the runtime layer records who learned a value.
    by: &'a str,
}

impl<'a, P: Programs> Op<'a, P> {
    /// `by` on `me`, with the client TLS files of the members in `local`.
    pub(crate) fn new(
        ctl: &'a P,
        say: Say<'a>,
        local: &'a EtcdMembers,
        me: &'a EtcdMember,
        by: &'a str,
    ) -> Self {
        let tls = Tls::of(local);
        Op {
            ctl,
            say,
            local,
            me,
            tls,
            by,
        }
    }

    /// Ask `others` for their health (until the quorum `change` needs is healthy, or the
    /// settle time is up), plan from it, pass the gate, and carry the plan out through the
    /// healthy ones. `voters`: how many voting members the cluster lists now.
    pub(crate) async fn run(
        &self,
        gate: &Gate,
        voters: usize,
        others: &[&Mem],
        change: Change,
        plan: impl FnOnce(&[bool]) -> Planned,
    ) -> anyhow::Result<()> {
        // An add needs quorum of the cluster as it is (the member joins as a learner).
        let need = match change {
            Change::Add => quorum::quorum_of(others.len()),
            _ => quorum::figures(change, others.len()).quorum,
        };
        let health = conn::settled_health(others, need, &self.tls).await;
        let planned = plan(&health);
        // Removing the member itself is destructive only while it is healthy.
        let removes = planned
            .steps
            .as_ref()
            .is_ok_and(|s| s.iter().any(|s| matches!(s, Step::Remove(_))));
        let me_healthy = removes && conn::healthy(&self.me.client_url, &self.tls).await;
        let healthy = quorum::healthy(others, &health);
        let mut conn = Conn::new(conn::client_urls(&healthy), &self.tls);
        let cx = Ctx {
            ctl: self.ctl,
            say: self.say,
            local: self.local,
            me: self.me,
            healthy: &healthy,
            by: self.by,
        };
        let seen = Seen { voters, me_healthy };
        carry_out(&cx, &mut conn, planned, gate, seen).await
    }
}

/// What the gate weighs besides the steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    /// The voting members the cluster lists now.
    pub(crate) voters: usize,
    /// The member answers its health check.
    pub(crate) me_healthy: bool,
}

/// Say the plan's notes, then its refusal, or its steps: through the gate, then one by one.
pub(crate) async fn carry_out<P: Programs>(
    cx: &Ctx<'_, P>,
    conn: &mut Conn,
    planned: Planned,
    gate: &Gate,
    seen: Seen,
) -> anyhow::Result<()> {
    for n in &planned.notes {
        (cx.say)(n);
    }
    let steps = planned.steps.map_err(anyhow::Error::msg)?;
    let lines = describe::steps(&steps, cx.me, seen.voters, &cx.local.backup_dir);
    let destructive = describe::destructive(&steps, cx.me, seen.me_healthy);
    gate.pass(cx.say, &lines, destructive.as_deref())?;
    run(cx, conn, &steps, &lines).await
}

/// Carry out `steps` in order, each said before (`lines`) and after it runs; the first
/// failure ends the operation (run it again to go on).
pub(crate) async fn run<P: Programs>(
    cx: &Ctx<'_, P>,
    conn: &mut Conn,
    steps: &[Step],
    lines: &[String],
) -> anyhow::Result<()> {
    let (say, me) = (cx.say, cx.me);
    // The member's ID and the member list, once it has joined (or was found joined).
    let mut joined: Option<(u64, Vec<Mem>)> = None;
    let id_of = |joined: &Option<(u64, Vec<Mem>)>| {
        joined
            .as_ref()
            .map(|(id, _)| *id)
            .ok_or_else(|| anyhow!("internal: {} has no member ID yet", me.name))
    };
    let of = steps.len();
    for (i, step) in steps.iter().enumerate() {
        say(&marks::begin(
            i + 1,
            of,
            lines.get(i).map_or("", String::as_str),
        ));
        match step {
            Step::Snapshot => take_snapshot(say, cx.local, cx.healthy).await?,
            Step::SnapshotOwn => {
                take_snapshot_from(say, cx.local, &me.client_url, &me.name).await?
            }
            Step::Stop => stop(cx.ctl, say, &me.program).await?,
            Step::StopPrograms(programs) => {
                for p in programs {
                    stop(cx.ctl, say, p).await?;
                }
            }
            Step::Remove(m) => member_remove(say, conn, m).await?,
            Step::AlreadyRemoved => say(&format!(
                "member remove {}: not in the member list (already removed), skipped",
                me.name
            )),
            Step::MoveAside => move_aside(say, &me.data_dir)?,
            Step::CopyAside => copy_aside(say, &me.data_dir)?,
            Step::AddLearner => joined = Some(member_add(say, conn, me).await?),
            Step::Reuse(m) => {
                if m.started() {
                    say(&format!(
                        "member add {}: it is a started learner already ({:x}), reused with its data dir",
                        me.name, m.id
                    ));
                } else {
                    say(&format!(
                        "member add {}: an unstarted {} with peer URL {} exists ({:x}), reused",
                        me.name,
                        if m.learner { "learner" } else { "member" },
                        me.peer_url,
                        m.id
                    ));
                }
                joined = Some((m.id, conn.list().await.map_err(|e| anyhow!(e))?));
            }
            Step::RecordJoin => {
                let (id, list) = joined
                    .as_ref()
                    .ok_or_else(|| anyhow!("internal: {} has not joined", me.name))?;
                let initial = initial_cluster(list, *id, &me.name);
                let mut changes = vec![("cluster_state", "existing")];
                let same = same_cluster(me.configured_cluster(), &initial);
                if same {
                    say(&format!(
                        "initial_cluster: the settings already name the cluster {} joins",
                        me.name
                    ));
                } else {
                    changes.push(("initial_cluster", &initial));
                }
                learn(say, &me.env_file, &me.runtime_file, &changes, cx.by)?;
                if same {
                    // A list an earlier join learned (after a rescue, short of members
                    // re-added since) must not outlive this one.
                    let dropped =
                        runtime::forget_in(&me.env_file, &me.runtime_file, &["initial_cluster"])
                            .map_err(|e| anyhow!(e))?;
                    if !dropped.is_empty() {
                        say(&format!(
                            "runtime {}: the initial_cluster an earlier operation learned dropped",
                            me.runtime_file
                        ));
                    }
                }
            }
            Step::RecordExisting => learn(
                say,
                &me.env_file,
                &me.runtime_file,
                &[("cluster_state", "existing")],
                cx.by,
            )?,
            Step::ClearOnce => clear_once(me)?,
            Step::Start => start(cx.ctl, say, &me.program).await?,
            Step::Restart => restart(cx.ctl, say, &me.program).await?,
            Step::Promote => {
                let id = id_of(&joined)?;
                let learner = joined
                    .as_ref()
                    .is_some_and(|(_, l)| l.iter().any(|m| m.id == id && m.learner));
                if learner {
                    promote(say, conn, id, &me.name).await?;
                }
            }
            Step::Verify => verify(say, conn, id_of(&joined)?, me).await?,
            Step::UpdatePeer { id, from, to } => {
                say(&format!(
                    "member update {} ({id:x}): peer URLs {} -> {to}",
                    me.name,
                    from.join(",")
                ));
                let (id, urls) = (*id, vec![to.clone()]);
                retry(say, "member update", CHANGE_BUDGET, conn, |mut c| {
                    let urls = urls.clone();
                    async move { c.member_update(id, urls).await.map(|_| ()) }
                })
                .await?;
            }
            Step::PeerAlready { id, to } => say(&format!(
                "member update {id:x}: peer URL already {to}, skipped"
            )),
            Step::RecordPeer { to } => rewrite_peer_url(say, cx.local, me, to)?,
            Step::VerifyMoved { id, to } => verify_moved(cx, conn, *id, to).await?,
            Step::ForceNewCluster { id } => force_new_cluster(cx, conn, *id).await?,
            Step::WaitHealthy => wait_healthy(say, &me.name, &me.client_url, conn.tls()).await?,
            Step::RemoveZombies { id } => {
                super::rescue::remove_zombies(me, *id, conn.tls(), say).await?
            }
            Step::SyncGateway => sync_gateway(cx.ctl, say, conn).await?,
            // The step's own line said it already (the plan's line is the note).
            Step::Note(n) => {
                if lines.get(i) != Some(n) {
                    say(n)
                }
            }
        }
        say(&marks::done(i + 1, of));
    }
    Ok(())
}

/// After a move: the cluster lists the member at its new peer URL, and it serves.
async fn verify_moved<P: Programs>(
    cx: &Ctx<'_, P>,
    conn: &mut Conn,
    id: u64,
    to: &str,
) -> anyhow::Result<()> {
    let me = cx.me;
    (cx.say)(&format!("verify {}: healthy at {to}", me.name));
    let tls = conn.tls().clone();
    let moved = async || {
        let listed = conn
            .list()
            .await
            .ok()
            .and_then(|l| l.into_iter().find(|m| m.id == id));
        let ok_list = listed
            .as_ref()
            .is_some_and(|m| m.peer_urls == [to.to_string()] && m.started());
        (ok_list
            && conn::healthy(&me.client_url, &tls).await
            && read_works(&me.client_url, &tls).await)
            .then_some(())
            .ok_or(())
    };
    if poll_until(VERIFY_BUDGET, Duration::from_millis(500), moved)
        .await
        .is_err()
    {
        bail!(
            "{} did not come up healthy at {to} within {VERIFY_BUDGET:?} (see its log: filc tail {} stderr)",
            me.name,
            me.program
        );
    }
    Ok(())
}

/// Start the member once with `--force-new-cluster` (a next-start flag the launcher uses up)
/// and wait until it serves as a one-member cluster; the flag never outlives this step.
async fn force_new_cluster<P: Programs>(
    cx: &Ctx<'_, P>,
    conn: &mut Conn,
    id: u64,
) -> anyhow::Result<()> {
    let (say, me) = (cx.say, cx.me);
    say(&format!(
        "runtime {}: {FORCE_NEW_CLUSTER} for the next start only (the launcher uses it up)",
        me.runtime_file
    ));
    runtime::set_once(
        Path::new(&me.runtime_file),
        Path::new(&me.env_file),
        &[FORCE_NEW_CLUSTER],
        cx.by,
    )
    .map_err(|e| anyhow!(e))?;
    let forced = async {
        start(cx.ctl, say, &me.program).await?;
        say(&format!(
            "wait for {} to serve as a one-member cluster",
            me.name
        ));
        wait_alone(conn, id, &me.client_url).await
    }
    .await;
    // Used up by the start; cleared here too in case that start never reached etcd.
    clear_once(me)?;
    if let Err(e) = forced {
        let _ = stop(cx.ctl, say, &me.program).await;
        return Err(e);
    }
    Ok(())
}

/// After `--force-new-cluster`: the member serves and is the only voting member.
pub(crate) async fn wait_alone(conn: &mut Conn, id: u64, client_url: &str) -> anyhow::Result<()> {
    let tls = conn.tls().clone();
    let alone = async || {
        let alone = conn
            .list()
            .await
            .is_ok_and(|l| l.len() == 1 && l[0].id == id);
        if alone && conn::healthy(client_url, &tls).await {
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

/// Record the new peer URL in the member's runtime layer (and the listen URL unless the
/// settings file derives it from `$peer_url`), and its entry in every local member's initial
/// cluster.
pub(crate) fn rewrite_peer_url(
    say: Say<'_>,
    local: &EtcdMembers,
    me: &EtcdMember,
    peer_url: &str,
) -> anyhow::Result<()> {
    let what = format!("filc etcd move {}", me.program);
    let text =
        std::fs::read_to_string(&me.env_file).with_context(|| format!("read {}", me.env_file))?;
    let raw = crate::etcd::envfile::raw_lines(&text);
    let mut changes: Vec<(&str, String)> = Vec::new();
    if me.peer_url != peer_url {
        changes.push(("peer_url", peer_url.to_string()));
    }
    // listen_peer_urls follows peer_url when it is written as `$peer_url`; else set it.
    if !raw
        .get("listen_peer_urls")
        .is_some_and(|v| v.contains("$peer_url") || v.contains("${peer_url}"))
    {
        changes.push(("listen_peer_urls", peer_url.to_string()));
    }
    let old_entry = format!("{}={}", me.name, me.peer_url);
    let new_entry = format!("{}={peer_url}", me.name);
    for m in &local.members {
        let ic: Vec<String> = m
            .initial_cluster
            .split(',')
            .map(|e| {
                if e.trim() == old_entry {
                    new_entry.clone()
                } else {
                    e.to_string()
                }
            })
            .collect();
        let ic = ic.join(",");
        if ic == m.initial_cluster {
            continue;
        }
        if m.program == me.program {
            changes.push(("initial_cluster", ic));
        } else {
            learn(
                say,
                &m.env_file,
                &m.runtime_file,
                &[("initial_cluster", &ic)],
                &what,
            )?;
        }
    }
    if changes.is_empty() {
        say(&format!("{}: already says {peer_url}", me.program));
        return Ok(());
    }
    let refs: Vec<(&str, &str)> = changes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    learn(say, &me.env_file, &me.runtime_file, &refs, &what)
}
