//! Test harness: a temp dir per test, the real `fild` and `filc` binaries, and a full
//! diagnostic dump (fild's log, status, the dir listing) when a test fails.
#![allow(dead_code)]

pub mod backups;
pub mod etcd;
pub mod hosts;
pub mod load;
pub mod netns;
pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fild::api::{ProcessInfo, ProcessState};

pub const FILD: &str = env!("CARGO_BIN_EXE_fild");
pub const FILC: &str = env!("CARGO_BIN_EXE_filc");

/// A command's exit code (-1 when a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A command's stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `f` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process exists (zombies count as gone).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rfind(')')
                .and_then(|i| s[i + 2..].chars().next())
                .unwrap_or('X');
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

/// Live processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = s.rfind(')') else { continue };
        let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
        if f.first() != Some(&"Z") && f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Send a signal to a pid (ignoring errors).
pub fn signal(pid: i32, sig: i32) {
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range: a port the kernel
/// hands out (as `bind(0)` would) can be taken meanwhile as the source port of any outgoing
/// connection, an etcd member's own among them. Unique within a test binary (a counter,
/// spread by pid across binaries); checked free by binding it, then released.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOW).max(1_000);
    let base = std::process::id().wrapping_mul(7_919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + base.wrapping_add(n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A temporary directory for one test.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fild-{name}-"))
            .tempdir()
            .unwrap();
        TestDir { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// Write a file (creating parent dirs).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Write an executable shell script.
    pub fn script(&self, rel: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(rel, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

/// The main-config preamble every test uses: socket, pidfile and log inside the test dir.
pub fn preamble(dir: &Path) -> String {
    format!(
        "[unix_http_server]\nfile={d}/fild.sock\n\n[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\nloglevel=debug\n\n",
        d = dir.display()
    )
}

/// A running fild under test. Dropping it stops fild (by pid) and every program it left.
pub struct Fild {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Extra environment for fild and for every filc run against it.
    pub env: Vec<(String, String)>,
    /// The groups it had recorded when it was stopped or killed: what `Drop` cleans up
    /// after a fild that is gone (the record file may by then be a successor's).
    pub left: Vec<i32>,
}

impl Fild {
    /// Write `fild.ini` (preamble + `programs`) into `dir` and start fild on it.
    pub fn start(dir: &TestDir, programs: &str) -> Fild {
        let config = dir.write("fild.ini", &(preamble(dir.path()) + programs));
        Fild::start_with(dir.path(), &config)
    }

    /// Start fild on an existing config and wait until its socket answers.
    pub fn start_with(dir: &Path, config: &Path) -> Fild {
        start_fild_env(dir, config, &[])
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("fild.sock")
    }

    /// Run filc against this fild.
    pub fn filc(&self, args: &[&str]) -> Output {
        Command::new(FILC)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("run filc")
    }

    /// Run filc and assert it succeeded; returns stdout.
    pub fn filc_ok(&self, args: &[&str]) -> String {
        let out = self.filc(args);
        assert!(
            out.status.success(),
            "filc {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `filc status --json`, parsed.
    pub fn status(&self) -> Vec<ProcessInfo> {
        let out = self.filc(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn info(&self, name: &str) -> ProcessInfo {
        self.status()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name} in status"))
    }

    pub fn state(&self, name: &str) -> ProcessState {
        self.info(name).state
    }

    /// Wait until `name` is in `state`; panics with the status table if it never is.
    /// Wait until `name` runs again under a pid other than `old` (after a kill, its state
    /// reads RUNNING with the old pid until fild has reaped it: waiting for RUNNING alone
    /// races).
    pub fn wait_new_pid(&self, name: &str, old: i32, timeout: Duration) -> ProcessInfo {
        let mut last = None;
        let ok = wait_until(timeout, || {
            let i = self.info(name);
            let done = i.pid as i32 != old && i.pid != 0 && i.state == ProcessState::Running;
            last = Some(i);
            done
        });
        assert!(
            ok,
            "{name} was not running again (new pid) within {timeout:?}: {last:?}"
        );
        last.unwrap()
    }

    pub fn wait_state(&self, name: &str, state: ProcessState, timeout: Duration) -> ProcessInfo {
        let mut last = None;
        let ok = wait_until(timeout, || {
            let i = self.info(name);
            let done = i.state == state;
            last = Some(i);
            done
        });
        assert!(
            ok,
            "{name} did not reach {state:?} within {timeout:?}; last: {last:?}"
        );
        last.unwrap()
    }

    /// Send SIGTERM and wait (bounded) for fild to exit; returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.left = self.recorded_groups();
        let mut child = self.child.take()?;
        signal(child.id() as i32, libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL fild and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.left = self.recorded_groups();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process groups fild recorded (its `<pidfile>.groups`).
    pub fn recorded_groups(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("fild.pid.groups"))
            .or_else(|_| std::fs::read_to_string(self.dir.join("var/fild/fild.pid.groups")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    fn dump(&self) {
        eprintln!("===== fild diagnostics for {} =====", self.dir.display());
        for f in ["fild.log", "var/log/fild.log", "fild.stderr", "fild.ini"] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(80).collect();
            eprintln!("----- {f} (last lines) -----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let st = self.filc(&["status"]);
        eprintln!(
            "----- filc status -----\n{}{}",
            String::from_utf8_lossy(&st.stdout),
            String::from_utf8_lossy(&st.stderr)
        );
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            let names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            eprintln!("----- dir: {names:?}");
        }
    }
}

impl Drop for Fild {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        // A fild already stopped left `left`; the record file is then perhaps the next
        // fild's in the same folder, whose programs are not this one's to kill.
        if self.child.is_some() && self.terminate().is_none() {
            eprintln!("fild did not exit on SIGTERM within 30 s; killed");
        }
        let groups = std::mem::take(&mut self.left);
        // Whatever fild left (it should leave nothing), by the groups it recorded.
        for g in groups {
            if g > 1 {
                for pid in group_members(g) {
                    signal(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Start fild on `config` with extra environment, waiting until filc gets an answer.
pub fn start_fild_env(dir: &Path, config: &Path, env: &[(String, String)]) -> Fild {
    start_fild_in(None, dir, config, env)
}

/// [`start_fild_env`] inside network namespace `ns` (`ip netns exec` execs fild, so the
/// child's pid is fild's).
pub fn start_fild_in(
    ns: Option<&str>,
    dir: &Path,
    config: &Path,
    env: &[(String, String)],
) -> Fild {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(FILD);
            c
        }
        None => Command::new(FILD),
    };
    let child = cmd
        .arg("-c")
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("fild.stderr")).unwrap())
        .spawn()
        .expect("spawn fild");
    let f = Fild {
        child: Some(child),
        dir: dir.to_path_buf(),
        config: config.to_path_buf(),
        env: env.to_vec(),
        left: Vec::new(),
    };
    let up = wait_until(Duration::from_secs(10), || {
        f.filc(&["version"]).status.success()
    });
    assert!(
        up,
        "fild did not answer within 10 s (config {})",
        config.display()
    );
    f
}

// ----- raw HTTP on the control socket --------------------------------------------------

/// A raw HTTP exchange: send `req` as is, read until the server closes.
/// Returns the status code (None if the server answered nothing parseable) and the body.
pub fn raw(sock: &Path, req: &[u8]) -> (Option<u16>, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect to fild's socket");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (and close) before reading everything: ignore write errors.
    let _ = std::io::Write::write_all(&mut s, req);
    // Nothing more will come: a server waiting for more bytes sees the end at once.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = Vec::new();
    // A reset after the reply (unread request bytes) still leaves the reply in `buf`.
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Read one HTTP/1.1 reply from `s` until the server closes: status, headers (lower-case
/// names), body.
pub fn read_reply(
    mut s: impl std::io::Read,
) -> (u16, std::collections::HashMap<String, String>, String) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP reply");
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

pub fn request(method: &str, path: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Assert an error reply: the status and a JSON body with an "error" string.
pub fn expect_error(sock: &Path, what: &str, req: &[u8], status: u16) {
    let (got, body) = raw(sock, req);
    assert_eq!(got, Some(status), "{what}: body {body}");
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {body}"));
    assert!(
        v.get("error")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty()),
        "{what}: no error message in {body}"
    );
}

/// A process's argv, as `/proc/<pid>/cmdline` holds it (empty once it is gone).
pub fn argv_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
