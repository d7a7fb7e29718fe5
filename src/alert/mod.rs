//! Alerts without extra software: `[supervisord] on_change = COMMAND` (fild keys), run by
//! fild when a program enters FATAL or BACKOFF or the etcd cluster's verdict changes, with
//! the event as one line of JSON on its standard input ([`event`] says what is in it) and
//! its kind in `$FILD_EVENT`. One line of config pages an operator, e.g.
//! `on_change = curl -fsS --data-binary @- https://ntfy.sh/my-miner`.
//!
//! - [`emit`] never blocks or waits: it puts the event on a bounded queue
//!   (`on_change_queue`, default 64) and wakes the runner. The supervisor loop calls it at a
//!   program's state change, `etcd::metrics`' refresher when the verdict it sees changes (so
//!   within its 15 s round, or 2 s after a start or stop; see [`event::Verdicts`]).
//! - One runner task runs the command for one event at a time, in order, each run bounded by
//!   `on_change_timeout` (default 30 s; then its process group is stopped), through
//!   [`crate::command`], which never waits on the child. Events that find the queue full are
//!   counted and told as one `overflow` event where they would have been ([`queue`]).
//! - A failed or timed-out run is logged with its output's tail and never retried: the next
//!   event is the next run. A reload takes the new command, timeout and bound for the runs
//!   after it; removing `on_change` forgets what waits.

pub mod event;
mod queue;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use crate::command::{self, Outcome, Shell};
use crate::config::OnChange;
pub use event::Event;
use event::Stamped;
use queue::Queue;

/// The hook's settings and its queue: process-wide, because both the supervisor loop and the
/// etcd refresher feed it and neither owns the other.
struct Hook {
    settings: OnChange,
    queue: Queue,
}

static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

/// What the hook came to since fild started, for `GET /metrics`.
static RUNS_OK: AtomicU64 = AtomicU64::new(0);
static RUNS_FAILED: AtomicU64 = AtomicU64::new(0);
static RUNS_TIMED_OUT: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The hook's counts since fild started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub runs_ok: u64,
    /// A non-zero exit, a run that could not start or whose wrapper vanished.
    pub runs_failed: u64,
    pub runs_timed_out: u64,
    /// Events that found the queue full (told in `overflow` events).
    pub dropped: u64,
}

pub fn counts() -> Counts {
    Counts {
        runs_ok: RUNS_OK.load(Ordering::Relaxed),
        runs_failed: RUNS_FAILED.load(Ordering::Relaxed),
        runs_timed_out: RUNS_TIMED_OUT.load(Ordering::Relaxed),
        dropped: DROPPED.load(Ordering::Relaxed),
    }
}

static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();

fn wake() -> &'static tokio::sync::Notify {
    WAKE.get_or_init(tokio::sync::Notify::new)
}

fn hook() -> std::sync::MutexGuard<'static, Option<Hook>> {
    HOOK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Take the applied configuration's hook (start-up and every reload; on fild's runtime).
pub fn configure(settings: &OnChange) {
    let mut h = hook();
    let first = h.is_none();
    let h = h.get_or_insert_with(|| Hook {
        settings: settings.clone(),
        queue: Queue::new(settings.queue),
    });
    h.settings = settings.clone();
    h.queue.set_cap(settings.queue);
    if settings.command.is_none() {
        h.queue.clear();
    }
    if first {
        tokio::spawn(runner());
    }
}

/// Tell the hook, if one is configured; never blocks.
pub fn emit(event: Event) {
    let mut h = hook();
    let Some(h) = h.as_mut().filter(|h| h.settings.command.is_some()) else {
        return;
    };
    let what = event.kind();
    if !h.queue.push(Stamped {
        event,
        at: SystemTime::now(),
    }) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            event = what,
            "on_change: the queue is full; the event is dropped and counted."
        );
    }
    wake().notify_one();
}

/// Runs for fild's life: the next event, or a wait for one.
async fn runner() {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let next = {
            let mut h = hook();
            h.as_mut()
                .and_then(|h| Some((h.queue.pop()?, h.settings.clone())))
        };
        match next {
            // A task per run: a panic in one ends that run, never the runner.
            Some((e, s)) => {
                let host = host.clone();
                if let Err(err) = tokio::spawn(async move { run_one(&e, &s, &host).await }).await {
                    tracing::error!(error = %err, "on_change: a run failed inside fild; going on with the next event.");
                }
            }
            None => wake().notified().await,
        }
    }
}

async fn run_one(e: &Stamped, s: &OnChange, host: &str) {
    let Some(cmd) = &s.command else { return };
    if let Event::Overflow { dropped } = e.event {
        tracing::warn!(
            dropped,
            queue = s.queue,
            "on_change: events were dropped while the command was busy; telling it so."
        );
    }
    let line = event::json(e, host);
    let outcome = command::run(&Shell {
        command: cmd,
        name: "fild-on-change",
        args: &[],
        stdin: Some(line.as_bytes()),
        env: &[("FILD_EVENT", e.event.kind())],
        timeout: s.timeout,
        grace: command::GRACE,
    })
    .await;
    let event = line.trim_end();
    let counter = match &outcome {
        Outcome::Exited { code: 0, .. } => &RUNS_OK,
        Outcome::TimedOut { .. } => &RUNS_TIMED_OUT,
        _ => &RUNS_FAILED,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    match outcome.failure() {
        None => tracing::info!(event, "on_change ran."),
        Some(why) => tracing::warn!(
            event,
            timeout = %humantime::format_duration(s.timeout),
            output = %outcome.output(),
            "on_change {why}."
        ),
    }
}
