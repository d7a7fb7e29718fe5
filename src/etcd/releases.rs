//! etcd releases: what a version is, which releases are known to be bad and what fild does
//! about each, which upgrades the etcd project supports, which health endpoints a version
//! serves, and what etcd 3.6 renamed the `--experimental-*` flags to. Every decision here is a
//! pure function of versions (and of a binary's `--help` text); running the binary is
//! [`super::binary_probe`]'s job.
//!
//! The one table of known-bad releases is [`HAZARDS`]; the upgrade gates are [`GATES`]; the
//! flag renames are [`FLAG_RENAMES`], applied by [`translate_flags`].

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
    let offered = |flag: &str| help_lists(help, flag);
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

/// What an `--experimental-*` flag became in etcd 3.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renamed {
    /// A flag of the same value under a new name (`--corrupt-check-time`).
    Flag(&'static str),
    /// A boolean flag that became a server feature gate: `--feature-gates=NAME=true`.
    Gate(&'static str),
}

/// One rename of etcd 3.6: the old flag name (without dashes) and what it became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagRename {
    pub old: &'static str,
    pub new: Renamed,
}

const fn flag(old: &'static str, new: &'static str) -> FlagRename {
    FlagRename {
        old,
        new: Renamed::Flag(new),
    }
}

const fn gate(old: &'static str, gate: &'static str) -> FlagRename {
    FlagRename {
        old,
        new: Renamed::Gate(gate),
    }
}

/// The version that renamed the `--experimental-*` flags (3.7 deletes the old names, etcd-io/etcd
/// PR 19959).
pub const RENAMED_IN: Version = Version::new(3, 6, 0);

/// etcd 3.6's renames of the `--experimental-*` flags, as v3.6.0 ships them: the value flags
/// of `server/embed/config.go`'s `experimentalFlagMigrationMap` (plus
/// `--experimental-warning-unary-request-duration`, which etcdmain's config deprecates on its
/// own), and the boolean flags of `server/features`' `ExperimentalFlagToFeatureMap`, which
/// became feature gates (both maps unchanged through v3.6.14; etcd's `--help` names each
/// replacement).
pub const FLAG_RENAMES: &[FlagRename] = &[
    flag(
        "experimental-compact-hash-check-time",
        "compact-hash-check-time",
    ),
    flag("experimental-corrupt-check-time", "corrupt-check-time"),
    flag(
        "experimental-compaction-batch-limit",
        "compaction-batch-limit",
    ),
    flag(
        "experimental-watch-progress-notify-interval",
        "watch-progress-notify-interval",
    ),
    flag(
        "experimental-warning-apply-duration",
        "warning-apply-duration",
    ),
    flag(
        "experimental-bootstrap-defrag-threshold-megabytes",
        "bootstrap-defrag-threshold-megabytes",
    ),
    flag("experimental-memory-mlock", "memory-mlock"),
    flag(
        "experimental-snapshot-catchup-entries",
        "snapshot-catchup-entries",
    ),
    flag(
        "experimental-compaction-sleep-interval",
        "compaction-sleep-interval",
    ),
    flag("experimental-downgrade-check-time", "downgrade-check-time"),
    flag(
        "experimental-peer-skip-client-san-verification",
        "peer-skip-client-san-verification",
    ),
    flag(
        "experimental-enable-distributed-tracing",
        "enable-distributed-tracing",
    ),
    flag(
        "experimental-distributed-tracing-address",
        "distributed-tracing-address",
    ),
    flag(
        "experimental-distributed-tracing-service-name",
        "distributed-tracing-service-name",
    ),
    flag(
        "experimental-distributed-tracing-instance-id",
        "distributed-tracing-instance-id",
    ),
    flag(
        "experimental-distributed-tracing-sampling-rate",
        "distributed-tracing-sampling-rate",
    ),
    flag(
        "experimental-warning-unary-request-duration",
        "warning-unary-request-duration",
    ),
    gate(
        "experimental-stop-grpc-service-on-defrag",
        "StopGRPCServiceOnDefrag",
    ),
    gate("experimental-initial-corrupt-check", "InitialCorruptCheck"),
    gate(
        "experimental-compact-hash-check-enabled",
        "CompactHashCheck",
    ),
    gate(
        "experimental-txn-mode-write-with-shared-buffer",
        "TxnModeWriteWithSharedBuffer",
    ),
    gate("experimental-enable-lease-checkpoint", "LeaseCheckpoint"),
    gate(
        "experimental-enable-lease-checkpoint-persist",
        "LeaseCheckpointPersist",
    ),
];

/// The flag etcd's feature gates are set with.
pub const FEATURE_GATES: &str = "feature-gates";

/// Whether a binary's `--help` text lists `flag` (`--name`): a line that starts with it,
/// followed by nothing, a space, a tab or `=` (so no other flag it is a prefix of counts).
pub fn help_lists(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        l.trim_start()
            .strip_prefix(flag)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '=', '\t']))
    })
}

/// Go's `strconv.ParseBool`, which etcd's boolean flags use.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A flag argument split: its dashes (`-` or `--`, Go's flag package takes both), its name
/// and the value after `=`, if any.
fn split_flag(arg: &str) -> Option<(&str, &str, Option<&str>)> {
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() || body.starts_with('-') {
        return None;
    }
    let dashes = &arg[..arg.len() - body.len()];
    Some(match body.split_once('=') {
        Some((n, v)) => (dashes, n, Some(v)),
        None => (dashes, body, None),
    })
}

/// The kit's argv for a binary of version `v` whose `--help` says `help`, with etcd 3.6's
/// renames of the `--experimental-*` flags ([`FLAG_RENAMES`]) applied, and notes for the
/// operator. One template then works across versions: below 3.6 the argv is returned as it
/// is; from 3.6 on, an old name becomes the new one where the binary's `--help` lists the
/// new one (`--feature-gates` and the gate's name, for a flag that became a gate), and is kept
/// as the kit wrote it otherwise (noted where the help lists neither).
///
/// A renamed value flag keeps its value in either form (`--old=V` gives `--new=V`, `--old V`
/// gives `--new V`). A boolean that became a gate is `--old` (true) or `--old=VALUE` (Go's
/// flag package never takes a boolean's value from the next argument); all the gates, with
/// the `--feature-gates` the argv already has, merge into one `--feature-gates=A=true,B=false`
/// argument where the first of them was. etcd refuses an old flag beside its own gate: the
/// gate the kit set explicitly wins and the old flag is dropped (noted). `argv[0]` (the binary)
/// and unknown flags pass through untouched.
pub fn translate_flags(v: Version, help: &str, argv: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    if v < RENAMED_IN {
        return (argv, notes);
    }
    let gates_offered = help_lists(help, &format!("--{FEATURE_GATES}"));
    let gate_offered = |g: &str| gates_offered && help.contains(&format!("{g}="));
    // The explicit gates the argv sets (`--feature-gates=...` or `--feature-gates ...`).
    let mut explicit: Vec<(String, String)> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        if let Some((_, name, value)) = split_flag(&argv[i])
            && name == FEATURE_GATES
        {
            let value = match value {
                Some(v) => v.to_string(),
                None => {
                    i += 1;
                    argv.get(i).cloned().unwrap_or_default()
                }
            };
            for kv in value.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                explicit.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        i += 1;
    }
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    // The argv's own --feature-gates arguments (indices into `out`, values included), where
    // the first translated gate was, and the gates translated.
    let mut gate_args: Vec<usize> = Vec::new();
    let mut slot: Option<usize> = None;
    let mut translated: Vec<(String, String)> = Vec::new();
    let mut it = argv.into_iter().enumerate().peekable();
    while let Some((n, arg)) = it.next() {
        let split = if n == 0 { None } else { split_flag(&arg) };
        let Some((dashes, name, value)) = split else {
            out.push(arg);
            continue;
        };
        if name == FEATURE_GATES {
            gate_args.push(out.len());
            out.push(arg.clone());
            if value.is_none()
                && let Some((_, next)) = it.next()
            {
                gate_args.push(out.len());
                out.push(next);
            }
            continue;
        }
        let Some(r) = FLAG_RENAMES.iter().find(|r| r.old == name) else {
            out.push(arg);
            continue;
        };
        let old = format!("--{}", r.old);
        match r.new {
            Renamed::Flag(new) if help_lists(help, &format!("--{new}")) => {
                out.push(match value {
                    Some(val) => format!("{dashes}{new}={val}"),
                    None => format!("{dashes}{new}"),
                });
                // `--old V`: the value stays as it is (it is no flag to rename).
                if value.is_none()
                    && it.peek().is_some_and(|(_, a)| split_flag(a).is_none())
                    && let Some((_, val)) = it.next()
                {
                    out.push(val);
                }
            }
            Renamed::Gate(g) if gate_offered(g) => {
                let Some(on) = go_bool(value.unwrap_or("true")) else {
                    notes.push(format!(
                        "{arg}: not a boolean, so not made --{FEATURE_GATES}={g}=...: passed as the kit wrote it"
                    ));
                    out.push(arg);
                    continue;
                };
                if let Some((_, set)) = explicit.iter().find(|(k, _)| k == g) {
                    notes.push(format!(
                        "{arg} dropped: the argv sets --{FEATURE_GATES}={g}={set} itself, and etcd {v} refuses both"
                    ));
                    continue;
                }
                slot.get_or_insert(out.len());
                // Given twice, the last one counts (as etcd's flag parsing would have it).
                translated.retain(|(k, _)| k != g);
                translated.push((g.to_string(), on.to_string()));
            }
            _ => {
                if !help_lists(help, &old) {
                    let new = match r.new {
                        Renamed::Flag(f) => format!("--{f}"),
                        Renamed::Gate(g) => format!("--{FEATURE_GATES}={g}=true"),
                    };
                    notes.push(format!(
                        "etcd {v}'s --help lists neither {old} nor {new}: {arg} passed as the kit wrote it"
                    ));
                }
                // Its value, if any, follows untouched.
                out.push(arg);
            }
        }
    }
    if translated.is_empty() {
        return (out, notes);
    }
    // One --feature-gates: the explicit gates (in their order), then the translated ones,
    // where the first --feature-gates or translated flag was.
    let at = gate_args
        .first()
        .copied()
        .into_iter()
        .chain(slot)
        .min()
        .unwrap_or(out.len());
    let merged: Vec<String> = explicit
        .into_iter()
        .chain(translated)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let merged = format!("--{FEATURE_GATES}={}", merged.join(","));
    let mut result = Vec::with_capacity(out.len() + 1);
    let mut merged = Some(merged);
    for (n, a) in out.into_iter().enumerate() {
        if n == at {
            result.extend(merged.take());
        }
        if !gate_args.contains(&n) {
            result.push(a);
        }
    }
    result.extend(merged.take());
    (result, notes)
}

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

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A 3.6 `--help` as v3.6.0 prints it (shortened): both names of every renamed flag, and
    /// the feature gates under `--feature-gates`.
    fn help_3_6() -> String {
        let mut h = String::from(
            "  --feature-gates ''\n    A set of key=value pairs that describe server level feature gates for alpha/experimental features. Options are:\n",
        );
        for r in FLAG_RENAMES {
            if let Renamed::Gate(g) = r.new {
                h.push_str(&format!("    {g}=true|false (ALPHA - default=false)\n"));
            }
        }
        h.push_str("  --max-txn-ops '128'\n");
        for r in FLAG_RENAMES {
            h.push_str(&format!("  --{} 'x'\n    Deprecated in v3.6.\n", r.old));
            if let Renamed::Flag(f) = r.new {
                h.push_str(&format!("  --{f} 'x'\n    The same.\n"));
            }
        }
        h
    }

    #[test]
    fn every_rename_row_in_both_forms() {
        let help = help_3_6();
        let bin = "/opt/etcd-3.6/etcd";
        assert_eq!(FLAG_RENAMES.len(), 23);
        for r in FLAG_RENAMES {
            let old = format!("--{}", r.old);
            match r.new {
                Renamed::Flag(new) => {
                    // --old=V
                    let (a, notes) = translate_flags(
                        v("3.6.0"),
                        &help,
                        args(&[bin, &format!("{old}=7"), "--max-txn-ops", "9"]),
                    );
                    assert_eq!(a, args(&[bin, &format!("--{new}=7"), "--max-txn-ops", "9"]));
                    assert!(notes.is_empty(), "{notes:?}");
                    // --old V: the value stays as it is.
                    let (a, _) = translate_flags(
                        v("3.6.16"),
                        &help,
                        args(&[bin, &old, "7", "--max-txn-ops", "9"]),
                    );
                    assert_eq!(
                        a,
                        args(&[bin, &format!("--{new}"), "7", "--max-txn-ops", "9"])
                    );
                }
                Renamed::Gate(g) => {
                    let (a, notes) = translate_flags(v("3.6.0"), &help, args(&[bin, &old]));
                    assert_eq!(a, args(&[bin, &format!("--feature-gates={g}=true")]));
                    assert!(notes.is_empty(), "{notes:?}");
                    let (a, _) = translate_flags(
                        v("3.6.0"),
                        &help,
                        args(&[bin, &format!("{old}=false"), "--max-txn-ops", "9"]),
                    );
                    assert_eq!(
                        a,
                        args(&[
                            bin,
                            &format!("--feature-gates={g}=false"),
                            "--max-txn-ops",
                            "9"
                        ])
                    );
                }
            }
        }
        // The renames the issue names, spelled out.
        let (a, _) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[
                bin,
                "--experimental-corrupt-check-time=5m",
                "--experimental-compact-hash-check-time",
                "2m",
                "--experimental-warning-apply-duration=200ms",
                "--experimental-snapshot-catchup-entries=5000",
            ]),
        );
        assert_eq!(
            a,
            args(&[
                bin,
                "--corrupt-check-time=5m",
                "--compact-hash-check-time",
                "2m",
                "--warning-apply-duration=200ms",
                "--snapshot-catchup-entries=5000",
            ])
        );
        // Go's flag package also takes one dash.
        let (a, _) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[bin, "-experimental-corrupt-check-time=1m"]),
        );
        assert_eq!(a, args(&[bin, "-corrupt-check-time=1m"]));
    }

    #[test]
    fn gates_merge_into_one_feature_gates_argument() {
        let help = help_3_6();
        let (a, notes) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[
                "etcd",
                "--name",
                "boot0",
                "--experimental-initial-corrupt-check=true",
                "--experimental-corrupt-check-time=5m",
                "--experimental-compact-hash-check-enabled",
                "--feature-gates",
                "LeaseCheckpoint=true",
                "--max-txn-ops",
                "9",
            ]),
        );
        assert_eq!(
            a,
            args(&[
                "etcd",
                "--name",
                "boot0",
                "--feature-gates=LeaseCheckpoint=true,InitialCorruptCheck=true,CompactHashCheck=true",
                "--corrupt-check-time=5m",
                "--max-txn-ops",
                "9",
            ])
        );
        assert!(notes.is_empty(), "{notes:?}");
        // The argv's own --feature-gates comes first: the merged one goes there.
        let (a, _) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[
                "etcd",
                "--feature-gates=StopGRPCServiceOnDefrag=true",
                "--experimental-enable-lease-checkpoint",
                "--experimental-enable-lease-checkpoint-persist=1",
            ]),
        );
        assert_eq!(
            a,
            args(&[
                "etcd",
                "--feature-gates=StopGRPCServiceOnDefrag=true,LeaseCheckpoint=true,LeaseCheckpointPersist=true",
            ])
        );
        // An old flag beside its own gate (etcd refuses both): the explicit gate wins.
        let (a, notes) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[
                "etcd",
                "--experimental-initial-corrupt-check",
                "--feature-gates=InitialCorruptCheck=false",
            ]),
        );
        assert_eq!(
            a,
            args(&["etcd", "--feature-gates=InitialCorruptCheck=false"])
        );
        assert!(
            notes.len() == 1 && notes[0].contains("dropped") && notes[0].contains("refuses both"),
            "{notes:?}"
        );
        // Given twice, the last one counts.
        let (a, _) = translate_flags(
            v("3.6.0"),
            &help,
            args(&[
                "etcd",
                "--experimental-initial-corrupt-check=false",
                "--experimental-initial-corrupt-check",
            ]),
        );
        assert_eq!(
            a,
            args(&["etcd", "--feature-gates=InitialCorruptCheck=true"])
        );
        // No gate translated: the argv's own --feature-gates stays as written.
        let written = args(&["etcd", "--feature-gates", "CompactHashCheck=true"]);
        assert_eq!(
            translate_flags(v("3.6.0"), &help, written.clone()).0,
            written
        );
        // A value that is no boolean is not made a gate.
        let (a, notes) = translate_flags(
            v("3.6.0"),
            &help,
            args(&["etcd", "--experimental-initial-corrupt-check=yes"]),
        );
        assert_eq!(
            a,
            args(&["etcd", "--experimental-initial-corrupt-check=yes"])
        );
        assert!(notes[0].contains("not a boolean"), "{notes:?}");
    }

    #[test]
    fn unknown_flags_pass_through_and_older_versions_are_left_alone() {
        let help = help_3_6();
        let argv = args(&[
            "/x/--experimental-memory-mlock",
            "--max-txn-ops",
            "9",
            "--experimental-enable-v2v3=/v2",
            "--experimental-max-learners=2",
            "--log-level",
            "warn",
            "-",
            "--",
        ]);
        let (a, notes) = translate_flags(v("3.6.0"), &help, argv.clone());
        assert_eq!(a, argv);
        assert!(notes.is_empty(), "{notes:?}");
        // Below 3.6 nothing changes, whatever the help lists.
        let old = args(&[
            "etcd",
            "--experimental-initial-corrupt-check=true",
            "--experimental-corrupt-check-time=5m",
            "--experimental-compact-hash-check-enabled",
        ]);
        for s in ["3.4.23", "3.5.1", "3.5.34"] {
            let (a, notes) = translate_flags(v(s), &help, old.clone());
            assert_eq!(a, old, "{s}");
            assert!(notes.is_empty(), "{s}: {notes:?}");
        }
        // 3.7 lists only the new names: translated.
        let help_3_7 = "  --feature-gates ''\n    InitialCorruptCheck=true|false (ALPHA - default=false)\n  --corrupt-check-time '0s'\n";
        let (a, notes) = translate_flags(v("3.7.3"), help_3_7, old.clone());
        assert_eq!(
            a,
            args(&[
                "etcd",
                "--feature-gates=InitialCorruptCheck=true",
                "--corrupt-check-time=5m",
                "--experimental-compact-hash-check-enabled",
            ])
        );
        // CompactHashCheck is not among the binary's gates, nor the old flag among its flags.
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("etcd 3.7.3's --help lists neither --experimental-compact-hash-check-enabled nor --feature-gates=CompactHashCheck=true"),
            "{notes:?}"
        );
        // A 3.6 binary whose help lists only the old name keeps it, without a note.
        let only_old = "  --experimental-corrupt-check-time '0s'\n";
        let (a, notes) = translate_flags(
            v("3.6.0"),
            only_old,
            args(&["etcd", "--experimental-corrupt-check-time=5m"]),
        );
        assert_eq!(a, args(&["etcd", "--experimental-corrupt-check-time=5m"]));
        assert!(notes.is_empty(), "{notes:?}");
        // No help at all: kept, and noted.
        let (a, notes) = translate_flags(
            v("3.6.0"),
            "",
            args(&["etcd", "--experimental-corrupt-check-time", "5m"]),
        );
        assert_eq!(
            a,
            args(&["etcd", "--experimental-corrupt-check-time", "5m"])
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
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
