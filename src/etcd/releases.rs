//! etcd releases: what a version is, which releases are known to be bad and what fild does
//! about each, which upgrades the etcd project supports, and which health endpoints a
//! version serves. Every decision here is a pure function of versions (and of a binary's
//! `--help` text); running the binary is [`super::binary_probe`]'s job.
//!
//! The one table of known-bad releases is [`HAZARDS`]; the upgrade gates are [`GATES`].

use std::fmt;

/// An etcd version, `major.minor.patch` (a pre-release or build suffix is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// `3.5`: the cluster version's granularity.
    pub fn minor_line(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{0:?} is not an etcd version (expected MAJOR.MINOR.PATCH, such as 3.5.1)")]
    Malformed(String),
    #[error("no \"etcd Version: X.Y.Z\" line in the binary's --version output: {0:?}")]
    NoVersionLine(String),
}

/// `3.5.1`, `v3.5.1`, `3.6.0-rc.1` (the suffix dropped) or `3.5` (patch 0: the cluster
/// version's form).
pub fn parse(s: &str) -> Result<Version, VersionError> {
    let bad = || VersionError::Malformed(s.to_string());
    let t = s.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let core = t.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.');
    let mut num = |need: bool| -> Result<u32, VersionError> {
        match parts.next() {
            Some(p) if !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| bad())
            }
            None if !need => Ok(0),
            _ => Err(bad()),
        }
    };
    let v = Version::new(num(true)?, num(true)?, num(false)?);
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(v)
}

/// The version `etcd --version` prints: the line `etcd Version: 3.4.23` (3.4, 3.5 and 3.6
/// print the same first line, then Git SHA, Go version and OS/Arch).
pub fn parse_version_output(text: &str) -> Result<Version, VersionError> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("etcd Version:"))
        .ok_or_else(|| {
            let head: String = text.chars().take(120).collect();
            VersionError::NoVersionLine(head)
        })?;
    parse(line)
}

/// What fild does about a known-bad release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start the member with the corruption checks its binary offers
    /// ([`corrupt_check_flags`]), and `filc etcd status` warns.
    CorruptChecks,
    /// `filc etcd status` warns.
    Warn,
    /// Rescue (`--force-new-cluster`) and restore re-check the member list afterwards and
    /// remove leftovers ([`needs_zombie_check`]).
    ZombieCheck,
    /// `filc etcd status` gives a notice (end of life: plan the upgrade).
    Notice,
}

/// One row of the table: versions `from` (inclusive) up to `until` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hazard {
    pub from: Version,
    pub until: Version,
    /// What goes wrong, for the operator.
    pub what: &'static str,
    pub action: Action,
}

impl Hazard {
    pub fn covers(&self, v: Version) -> bool {
        self.from <= v && v < self.until
    }
}

/// The known-bad releases, in one place (sources: shared/reference/etcd-versions.md).
pub const HAZARDS: &[Hazard] = &[
    Hazard {
        from: Version::new(3, 5, 0),
        until: Version::new(3, 5, 3),
        what: "may lose committed transactions when a member is killed under load \
               (etcd-io/etcd issue 13766, fixed in 3.5.3); fild starts it with the corruption checks",
        action: Action::CorruptChecks,
    },
    Hazard {
        from: Version::new(3, 0, 0),
        until: Version::new(3, 5, 6),
        what: "a crash during defragmentation can leave revisions inconsistent (fixed in 3.5.6)",
        action: Action::Warn,
    },
    Hazard {
        from: Version::new(3, 0, 0),
        until: Version::new(3, 5, 22),
        what: "--force-new-cluster can leave zombie members in the member list (fixed in 3.5.22); \
               rescue re-checks the member list afterwards",
        action: Action::ZombieCheck,
    },
    Hazard {
        from: Version::new(3, 4, 0),
        until: Version::new(3, 5, 0),
        what: "the 3.4 line reached end of life (3.4.45 was its last patch): plan the upgrade to 3.5",
        action: Action::Notice,
    },
];

/// The table's rows that cover `v`.
pub fn hazards(v: Version) -> impl Iterator<Item = &'static Hazard> {
    HAZARDS.iter().filter(move |h| h.covers(v))
}

fn has(v: Version, a: Action) -> bool {
    hazards(v).any(|h| h.action == a)
}

/// Whether members of `v` start with the corruption checks.
pub fn needs_corrupt_checks(v: Version) -> bool {
    has(v, Action::CorruptChecks)
}

/// Whether a rescue on `v` must re-check the member list for zombie members.
pub fn needs_zombie_check(v: Version) -> bool {
    has(v, Action::ZombieCheck)
}

/// A release to upgrade to only with the operator's explicit consent (a data hazard).
pub fn is_known_bad(v: Version) -> bool {
    hazards(v).any(|h| matches!(h.action, Action::CorruptChecks | Action::Warn))
}

/// The corruption-check flags for a member of `v` whose binary's `--help` says `help`: the
/// initial check and the periodic one, each only when the binary lists it and the kit's
/// argv (`argv`: extra flags included) does not set it already. Empty outside
/// [`Action::CorruptChecks`] releases.
pub fn corrupt_check_flags(v: Version, help: &str, argv: &[String]) -> Vec<String> {
    if !needs_corrupt_checks(v) {
        return Vec::new();
    }
    let offered = |flag: &str| {
        help.lines().any(|l| {
            l.trim_start()
                .strip_prefix(flag)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '=', '\t']))
        })
    };
    let set = |flag: &str| {
        argv.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    [
        ("--experimental-initial-corrupt-check", "true"),
        ("--experimental-corrupt-check-time", CORRUPT_CHECK_EVERY),
    ]
    .iter()
    .filter(|(f, _)| offered(f) && !set(f))
    .map(|(f, val)| format!("{f}={val}"))
    .collect()
}

/// How often the periodic corruption check compares the members' hashes.
pub const CORRUPT_CHECK_EVERY: &str = "5m";

/// What `filc etcd status` says about the versions its members run: one line per version
/// and table row that warns or gives a notice, naming the members. `members`: (member
/// name, its version).
pub fn status_warnings(members: &[(String, Version)]) -> Vec<String> {
    let mut versions: Vec<Version> = members.iter().map(|(_, v)| *v).collect();
    versions.sort();
    versions.dedup();
    let mut out = Vec::new();
    for v in versions {
        let mut names: Vec<&str> = members
            .iter()
            .filter(|(_, mv)| *mv == v)
            .map(|(n, _)| n.as_str())
            .collect();
        names.sort();
        let who = names.join(", ");
        let runs = if names.len() == 1 { "runs" } else { "run" };
        for h in hazards(v) {
            let kind = match h.action {
                Action::CorruptChecks | Action::Warn => "known-bad release",
                Action::Notice => "notice",
                Action::ZombieCheck => continue,
            };
            out.push(format!("{who} {runs} etcd {v}: {kind}: {}", h.what));
        }
    }
    out
}

/// Below `gate` no upgrade to the `to_minor` line (`major.minor`) is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub to_major: u32,
    pub to_minor: u32,
    pub gate: Version,
}

/// The upgrade gates: 3.5.26 before 3.6 (the zombie-members fixes), 3.6.11 before 3.7.
pub const GATES: &[Gate] = &[
    Gate {
        to_major: 3,
        to_minor: 6,
        gate: Version::new(3, 5, 26),
    },
    Gate {
        to_major: 3,
        to_minor: 7,
        gate: Version::new(3, 6, 11),
    },
];

/// Why an upgrade from one version to another is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{from} to {to} is a downgrade: etcd 3.4 and 3.5 have none, and an older binary cannot open a newer data dir"
    )]
    Downgrade { from: Version, to: Version },
    #[error("already on {0}: nothing to upgrade")]
    Same(Version),
    #[error("{from} to {to} changes the major version: etcd supports no such upgrade")]
    Major { from: Version, to: Version },
    #[error(
        "{from} to {to} skips a minor version: upgrade one minor version at a time (to {next} first)"
    )]
    SkipsMinor {
        from: Version,
        to: Version,
        next: String,
    },
    #[error(
        "{from} to {to}: be on {gate} or later before moving to {line} (upgrade within {from_line} first)"
    )]
    BelowGate {
        from: Version,
        to: Version,
        gate: Version,
        line: String,
        from_line: String,
    },
}

/// Whether the etcd project supports upgrading a member from `from` to `to`: newer, the same
/// major, at most one minor up, and from at least the gate of the line it moves to. (Patch
/// upgrades within a line always are.)
pub fn upgrade_verdict(from: Version, to: Version) -> Result<(), Refusal> {
    if to == from {
        return Err(Refusal::Same(from));
    }
    if to < from {
        return Err(Refusal::Downgrade { from, to });
    }
    if to.major != from.major {
        return Err(Refusal::Major { from, to });
    }
    if to.minor > from.minor + 1 {
        return Err(Refusal::SkipsMinor {
            from,
            to,
            next: format!("{}.{}", from.major, from.minor + 1),
        });
    }
    if to.minor == from.minor + 1
        && let Some(g) = GATES
            .iter()
            .find(|g| g.to_major == to.major && g.to_minor == to.minor)
        && from < g.gate
    {
        return Err(Refusal::BelowGate {
            from,
            to,
            gate: g.gate,
            line: to.minor_line(),
            from_line: from.minor_line(),
        });
    }
    Ok(())
}

/// The health endpoints a member of a version serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEndpoints {
    /// `/readyz` (serving) and `/livez` (alive): 3.4.29+ within 3.4, 3.5.11+ within 3.5,
    /// every 3.6 and later.
    ReadyzLivez,
    /// Only `/health`.
    Health,
}

/// Which health endpoints to ask a member of `v`.
pub fn health_endpoints(v: Version) -> HealthEndpoints {
    let since = match (v.major, v.minor) {
        (3, 4) => Some(29),
        (3, 5) => Some(11),
        (3, m) if m >= 6 => Some(0),
        (m, _) if m > 3 => Some(0),
        _ => None,
    };
    match since {
        Some(p) if v.patch >= p => HealthEndpoints::ReadyzLivez,
        _ => HealthEndpoints::Health,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse(s).unwrap()
    }

    #[test]
    fn version_output_of_each_line() {
        let debian = "etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)\nGo Version: go1.19.8\nGo OS/Arch: linux/amd64\n";
        assert_eq!(
            parse_version_output(debian).unwrap(),
            Version::new(3, 4, 23)
        );
        let pypi = "etcd Version: 3.5.1\nGit SHA: e8732fb5f\nGo Version: go1.16.3\nGo OS/Arch: linux/amd64\n";
        assert_eq!(parse_version_output(pypi).unwrap(), Version::new(3, 5, 1));
        // A stand-in binary that only prints a version.
        assert_eq!(
            parse_version_output("etcd Version: 3.6.0\n").unwrap(),
            Version::new(3, 6, 0)
        );
        assert_eq!(
            parse_version_output("etcd Version: 3.7.0-rc.1").unwrap(),
            Version::new(3, 7, 0)
        );
        assert!(matches!(
            parse_version_output("etcdctl version: 3.5.1\nAPI version: 3.5\n"),
            Err(VersionError::NoVersionLine(_))
        ));
        assert!(matches!(
            parse_version_output("etcd Version: three\n"),
            Err(VersionError::Malformed(_))
        ));
        assert!(parse_version_output("").is_err());
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(v("v3.5.26"), Version::new(3, 5, 26));
        assert_eq!(v("3.5"), Version::new(3, 5, 0));
        assert_eq!(v("3.5.0").minor_line(), "3.5");
        assert_eq!(v("3.4.23").to_string(), "3.4.23");
        for bad in [
            "",
            "3",
            "3.",
            "3.5.1.2",
            "a.b.c",
            "3.-5.1",
            "99999999.1.1",
            " . . ",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(v("3.4.45") < v("3.5.0"));
        assert!(v("3.5.9") < v("3.5.10"));
        assert!(v("3.5.34") < v("3.6.0"));
    }

    #[test]
    fn every_row_of_the_table() {
        // 3.5.0-3.5.2: lost transactions, corruption checks.
        for s in ["3.5.0", "3.5.1", "3.5.2"] {
            assert!(needs_corrupt_checks(v(s)), "{s}");
            assert!(is_known_bad(v(s)), "{s}");
        }
        for s in ["3.4.23", "3.5.3", "3.6.0"] {
            assert!(!needs_corrupt_checks(v(s)), "{s}");
        }
        // Before 3.5.6: the defrag crash, a warning.
        let defrag = |s: &str| hazards(v(s)).any(|h| h.action == Action::Warn);
        assert!(defrag("3.4.23") && defrag("3.5.5"));
        assert!(!defrag("3.5.6") && !defrag("3.6.0"));
        assert!(is_known_bad(v("3.5.5")) && !is_known_bad(v("3.5.6")));
        // Before 3.5.22: zombie members after --force-new-cluster.
        assert!(needs_zombie_check(v("3.4.23")));
        assert!(needs_zombie_check(v("3.5.1")));
        assert!(needs_zombie_check(v("3.5.21")));
        assert!(!needs_zombie_check(v("3.5.22")));
        assert!(!needs_zombie_check(v("3.6.0")));
        // 3.4: end of life.
        let eol = |s: &str| hazards(v(s)).any(|h| h.action == Action::Notice);
        assert!(eol("3.4.0") && eol("3.4.23") && eol("3.4.45"));
        assert!(!eol("3.5.0") && !eol("3.3.9"));
        // A good release of today has no row.
        assert_eq!(hazards(v("3.5.34")).count(), 0);
        assert_eq!(hazards(v("3.6.16")).count(), 0);
        for h in HAZARDS {
            assert!(h.from < h.until, "{h:?}");
        }
    }

    #[test]
    fn corruption_checks_only_where_needed_and_offered() {
        let help = "  --experimental-initial-corrupt-check 'false'\n    Enable to check data corruption before serving any client/peer traffic.\n  --experimental-corrupt-check-time '0s'\n    Duration of time between cluster corruption check passes.\n";
        assert_eq!(
            corrupt_check_flags(v("3.5.1"), help, &[]),
            [
                "--experimental-initial-corrupt-check=true",
                "--experimental-corrupt-check-time=5m"
            ]
        );
        // A good version gets none, whatever its binary offers.
        assert!(corrupt_check_flags(v("3.5.3"), help, &[]).is_empty());
        assert!(corrupt_check_flags(v("3.4.23"), help, &[]).is_empty());
        // A binary that does not list a flag does not get it (no prefix matches either).
        let only_initial = "  --experimental-initial-corrupt-check 'false'\n  --experimental-corrupt-check-timeout '1s'\n";
        assert_eq!(
            corrupt_check_flags(v("3.5.0"), only_initial, &[]),
            ["--experimental-initial-corrupt-check=true"]
        );
        assert!(corrupt_check_flags(v("3.5.2"), "", &[]).is_empty());
        // A flag the kit already sets (extra_flags) is left as the operator set it.
        let argv = vec![
            "--experimental-corrupt-check-time".to_string(),
            "1h".to_string(),
            "--experimental-initial-corrupt-check=false".to_string(),
        ];
        assert!(corrupt_check_flags(v("3.5.1"), help, &argv).is_empty());
    }

    #[test]
    fn status_warnings_name_the_members_per_version() {
        let m = |n: &str, s: &str| (n.to_string(), v(s));
        let w = status_warnings(&[m("boot1", "3.4.23"), m("boot0", "3.4.23")]);
        assert!(
            w.iter().any(|l| l.starts_with(
                "boot0, boot1 run etcd 3.4.23: notice: the 3.4 line reached end of life"
            )),
            "{w:?}"
        );
        assert!(!w.iter().any(|l| l.contains("zombie")), "{w:?}");
        let w = status_warnings(&[m("boot0", "3.5.1"), m("boot1", "3.5.34")]);
        assert!(
            w.iter().any(|l| l.starts_with(
                "boot0 runs etcd 3.5.1: known-bad release: may lose committed transactions"
            )),
            "{w:?}"
        );
        assert!(!w.iter().any(|l| l.contains("boot1")), "{w:?}");
        assert!(status_warnings(&[m("boot0", "3.6.16")]).is_empty());
    }

    #[test]
    fn upgrade_gates_and_jumps() {
        let ok = |a: &str, b: &str| upgrade_verdict(v(a), v(b));
        assert_eq!(ok("3.4.23", "3.5.1"), Ok(()));
        assert_eq!(ok("3.5.1", "3.5.34"), Ok(()));
        assert_eq!(ok("3.5.26", "3.6.0"), Ok(()));
        assert_eq!(ok("3.6.11", "3.7.0"), Ok(()));
        assert!(
            matches!(ok("3.5.25", "3.6.0"), Err(Refusal::BelowGate { gate, .. }) if gate == v("3.5.26"))
        );
        assert!(matches!(
            ok("3.5.1", "3.6.0"),
            Err(Refusal::BelowGate { .. })
        ));
        assert!(
            matches!(ok("3.6.10", "3.7.3"), Err(Refusal::BelowGate { gate, .. }) if gate == v("3.6.11"))
        );
        assert!(
            matches!(ok("3.4.23", "3.6.0"), Err(Refusal::SkipsMinor { ref next, .. }) if next == "3.5")
        );
        assert!(matches!(
            ok("3.5.34", "3.7.0"),
            Err(Refusal::SkipsMinor { .. })
        ));
        assert!(matches!(
            ok("3.5.1", "3.4.23"),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(
            ok("3.5.1", "3.5.0"),
            Err(Refusal::Downgrade { .. })
        ));
        assert!(matches!(ok("3.5.1", "3.5.1"), Err(Refusal::Same(_))));
        assert!(matches!(ok("3.7.3", "4.0.0"), Err(Refusal::Major { .. })));
        let e = ok("3.5.1", "3.6.0").unwrap_err().to_string();
        assert!(
            e.contains("be on 3.5.26 or later before moving to 3.6"),
            "{e}"
        );
    }

    #[test]
    fn health_endpoints_by_version() {
        use HealthEndpoints::*;
        for (s, want) in [
            ("3.4.23", Health),
            ("3.4.28", Health),
            ("3.4.29", ReadyzLivez),
            ("3.4.45", ReadyzLivez),
            ("3.5.1", Health),
            ("3.5.10", Health),
            ("3.5.11", ReadyzLivez),
            ("3.6.0", ReadyzLivez),
            ("3.7.3", ReadyzLivez),
            ("3.3.27", Health),
            ("4.0.0", ReadyzLivez),
        ] {
            assert_eq!(health_endpoints(v(s)), want, "{s}");
        }
    }
}
