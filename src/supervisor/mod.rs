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

pub mod guard;
pub mod logs;
pub mod procstat;
pub mod reload;
pub mod spawn;
pub mod state;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

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

/// An error answer to a request: an HTTP status and a message for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub error: String,
    pub details: Vec<String>,
}

impl ApiError {
    pub fn new(status: u16, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            details: Vec::new(),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// The operations a person can ask for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOp {
    Start,
    Stop,
    Restart,
}

/// A request to the loop.
pub enum Request {
    Status {
        names: Vec<String>,
        /// Read CPU and RSS from /proc (one file per process); false leaves them 0.
        stats: bool,
        reply: Reply<Vec<ProcessInfo>>,
    },
    Action {
        op: UserOp,
        names: Vec<String>,
        reply: Reply<ActionReply>,
    },
    Signal {
        req: SignalRequest,
        reply: Reply<ActionReply>,
    },
    Reload {
        reply: Reply<ReloadReply>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    /// Where a process's stdout or stderr log is.
    LogFile {
        name: String,
        stream: String,
        reply: Reply<PathBuf>,
    },
    /// A watched file of a program changed (from the notify watcher's thread).
    FileChanged {
        name: String,
    },
    /// A read-only view of the programs, for modules that reason about them (etcd).
    Programs {
        reply: Reply<ProgramsView>,
    },
}

/// One program as [`Request::Programs`] shows it.
#[derive(Debug, Clone)]
pub struct ProgramView {
    pub spec: Arc<ProgramSpec>,
    pub state: ProcessState,
    pub pid: Option<i32>,
}

/// Every program, fild's environment and the `[etcd]` settings, as of one moment.
#[derive(Debug, Clone)]
pub struct ProgramsView {
    pub programs: Vec<ProgramView>,
    pub env: Env,
    pub etcd: config::EtcdSettings,
}

/// The way into the loop, for the control server (and anything else that is not the loop).
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Request>,
    applied: tokio::sync::watch::Receiver<u64>,
}

impl Handle {
    /// Changes each time a configuration is applied (start-up, reload, SIGHUP): tasks that
    /// have nothing to do under the current configuration wait on it instead of polling.
    pub fn config_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Send a request built around a reply channel and wait for the answer.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .map_err(|_| ApiError::new(503, "fild is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::new(503, "fild is shutting down"))?
    }
}

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
    start_wall: Option<SystemTime>,
    stop_wall: Option<SystemTime>,
    _watcher: Option<notify::RecommendedWatcher>,
}

struct TimerRef {
    name: String,
    generation: u64,
    kind: TimerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Start,
    Stop,
    Drop,
}

struct Phase {
    op: Op,
    names: Vec<String>,
}

enum JobReply {
    None,
    Action {
        op: UserOp,
        names: Vec<String>,
        before: HashMap<String, ProcessState>,
        reply: Reply<ActionReply>,
    },
    Reload {
        result: ReloadReply,
        reply: Reply<ReloadReply>,
    },
    Shutdown,
}

struct Job {
    phases: VecDeque<Phase>,
    current: Option<Phase>,
    reply: JobReply,
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
    server_url: String,
    tx: mpsc::UnboundedSender<Request>,
    rx: mpsc::UnboundedReceiver<Request>,
    /// Bumped by every `apply`.
    applied: tokio::sync::watch::Sender<u64>,
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
        server_url: String,
    ) -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
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
            server_url,
            tx,
            rx,
            applied: tokio::sync::watch::Sender::new(0),
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
        let (startup, _) = self.apply(initial);
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
            .then(|| Instant::now() + LEFTOVER_RECHECK);
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
            let group_empty = group_gone(pid);
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
            .filter(|(_, e)| e.proc.leftovers && e.pgid.is_some_and(group_gone))
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
        let e = self.table.get_mut(name)?;
        match action {
            Action::Spawn => {
                let spec = e.spec.clone();
                match spawn::spawn(&spec, &self.server_url) {
                    Ok(s) => {
                        self.pids.insert(s.pid, name.to_string());
                        e.pgid = Some(s.pid);
                        e.start_wall = Some(SystemTime::now());
                        self.guard.add(s.pid);
                        if let (Some(fd), LogTarget::File(path)) = (s.stdout, &spec.stdout.target) {
                            let f = logs::RotatingFile::new(
                                path,
                                spec.stdout.maxbytes,
                                spec.stdout.backups,
                            );
                            tokio::spawn(logs::pump(fd, f));
                        }
                        if let (Some(fd), LogTarget::File(path)) = (s.stderr, &spec.stderr.target) {
                            let f = logs::RotatingFile::new(
                                path,
                                spec.stderr.maxbytes,
                                spec.stderr.backups,
                            );
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
                if let (Some(target), Ok(sig)) = (target, Signal::try_from(signal)) {
                    tracing::info!(program = %name, target, signal = %sig, "Signalling.");
                    let _ = kill(Pid::from_raw(target), sig);
                }
                None
            }
            Action::Arm { kind, after } => {
                e.timer_gen += 1;
                self.timer_seq += 1;
                self.timers.insert(
                    (Instant::now() + after, self.timer_seq),
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
                    let _ = reply.send(Err(ApiError::new(503, "fild is shutting down")));
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
            Request::Reload { reply } => {
                if self.shutting_down {
                    let _ = reply.send(Err(ApiError::new(503, "fild is shutting down")));
                    return;
                }
                match config::load(&self.config_path, &self.env) {
                    Ok(new) => {
                        let (mut job, result) = self.apply(new);
                        job.reply = JobReply::Reload { result, reply };
                        self.jobs.push(job);
                    }
                    Err(errors) => {
                        tracing::warn!("Reload refused: {errors}");
                        let _ = reply.send(Err(ApiError {
                            status: 400,
                            error: format!(
                                "invalid configuration in {}; nothing was changed",
                                self.config_path.display()
                            ),
                            details: errors.0.iter().map(|e| e.to_string()).collect(),
                        }));
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
            Request::Programs { reply } => {
                let _ = reply.send(Ok(self.programs()));
            }
            Request::FileChanged { name } => {
                if self.table.contains_key(&name) {
                    self.debounce.insert(name, Instant::now() + WATCH_DEBOUNCE);
                }
            }
        }
    }

    /// Names as typed (`all`, `group:*`, `group:name`, `name`, a group's name) to process
    /// names. Any unknown name fails the whole request, so nothing is half done.
    fn resolve(&self, names: &[String]) -> Result<Vec<String>, ApiError> {
        if names.is_empty() {
            return Err(ApiError::new(
                400,
                "no process named (use a name, group:*, or all)",
            ));
        }
        let programs: Vec<(&str, &str)> = self
            .table
            .iter()
            .map(|(n, e)| (n.as_str(), e.spec.group.as_str()))
            .collect();
        resolve_names(&programs, names).map_err(|unknown| {
            ApiError::new(404, format!("no such process: {}", unknown.join(", ")))
        })
    }

    fn begin_action(&mut self, op: UserOp, names: Vec<String>, reply: Reply<ActionReply>) {
        let before = names
            .iter()
            .filter_map(|n| Some((n.clone(), self.table.get(n)?.proc.state)))
            .collect();
        let start = self.tiers(&names, false);
        let stop = self.tiers(&names, true);
        let phases = match op {
            UserOp::Start => start.into_iter().map(|t| phase(Op::Start, t)).collect(),
            UserOp::Stop => stop.into_iter().map(|t| phase(Op::Stop, t)).collect(),
            UserOp::Restart => stop
                .into_iter()
                .map(|t| phase(Op::Stop, t))
                .chain(start.into_iter().map(|t| phase(Op::Start, t)))
                .collect(),
        };
        self.jobs.push(Job::new(
            phases,
            JobReply::Action {
                op,
                names,
                before,
                reply,
            },
        ));
    }

    /// Priority tiers of `names`: ascending for start, descending for stop.
    fn tiers(&self, names: &[String], reverse: bool) -> Vec<Vec<String>> {
        let mut t = reload::tiers(
            names
                .iter()
                .filter_map(|n| self.table.get(n).map(|e| e.spec.as_ref())),
        );
        if reverse {
            t.reverse();
        }
        t
    }

    fn signal(&mut self, req: &SignalRequest) -> Result<ActionReply, ApiError> {
        let signo = config::parse_signal(&req.signal)
            .map_err(|e| ApiError::new(400, format!("bad signal {:?}: {e}", req.signal)))?;
        let sig = Signal::try_from(signo)
            .map_err(|_| ApiError::new(400, format!("bad signal {:?}", req.signal)))?;
        let names = self.resolve(&req.names)?;
        let results = names
            .iter()
            .map(|n| {
                let e = &self.table[n];
                let (ok, message) = match e.proc.pid {
                    Some(pid) => match kill(Pid::from_raw(pid), sig) {
                        Ok(()) => (true, format!("sent {sig}")),
                        Err(err) => (false, format!("cannot send {sig}: {err}")),
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
        Ok(ActionReply { results })
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
        }
    }

    fn log_file(&self, name: &str, stream: &str) -> Result<PathBuf, ApiError> {
        let resolved = self.resolve(&[name.to_string()])?;
        if resolved.len() != 1 {
            return Err(ApiError::new(
                400,
                format!("{name} names more than one process"),
            ));
        }
        let spec = &self.table[&resolved[0]].spec;
        let log = match stream {
            "stdout" => &spec.stdout,
            "stderr" if spec.redirect_stderr => {
                return Err(ApiError::new(
                    400,
                    format!("{name}: stderr is redirected to stdout (redirect_stderr=true)"),
                ));
            }
            "stderr" => &spec.stderr,
            other => {
                return Err(ApiError::new(
                    400,
                    format!("unknown stream {other:?} (stdout or stderr)"),
                ));
            }
        };
        match &log.target {
            LogTarget::File(p) => Ok(p.clone()),
            LogTarget::Discard => Err(ApiError::new(
                404,
                format!("{name}: {stream} is not logged (logfile=NONE)"),
            )),
        }
    }

    fn status(&self, names: &[String], stats: bool) -> Result<Vec<ProcessInfo>, ApiError> {
        let names = if names.is_empty() {
            self.table.keys().cloned().collect()
        } else {
            self.resolve(names)?
        };
        let clock = stats.then(|| Clock {
            now: procstat::uptime_secs().unwrap_or(0.0),
            tps: procstat::ticks_per_second(),
            page: procstat::page_size(),
        });
        Ok(names.iter().map(|n| self.info(n, clock.as_ref())).collect())
    }

    fn info(&self, name: &str, clock: Option<&Clock>) -> ProcessInfo {
        let e = &self.table[name];
        let p = &e.proc;
        let uptime = match (p.state, p.started) {
            (ProcessState::Running | ProcessState::Starting | ProcessState::Stopping, Some(s)) => {
                s.elapsed().as_secs()
            }
            _ => 0,
        };
        let (cpu, rss) = clock
            .zip(p.pid)
            .and_then(|(clock, pid)| procstat::read(pid).map(|st| (clock, st)))
            .map(|(clock, st)| {
                (
                    procstat::cpu_percent(&st, clock.now, clock.tps),
                    st.rss_pages * clock.page,
                )
            })
            .unwrap_or((0.0, 0));
        let (exit_status, exit_signal) = match p.last_exit {
            Some(Exit::Code(c)) => (Some(c), None),
            Some(Exit::Signal(s)) => (None, Some(s)),
            None => (None, None),
        };
        let path_of = |t: &LogTarget| match t {
            LogTarget::File(p) => Some(p.display().to_string()),
            LogTarget::Discard => None,
        };
        ProcessInfo {
            name: name.to_string(),
            group: e.spec.group.clone(),
            state: p.state,
            pid: p.pid.unwrap_or(0) as u32,
            uptime_secs: uptime,
            restarts: p.restarts,
            exit_status,
            exit_signal,
            cpu_percent: (cpu * 10.0).round() / 10.0,
            rss_bytes: rss,
            start_unix: unix(e.start_wall),
            stop_unix: unix(e.stop_wall),
            description: describe(p, uptime, e.stop_wall),
            stdout_logfile: path_of(&e.spec.stdout.target),
            stderr_logfile: if e.spec.redirect_stderr {
                None
            } else {
                path_of(&e.spec.stderr.target)
            },
        }
    }

    // ----- reload and shutdown ------------------------------------------------------------

    /// Apply a configuration to the table: the one path for start-up and reload. Returns the
    /// job that carries out the changes and the summary for `filc reload`.
    fn apply(&mut self, new: Config) -> (Job, ReloadReply) {
        let plan = reload::diff(
            self.table
                .iter()
                .map(|(n, e)| (n.as_str(), e.spec.as_ref())),
            &new.programs,
        );
        let mut restart = Vec::new();
        for spec in &plan.changed {
            let e = self
                .table
                .get_mut(&spec.name)
                .expect("diffed against the table");
            let spec = Arc::new(spec.clone());
            let active = matches!(
                e.proc.state,
                ProcessState::Starting
                    | ProcessState::Running
                    | ProcessState::Backoff
                    | ProcessState::Stopping
            );
            if active {
                e.next_spec = Some(spec);
                restart.push(spec_name(&e.spec));
            } else {
                e.spec = spec;
                e.next_spec = None;
                e._watcher = watch(&e.spec, &self.tx);
            }
        }
        for spec in &plan.added {
            let spec = Arc::new(spec.clone());
            let watcher = watch(&spec, &self.tx);
            self.table.insert(
                spec.name.clone(),
                Entry {
                    spec,
                    next_spec: None,
                    proc: Proc::default(),
                    timer_gen: 0,
                    pgid: None,
                    start_wall: None,
                    stop_wall: None,
                    _watcher: watcher,
                },
            );
        }
        let mut stop: Vec<String> = plan.removed.clone();
        stop.extend(restart.iter().cloned());
        let mut start: Vec<String> = restart;
        start.extend(
            plan.added
                .iter()
                .filter(|s| s.autostart)
                .map(|s| s.name.clone()),
        );
        let mut phases = VecDeque::new();
        if !stop.is_empty() {
            phases.push_back(phase(Op::Stop, stop));
        }
        if !plan.removed.is_empty() {
            phases.push_back(phase(Op::Drop, plan.removed.clone()));
        }
        for tier in self.tiers(&start, false) {
            phases.push_back(phase(Op::Start, tier));
        }
        let result = ReloadReply {
            added: plan.added.iter().map(|s| s.name.clone()).collect(),
            changed: plan.changed.iter().map(|s| s.name.clone()).collect(),
            removed: plan.removed.clone(),
            warnings: new.warnings.clone(),
        };
        if !result.added.is_empty() || !result.changed.is_empty() || !result.removed.is_empty() {
            tracing::info!(added = ?result.added, changed = ?result.changed, removed = ?result.removed, "Configuration applied.");
        }
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        self.config = new;
        self.applied.send_modify(|n| *n += 1);
        (
            Job {
                phases,
                current: None,
                reply: JobReply::None,
            },
            result,
        )
    }

    fn reload_from_signal(&mut self) {
        if self.shutting_down {
            return;
        }
        match config::load(&self.config_path, &self.env) {
            Ok(new) => {
                let (job, _) = self.apply(new);
                self.jobs.push(job);
            }
            Err(errors) => tracing::error!("SIGHUP reload refused, nothing changed: {errors}"),
        }
    }

    fn begin_shutdown(&mut self, why: &str) {
        if self.shutting_down {
            return;
        }
        tracing::info!("Shutting down on {why}: stopping every program.");
        self.shutting_down = true;
        let names: Vec<String> = self.table.keys().cloned().collect();
        for n in &names {
            self.input(n, Input::Shutdown);
        }
        let phases = self
            .tiers(&names, true)
            .into_iter()
            .map(|t| phase(Op::Stop, t))
            .collect();
        self.jobs.push(Job::new(phases, JobReply::Shutdown));
    }

    // ----- jobs ---------------------------------------------------------------------------

    /// Advance every job whose current phase has settled; repeat until nothing moves.
    fn progress(&mut self) {
        loop {
            let mut moved = false;
            let mut jobs = std::mem::take(&mut self.jobs);
            let mut i = 0;
            while i < jobs.len() {
                let settled = jobs[i]
                    .current
                    .as_ref()
                    .is_none_or(|ph| ph.names.iter().all(|n| self.settled(n, ph.op)));
                if !settled {
                    i += 1;
                    continue;
                }
                moved = true;
                match jobs[i].phases.pop_front() {
                    Some(next) => {
                        for n in &next.names {
                            self.issue(n, next.op);
                        }
                        if next.op == Op::Start {
                            reply_once_started(&mut jobs[i]);
                        }
                        jobs[i].current = Some(next);
                    }
                    None => {
                        let job = jobs.remove(i);
                        self.finish(job);
                    }
                }
            }
            jobs.append(&mut self.jobs);
            self.jobs = jobs;
            if !moved {
                break;
            }
        }
        self.guard.flush();
    }

    fn settled(&self, name: &str, op: Op) -> bool {
        let Some(e) = self.table.get(name) else {
            return true;
        };
        match op {
            Op::Start => state::start_settled(&e.proc),
            Op::Stop => state::stop_settled(&e.proc),
            Op::Drop => true,
        }
    }

    fn issue(&mut self, name: &str, op: Op) {
        match op {
            Op::Start => {
                if !self.shutting_down {
                    self.input(name, Input::Start)
                }
            }
            Op::Stop => self.input(name, Input::Stop),
            Op::Drop => {
                let droppable = self
                    .table
                    .get(name)
                    .is_some_and(|e| state::stop_settled(&e.proc));
                if droppable {
                    self.table.remove(name);
                    self.debounce.remove(name);
                }
            }
        }
    }

    fn finish(&mut self, job: Job) {
        match job.reply {
            JobReply::None => {}
            JobReply::Shutdown => {
                tracing::info!("Every program is stopped.");
                self.exit = true;
            }
            JobReply::Reload { result, reply } => {
                let _ = reply.send(Ok(result));
            }
            JobReply::Action {
                op,
                names,
                before,
                reply,
            } => {
                let results = names
                    .iter()
                    .map(|n| self.outcome(op, n, before.get(n).copied()))
                    .collect();
                let _ = reply.send(Ok(ActionReply { results }));
            }
        }
    }

    fn outcome(&self, op: UserOp, name: &str, before: Option<ProcessState>) -> ActionResult {
        let Some(e) = self.table.get(name) else {
            return ActionResult {
                name: name.to_string(),
                ok: false,
                state: ProcessState::Stopped,
                message: "removed by a reload meanwhile".into(),
            };
        };
        let st = e.proc.state;
        let was_running = before == Some(ProcessState::Running);
        let (ok, message) = match op {
            UserOp::Start | UserOp::Restart if st == ProcessState::Running => (
                true,
                match op {
                    UserOp::Restart => "restarted",
                    _ if was_running => "already started",
                    _ => "started",
                }
                .to_string(),
            ),
            UserOp::Start | UserOp::Restart => {
                let why = e
                    .proc
                    .spawn_error
                    .clone()
                    .unwrap_or_else(|| "abnormal termination".to_string());
                (false, format!("{why} ({})", st.as_str()))
            }
            UserOp::Stop if state::stop_settled(&e.proc) => {
                let stopped = matches!(
                    before,
                    Some(
                        ProcessState::Running
                            | ProcessState::Starting
                            | ProcessState::Backoff
                            | ProcessState::Stopping
                    )
                );
                (true, if stopped { "stopped" } else { "not running" }.into())
            }
            UserOp::Stop => (false, format!("still {}", st.as_str())),
        };
        ActionResult {
            name: name.to_string(),
            ok,
            state: st,
            message,
        }
    }
}

/// A reload answers once its stops are done and its starts are issued (as supervisorctl
/// update does); the job itself goes on until every start has settled.
fn reply_once_started(job: &mut Job) {
    if matches!(job.reply, JobReply::Reload { .. })
        && let JobReply::Reload { result, reply } =
            std::mem::replace(&mut job.reply, JobReply::None)
    {
        let _ = reply.send(Ok(result));
    }
}

impl Job {
    fn new(phases: Vec<Phase>, reply: JobReply) -> Job {
        Job {
            phases: phases.into(),
            current: None,
            reply,
        }
    }
}

fn phase(op: Op, names: Vec<String>) -> Phase {
    Phase { op, names }
}

fn spec_name(spec: &ProgramSpec) -> String {
    spec.name.clone()
}

/// Names as typed (`all`, `group:*`, `group:name`, `name`, a group's name) to process
/// names, given every process's (name, group) in table order. Any unknown name fails the
/// whole request (returned as the list of unknown names), so nothing is half done.
pub fn resolve_names(
    programs: &[(&str, &str)],
    names: &[String],
) -> Result<Vec<String>, Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for n in names {
        let pick = |f: &dyn Fn(&str, &str) -> bool| -> Vec<String> {
            programs
                .iter()
                .filter(|(name, group)| f(name, group))
                .map(|(name, _)| name.to_string())
                .collect()
        };
        let found = if n == "all" {
            pick(&|_, _| true)
        } else if let Some((g, p)) = n.split_once(':') {
            pick(&|name, group| group == g && (p == "*" || name == p))
        } else if programs.iter().any(|(name, _)| name == n) {
            vec![n.clone()]
        } else {
            pick(&|_, group| group == n)
        };
        if found.is_empty() {
            unknown.push(n.clone());
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

impl ProgramsView {
    /// Resolve names exactly as the supervisor does; see [`resolve_names`].
    pub fn resolve(&self, names: &[String]) -> Result<Vec<String>, Vec<String>> {
        let programs: Vec<(&str, &str)> = self
            .programs
            .iter()
            .map(|p| (p.spec.name.as_str(), p.spec.group.as_str()))
            .collect();
        resolve_names(&programs, names)
    }
}

/// What status needs to turn /proc figures into percentages and bytes.
struct Clock {
    now: f64,
    tps: u64,
    page: u64,
}

/// Whether no process of group `pgid` remains (zombies are reaped before this is asked).
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

fn unix(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// supd's description column.
fn describe(p: &Proc, uptime: u64, stopped: Option<SystemTime>) -> String {
    let when = stopped
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default();
    let exit = match p.last_exit {
        Some(Exit::Code(c)) => format!("exit status {c}"),
        Some(Exit::Signal(s)) => match Signal::try_from(s) {
            Ok(sig) => format!("terminated by {sig}"),
            Err(_) => format!("terminated by signal {s}"),
        },
        None => String::new(),
    };
    match p.state {
        ProcessState::Running | ProcessState::Starting | ProcessState::Stopping
            if p.pid.is_some() =>
        {
            format!(
                "pid {}, uptime {}",
                p.pid.unwrap_or(0),
                format_uptime(uptime)
            )
        }
        ProcessState::Stopped if p.last_exit.is_none() => "Not started".into(),
        ProcessState::Fatal | ProcessState::Backoff => {
            let why = p
                .spawn_error
                .clone()
                .unwrap_or_else(|| "Exited too quickly (process log may have details)".into());
            if when.is_empty() {
                why
            } else {
                format!("{why}; {exit} at {when}")
            }
        }
        _ if exit.is_empty() => when,
        _ => format!("{exit} at {when}"),
    }
}

/// `H:MM:SS`, or `D days, H:MM:SS`.
pub fn format_uptime(secs: u64) -> String {
    let (d, rest) = (secs / 86400, secs % 86400);
    let hms = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match d {
        0 => hms,
        1 => format!("1 day, {hms}"),
        _ => format!("{d} days, {hms}"),
    }
}

/// Start the file watcher a spec asks for (`restart_when_binary_changed`,
/// `restart_directory_monitor` + `restart_file_pattern`); events go to the loop.
fn watch(
    spec: &ProgramSpec,
    tx: &mpsc::UnboundedSender<Request>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let binary = if spec.restart_when_binary_changed {
        spec.command.first().and_then(|p| which(p, spec))
    } else {
        None
    };
    let dir = spec.restart_directory_monitor.clone();
    if binary.is_none() && dir.is_none() {
        return None;
    }
    let pattern = spec
        .restart_file_pattern
        .as_deref()
        .and_then(|p| glob::Pattern::new(p).ok());
    let name = spec.name.clone();
    let tx = tx.clone();
    let bin = binary.clone();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if ev.kind.is_access() {
            return;
        }
        let relevant = ev.paths.iter().any(|p| {
            if bin.as_deref() == Some(p.as_path()) {
                return true;
            }
            match (&pattern, p.file_name().and_then(|f| f.to_str())) {
                (Some(pat), Some(f)) => pat.matches(f),
                (None, _) => bin.as_deref() != Some(p.as_path()),
                _ => false,
            }
        });
        if relevant {
            let _ = tx.send(Request::FileChanged { name: name.clone() });
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(program = %spec.name, error = %e, "Cannot watch files.");
            return None;
        }
    };
    if let Some(b) = &binary {
        // Watch the directory: replacing a binary (rename over it) must be seen too.
        if let Some(parent) = b.parent()
            && let Err(e) = w.watch(parent, RecursiveMode::NonRecursive)
        {
            tracing::warn!(program = %spec.name, error = %e, "Cannot watch the binary.");
        }
    }
    if let Some(d) = &dir
        && let Err(e) = w.watch(d, RecursiveMode::Recursive)
    {
        tracing::warn!(program = %spec.name, dir = %d.display(), error = %e, "Cannot watch the directory.");
    }
    Some(w)
}

/// The file `program` runs: a path as given, else looked up on PATH.
fn which(program: &str, spec: &ProgramSpec) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = spec
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
