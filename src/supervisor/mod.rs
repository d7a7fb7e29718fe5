//! The supervisor core: one event loop owns the process table.
//!
//! Everything that can happen arrives in [`Supervisor::run`]'s `select!`: a child exited
//! (SIGCHLD), a timer fell due, a control [`Request`], a signal to fild. Each is turned into
//! [`state::Input`]s for the affected processes; [`state::step`] decides, the loop carries out
//! the returned actions (spawn, signal, arm a timer). Nothing polls: with no timer armed the
//! loop sleeps until the kernel or a client wakes it.
//!
//! Requests that take time (start waits for RUNNING, stop for the group to be gone, reload
//! and shutdown for both) become [`Job`]s: a queue of phases, each an operation on a set of
//! processes, advanced whenever the processes it waits for have settled.

mod apply;
pub mod cgroup;
pub mod guard;
mod handle;
mod jobs;
pub mod logs;
mod names;
pub mod procstat;
pub mod reload;
pub mod safe_open;
pub mod spawn;
pub mod state;
mod status;
mod watch;

use handle::Reply;
pub use handle::{
    ApiError, ErrorKind, Handle, ProgramView, ProgramsView, ReloadGuard, ReloadStops,
    ReloadVerdict, Request, StopOrder, ThenStart, UserOp,
};
use jobs::{Job, JobReply, Op, phase};
pub use names::resolve_names;
use names::spec_name;
pub use status::format_uptime;
use watch::watch;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::alert;
use crate::api::{
    ActionReply, ActionResult, ProcessInfo, ProcessState, ReloadReply, SignalRequest,
};
use crate::config::{self, Config, Env, LogTarget, ProgramSpec};
use state::{Action, Exit, Input, Proc, TimerKind};

/// How long file-change events for one program are gathered before it restarts.
const WATCH_DEBOUNCE: Duration = Duration::from_secs(1);
/// While a dead run's group members linger, look whether they are gone this often. A safety
/// net only: as a child subreaper fild normally hears of their exits through SIGCHLD.
const LEFTOVER_RECHECK: Duration = Duration::from_millis(250);

/// One row of the process table.
struct Entry {
    spec: Arc<ProgramSpec>,
    /// A reload changed the spec while the process ran: it takes over once it has stopped.
    next_spec: Option<Arc<ProgramSpec>>,
    proc: Proc,
    /// Bumped on every arm/disarm; a timer whose generation differs is stale.
    timer_gen: u64,
    /// The process group of the current or last run while any member may be alive.
    pgid: Option<i32>,
    /// The program's cgroup, when fild contains programs by cgroup.
    cgroup: Option<PathBuf>,
    start_wall: Option<SystemTime>,
    stop_wall: Option<SystemTime>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Tell the `on_change` hook of a state change it wants (entering FATAL or BACKOFF).
fn tell_hook(name: &str, e: &Entry, before: ProcessState) {
    if !alert::event::program_alerts(before, e.proc.state) {
        return;
    }
    alert::emit(alert::Event::Program {
        name: name.to_string(),
        group: e.spec.group.clone(),
        from: before,
        to: e.proc.state,
        last_exit: e.proc.last_exit.map(|x| match x {
            Exit::Code(c) => format!("exit {c}"),
            Exit::Signal(s) => format!("signal {s}"),
        }),
        error: e.proc.spawn_error.clone(),
    });
}

struct TimerRef {
    name: String,
    generation: u64,
    kind: TimerKind,
}

/// The supervisor: the process table and everything that drives it.
pub struct Supervisor {
    config_path: PathBuf,
    env: Env,
    config: Config,
    table: BTreeMap<String, Entry>,
    pids: HashMap<i32, String>,
    timers: BTreeMap<(Instant, u64), TimerRef>,
    timer_seq: u64,
    debounce: BTreeMap<String, Instant>,
    jobs: Vec<Job>,
    guard: guard::Guard,
    /// Containment by cgroup v2, where fild found a writable hierarchy.
    cgroups: Option<cgroup::Cgroups>,
    server_url: String,
    tx: mpsc::UnboundedSender<Request>,
    rx: mpsc::UnboundedReceiver<Request>,
    /// Bumped by every `apply`.
    applied: tokio::sync::watch::Sender<u64>,
    /// Asked before a reload stops or restarts running programs (the etcd quorum guard).
    reload_guard: Option<ReloadGuard>,
    /// The applied configuration's `user=` names, resolved off the loop.
    users: spawn::Users,
    /// Asked at shutdown which programs to stop last (the etcd leader).
    stop_order: Option<StopOrder>,
    shutting_down: bool,
    exit: bool,
}

impl Supervisor {
    /// A supervisor with an empty table; [`Supervisor::run`] applies `config` to it.
    pub fn new(
        config_path: PathBuf,
        env: Env,
        config: Config,
        guard: guard::Guard,
        cgroups: Option<cgroup::Cgroups>,
        server_url: String,
    ) -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
        // Before the loop runs: a slow name service delays start-up, not the loop.
        let users = spawn::Users::resolve(&config);
        Supervisor {
            config_path,
            env,
            config,
            table: BTreeMap::new(),
            pids: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            debounce: BTreeMap::new(),
            jobs: Vec::new(),
            guard,
            cgroups,
            server_url,
            tx,
            rx,
            applied: tokio::sync::watch::Sender::new(0),
            reload_guard: None,
            stop_order: None,
            users,
            shutting_down: false,
            exit: false,
        }
    }

    pub fn handle(&self) -> Handle {
        Handle {
            tx: self.tx.clone(),
            applied: self.applied.subscribe(),
        }
    }

    /// Run until shutdown. Start-up is a reload from an empty table.
    pub async fn run(mut self, on_ready: impl FnOnce()) -> anyhow::Result<()> {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(error = %e, "Cannot become a child subreaper; orphaned grandchildren will not be reaped by fild.");
        }
        let mut sigchld = signal(SignalKind::child())?;
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;

        let initial = self.config.clone();
        let (startup, _) = self.apply(initial, &[]);
        let mut on_ready = Some(on_ready);
        self.jobs.push(startup);
        self.progress();

        loop {
            if on_ready.is_some()
                && self.jobs.is_empty()
                && let Some(f) = on_ready.take()
            {
                f();
            }
            if self.exit {
                break;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                _ = sigchld.recv() => self.reap(),
                Some(req) = self.rx.recv() => self.request(req),
                _ = sigterm.recv() => self.begin_shutdown("SIGTERM"),
                _ = sigint.recv() => self.begin_shutdown("SIGINT"),
                _ = sighup.recv() => self.reload_from_signal(),
                _ = sleep_until(deadline), if deadline.is_some() => self.fire_timers(),
            }
            self.progress();
        }
        self.guard.close();
        Ok(())
    }

    // ----- timers -------------------------------------------------------------------------

    fn next_deadline(&self) -> Option<Instant> {
        let t = self.timers.first_key_value().map(|((at, _), _)| *at);
        let d = self.debounce.values().min().copied();
        let l = self
            .table
            .values()
            .any(|e| e.proc.leftovers)
            .then(|| state::deadline(Instant::now(), LEFTOVER_RECHECK));
        [t, d, l].into_iter().flatten().min()
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let t = entry.remove();
            let live = self
                .table
                .get(&t.name)
                .is_some_and(|e| e.timer_gen == t.generation);
            if live {
                self.input(&t.name, Input::Timer(t.kind));
            }
        }
        let due: Vec<String> = self
            .debounce
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.debounce.remove(&name);
            let running = self
                .table
                .get(&name)
                .is_some_and(|e| e.proc.state == ProcessState::Running);
            if running && !self.shutting_down {
                tracing::info!(program = %name, "Watched files changed; restarting.");
                self.jobs.push(Job::new(
                    vec![
                        phase(Op::Stop, vec![name.clone()]),
                        phase(Op::Start, vec![name]),
                    ],
                    JobReply::None,
                ));
            }
        }
        self.check_leftovers();
    }

    // ----- children -----------------------------------------------------------------------

    /// Collect every exited child (our programs, and orphans reparented to us).
    fn reap(&mut self) {
        let mut exits = Vec::new();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => exits.push((pid.as_raw(), Exit::Code(code))),
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    exits.push((pid.as_raw(), Exit::Signal(sig as i32)))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        for (pid, exit) in exits {
            let Some(name) = self.pids.remove(&pid) else {
                continue;
            };
            let cg = self.table.get(&name).and_then(|e| e.cgroup.as_deref());
            let group_empty = program_gone(pid, cg);
            if let Some(e) = self.table.get_mut(&name) {
                e.stop_wall = Some(SystemTime::now());
            }
            tracing::info!(program = %name, pid, ?exit, "Exited.");
            self.input(&name, Input::Exited { exit, group_empty });
        }
        self.check_leftovers();
    }

    fn check_leftovers(&mut self) {
        let gone: Vec<String> = self
            .table
            .iter()
            .filter(|(_, e)| {
                e.proc.leftovers && e.pgid.is_some_and(|g| program_gone(g, e.cgroup.as_deref()))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.input(&name, Input::GroupEmpty);
        }
    }

    /// Feed one input to one process and carry out what the state machine asks.
    fn input(&mut self, name: &str, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let Some(e) = self.table.get_mut(name) else {
                return;
            };
            let before = e.proc.state;
            let actions = state::step(&mut e.proc, &e.spec, input, Instant::now());
            if e.proc.state != before {
                tracing::debug!(program = %name, from = before.as_str(), to = e.proc.state.as_str(), "State change.");
                tell_hook(name, e, before);
            }
            for action in actions {
                if let Some(next) = self.act(name, action) {
                    queue.push_back(next);
                }
            }
        }
        self.settle(name);
    }

    /// After a process's inputs: forget an empty group, let a pending spec take over.
    fn settle(&mut self, name: &str) {
        let Some(e) = self.table.get_mut(name) else {
            return;
        };
        if e.proc.pid.is_none()
            && !e.proc.leftovers
            && let Some(pgid) = e.pgid.take()
        {
            self.guard.remove(pgid);
        }
        if e.next_spec.is_some() && state::stop_settled(&e.proc) {
            e.spec = e.next_spec.take().expect("checked");
            e._watcher = watch(&e.spec, &self.tx);
        }
    }

    fn act(&mut self, name: &str, action: Action) -> Option<Input> {
        let shared_logs = match action {
            Action::Spawn => self.shared_log_files(name),
            _ => Vec::new(),
        };
        let e = self.table.get_mut(name)?;
        match action {
            Action::Spawn => {
                let spec = e.spec.clone();
                let cgroup = match self.cgroups.as_ref().map(|c| c.program(name)) {
                    None => Ok(None),
                    Some(Ok(dir)) => Ok(Some(dir)),
                    Some(Err(err)) => Err(format!("cannot create the program's cgroup: {err}")),
                };
                // The log files first: a refused path means the program does not start.
                let shared = |path: &std::path::Path| shared_logs.iter().any(|p| p == path);
                let spawned = cgroup.and_then(|cg| {
                    let logs = open_logs(&spec, shared)?;
                    spawn::spawn(&spec, &self.users, &self.server_url, cg.as_deref())
                        .map(|s| (s, cg, logs))
                });
                match spawned {
                    Ok((s, cg, (out_log, err_log))) => {
                        self.pids.insert(s.pid, name.to_string());
                        e.pgid = Some(s.pid);
                        e.cgroup = cg;
                        e.start_wall = Some(SystemTime::now());
                        self.guard.add(s.pid);
                        if let (Some(fd), Some(f)) = (s.stdout, out_log) {
                            tokio::spawn(logs::pump(fd, f));
                        }
                        if let (Some(fd), Some(f)) = (s.stderr, err_log) {
                            tokio::spawn(logs::pump(fd, f));
                        }
                        tracing::info!(program = %name, pid = s.pid, "Spawned.");
                        Some(Input::Spawned { pid: s.pid })
                    }
                    Err(err) => {
                        tracing::warn!(program = %name, error = %err, "Spawn failed.");
                        e.proc.spawn_error = Some(err);
                        e.stop_wall = Some(SystemTime::now());
                        Some(Input::SpawnFailed)
                    }
                }
            }
            Action::Signal { signal, group } => {
                let target = if group {
                    e.pgid.map(|g| -g)
                } else {
                    e.proc.pid
                };
                // The number as configured: real-time signals (SIGRTMIN..) have no `Signal`.
                if let Some(target) = target {
                    tracing::info!(program = %name, target, signal = %signal_name(signal), "Signalling.");
                    // SAFETY: kill(2) with a pid or group we spawned and a checked signal number.
                    unsafe {
                        libc::kill(target, signal);
                    }
                }
                // The whole program: what left the process group is in the cgroup still.
                if group && let Some(dir) = &e.cgroup {
                    cgroup::signal(dir, signal);
                }
                None
            }
            Action::Arm { kind, after } => {
                e.timer_gen += 1;
                self.timer_seq += 1;
                self.timers.insert(
                    (state::deadline(Instant::now(), after), self.timer_seq),
                    TimerRef {
                        name: name.to_string(),
                        generation: e.timer_gen,
                        kind,
                    },
                );
                None
            }
            Action::Disarm => {
                e.timer_gen += 1;
                None
            }
        }
    }

    // ----- requests -----------------------------------------------------------------------

    fn request(&mut self, req: Request) {
        match req {
            Request::Status {
                names,
                stats,
                reply,
            } => {
                let _ = reply.send(self.status(&names, stats));
            }
            Request::Action { op, names, reply } => {
                if self.shutting_down {
                    let _ = reply.send(Err(ApiError::shutting_down()));
                    return;
                }
                match self.resolve(&names) {
                    Ok(resolved) => self.begin_action(op, resolved, reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Request::Signal { req, reply } => {
                let _ = reply.send(self.signal(&req));
            }
            Request::Reload { force, reply } => {
                if self.shutting_down {
                    let _ = reply.send(Err(ApiError::shutting_down()));
                    return;
                }
                self.load_off_loop(Some(reply), force);
            }
            Request::Loaded {
                result,
                users,
                reply,
                force,
            } => self.loaded(*result, users, reply, force),
            Request::Guarded {
                config,
                users,
                reply,
                verdict,
                applied,
            } => self.guarded(*config, users, reply, verdict, applied),
            Request::Apply { names, reply } => {
                if self.shutting_down {
                    let _ = reply.send(Err(ApiError::shutting_down()));
                    return;
                }
                match self.resolve(&names) {
                    Ok(resolved) => {
                        self.take_applied_specs(&resolved);
                        self.begin_action(UserOp::Restart, resolved, reply)
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Request::Shutdown { reply } => {
                let _ = reply.send(Ok(()));
                self.begin_shutdown("a shutdown request");
            }
            Request::LogFile {
                name,
                stream,
                reply,
            } => {
                let _ = reply.send(self.log_file(&name, &stream));
            }
            Request::ShutdownOrder { last } => {
                if !last.is_empty() {
                    tracing::info!(last = ?last, "Shutdown: stopping these after the others.");
                }
                self.shutdown_job(&last)
            }
            Request::Programs { reply } => {
                let _ = reply.send(Ok(self.programs()));
            }
            Request::FileChanged { name } => {
                if self.table.contains_key(&name) {
                    self.debounce
                        .insert(name, state::deadline(Instant::now(), WATCH_DEBOUNCE));
                }
            }
        }
    }

    /// The log files of `name` that another stream in the table writes to as well.
    fn shared_log_files(&self, name: &str) -> Vec<PathBuf> {
        let targets = |e: &Entry| [e.spec.stdout.target.clone(), e.spec.stderr.target.clone()];
        let Some(mine) = self.table.get(name) else {
            return Vec::new();
        };
        targets(mine)
            .into_iter()
            .filter_map(|t| match t {
                LogTarget::File(p) => Some(p),
                LogTarget::Discard => None,
            })
            .filter(|p| {
                self.table
                    .values()
                    .flat_map(targets)
                    .filter(|t| matches!(t, LogTarget::File(q) if q == p))
                    .count()
                    > 1
            })
            .collect()
    }

    fn signal(&mut self, req: &SignalRequest) -> Result<ActionReply, ApiError> {
        let signo = config::parse_signal(&req.signal).map_err(|e| {
            ApiError::new(
                ErrorKind::BadRequest,
                format!("bad signal {:?}: {e}", req.signal),
            )
        })?;
        let sig = signal_name(signo);
        let names = self.resolve(&req.names)?;
        let results = names
            .iter()
            .map(|n| {
                let e = &self.table[n];
                let (ok, message) = match e.proc.pid {
                    // SAFETY: kill(2) with the program's pid and a parsed signal number.
                    Some(pid) => match unsafe { libc::kill(pid, signo) } {
                        0 => (true, format!("sent {sig}")),
                        _ => (
                            false,
                            format!("cannot send {sig}: {}", std::io::Error::last_os_error()),
                        ),
                    },
                    None => (false, "not running".to_string()),
                };
                ActionResult {
                    name: n.clone(),
                    ok,
                    state: e.proc.state,
                    message,
                }
            })
            .collect();
        Ok(ActionReply { results, op: None })
    }

    fn programs(&self) -> ProgramsView {
        ProgramsView {
            programs: self
                .table
                .values()
                .map(|e| ProgramView {
                    spec: e.spec.clone(),
                    state: e.proc.state,
                    pid: e.proc.pid,
                })
                .collect(),
            env: self.env.clone(),
            etcd: self.config.etcd.clone(),
            cluster: self.config.cluster.clone(),
        }
    }

    fn log_file(&self, name: &str, stream: &str) -> Result<PathBuf, ApiError> {
        let resolved = self.resolve(&[name.to_string()])?;
        if resolved.len() != 1 {
            return Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("{name} names more than one process"),
            ));
        }
        let spec = &self.table[&resolved[0]].spec;
        let log = match stream {
            "stdout" => &spec.stdout,
            "stderr" if spec.redirect_stderr => {
                return Err(ApiError::new(
                    ErrorKind::BadRequest,
                    format!("{name}: stderr is redirected to stdout (redirect_stderr=true)"),
                ));
            }
            "stderr" => &spec.stderr,
            other => {
                return Err(ApiError::new(
                    ErrorKind::BadRequest,
                    format!("unknown stream {other:?} (stdout or stderr)"),
                ));
            }
        };
        match &log.target {
            LogTarget::File(p) => Ok(p.clone()),
            LogTarget::Discard => Err(ApiError::new(
                ErrorKind::NotFound,
                format!("{name}: {stream} is not logged (logfile=NONE)"),
            )),
        }
    }
}

/// A signal's name (`SIGTERM`), or its number for real-time signals.
fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.to_string())
}

/// A program's log files, opened (and created) before it is spawned; an unsafe path is an
/// error naming the key.
fn open_logs(
    spec: &ProgramSpec,
    shared: impl Fn(&std::path::Path) -> bool,
) -> Result<(Option<logs::RotatingFile>, Option<logs::RotatingFile>), String> {
    let open = |key: &str, log: &crate::config::LogSpec| match &log.target {
        LogTarget::File(path) => {
            logs::RotatingFile::create(path, log.maxbytes, log.backups, shared(path))
                .map(Some)
                .map_err(|e| format!("{key}: {e}"))
        }
        LogTarget::Discard => Ok(None),
    };
    let out = open("stdout_logfile", &spec.stdout)?;
    let err = if spec.redirect_stderr {
        None
    } else {
        open("stderr_logfile", &spec.stderr)?
    };
    Ok((out, err))
}

/// Whether nothing of a program's run remains: no process of group `pgid`, and none in its
/// cgroup (zombies are reaped before this is asked).
fn program_gone(pgid: i32, cgroup: Option<&std::path::Path>) -> bool {
    group_gone(pgid) && cgroup.is_none_or(|dir| !cgroup::populated(dir))
}

/// Whether no process of group `pgid` remains.
fn group_gone(pgid: i32) -> bool {
    matches!(
        kill(Pid::from_raw(-pgid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
