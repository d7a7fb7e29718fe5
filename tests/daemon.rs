mod common;
use common::*;
use fild::api::ProcessState;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn prog(name: &str, command: &str, extra: &str) -> String {
    format!("[program:{name}]\ncommand={command}\nstartsecs=0\nstopwaitsecs=5\n{extra}\n")
}

/// Run a command to completion, killing it (by pid) if it outlives `timeout`.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn");
    let end = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// SIGKILLs the listed pids when dropped (cleanup for processes fild is expected to lose).
struct KillOnDrop(Vec<i32>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            if p > 1 && alive(p) {
                signal(p, libc::SIGKILL);
            }
        }
    }
}

/// Fields of /proc/<pid>/stat after the command name (field 3 is index 0).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let i = s.rfind(')')?;
    Some(s[i + 2..].split_whitespace().map(str::to_string).collect())
}

fn children_of(ppid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid)
            && f.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(ppid)
            && f.first().map(String::as_str) != Some("Z")
        {
            out.push(pid);
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn second_daemon_is_refused_and_stale_socket_is_replaced() {
    let dir = TestDir::new("second");
    let mut f = Fild::start(&dir, &prog("a", "sleep 1001", ""));
    let a = f.wait_state("a", ProcessState::Running, T);

    let o = run_bounded(Command::new(FILD).arg("-c").arg(&f.config), T);
    assert!(!o.status.success(), "a second fild started: {:?}", o.status);
    let err = text(&o.stderr);
    assert!(
        err.contains("another fild"),
        "the refusal must say another fild runs: {err}"
    );

    // The first one still answers, its socket was left in place, its program untouched.
    assert!(f.socket().exists(), "the refused fild removed the socket");
    f.filc_ok(&["version"]);
    assert_eq!(f.info("a").pid, a.pid);
    std::thread::sleep(Duration::from_millis(300));
    f.filc_ok(&["version"]);
    assert!(alive(f.pid()));

    // A stale socket (fild SIGKILLed) is replaced by a new fild.
    f.kill9();
    assert!(f.socket().exists(), "SIGKILL cannot remove the socket");
    assert!(
        wait_until(T, || !alive(a.pid as i32)),
        "a outlived the SIGKILLed fild"
    );
    let g = Fild::start_with(dir.path(), &dir.join("fild.ini"));
    let a2 = g.wait_state("a", ProcessState::Running, T);
    assert_ne!(a2.pid, a.pid);
    let v = g.filc_ok(&["pid"]);
    assert_eq!(v.trim(), g.pid().to_string());
}

/// A second fild that shares the first one's pidfile (and so its groups record) but not its
/// socket once killed the first one's programs (its recorded-groups cleanup) and started
/// copies; so did a restart after the socket file was deleted. The pidfile's flock refuses it.
#[test]
fn a_second_fild_on_the_same_pidfile_is_refused_whatever_its_socket() {
    let dir = TestDir::new("second-pidfile");
    let f = Fild::start(&dir, &prog("a", "sleep 100077", ""));
    let a = f.wait_state("a", ProcessState::Running, T);
    let first = std::fs::read_to_string(dir.join("fild.ini")).unwrap();
    let other = dir.write(
        "other.ini",
        &first.replace(
            &format!("file={}/fild.sock", dir.path().display()),
            &format!("file={}/other.sock", dir.path().display()),
        ),
    );
    assert_ne!(first, std::fs::read_to_string(&other).unwrap());

    let refused = |config: &std::path::Path| {
        let o = run_bounded(Command::new(FILD).arg("-c").arg(config), T);
        assert!(!o.status.success(), "a second fild started: {:?}", o.status);
        let err = text(&o.stderr);
        assert!(
            err.contains("holds the pidfile") && err.contains(&f.pid().to_string()),
            "the refusal must name the pidfile and the fild holding it: {err}"
        );
    };
    refused(&other);
    assert!(
        !dir.join("other.sock").exists(),
        "the refused fild bound a socket"
    );
    // The socket deleted, the same config started again.
    std::fs::remove_file(f.socket()).unwrap();
    refused(&f.config);

    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(a.pid as i32), "the first fild's program was killed");
    assert!(alive(f.pid()));
    let children: Vec<i32> = children_of(f.pid());
    assert!(
        children.contains(&(a.pid as i32)),
        "a is no longer fild's child"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("fild.pid"))
            .unwrap()
            .trim(),
        f.pid().to_string(),
        "the pidfile must still name the first fild"
    );
}

#[test]
fn socket_mode_is_0600_by_default_and_chmod_applies() {
    let dir = TestDir::new("mode");
    let f = Fild::start(&dir, &prog("a", "sleep 1001", "autostart=false"));
    assert_eq!(mode(&f.socket()), 0o600, "default socket mode");
    drop(f);

    let dir = TestDir::new("mode-chmod");
    let cfg = preamble(dir.path()).replacen(
        "[unix_http_server]\n",
        "[unix_http_server]\nchmod=0660\n",
        1,
    ) + &prog("a", "sleep 1001", "autostart=false");
    let config = dir.write("fild.ini", &cfg);
    let f = Fild::start_with(dir.path(), &config);
    assert_eq!(mode(&f.socket()), 0o660, "socket mode with chmod=0660");
}

#[test]
fn sigterm_stops_everything_in_reverse_priority_and_cleans_up() {
    let dir = TestDir::new("sigterm");
    let order = dir.join("order");
    let body = |name: &str| {
        format!(
            "trap 'echo {name} >> {o}; kill $child 2>/dev/null; exit 0' TERM\nsleep 1000 &\nchild=$!\nwait",
            o = order.display()
        )
    };
    for n in ["p1", "p2", "p3"] {
        dir.script(&format!("{n}.sh"), &body(n));
    }
    let d = dir.path().display().to_string();
    let mut f = Fild::start(
        &dir,
        &(prog("p1", &format!("{d}/p1.sh"), "priority=100")
            + &prog("p3", &format!("{d}/p3.sh"), "priority=300")
            + &prog("p2", &format!("{d}/p2.sh"), "priority=200")),
    );
    let pids: Vec<i32> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| f.wait_state(n, ProcessState::Running, T).pid as i32)
        .collect();
    // Each wrapper's background sleep is in the group too.
    assert!(wait_until(T, || pids
        .iter()
        .all(|&p| group_members(p).len() >= 2)));
    let guard = children_of(f.pid())
        .into_iter()
        .find(|&p| cmdline(p).contains("--guard"));

    let st = f.terminate().expect("fild did not exit on SIGTERM");
    assert!(st.success(), "fild exit status on SIGTERM: {st:?}");
    let written = std::fs::read_to_string(&order).unwrap_or_default();
    let got: Vec<&str> = written.lines().collect();
    assert_eq!(got, ["p3", "p2", "p1"], "stop order (reverse priority)");
    assert!(!dir.join("fild.sock").exists(), "socket left behind");
    assert!(!dir.join("fild.pid").exists(), "pidfile left behind");
    assert!(
        !dir.join("fild.pid.groups").exists(),
        "group record left behind after a clean exit"
    );
    for &p in &pids {
        assert!(
            wait_until(Duration::from_secs(2), || group_members(p).is_empty()),
            "group {p} still has {:?}",
            group_members(p)
        );
    }
    if let Some(g) = guard {
        assert!(
            wait_until(T, || !alive(g)),
            "the guard outlived a clean exit"
        );
    }
}

#[test]
fn sigkill_of_fild_leaves_no_program_process() {
    let dir = TestDir::new("sigkill");
    // The real interpreter, not a version-manager shim.
    let py = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for this test");
    let py = text(&py.stdout).trim().to_string();
    assert!(!py.is_empty());
    let listen = |port: u16| {
        format!(
            "{py} -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(1000)' &"
        )
    };
    let (p1, p2) = (free_port(), free_port());
    assert_ne!(p1, p2);
    dir.script("waits.sh", &format!("{}\nwait", listen(p1)));
    // fild kills what is left of a group whose leader exited, so a wrapper that exits cannot
    // keep a listener. Instead the listener is orphaned (reparented to fild, the subreaper)
    // while the wrapper lives on: PDEATHSIG never reaches it, only the guard can.
    dir.script(
        "orphans.sh",
        &format!("( {} )\nexec sleep 1000", listen(p2)),
    );
    let d = dir.path().display().to_string();
    let mut f = Fild::start(
        &dir,
        &(prog("waits", &format!("{d}/waits.sh"), "")
            + &prog("orphans", &format!("{d}/orphans.sh"), "autorestart=false")),
    );
    let w = f.wait_state("waits", ProcessState::Running, T);
    let o = f.wait_state("orphans", ProcessState::Running, T);
    assert!(
        wait_until(T, || !port_free(p1) && !port_free(p2)),
        "the listeners did not come up"
    );
    assert!(
        wait_until(T, || group_members(o.pid as i32).len() >= 2),
        "the orphaned listener is not in the program's group"
    );

    let groups = f.recorded_groups();
    assert!(groups.contains(&(w.pid as i32)), "groups {groups:?}");
    assert!(groups.contains(&(o.pid as i32)), "groups {groups:?}");
    assert_eq!(groups.len(), 2, "both groups are recorded: {groups:?}");
    let members: Vec<i32> = groups.iter().flat_map(|&g| group_members(g)).collect();
    let _cleanup = KillOnDrop(members.clone());
    assert!(members.len() >= 4, "members {members:?}");

    f.kill9();
    let start = Instant::now();
    let gone = wait_until(Duration::from_secs(2), || {
        groups.iter().all(|&g| group_members(g).is_empty())
    });
    assert!(
        gone,
        "after 2 s still alive: {:?}",
        groups
            .iter()
            .flat_map(|&g| group_members(g))
            .collect::<Vec<_>>()
    );
    assert!(
        wait_until(
            Duration::from_secs(2).saturating_sub(start.elapsed()),
            || { port_free(p1) && port_free(p2) }
        ),
        "a port is still held"
    );
}

#[test]
fn new_fild_kills_groups_a_previous_instance_left() {
    let dir = TestDir::new("leftover");
    let gc_file = dir.join("gc.pid");
    dir.script(
        "wrap.sh",
        &format!("sleep 1000 &\necho $! > {}\nwait", gc_file.display()),
    );
    let config = dir.write(
        "fild.ini",
        &(preamble(dir.path()) + &prog("w", &format!("{}/wrap.sh", dir.path().display()), "")),
    );
    let mut a = Fild::start_with(dir.path(), &config);
    let w = a.wait_state("w", ProcessState::Running, T);
    let read_gc = || {
        std::fs::read_to_string(&gc_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    };
    assert!(wait_until(T, || read_gc().is_some()));
    let gc = read_gc().unwrap();
    let _cleanup = KillOnDrop(vec![gc]);
    assert!(alive(gc));
    assert!(
        wait_until(T, || a.recorded_groups().contains(&(w.pid as i32))),
        "the group was not recorded"
    );

    let mut guard = None;
    assert!(
        wait_until(T, || {
            guard = children_of(a.pid())
                .into_iter()
                .find(|&p| cmdline(p).contains("--guard"));
            guard.is_some()
        }),
        "no guard process found under fild"
    );
    let guard = guard.unwrap();
    signal(guard, libc::SIGKILL);
    assert!(wait_until(T, || !alive(guard)));
    a.kill9();

    // The wrapper dies with fild (PDEATHSIG), the backgrounded grandchild does not.
    assert!(
        wait_until(T, || !alive(w.pid as i32)),
        "the direct child outlived fild"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        alive(gc),
        "the grandchild should have survived fild A and its guard"
    );
    assert!(dir.join("fild.pid.groups").exists());

    std::fs::remove_file(&gc_file).unwrap();
    let b = Fild::start_with(dir.path(), &config);
    assert!(
        wait_until(Duration::from_secs(2), || !alive(gc)),
        "fild B did not kill the grandchild fild A left"
    );
    b.wait_state("w", ProcessState::Running, T);
}

#[test]
fn idle_fild_uses_no_cpu() {
    let dir = TestDir::new("idle");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "")
            + &prog("b", "sleep 1002", "")
            + &prog("c", "sleep 1003", "")),
    );
    for n in ["a", "b", "c"] {
        f.wait_state(n, ProcessState::Running, T);
    }
    let ticks = || {
        let s = stat_fields(f.pid()).expect("fild's stat");
        // utime and stime are fields 14 and 15 (indices 11 and 12 here).
        s[11].parse::<u64>().unwrap() + s[12].parse::<u64>().unwrap()
    };
    // Let start-up work settle before measuring.
    std::thread::sleep(Duration::from_secs(1));
    let t0 = ticks();
    std::thread::sleep(Duration::from_secs(10));
    let t1 = ticks();
    assert!(
        t1 - t0 <= 2,
        "idle fild used {} clock ticks of CPU in 10 s",
        t1 - t0
    );
}

#[test]
fn invalid_config_exits_2_and_unreachable_daemon_exits_1() {
    let dir = TestDir::new("invalid");
    let cfg = preamble(dir.path()) + "[program:a]\ncommand=sleep 1000\nstartsecs=soon\n";
    let line = cfg.lines().position(|l| l == "startsecs=soon").unwrap() + 1;
    let config = dir.write("fild.ini", &cfg);
    let o = run_bounded(Command::new(FILD).arg("-c").arg(&config), T);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    let place = format!("fild.ini:{line}");
    assert!(
        err.lines()
            .any(|l| l.contains(&place) && l.contains("startsecs")),
        "the error must name {place} and startsecs: {err}"
    );
    assert!(!dir.join("fild.sock").exists());
    assert!(!dir.join("fild.pid").exists());

    // filc with no daemon: no socket at all, then a stale socket file nothing listens on.
    // The cause is said once, with what to do.
    let dir = TestDir::new("down");
    let config = dir.write("fild.ini", &preamble(dir.path()));
    let sock = dir.join("fild.sock");
    for (stale, cause) in [
        (false, "there is no socket at"),
        (true, "nothing listens on the socket"),
    ] {
        if stale {
            drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
            assert!(sock.exists());
        }
        let cause = format!("fild is not running: {cause} {}", sock.display());
        for args in [&["status"][..], &["etcd", "status"]] {
            let o = run_bounded(Command::new(FILC).arg("-c").arg(&config).args(args), T);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "filc {args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "filc {args:?}: {err}");
            assert!(err.contains(&cause), "filc {args:?}: {err}");
            assert!(err.contains("start fild"), "filc {args:?}: {err}");
            assert!(err.contains("-s PATH"), "filc {args:?}: {err}");
            assert!(!err.contains("os error"), "filc {args:?}: {err}");
            let path = sock.display().to_string();
            assert_eq!(err.matches(&path).count(), 1, "filc {args:?}: {err}");
        }
    }
}

/// The case as written: a wrapper backgrounds a listener and exits 0. fild takes
/// the leftover listener down with its dead leader, and after a SIGKILL of fild nothing of
/// the program remains and its port can be bound again.
#[test]
fn a_wrapper_that_backgrounds_a_listener_and_exits_leaves_nothing() {
    let dir = TestDir::new("wrapperexit");
    let py = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for this test");
    let py = text(&py.stdout).trim().to_string();
    let port = free_port();
    dir.script(
        "wrapper.sh",
        &format!(
            "{py} -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(1000)' &\nsleep 1\nexit 0"
        ),
    );
    let d = dir.path().display().to_string();
    let mut f = Fild::start(
        &dir,
        &prog("wrapper", &format!("{d}/wrapper.sh"), "autorestart=false"),
    );
    let info = f.wait_state("wrapper", ProcessState::Exited, T);
    assert_eq!(info.exit_status, Some(0));
    assert!(
        wait_until(T, || port_free(port)),
        "the wrapper's backgrounded listener outlived it"
    );
    f.kill9();
    assert!(
        wait_until(Duration::from_secs(2), || port_free(port)),
        "port still held after fild was killed"
    );
}
