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
    use crate::supervisor::resolve_names;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_resolve_like_supervisorctl() {
        let programs = [
            ("etcd-0", "etcd"),
            ("etcd-1", "etcd"),
            ("gw", "gw"),
            ("x", "x"),
        ];
        let r = |n: &[&str]| resolve_names(&programs, &names(n));
        assert_eq!(
            r(&["all"]).unwrap(),
            names(&["etcd-0", "etcd-1", "gw", "x"])
        );
        assert_eq!(r(&["etcd:*"]).unwrap(), names(&["etcd-0", "etcd-1"]));
        assert_eq!(r(&["etcd:etcd-1"]).unwrap(), names(&["etcd-1"]));
        assert_eq!(r(&["etcd"]).unwrap(), names(&["etcd-0", "etcd-1"]));
        assert_eq!(
            r(&["etcd-1", "etcd:*"]).unwrap(),
            names(&["etcd-1", "etcd-0"])
        );
        assert_eq!(
            r(&["x", "nope", "g:*"]).unwrap_err(),
            names(&["nope", "g:*"])
        );
    }
}
