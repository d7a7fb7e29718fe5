//! Operations run inside fild: `filc etcd <op>` asks fild to run it (`POST /v1/etcd/ops`)
//! and follows its lines (`GET /v1/etcd/ops/{id}`); closing the client stops nothing.
//!
//! - One at a time: a second request while one runs is refused, naming the one running.
//! - On their own thread: operations wait on etcd, copy data dirs and verify snapshots,
//!   none of which may stall the supervisor's loop thread. The thread runs one current-thread
//!   runtime; each operation is a task on it, so a panic ends that operation (recorded as
//!   failed), never fild or its programs.
//! - Journaled ([`journal`]): each line is written to fild's log and, synced, to
//!   `<ops dir>/<id>.jsonl` as it is said. A fild that starts finds the journals that never
//!   ended, says in its log what they had done and what is left, and marks them interrupted;
//!   a re-run of the same command finishes the work (plans are computed from what is).
//! - The newest [`KEEP`] operations are kept, in memory and on disk.

mod dispatch;
pub(crate) mod journal;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use journal::Entry;

use crate::api::{EtcdOp, EtcdOpLine, EtcdOpRequest, EtcdOpState};
use crate::control::server::{HookFuture, OpsHook};
use crate::etcd::gate::Halt;
use crate::supervisor::{ApiError, ErrorKind, Handle};

/// How many operations are kept (the journals of older ones are removed).
pub const KEEP: usize = 100;
/// The longest a follow request waits for a new line.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The operations of one fild.
#[derive(Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    ops: Mutex<Registry>,
    /// Bumped on every line and every end: what followers wait on.
    changed: tokio::sync::watch::Sender<u64>,
    jobs: tokio::sync::mpsc::UnboundedSender<u64>,
}

#[derive(Default)]
struct Registry {
    ops: VecDeque<EtcdOp>,
    next_id: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Ops {
    /// Read the journals under `dir` (reporting the interrupted ones), then start the thread
    /// operations run on, driving programs through `handle`.
    pub fn start(handle: Handle, dir: PathBuf) -> Ops {
        let run: Runner = Arc::new(move |inner, id, req| {
            let handle = handle.clone();
            Box::pin(async move {
                let say = |line: &str| inner.say(id, line);
                dispatch::run(&handle, id, &req, &say).await
            })
        });
        Ops::with_runner(dir, run)
    }

    fn with_runner(dir: PathBuf, run: Runner) -> Ops {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), "Cannot create the operations' journal folder: {e}.");
        }
        let (ops, next_id) = recover(&dir);
        let (jobs, rx) = tokio::sync::mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            dir,
            ops: Mutex::new(Registry { ops, next_id }),
            changed: tokio::sync::watch::channel(0).0,
            jobs,
        });
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("etcd-ops".into())
            .spawn(move || worker_thread(worker, run, rx));
        if let Err(e) = spawned {
            tracing::error!("Cannot start the etcd operations' thread: {e}.");
        }
        Ops { inner }
    }
}

/// What carries out one operation (its lines go to `Inner::say`); what it produced.
type Runner = Arc<
    dyn Fn(
            Arc<Inner>,
            u64,
            EtcdOpRequest,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Option<String>>>>>
        + Send
        + Sync,
>;

/// The journal files under `dir`, oldest first.
fn journals(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| Some((journal::id_of(&e.file_name().to_string_lossy())?, e.path())))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Remove the journals beyond the newest [`KEEP`].
fn prune(dir: &Path) {
    let found = journals(dir);
    if found.len() > KEEP {
        for (_, p) in &found[..found.len() - KEEP] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The journals under `dir`: the newest [`KEEP`] operations, the interrupted ones marked and
/// reported, and the next ID.
fn recover(dir: &Path) -> (VecDeque<EtcdOp>, u64) {
    let mut found = journals(dir);
    let next_id = found.last().map_or(1, |(id, _)| id + 1);
    if found.len() > KEEP {
        found.drain(..found.len() - KEEP);
    }
    prune(dir);
    let mut ops = VecDeque::new();
    for (_, path) in found {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Some(mut op) = journal::replay(&text, &path.display().to_string()) else {
            continue;
        };
        if op.ended_unix.is_none() {
            let report = journal::interrupted_report(&op);
            tracing::warn!(op = op.id, "{report}");
            let ended_unix = now_ms() / 1000;
            let end = Entry::End {
                state: EtcdOpState::Interrupted,
                error: Some(report.clone()),
                output: None,
                digest: None,
                ended_unix,
            };
            if let Err(e) = journal::append(&path, &end) {
                tracing::warn!(
                    op = op.id,
                    "Cannot write to the journal {}: {e}.",
                    path.display()
                );
            }
            op.state = EtcdOpState::Interrupted;
            op.error = Some(report);
            op.ended_unix = Some(ended_unix);
        }
        ops.push_back(op);
    }
    (ops, next_id)
}

fn worker_thread(
    inner: Arc<Inner>,
    run: Runner,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<u64>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("Cannot start the etcd operations' runtime: {e}.");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        while let Some(id) = rx.recv().await {
            let Some(op) = inner.view(id, 0) else { continue };
            let req = op.request.clone();
            // The journal opens here, on this thread: the request's thread waits on no disk.
            inner.journal(
                id,
                &Entry::Begin {
                    id,
                    title: op.title,
                    request: op.request,
                    started_unix: op.started_unix,
                    fild_pid: std::process::id(),
                },
            );
            prune(&inner.dir);
            // Its own task: a panic in it ends this operation, not the thread.
            let task = tokio::task::spawn_local(run(inner.clone(), id, req));
            let end = match task.await {
                Ok(Ok(output)) => (EtcdOpState::Succeeded, None, output, None),
                Ok(Err(e)) => match e.downcast_ref::<Halt>() {
                    Some(Halt::DryRun) => (EtcdOpState::Planned, Some(e.to_string()), None, None),
                    Some(Halt::Unconfirmed { digest, .. }) => (
                        EtcdOpState::Unconfirmed,
                        Some(e.to_string()),
                        None,
                        Some(digest.clone()),
                    ),
                    None => (EtcdOpState::Failed, Some(format!("{e:#}")), None, None),
                },
                Err(join) => (
                    EtcdOpState::Failed,
                    Some(format!(
                        "the operation panicked ({}); fild and its programs go on; its journal holds what it did",
                        panic_text(join)
                    )),
                    None,
                    None,
                ),
            };
            inner.end(id, end.0, end.1, end.2, end.3);
        }
    });
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into()),
        Err(e) => e.to_string(),
    }
}

impl Inner {
    fn journal(&self, id: u64, entry: &Entry) {
        let path = journal::path(&self.dir, id);
        if let Err(e) = journal::append(&path, entry) {
            tracing::warn!(
                op = id,
                "Cannot write to the journal {}: {e}.",
                path.display()
            );
        }
    }

    fn say(&self, id: u64, text: &str) {
        let line = EtcdOpLine {
            unix_ms: now_ms(),
            text: text.to_string(),
        };
        tracing::info!(op = id, "{text}");
        self.journal(
            id,
            &Entry::Line {
                unix_ms: line.unix_ms,
                text: line.text.clone(),
            },
        );
        if let Ok(mut reg) = self.ops.lock()
            && let Some(op) = reg.ops.iter_mut().find(|o| o.id == id)
        {
            op.lines.push(line);
            op.total_lines += 1;
        }
        self.changed.send_modify(|g| *g += 1);
    }

    fn end(
        &self,
        id: u64,
        state: EtcdOpState,
        error: Option<String>,
        output: Option<String>,
        digest: Option<String>,
    ) {
        let ended_unix = now_ms() / 1000;
        match &error {
            Some(e) => tracing::warn!(op = id, state = state.as_str(), "Operation ended: {e}"),
            None => tracing::info!(op = id, state = state.as_str(), "Operation ended."),
        }
        self.journal(
            id,
            &Entry::End {
                state,
                error: error.clone(),
                output: output.clone(),
                digest: digest.clone(),
                ended_unix,
            },
        );
        if let Ok(mut reg) = self.ops.lock()
            && let Some(op) = reg.ops.iter_mut().find(|o| o.id == id)
        {
            op.state = state;
            op.error = error;
            op.output = output;
            op.digest = digest;
            op.ended_unix = Some(ended_unix);
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// The operation `id` with its lines from `from` on.
    fn view(&self, id: u64, from: usize) -> Option<EtcdOp> {
        let reg = self.ops.lock().ok()?;
        let op = reg.ops.iter().find(|o| o.id == id)?;
        let from = from.min(op.lines.len());
        Some(EtcdOp {
            from,
            lines: op.lines[from..].to_vec(),
            ..op.clone()
        })
    }
}

impl OpsHook for Ops {
    fn begin(&self, request: EtcdOpRequest) -> Result<EtcdOp, ApiError> {
        let inner = &self.inner;
        let title = request.kind.title();
        let started_unix = now_ms() / 1000;
        let id = {
            let mut reg = inner.ops.lock().map_err(|_| {
                ApiError::new(ErrorKind::Internal, "the operations' table is poisoned")
            })?;
            if let Some(r) = reg.ops.iter().find(|o| o.state == EtcdOpState::Running) {
                let since = humantime::format_rfc3339_seconds(
                    UNIX_EPOCH + Duration::from_secs(r.started_unix),
                );
                return Err(ApiError::new(
                    ErrorKind::Refused,
                    format!(
                        "operation {} ({}) running since {since}; one operation at a time (follow it: filc etcd ops --follow {})",
                        r.id, r.title, r.id
                    ),
                ));
            }
            let id = reg.next_id;
            reg.next_id += 1;
            let journal = journal::path(&inner.dir, id).display().to_string();
            reg.ops.push_back(journal::opened(
                id,
                title.clone(),
                request.clone(),
                started_unix,
                journal,
            ));
            while reg.ops.len() > KEEP {
                // Its journal goes when the worker next writes one (never a disk wait here).
                reg.ops.pop_front();
            }
            id
        };
        tracing::info!(op = id, "Operation begins: {}", request.command());
        if inner.jobs.send(id).is_err() {
            inner.end(
                id,
                EtcdOpState::Failed,
                Some("fild's operations thread is not running".into()),
                None,
                None,
            );
        }
        inner
            .view(id, 0)
            .ok_or_else(|| ApiError::new(ErrorKind::Internal, "the operation vanished"))
    }

    fn list(&self) -> Vec<EtcdOp> {
        let Ok(reg) = self.inner.ops.lock() else {
            return Vec::new();
        };
        reg.ops
            .iter()
            .map(|o| EtcdOp {
                from: o.lines.len(),
                lines: Vec::new(),
                ..o.clone()
            })
            .collect()
    }

    fn follow(&self, id: u64, from: usize, wait: Duration) -> HookFuture<Result<EtcdOp, ApiError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut rx = inner.changed.subscribe();
            let until = tokio::time::Instant::now() + wait.min(MAX_WAIT);
            loop {
                rx.borrow_and_update();
                let op = inner.view(id, from).ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::NotFound,
                        format!("no operation {id} (see filc etcd ops)"),
                    )
                })?;
                if !op.lines.is_empty() || op.state != EtcdOpState::Running {
                    return Ok(op);
                }
                if tokio::time::timeout_at(until, rx.changed()).await.is_err() {
                    return Ok(op);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EtcdOpKind;

    fn req() -> EtcdOpRequest {
        EtcdOpRequest {
            kind: EtcdOpKind::Defrag,
            dry_run: false,
            yes: false,
            confirm: None,
            force: false,
        }
    }

    fn runner(f: fn(u64) -> anyhow::Result<Option<String>>, wait_ms: u64) -> Runner {
        Arc::new(move |inner, id, _req| {
            Box::pin(async move {
                inner.say(id, "first line");
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                f(id)
            })
        })
    }

    /// Wait (bounded) until operation `id` ended.
    fn ended(ops: &Ops, id: u64) -> EtcdOp {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut from = 0;
        for _ in 0..100 {
            let op = rt
                .block_on(ops.follow(id, from, Duration::from_millis(100)))
                .unwrap();
            if op.state != EtcdOpState::Running {
                return op;
            }
            from = op.total_lines;
        }
        panic!("operation {id} never ended");
    }

    #[test]
    fn a_panic_ends_only_its_operation_and_is_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let ops = Ops::with_runner(
            dir.path().to_path_buf(),
            runner(|id| if id == 1 { panic!("boom") } else { Ok(None) }, 0),
        );
        let first = ops.begin(req()).unwrap();
        let op = ended(&ops, first.id);
        assert_eq!(op.state, EtcdOpState::Failed);
        let why = op.error.unwrap();
        assert!(why.contains("panicked (boom)"), "{why}");
        let j = std::fs::read_to_string(journal::path(dir.path(), first.id)).unwrap();
        assert!(
            j.contains("first line") && j.contains("\"state\":\"failed\""),
            "{j}"
        );
        // The thread lives on: the next operation runs.
        let second = ops.begin(req()).unwrap();
        assert_eq!(ended(&ops, second.id).state, EtcdOpState::Succeeded);
    }

    #[test]
    fn one_at_a_time_and_a_halt_is_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let ops = Ops::with_runner(
            dir.path().to_path_buf(),
            runner(|_| Err(Halt::DryRun.into()), 300),
        );
        let first = ops.begin(req()).unwrap();
        let refused = ops.begin(req()).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Refused);
        assert!(
            refused
                .error
                .contains(&format!("operation {} (defrag) running since", first.id)),
            "{}",
            refused.error
        );
        assert_eq!(ended(&ops, first.id).state, EtcdOpState::Planned);
        assert!(ops.begin(req()).is_ok());
    }

    #[test]
    fn a_journal_left_unended_is_marked_interrupted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal::path(dir.path(), 4);
        journal::append(
            &path,
            &Entry::Begin {
                id: 4,
                title: "defrag".into(),
                request: req(),
                started_unix: 1,
                fild_pid: 1,
            },
        )
        .unwrap();
        let ops = Ops::with_runner(dir.path().to_path_buf(), runner(|_| Ok(None), 0));
        let listed = ops.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, EtcdOpState::Interrupted);
        assert!(
            listed[0]
                .error
                .as_ref()
                .unwrap()
                .contains("filc etcd defrag")
        );
        // IDs go on after the journals found.
        assert_eq!(ops.begin(req()).unwrap().id, 5);
        drop(ops);
        let again = Ops::with_runner(dir.path().to_path_buf(), runner(|_| Ok(None), 0));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("\"e\":\"end\"").count(), 1, "{text}");
        assert_eq!(again.list()[0].state, EtcdOpState::Interrupted);
    }
}
