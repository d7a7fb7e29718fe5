//! The quorum guard on stop/restart, and rolling restarts.
//!
//! - [`action`]: the control server's stop/restart path. Without `force`, a stop or restart
//!   that would leave fewer healthy voting members than quorum is refused (HTTP 409). A
//!   restart naming two or more members is rolling: one member at a time, followers first,
//!   the leader last, waiting for the whole cluster to be healthy after each.
//!
//! Member operations (guarded stops and restarts, rolling restarts, liveness restarts) are
//! serialised by one lock, so two requests cannot each pass the guard and together break
//! quorum.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cluster::{self, ClusterStatus, MemberStatus};
use super::{Say, members, steps};
use crate::api::{ActionReply, ActionResult, EtcdMembers, ProcessState, SignalRequest};
use crate::supervisor::{
    ApiError, ErrorKind, Handle, ProgramsView, ReloadStops, ReloadVerdict, Request, UserOp,
};

/// How long a rolling restart waits for the cluster to be healthy after each member.
pub const ROLLING_WAIT: Duration = Duration::from_secs(60);

/// One member operation at a time (guard check + action, rolling restart, liveness restart).
pub(crate) static MEMBER_OPS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- the quorum guard ---------------------------------------------------------------------

/// Whether a voting member counts as up: `/health` true, or, while an alarm is raised (which
/// turns `/health` false everywhere), its own status answered and a leader is known.
pub(crate) fn up(st: &ClusterStatus, r: &MemberStatus) -> bool {
    if r.id.is_none() || r.learner {
        return false;
    }
    let alarmed = st.members.iter().any(|m| !m.alarms.is_empty());
    r.healthy || (alarmed && r.raft_term > 0 && st.leader.is_some())
}

/// Voting members up now.
pub(crate) fn up_count(st: &ClusterStatus) -> usize {
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

/// The programs among `names` that are etcd members fild runs.
fn member_targets(local: &EtcdMembers, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| local.members.iter().any(|m| &m.program == *n))
        .cloned()
        .collect()
}

pub(crate) async fn view(handle: &Handle) -> Result<ProgramsView, ApiError> {
    handle.call(|reply| Request::Programs { reply }).await
}

pub(crate) async fn run_action(
    handle: &Handle,
    op: UserOp,
    names: Vec<String>,
) -> Result<ActionReply, ApiError> {
    handle
        .call(|reply| Request::Action { op, names, reply })
        .await
}

/// Starts a rolling restart as an etcd operation (its ID), or refuses while one runs.
pub type StartRolling = dyn Fn(Vec<String>, bool) -> Result<u64, ApiError> + Send + Sync;

/// The control server's stop/restart: guard, rolling restart (started as an operation, see
/// [`rolling_op`]), or straight through.
pub async fn action(
    handle: &Handle,
    start_rolling: &StartRolling,
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
    let targets = member_targets(&local, &resolved);
    let several = targets.len() >= 2;
    if targets.is_empty() || (force && !several) {
        return run_action(handle, op, names).await;
    }
    if op == UserOp::Restart && several {
        let id = start_rolling(names, force)?;
        return Ok(ActionReply {
            results: Vec::new(),
            op: Some(id),
        });
    }
    let _lock = MEMBER_OPS.lock().await;
    let st = cluster::status(&local).await;
    let verb = if op == UserOp::Stop {
        "stopping"
    } else {
        "restarting"
    };
    if !force && let Err(msg) = check(&st, &targets, verb) {
        tracing::warn!(programs = ?targets, "{msg}");
        return Err(refusal(msg, &st));
    }
    if op == UserOp::Stop && several {
        return stop_leader_last(handle, &st, &resolved, &targets).await;
    }
    run_action(handle, op, names).await
}

/// `filc signal`: a signal to running etcd members is guarded like a stop (etcd ends on the
/// signals it does not handle), unless forced.
pub async fn signal(handle: &Handle, req: SignalRequest) -> Result<ActionReply, ApiError> {
    let forward = |req: SignalRequest| async move {
        handle.call(|reply| Request::Signal { req, reply }).await
    };
    // SIGCONT only resumes a process: never a loss.
    let resumes = crate::config::parse_signal(&req.signal).is_ok_and(|s| s == libc::SIGCONT);
    if req.force || resumes {
        return forward(req).await;
    }
    let Ok(v) = view(handle).await else {
        return forward(req).await;
    };
    let Ok(resolved) = v.resolve(&req.names) else {
        return forward(req).await;
    };
    let local = members::collect_off_loop(v).await;
    let targets = member_targets(&local, &resolved);
    if targets.is_empty() {
        return forward(req).await;
    }
    let _lock = MEMBER_OPS.lock().await;
    let st = cluster::status(&local).await;
    if let Err(msg) = check(&st, &targets, &format!("sending {} to", req.signal)) {
        tracing::warn!(programs = ?targets, "{msg}");
        return Err(refusal(msg, &st));
    }
    forward(req).await
}

/// The running local members that lead now: the programs to stop after the others.
pub async fn leaders(handle: &Handle) -> Vec<String> {
    let Ok(v) = view(handle).await else {
        return Vec::new();
    };
    let local = members::collect_off_loop(v).await;
    if local.members.iter().filter(|m| m.pid != 0).count() < 2 {
        return Vec::new();
    }
    let st = cluster::status(&local).await;
    leader_of(&st).into_iter().collect()
}

/// Stop `resolved`, the leader among `targets` after the others: stopped together, the
/// leader hands leadership to members that are exiting and waits seconds for each.
async fn stop_leader_last(
    handle: &Handle,
    st: &ClusterStatus,
    resolved: &[String],
    targets: &[String],
) -> Result<ActionReply, ApiError> {
    let leader = leader_of(st).filter(|l| targets.contains(l));
    let Some(leader) = leader else {
        return run_action(handle, UserOp::Stop, resolved.to_vec()).await;
    };
    let first: Vec<String> = resolved.iter().filter(|n| **n != leader).cloned().collect();
    let mut results = Vec::new();
    if !first.is_empty() {
        results.extend(run_action(handle, UserOp::Stop, first).await?.results);
    }
    results.extend(
        run_action(handle, UserOp::Stop, vec![leader])
            .await?
            .results,
    );
    results.sort_by_key(|r| resolved.iter().position(|n| *n == r.name));
    Ok(ActionReply { results, op: None })
}

/// Starts a rolling reload of these members as an etcd operation (its ID), or says why not.
pub type StartRollingReload = Box<dyn FnOnce(Vec<String>) -> Result<u64, String> + Send>;

/// The reload guard over what a reload stops or restarts among the running programs: refuse
/// a reload whose stops would leave fewer than quorum up, and hold the changed members back
/// for a rolling reload (`start`, run once the rest is applied) per [`reload_plan`].
/// `busy` names the etcd operation running now, if any: a reload that would roll waits for
/// none (the roll holds [`MEMBER_OPS`] throughout), it is refused.
pub async fn reload_check(
    handle: &Handle,
    stops: ReloadStops,
    busy: Option<String>,
    start: StartRollingReload,
) -> Result<ReloadVerdict, String> {
    let Ok(v) = view(handle).await else {
        return Ok(ReloadVerdict::default());
    };
    let local = members::collect_off_loop(v).await;
    let removed = member_targets(&local, &stops.removed);
    let changed = member_targets(&local, &stops.changed);
    if removed.is_empty() && changed.is_empty() {
        return Ok(ReloadVerdict::default());
    }
    if !changed.is_empty()
        && let Some(busy) = busy
    {
        return Err(format!(
            "{busy}; the changed etcd members ({}) restart one at a time as an operation of \
             their own, one operation at a time: reload once it ended",
            changed.join(", ")
        ));
    }
    let _lock = MEMBER_OPS.lock().await;
    let st = cluster::status(&local).await;
    let hold = reload_plan(&st, &removed, &changed).map_err(|msg| {
        tracing::warn!(removed = ?removed, changed = ?changed, "{msg}");
        format!("{msg} (filc reload --force); etcd: {}", st.summary())
    })?;
    if hold.is_empty() {
        return Ok(ReloadVerdict::default());
    }
    let names = hold.clone();
    Ok(ReloadVerdict {
        hold,
        then: Some(Box::new(move || start(names))),
    })
}

/// What a reload does with the running members it stops (`removed`) or restarts
/// (`changed`): refused when the removed ones cost quorum; otherwise the changed ones to
/// hold for a rolling reload (one at a time, down members first, the leader last, each
/// healthy and caught up before the next; each checked against quorum at its turn). A
/// cluster of one voting member (or none answering) cannot keep quorum through a roll: its
/// changed members restart at once when the guard lets them, as before rolls.
pub(crate) fn reload_plan(
    st: &ClusterStatus,
    removed: &[String],
    changed: &[String],
) -> Result<Vec<String>, String> {
    const VERB: &str = "a reload that stops or restarts";
    check(st, removed, VERB)?;
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    if st.voters <= 1 {
        let all: Vec<String> = removed.iter().chain(changed).cloned().collect();
        check(st, &all, VERB)?;
        return Ok(Vec::new());
    }
    Ok(changed.to_vec())
}

/// Wait (bounded, until `end`) until every voting member is up and `program`'s member has
/// caught up: its applied raft index reached the leader's index as it was once the cluster
/// was healthy. Says what it waits for.
pub(crate) async fn wait_ready(
    local: &EtcdMembers,
    program: &str,
    end: Instant,
    say: Say<'_>,
) -> Result<(), String> {
    // An explicit loop, not `poll_until`: this runs in fild's spawned tasks, whose futures
    // must be Send, and an async closure's future cannot yet be proven Send there.
    say("waiting until every voting member is healthy");
    let mut target: Option<u64> = None;
    loop {
        let st = cluster::status(local).await;
        let healthy = st.voters > 0 && up_count(&st) == st.voters;
        if healthy && target.is_none() {
            target = leader_index(&st);
            if let Some(t) = target {
                say(&format!(
                    "waiting until {program} has caught up (its raft applied index at the leader's {t})"
                ));
            }
        }
        if healthy && target.is_some_and(|t| caught_up(&st, program, t)) {
            return Ok(());
        }
        if Instant::now() >= end {
            let lag = match target {
                None => String::new(),
                Some(t) => format!(
                    "; {program} applied {} of the leader's {t}",
                    applied_of(&st, program).unwrap_or(0)
                ),
            };
            return Err(format!("{}{lag}", st.summary()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The leader's raft index (with no leader row, the highest index any member said).
pub(crate) fn leader_index(st: &ClusterStatus) -> Option<u64> {
    st.members
        .iter()
        .find(|r| r.leader)
        .or_else(|| st.members.iter().max_by_key(|r| r.raft_index))
        .map(|r| r.raft_index)
}

/// What a member has applied: its applied index, or its raft index from an etcd whose status
/// does not report the applied one (0).
fn applied(r: &MemberStatus) -> u64 {
    if r.raft_applied_index > 0 {
        r.raft_applied_index
    } else {
        r.raft_index
    }
}

fn applied_of(st: &ClusterStatus, program: &str) -> Option<u64> {
    st.members
        .iter()
        .find(|r| r.program.as_deref() == Some(program))
        .map(applied)
}

/// Whether `program`'s member is up and has applied the raft log up to `target`. A member
/// this fild does not run, or the cluster not listing it, is not caught up.
pub(crate) fn caught_up(st: &ClusterStatus, program: &str, target: u64) -> bool {
    st.members
        .iter()
        .find(|r| r.program.as_deref() == Some(program))
        .is_some_and(|r| up(st, r) && applied(r) >= target)
}

/// The program of the member that leads now.
fn leader_of(st: &ClusterStatus) -> Option<String> {
    st.members
        .iter()
        .find(|r| r.leader)
        .and_then(|r| r.program.clone())
}

/// A rolling restart's order: down members first (restarting them can only help), then
/// followers, the leader last.
pub(crate) fn rolling_order(st: &ClusterStatus, targets: &[String]) -> Vec<String> {
    let rank = |p: &String| -> u8 {
        let row = st.members.iter().find(|r| r.program.as_ref() == Some(p));
        match row {
            Some(r) if r.leader => 2,
            Some(r) if up(st, r) => 1,
            _ => 0,
        }
    };
    let mut order: Vec<String> = targets.to_vec();
    order.sort_by_key(|p| rank(p));
    order
}

/// Which of the remaining members goes next: the first that is not the current leader
/// (leadership may have moved since the order was made), unless only the leader is left.
pub(crate) fn next_rolling(order: &[String], leader: Option<&str>) -> usize {
    order
        .iter()
        .position(|p| Some(p.as_str()) != leader)
        .unwrap_or(0)
}

/// The rolling restart operation: `names` as typed; fails when a member was not restarted.
/// `reload`: a reload's held members, each taking its new settings as it restarts.
pub(crate) async fn rolling_op(
    handle: &Handle,
    names: Vec<String>,
    force: bool,
    reload: bool,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let v = view(handle).await.map_err(|e| anyhow::anyhow!(e.error))?;
    let resolved = v
        .resolve(&names)
        .map_err(|unknown| anyhow::anyhow!("no such process: {}", unknown.join(", ")))?;
    let local = members::collect_off_loop(v).await;
    let targets = member_targets(&local, &resolved);
    let _lock = MEMBER_OPS.lock().await;
    let how = Roll { force, reload };
    let (r, stopped, untouched) = rolling(handle, &local, &resolved, &targets, how, say)
        .await
        .map_err(|e| anyhow::anyhow!(e.error))?;
    let failed: Vec<&str> = r
        .results
        .iter()
        .filter(|a| !a.ok)
        .map(|a| a.name.as_str())
        .collect();
    match stopped {
        None if failed.is_empty() => Ok(()),
        None => anyhow::bail!("not restarted: {}", failed.join(", ")),
        Some(why) if reload => {
            let left = if untouched.is_empty() {
                String::new()
            } else {
                format!("; still on their old settings: {}", untouched.join(", "))
            };
            anyhow::bail!(
                "the rolling reload stopped: {why}{left} (fix what stopped it, then filc reload again)"
            )
        }
        Some(why) if failed.is_empty() => anyhow::bail!("{why}"),
        Some(why) => anyhow::bail!("{why}; not restarted: {}", failed.join(", ")),
    }
}

/// How a roll goes: past the quorum check (`force`), and whether each member takes the
/// applied configuration's settings as it restarts (`reload`).
#[derive(Debug, Clone, Copy)]
struct Roll {
    force: bool,
    reload: bool,
}

/// A restart's outcome for one program, as `filc restart` prints it.
fn outcome(a: &ActionResult) -> String {
    if a.ok {
        format!("{}: {}", a.name, a.message)
    } else {
        format!("{}: ERROR ({})", a.name, a.message)
    }
}

/// Restart `targets` one member at a time (followers first, leader last), waiting after
/// each until the cluster is healthy and the member caught up, saying each step as it
/// happens; the other names in `resolved` are restarted first, as one ordinary restart. A
/// member that does not come back stops the roll: the rest are left as they are.
async fn rolling(
    handle: &Handle,
    local: &EtcdMembers,
    resolved: &[String],
    targets: &[String],
    how: Roll,
    say: Say<'_>,
) -> Result<(ActionReply, Option<String>, Vec<String>), ApiError> {
    let force = how.force;
    // The members the roll left untouched.
    let mut untouched: Vec<String> = Vec::new();
    let mut results: BTreeMap<String, ActionResult> = BTreeMap::new();
    let others: Vec<String> = resolved
        .iter()
        .filter(|n| !targets.contains(n))
        .cloned()
        .collect();
    if !others.is_empty() {
        let r = run_action(handle, UserOp::Restart, others).await?;
        for a in r.results {
            say(&outcome(&a));
            results.insert(a.name.clone(), a);
        }
    }

    let st = cluster::status(local).await;
    let mut order = rolling_order(&st, targets);
    let kind = if how.reload {
        "Rolling reload"
    } else {
        "Rolling restart"
    };
    tracing::info!(order = ?order, leader = ?leader_of(&st), "{kind} of etcd members.");
    say(&format!("cluster: {}", st.summary()));
    let of = order.len();
    for (i, p) in order.iter().enumerate() {
        let leader = leader_of(&st).as_deref() == Some(p.as_str());
        let what = format!(
            "restart {p}{}{}, then wait until every voting member is healthy and {p} caught up",
            if how.reload {
                " on its new settings"
            } else {
                ""
            },
            if leader { " (the leader, last)" } else { "" }
        );
        say(&steps::planned(i + 1, of, &what));
    }
    let mut index = 0;

    let mut stop_reason: Option<String> = None;
    let mut current = st;
    while !order.is_empty() {
        let p = order.remove(next_rolling(&order, leader_of(&current).as_deref()));
        if let Some(why) = &stop_reason {
            let left = if how.reload {
                "not restarted, still on its old settings"
            } else {
                "not restarted"
            };
            say(&format!("{p}: {left}"));
            untouched.push(p.clone());
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
            say(&format!("{p}: ERROR ({msg})"));
            stop_reason = Some(msg.clone());
            untouched.push(p.clone());
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
        tracing::info!(program = %p, "{kind}: restarting this member.");
        index += 1;
        say(&steps::begin(index, of, &format!("restart {p}")));
        let names = vec![p.clone()];
        let r = if how.reload {
            handle.call(|reply| Request::Apply { names, reply }).await?
        } else {
            run_action(handle, UserOp::Restart, names).await?
        };
        let mut ok = true;
        for a in r.results {
            ok &= a.ok;
            say(&outcome(&a));
            results.insert(a.name.clone(), a);
        }
        if !ok {
            let why = format!("{p} did not start (its log: filc tail {p} stderr)");
            tracing::warn!("{kind}: {why}; the members not yet restarted are left as they are.");
            say(&format!("stopped: {why}"));
            stop_reason = Some(why);
            current = cluster::status(local).await;
            continue;
        }
        // After each member, the last one too: the roll ends with the cluster healthy.
        match wait_ready(local, &p, Instant::now() + ROLLING_WAIT, say).await {
            Ok(()) => say(&steps::done(index, of)),
            Err(summary) => {
                let why = format!(
                    "{p} was not healthy and caught up within {} s of its restart ({summary})",
                    ROLLING_WAIT.as_secs()
                );
                tracing::warn!("{kind}: {why}.");
                say(&format!("stopped: {why}"));
                if !force || order.is_empty() {
                    stop_reason = Some(why);
                }
            }
        }
        current = cluster::status(local).await;
    }
    let reply = ActionReply {
        results: resolved.iter().filter_map(|n| results.remove(n)).collect(),
        op: None,
    };
    Ok((reply, stop_reason, untouched))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::cluster::fixtures::{cluster, row};

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

    #[test]
    fn rolling_restarts_go_down_members_first_and_the_leader_last() {
        let mut down = row("etcd-1", false, false);
        down.raft_term = 0;
        let st = cluster(vec![
            row("etcd-0", true, true),
            down,
            row("etcd-2", true, false),
        ]);
        let order = rolling_order(&st, &names(&["etcd-0", "etcd-1", "etcd-2"]));
        assert_eq!(order, names(&["etcd-1", "etcd-2", "etcd-0"]));
        // Leadership moved to etcd-2 meanwhile: etcd-0 goes before it.
        let rest = names(&["etcd-2", "etcd-0"]);
        assert_eq!(next_rolling(&rest, Some("etcd-2")), 1);
        assert_eq!(next_rolling(&rest, None), 0);
        assert_eq!(next_rolling(&names(&["etcd-2"]), Some("etcd-2")), 0);
    }

    #[test]
    fn a_reload_rolls_changed_members_and_guards_removed_ones() {
        let st = cluster(vec![
            row("etcd-0", true, true),
            row("etcd-1", true, false),
            row("etcd-2", true, false),
        ]);
        let all = names(&["etcd-0", "etcd-1", "etcd-2"]);
        // Every member changed: all held for the roll, nothing refused.
        assert_eq!(reload_plan(&st, &[], &all), Ok(all.clone()));
        // One changed member rolls too (one path for every change).
        assert_eq!(
            reload_plan(&st, &[], &names(&["etcd-1"])),
            Ok(names(&["etcd-1"]))
        );
        // Nothing changed among the members: nothing held.
        assert_eq!(reload_plan(&st, &[], &[]), Ok(vec![]));
        // Removed members keep the guard: two of three gone is refused, whatever changes.
        let e = reload_plan(&st, &names(&["etcd-0", "etcd-1"]), &names(&["etcd-2"])).unwrap_err();
        assert!(e.contains("below quorum 2"), "{e}");
        assert_eq!(
            reload_plan(&st, &names(&["etcd-0"]), &names(&["etcd-2"])),
            Ok(names(&["etcd-2"]))
        );
        // A member that is down while the others change: held too (the roll takes it first).
        let mut down = row("etcd-1", false, false);
        down.raft_term = 0;
        let st2 = cluster(vec![
            row("etcd-0", true, true),
            down,
            row("etcd-2", true, false),
        ]);
        assert_eq!(reload_plan(&st2, &[], &all), Ok(all.clone()));
    }

    #[test]
    fn a_cluster_of_one_restarts_at_once_when_the_guard_lets_it() {
        let one = cluster(vec![row("etcd-0", true, true)]);
        let e = reload_plan(&one, &[], &names(&["etcd-0"])).unwrap_err();
        assert!(e.contains("below quorum 1"), "{e}");
        let mut down = row("etcd-0", false, false);
        down.raft_term = 0;
        let one_down = cluster(vec![down]);
        assert_eq!(reload_plan(&one_down, &[], &names(&["etcd-0"])), Ok(vec![]));
    }

    #[test]
    fn caught_up_means_up_and_applied_to_the_leaders_index() {
        let mut rows = vec![
            row("etcd-0", true, true),
            row("etcd-1", true, false),
            row("etcd-2", false, false),
        ];
        rows[0].raft_index = 120;
        rows[1].raft_applied_index = 119;
        rows[2].raft_applied_index = 500;
        rows[2].raft_term = 0;
        let st = cluster(rows);
        assert_eq!(leader_index(&st), Some(120));
        assert!(!caught_up(&st, "etcd-1", 120));
        assert!(caught_up(&st, "etcd-1", 119));
        // Down: not caught up, whatever it applied before.
        assert!(!caught_up(&st, "etcd-2", 120));
        assert!(!caught_up(&st, "etcd-9", 0));
        // No leader row: the highest index said; no applied index said: the raft index.
        let mut rows = vec![row("a", true, false), row("b", true, false)];
        rows[0].raft_index = 7;
        rows[1].raft_index = 9;
        let st = cluster(rows);
        assert_eq!(leader_index(&st), Some(9));
        assert!(caught_up(&st, "b", 9) && !caught_up(&st, "a", 9));
        assert_eq!(leader_index(&cluster(vec![])), None);
    }
}
