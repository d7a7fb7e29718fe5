//! Quorum arithmetic and the refusals every membership change shares.

use anyhow::bail;

use super::conn::Mem;
use crate::api::EtcdMember;

/// Quorum of a cluster of `size` voting members.
pub(crate) fn quorum_of(size: usize) -> usize {
    size / 2 + 1
}

pub(crate) fn describe_unhealthy(ms: &[&Mem], health: &[bool]) -> String {
    let bad: Vec<String> = ms
        .iter()
        .zip(health)
        .filter(|(_, ok)| !**ok)
        .map(|(m, _)| format!("{} unhealthy", m.label()))
        .collect();
    if bad.is_empty() {
        "all healthy".into()
    } else {
        bad.join(", ")
    }
}

/// etcd 3.4 allows one learner at a time; never start a change while another is half done.
pub(crate) fn refuse_other_change(list: &[Mem], me: &EtcdMember) -> anyhow::Result<()> {
    if let Some(m) = list
        .iter()
        .find(|m| !m.is(me) && (m.learner || !m.started()))
    {
        bail!(
            "refused: another membership change is in progress: {} ({:x}) is {}; finish it first (filc etcd add/replace of that member). Nothing changed.",
            m.label(),
            m.id,
            if m.learner {
                "a learner"
            } else {
                "not started"
            }
        );
    }
    Ok(())
}

/// A membership change, as the quorum pre-check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The member leaves and comes back: the others must hold quorum of the full cluster.
    Replace,
    /// One more voting member.
    Add,
    /// One voting member fewer.
    Remove,
    /// The member keeps its place (`voter`: it counts towards quorum).
    Move { voter: bool },
}

/// The numbers a pre-check decides on: the other voting members, and the size and quorum of
/// the cluster the change leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    pub(crate) others: usize,
    pub(crate) size: usize,
    pub(crate) quorum: usize,
}

/// Whether a change may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go ahead (`even`: the cluster ends with an even number of voters; warn).
    Go { even: bool },
    /// The member is the only voter: nothing to copy its data from.
    OnlyVoter,
    /// Removing from one or two voters would leave quorum on a single member.
    TooSmall,
    /// The healthy others would not hold quorum.
    NoQuorum,
}

pub(crate) fn figures(change: Change, others: usize) -> Figures {
    let size = match change {
        Change::Replace | Change::Add => others + 1,
        Change::Remove => others,
        Change::Move { voter } => others + usize::from(voter),
    };
    Figures {
        others,
        size,
        quorum: quorum_of(size),
    }
}

/// The pre-check: pure, from the figures and how many of the others are healthy.
pub(crate) fn verdict(change: Change, f: Figures, healthy: usize) -> Verdict {
    match change {
        Change::Replace if f.others == 0 => return Verdict::OnlyVoter,
        // One or two voters before the removal.
        Change::Remove if f.others < 2 => return Verdict::TooSmall,
        _ => {}
    }
    // An add needs quorum of the cluster as it is: the new member joins as a learner (no
    // vote) and etcd promotes it only once it caught up, when it counts among the healthy.
    // So one voter may grow to two, and two to three.
    let need = match change {
        Change::Add => quorum_of(f.others),
        _ => f.quorum,
    };
    if healthy == 0 || healthy < need {
        return Verdict::NoQuorum;
    }
    let even = matches!(change, Change::Add | Change::Remove) && f.size.is_multiple_of(2);
    Verdict::Go { even }
}

/// The members of `ms` whose entry in `health` is true.
pub(crate) fn healthy<'a>(ms: &[&'a Mem], health: &[bool]) -> Vec<&'a Mem> {
    ms.iter()
        .zip(health)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| *m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(change: Change, others: usize, healthy: usize) -> (Figures, Verdict) {
        let f = figures(change, others);
        (f, verdict(change, f, healthy))
    }

    #[test]
    fn replace() {
        assert_eq!(check(Change::Replace, 0, 0).1, Verdict::OnlyVoter);
        let (f, v) = check(Change::Replace, 2, 2);
        assert_eq!((f.size, f.quorum), (3, 2));
        assert_eq!(v, Verdict::Go { even: false });
        assert_eq!(check(Change::Replace, 2, 1).1, Verdict::NoQuorum);
        assert_eq!(
            check(Change::Replace, 1, 1).1,
            Verdict::NoQuorum,
            "2 need 2"
        );
        assert_eq!(check(Change::Replace, 4, 3).1, Verdict::Go { even: false });
    }

    #[test]
    fn add() {
        let (f, v) = check(Change::Add, 2, 2);
        assert_eq!((f.size, f.quorum), (3, 2));
        assert_eq!(v, Verdict::Go { even: false });
        // One voter grows to two: the learner catches up under quorum 1, then counts.
        assert_eq!(check(Change::Add, 1, 1).1, Verdict::Go { even: true });
        assert_eq!(check(Change::Add, 3, 3).1, Verdict::Go { even: true });
        // 3 voters with 2 up hold quorum; promoted, the new one makes 3 of 4.
        assert_eq!(check(Change::Add, 3, 2).1, Verdict::Go { even: true });
        // Two voters with one down have no quorum to add anything with.
        assert_eq!(check(Change::Add, 2, 1).1, Verdict::NoQuorum);
        assert_eq!(check(Change::Add, 0, 0).1, Verdict::NoQuorum);
    }

    #[test]
    fn remove() {
        assert_eq!(check(Change::Remove, 1, 1).1, Verdict::TooSmall);
        assert_eq!(check(Change::Remove, 0, 0).1, Verdict::TooSmall);
        let (f, v) = check(Change::Remove, 2, 2);
        assert_eq!((f.size, f.quorum), (2, 2));
        assert_eq!(v, Verdict::Go { even: true });
        assert_eq!(check(Change::Remove, 2, 1).1, Verdict::NoQuorum);
        assert_eq!(check(Change::Remove, 3, 2).1, Verdict::Go { even: false });
    }

    #[test]
    fn move_() {
        let (f, v) = check(Change::Move { voter: true }, 2, 1);
        assert_eq!((f.size, f.quorum), (3, 2));
        assert_eq!(v, Verdict::NoQuorum);
        assert_eq!(
            check(Change::Move { voter: true }, 2, 2).1,
            Verdict::Go { even: false }
        );
        let (f, v) = check(Change::Move { voter: false }, 3, 2);
        assert_eq!((f.size, f.quorum), (3, 2));
        assert_eq!(v, Verdict::Go { even: false }, "no even warning on a move");
    }
}
