//! Liveness: fild's own check that every RUNNING member still answers (a Maintenance status
//! call, not `/health`, which is false during a NOSPACE alarm); a member silent for longer
//! than `[etcd] liveness_window` is restarted, one member at a time, under the quorum guard's
//! lock ([`super::guard::MEMBER_OPS`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::cluster::{self, ClusterStatus, MemberStatus};
use super::conn;
use super::guard::{MEMBER_OPS, run_action, up, view};
use super::members;
use crate::api::{EtcdMembers, ProcessState, SignalRequest};
use crate::supervisor::{ErrorKind, Handle, Request, UserOp};

/// Whether a member answers a Maintenance status call within `timeout`. Unlike `/health`
/// this holds during a NOSPACE alarm and without quorum, so it tells a hung (or stopped)
/// process from a cluster problem a restart would not fix.
pub async fn answers(client_url: &str, tls: &conn::Tls, timeout: Duration) -> bool {
    let url = client_url.to_string();
    let fut = async move {
        let mut c = conn::connect_with(&url, tls, timeout, timeout).await.ok()?;
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

/// How often liveness checks this host's names for the members against the cluster's
/// ([`super::names`]); a new finding goes to fild's log once.
const NAMES_EVERY: Duration = Duration::from_secs(600);

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
///
/// Once a window it also adds to this host's gateway the voting members it lacks
/// ([`super::membership::add_missing_gateway_endpoints`]); a host that runs only a gateway
/// runs this loop for that alone.
pub async fn liveness(handle: Handle) {
    let mut silent: HashMap<String, Silent> = HashMap::new();
    // Programs (and their pid) that have answered at least once since their current start.
    let mut answered: HashMap<String, u32> = HashMap::new();
    let mut applied = handle.config_applied();
    // When this host's names for the members were last checked, and what that said.
    let mut names: Option<(Instant, Vec<String>)> = None;
    // When this host's gateway was last checked for voting members it lacks.
    let mut gateway_checked: Option<Instant> = None;
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
        if window.is_zero() || (local.members.is_empty() && local.gateway.is_none()) {
            silent.clear();
            // Nothing to watch until a reload changes the configuration: no polling.
            if applied.changed().await.is_err() {
                return;
            }
            continue;
        }
        let every = (window / 6).max(Duration::from_secs(1));
        let timeout = every
            .saturating_mul(2)
            .clamp(Duration::from_secs(2), Duration::from_secs(5));
        let round = Instant::now();

        let running: Vec<_> = local
            .members
            .iter()
            .filter(|m| m.state == ProcessState::Running && m.pid != 0 && !m.client_url.is_empty())
            .cloned()
            .collect();
        silent.retain(|p, s| running.iter().any(|m| m.program == *p && m.pid == s.pid));
        answered.retain(|p, pid| running.iter().any(|m| m.program == *p && m.pid == *pid));
        let tls = conn::Tls::of(&local);
        let mut set = tokio::task::JoinSet::new();
        for m in &running {
            let m = m.clone();
            let tls = tls.clone();
            set.spawn(async move {
                let ok = answers(&m.client_url, &tls, timeout).await;
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

        if !answered.is_empty()
            && names
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() > NAMES_EVERY)
        {
            let st = cluster::status(&local).await;
            let found = super::names::check(&local, &st).await;
            let said = names.map(|(_, w)| w).unwrap_or_default();
            for w in found.iter().filter(|w| !said.contains(w)) {
                tracing::warn!("etcd names: {w}");
            }
            names = Some((Instant::now(), found));
        }

        // Once a window: a member re-added through another host (after a rescue) is added
        // to this host's gateway, which only this host's operations would otherwise sync.
        if local.gateway.is_some() && gateway_checked.is_none_or(|at| at.elapsed() >= window) {
            gateway_checked = Some(Instant::now());
            match super::membership::add_missing_gateway_endpoints(&handle, &local, &tls).await {
                Ok(added) if !added.is_empty() => tracing::info!(
                    "etcd gateway: added the members' endpoints it lacked: {}",
                    added.join(", ")
                ),
                Ok(_) => {}
                Err(e) => tracing::debug!("etcd gateway not checked: {e:#}"),
            }
        }

        let due = silent
            .iter()
            .filter(|(_, s)| s.probes >= 2 && s.since.elapsed() > window)
            .min_by_key(|(_, s)| s.since)
            .map(|(p, s)| (p.clone(), s.pid, s.since.elapsed()));
        if let Some((program, pid, for_how_long)) = due {
            let was_ready = answered.get(&program) == Some(&pid);
            let st = cluster::status(&local).await;
            let go = restart_silent_member(&st, &program, was_ready);
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

/// Whether liveness restarts `program`, silent past the window: yes when it answered
/// before in this run (it hung), or when the others hold quorum without it; never while it
/// is a learner (a joining member receiving a large snapshot can stay silent for longer than
/// the window, holds no vote, and the operation that added it has its own deadline).
pub(crate) fn restart_silent_member(st: &ClusterStatus, program: &str, was_ready: bool) -> bool {
    let mine = |r: &&MemberStatus| r.program.as_deref() == Some(program);
    if st.members.iter().filter(mine).any(|r| r.learner) {
        tracing::debug!(program = %program, "etcd member is a learner catching up; liveness leaves it alone.");
        return false;
    }
    let others_up = st
        .members
        .iter()
        .filter(|r| r.program.as_deref() != Some(program) && up(st, r))
        .count();
    was_ready || (st.voters > 0 && others_up >= st.quorum)
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
                force: true,
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
    let tls = conn::Tls::of(local);
    // An explicit loop, as in wait_cluster_healthy (a Send future in fild's tasks).
    let end = crate::supervisor::state::deadline(
        Instant::now(),
        window.saturating_mul(2).max(Duration::from_secs(60)),
    );
    while Instant::now() < end {
        let running = view(handle).await.ok().is_some_and(|v| {
            v.programs
                .iter()
                .any(|p| p.spec.name == program && p.state == ProcessState::Running)
        });
        if running && answers(&url, &tls, Duration::from_secs(2)).await {
            tracing::info!(program = %program, "etcd member answers again after its liveness restart.");
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(program = %program, "etcd member still does not answer after its liveness restart.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::cluster::fixtures::{cluster, learner, row};

    #[test]
    fn a_silent_learner_is_never_restarted() {
        let st = cluster(vec![
            row("etcd-0", true, false),
            row("etcd-1", true, false),
            learner("etcd-2"),
        ]);
        assert!(!restart_silent_member(&st, "etcd-2", false));
        assert!(!restart_silent_member(&st, "etcd-2", true));
    }

    #[test]
    fn a_hung_voter_is_restarted_when_it_answered_before_or_quorum_holds_without_it() {
        let st = cluster(vec![
            row("etcd-0", true, false),
            row("etcd-1", true, false),
            row("etcd-2", false, false),
        ]);
        assert!(
            restart_silent_member(&st, "etcd-2", false),
            "quorum holds without it"
        );
        let st = cluster(vec![
            row("etcd-0", true, false),
            row("etcd-1", false, false),
            row("etcd-2", false, false),
        ]);
        assert!(
            !restart_silent_member(&st, "etcd-2", false),
            "no quorum, never answered"
        );
        assert!(
            restart_silent_member(&st, "etcd-2", true),
            "it answered before: hung"
        );
    }
}
