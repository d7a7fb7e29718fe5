//! Reload as a diff: old program specs against new ones, per process (never per group).
//!
//! Start-up is the same path from an empty table, so every test that starts a daemon also
//! exercises reload.

use std::collections::BTreeMap;

use crate::config::ProgramSpec;

/// What a reload changes.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// New processes, in config order.
    pub added: Vec<ProgramSpec>,
    /// Processes whose spec differs, with the new spec.
    pub changed: Vec<ProgramSpec>,
    /// Processes no longer configured.
    pub removed: Vec<String>,
}

impl Plan {
    /// Take the changed programs named in `hold` out of the plan: they keep running on their
    /// old specs for now (a rolling reload brings them over one at a time). Names that are
    /// not changed are ignored. The held ones, in the plan's order.
    pub fn hold(&mut self, hold: &[String]) -> Vec<String> {
        let (held, now): (Vec<ProgramSpec>, Vec<ProgramSpec>) = std::mem::take(&mut self.changed)
            .into_iter()
            .partition(|s| hold.contains(&s.name));
        self.changed = now;
        held.into_iter().map(|s| s.name).collect()
    }
}

/// Compare the running specs with a freshly loaded config.
pub fn diff<'a>(
    old: impl IntoIterator<Item = (&'a str, &'a ProgramSpec)>,
    new: &[ProgramSpec],
) -> Plan {
    let old: BTreeMap<&str, &ProgramSpec> = old.into_iter().collect();
    let mut plan = Plan::default();
    for spec in new {
        match old.get(spec.name.as_str()) {
            None => plan.added.push(spec.clone()),
            Some(cur) if *cur != spec => plan.changed.push(spec.clone()),
            Some(_) => {}
        }
    }
    let new_names: std::collections::BTreeSet<&str> = new.iter().map(|s| s.name.as_str()).collect();
    plan.removed = old
        .keys()
        .filter(|n| !new_names.contains(*n))
        .map(|n| n.to_string())
        .collect();
    plan
}

/// Group names into start tiers by ascending priority (stop tiers are the reverse).
pub fn tiers<'a>(specs: impl IntoIterator<Item = &'a ProgramSpec>) -> Vec<Vec<String>> {
    let mut by_priority: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for s in specs {
        by_priority
            .entry(s.priority)
            .or_default()
            .push(s.name.clone());
    }
    by_priority.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Programs from ini text, through the real loader.
    fn specs(programs: &str) -> Vec<ProgramSpec> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fild.ini");
        std::fs::write(&path, format!("[supervisord]\n{programs}")).unwrap();
        crate::config::load(&path, &Default::default())
            .unwrap()
            .programs
    }

    fn old(s: &[ProgramSpec]) -> Vec<(&str, &ProgramSpec)> {
        s.iter().map(|p| (p.name.as_str(), p)).collect()
    }

    #[test]
    fn held_programs_leave_the_changes_applied_now() {
        let before = specs(
            "[program:a]\ncommand=/bin/true\n[program:m0]\ncommand=/bin/true\n[program:m1]\ncommand=/bin/true\n",
        );
        let after = specs(
            "[program:a]\ncommand=/bin/false\n[program:m0]\ncommand=/bin/false\n[program:m1]\ncommand=/bin/false\n[program:n]\ncommand=/bin/true\n",
        );
        let mut plan = diff(old(&before), &after);
        // Held: only changed ones (n is added, z unknown); the rest applies at once.
        let held = plan.hold(&["m1".into(), "m0".into(), "n".into(), "z".into()]);
        assert_eq!(held, ["m0", "m1"]);
        let now: Vec<&str> = plan.changed.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(now, ["a"]);
        assert_eq!(plan.added.len(), 1);
        // Held back, they are still changed the next time: a later reload rolls them again.
        let again = diff(old(&before), &after);
        assert_eq!(again.changed.len(), 3);
    }

    #[test]
    fn diff_sorts_added_changed_removed_and_leaves_the_rest() {
        let before = specs(
            "[program:a]\ncommand=/bin/true\n[program:b]\ncommand=/bin/true\n[program:c]\ncommand=/bin/true\n",
        );
        let after = specs(
            "[program:a]\ncommand=/bin/true\n[program:b]\ncommand=/bin/false\n[program:d]\ncommand=/bin/true\n",
        );
        let plan = diff(old(&before), &after);
        assert_eq!(
            plan.added
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["d"]
        );
        assert_eq!(
            plan.changed
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(plan.changed[0].command, ["/bin/false"], "the new spec");
        assert_eq!(plan.removed, ["c"]);
    }

    #[test]
    fn start_up_is_a_diff_from_nothing_and_the_same_config_changes_nothing() {
        let cfg = specs("[program:x]\ncommand=/bin/true\n[program:y]\ncommand=/bin/true\n");
        let plan = diff(Vec::new(), &cfg);
        assert_eq!(plan.added.len(), 2);
        assert!(plan.changed.is_empty() && plan.removed.is_empty());
        assert_eq!(diff(old(&cfg), &cfg), Plan::default());
    }

    #[test]
    fn group_membership_alone_is_a_change_of_that_program_only() {
        let before = specs("[program:m]\ncommand=/bin/true\n[program:n]\ncommand=/bin/true\n");
        let after = specs(
            "[program:m]\ncommand=/bin/true\n[program:n]\ncommand=/bin/true\n[group:g]\nprograms=m\n",
        );
        let plan = diff(old(&before), &after);
        assert_eq!(
            plan.changed
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["m"]
        );
        assert!(plan.added.is_empty() && plan.removed.is_empty());
    }

    #[test]
    fn tiers_go_by_ascending_priority() {
        let cfg = specs(
            "[program:late]\ncommand=/bin/true\npriority=200\n[program:early]\ncommand=/bin/true\npriority=100\n[program:also]\ncommand=/bin/true\npriority=100\n",
        );
        assert_eq!(tiers(&cfg), vec![vec!["early", "also"], vec!["late"]]);
    }
}
