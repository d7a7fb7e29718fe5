//! What filc prints, as pure functions from the wire types to text: the process table (supd's
//! layout), the etcd status table, the backups list, and the one size formatter.

use crate::api::{ProcessInfo, ProcessState};
use crate::etcd::cluster::ClusterStatus;

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

/// `filc etcd status`: one row per member, then the verdict.
pub fn etcd_status(st: &ClusterStatus) -> String {
    let mut rows = vec![
        [
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
        ]
        .map(String::from)
        .to_vec(),
    ];
    let alarmed = !st.members.iter().all(|m| m.alarms.is_empty());
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
            match (&m.error, m.healthy) {
                (_, true) => "ok".into(),
                (Some(e), false) => format!("down: {e}"),
                (None, false) if alarmed => "alarm".into(),
                (None, false) => "unhealthy".into(),
            },
            m.alarms.join(","),
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!("verdict: {}\n", st.summary()));
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

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["aaa".to_string(), "b".into(), "".into()],
        ];
        assert_eq!(table(&rows), "A    BB  C\naaa  b\n");
    }
}
