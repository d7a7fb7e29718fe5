//! Guards and care: the quorum guard on stop/restart, rolling restarts, liveness restarts
//! of hung members, and defragmentation with NOSPACE recovery.
//!
//! - [`action`]: the control server's stop/restart path. Without `force`, a stop or restart
//!   that would leave fewer healthy voting members than quorum is refused (HTTP 409). A
//!   restart naming two or more members is rolling: one member at a time, followers first,
//!   the leader last, waiting for the whole cluster to be healthy after each.
//! - [`liveness`]: fild's own check that every RUNNING member still answers (a Maintenance
//!   status call, not `/health`, which is false during a NOSPACE alarm); a member silent for
//!   longer than `[etcd] liveness_window` is restarted, one member at a time.
//! - [`defrag`]: `filc etcd defrag`: compact, defragment member by member (leader last),
//!   disarm NOSPACE, verify a put.
//!
//! Member operations (guarded stops and restarts, rolling restarts, liveness restarts) are
//! serialised by one lock, so two requests cannot each pass the guard and together break
//! quorum.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, CompactionOptions};

use super::Say;
use super::cluster::{self, ClusterStatus, MemberStatus};
use super::conn;
use super::errors;
use super::members;
use crate::api::{ActionReply, ActionResult, EtcdMembers, ProcessState, SignalRequest};
use crate::control::client::Client;
use crate::supervisor::{ApiError, ErrorKind, Handle, ProgramsView, Request, UserOp};

/// How long a rolling restart waits for the cluster to be healthy after each member.
pub const ROLLING_WAIT: Duration = Duration::from_secs(60);

/// One member operation at a time (guard check + action, rolling restart, liveness restart).
static MEMBER_OPS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- the quorum guard ---------------------------------------------------------------------

/// Whether a voting member counts as up: `/health` true, or, while an alarm is raised (which
/// turns `/health` false everywhere), its own status answered and a leader is known.
fn up(st: &ClusterStatus, r: &MemberStatus) -> bool {
    if r.id.is_none() || r.learner {
        return false;
    }
    let alarmed = st.members.iter().any(|m| !m.alarms.is_empty());
    r.healthy || (alarmed && r.raft_term > 0 && st.leader.is_some())
}

/// Voting members up now.
fn up_count(st: &ClusterStatus) -> usize {
    st.members.iter().filter(|r| up(st, r)).count()
}

/// Refuse (with the message for the person) when taking `programs` down would leave fewer
/// voting members up than quorum. Taking down members that are already down costs nothing.
pub fn check(st: &ClusterStatus, programs: &[String], verb: &str) -> Result<(), String> {
    let now = up_count(st);
    let lost = st
        .members
        .iter()
        .filter(|r| up(st, r))
        .filter(|r| r.program.as_ref().is_some_and(|p| programs.contains(p)))
        .count();
    if lost == 0 {
        return Ok(());
    }
    let left = now - lost;
    if left >= st.quorum {
        return Ok(());
    }
    Err(format!(
        "refused: {verb} {} would leave {left} of {} voting members healthy, below quorum {} \
         (now {now} healthy); add --force to do it anyway",
        programs.join(", "),
        st.voters,
        st.quorum,
    ))
}

fn refusal(msg: String, st: &ClusterStatus) -> ApiError {
    let mut e = ApiError::new(ErrorKind::Refused, msg);
    e.details.push(format!("etcd: {}", st.summary()));
    e
}

async fn view(handle: &Handle) -> Result<ProgramsView, ApiError> {
    handle.call(|reply| Request::Programs { reply }).await
}

async fn run_action(
    handle: &Handle,
    op: UserOp,
    names: Vec<String>,
) -> Result<ActionReply, ApiError> {
    handle
        .call(|reply| Request::Action { op, names, reply })
        .await
}

/// The control server's stop/restart: guard, rolling restart, or straight through.
pub async fn action(
    handle: &Handle,
    op: UserOp,
    names: Vec<String>,
    force: bool,
) -> Result<ActionReply, ApiError> {
    if op == UserOp::Start {
        return run_action(handle, op, names).await;
    }
    let Ok(v) = view(handle).await else {
        return run_action(handle, op, names).await;
    };
    // Unknown names: let the supervisor answer, exactly as it always does.
    let Ok(resolved) = v.resolve(&names) else {
        return run_action(handle, op, names).await;
    };
    let local = members::collect_off_loop(v.clone()).await;
    let targets: Vec<String> = resolved
        .iter()
        .filter(|n| local.members.iter().any(|m| m.program == **n))
        .cloned()
        .collect();
    if targets.is_empty() || (force && !(op == UserOp::Restart && targets.len() >= 2)) {
        return run_action(handle, op, names).await;
    }
    let _lock = MEMBER_OPS.lock().await;
    if op == UserOp::Restart && targets.len() >= 2 {
        return rolling(handle, &local, &resolved, &targets, force).await;
    }
    let st = cluster::status(&local).await;
    let verb = if op == UserOp::Stop {
        "stopping"
    } else {
        "restarting"
    };
    if let Err(msg) = check(&st, &targets, verb) {
        tracing::warn!(programs = ?targets, "{msg}");
        return Err(refusal(msg, &st));
    }
    run_action(handle, op, names).await
}

/// Wait (bounded) until every voting member is up.
async fn wait_cluster_healthy(local: &EtcdMembers, timeout: Duration) -> Result<(), String> {
    // An explicit loop, not `poll_until`: this runs in fild's spawned tasks, whose futures
    // must be Send, and an async closure's future cannot yet be proven Send there.
    let end = Instant::now() + timeout;
    loop {
        let st = cluster::status(local).await;
        if st.voters > 0 && up_count(&st) == st.voters {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(st.summary());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Restart `targets` one member at a time (followers first, leader last), waiting for the
/// cluster to be healthy after each; the other names in `resolved` are restarted first, as
/// one ordinary restart.
async fn rolling(
    handle: &Handle,
    local: &EtcdMembers,
    resolved: &[String],
    targets: &[String],
    force: bool,
) -> Result<ActionReply, ApiError> {
    let mut results: BTreeMap<String, ActionResult> = BTreeMap::new();
    let others: Vec<String> = resolved
        .iter()
        .filter(|n| !targets.contains(n))
        .cloned()
        .collect();
    if !others.is_empty() {
        let r = run_action(handle, UserOp::Restart, others).await?;
        for a in r.results {
            results.insert(a.name.clone(), a);
        }
    }

    let st = cluster::status(local).await;
    let leader_of = |st: &ClusterStatus| -> Option<String> {
        st.members
            .iter()
            .find(|r| r.leader)
            .and_then(|r| r.program.clone())
    };
    // Down members first (restarting them can only help), then followers, the leader last.
    let rank = |p: &String| -> u8 {
        let row = st.members.iter().find(|r| r.program.as_ref() == Some(p));
        match row {
            Some(r) if r.leader => 2,
            Some(r) if up(&st, r) => 1,
            _ => 0,
        }
    };
    let mut order: Vec<String> = targets.to_vec();
    order.sort_by_key(|p| rank(p));
    tracing::info!(order = ?order, leader = ?leader_of(&st), "Rolling restart of etcd members.");

    let mut stop_reason: Option<String> = None;
    let mut current = st;
    while !order.is_empty() {
        // The first remaining that is not the current leader (unless only the leader is left).
        let leader = leader_of(&current);
        let i = order
            .iter()
            .position(|p| Some(p) != leader.as_ref())
            .unwrap_or(0);
        let p = order.remove(i);
        if let Some(why) = &stop_reason {
            results.insert(
                p.clone(),
                ActionResult {
                    name: p.clone(),
                    ok: false,
                    state: state_of(handle, &p).await,
                    message: format!("not restarted: {why}"),
                },
            );
            continue;
        }
        if !force && let Err(msg) = check(&current, std::slice::from_ref(&p), "restarting") {
            tracing::warn!(program = %p, "{msg}");
            stop_reason = Some(msg.clone());
            results.insert(
                p.clone(),
                ActionResult {
                    name: p.clone(),
                    ok: false,
                    state: state_of(handle, &p).await,
                    message: msg,
                },
            );
            continue;
        }
        tracing::info!(program = %p, "Rolling restart: restarting this member.");
        let r = run_action(handle, UserOp::Restart, vec![p.clone()]).await?;
        let mut ok = true;
        for a in r.results {
            ok &= a.ok;
            results.insert(a.name.clone(), a);
        }
        if !order.is_empty() {
            match wait_cluster_healthy(local, ROLLING_WAIT).await {
                Ok(()) => {}
                Err(summary) => {
                    let why = format!(
                        "the cluster was not healthy within {} s after restarting {p} ({summary})",
                        ROLLING_WAIT.as_secs()
                    );
                    tracing::warn!("Rolling restart: {why}.");
                    if !force || !ok {
                        stop_reason = Some(why);
                    }
                }
            }
            current = cluster::status(local).await;
        }
    }
    Ok(ActionReply {
        results: resolved.iter().filter_map(|n| results.remove(n)).collect(),
    })
}

async fn state_of(handle: &Handle, program: &str) -> ProcessState {
    view(handle)
        .await
        .ok()
        .and_then(|v| {
            v.programs
                .iter()
                .find(|p| p.spec.name == program)
                .map(|p| p.state)
        })
        .unwrap_or(ProcessState::Stopped)
}

// ----- liveness -----------------------------------------------------------------------------

/// Whether a member answers a Maintenance status call within `timeout`. Unlike `/health`
/// this holds during a NOSPACE alarm and without quorum, so it tells a hung (or stopped)
/// process from a cluster problem a restart would not fix.
pub async fn answers(client_url: &str, timeout: Duration) -> bool {
    let url = client_url.to_string();
    let fut = async move {
        let mut c = conn::connect_with(&url, timeout, timeout).await.ok()?;
        c.status().await.ok()
    };
    tokio::time::timeout(timeout, fut)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// A member that stopped answering.
struct Silent {
    pid: u32,
    since: Instant,
    probes: u32,
}

/// fild's liveness check of its members (`[etcd] liveness_window`); runs for fild's life.
///
/// Every `window / 6` (at least 1 s) each RUNNING member is asked for its status. One that
/// has not answered for longer than the window is restarted through the supervisor, one
/// member at a time: the next is considered only once the restarted one runs and answers.
/// A member that never answered since it started (say it waits for peers to form a quorum)
/// is restarted only when the rest of the cluster has quorum, since then it should have
/// joined. Before the restart the member gets SIGCONT: a stopped (SIGSTOPped) etcd cannot
/// act on SIGTERM, so without it the stop would wait stopwaitsecs and SIGKILL; resumed, it
/// shuts down cleanly at once, and a process hung for another reason is not harmed by it.
pub async fn liveness(handle: Handle) {
    let mut silent: HashMap<String, Silent> = HashMap::new();
    // Programs (and their pid) that have answered at least once since their current start.
    let mut answered: HashMap<String, u32> = HashMap::new();
    let mut applied = handle.config_applied();
    loop {
        let v = match view(&handle).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::Unavailable => return,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let window = v.etcd.liveness_window;
        let local = members::collect_off_loop(v.clone()).await;
        if window.is_zero() || local.members.is_empty() {
            silent.clear();
            // Nothing to watch until a reload changes the configuration: no polling.
            if applied.changed().await.is_err() {
                return;
            }
            continue;
        }
        let every = (window / 6).max(Duration::from_secs(1));
        let timeout = (every * 2).clamp(Duration::from_secs(2), Duration::from_secs(5));
        let round = Instant::now();

        let running: Vec<_> = local
            .members
            .iter()
            .filter(|m| m.state == ProcessState::Running && m.pid != 0 && !m.client_url.is_empty())
            .cloned()
            .collect();
        silent.retain(|p, s| running.iter().any(|m| m.program == *p && m.pid == s.pid));
        answered.retain(|p, pid| running.iter().any(|m| m.program == *p && m.pid == *pid));
        let mut set = tokio::task::JoinSet::new();
        for m in &running {
            let m = m.clone();
            set.spawn(async move {
                let ok = answers(&m.client_url, timeout).await;
                (m, ok)
            });
        }
        while let Some(Ok((m, ok))) = set.join_next().await {
            if ok {
                silent.remove(&m.program);
                answered.insert(m.program.clone(), m.pid);
            } else {
                let s = silent.entry(m.program.clone()).or_insert(Silent {
                    pid: m.pid,
                    since: round,
                    probes: 0,
                });
                s.probes += 1;
            }
        }

        let due = silent
            .iter()
            .filter(|(_, s)| s.probes >= 2 && s.since.elapsed() > window)
            .min_by_key(|(_, s)| s.since)
            .map(|(p, s)| (p.clone(), s.pid, s.since.elapsed()));
        if let Some((program, pid, for_how_long)) = due {
            let was_ready = answered.get(&program) == Some(&pid);
            let go = was_ready || {
                let st = cluster::status(&local).await;
                let others_up = st
                    .members
                    .iter()
                    .filter(|r| r.program.as_deref() != Some(program.as_str()) && up(&st, r))
                    .count();
                st.voters > 0 && others_up >= st.quorum
            };
            if go {
                restart_silent(&handle, &local, &program, pid, for_how_long, window).await;
                silent.clear();
                answered.remove(&program);
            } else {
                tracing::debug!(program = %program, "etcd member not answering, but it never has since it started and the cluster has no quorum without it; not restarting.");
            }
        }

        let spent = round.elapsed();
        if spent < every {
            tokio::time::sleep(every - spent).await;
        }
    }
}

async fn restart_silent(
    handle: &Handle,
    local: &EtcdMembers,
    program: &str,
    pid: u32,
    silent_for: Duration,
    window: Duration,
) {
    let _lock = MEMBER_OPS.lock().await;
    // Still the same process, still running? (A person may have acted meanwhile.)
    let Ok(v) = view(handle).await else { return };
    let still = v.programs.iter().any(|p| {
        p.spec.name == program && p.pid == Some(pid as i32) && p.state == ProcessState::Running
    });
    if !still {
        return;
    }
    tracing::warn!(
        program = %program,
        pid,
        silent_secs = silent_for.as_secs(),
        window_secs = window.as_secs(),
        "etcd member has not answered a status request for longer than the liveness window; restarting it."
    );
    let _ = handle
        .call(|reply| Request::Signal {
            req: SignalRequest {
                signal: "CONT".into(),
                names: vec![program.to_string()],
            },
            reply,
        })
        .await;
    match run_action(handle, UserOp::Restart, vec![program.to_string()]).await {
        Ok(r) => {
            for a in &r.results {
                tracing::info!(program = %a.name, ok = a.ok, state = a.state.as_str(), "Liveness restart: {}.", a.message);
            }
        }
        Err(e) => {
            tracing::warn!(program = %program, "Liveness restart failed: {}", e.error);
            return;
        }
    }
    // One member at a time: wait until this one runs and answers before looking at others.
    let url = local
        .members
        .iter()
        .find(|m| m.program == program)
        .map(|m| m.client_url.clone())
        .unwrap_or_default();
    let _budget = (window * 2).max(Duration::from_secs(60));
    // An explicit loop, as in wait_cluster_healthy (a Send future in fild's tasks).
    let end = Instant::now() + (window * 2).max(Duration::from_secs(60));
    while Instant::now() < end {
        let running = view(handle).await.ok().is_some_and(|v| {
            v.programs
                .iter()
                .any(|p| p.spec.name == program && p.state == ProcessState::Running)
        });
        if running && answers(&url, Duration::from_secs(2)).await {
            tracing::info!(program = %program, "etcd member answers again after its liveness restart.");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(program = %program, "etcd member still does not answer after its liveness restart.");
}

// ----- defrag -------------------------------------------------------------------------------

/// How long one member's defragmentation may take (it blocks that member meanwhile).
const DEFRAG_TIMEOUT: Duration = Duration::from_secs(300);

async fn connect_long(url: &str) -> anyhow::Result<etcd_client::Client> {
    conn::connect_with(url, conn::TIMEOUT, DEFRAG_TIMEOUT)
        .await
        .map_err(anyhow::Error::msg)
}

fn alarm_list(st: &ClusterStatus) -> String {
    let mut v: Vec<String> = st
        .members
        .iter()
        .flat_map(|m| m.alarms.iter().map(move |a| format!("{a} on {}", m.name)))
        .collect();
    v.dedup();
    v.join(", ")
}

/// (db size, db size in use) of one member.
async fn sizes(c: &mut etcd_client::Client) -> anyhow::Result<(i64, i64)> {
    let s = c.status().await?;
    Ok((s.db_size(), s.raft_used_db_size()))
}

/// `filc etcd defrag`: compact to the current revision, defragment each member through its
/// own endpoint (followers first, leader last), disarm NOSPACE, verify a put works.
pub async fn defrag(ctl: &Client, say: Say<'_>) -> anyhow::Result<()> {
    let local = super::programs::local_members(ctl)
        .await
        .map_err(|e| anyhow::anyhow!("filc etcd defrag: {e:#}"))?;
    let st = cluster::status(&local).await;
    say(&format!("cluster: {}", st.summary()));
    if st.members.iter().any(|m| !m.alarms.is_empty()) {
        say(&format!(
            "an alarm is raised ({}): /health is false on every member while it lasts; {} of {} voting members answer with a leader",
            alarm_list(&st),
            up_count(&st),
            st.voters
        ));
    }
    // Not st.verdict: under a NOSPACE alarm `/health` is false everywhere, so the verdict
    // says no quorum while the members are up and a leader is known.
    if st.voters == 0 || up_count(&st) < st.quorum {
        anyhow::bail!(
            "filc etcd defrag: the cluster has no quorum; compaction and alarm disarm need one (see `filc etcd status`)"
        );
    }
    let (mut c, via) = conn::connect_any(&conn::endpoints(&local))
        .await
        .map_err(|e| anyhow::anyhow!("filc etcd defrag: no member answers: {e}"))?;

    // 1. Compact to the current revision (physical: wait until it is applied).
    let rev = c
        .get("fild/defrag", None)
        .await?
        .header()
        .map(|h| h.revision())
        .unwrap_or(0);
    say(&format!("current revision {rev} (asked {via})"));
    if rev > 1 {
        match c
            .compact(rev, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => say(&format!("compacted to revision {rev}")),
            Err(e) if errors::classify(&e) == errors::Class::Compacted => {
                say(&format!("already compacted to revision {rev}"))
            }
            Err(e) => anyhow::bail!("filc etcd defrag: compaction to {rev} failed: {e}"),
        }
    }

    // 2. Defragment member by member: down ones are skipped, followers first, leader last.
    let mut rows: Vec<&MemberStatus> = st
        .members
        .iter()
        .filter(|r| r.id.is_some() && !r.client_url.is_empty())
        .collect();
    rows.sort_by_key(|r| r.leader);
    let mut skipped = Vec::new();
    for r in rows {
        let who = format!(
            "{}{} ({})",
            r.name,
            if r.leader { ", leader" } else { "" },
            r.client_url
        );
        let mut m = match connect_long(&r.client_url).await {
            Ok(m) => m,
            Err(e) => {
                say(&format!("skipping {who}: cannot connect: {e}"));
                skipped.push(r.name.clone());
                continue;
            }
        };
        let before = match sizes(&mut m).await {
            Ok(s) => s,
            Err(e) => {
                say(&format!("skipping {who}: it does not answer: {e}"));
                skipped.push(r.name.clone());
                continue;
            }
        };
        say(&format!(
            "defragmenting {who}: db size {} ({} in use)",
            crate::render::size(before.0.max(0) as u64),
            crate::render::size(before.1.max(0) as u64)
        ));
        let t = Instant::now();
        if let Err(e) = m.defragment().await {
            anyhow::bail!("filc etcd defrag: defragmenting {who} failed: {e}");
        }
        let after = sizes(&mut m).await.unwrap_or((0, 0));
        say(&format!(
            "defragmented {who} in {:.1} s: db size {} -> {} ({} in use)",
            t.elapsed().as_secs_f64(),
            crate::render::size(before.0.max(0) as u64),
            crate::render::size(after.0.max(0) as u64),
            crate::render::size(after.1.max(0) as u64)
        ));
    }

    // 3. Disarm NOSPACE (it never clears by itself).
    let alarms = c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await?
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect::<Vec<_>>();
    if alarms.is_empty() {
        say("no alarm raised");
    }
    for (member, kind) in alarms {
        if kind == AlarmType::Nospace {
            let mut opts = AlarmOptions::new();
            opts.with_member(member);
            c.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(opts))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("filc etcd defrag: disarming NOSPACE of {member:x} failed: {e}")
                })?;
            say(&format!("disarmed the NOSPACE alarm of member {member:x}"));
        } else {
            say(&format!(
                "alarm {kind:?} on member {member:x} left alone (not a space alarm)"
            ));
        }
    }

    // 4. Verify a write works.
    let key = "fild/defrag-check";
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    match c.put(key, stamp, None).await {
        Ok(_) => {
            let _ = c.delete(key, None).await;
            say("a test write succeeded");
        }
        Err(e) => anyhow::bail!(
            "filc etcd defrag: a test write still fails: {e}{}",
            if errors::classify(&e) == errors::Class::NoSpace {
                " (the live data exceeds the quota: delete keys, or raise --quota-backend-bytes, then run defrag again)"
            } else {
                ""
            }
        ),
    }
    let st = cluster::status(&local).await;
    say(&format!("cluster: {}", st.summary()));
    if !skipped.is_empty() {
        anyhow::bail!(
            "filc etcd defrag: {} not defragmented (not reachable); run again once it is up",
            skipped.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(program: &str, healthy: bool, leader: bool) -> MemberStatus {
        MemberStatus {
            program: Some(program.into()),
            name: program.into(),
            id: Some(format!("{:x}", program.len())),
            healthy,
            leader,
            raft_term: 2,
            ..Default::default()
        }
    }

    fn cluster(rows: Vec<MemberStatus>) -> ClusterStatus {
        let voters = rows.len();
        ClusterStatus {
            healthy_voters: rows.iter().filter(|r| r.healthy).count(),
            members: rows,
            voters,
            quorum: voters / 2 + 1,
            leader: Some("1".into()),
            verdict: cluster::Verdict::Healthy,
            asked: Some("x".into()),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_of_three_may_go_two_may_not() {
        let st = cluster(vec![
            row("a", true, true),
            row("b", true, false),
            row("c", true, false),
        ]);
        assert!(check(&st, &names(&["a"]), "stopping").is_ok());
        let e = check(&st, &names(&["a", "b"]), "stopping").unwrap_err();
        assert!(e.contains("leave 1 of 3"), "{e}");
        assert!(e.contains("below quorum 2"), "{e}");
        assert!(e.contains("--force"), "{e}");
        // Non-members cost nothing.
        assert!(check(&st, &names(&["gw", "web"]), "stopping").is_ok());
    }

    #[test]
    fn down_members_cost_nothing() {
        let st = cluster(vec![
            row("a", true, true),
            row("b", true, false),
            row("c", false, false),
        ]);
        assert!(check(&st, &names(&["c"]), "stopping").is_ok());
        assert!(check(&st, &names(&["b"]), "restarting").is_err());
    }

    #[test]
    fn alarmed_members_count_as_up() {
        let mut rows = vec![
            row("a", false, true),
            row("b", false, false),
            row("c", false, false),
        ];
        rows[0].alarms = vec!["NOSPACE".into()];
        let st = cluster(rows);
        assert!(check(&st, &names(&["a"]), "stopping").is_ok());
        assert!(check(&st, &names(&["a", "b"]), "stopping").is_err());
    }
}
