//! A shell command fild runs beside its programs (`[etcd] backup_command`,
//! `[supervisord] on_change`), bounded by a timeout and never waited on.
//!
//! fild is a child subreaper and its supervisor loop reaps *every* child with
//! `waitpid(-1)` on SIGCHLD. A `wait()` from std or tokio here would race with it (and a
//! late `waitpid(pid)` could even reap an unrelated program that reused the pid), so this
//! module never waits on a child. Instead the command runs under a small `/bin/sh` wrapper in
//! a new process group: the wrapper runs the command with its output sent to a second pipe,
//! then writes the command's exit status to its stdout pipe and exits. fild reads the status
//! from the pipe; the loop's reaper collects the wrapper as an unknown child and ignores it.
//! While the status pipe is open the wrapper is alive, so its process group id is still
//! ours: on timeout the group is sent SIGTERM, and SIGKILL [`GRACE`] later if the wrapper
//! is still there, never after it has exited. The wrapper outlives SIGTERM (it traps it and
//! waits for the command), so a command that ignores SIGTERM still gets the SIGKILL.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

/// After SIGTERM, how long a timed-out command has before its group gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);

/// How much of a command's output is kept (its last bytes).
pub const OUTPUT_TAIL: usize = 4096;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its exit status (a shell status: 128+N when killed by signal N).
    Exited {
        code: i32,
        output: String,
    },
    TimedOut {
        output: String,
    },
    /// The wrapper vanished without reporting (killed from outside).
    Lost {
        output: String,
    },
    SpawnFailed(String),
}

impl Outcome {
    /// None when the command exited 0; otherwise what went wrong, worded to follow the
    /// command's name in a log line (`on_change timed out and was stopped`).
    pub fn failure(&self) -> Option<String> {
        match self {
            Outcome::Exited { code: 0, .. } => None,
            Outcome::Exited { code, .. } => Some(format!("failed with exit status {code}")),
            Outcome::TimedOut { .. } => Some("timed out and was stopped".into()),
            Outcome::Lost { .. } => {
                Some("ended without reporting a status (its wrapper was killed?)".into())
            }
            Outcome::SpawnFailed(e) => Some(format!("could not be started: {e}")),
        }
    }

    /// The tail of what the command printed (empty when it could not start).
    pub fn output(&self) -> &str {
        match self {
            Outcome::Exited { output, .. }
            | Outcome::TimedOut { output }
            | Outcome::Lost { output } => output,
            Outcome::SpawnFailed(_) => "",
        }
    }
}

/// What to run: `sh -c COMMAND NAME ARGS...`, with `stdin` written to its standard input
/// (None: `/dev/null`) and `env` added to fild's environment.
pub struct Shell<'a> {
    pub command: &'a str,
    /// Its `$0`, which `ps` shows.
    pub name: &'a str,
    pub args: &'a [&'a OsStr],
    pub stdin: Option<&'a [u8]>,
    pub env: &'a [(&'a str, &'a str)],
    pub timeout: Duration,
    /// After the timeout's SIGTERM, how long before SIGKILL ([`GRACE`]).
    pub grace: Duration,
}

/// The wrapper: runs `$1` with the rest as its arguments, output to stderr, then reports the
/// status on stdout. It traps SIGTERM (`:` runs once the command has ended), so it stays,
/// and its group stays ours, until the command is gone.
const WRAPPER: &str = r#"trap : TERM; c=$1; shift; sh -c "$c" "$@" >&2; echo "$?""#;

/// Run it to its end or its timeout (see the module docs); logs nothing.
pub async fn run(sh: &Shell<'_>) -> Outcome {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WRAPPER)
        .arg("fild-command")
        .arg(sh.command)
        .arg(sh.name)
        .args(sh.args)
        .envs(sh.env.iter().copied())
        .stdin(if sh.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::SpawnFailed(e.to_string()),
    };
    let pgid = child.id() as i32;
    // The std `Child` is dropped without waiting: fild's reaper collects the wrapper.
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome::SpawnFailed("no pipes".into());
    };
    let input = child.stdin.take();
    drop(child);
    let status_rx = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(out)) {
        Ok(r) => r,
        Err(e) => return Outcome::SpawnFailed(e.to_string()),
    };
    let output_rx = match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(err)) {
        Ok(r) => r,
        Err(e) => return Outcome::SpawnFailed(e.to_string()),
    };
    if let (Some(pipe), Some(bytes)) = (input, sh.stdin) {
        match tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(pipe)) {
            // A command that does not read its input (or exits first) is not an error.
            Ok(tx) => drop(tokio::spawn(write_all(tx, bytes.to_vec(), sh.timeout))),
            Err(e) => return Outcome::SpawnFailed(e.to_string()),
        }
    }
    let collector = tokio::spawn(read_tail(output_rx));
    let status = tokio::time::timeout(sh.timeout, read_all(&status_rx)).await;
    let output_of = |mut collector: tokio::task::JoinHandle<String>| async move {
        // Output may be held open by something the command left running: wait briefly,
        // then stop reading (the task and its pipe end with it).
        match tokio::time::timeout(Duration::from_secs(2), &mut collector).await {
            Ok(Ok(s)) => s,
            _ => {
                collector.abort();
                String::new()
            }
        }
    };
    match status {
        Ok(text) => {
            let output = output_of(collector).await;
            match text.trim().parse::<i32>() {
                Ok(code) => Outcome::Exited { code, output },
                Err(_) => Outcome::Lost { output },
            }
        }
        Err(_) => {
            // The status pipe is still open, so the wrapper (the group's leader) is alive
            // and the group id is still ours.
            let group = nix::unistd::Pid::from_raw(-pgid);
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
            let closed = tokio::time::timeout(sh.grace, read_all(&status_rx)).await;
            if closed.is_err() {
                let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            }
            let output = output_of(collector).await;
            Outcome::TimedOut { output }
        }
    }
}

/// Write `bytes` to the command's input and close it; gives up at `timeout` or when the
/// command has closed its end.
async fn write_all(tx: tokio::net::unix::pipe::Sender, bytes: Vec<u8>, timeout: Duration) {
    let write = async {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            if tx.writable().await.is_err() {
                return;
            }
            match tx.try_write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, write).await;
}

/// Read a pipe to its end.
async fn read_all(rx: &tokio::net::unix::pipe::Receiver) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if rx.readable().await.is_err() {
            break;
        }
        match rx.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read a pipe to its end, keeping the last [`OUTPUT_TAIL`] bytes.
async fn read_tail(rx: tokio::net::unix::pipe::Receiver) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        if rx.readable().await.is_err() {
            break;
        }
        match rx.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 2 * OUTPUT_TAIL {
                    out.drain(..out.len() - OUTPUT_TAIL);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    if out.len() > OUTPUT_TAIL {
        out.drain(..out.len() - OUTPUT_TAIL);
    }
    String::from_utf8_lossy(&out).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell<'a>(command: &'a str, args: &'a [&'a OsStr], timeout: Duration) -> Shell<'a> {
        Shell {
            command,
            name: "fild-test",
            args,
            stdin: None,
            env: &[],
            timeout,
            grace: Duration::from_millis(500),
        }
    }

    #[tokio::test]
    async fn a_command_gets_its_arguments_and_reports_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("snap with space.db");
        std::fs::write(&f, b"data").unwrap();
        let copy = dir.path().join("copy.db");
        let cmd = format!("cp \"$1\" '{}' && echo copied", copy.display());
        let args = [f.as_os_str()];
        let t = Duration::from_secs(20);
        let o = run(&shell(&cmd, &args, t)).await;
        let ok = Outcome::Exited {
            code: 0,
            output: "copied".into(),
        };
        assert_eq!(o, ok);
        assert_eq!(std::fs::read(&copy).unwrap(), b"data");
        let o = run(&shell("echo oops >&2; exit 3", &args, t)).await;
        let failed = Outcome::Exited {
            code: 3,
            output: "oops".into(),
        };
        assert_eq!(o, failed);
        let t = std::time::Instant::now();
        let o = run(&shell("sleep 30", &args, Duration::from_millis(300))).await;
        assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
        assert!(t.elapsed() < Duration::from_secs(15));
        // How each ending is worded in fild's log.
        assert_eq!(ok.failure(), None);
        assert_eq!(
            failed.failure().as_deref(),
            Some("failed with exit status 3")
        );
        assert_eq!(failed.output(), "oops");
        assert_eq!(o.failure().as_deref(), Some("timed out and was stopped"));
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let cmd = format!(
            "trap '' TERM; sleep 30 & echo $! > '{}'; wait; wait",
            pid_file.display()
        );
        let o = run(&shell(&cmd, &[], Duration::from_millis(500))).await;
        assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed (a zombie until some reaper collects it: not running).
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        let t = std::time::Instant::now();
        while !gone() && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone(), "the command's sleep outlived the SIGKILL");
    }

    #[tokio::test]
    async fn a_command_reads_its_input_and_sees_its_environment() {
        let mut sh = shell("cat; echo \" $FILD_EVENT\"", &[], Duration::from_secs(20));
        sh.stdin = Some(b"{\"event\":\"x\"}");
        sh.env = &[("FILD_EVENT", "x")];
        let o = run(&sh).await;
        let seen = Outcome::Exited {
            code: 0,
            output: "{\"event\":\"x\"} x".into(),
        };
        assert_eq!(o, seen);
        // One that never reads a large input still ends, with its own status.
        let big = vec![b'x'; 1 << 20];
        let mut sh = shell("exit 4", &[], Duration::from_secs(20));
        sh.stdin = Some(&big);
        let o = run(&sh).await;
        assert!(matches!(o, Outcome::Exited { code: 4, .. }), "{o:?}");
    }
}
