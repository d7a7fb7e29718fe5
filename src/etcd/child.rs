//! A helper command (etcdctl, etcdutl) run from inside fild. fild's loop reaps every child
//! (`waitpid(-1)`: it is the subreaper of everything it starts), so waiting on the command
//! would race the loop and often fail with ECHILD. The command runs under a one-line shell
//! wrapper that writes its exit status to a pipe of its own (fd 3); its stdout and stderr
//! are read to their end; nobody here waits on a pid. Blocking: call it from the operations'
//! thread or the blocking pool, never from the loop.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The wrapper: the command with fd 3 closed, then its status on fd 3.
const WRAPPER: &str = r#""$@" 3>&-; echo "$?" >&3"#;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Its exit status (128+N when killed by signal N); `None` if the wrapper was killed.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit status N`, or that it was lost.
    pub fn status(&self) -> String {
        match self.code {
            Some(c) => format!("exit status {c}"),
            None => "killed before it reported a status".to_string(),
        }
    }
}

/// Run `program args`, stdin /dev/null, with `env` set and every variable starting with
/// `drop_prefix` removed; its status and output.
pub fn output<S: AsRef<OsStr>>(
    program: &OsStr,
    args: &[S],
    env: &[(&str, &str)],
    drop_prefix: &str,
) -> std::io::Result<Finished> {
    // Close-on-exec: no program fild spawns meanwhile may hold the status pipe open.
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(WRAPPER).arg("fild-helper").arg(program);
    cmd.args(args);
    if !drop_prefix.is_empty() {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with(drop_prefix) {
                cmd.env_remove(k);
            }
        }
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let w = status_w.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(status_w);
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other("no pipes to the command"));
    };
    // Dropped without waiting: fild's loop reaps the wrapper.
    drop(child);
    let errs = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    let stderr = errs.join().unwrap_or_default();
    let mut status = String::new();
    let _ = std::fs::File::from(status_r).read_to_string(&mut status);
    Ok(Finished {
        code: status.trim().parse().ok(),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_output_come_back_without_a_wait() {
        let f = output(
            OsStr::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; echo $FILD_T; exit 3"],
            &[("FILD_T", "t")],
            "",
        )
        .unwrap();
        assert_eq!(f.code, Some(3));
        assert_eq!(f.stdout, b"out\nt\n");
        assert_eq!(f.stderr, b"err\n");
        assert!(!f.success());
        let f = output(OsStr::new("/bin/true"), &[] as &[&str], &[], "").unwrap();
        assert!(f.success(), "{}", f.status());
        // A missing program: the shell says so and reports 127.
        let f = output(OsStr::new("/nonexistent/x"), &[] as &[&str], &[], "").unwrap();
        assert_eq!(f.code, Some(127));
    }

    #[test]
    fn variables_are_dropped_by_prefix() {
        // SAFETY: this test is the only one that sets this variable.
        unsafe { std::env::set_var("FILD_CHILD_TEST_DROP", "x") };
        let f = output(
            OsStr::new("/bin/sh"),
            &["-c", "echo ${FILD_CHILD_TEST_DROP:-gone}"],
            &[],
            "FILD_CHILD_TEST",
        )
        .unwrap();
        assert_eq!(f.stdout, b"gone\n");
    }
}
