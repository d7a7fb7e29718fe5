//! Making sure no program outlives fild.
//!
//! Three layers:
//! 1. Every direct child has `PR_SET_PDEATHSIG=SIGKILL` (see `spawn`).
//! 2. The guard: a tiny helper process (`fild --guard`, its own session) reading a pipe whose
//!    write end only fild holds. fild tells it `+pgid` / `-pgid` as program groups appear and
//!    empty. When fild dies, however it dies, the kernel closes the pipe; the guard reads EOF
//!    and SIGKILLs every recorded group, backgrounded grandchildren included, then exits.
//! 3. The record file beside the pidfile (`<pidfile>.groups`): `pgid starttime boot_id` per
//!    live group. A new fild kills what a previous instance left (if the guard died too), but
//!    only processes whose session is that group, started no earlier than the recorded leader,
//!    in the same boot, so a reused pid is never touched.
//!
//! With cgroup containment ([`super::cgroup`]) the guard and the record also know fild's
//! cgroup (`cgroup <dir> <boot_id>` in the record, `=<dir>` on the pipe): fild's death kills
//! that whole subtree, so processes that left their process group die too.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;

use super::procstat;

/// fild's side of the guard.
pub struct Guard {
    pipe: Option<File>,
    record: PathBuf,
    /// fild's cgroup for its programs, when containment is by cgroup.
    cgroup: Option<PathBuf>,
    boot_id: String,
    /// pgid -> leader start time (clock ticks since boot).
    groups: BTreeMap<i32, u64>,
    dirty: bool,
}

/// The kernel's boot id: pids and start times are only comparable within one boot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Start time of a process, in clock ticks since boot.
pub fn start_time(pid: i32) -> Option<u64> {
    procstat::read(pid).map(|s| s.starttime)
}

/// Kill what a previous fild recorded and left running. Returns how many processes were killed.
pub fn kill_recorded(record: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(record) else {
        return 0;
    };
    let boot = boot_id();
    let mut killed = 0;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(pgid), Some(start), Some(b)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if pgid == "cgroup" {
            // `cgroup <dir> <boot_id>`: the dead fild's whole subtree.
            let dir = Path::new(start);
            if b == boot && super::cgroup::populated(dir) {
                killed += super::cgroup::pids_below(dir);
            }
            if b == boot
                && dir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("fild-"))
            {
                super::cgroup::kill_tree(dir, std::time::Duration::from_secs(5));
            }
            continue;
        }
        let (Ok(pgid), Ok(start)) = (pgid.parse::<i32>(), start.parse::<u64>()) else {
            continue;
        };
        if b != boot || pgid <= 1 {
            continue;
        }
        // If the leader still exists it must be the same process.
        if let Some(t) = start_time(pgid)
            && t != start
        {
            continue;
        }
        for pid in members(pgid, start) {
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL)
                .is_ok()
            {
                killed += 1;
            }
        }
    }
    let _ = std::fs::remove_file(record);
    killed
}

/// Processes of session `pgid` started no earlier than its leader.
fn members(pgid: i32, leader_start: u64) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            procstat::read(pid)
                .is_some_and(|s| s.pgrp == pgid && s.session == pgid && s.starttime >= leader_start)
        })
        .collect()
}

impl Guard {
    /// Clean up after a previous instance, then start the guard process (told `cgroup`,
    /// fild's cgroup for its programs, to kill as a whole when fild dies).
    pub fn start(record: PathBuf, cgroup: Option<PathBuf>) -> Guard {
        let killed = kill_recorded(&record);
        if killed > 0 {
            tracing::warn!(
                killed,
                "Killed processes a previous fild left behind (recorded in {}).",
                record.display()
            );
        }
        let pipe = match Self::spawn_guard() {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(error = %e, "Cannot start the guard process; programs may outlive a killed fild.");
                None
            }
        };
        let mut g = Guard {
            pipe,
            record,
            cgroup,
            boot_id: boot_id(),
            groups: BTreeMap::new(),
            dirty: true,
        };
        if let Some(dir) = g.cgroup.clone() {
            g.tell(format!("={}\n", dir.display()));
        }
        g
    }

    fn spawn_guard() -> std::io::Result<File> {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("--guard")
            .stdin(Stdio::from(r))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: setsid is async-signal-safe. Its own session keeps terminal signals (^C)
        // away from the guard: only EOF on its pipe makes it act.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        cmd.spawn()?;
        Ok(File::from(w))
    }

    fn tell(&mut self, line: String) {
        if let Some(pipe) = &mut self.pipe
            && let Err(e) = pipe.write_all(line.as_bytes())
        {
            tracing::error!(error = %e, "The guard process is gone; programs may outlive a killed fild.");
            self.pipe = None;
        }
    }

    /// A program group exists from now on.
    pub fn add(&mut self, pgid: i32) {
        let start = start_time(pgid).unwrap_or(0);
        self.groups.insert(pgid, start);
        self.dirty = true;
        self.tell(format!("+{pgid}\n"));
    }

    /// A program group is gone.
    pub fn remove(&mut self, pgid: i32) {
        if self.groups.remove(&pgid).is_some() {
            self.dirty = true;
            self.tell(format!("-{pgid}\n"));
        }
    }

    /// Write the record file if it changed (once per loop turn, not per spawn).
    pub fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let mut text = String::new();
        if let Some(dir) = &self.cgroup {
            text.push_str(&format!("cgroup {} {}\n", dir.display(), self.boot_id));
        }
        for (pgid, start) in &self.groups {
            text.push_str(&format!("{pgid} {start} {}\n", self.boot_id));
        }
        let tmp = self.record.with_extension("groups.tmp");
        let res = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &self.record));
        if let Err(e) = res {
            tracing::warn!(file = %self.record.display(), error = %e, "Cannot write the group record.");
        }
    }

    /// Clean exit: nothing is left to kill; the guard sees EOF and exits.
    pub fn close(&mut self) {
        self.groups.clear();
        let _ = std::fs::remove_file(&self.record);
        self.pipe = None;
    }
}

/// The guard process's main: read `+pgid`/`-pgid` lines from stdin; at EOF kill what is left.
pub fn run_guard() -> ! {
    let mut groups = std::collections::BTreeSet::new();
    let mut cgroup: Option<PathBuf> = None;
    let stdin = std::io::stdin();
    let mut reader = BufReader::new(stdin.lock());
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let l = line.trim();
                if let Some(dir) = l.strip_prefix('=') {
                    cgroup = Some(PathBuf::from(dir));
                } else if let Some(p) = l.strip_prefix('+').and_then(|p| p.parse::<i32>().ok()) {
                    groups.insert(p);
                } else if let Some(p) = l.strip_prefix('-').and_then(|p| p.parse::<i32>().ok()) {
                    groups.remove(&p);
                }
            }
        }
    }
    for pgid in groups {
        if pgid > 1 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pgid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
    if let Some(dir) = cgroup {
        super::cgroup::kill_tree(&dir, std::time::Duration::from_secs(5));
    }
    std::process::exit(0)
}
