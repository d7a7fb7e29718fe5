//! Containment by cgroup v2: every program runs in a cgroup of its own, under one cgroup of
//! this fild's (`<fild's cgroup>/fild-<pid>/<program>`), so a process that leaves its process
//! group (`setsid`, a double fork) is still the program's. Stop and leftovers kill the whole
//! cgroup (`cgroup.kill`); when fild dies, the guard kills fild's whole subtree.
//!
//! fild uses this wherever it finds a writable cgroup v2 hierarchy: a `cgroup2` mount in
//! `/proc/self/mountinfo` holding fild's own cgroup (from `/proc/self/cgroup`), in which it can
//! create a child with `cgroup.kill` (Linux 5.14 or later). Under systemd the unit says
//! `Delegate=yes`. Controllers are never enabled, so fild may stay in its own cgroup while its
//! children have theirs. Where there is none, containment falls back to process groups and
//! the child subreaper (see the README for that fallback's limits).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where fild's programs' cgroups live.
#[derive(Debug, Clone)]
pub struct Cgroups {
    base: PathBuf,
}

/// The mount point and the mounted root of the cgroup v2 hierarchy, from mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (root, mount) = (fields.get(3)?, fields.get(4)?);
        Some((PathBuf::from(unescape(mount)), unescape(root)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup v2 path (the `0::` line of `/proc/self/cgroup`).
pub fn own_path(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
}

/// The directory of cgroup `path` under a mount of the hierarchy rooted at `root`.
pub fn dir_of(mount: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let rel = if root == "/" {
        path
    } else {
        path.strip_prefix(root)?
    };
    Some(mount.join(rel.trim_start_matches('/')))
}

/// A cgroup directory name for a program: its name, with what a path cannot hold replaced.
pub fn dir_name(program: &str) -> String {
    let name: String = program
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    match name.as_str() {
        "" | "." | ".." => format!("_{name}"),
        _ if name.starts_with("cgroup.") => format!("_{name}"),
        _ => name,
    }
}

impl Cgroups {
    /// Find a writable cgroup v2 hierarchy and make fild's cgroup in it, or say why not.
    pub fn detect() -> Result<Cgroups, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let (mount, root) = cgroup2_mount(&mountinfo).ok_or("no cgroup2 file system is mounted")?;
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let own = own_path(&proc_cgroup).ok_or("fild is in no cgroup v2 (no 0:: line)")?;
        let dir = dir_of(&mount, &root, &own).ok_or_else(|| {
            format!(
                "fild's cgroup {own} is outside the mounted part of the hierarchy ({root} at {})",
                mount.display()
            )
        })?;
        Self::clean_stale(&dir);
        let base = dir.join(format!("fild-{}", std::process::id()));
        match std::fs::create_dir(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(format!(
                    "cannot create a cgroup in {} ({e}); under systemd, set Delegate=yes in the unit",
                    dir.display()
                ));
            }
        }
        if !base.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&base);
            return Err(format!(
                "{} has no cgroup.kill (Linux 5.14 or later is needed)",
                base.display()
            ));
        }
        Ok(Cgroups { base })
    }

    /// fild's own cgroup for its programs.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The cgroup of `program`, created if it is not there yet.
    pub fn program(&self, program: &str) -> std::io::Result<PathBuf> {
        let dir = self.base.join(dir_name(program));
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(e),
        }
    }

    /// Empty cgroups an earlier fild left beside ours (`fild-<pid>` whose fild is gone)
    /// are removed; ones that still hold processes are left to that fild's record.
    fn clean_stale(parent: &Path) {
        let Ok(rd) = std::fs::read_dir(parent) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("fild-"))
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            if !alive && !populated(&e.path()) {
                remove_tree(&e.path());
            }
        }
    }
}

/// The write end to join a cgroup: `cgroup.procs`, opened close-on-exec before a fork so the
/// child joins by writing `0` (itself) with one system call and no allocation.
pub fn open_procs(dir: &Path) -> std::io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))?;
    Ok(OwnedFd::from(f))
}

/// Whether any process is in the cgroup or below it.
pub fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|t| t.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

/// The pids in the cgroup itself.
pub fn pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// How many processes are in the cgroup and below it.
pub fn pids_below(dir: &Path) -> usize {
    let mut n = pids(dir).len();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n += pids_below(&e.path());
            }
        }
    }
    n
}

/// SIGKILL every process in the cgroup and below it, at once (`cgroup.kill`).
pub fn kill(dir: &Path) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
    {
        let _ = f.write_all(b"1");
    }
}

/// Send `signal` to every process in the cgroup (SIGKILL through `cgroup.kill`).
pub fn signal(dir: &Path, signal: i32) {
    if signal == libc::SIGKILL {
        kill(dir);
        return;
    }
    for pid in pids(dir) {
        // SAFETY: kill(2) with a pid read from the cgroup; no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Remove a cgroup and the ones below it (each must be empty of processes).
pub fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Kill everything in `dir`'s subtree, wait (bounded) until it is empty, and remove it.
pub fn kill_tree(dir: &Path, wait: Duration) {
    kill(dir);
    let end = Instant::now() + wait;
    while populated(dir) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    remove_tree(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_v2_mount_and_fild_s_cgroup_in_it() {
        let (mount, root) = cgroup2_mount(MOUNTINFO).unwrap();
        assert_eq!(mount, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(root, "/");
        assert_eq!(
            cgroup2_mount("35 31 0:32 / /x rw - cgroup cgroup rw\n"),
            None
        );
        let own = own_path("4:memory:/a\n0::/system.slice/fild.service\n").unwrap();
        assert_eq!(
            dir_of(&mount, &root, &own).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/system.slice/fild.service")
        );
        // A namespaced mount shows only part of the hierarchy.
        assert_eq!(
            dir_of(Path::new("/sys/fs/cgroup"), "/lxc/c1", "/lxc/c1/app").unwrap(),
            PathBuf::from("/sys/fs/cgroup/app")
        );
        assert_eq!(
            dir_of(Path::new("/sys/fs/cgroup"), "/lxc/c1", "/other"),
            None
        );
        let line = "41 31 0:38 / /sys/fs/cg\\040v2 rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(line).unwrap().0,
            PathBuf::from("/sys/fs/cg v2")
        );
    }

    #[test]
    fn program_names_make_safe_directory_names() {
        assert_eq!(dir_name("etcd-0"), "etcd-0");
        assert_eq!(dir_name("grp:prog"), "grp:prog");
        assert_eq!(dir_name("a/b"), "a_b");
        assert_eq!(dir_name(".."), "_..");
        assert_eq!(dir_name("cgroup.kill"), "_cgroup.kill");
    }
}
