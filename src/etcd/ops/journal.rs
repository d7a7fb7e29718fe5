//! An operation's journal: one JSON object a line in `<ops dir>/<id>.jsonl`, written (and
//! synced) as each line is said, so that a fild that died mid-operation leaves a record the
//! next one reads back: what the operation was, what it said, which plan step it had begun
//! and which it had finished. Reading a journal back ([`replay`]) and saying what is left
//! ([`interrupted_report`]) are pure.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::{EtcdOp, EtcdOpLine, EtcdOpRequest, EtcdOpState};
use crate::etcd::steps::{self as marks, Mark};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub(crate) enum Entry {
    Begin {
        id: u64,
        title: String,
        request: EtcdOpRequest,
        started_unix: u64,
        fild_pid: u32,
    },
    Line {
        unix_ms: u64,
        text: String,
    },
    End {
        state: EtcdOpState,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        output: Option<String>,
        #[serde(default)]
        digest: Option<String>,
        ended_unix: u64,
    },
}

/// The journal file of operation `id`.
pub(crate) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:06}.jsonl"))
}

/// The operation ID a journal file name holds.
pub(crate) fn id_of(name: &str) -> Option<u64> {
    name.strip_suffix(".jsonl")?.parse().ok()
}

/// Append one entry and sync it: a line said is a line on disk.
pub(crate) fn append(file: &Path, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// An operation just begun: running, nothing said yet.
pub(crate) fn opened(
    id: u64,
    title: String,
    request: EtcdOpRequest,
    started_unix: u64,
    journal: String,
) -> EtcdOp {
    EtcdOp {
        id,
        title,
        request,
        state: EtcdOpState::Running,
        started_unix,
        ended_unix: None,
        total_lines: 0,
        from: 0,
        lines: Vec::new(),
        error: None,
        output: None,
        digest: None,
        journal,
    }
}

/// An operation as its journal tells it: `None` when the journal has no readable begin.
/// Unreadable lines (a write cut short by a crash) are skipped.
pub(crate) fn replay(text: &str, journal: &str) -> Option<EtcdOp> {
    let mut op: Option<EtcdOp> = None;
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Entry>(line) else {
            continue;
        };
        match (entry, op.as_mut()) {
            (
                Entry::Begin {
                    id,
                    title,
                    request,
                    started_unix,
                    ..
                },
                None,
            ) => {
                let mut o = opened(id, title, request, started_unix, journal.to_string());
                o.state = EtcdOpState::Interrupted;
                op = Some(o);
            }
            (Entry::Line { unix_ms, text }, Some(op)) => {
                op.lines.push(EtcdOpLine { unix_ms, text });
                op.total_lines += 1;
            }
            (
                Entry::End {
                    state,
                    error,
                    output,
                    digest,
                    ended_unix,
                },
                Some(op),
            ) => {
                op.state = state;
                op.error = error;
                op.output = output;
                op.digest = digest;
                op.ended_unix = Some(ended_unix);
            }
            _ => {}
        }
    }
    op
}

/// What an operation that never ended had done and what it left: the plan's steps it had not
/// finished, and how to go on.
pub(crate) fn interrupted_report(op: &EtcdOp) -> String {
    let mut plan: Vec<(usize, usize, String)> = Vec::new();
    let mut begun: Option<(usize, usize)> = None;
    let mut done = 0;
    for l in &op.lines {
        match marks::parse(&l.text) {
            Some(Mark::Planned { index, of, what }) => {
                if index == 1 {
                    plan.clear();
                }
                plan.push((index, of, what));
            }
            Some(Mark::Begin { index, of, .. }) => begun = Some((index, of)),
            Some(Mark::Done { index, .. }) => done = index,
            None => {}
        }
    }
    let rerun = format!(
        "run `{}` again to finish it (it plans only what is left)",
        op.request.command()
    );
    let Some((index, of)) = begun else {
        return format!(
            "operation {} ({}) was interrupted before its first step; {rerun}",
            op.id, op.title
        );
    };
    let left: Vec<String> = plan
        .iter()
        .filter(|(i, _, _)| *i > done)
        .map(|(i, n, what)| format!("{i}/{n} {what}"))
        .collect();
    let at = if done >= index {
        format!("after step {index}/{of} finished")
    } else {
        format!("during step {index}/{of}")
    };
    format!(
        "operation {} ({}) was interrupted {at}; {} of {of} steps done{}; {rerun}",
        op.id,
        op.title,
        done,
        if left.is_empty() {
            String::new()
        } else {
            format!("; left: {}", left.join("; "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EtcdOpKind;

    fn begin() -> Entry {
        Entry::Begin {
            id: 7,
            title: "replace etcd-2".into(),
            request: EtcdOpRequest {
                kind: EtcdOpKind::Replace {
                    program: "etcd-2".into(),
                },
                dry_run: false,
                yes: true,
                confirm: None,
                force: false,
            },
            started_unix: 100,
            fild_pid: 42,
        }
    }

    fn line(text: &str) -> Entry {
        Entry::Line {
            unix_ms: 1,
            text: text.into(),
        }
    }

    fn text(entries: &[Entry]) -> String {
        entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect()
    }

    #[test]
    fn a_journal_without_an_end_is_interrupted_and_says_what_is_left() {
        let mut e = vec![begin()];
        e.extend(
            [
                "stop etcd-2",
                "member remove boot2",
                "member add --learner boot2",
            ]
            .iter()
            .enumerate()
            .map(|(i, w)| line(&marks::planned(i + 1, 3, w))),
        );
        e.push(line(&marks::begin(1, 3, "stop etcd-2")));
        e.push(line("stop etcd-2: stopped"));
        e.push(line(&marks::done(1, 3)));
        e.push(line(&marks::begin(2, 3, "member remove boot2")));
        let mut t = text(&e);
        t.push_str("{\"e\":\"line\",\"unix_ms\":3,\"te"); // cut short by the kill
        let op = replay(&t, "/j/000007.jsonl").unwrap();
        assert_eq!(op.state, EtcdOpState::Interrupted);
        assert_eq!(op.total_lines, 7);
        let r = interrupted_report(&op);
        assert!(
            r.contains("operation 7 (replace etcd-2) was interrupted during step 2/3"),
            "{r}"
        );
        assert!(r.contains("1 of 3 steps done"), "{r}");
        assert!(
            r.contains("left: 2/3 member remove boot2; 3/3 member add --learner boot2"),
            "{r}"
        );
        assert!(
            r.contains("run `filc etcd replace etcd-2 --yes` again"),
            "{r}"
        );
    }

    #[test]
    fn an_ended_journal_keeps_its_state() {
        let t = text(&[
            begin(),
            line("x"),
            Entry::End {
                state: EtcdOpState::Succeeded,
                error: None,
                output: Some("/b/s.db".into()),
                digest: None,
                ended_unix: 200,
            },
        ]);
        let op = replay(&t, "j").unwrap();
        assert_eq!(op.state, EtcdOpState::Succeeded);
        assert_eq!(op.ended_unix, Some(200));
        assert_eq!(op.output.as_deref(), Some("/b/s.db"));
        assert!(replay("garbage\n", "j").is_none());
    }

    #[test]
    fn interrupted_before_any_step() {
        let op = replay(&text(&[begin(), line("replace etcd-2: member boot2")]), "j").unwrap();
        assert!(interrupted_report(&op).contains("before its first step"));
    }

    #[test]
    fn file_names() {
        assert_eq!(path(Path::new("/o"), 7), PathBuf::from("/o/000007.jsonl"));
        assert_eq!(id_of("000007.jsonl"), Some(7));
        assert_eq!(id_of("x.jsonl"), None);
    }
}
