//! fild's own periodic view of the etcd cluster for `GET /metrics` ([`EtcdFigures`]): a task
//! beside the loop asks the cluster (the status `filc etcd status` shows) every
//! [`REFRESH`], each round bounded by [`ASK_TIMEOUT`], and only while etcd members are
//! configured; the scrape reads the last view ([`current`]) and never waits on etcd.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::cluster::{self, ClusterStatus, Verdict};
use super::{backup, members};
use crate::alert;
use crate::api::{BackupFigures, EtcdFigures, EtcdMember, EtcdMemberFigures, EtcdMembers};
use crate::supervisor::{ErrorKind, Handle, Request};

/// How often the view is refreshed: Prometheus' usual scrape interval.
pub const REFRESH: Duration = Duration::from_secs(15);
/// The most one refresh may take asking the cluster; past it the old view stays.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// After [`nudge`], how soon the view is asked again, for how many rounds: a member that was
/// just started or stopped shows within seconds on the status page, not at the next 15 s.
pub const NUDGED: Duration = Duration::from_secs(2);
const NUDGED_ROUNDS: u32 = 3;

/// Wakes the refresher when a start, stop, restart or signal went to the members.
static NUDGE: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();

fn nudges() -> &'static tokio::sync::Notify {
    NUDGE.get_or_init(tokio::sync::Notify::new)
}

/// Ask the refresher for a round soon, and a few more every [`NUDGED`] (the control hooks
/// call it after an action; a no-op without etcd members).
pub fn nudge() {
    nudges().notify_one();
}

/// The last view (None: no etcd member configured).
static VIEW: Mutex<Option<EtcdFigures>> = Mutex::new(None);

/// The last view, as it is.
pub fn current() -> Option<EtcdFigures> {
    VIEW.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set(v: Option<EtcdFigures>) {
    *VIEW.lock().unwrap_or_else(|e| e.into_inner()) = v;
}

/// etcd's default backend quota, used without `--quota-backend-bytes` (or with 0).
const DEFAULT_QUOTA: u64 = 2 << 30;

/// A local member's `--quota-backend-bytes` from the argv it starts with.
fn argv_quota(m: &EtcdMember) -> u64 {
    let mut it = m.argv.iter();
    while let Some(a) = it.next() {
        let v = if let Some(v) = a.strip_prefix("--quota-backend-bytes=") {
            Some(v.to_string())
        } else if a == "--quota-backend-bytes" {
            it.next().cloned()
        } else {
            None
        };
        if let Some(v) = v {
            return v.parse().ok().filter(|q| *q > 0).unwrap_or(DEFAULT_QUOTA);
        }
    }
    DEFAULT_QUOTA
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Degraded => "degraded",
        Verdict::NoQuorum => "no_quorum",
    }
}

/// The figures of one cluster status (pure).
pub fn figures(st: &ClusterStatus, local: &EtcdMembers, backup: BackupFigures) -> EtcdFigures {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let members = st
        .members
        .iter()
        .map(|r| {
            let here = local
                .members
                .iter()
                .find(|m| Some(&m.program) == r.program.as_ref());
            let quota = if r.db_size_quota > 0 {
                Some(r.db_size_quota as u64)
            } else {
                here.map(argv_quota)
            };
            EtcdMemberFigures {
                name: r.name.clone(),
                program: r.program.clone(),
                healthy: r.healthy,
                leader: r.leader,
                learner: r.learner,
                raft_term: r.raft_term,
                raft_index: r.raft_index,
                db_size_bytes: r.db_size.max(0) as u64,
                db_in_use_bytes: r.db_size_in_use.max(0) as u64,
                db_quota_bytes: quota,
                alarms: r.alarms.clone(),
                version: r.version.clone(),
            }
        })
        .collect();
    EtcdFigures {
        refreshed_unix: unix,
        members,
        verdict: verdict(st.verdict).to_string(),
        voters: st.voters as u64,
        healthy_voters: st.healthy_voters as u64,
        quorum: st.quorum as u64,
        backup,
    }
}

/// The backup schedule's figures: its record and the snapshot files in the folder (one
/// directory read, on the blocking pool).
async fn backup_figures(s: &crate::config::EtcdSettings) -> BackupFigures {
    let r = backup::record();
    let dir = s.backup_dir.clone();
    let files = tokio::task::spawn_blocking(move || backup::list_dir(&dir).map_or(0, |l| l.len()))
        .await
        .unwrap_or(0);
    BackupFigures {
        interval_secs: s.backup_interval.as_secs(),
        last_success_unix: r.last_success_unix,
        last_failure_unix: r.last_failure_unix,
        last_size_bytes: r.last_size_bytes,
        files: files as u64,
    }
}

/// Tell the `on_change` hook of a verdict, if it is one to tell; `view` gives the counts.
fn tell(verdicts: &mut alert::event::Verdicts, now: &str, view: &EtcdFigures) {
    if let Some((from, to)) = verdicts.see(now) {
        alert::emit(alert::Event::Cluster {
            from,
            to,
            healthy_voters: view.healthy_voters,
            voters: view.voters,
            quorum: view.quorum,
        });
    }
}

/// The refresher; runs for fild's life. While no etcd member is configured it clears the
/// view and waits for a reload; otherwise it asks the cluster every [`REFRESH`].
pub async fn refresher(handle: Handle) {
    let mut applied = handle.config_applied();
    let mut fast = 0u32;
    // The verdicts seen, for the `on_change` hook.
    let mut verdicts = alert::event::Verdicts::default();
    loop {
        let view = match handle.call(|reply| Request::Programs { reply }).await {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::Unavailable => return,
            Err(_) => {
                tokio::time::sleep(REFRESH).await;
                continue;
            }
        };
        let settings = view.etcd.clone();
        let local = members::collect_off_loop(view).await;
        if local.members.is_empty() {
            set(None);
            verdicts = Default::default();
            if applied.changed().await.is_err() {
                return;
            }
            continue;
        }
        let round = Instant::now();
        let backup = backup_figures(&settings).await;
        match tokio::time::timeout(ASK_TIMEOUT, cluster::status(&local)).await {
            Ok(st) => {
                let f = figures(&st, &local, backup);
                tell(&mut verdicts, &f.verdict, &f);
                set(Some(f))
            }
            Err(_) => {
                tracing::debug!(
                    "etcd metrics: the cluster's status took over {} s; keeping the last view.",
                    ASK_TIMEOUT.as_secs()
                );
                // The backup figures are this host's own: keep them current.
                let mut v = current().unwrap_or_default();
                v.backup = backup;
                tell(&mut verdicts, "unanswered", &v);
                set(Some(v));
            }
        }
        let spent = round.elapsed();
        let every = if fast > 0 {
            fast -= 1;
            NUDGED
        } else {
            REFRESH
        };
        tokio::select! {
            _ = tokio::time::sleep(every.saturating_sub(spent)) => {}
            _ = nudges().notified() => {
                fast = NUDGED_ROUNDS;
                tokio::time::sleep(NUDGED.saturating_sub(round.elapsed())).await;
            }
            r = applied.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::cluster::fixtures::{cluster, row};

    #[test]
    fn the_quota_comes_from_the_member_then_the_local_argv_then_etcds_default() {
        let mut a = row("etcd-0", true, true);
        a.db_size_quota = 1000;
        let b = row("etcd-1", true, false);
        // Another host's member: no program here.
        let c = cluster::MemberStatus {
            program: None,
            ..row("etcd-2", false, false)
        };
        let st = cluster(vec![a, b, c]);
        let member = |program: &str, argv: &[&str]| EtcdMember {
            program: program.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..serde_json::from_value(serde_json::json!({
                "program": "", "state": "RUNNING", "pid": 0, "env_file": "", "name": "",
                "client_url": "", "peer_url": "", "data_dir": "", "initial_cluster": "",
                "cluster_token": "", "cluster_state": ""
            }))
            .unwrap()
        };
        let local = EtcdMembers {
            members: vec![
                member("etcd-0", &["etcd", "--quota-backend-bytes=5"]),
                member("etcd-1", &["etcd", "--quota-backend-bytes", "8589934592"]),
            ],
            ..Default::default()
        };
        let f = figures(&st, &local, BackupFigures::default());
        let q: Vec<_> = f.members.iter().map(|m| m.db_quota_bytes).collect();
        assert_eq!(q, vec![Some(1000), Some(8589934592), None]);
        assert_eq!(f.verdict, "healthy");
        assert_eq!((f.voters, f.quorum), (3, 2));
        let bare = member("x", &["etcd"]);
        assert_eq!(argv_quota(&bare), DEFAULT_QUOTA);
    }
}
