//! Asking the cluster itself: membership, each member's status and health, alarms, and a
//! verdict. Membership comes from the cluster (any reachable member), not from the local
//! fild, so on one host of three (mode two) the answer still covers the whole cluster.

use serde::Serialize;

use super::health::{self, Health};
use super::releases::Version;
use crate::api::{EtcdMembers, ProcessState};

/// One member as the cluster and fild see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberStatus {
    /// The program that runs it here, if this fild supervises it.
    pub program: Option<String>,
    pub program_state: Option<ProcessState>,
    pub name: String,
    /// Member ID in hex, as etcdctl prints it (None: not in the member list).
    pub id: Option<String>,
    pub client_url: String,
    pub peer_url: String,
    pub leader: bool,
    pub raft_term: u64,
    pub raft_index: u64,
    /// The raft index it has applied: caught up once it reaches the leader's `raft_index`.
    pub raft_applied_index: u64,
    pub db_size: i64,
    /// Bytes of the database in use (etcd's `dbSizeInUse`).
    #[serde(default)]
    pub db_size_in_use: i64,
    /// The backend quota the member reports (etcd 3.6 on; 0: not reported).
    #[serde(default)]
    pub db_size_quota: i64,
    pub learner: bool,
    pub healthy: bool,
    /// Its health in one word (the HEALTH column): see [`Health`].
    pub health: Health,
    pub alarms: Vec<String>,
    /// Why the status could not be read, in full.
    pub error: Option<String>,
    /// The server version it reports (its Status answer's `version`); empty: it did not
    /// answer.
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    /// Quorum holds, but a member is down, unhealthy, a learner lags, or an alarm is raised.
    Degraded,
    NoQuorum,
}

impl Verdict {
    /// `filc etcd status`'s exit code: 0, 1, 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Degraded => 1,
            Verdict::NoQuorum => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub members: Vec<MemberStatus>,
    pub voters: usize,
    pub healthy_voters: usize,
    pub quorum: usize,
    pub leader: Option<String>,
    pub verdict: Verdict,
    /// Where the member list came from (None: no member answered).
    pub asked: Option<String>,
    /// The cluster version (`3.5`: etcd decides it as the lowest minor version its members
    /// run), as a member answers it; None: no answer (or https members, not asked yet).
    #[serde(default)]
    pub cluster_version: Option<String>,
    /// What the operator should know: the known-bad releases and end-of-life notices of
    /// the versions members run ([`super::releases::status_warnings`]), and where this
    /// host's names for the members disagree with the cluster's ([`super::names::check`],
    /// added by `filc etcd status`).
    pub warnings: Vec<String>,
}

impl ClusterStatus {
    /// One line for people: `healthy: 3 of 3 voting members healthy (quorum 2), leader boot2`.
    /// With no member list (no member answered): `NO QUORUM: no member answers from this
    /// host, so no member list (a member waits for a majority of its peers, or they are down)`.
    pub fn summary(&self) -> String {
        if self.asked.is_none() && self.voters == 0 {
            return "NO QUORUM: no member answers from this host, so no member list (a first member waits for a majority of its peers to start; else they are down or cut off)".to_string();
        }
        let v = match self.verdict {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded (quorum held)",
            Verdict::NoQuorum => "NO QUORUM",
        };
        format!(
            "{v}: {} of {} voting members healthy (quorum {}), leader {}",
            self.healthy_voters,
            self.voters,
            self.quorum,
            self.leader.as_deref().unwrap_or("none")
        )
    }
}

fn alarm_name(a: i32) -> String {
    match a {
        1 => "NOSPACE".into(),
        2 => "CORRUPT".into(),
        n => format!("ALARM{n}"),
    }
}

/// Ask the cluster about every member; `local` says which programs run which member here.
pub async fn status(local: &EtcdMembers) -> ClusterStatus {
    let tls = super::conn::Tls::of(local);
    let mut rows: Vec<MemberStatus> = Vec::new();
    let mut asked = None;
    let mut alarms: Vec<(u64, i32)> = Vec::new();
    if let Ok((mut c, url)) = super::conn::connect_any(&super::conn::endpoints(local), &tls).await {
        asked = Some(url);
        if let Ok(list) = c.member_list().await {
            for m in list.members() {
                rows.push(MemberStatus {
                    name: m.name().to_string(),
                    id: Some(format!("{:x}", m.id())),
                    client_url: m.client_urls().first().cloned().unwrap_or_default(),
                    peer_url: m.peer_urls().first().cloned().unwrap_or_default(),
                    learner: m.is_learner(),
                    ..Default::default()
                });
            }
        }
        if let Ok(resp) = c
            .alarm(
                etcd_client::AlarmAction::Get,
                etcd_client::AlarmType::None,
                None,
            )
            .await
        {
            alarms = resp
                .alarms()
                .iter()
                .map(|a| (a.member_id(), a.alarm() as i32))
                .collect();
        }
    }
    // Local members the cluster does not list (or no member answered at all).
    for m in &local.members {
        let known = rows
            .iter()
            .any(|r| r.name == m.name || (!r.peer_url.is_empty() && r.peer_url == m.peer_url));
        if !known {
            rows.push(MemberStatus {
                name: m.name.clone(),
                client_url: m.client_url.clone(),
                peer_url: m.peer_url.clone(),
                error: Some(if asked.is_some() {
                    "not in the cluster's member list".into()
                } else {
                    "no member answered".into()
                }),
                ..Default::default()
            });
        }
    }
    for r in &mut rows {
        if let Some(m) = local
            .members
            .iter()
            .find(|m| m.name == r.name || m.peer_url == r.peer_url)
        {
            r.program = Some(m.program.clone());
            r.program_state = Some(m.state);
            if r.client_url.is_empty() {
                r.client_url = m.client_url.clone();
            }
        }
        if let Some(id) = &r.id {
            r.alarms = alarms
                .iter()
                .filter(|(mid, _)| format!("{mid:x}") == *id)
                .map(|(_, a)| alarm_name(*a))
                .collect();
        }
    }
    // Per-member status and health, all at once.
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in rows.iter().enumerate() {
        let url = r.client_url.clone();
        let listed = r.id.is_some();
        let tls = tls.clone();
        set.spawn(async move {
            if url.is_empty() {
                let e = "not started yet (no client URL)".to_string();
                return (i, Err((Health::Unstarted, e)), false, None);
            }
            let st = match super::conn::connect(&url, &tls).await {
                Ok(mut c) => c
                    .status()
                    .await
                    .map_err(|e| (health::of_error(&e), e.to_string())),
                Err(e) => Err((health::of_text(&e), e)),
            };
            let ok = listed && super::conn::healthy(&url, &tls).await;
            let cv = if st.is_ok() {
                super::conn::cluster_version(&url).await
            } else {
                None
            };
            (i, st, ok, cv)
        });
    }
    let mut leader_id = None;
    // The word each member's own answer came to, when it was an error.
    let mut faults: Vec<Option<Health>> = vec![None; rows.len()];
    // Members that answered a status call and know a leader: they serve, even when an alarm
    // makes etcd 3.4 report /health false on every member.
    let mut serving = vec![false; rows.len()];
    let mut cluster_versions: Vec<(bool, String)> = Vec::new();
    while let Some(Ok((i, st, ok, cv))) = set.join_next().await {
        let r = &mut rows[i];
        r.healthy = ok;
        match st {
            Ok(s) => {
                // Raised alarms come back as errors too; they are shown as alarms.
                let errors: Vec<&String> = s
                    .errors()
                    .iter()
                    .filter(|e| !e.contains("alarm:"))
                    .collect();
                serving[i] = ok || (s.leader() != 0 && errors.is_empty());
                r.raft_term = s.raft_term();
                r.raft_index = s.raft_index();
                r.raft_applied_index = s.raft_applied_index();
                r.db_size = s.db_size();
                r.db_size_in_use = s.raft_used_db_size();
                r.db_size_quota = s.db_size_quota();
                r.version = s.version().to_string();
                if let Some(h) = s.header() {
                    r.leader = h.member_id() == s.leader() && s.leader() != 0;
                }
                if let Some(cv) = cv {
                    cluster_versions.push((r.leader, cv));
                }
                if s.leader() != 0 {
                    leader_id = Some(format!("{:x}", s.leader()));
                }
                if !errors.is_empty() {
                    let e = errors
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join("; ");
                    faults[i] = Some(health::of_text(&e));
                    r.error = Some(e);
                }
            }
            Err((fault, e)) => {
                faults[i] = Some(fault);
                // An unlisted member's own answer follows what the cluster said of it.
                r.error = Some(match r.error.take() {
                    Some(said) => format!("{said}; {e}"),
                    None => e,
                });
            }
        }
    }
    let voters = rows.iter().filter(|r| r.id.is_some() && !r.learner).count();
    let any_alarm = rows.iter().any(|r| !r.alarms.is_empty());
    for (r, fault) in rows.iter_mut().zip(faults) {
        let unlisted = asked.is_some() && r.id.is_none();
        r.health = health::health(r.healthy, unlisted, fault, any_alarm);
    }
    let healthy_voters = rows
        .iter()
        .zip(&serving)
        .filter(|(r, s)| r.id.is_some() && !r.learner && (r.healthy || (any_alarm && **s)))
        .count();
    let quorum = voters / 2 + 1;
    let all_fine = rows
        .iter()
        .all(|r| r.healthy && r.error.is_none() && !r.learner);
    let verdict = if voters == 0 || healthy_voters < quorum {
        Verdict::NoQuorum
    } else if healthy_voters == voters && all_fine && !any_alarm {
        Verdict::Healthy
    } else {
        Verdict::Degraded
    };
    let leader = leader_id.and_then(|id| {
        rows.iter()
            .find(|r| r.id.as_deref() == Some(id.as_str()))
            .map(|r| r.name.clone())
    });
    // The leader's word on the cluster version, else any member's.
    cluster_versions.sort_by_key(|(leader, _)| !*leader);
    let cluster_version = cluster_versions.into_iter().next().map(|(_, v)| {
        super::releases::parse(&v)
            .map(|v| v.minor_line())
            .unwrap_or(v)
    });
    let warnings = super::releases::status_warnings(&running_versions(&rows, local));
    ClusterStatus {
        members: rows,
        voters,
        healthy_voters,
        quorum,
        leader,
        verdict,
        asked,
        cluster_version,
        warnings,
    }
}

/// The version each member runs: what it answered, else (not answering) the version of the
/// binary this host's fild starts it with.
fn running_versions(rows: &[MemberStatus], local: &EtcdMembers) -> Vec<(String, Version)> {
    rows.iter()
        .filter_map(|r| {
            let said = super::releases::parse(&r.version).ok();
            let ours = || {
                local
                    .members
                    .iter()
                    .find(|m| Some(&m.program) == r.program.as_ref())
                    .and_then(|m| super::releases::parse(&m.etcd_version).ok())
            };
            said.or_else(ours).map(|v| (r.name.clone(), v))
        })
        .collect()
}

/// Cluster views for the unit tests of the modules that decide on them (guard, liveness).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A listed voting member run by `program`.
    pub(crate) fn row(program: &str, healthy: bool, leader: bool) -> MemberStatus {
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

    /// A learner run by `program`, not (yet) answering.
    pub(crate) fn learner(program: &str) -> MemberStatus {
        MemberStatus {
            learner: true,
            ..row(program, false, false)
        }
    }

    /// The cluster of these rows, with a leader known.
    pub(crate) fn cluster(rows: Vec<MemberStatus>) -> ClusterStatus {
        let voters = rows.iter().filter(|r| !r.learner).count();
        ClusterStatus {
            healthy_voters: rows.iter().filter(|r| r.healthy && !r.learner).count(),
            members: rows,
            voters,
            quorum: voters / 2 + 1,
            leader: Some("1".into()),
            verdict: Verdict::Healthy,
            asked: Some("x".into()),
            cluster_version: None,
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{cluster, row};
    use super::*;

    #[test]
    fn the_summary_counts_voters_or_says_none_answered() {
        let st = cluster(vec![row("a", true, true), row("b", true, false)]);
        assert_eq!(
            st.summary(),
            "healthy: 2 of 2 voting members healthy (quorum 2), leader 1"
        );
        let none = ClusterStatus {
            asked: None,
            verdict: Verdict::NoQuorum,
            leader: None,
            ..cluster(vec![])
        };
        assert!(
            none.summary()
                .starts_with("NO QUORUM: no member answers from this host, so no member list"),
            "{}",
            none.summary()
        );
    }
}
