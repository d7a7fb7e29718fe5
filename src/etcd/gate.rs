//! The gate before an operation's first change: it says the plan (a line a step, see
//! [`super::steps`]), then stops on a dry run, or when the plan has a destructive step
//! (removing a healthy member, restoring over a cluster that answers, forcing a new
//! cluster) that was not confirmed. A confirmation given at a terminal names the digest of
//! the plan the person read: if the plan changed since, the gate asks again.

use std::hash::{Hash, Hasher};

use super::Say;
use super::steps;

/// What the request says about going on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gate {
    /// Say the plan and stop.
    pub dry_run: bool,
    /// `--yes`: the destructive steps are confirmed, whatever the plan.
    pub yes: bool,
    /// Confirmed at a terminal: go on only if the plan still has this digest.
    pub confirm: Option<String>,
}

/// Why an operation stopped at the gate, before any change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    #[error("dry run: the plan above was not carried out; nothing changed")]
    DryRun,
    #[error(
        "{why}: this needs confirmation; nothing changed (re-run with --yes, or run it at a terminal and answer the question)"
    )]
    Unconfirmed { why: String, digest: String },
}

/// The digest of a plan as said: what a confirmation names.
pub fn digest(plan: &[String]) -> String {
    let mut h = std::hash::DefaultHasher::new();
    plan.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Go on, or halt: a pure function of the request, the plan's digest and what in the plan
/// is destructive.
pub fn decide(gate: &Gate, digest: &str, destructive: Option<&str>) -> Result<(), Halt> {
    if gate.dry_run {
        return Err(Halt::DryRun);
    }
    let Some(why) = destructive else {
        return Ok(());
    };
    let confirmed = gate.yes || gate.confirm.as_deref() == Some(digest);
    if confirmed {
        return Ok(());
    }
    let why = match &gate.confirm {
        Some(_) => format!("the plan changed since it was confirmed ({why})"),
        None => why.to_string(),
    };
    Err(Halt::Unconfirmed {
        why,
        digest: digest.to_string(),
    })
}

impl Gate {
    /// Say `plan`, then go on or halt ([`decide`]).
    pub fn pass(
        &self,
        say: Say<'_>,
        plan: &[String],
        destructive: Option<&str>,
    ) -> Result<(), Halt> {
        for (i, what) in plan.iter().enumerate() {
            say(&steps::planned(i + 1, plan.len(), what));
        }
        if let Some(why) = destructive {
            say(&format!("destructive: {why}"));
        }
        decide(self, &digest(plan), destructive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_always_stops_and_plain_plans_go_on() {
        let dry = Gate {
            dry_run: true,
            yes: true,
            ..Gate::default()
        };
        assert_eq!(decide(&dry, "d", None), Err(Halt::DryRun));
        assert_eq!(decide(&dry, "d", Some("x")), Err(Halt::DryRun));
        assert_eq!(decide(&Gate::default(), "d", None), Ok(()));
    }

    #[test]
    fn destructive_needs_yes_or_the_same_digest() {
        let plan = vec!["stop etcd-2".to_string(), "member remove boot2".to_string()];
        let d = digest(&plan);
        assert_eq!(d, digest(&plan.clone()));
        assert_ne!(d, digest(&plan[..1]));
        let why = Some("removes boot2, a healthy voting member");
        assert!(matches!(
            decide(&Gate::default(), &d, why),
            Err(Halt::Unconfirmed { digest, .. }) if digest == d
        ));
        let yes = Gate {
            yes: true,
            ..Gate::default()
        };
        assert_eq!(decide(&yes, &d, why), Ok(()));
        let confirmed = Gate {
            confirm: Some(d.clone()),
            ..Gate::default()
        };
        assert_eq!(decide(&confirmed, &d, why), Ok(()));
        // The plan changed between the question and the answer: ask again.
        let stale = Gate {
            confirm: Some("0".into()),
            ..Gate::default()
        };
        let Err(Halt::Unconfirmed { why, .. }) = decide(&stale, &d, why) else {
            panic!("a stale confirmation went through");
        };
        assert!(why.contains("the plan changed"), "{why}");
    }
}
