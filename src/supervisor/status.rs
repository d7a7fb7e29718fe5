//! Status: a process table row to a [`ProcessInfo`], with supd's description column.

use super::*;

/// What status needs to turn /proc figures into percentages and bytes.
pub(super) struct Clock {
    pub(super) now: f64,
    pub(super) tps: u64,
    pub(super) page: u64,
}

pub(super) fn unix(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// supd's description column.
pub(super) fn describe(p: &Proc, uptime: u64, stopped: Option<SystemTime>) -> String {
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

impl Supervisor {
    pub(super) fn status(
        &self,
        names: &[String],
        stats: bool,
    ) -> Result<Vec<ProcessInfo>, ApiError> {
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

    pub(super) fn info(&self, name: &str, clock: Option<&Clock>) -> ProcessInfo {
        let e = &self.table[name];
        let p = &e.proc;
        let uptime = match (p.state, p.started) {
            (ProcessState::Running | ProcessState::Starting | ProcessState::Stopping, Some(s)) => {
                s.elapsed().as_secs()
            }
            _ => 0,
        };
        let (cpu, cpu_secs, rss) = clock
            .zip(p.pid)
            .and_then(|(clock, pid)| procstat::read(pid).map(|st| (clock, st)))
            .map(|(clock, st)| {
                (
                    procstat::cpu_percent(&st, clock.now, clock.tps),
                    (st.utime + st.stime) as f64 / clock.tps as f64,
                    st.rss_pages * clock.page,
                )
            })
            .unwrap_or((0.0, 0.0, 0));
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
            cpu_seconds: cpu_secs,
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
            cgroup: e.cgroup.as_ref().map(|d| d.display().to_string()),
        }
    }

    // ----- reload and shutdown ------------------------------------------------------------
}
