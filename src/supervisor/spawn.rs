//! Spawning one program: its own session and process group, its environment, directory, user
//! and umask, stdout/stderr into pipes that the log pumps drain.
//!
//! Called only from the supervisor loop, which runs on the main thread for fild's whole life:
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked dies, so forking from a long-lived
//! thread is what makes it mean "when fild dies".

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
use nix::unistd::{Gid, Uid, User};

use crate::config::{LogTarget, ProgramSpec};

/// A spawned program: the leader's pid (also its process-group id) and the read ends of its
/// output pipes (`None` where output is discarded or merged into stdout).
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Identity to switch to in the child, resolved in the parent (name lookups are not safe
/// between fork and exec), and before that, off the loop (see [`Users`]).
#[derive(Debug, Clone)]
pub struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: String,
    name: String,
}

fn resolve_user(name: &str) -> Result<Identity, String> {
    let user = User::from_name(name)
        .map_err(|e| format!("cannot look up user {name}: {e}"))?
        .ok_or_else(|| format!("no such user: {name}"))?;
    let cname = CString::new(name).map_err(|_| format!("bad user name: {name}"))?;
    let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
    Ok(Identity {
        uid: user.uid,
        gid: user.gid,
        groups,
        home: user.dir.to_string_lossy().into_owned(),
        name: name.to_string(),
    })
}

/// What each `user=` of a configuration resolves to: looked up (NSS, which may be LDAP and
/// slow) when the configuration is loaded, on the blocking pool or before the loop runs, as
/// supervisord resolves `user=` when it reads its config; never on the loop at spawn.
#[derive(Debug, Clone, Default)]
pub struct Users(HashMap<String, Result<Option<Identity>, String>>);

impl Users {
    /// Look up every program's `user=` in `config`.
    pub fn resolve(config: &crate::config::Config) -> Users {
        let root = Uid::effective().is_root();
        let mut map = HashMap::new();
        for p in &config.programs {
            if let Some(name) = &p.user
                && !map.contains_key(name)
            {
                map.insert(name.clone(), identity_for(name, root));
            }
        }
        Users(map)
    }

    /// The identity to switch to for `user=name` (`None`: run as fild), or why not.
    fn get(&self, name: &str) -> Result<Option<Identity>, String> {
        match self.0.get(name) {
            Some(r) => r.clone(),
            // Not in the loaded configuration's users: look it up now (never expected).
            None => identity_for(name, Uid::effective().is_root()),
        }
    }
}

/// `user=name` as root: switch to it; otherwise only fild's own user is possible, as
/// supervisord does.
fn identity_for(name: &str, root: bool) -> Result<Option<Identity>, String> {
    if root {
        return resolve_user(name).map(Some);
    }
    let me = User::from_uid(Uid::effective()).ok().flatten();
    if me.as_ref().map(|u| u.name.as_str()) != Some(name) {
        return Err(format!(
            "cannot switch to user {name}: fild is not running as root"
        ));
    }
    Ok(None)
}

/// A pipe with both ends close-on-exec; the child gets the write end as its fd 1 or 2.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    // Default-sized pipes: enlarging them would eat the per-user pipe quota, after which
    // the kernel gives new pipes a single page.
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// What a program's environment adds to fild's own: its `environment=` entries, supervisord's
/// `SUPERVISOR_ENABLED`, `SUPERVISOR_PROCESS_NAME` and `SUPERVISOR_GROUP_NAME`, and `FILD_BIN`
/// (this fild's running binary, `/proc/<pid>/exe`, which the kit's launch script runs as
/// `fild --exec-etcd`). Whoever
/// evaluates a program's settings as it will see them (the etcd members) uses this too.
pub fn program_env(spec: &ProgramSpec) -> Vec<(String, String)> {
    let mut env = spec.environment.clone();
    env.push(("SUPERVISOR_ENABLED".into(), "1".into()));
    env.push(("SUPERVISOR_PROCESS_NAME".into(), spec.name.clone()));
    env.push(("SUPERVISOR_GROUP_NAME".into(), spec.group.clone()));
    // The running image itself, even after an upgrade replaced the file on disk: the launcher
    // is then the same code that reports the settings.
    env.push((
        "FILD_BIN".into(),
        format!("/proc/{}/exe", std::process::id()),
    ));
    env
}

/// What the child does between fork and exec, every value computed before the fork.
struct ChildSetup {
    /// `cgroup.procs` of the program's cgroup, to join first.
    cgroup_procs: Option<RawFd>,
    umask: Option<u32>,
    /// (supplementary groups, gid, uid) to switch to.
    identity: Option<(Vec<libc::gid_t>, libc::gid_t, libc::uid_t)>,
    /// fild's pid: the child must still be fild's after arming its death signal.
    parent: libc::pid_t,
}

impl ChildSetup {
    /// In the child: join the cgroup, a session of its own, umask, identity, death signal.
    /// Only async-signal-safe system calls, and no allocation.
    fn run(&self) -> std::io::Result<()> {
        // SAFETY (every call below): plain system calls on integers and on memory owned by
        // `self`, which the fork copied.
        unsafe {
            // First, before anything can fork: every process it makes is in the cgroup.
            if let Some(fd) = self.cgroup_procs
                && libc::write(fd, b"0".as_ptr().cast(), 1) != 1
            {
                return Err(std::io::Error::last_os_error());
            }
            // Own session and process group: signals to -pgid reach the whole program.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(mask) = self.umask {
                libc::umask(mask as libc::mode_t);
            }
            if let Some((groups, gid, uid)) = &self.identity
                && (libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(*gid) != 0
                    || libc::setuid(*uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            // After any uid change: a uid change clears the death signal.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // fild died between fork and prctl: nobody would supervise us.
            if libc::getppid() != self.parent {
                libc::_exit(1);
            }
        }
        Ok(())
    }
}

/// Spawn `spec` (into `cgroup` when fild contains programs by cgroup). `server_url` is
/// exported as `SUPERVISOR_SERVER_URL`.
pub fn spawn(
    spec: &ProgramSpec,
    users: &Users,
    server_url: &str,
    cgroup: Option<&std::path::Path>,
) -> Result<Spawned, String> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err("empty command".into());
    };
    let identity = match &spec.user {
        Some(name) => users.get(name)?,
        None => None,
    };

    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.stdin(Stdio::null());
    if let Some(dir) = &spec.directory {
        cmd.current_dir(dir);
    }
    for (k, v) in program_env(spec) {
        cmd.env(k, v);
    }
    cmd.env("SUPERVISOR_SERVER_URL", server_url);
    if let Some(id) = &identity {
        cmd.env("HOME", &id.home)
            .env("USER", &id.name)
            .env("LOGNAME", &id.name);
    }

    let mut stdout_r = None;
    let mut stderr_r = None;
    let stdout_w = match &spec.stdout.target {
        LogTarget::Discard => None,
        LogTarget::File(_) => {
            let (r, w) = pipe()?;
            stdout_r = Some(r);
            Some(w)
        }
    };
    match &stdout_w {
        Some(w) => {
            let dup = w.try_clone().map_err(|e| format!("dup: {e}"))?;
            cmd.stdout(Stdio::from(dup));
        }
        None => {
            cmd.stdout(Stdio::null());
        }
    }
    if spec.redirect_stderr {
        match &stdout_w {
            Some(w) => {
                let dup = w.try_clone().map_err(|e| format!("dup: {e}"))?;
                cmd.stderr(Stdio::from(dup));
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
    } else {
        match &spec.stderr.target {
            LogTarget::Discard => {
                cmd.stderr(Stdio::null());
            }
            LogTarget::File(_) => {
                let (r, w) = pipe()?;
                stderr_r = Some(r);
                cmd.stderr(Stdio::from(w));
            }
        }
    }
    drop(stdout_w);

    // Opened before the fork: the child joins its cgroup with one write of "0".
    let cgroup_procs = match cgroup {
        Some(dir) => Some(
            super::cgroup::open_procs(dir)
                .map_err(|e| format!("cannot join cgroup {}: {e}", dir.display()))?,
        ),
        None => None,
    };
    let setup = ChildSetup {
        cgroup_procs: cgroup_procs.as_ref().map(|fd| fd.as_raw_fd()),
        umask: spec.umask,
        identity: identity.as_ref().map(|id| {
            (
                id.groups.iter().map(|g| g.as_raw()).collect(),
                id.gid.as_raw(),
                id.uid.as_raw(),
            )
        }),
        parent: nix::unistd::getpid().as_raw(),
    };
    // SAFETY: the closure runs between fork and exec; `ChildSetup::run` only makes
    // async-signal-safe system calls on values computed before the fork, and allocates
    // nothing (a unit test counts).
    unsafe {
        cmd.pre_exec(move || setup.run());
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot spawn {program}: {e}"))?;
    drop(cgroup_procs);
    Ok(Spawned {
        pid: child.id() as i32,
        stdout: stdout_r,
        stderr: stderr_r,
    })
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts every allocation of this test binary.
    struct Counting;
    static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

    // SAFETY: forwards to the system allocator unchanged, counting calls.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    #[test]
    fn the_code_between_fork_and_exec_allocates_nothing() {
        let root = Uid::effective().is_root();
        let setup = ChildSetup {
            cgroup_procs: None,
            umask: Some(0o022),
            // The same identity again (switching needs root), with its groups.
            identity: root.then(|| {
                // Never empty: an empty list would need no allocation either way.
                let mut groups: Vec<libc::gid_t> = nix::unistd::getgroups()
                    .unwrap_or_default()
                    .iter()
                    .map(|g| g.as_raw())
                    .collect();
                groups.push(Gid::effective().as_raw());
                (groups, Gid::effective().as_raw(), Uid::effective().as_raw())
            }),
            parent: nix::unistd::getpid().as_raw(),
        };
        // SAFETY: the child only runs `setup.run` (async-signal-safe) and _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let before = ALLOCATIONS.load(Ordering::SeqCst);
                let ok = setup.run().is_ok();
                let after = ALLOCATIONS.load(Ordering::SeqCst);
                let code = match (ok, before == after) {
                    (true, true) => 0,
                    (false, _) => 2,
                    (true, false) => 3,
                };
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "2: the setup failed; 3: it allocated"
                );
            }
        }
    }
}

#[cfg(test)]
mod users_tests {
    use super::*;

    fn config(programs: &str) -> crate::config::Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fild.ini");
        std::fs::write(
            &path,
            format!(
                "[unix_http_server]\nfile={}/s.sock\n[supervisord]\npidfile={}/f.pid\n{programs}",
                dir.path().display(),
                dir.path().display()
            ),
        )
        .unwrap();
        crate::config::load(&path, &Default::default()).unwrap()
    }

    #[test]
    fn users_are_looked_up_at_load_and_spawn_uses_the_answer() {
        let c = config(
            "[program:a]\ncommand=/bin/true\nuser=fild-no-such-user-x\n[program:b]\ncommand=/bin/true\n",
        );
        let users = Users::resolve(&c);
        // Looked up once, at load: the answer is kept with the configuration.
        assert_eq!(users.0.len(), 1);
        let why = users.get("fild-no-such-user-x").unwrap_err();
        assert!(why.contains("fild-no-such-user-x"), "{why}");
        // spawn reports that answer: it does not look the name up again.
        let a = c.programs.iter().find(|p| p.name == "a").unwrap();
        let err = spawn(a, &users, "unix:///x", None).err().unwrap();
        assert_eq!(err, why);
    }
}
