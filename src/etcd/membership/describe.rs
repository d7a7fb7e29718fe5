//! What a membership plan's steps say to a person before any of them runs: each step with the
//! quorum arithmetic it changes, and what in the plan is destructive (and so needs `--yes`).
//! Pure: the gate ([`crate::etcd::gate`]) says these lines and decides.

use super::plan::Step;
use crate::api::EtcdMember;
use crate::etcd::conn::Mem;
use crate::etcd::quorum::quorum_of;

/// Each step of `steps` as a line, `voters` being the voting members the cluster lists now.
pub(crate) fn steps(
    steps: &[Step],
    me: &EtcdMember,
    voters: usize,
    backup_dir: &str,
) -> Vec<String> {
    let mut voters = voters;
    let arith = |from: usize, to: usize| {
        format!(
            "voting members {from} -> {to}, quorum {} -> {}",
            quorum_of(from),
            quorum_of(to)
        )
    };
    let mut out = Vec::new();
    for s in steps {
        out.push(match s {
            Step::Snapshot => format!("snapshot from a healthy member into {backup_dir}"),
            Step::SnapshotOwn => format!("snapshot from {} itself into {backup_dir}", me.name),
            Step::Stop => format!("stop {}", me.program),
            Step::StopPrograms(p) => format!("stop {}", p.join(", ")),
            Step::Remove(m) => {
                let line = format!("member remove {} ({:x})", m.label(), m.id);
                if m.voter() {
                    let to = voters.saturating_sub(1);
                    let s = format!("{line}: {}", arith(voters, to));
                    voters = to;
                    s
                } else {
                    format!("{line}: a learner, quorum stays {}", quorum_of(voters))
                }
            }
            Step::AlreadyRemoved => {
                format!("{} is not in the member list: nothing to remove", me.name)
            }
            Step::MoveAside => format!("move the data dir {} aside (renamed, kept)", me.data_dir),
            Step::CopyAside => format!("copy the data dir {} aside (kept as it is)", me.data_dir),
            Step::AddLearner => format!(
                "member add --learner {} at {}: a learner does not vote, quorum stays {}",
                me.name,
                me.peer_url,
                quorum_of(voters)
            ),
            Step::Reuse(m) => format!(
                "reuse the entry {:x} an earlier run added ({})",
                m.id,
                m.label()
            ),
            Step::RecordJoin => format!(
                "record in {}: cluster_state=existing and the cluster it joins",
                me.runtime_file
            ),
            Step::RecordExisting => {
                format!("record in {}: cluster_state=existing", me.runtime_file)
            }
            Step::ClearOnce => format!("drop the next-start flags left in {}", me.runtime_file),
            Step::Start => format!("start {}", me.program),
            Step::Restart => format!("restart {}", me.program),
            Step::Promote => {
                let to = voters + 1;
                let s = format!(
                    "promote {} once it caught up: {}",
                    me.name,
                    arith(voters, to)
                );
                voters = to;
                s
            }
            Step::Verify => format!(
                "verify {} is a started, healthy voting member that serves reads",
                me.name
            ),
            Step::UpdatePeer { id, from, to } => {
                format!("member update {id:x}: peer URL {} -> {to}", from.join(","))
            }
            Step::PeerAlready { id, to } => format!("member {id:x} lists peer URL {to} already"),
            Step::RecordPeer { to } => {
                format!(
                    "record peer URL {to} in {} (and the initial clusters)",
                    me.runtime_file
                )
            }
            Step::VerifyMoved { to, .. } => format!("verify {} serves at {to}", me.name),
            Step::ForceNewCluster { .. } => {
                let s = format!(
                    "start {} once with --force-new-cluster: a one-member cluster of its data, {}",
                    me.program,
                    arith(voters, 1)
                );
                voters = 1;
                s
            }
            Step::WaitHealthy => format!("wait until {} serves reads", me.name),
            Step::RemoveZombies { .. } => format!(
                "check that the member list names {} alone; remove any other member left listed (a zombie)",
                me.name
            ),
            Step::SyncGateway => "point the gateway at the voting members".to_string(),
            Step::Note(n) => n.clone(),
        });
    }
    out
}

/// What in `steps` needs confirmation: removing a healthy voting member, forcing a new
/// cluster. `me_healthy`: whether the member answers its health check now.
pub(crate) fn destructive(steps: &[Step], me: &EtcdMember, me_healthy: bool) -> Option<String> {
    let mut why = Vec::new();
    for s in steps {
        match s {
            Step::Remove(m) if m.voter() && me_healthy => why.push(format!(
                "it removes {} ({:x}), a healthy voting member",
                me.name, m.id
            )),
            Step::ForceNewCluster { .. } => why.push(format!(
                "it forces a new one-member cluster from {}'s data (members elsewhere are left out)",
                me.name
            )),
            _ => {}
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The voting members of a list.
pub(crate) fn voters(list: &[Mem]) -> usize {
    list.iter().filter(|m| m.voter()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::members::fixtures::member;
    use crate::etcd::membership::plan::tests::mem;

    #[test]
    fn a_replace_says_its_arithmetic_step_by_step() {
        let me = member(2);
        let old = mem(0xb2, "boot2", false);
        let s = steps(
            &[
                Step::Snapshot,
                Step::Stop,
                Step::Remove(old.clone()),
                Step::MoveAside,
                Step::AddLearner,
                Step::Start,
                Step::Promote,
                Step::Verify,
            ],
            &me,
            3,
            "/b",
        );
        assert_eq!(s[0], "snapshot from a healthy member into /b");
        assert_eq!(
            s[2],
            "member remove boot2 (b2): voting members 3 -> 2, quorum 2 -> 2"
        );
        assert!(
            s[4].ends_with("a learner does not vote, quorum stays 2"),
            "{}",
            s[4]
        );
        assert_eq!(
            s[6],
            "promote boot2 once it caught up: voting members 2 -> 3, quorum 2 -> 2"
        );
        assert_eq!(destructive(&[Step::Remove(old.clone())], &me, false), None);
        let why = destructive(&[Step::Remove(old)], &me, true).unwrap();
        assert!(
            why.contains("removes boot2 (b2), a healthy voting member"),
            "{why}"
        );
    }

    #[test]
    fn a_forced_cluster_is_always_destructive() {
        let me = member(0);
        let s = steps(&[Step::ForceNewCluster { id: 1 }], &me, 3, "/b");
        assert!(
            s[0].contains("voting members 3 -> 1, quorum 2 -> 1"),
            "{}",
            s[0]
        );
        assert!(destructive(&[Step::ForceNewCluster { id: 1 }], &me, false).is_some());
        // Removing a learner is no loss.
        let learner = mem(0xb2, "boot2", true);
        assert_eq!(destructive(&[Step::Remove(learner)], &me, true), None);
    }
}
