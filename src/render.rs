//! What filc prints, as pure functions from the wire types to text: the process table (supd's
//! layout), the etcd status table (one short word per cell; the details under it with `-v`),
//! the backups list, and the one size formatter.

use crate::api::{ProcessInfo, ProcessState};
use crate::etcd::cluster::ClusterStatus;
use crate::etcd::health::Health;

/// A byte count for people, in decimal units: `16 kB`, `8.4 MB`.
pub fn size(n: u64) -> String {
    if n < 1_000_000 {
        format!("{:.0} kB", n as f64 / 1e3)
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}

/// Rows as columns two spaces apart, each padded to its widest cell but the last; trailing
/// spaces trimmed.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i + 1 == cols {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// supd's status table: name, state (coloured on a terminal), description.
pub fn processes(procs: &[ProcessInfo], color: bool) -> String {
    let width = procs
        .iter()
        .map(|p| p.name.len() + 1)
        .max()
        .unwrap_or(0)
        .max(33);
    let mut out = String::new();
    for p in procs {
        let state = format!("{:<10}", p.state.as_str());
        let state = if color {
            let code = match p.state {
                ProcessState::Running => "0;32",
                ProcessState::Backoff | ProcessState::Fatal => "0;31",
                _ => "1;33",
            };
            format!("\x1b[{code}m{state}\x1b[0m")
        } else {
            state
        };
        out.push_str(&format!("{:<width$}{state} {}\n", p.name, p.description));
    }
    out
}

/// The etcd status table's columns.
const ETCD_COLUMNS: [&str; 13] = [
    "PROGRAM",
    "STATE",
    "MEMBER",
    "ID",
    "CLIENT URL",
    "LEADER",
    "TERM",
    "INDEX",
    "DB SIZE",
    "LEARNER",
    "HEALTH",
    "ALARMS",
    "VERSION",
];

/// `filc etcd status [-v]`: one row per member, the verdict, then with `verbose` each
/// member's health word with its full error ([`etcd_status_details`]); without, a hint that
/// `-v` shows them when there are any.
pub fn etcd_status(st: &ClusterStatus, verbose: bool) -> String {
    let mut rows = vec![ETCD_COLUMNS.map(String::from).to_vec()];
    for m in &st.members {
        rows.push(vec![
            m.program.clone().unwrap_or_else(|| "-".into()),
            m.program_state
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "-".into()),
            m.name.clone(),
            m.id.clone().unwrap_or_else(|| "-".into()),
            m.client_url.clone(),
            if m.leader { "*".into() } else { String::new() },
            m.raft_term.to_string(),
            m.raft_index.to_string(),
            match m.db_size.max(0) as u64 {
                0 => "-".into(),
                n => size(n),
            },
            if m.learner { "yes".into() } else { "no".into() },
            m.health.word().into(),
            match m.alarms.join(",") {
                a if a.is_empty() => "-".into(),
                a => a,
            },
            match m.version.as_str() {
                "" => "-".into(),
                v => v.into(),
            },
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!("verdict: {}\n", st.summary()));
    if let Some(v) = &st.cluster_version {
        out.push_str(&format!("cluster version: {v}\n"));
    }
    for w in &st.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let details = etcd_status_details(st);
    if verbose {
        out.push_str(&details);
    } else if !details.is_empty() {
        out.push_str("why: filc etcd status -v\n");
    }
    out
}

/// `filc etcd backups`: each host's snapshots, newest first. A single host (no `[cluster]`)
/// prints only its files, as before: `time  size  path`.
pub fn backups(hosts: &[crate::api::HostBackups]) -> String {
    let mut out = String::new();
    let several = hosts.len() > 1;
    for h in hosts {
        if several {
            let at = if h.url == "here" {
                "this host".to_string()
            } else {
                h.url.clone()
            };
            out.push_str(&format!("host {} ({at}): {}\n", h.host, h.dir));
        }
        if let Some(e) = &h.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        for b in &h.files {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(b.modified_unix);
            out.push_str(&format!(
                "{}{}  {:>10}  {}\n",
                if several { "  " } else { "" },
                humantime::format_rfc3339_seconds(when),
                size(b.size),
                b.path.display()
            ));
        }
    }
    out
}

/// `filc etcd status -v`: under the table, each member's health word with the full error.
pub fn etcd_status_details(st: &ClusterStatus) -> String {
    let mut out = String::new();
    for m in &st.members {
        let what = match (&m.error, m.health) {
            (Some(e), _) => e.clone(),
            (None, Health::Ok) => continue,
            (None, Health::Alarm) => "GET /health is false while an alarm is raised".into(),
            (None, _) => "GET /health is false".into(),
        };
        let program = m.program.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{program} ({}): {}: {what}\n",
            m.name,
            m.health.word()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_decimal() {
        assert_eq!(size(0), "0 kB");
        assert_eq!(size(16_384), "16 kB");
        assert_eq!(size(999_999), "1000 kB");
        assert_eq!(size(1_000_000), "1.0 MB");
        assert_eq!(size(8_400_000), "8.4 MB");
    }

    /// A row for every health word, the ones not ok with a gRPC error of 300 characters.
    fn every_health() -> ClusterStatus {
        use crate::etcd::cluster::fixtures::{cluster, row};
        let long = "grpc request error: status: Unavailable, message: \"error trying to connect: \
                    tcp connect error: Connection refused (os error 111)\", details: [], \
                    metadata: MetadataMap { headers: {} }"
            .repeat(2);
        assert!(long.len() >= 300);
        let rows = Health::ALL
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut r = row(&format!("etcd-{i}"), *h == Health::Ok, i == 0);
                r.health = *h;
                r.client_url = format!("http://127.0.0.1:{}", 2079 + 100 * i);
                r.db_size = 20480;
                if !matches!(h, Health::Ok | Health::Unhealthy | Health::Alarm) {
                    r.error = Some(long.clone());
                }
                if *h == Health::Alarm {
                    r.alarms = vec!["NOSPACE".into()];
                }
                r
            })
            .collect();
        cluster(rows)
    }

    #[test]
    fn every_etcd_status_cell_fits_its_column() {
        let st = every_health();
        let out = etcd_status(&st, false);
        let lines: Vec<&str> = out.lines().collect();
        let header = lines[0];
        let names = ETCD_COLUMNS;
        let starts: Vec<usize> = names.iter().map(|n| header.find(n).unwrap()).collect();
        let rows = &lines[1..=Health::ALL.len()];
        for (line, h) in rows.iter().zip(Health::ALL) {
            // (Trailing spaces are trimmed: pad back for the last cells.)
            let line = format!("{line:<w$}  ", w = header.len());
            // Each cell ends at least two spaces before the next column starts.
            for k in 0..names.len() - 1 {
                let cell = &line[starts[k]..starts[k + 1]];
                assert!(cell.ends_with("  "), "column {}: {line:?}", names[k]);
                assert!(
                    !cell.trim_end().contains("  "),
                    "column {}: {line:?}",
                    names[k]
                );
            }
            let health = &line[starts[10]..starts[11]];
            assert_eq!(health.trim_end(), h.word(), "{line}");
        }
        // The HEALTH column is as wide as its longest word, and no line wraps a terminal.
        assert!(starts[11] - starts[10] <= Health::WIDTH + 2, "{out}");
        assert!(lines.iter().all(|l| l.len() <= 120), "{out}");
        assert!(!out.contains("Connection refused"), "{out}");
        assert_eq!(
            lines[Health::ALL.len() + 1],
            format!("verdict: {}", st.summary())
        );
        assert_eq!(lines.last(), Some(&"why: filc etcd status -v"));
    }

    #[test]
    fn verbose_etcd_status_adds_the_full_errors_under_the_table() {
        let st = every_health();
        let table = etcd_status(&st, false);
        let table = table.strip_suffix("why: filc etcd status -v\n").unwrap();
        let out = etcd_status(&st, true);
        let details = out.strip_prefix(table).unwrap();
        let lines: Vec<&str> = details.lines().collect();
        assert_eq!(lines.len(), Health::ALL.len() - 1, "{details}");
        let error = st.members[4].error.clone().unwrap();
        assert!(lines.contains(&format!("etcd-4 (etcd-4): refused: {error}").as_str()));
        assert!(lines.contains(&"etcd-1 (etcd-1): unhealthy: GET /health is false"));
        assert!(
            lines
                .contains(&"etcd-2 (etcd-2): alarm: GET /health is false while an alarm is raised")
        );
        assert!(!details.contains("etcd-0 "), "{details}");
        // A healthy cluster: no details, no hint.
        let mut ok = every_health();
        ok.members.truncate(1);
        assert!(!etcd_status(&ok, false).contains("-v"));
        assert_eq!(etcd_status_details(&ok), "");
    }

    #[test]
    fn versions_show_per_member_and_for_the_cluster() {
        let mut st = every_health();
        st.members[0].version = "3.5.1".into();
        st.cluster_version = Some("3.5".into());
        let out = etcd_status(&st, false);
        let header = out.lines().next().unwrap();
        let at = header.find("VERSION").unwrap();
        let row = out.lines().nth(1).unwrap();
        assert_eq!(&row[at..], "3.5.1", "{out}");
        assert_eq!(out.lines().nth(2).unwrap()[at..].trim(), "-", "{out}");
        assert!(out.contains("\ncluster version: 3.5\n"), "{out}");
        st.cluster_version = None;
        assert!(!etcd_status(&st, false).contains("cluster version"));
    }

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["aaa".to_string(), "b".into(), "".into()],
        ];
        assert_eq!(table(&rows), "A    BB  C\naaa  b\n");
    }
}
