//! `GET /metrics`: the Prometheus text exposition format 0.0.4, written by hand (see
//! ARCHITECTURE.md, Dependencies). A pure function of what the scrape gathered: the programs
//! as `/v1/processes` reports them, fild's own figures, and the etcd side's cached view
//! ([`EtcdFigures`]), so nothing here asks anything.
//!
//! Every name starts with `fild_` and carries its unit (`_seconds`, `_bytes`, `_total`);
//! every family has HELP and TYPE lines and its samples together. A state is a state set
//! (one sample per state, 1 for the current one), as Prometheus recommends for enums.

use std::fmt::Write;

use crate::api::{EtcdFigures, ProcessInfo, ProcessState};

/// The content type of the reply.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// fild's own figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Own {
    pub version: String,
    pub uptime_secs: f64,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub open_fds: u64,
    /// The `on_change` hook's runs and drops.
    pub on_change: crate::alert::Counts,
}

impl Own {
    /// Read from `/proc/self` (two small reads, no disk).
    pub fn read() -> Own {
        use crate::supervisor::procstat;
        let tps = procstat::ticks_per_second();
        let st = procstat::read(std::process::id() as i32);
        let now = procstat::uptime_secs().unwrap_or(0.0);
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Own {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: st.map_or(0.0, |s| (now - s.starttime as f64 / tps as f64).max(0.0)),
            cpu_seconds: st.map_or(0.0, |s| (s.utime + s.stime) as f64 / tps as f64),
            rss_bytes: st.map_or(0, |s| s.rss_pages * procstat::page_size()),
            open_fds,
            on_change: crate::alert::counts(),
        }
    }
}

const STATES: [ProcessState; 7] = [
    ProcessState::Stopped,
    ProcessState::Starting,
    ProcessState::Running,
    ProcessState::Backoff,
    ProcessState::Stopping,
    ProcessState::Exited,
    ProcessState::Fatal,
];

const VERDICTS: [&str; 3] = ["healthy", "degraded", "no_quorum"];

/// The alarms etcd raises; each member gets a sample for each.
const ALARMS: [&str; 2] = ["NOSPACE", "CORRUPT"];

/// The text being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // HELP text escapes backslash and newline; ours are constants without either.
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(k);
                self.0.push_str("=\"");
                escape_into(&mut self.0, v);
                self.0.push('"');
            }
            self.0.push('}');
        }
        self.0.push(' ');
        push_value(&mut self.0, value);
        self.0.push('\n');
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family with one sample per program.
    fn per_program(
        &mut self,
        procs: &[ProcessInfo],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&ProcessInfo) -> Option<f64>,
    ) {
        self.family(name, kind, help);
        for p in procs {
            if let Some(v) = value(p) {
                self.sample(name, &[("program", &p.name)], v);
            }
        }
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: integers without a fraction, the rest as Rust writes them (shortest
/// round-trip), the special values as Go's parser reads them.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The whole exposition. `etcd` is None where no etcd member is configured (its families
/// are then left out).
pub fn render(procs: &[ProcessInfo], own: &Own, etcd: Option<&EtcdFigures>) -> String {
    let mut o = Out(String::with_capacity(512 + procs.len() * 900));
    o.family(
        "fild_build_info",
        "gauge",
        "Always 1; the label version is fild's version.",
    );
    o.sample("fild_build_info", &[("version", &own.version)], 1.0);
    o.single(
        "fild_uptime_seconds",
        "gauge",
        "Seconds since this fild process started.",
        own.uptime_secs,
    );
    o.single(
        "fild_cpu_seconds_total",
        "counter",
        "User and system CPU time fild itself has used, in seconds.",
        own.cpu_seconds,
    );
    o.single(
        "fild_resident_memory_bytes",
        "gauge",
        "fild's own resident set size in bytes.",
        own.rss_bytes as f64,
    );
    o.single(
        "fild_open_fds",
        "gauge",
        "File descriptors fild itself holds open.",
        own.open_fds as f64,
    );

    o.family(
        "fild_on_change_runs_total",
        "counter",
        "Runs of the on_change hook by how they ended: ok, failed (non-zero exit, not started), timed_out.",
    );
    let c = &own.on_change;
    for (outcome, n) in [
        ("ok", c.runs_ok),
        ("failed", c.runs_failed),
        ("timed_out", c.runs_timed_out),
    ] {
        o.sample(
            "fild_on_change_runs_total",
            &[("outcome", outcome)],
            n as f64,
        );
    }
    o.single(
        "fild_on_change_dropped_events_total",
        "counter",
        "Events the on_change hook's queue had no room for (each told in an overflow event).",
        c.dropped as f64,
    );

    o.family(
        "fild_program_state",
        "gauge",
        "1 for the state each program is in (supervisord's states), 0 for the others.",
    );
    for p in procs {
        for s in STATES {
            o.sample(
                "fild_program_state",
                &[("program", &p.name), ("state", s.as_str())],
                flag(p.state == s),
            );
        }
    }
    o.per_program(
        procs,
        "fild_program_pid",
        "gauge",
        "The program's process id; 0 when it is not running.",
        |p| Some(f64::from(p.pid)),
    );
    o.per_program(
        procs,
        "fild_program_uptime_seconds",
        "gauge",
        "Seconds since the program's current process started; 0 when it is not running.",
        |p| Some(p.uptime_secs as f64),
    );
    o.per_program(
        procs,
        "fild_program_restarts_total",
        "counter",
        "Automatic restarts of the program since fild started managing it.",
        |p| Some(p.restarts as f64),
    );
    o.per_program(
        procs,
        "fild_program_last_exit_status",
        "gauge",
        "Exit code of the program's last exit, for programs whose last run exited by itself.",
        |p| p.exit_status.map(f64::from),
    );
    o.per_program(
        procs,
        "fild_program_last_exit_signal",
        "gauge",
        "Number of the signal that ended the program's last run, for programs killed by one.",
        |p| p.exit_signal.map(f64::from),
    );
    o.per_program(
        procs,
        "fild_program_cpu_seconds_total",
        "counter",
        "User and system CPU time the program's running process has used, in seconds.",
        |p| Some(p.cpu_seconds),
    );
    o.per_program(
        procs,
        "fild_program_resident_memory_bytes",
        "gauge",
        "Resident set size of the program's running process in bytes; 0 when not running.",
        |p| Some(p.rss_bytes as f64),
    );

    if let Some(e) = etcd {
        etcd_families(&mut o, e);
    }
    o.0
}

fn etcd_families(o: &mut Out, e: &EtcdFigures) {
    o.single(
        "fild_etcd_view_time_seconds",
        "gauge",
        "When fild last asked the etcd cluster for the figures below (Unix time); 0: not yet.",
        e.refreshed_unix as f64,
    );
    if !e.verdict.is_empty() {
        o.family(
            "fild_etcd_cluster_verdict",
            "gauge",
            "1 for the cluster's verdict as filc etcd status says it (healthy, degraded, no_quorum), 0 for the others.",
        );
        for v in VERDICTS {
            o.sample(
                "fild_etcd_cluster_verdict",
                &[("verdict", v)],
                flag(e.verdict == v),
            );
        }
        o.single(
            "fild_etcd_cluster_voters",
            "gauge",
            "Voting members in the cluster's member list.",
            e.voters as f64,
        );
        o.single(
            "fild_etcd_cluster_healthy_voters",
            "gauge",
            "Voting members that are healthy.",
            e.healthy_voters as f64,
        );
        o.single(
            "fild_etcd_cluster_quorum",
            "gauge",
            "Voting members the cluster needs for quorum.",
            e.quorum as f64,
        );
        o.single("fild_etcd_cluster_quorum_margin", "gauge", "Healthy voters beyond quorum: how many more may fail before quorum is lost (negative: lost).", e.healthy_voters as f64 - e.quorum as f64);
    }
    type Member = crate::api::EtcdMemberFigures;
    o.family(
        "fild_etcd_member_info",
        "gauge",
        "Always 1; labels: the member's server version (empty: it did not answer) and the program running it here (empty: another host's).",
    );
    for m in &e.members {
        o.sample(
            "fild_etcd_member_info",
            &[
                ("member", &m.name),
                ("version", &m.version),
                ("program", m.program.as_deref().unwrap_or("")),
            ],
            1.0,
        );
    }
    type Figure = (&'static str, &'static str, fn(&Member) -> Option<f64>);
    let gauges: [Figure; 8] = [
        (
            "fild_etcd_member_healthy",
            "1 when the member answers its health check.",
            |m| Some(flag(m.healthy)),
        ),
        ("fild_etcd_member_leader", "1 for the raft leader.", |m| {
            Some(flag(m.leader))
        }),
        (
            "fild_etcd_member_learner",
            "1 for a learner (a non-voting member catching up).",
            |m| Some(flag(m.learner)),
        ),
        (
            "fild_etcd_member_raft_term",
            "The raft term the member reports (0: it did not answer).",
            |m| Some(m.raft_term as f64),
        ),
        (
            "fild_etcd_member_raft_index",
            "The raft index the member reports (0: it did not answer).",
            |m| Some(m.raft_index as f64),
        ),
        (
            "fild_etcd_member_db_size_bytes",
            "Size of the member's database file in bytes (0: it did not answer).",
            |m| Some(m.db_size_bytes as f64),
        ),
        (
            "fild_etcd_member_db_size_in_use_bytes",
            "Bytes of the member's database in use (the rest is free pages a defrag gives back).",
            |m| Some(m.db_in_use_bytes as f64),
        ),
        (
            "fild_etcd_member_db_quota_bytes",
            "The member's backend space quota in bytes, where fild knows it.",
            |m| m.db_quota_bytes.map(|q| q as f64),
        ),
    ];
    for (name, help, value) in gauges {
        o.family(name, "gauge", help);
        for m in &e.members {
            if let Some(v) = value(m) {
                o.sample(name, &[("member", &m.name)], v);
            }
        }
    }
    o.family(
        "fild_etcd_member_alarm",
        "gauge",
        "1 when the alarm (NOSPACE, CORRUPT) is raised on the member.",
    );
    for m in &e.members {
        for a in ALARMS {
            o.sample(
                "fild_etcd_member_alarm",
                &[("member", &m.name), ("alarm", a)],
                flag(m.alarms.iter().any(|x| x == a)),
            );
        }
    }
    let b = &e.backup;
    o.single(
        "fild_etcd_backup_interval_seconds",
        "gauge",
        "[etcd] backup_interval in seconds (0: scheduled backups are off).",
        b.interval_secs as f64,
    );
    o.single("fild_etcd_backup_last_success_time_seconds", "gauge", "When the last scheduled snapshot was written and verified here (Unix time; 0: none since fild started).", b.last_success_unix as f64);
    o.single("fild_etcd_backup_last_failure_time_seconds", "gauge", "When a scheduled round last ended without a snapshot here (Unix time; 0: none since fild started).", b.last_failure_unix as f64);
    o.single(
        "fild_etcd_backup_last_size_bytes",
        "gauge",
        "Size of the last scheduled snapshot written here, in bytes.",
        b.last_size_bytes as f64,
    );
    o.single(
        "fild_etcd_backup_files",
        "gauge",
        "Snapshot files kept in the backup folder.",
        b.files as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EtcdMemberFigures, ProcessState};

    fn proc(name: &str, state: ProcessState) -> ProcessInfo {
        ProcessInfo {
            name: name.into(),
            group: name.into(),
            state,
            pid: 42,
            uptime_secs: 7,
            restarts: 3,
            exit_status: Some(1),
            exit_signal: None,
            cpu_percent: 0.0,
            cpu_seconds: 1.25,
            rss_bytes: 4096,
            start_unix: 0,
            stop_unix: 0,
            description: String::new(),
            stdout_logfile: None,
            stderr_logfile: None,
            cgroup: None,
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_its_samples_together() {
        let figures = EtcdFigures {
            refreshed_unix: 5,
            verdict: "degraded".into(),
            voters: 3,
            healthy_voters: 2,
            quorum: 2,
            members: vec![EtcdMemberFigures {
                name: "etcd-0".into(),
                alarms: vec!["NOSPACE".into()],
                db_quota_bytes: Some(1 << 31),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render(
            &[
                proc("a", ProcessState::Running),
                proc("g:b\"\\\n", ProcessState::Fatal),
            ],
            &Own::default(),
            Some(&figures),
        );
        let mut seen: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                current = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&current), "{current} twice");
                assert!(current.starts_with("fild_"), "{current}");
                seen.push(current.clone());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(rest.starts_with(&format!("{current} ")), "{line}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "{line}");
            }
        }
        assert!(text.contains("fild_program_state{program=\"a\",state=\"RUNNING\"} 1\n"));
        assert!(text.contains("fild_program_state{program=\"a\",state=\"FATAL\"} 0\n"));
        assert!(
            text.contains("program=\"g:b\\\"\\\\\\n\",state=\"FATAL\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("fild_program_cpu_seconds_total{program=\"a\"} 1.25\n"));
        assert!(text.contains("fild_etcd_cluster_quorum_margin 0\n"));
        assert!(text.contains("fild_etcd_cluster_verdict{verdict=\"degraded\"} 1\n"));
        assert!(text.contains("fild_etcd_member_alarm{member=\"etcd-0\",alarm=\"NOSPACE\"} 1\n"));
        assert!(text.contains("fild_etcd_member_db_quota_bytes{member=\"etcd-0\"} 2147483648\n"));
        // Without etcd members, no etcd family at all.
        let text = render(&[], &Own::default(), None);
        assert!(!text.contains("fild_etcd_"), "{text}");
    }
}
