//! No program's process outlives it, even one that left its process group: a `setsid` child
//! and a double-forked one die on stop, on restart and on fild's SIGKILL (cgroup v2, which
//! this machine has: a cgroup2 mount with cgroup.kill).
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use fild::api::ProcessState;

const T: Duration = Duration::from_secs(20);

/// Live processes whose command line has the word `marker` (zombies have none).
fn with_marker(marker: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|w| w == marker.as_bytes()))
        })
        .collect()
}

/// Whatever a failed assertion leaves, by pid.
struct KillOnDrop(&'static [&'static str]);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for m in self.0 {
            for pid in with_marker(m) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// A program whose `setsid` child leaves its process group, and one that double-forks into
/// a session of its own.
fn programs(dir: &TestDir) -> String {
    let d = dir.script(
        "d.sh",
        "(setsid sh -c 'sleep 100193 & wait' &)\nexec sleep 100194",
    );
    format!(
        "[program:s]\ncommand=/bin/sh -c 'setsid sleep 100191 & exec sleep 100192'\nstartsecs=0\nstopwaitsecs=2\n\n\
         [program:d]\ncommand={}\nstartsecs=0\nstopwaitsecs=2\n",
        d.display()
    )
}

fn cgroup_of(f: &Fild, name: &str) -> String {
    f.info(name)
        .cgroup
        .unwrap_or_else(|| panic!("{name} has no cgroup in filc status --json"))
}

fn procs_in(dir: &str) -> Vec<i32> {
    std::fs::read_to_string(Path::new(dir).join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn escaped_processes_die_on_stop_restart_and_fild_sigkill() {
    let _cleanup = KillOnDrop(&["100191", "100192", "100193", "100194"]);
    let dir = TestDir::new("contain");
    let mut f = Fild::start(&dir, &programs(&dir));
    f.wait_state("s", ProcessState::Running, T);
    f.wait_state("d", ProcessState::Running, T);
    assert!(
        wait_until(T, || !with_marker("100191").is_empty()
            && !with_marker("100193").is_empty()),
        "the escapees never started"
    );
    let escaped_s = with_marker("100191");
    let escaped_d = with_marker("100193");

    // Each program has its cgroup, and its escapee is in it.
    let cg_s = cgroup_of(&f, "s");
    let cg_d = cgroup_of(&f, "d");
    assert_ne!(cg_s, cg_d);
    assert!(
        procs_in(&cg_s).contains(&escaped_s[0]),
        "{cg_s}: {:?}",
        procs_in(&cg_s)
    );
    assert!(
        procs_in(&cg_d).contains(&escaped_d[0]),
        "{cg_d}: {:?}",
        procs_in(&cg_d)
    );
    // Not the program's process group: only the cgroup holds it.
    let pgid_of = |pid: i32| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).ok();
    assert_ne!(pgid_of(escaped_s[0]), pgid_of(f.info("s").pid as i32));

    // Stop: the whole program goes.
    f.filc_ok(&["stop", "s"]);
    assert!(
        wait_until(T, || with_marker("100191").is_empty()
            && with_marker("100192").is_empty()),
        "after stop, left: {:?} {:?}",
        with_marker("100191"),
        with_marker("100192")
    );
    assert_eq!(f.info("s").state, ProcessState::Stopped);

    // Restart: the old run's escapee goes, the new run has its own.
    f.filc_ok(&["restart", "d"]);
    f.wait_state("d", ProcessState::Running, T);
    assert!(
        wait_until(T, || {
            let now = with_marker("100193");
            !now.is_empty() && !now.contains(&escaped_d[0])
        }),
        "after restart: {:?} (old {:?})",
        with_marker("100193"),
        escaped_d
    );
    assert!(
        !alive(escaped_d[0]),
        "the old run's escapee outlived the restart"
    );

    // fild's SIGKILL: the guard kills fild's whole subtree, and removes it.
    f.filc_ok(&["start", "s"]);
    f.wait_state("s", ProcessState::Running, T);
    assert!(wait_until(T, || !with_marker("100191").is_empty()));
    let base = Path::new(&cg_s).parent().unwrap().to_path_buf();
    f.kill9();
    assert!(
        wait_until(T, || ["100191", "100192", "100193", "100194"]
            .iter()
            .all(|m| with_marker(m).is_empty())),
        "after fild's SIGKILL, left: {:?}",
        ["100191", "100192", "100193", "100194"].map(with_marker)
    );
    assert!(
        wait_until(T, || !base.exists()),
        "{} outlived fild's guard",
        base.display()
    );
}
