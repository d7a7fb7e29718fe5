//! What `filc etcd upgrade --to BINARY` would do, or why it refuses: a pure function of the
//! members as the cluster reports them, where each one runs, and the target's version. The
//! I/O around it is [`super::upgrade`].
//!
//! The rules (the etcd project's, `shared/reference/etcd-versions.md`): every voting member
//! healthy before the first one stops; each member's jump supported (`releases::upgrade_verdict`:
//! one minor version at most, from at least the gate); a known-bad target only with
//! `--allow-known-bad`; members already on the target are skipped (a re-run finishes what a
//! stopped one left); followers first, this host's before other hosts', the leader last.

use super::releases::{self, Version};

/// Where a member's program runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// Here: this fild's program.
    Here(String),
    /// On another host of `[cluster]`: its fild (the host's name).
    Peer(String),
    /// No fild that answered runs it.
    Unknown,
}

/// One member as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The server version it reports (None: it did not answer).
    pub version: Option<Version>,
    pub leader: bool,
    pub learner: bool,
    pub healthy: bool,
    pub at: Where,
}

/// One member to move onto the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub name: String,
    pub from: Version,
    pub at: Where,
    pub leader: bool,
}

/// The plan: the members to move, in order, and those already on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub moves: Vec<Move>,
    pub already: Vec<String>,
    /// The cluster version once every member runs the target (`3.5`).
    pub cluster_version: String,
}

/// The order and the refusals. `target`: the version the new binary reports.
pub fn plan(members: &[Member], target: Version, allow_known_bad: bool) -> Result<Plan, String> {
    if members.is_empty() {
        return Err("no member list: no member answers from this host (see `filc etcd status`); nothing changed".into());
    }
    if let Some(l) = members.iter().find(|m| m.learner) {
        return Err(format!(
            "{} is a learner: promote it or remove it first (an upgrade moves voting members only); nothing changed",
            l.name
        ));
    }
    let sick: Vec<&str> = members
        .iter()
        .filter(|m| !m.healthy || m.version.is_none())
        .map(|m| m.name.as_str())
        .collect();
    if !sick.is_empty() {
        return Err(format!(
            "not healthy: {}. Each member stops for its turn, so with another one down that turn could cost quorum: bring every voting member back first (`filc etcd status`), then run this again; nothing changed",
            sick.join(", ")
        ));
    }
    let mut moves = Vec::new();
    let mut already = Vec::new();
    for m in members {
        let from = m.version.expect("checked above");
        if from == target {
            already.push(m.name.clone());
            continue;
        }
        releases::upgrade_verdict(from, target)
            .map_err(|r| format!("{}: {r}; nothing changed", m.name))?;
        if m.at == Where::Unknown {
            return Err(format!(
                "no fild that answered runs {} (not this host's program, and no [cluster] host reports it): run the upgrade where every member's fild answers; nothing changed",
                m.name
            ));
        }
        moves.push(Move {
            name: m.name.clone(),
            from,
            at: m.at.clone(),
            leader: m.leader,
        });
    }
    if !moves.is_empty() && releases::is_known_bad(target) && !allow_known_bad {
        let bad: Vec<&releases::Hazard> = releases::hazards(target)
            .filter(|h| {
                matches!(
                    h.action,
                    releases::Action::CorruptChecks | releases::Action::Warn
                )
            })
            .collect();
        let what: Vec<&str> = bad.iter().map(|h| h.what).collect();
        let fixed = bad.iter().map(|h| h.until).max().unwrap_or(target);
        return Err(format!(
            "etcd {target} is a known-bad release: {}. The first release without these is {fixed}: upgrade to it or later (one minor version at a time), or consent with --allow-known-bad; nothing changed",
            what.join("; ")
        ));
    }
    // Followers first (this host's, then the others' by name), the leader last.
    moves.sort_by_key(|m| (m.leader, !matches!(m.at, Where::Here(_)), m.name.clone()));
    Ok(Plan {
        moves,
        already,
        cluster_version: target.minor_line(),
    })
}

/// The plan's lines, as the gate says them: the snapshot, one line a member, the wait for
/// the cluster version.
pub fn lines(p: &Plan, to: &str, target: Version, backup_dir: &str) -> Vec<String> {
    let mut out = vec![format!(
        "snapshot from a healthy member into {backup_dir} (the way back if all else fails: filc etcd restore FILE)"
    )];
    for m in &p.moves {
        let at = match &m.at {
            Where::Here(program) => format!("program {program} here"),
            Where::Peer(host) => format!("on host {host}, through its fild"),
            Where::Unknown => "nowhere".into(),
        };
        out.push(format!(
            "upgrade {} ({at}) from {} to {target}{}: check {to} there reports {target}, switch the member's etcd binary (runtime layer), restart it, wait until every voting member is healthy and it caught up",
            m.name,
            m.from,
            if m.leader { " (the leader, last)" } else { "" }
        ));
    }
    out.push(format!(
        "wait until the cluster version is {}",
        p.cluster_version
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        releases::parse(s).unwrap()
    }

    fn m(name: &str, ver: &str, leader: bool, at: Where) -> Member {
        Member {
            name: name.into(),
            version: Some(v(ver)),
            leader,
            learner: false,
            healthy: true,
            at,
        }
    }

    fn here(p: &str) -> Where {
        Where::Here(p.into())
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.moves.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn followers_first_this_hosts_first_the_leader_last() {
        let ms = [
            m("boot0", "3.4.23", true, here("etcd-0")),
            m("boot2", "3.4.23", false, Where::Peer("h2".into())),
            m("boot1", "3.4.23", false, here("etcd-1")),
            m("boot3", "3.4.23", false, Where::Peer("h1".into())),
        ];
        let p = plan(&ms, v("3.5.1"), true).unwrap();
        assert_eq!(names(&p), ["boot1", "boot2", "boot3", "boot0"]);
        assert!(p.moves[3].leader);
        assert_eq!(p.cluster_version, "3.5");
        let l = lines(&p, "/opt/etcd", v("3.5.1"), "/b");
        assert_eq!(l.len(), 6);
        assert!(l[0].starts_with("snapshot"), "{l:?}");
        assert!(
            l[4].contains("boot0 (program etcd-0 here) from 3.4.23 to 3.5.1 (the leader, last)"),
            "{l:?}"
        );
        assert!(l[2].contains("on host h2, through its fild"), "{l:?}");
        assert_eq!(l[5], "wait until the cluster version is 3.5");
    }

    #[test]
    fn a_rerun_skips_the_members_already_upgraded() {
        let ms = [
            m("boot0", "3.5.1", false, here("etcd-0")),
            m("boot1", "3.4.23", true, here("etcd-1")),
            m("boot2", "3.5.1", false, here("etcd-2")),
        ];
        let p = plan(&ms, v("3.5.1"), true).unwrap();
        assert_eq!(names(&p), ["boot1"]);
        assert_eq!(p.already, ["boot0", "boot2"]);
        // All done: an empty plan, not a refusal (the same-version verdict is a skip).
        let done: Vec<Member> = ms
            .iter()
            .map(|x| Member {
                version: Some(v("3.5.1")),
                ..x.clone()
            })
            .collect();
        let p = plan(&done, v("3.5.1"), false).unwrap();
        assert!(p.moves.is_empty() && p.already.len() == 3);
    }

    #[test]
    fn unsupported_jumps_and_gates_are_refused() {
        let ms = [m("boot0", "3.4.23", true, here("etcd-0"))];
        let e = plan(&ms, v("3.6.0"), true).unwrap_err();
        assert!(
            e.contains("boot0: 3.4.23 to 3.6.0 skips a minor version"),
            "{e}"
        );
        let ms = [m("boot0", "3.5.1", true, here("etcd-0"))];
        let e = plan(&ms, v("3.6.0"), true).unwrap_err();
        assert!(
            e.contains("be on 3.5.26 or later before moving to 3.6"),
            "{e}"
        );
        let e = plan(&ms, v("3.4.23"), true).unwrap_err();
        assert!(e.contains("downgrade"), "{e}");
        assert!(e.ends_with("nothing changed"), "{e}");
        // A mixed cluster with one member newer than the target: refused.
        let ms = [
            m("boot0", "3.5.1", false, here("etcd-0")),
            m("boot1", "3.5.3", true, here("etcd-1")),
        ];
        assert!(plan(&ms, v("3.5.2"), true).unwrap_err().contains("boot1"));
    }

    #[test]
    fn a_known_bad_target_needs_consent() {
        let ms = [m("boot0", "3.4.23", true, here("etcd-0"))];
        let e = plan(&ms, v("3.5.1"), false).unwrap_err();
        assert!(
            e.contains("etcd 3.5.1 is a known-bad release: may lose committed transactions"),
            "{e}"
        );
        assert!(e.contains("--allow-known-bad"), "{e}");
        assert!(
            e.contains("The first release without these is 3.5.6"),
            "{e}"
        );
        // Within 3.4 no release is fixed: the way named is the 3.5 line's.
        let e = plan(&ms, v("3.4.45"), false).unwrap_err();
        assert!(
            e.contains("The first release without these is 3.5.6"),
            "{e}"
        );
        assert!(plan(&ms, v("3.5.1"), true).is_ok());
        assert!(plan(&ms, v("3.5.34"), false).is_ok());
    }

    #[test]
    fn every_voter_healthy_no_learner_every_member_reachable() {
        let mut sick = m("boot1", "3.4.23", false, here("etcd-1"));
        sick.healthy = false;
        let ms = [m("boot0", "3.4.23", true, here("etcd-0")), sick.clone()];
        let e = plan(&ms, v("3.5.1"), true).unwrap_err();
        assert!(e.starts_with("not healthy: boot1."), "{e}");
        let mut silent = sick;
        silent.healthy = true;
        silent.version = None;
        assert!(
            plan(&[silent], v("3.5.1"), true)
                .unwrap_err()
                .starts_with("not healthy: boot1.")
        );
        let mut learner = m("boot2", "3.4.23", false, here("etcd-2"));
        learner.learner = true;
        assert!(
            plan(&[learner], v("3.5.1"), true)
                .unwrap_err()
                .contains("boot2 is a learner")
        );
        let lost = m("boot3", "3.4.23", false, Where::Unknown);
        assert!(
            plan(&[lost], v("3.5.1"), true)
                .unwrap_err()
                .contains("no fild that answered runs boot3")
        );
        assert!(plan(&[], v("3.5.1"), true).is_err());
    }
}
