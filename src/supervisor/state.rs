//! supervisord's process state machine as pure functions.
//!
//! [`step`] takes a process record, one [`Input`] and the time, and returns the actions the
//! event loop must carry out. It performs no I/O, so every rule (startsecs, startretries,
//! exitcodes, autorestart, backoff, stop escalation) is unit-tested without processes.
//!
//! Backoff: the n-th consecutive failed start (an exit before `startsecs`), and the n-th
//! consecutive quick exit (a run shorter than [`QUICK_EXIT`], which also covers `startsecs=0`)
//! waits `min(1 s * 2^(n-1), 60 s)` before the next spawn: 1, 2, 4, 8, 16, 32, 60, 60 ... s.
//! A run that lasted at least `max(startsecs, 1 s)` resets the count, so a long-running
//! program that crashes is respawned at once.

use std::time::{Duration, Instant};

use crate::api::ProcessState;
use crate::config::{AutoRestart, ProgramSpec, StartRetries};

/// A run shorter than this counts as a quick exit and is backed off.
pub const QUICK_EXIT: Duration = Duration::from_secs(1);
/// First backoff delay.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Backoff never waits longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Timers a process can have armed; at most one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// `startsecs` elapsed: STARTING becomes RUNNING.
    StartSecs,
    /// Backoff elapsed: spawn again.
    Backoff,
    /// `stopwaitsecs` elapsed: next stop signal, or SIGKILL.
    StopEscalate,
}

/// What happened to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A person (or a start job) asked for it to run. Resets the failure count.
    Start,
    /// A person asked for it to stop.
    Stop,
    /// The loop spawned it (answer to [`Action::Spawn`]).
    Spawned { pid: i32 },
    /// The spawn failed (answer to [`Action::Spawn`]).
    SpawnFailed,
    /// The leader exited; `group_empty` tells whether other members of its group remain.
    Exited { exit: Exit, group_empty: bool },
    /// After the leader's exit, the last member of its process group is gone.
    GroupEmpty,
    /// A timer armed by [`Action::Arm`] fired (stale timers are filtered by the loop).
    Timer(TimerKind),
    /// fild is shutting down: never restart again.
    Shutdown,
}

/// What the loop must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Spawn the process now and answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send a signal to the leader, or to its whole process group.
    Signal { signal: i32, group: bool },
    /// Arm the process's timer (replacing any armed one).
    Arm { kind: TimerKind, after: Duration },
    /// Disarm the process's timer.
    Disarm,
}

/// The mutable record of one process. Only the event loop holds these.
#[derive(Debug, Clone)]
pub struct Proc {
    pub state: ProcessState,
    pub pid: Option<i32>,
    /// When the current or last run was spawned.
    pub started: Option<Instant>,
    /// Consecutive failed starts / quick exits.
    pub failures: u32,
    /// Automatic respawns so far.
    pub restarts: u64,
    pub last_exit: Option<Exit>,
    /// Index into `stopsignals` of the signal last sent while STOPPING.
    pub stop_index: usize,
    /// The leader has exited but members of its group remain; no spawn until they are gone.
    pub leftovers: bool,
    /// A spawn is due as soon as `leftovers` clears.
    pub spawn_pending: bool,
    /// Set on shutdown: never respawn.
    pub no_restart: bool,
    /// Why the last spawn failed, or why the process is FATAL.
    pub spawn_error: Option<String>,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            state: ProcessState::Stopped,
            pid: None,
            started: None,
            failures: 0,
            restarts: 0,
            last_exit: None,
            stop_index: 0,
            leftovers: false,
            spawn_pending: false,
            no_restart: false,
            spawn_error: None,
        }
    }
}

/// When a timer armed at `now` for `after` fires. Checked: a time past what `Instant` can
/// hold fires at the latest time it can (the configuration bounds every duration, so this
/// is defence, never the rule).
pub fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(u32::MAX.into())))
        .unwrap_or(now)
}

/// Backoff before the next spawn after `failures` consecutive failures (>= 1).
pub fn backoff_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE * 2u32.pow(exp)).min(BACKOFF_CAP)
}

/// Whether an exit calls for a restart under `autorestart`/`exitcodes`.
pub fn wants_restart(spec: &ProgramSpec, exit: Exit) -> bool {
    match spec.autorestart {
        AutoRestart::Never => false,
        AutoRestart::Always => true,
        AutoRestart::Unexpected => match exit {
            Exit::Code(code) => !spec.exitcodes.contains(&code),
            Exit::Signal(_) => true,
        },
    }
}

/// Whether a process is quiescent for a start request: running, or it has failed.
pub fn start_settled(p: &Proc) -> bool {
    match p.state {
        ProcessState::Running => true,
        ProcessState::Starting | ProcessState::Stopping => false,
        ProcessState::Backoff
        | ProcessState::Fatal
        | ProcessState::Exited
        | ProcessState::Stopped => !p.spawn_pending,
    }
}

/// Whether a process is quiescent for a stop request: nothing of it runs any more.
pub fn stop_settled(p: &Proc) -> bool {
    matches!(
        p.state,
        ProcessState::Stopped | ProcessState::Exited | ProcessState::Fatal
    ) && !p.leftovers
}

/// Apply one input. Returns the actions to carry out, in order.
pub fn step(p: &mut Proc, spec: &ProgramSpec, input: Input, now: Instant) -> Vec<Action> {
    use ProcessState::*;
    let mut out = Vec::new();
    match input {
        Input::Shutdown => {
            p.no_restart = true;
            if p.state == Backoff {
                p.state = Stopped;
                p.spawn_pending = false;
                out.push(Action::Disarm);
            }
        }
        Input::Start => match p.state {
            Stopped | Exited | Fatal | Backoff => {
                p.failures = 0;
                p.no_restart = false;
                p.spawn_error = None;
                out.push(Action::Disarm);
                begin_spawn(p, &mut out);
            }
            Starting | Running | Stopping => {}
        },
        Input::Stop => match p.state {
            Starting | Running => match p.pid {
                Some(_) => {
                    p.state = Stopping;
                    p.stop_index = 0;
                    out.push(Action::Signal {
                        signal: first_stop_signal(spec),
                        group: spec.stopasgroup || p.leftovers,
                    });
                    out.push(Action::Arm {
                        kind: TimerKind::StopEscalate,
                        after: Duration::from_secs(spec.stopwaitsecs),
                    });
                }
                None => {
                    // Waiting for a previous run's leftovers before spawning: just don't.
                    p.spawn_pending = false;
                    p.state = Stopped;
                    if p.leftovers {
                        p.state = Stopping;
                    }
                }
            },
            Backoff => {
                p.state = Stopped;
                p.spawn_pending = false;
                out.push(Action::Disarm);
            }
            Stopped | Exited | Fatal | Stopping => {}
        },
        Input::Spawned { pid } => {
            p.pid = Some(pid);
            p.started = Some(now);
            p.state = Starting;
            p.spawn_error = None;
            if spec.startsecs == 0 {
                p.state = Running;
                out.push(Action::Disarm);
            } else {
                out.push(Action::Arm {
                    kind: TimerKind::StartSecs,
                    after: Duration::from_secs(spec.startsecs),
                });
            }
        }
        Input::SpawnFailed => {
            p.pid = None;
            failed_start(p, spec, &mut out);
        }
        Input::Timer(TimerKind::StartSecs) => {
            if p.state == Starting && p.pid.is_some() {
                p.state = Running;
            }
        }
        Input::Timer(TimerKind::Backoff) => {
            if p.state == Backoff {
                p.restarts += 1;
                begin_spawn(p, &mut out);
            }
        }
        Input::Timer(TimerKind::StopEscalate) => {
            if p.state == Stopping {
                let next = p.stop_index + 1;
                let group = p.pid.is_none() || p.leftovers;
                if next < spec.stopsignals.len() {
                    p.stop_index = next;
                    out.push(Action::Signal {
                        signal: spec.stopsignals[next],
                        group: spec.stopasgroup || group,
                    });
                    out.push(Action::Arm {
                        kind: TimerKind::StopEscalate,
                        after: Duration::from_secs(spec.stopwaitsecs),
                    });
                } else {
                    p.stop_index = spec.stopsignals.len();
                    out.push(Action::Signal {
                        signal: libc::SIGKILL,
                        group: spec.killasgroup || group,
                    });
                }
            }
        }
        Input::Exited { exit, group_empty } => {
            p.pid = None;
            p.last_exit = Some(exit);
            p.leftovers = !group_empty;
            let ran = p.started.map(|s| now.saturating_duration_since(s));
            match p.state {
                Stopping => {
                    if group_empty {
                        p.state = Stopped;
                        out.push(Action::Disarm);
                    } else {
                        // Members outlived the leader: they get the stop signal too, and
                        // SIGKILL when stopwaitsecs runs out.
                        let signal = spec
                            .stopsignals
                            .get(p.stop_index)
                            .copied()
                            .unwrap_or(libc::SIGKILL);
                        out.push(Action::Signal {
                            signal,
                            group: true,
                        });
                    }
                }
                Starting => {
                    kill_leftovers(p, &mut out);
                    failed_start(p, spec, &mut out);
                }
                Running => {
                    kill_leftovers(p, &mut out);
                    let long_run = ran
                        .is_some_and(|d| d >= QUICK_EXIT.max(Duration::from_secs(spec.startsecs)));
                    if long_run {
                        p.failures = 0;
                    } else {
                        p.failures = p.failures.saturating_add(1);
                    }
                    if p.no_restart || !wants_restart(spec, exit) {
                        p.state = Exited;
                        out.push(Action::Disarm);
                    } else if p.failures == 0 {
                        p.restarts += 1;
                        out.push(Action::Disarm);
                        begin_spawn(p, &mut out);
                    } else {
                        p.state = Backoff;
                        out.push(Action::Arm {
                            kind: TimerKind::Backoff,
                            after: backoff_delay(p.failures),
                        });
                    }
                }
                // An exit we were not waiting for (a stray reap): record it only.
                Stopped | Exited | Fatal | Backoff => {}
            }
        }
        Input::GroupEmpty => {
            if p.leftovers {
                p.leftovers = false;
                if p.state == Stopping && p.pid.is_none() {
                    p.state = Stopped;
                    out.push(Action::Disarm);
                } else if p.spawn_pending {
                    p.spawn_pending = false;
                    out.push(Action::Spawn);
                }
            }
        }
    }
    out
}

fn first_stop_signal(spec: &ProgramSpec) -> i32 {
    spec.stopsignals.first().copied().unwrap_or(libc::SIGTERM)
}

/// Spawn now, or as soon as a previous run's leftovers are gone.
fn begin_spawn(p: &mut Proc, out: &mut Vec<Action>) {
    p.state = ProcessState::Starting;
    if p.leftovers {
        p.spawn_pending = true;
    } else {
        out.push(Action::Spawn);
    }
}

/// The leader died while members of its group live on: they are a dead run's orphans, holding
/// its ports and files. Kill them before anything is spawned again.
fn kill_leftovers(p: &mut Proc, out: &mut Vec<Action>) {
    if p.leftovers {
        out.push(Action::Signal {
            signal: libc::SIGKILL,
            group: true,
        });
    }
}

/// An exit before `startsecs` (or a spawn error): BACKOFF, or FATAL after `startretries`.
fn failed_start(p: &mut Proc, spec: &ProgramSpec, out: &mut Vec<Action>) {
    p.failures = p.failures.saturating_add(1);
    let give_up = match spec.startretries {
        StartRetries::Count(n) => p.failures > n,
        StartRetries::Forever => false,
    };
    if p.no_restart {
        p.state = ProcessState::Exited;
        if !p.leftovers {
            out.push(Action::Disarm);
        }
    } else if give_up {
        p.state = ProcessState::Fatal;
        p.spawn_error
            .get_or_insert_with(|| "Exited too quickly (process log may have details)".into());
        if !p.leftovers {
            out.push(Action::Disarm);
        }
    } else {
        p.state = ProcessState::Backoff;
        out.push(Action::Arm {
            kind: TimerKind::Backoff,
            after: backoff_delay(p.failures),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogSpec, LogTarget};

    fn spec() -> ProgramSpec {
        let log = LogSpec {
            target: LogTarget::Discard,
            maxbytes: 0,
            backups: 0,
        };
        ProgramSpec {
            name: "p".into(),
            program: "p".into(),
            group: "p".into(),
            command: vec!["/bin/true".into()],
            directory: None,
            environment: vec![],
            user: None,
            umask: None,
            priority: 999,
            autostart: true,
            autorestart: AutoRestart::Unexpected,
            startsecs: 1,
            startretries: StartRetries::Count(3),
            exitcodes: vec![0],
            stopsignals: vec![libc::SIGTERM],
            stopwaitsecs: 10,
            stopasgroup: false,
            killasgroup: false,
            redirect_stderr: false,
            stdout: log.clone(),
            stderr: log,
            restart_when_binary_changed: false,
            restart_directory_monitor: None,
            restart_file_pattern: None,
        }
    }

    fn arm(kind: TimerKind, secs: u64) -> Action {
        Action::Arm {
            kind,
            after: Duration::from_secs(secs),
        }
    }

    /// Start and spawn: returns the time of the spawn.
    fn started(p: &mut Proc, s: &ProgramSpec, t: Instant) {
        assert_eq!(
            step(p, s, Input::Start, t),
            vec![Action::Disarm, Action::Spawn]
        );
        step(p, s, Input::Spawned { pid: 42 }, t);
    }

    #[test]
    fn start_waits_startsecs_then_runs() {
        let s = spec();
        let mut p = Proc::default();
        let t = Instant::now();
        assert_eq!(
            step(&mut p, &s, Input::Start, t),
            vec![Action::Disarm, Action::Spawn]
        );
        assert_eq!(p.state, ProcessState::Starting);
        assert_eq!(
            step(&mut p, &s, Input::Spawned { pid: 7 }, t),
            vec![arm(TimerKind::StartSecs, 1)]
        );
        assert!(!start_settled(&p));
        step(&mut p, &s, Input::Timer(TimerKind::StartSecs), t);
        assert_eq!(p.state, ProcessState::Running);
        assert!(start_settled(&p));
    }

    #[test]
    fn startsecs_zero_is_running_at_once() {
        let mut s = spec();
        s.startsecs = 0;
        let mut p = Proc::default();
        started(&mut p, &s, Instant::now());
        assert_eq!(p.state, ProcessState::Running);
    }

    #[test]
    fn failed_starts_back_off_exponentially_then_fatal() {
        let s = spec();
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        let mut delays = Vec::new();
        for _ in 0..3 {
            let acts = step(
                &mut p,
                &s,
                Input::Exited {
                    exit: Exit::Code(1),
                    group_empty: true,
                },
                t,
            );
            assert_eq!(p.state, ProcessState::Backoff);
            delays.push(acts);
            assert_eq!(
                step(&mut p, &s, Input::Timer(TimerKind::Backoff), t),
                vec![Action::Spawn]
            );
            step(&mut p, &s, Input::Spawned { pid: 43 }, t);
        }
        assert_eq!(
            delays,
            vec![
                vec![arm(TimerKind::Backoff, 1)],
                vec![arm(TimerKind::Backoff, 2)],
                vec![arm(TimerKind::Backoff, 4)]
            ]
        );
        step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Code(1),
                group_empty: true,
            },
            t,
        );
        assert_eq!(
            p.state,
            ProcessState::Fatal,
            "1 try + 3 retries, then FATAL"
        );
        assert_eq!(p.restarts, 3);
    }

    #[test]
    fn forever_never_goes_fatal_and_caps_the_delay() {
        let mut s = spec();
        s.startretries = StartRetries::Forever;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        let mut last = Vec::new();
        for _ in 0..20 {
            last = step(
                &mut p,
                &s,
                Input::Exited {
                    exit: Exit::Code(1),
                    group_empty: true,
                },
                t,
            );
            assert_eq!(p.state, ProcessState::Backoff);
            step(&mut p, &s, Input::Timer(TimerKind::Backoff), t);
            step(&mut p, &s, Input::Spawned { pid: 44 }, t);
        }
        assert_eq!(last, vec![arm(TimerKind::Backoff, 60)]);
    }

    #[test]
    fn long_run_crash_restarts_at_once_and_resets_failures() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        step(&mut p, &s, Input::Timer(TimerKind::StartSecs), t);
        p.failures = 2;
        let later = t + Duration::from_secs(30);
        let acts = step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Signal(9),
                group_empty: true,
            },
            later,
        );
        assert_eq!(acts, vec![Action::Disarm, Action::Spawn]);
        assert_eq!(p.failures, 0);
        assert_eq!(p.restarts, 1);
    }

    #[test]
    fn quick_exits_with_startsecs_zero_back_off() {
        let mut s = spec();
        s.startsecs = 0;
        s.autorestart = AutoRestart::Always;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        let acts = step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Code(0),
                group_empty: true,
            },
            t + Duration::from_millis(10),
        );
        assert_eq!(acts, vec![arm(TimerKind::Backoff, 1)]);
        assert_eq!(p.state, ProcessState::Backoff);
    }

    #[test]
    fn exitcodes_decide_unexpected_restarts() {
        let mut s = spec();
        s.exitcodes = vec![0, 2];
        assert!(!wants_restart(&s, Exit::Code(2)));
        assert!(wants_restart(&s, Exit::Code(1)));
        assert!(wants_restart(&s, Exit::Signal(9)));
        s.autorestart = AutoRestart::Never;
        assert!(!wants_restart(&s, Exit::Code(1)));
        s.autorestart = AutoRestart::Always;
        assert!(wants_restart(&s, Exit::Code(0)));

        s.autorestart = AutoRestart::Unexpected;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        step(&mut p, &s, Input::Timer(TimerKind::StartSecs), t);
        step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Code(2),
                group_empty: true,
            },
            t + Duration::from_secs(5),
        );
        assert_eq!(p.state, ProcessState::Exited);
    }

    #[test]
    fn stop_sends_each_signal_then_kills_the_group() {
        let mut s = spec();
        s.stopsignals = vec![libc::SIGINT, libc::SIGTERM];
        s.stopasgroup = true;
        s.killasgroup = true;
        s.stopwaitsecs = 3;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        assert_eq!(
            step(&mut p, &s, Input::Stop, t),
            vec![
                Action::Signal {
                    signal: libc::SIGINT,
                    group: true
                },
                arm(TimerKind::StopEscalate, 3)
            ]
        );
        assert_eq!(p.state, ProcessState::Stopping);
        assert_eq!(
            step(&mut p, &s, Input::Timer(TimerKind::StopEscalate), t),
            vec![
                Action::Signal {
                    signal: libc::SIGTERM,
                    group: true
                },
                arm(TimerKind::StopEscalate, 3)
            ]
        );
        assert_eq!(
            step(&mut p, &s, Input::Timer(TimerKind::StopEscalate), t),
            vec![Action::Signal {
                signal: libc::SIGKILL,
                group: true
            }]
        );
        // The leader dies but a grandchild lingers: still STOPPING, not settled.
        step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Signal(9),
                group_empty: false,
            },
            t,
        );
        assert_eq!(p.state, ProcessState::Stopping);
        assert!(!stop_settled(&p));
        step(&mut p, &s, Input::GroupEmpty, t);
        assert_eq!(p.state, ProcessState::Stopped);
        assert!(stop_settled(&p));
    }

    #[test]
    fn stop_never_restarts_even_with_autorestart() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        step(&mut p, &s, Input::Stop, t);
        let acts = step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Signal(15),
                group_empty: true,
            },
            t,
        );
        assert_eq!(acts, vec![Action::Disarm]);
        assert_eq!(p.state, ProcessState::Stopped);
    }

    #[test]
    fn leftovers_of_a_crashed_run_are_killed_before_respawn() {
        let mut s = spec();
        s.autorestart = AutoRestart::Always;
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        step(&mut p, &s, Input::Timer(TimerKind::StartSecs), t);
        let acts = step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Code(0),
                group_empty: false,
            },
            t + Duration::from_secs(10),
        );
        assert_eq!(
            acts,
            vec![
                Action::Signal {
                    signal: libc::SIGKILL,
                    group: true
                },
                Action::Disarm
            ]
        );
        assert!(p.spawn_pending, "spawn waits for the group to empty");
        assert_eq!(step(&mut p, &s, Input::GroupEmpty, t), vec![Action::Spawn]);
    }

    #[test]
    fn stop_during_backoff_and_shutdown_cancel_retries() {
        let s = spec();
        let mut p = Proc::default();
        let t = Instant::now();
        started(&mut p, &s, t);
        step(
            &mut p,
            &s,
            Input::Exited {
                exit: Exit::Code(1),
                group_empty: true,
            },
            t,
        );
        assert_eq!(p.state, ProcessState::Backoff);
        assert_eq!(step(&mut p, &s, Input::Stop, t), vec![Action::Disarm]);
        assert_eq!(p.state, ProcessState::Stopped);

        let mut s2 = spec();
        s2.autorestart = AutoRestart::Always;
        let mut p = Proc::default();
        started(&mut p, &s2, t);
        step(&mut p, &s2, Input::Shutdown, t);
        step(
            &mut p,
            &s2,
            Input::Exited {
                exit: Exit::Code(1),
                group_empty: true,
            },
            t + Duration::from_secs(9),
        );
        assert_eq!(p.state, ProcessState::Exited);
    }

    #[test]
    fn spawn_failure_counts_as_a_failed_start() {
        let mut s = spec();
        s.startretries = StartRetries::Count(0);
        let mut p = Proc::default();
        let t = Instant::now();
        step(&mut p, &s, Input::Start, t);
        step(&mut p, &s, Input::SpawnFailed, t);
        assert_eq!(p.state, ProcessState::Fatal);
        assert!(start_settled(&p));
    }

    #[test]
    fn deadlines_never_overflow() {
        let t = Instant::now();
        assert_eq!(
            deadline(t, Duration::from_secs(5)),
            t + Duration::from_secs(5)
        );
        let far = deadline(t, Duration::MAX);
        assert!(far > t + Duration::from_secs(100 * 365 * 86_400), "{far:?}");
        assert!(
            deadline(far, Duration::MAX) >= far,
            "still no panic, never earlier"
        );
    }

    #[test]
    fn backoff_schedule() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
