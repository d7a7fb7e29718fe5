//! Child output capture against the real binaries: rotation bounds, redirect_stderr,
//! logfile=NONE, maxbytes=0, and `filc tail`.
mod common;
use common::*;
use fild::api::ProcessState;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A script printing `count` numbered 40-byte lines (`line 00001 xxx...`) to stdout, then
/// sleeping.
fn writer(dir: &TestDir, name: &str, count: u32) -> std::path::PathBuf {
    dir.script(
        &format!("{name}.sh"),
        &format!(
            "i=1\nwhile [ $i -le {count} ]; do printf 'line %05d xxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n' $i; i=$((i+1)); done\nexec sleep 1000"
        ),
    )
}

fn last_line(count: u32) -> String {
    format!("line {count:05} xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
}

#[test]
fn rotation_bounds_total_size_and_keeps_last_line_live() {
    let dir = TestDir::new("rotation");
    // 40-byte lines: 1200 of them are 48000 bytes, over 4x maxbytes.
    let s = writer(&dir, "w", 1200);
    let d = dir.path().display();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:w]\ncommand={s}\nstartsecs=0\nstdout_logfile={d}/logs/w.log\nstdout_logfile_maxbytes=10KB\nstdout_logfile_backups=2\nstderr_logfile={d}/logs/w.err\n",
            s = s.display()
        ),
    );
    f.wait_state("w", ProcessState::Running, T);
    let live = dir.join("logs/w.log");
    let last = last_line(1200);
    assert!(
        wait_until(T, || read(&live).ends_with(&last)),
        "the last line never reached the live log; it ends {:?}",
        read(&live).chars().rev().take(200).collect::<String>()
    );
    let max = 10 * 1024;
    let mut total = 0;
    for n in ["w.log", "w.log.1", "w.log.2"] {
        let p = dir.join(&format!("logs/{n}"));
        assert!(p.exists(), "{n} missing");
        let len = size(&p);
        assert!(len <= max, "{n} is {len} bytes, over maxbytes");
        total += len;
    }
    assert!(total <= max * 3, "logs total {total} bytes");
    assert!(
        !dir.join("logs/w.log.3").exists(),
        "more backups than asked"
    );
    // Only whole lines: rotation splits at newlines.
    for n in ["w.log", "w.log.1", "w.log.2"] {
        let text = read(&dir.join(&format!("logs/{n}")));
        assert!(text.ends_with('\n'), "{n} ends mid-line");
        assert!(
            text.lines()
                .all(|l| l.len() == 39 && l.starts_with("line ")),
            "{n} holds a broken line"
        );
    }
}

#[test]
fn maxbytes_zero_never_rotates() {
    let dir = TestDir::new("norotate");
    let s = writer(&dir, "w", 1200);
    let d = dir.path().display();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:w]\ncommand={s}\nstartsecs=0\nstdout_logfile={d}/logs/w.log\nstdout_logfile_maxbytes=0\nstdout_logfile_backups=2\nstderr_logfile={d}/logs/w.err\n",
            s = s.display()
        ),
    );
    f.wait_state("w", ProcessState::Running, T);
    let live = dir.join("logs/w.log");
    let last = last_line(1200);
    assert!(wait_until(T, || read(&live).ends_with(&last)));
    assert_eq!(size(&live), 1200 * 40);
    assert!(!dir.join("logs/w.log.1").exists());
}

#[test]
fn redirect_stderr_puts_stderr_in_the_stdout_log() {
    let dir = TestDir::new("redirect");
    let s = dir.script(
        "r.sh",
        "echo out-line\necho err-line >&2\necho out-again\nexec sleep 1000",
    );
    let d = dir.path().display();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:r]\ncommand={s}\nstartsecs=0\nredirect_stderr=true\nstdout_logfile={d}/r.out\nstderr_logfile={d}/r.err\n",
            s = s.display()
        ),
    );
    f.wait_state("r", ProcessState::Running, T);
    let out = dir.join("r.out");
    assert!(
        wait_until(T, || read(&out).contains("out-again")),
        "{:?}",
        read(&out)
    );
    assert_eq!(read(&out), "out-line\nerr-line\nout-again\n");
    assert!(!dir.join("r.err").exists(), "stderr log written anyway");
    assert_eq!(f.info("r").stderr_logfile, None);
    let tail = f.filc(&["tail", "r", "stderr"]);
    assert!(!tail.status.success());
    assert!(
        String::from_utf8_lossy(&tail.stderr).contains("redirect"),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
}

#[test]
fn logfile_none_writes_no_file() {
    let dir = TestDir::new("none");
    let s = dir.script(
        "q.sh",
        &format!(
            "echo to-nowhere\necho err >&2\ntouch {d}/q.done\nexec sleep 1000",
            d = dir.path().display()
        ),
    );
    let d = dir.path().display();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:q]\ncommand={s}\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile={d}/q.err\n",
            s = s.display()
        ),
    );
    f.wait_state("q", ProcessState::Running, T);
    assert!(wait_until(T, || dir.join("q.done").exists()));
    assert!(wait_until(T, || read(&dir.join("q.err")) == "err\n"));
    assert_eq!(f.info("q").stdout_logfile, None);
    // Nothing in the test dir (or the AUTO location) holds the stdout line.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names.iter().filter(|n| *n != "q.sh") {
        assert!(
            !read(&dir.join(n)).contains("to-nowhere"),
            "{n} holds the discarded output"
        );
    }
    let tail = f.filc(&["tail", "q"]);
    assert!(!tail.status.success());
    assert!(
        String::from_utf8_lossy(&tail.stderr).contains("not logged"),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
}

#[test]
fn tail_prints_the_last_lines_of_stdout_and_reads_stderr() {
    let dir = TestDir::new("tail");
    let s = dir.script(
        "t.sh",
        "i=1\nwhile [ $i -le 10 ]; do echo \"line $i\"; i=$((i+1)); done\necho \"problem 1\" >&2\necho \"problem 2\" >&2\nexec sleep 1000",
    );
    let d = dir.path().display();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:t]\ncommand={s}\nstartsecs=0\nstdout_logfile={d}/t.out\nstderr_logfile={d}/t.err\n",
            s = s.display()
        ),
    );
    f.wait_state("t", ProcessState::Running, T);
    assert!(wait_until(T, || read(&dir.join("t.out")).ends_with("line 10\n")));
    assert!(wait_until(T, || read(&dir.join("t.err")).ends_with("problem 2\n")));

    assert_eq!(
        f.filc_ok(&["tail", "-n", "3", "t"]),
        "line 8\nline 9\nline 10\n"
    );
    let all = f.filc_ok(&["tail", "t"]);
    assert!(
        all.starts_with("line 1\n") && all.ends_with("line 10\n"),
        "{all}"
    );
    let err = f.filc_ok(&["tail", "t", "stderr"]);
    assert_eq!(err, "problem 1\nproblem 2\n");
    assert_eq!(
        f.filc_ok(&["tail", "-n", "1", "t", "stderr"]),
        "problem 2\n"
    );
}

/// A `user=nobody` program whose log lies in a directory nobody owns: a symlink placed
/// there to a root-owned file once made root fild append the program's output to that
/// file. Now the program does not start, the error names the key, and the file is untouched.
#[test]
fn a_symlink_a_less_privileged_user_placed_is_never_followed() {
    use std::os::unix::fs::{PermissionsExt, chown, symlink};
    let dir = TestDir::new("log-symlink");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = dir.join("nobody-logs");
    std::fs::create_dir(&theirs).unwrap();
    chown(&theirs, Some(65534), Some(65534)).unwrap();
    let roots = dir.join("root-owned.conf");
    std::fs::write(&roots, "root's own\n").unwrap();
    symlink(&roots, theirs.join("out.log")).unwrap();
    let f = Fild::start(
        &dir,
        &format!(
            "[program:p]\ncommand=/bin/echo written-through-the-link\nuser=nobody\nstartsecs=0\nstartretries=0\nautorestart=false\nstdout_logfile={}\n",
            theirs.join("out.log").display()
        ),
    );
    let p = f.wait_state("p", ProcessState::Fatal, T);
    assert!(
        p.description.contains("stdout_logfile") && p.description.contains("symbolic link"),
        "{}",
        p.description
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        read(&roots),
        "root's own\n",
        "fild wrote through the symlink"
    );
}

/// A FIFO at a program's (then predictable) `AUTO` log path once blocked fild's loop in
/// open() until the watchdog killed it. Now `AUTO` names carry a token nobody else can
/// guess, and a FIFO at any log path is refused without blocking: fild answers.
#[test]
fn a_fifo_at_the_log_path_is_refused_without_blocking() {
    let dir = TestDir::new("log-fifo");
    let fifo = dir.join("p-stdout.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let config = dir.write(
        "fild.ini",
        &(preamble(dir.path()).replace(
            "[supervisord]\n",
            &format!("[supervisord]\nchildlogdir={}\n", dir.path().display()),
        ) + &format!(
            "[program:p]\ncommand=sleep 100195\nstartsecs=0\nstartretries=0\nstdout_logfile={}\n\n[program:q]\ncommand=sleep 100196\nstartsecs=0\nstdout_logfile=AUTO\n",
            fifo.display()
        )),
    );
    let f = Fild::start_with(dir.path(), &config);
    let p = f.wait_state("p", ProcessState::Fatal, T);
    assert!(p.description.contains("FIFO"), "{}", p.description);
    // The loop was never stuck: another program runs and fild answers.
    let q = f.wait_state("q", ProcessState::Running, T);
    f.filc_ok(&["status"]);
    // q's AUTO name is not the predictable q-stdout.log.
    let auto = q.stdout_logfile.unwrap();
    let name = Path::new(&auto)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("q-stdout---fild-") && name.len() > "q-stdout---fild-.log".len() + 8,
        "{auto}"
    );
    assert!(Path::new(&auto).is_file(), "{auto}");
}

/// Two programs sharing one log file, and `logrotate copytruncate`: writes land at the
/// file's current end, so no line is overwritten and a truncated file holds no NUL bytes.
#[test]
fn shared_log_files_and_copytruncate_lose_nothing() {
    let dir = TestDir::new("log-shared");
    let shared = dir.join("shared.log");
    // Both flow at once, as fast as they can (the pipes rarely drain): offsets kept per
    // writer would overlap.
    let script = |name: &str, tag: &str| {
        dir.script(
            &format!("{name}.sh"),
            &format!("yes {tag}-line | head -n 300000\nexec sleep 1000"),
        )
    };
    let a = script("a", "from-a");
    let b = script("b", "from-b");
    let f = Fild::start(
        &dir,
        &format!(
            "[program:a]\ncommand={}\nstartsecs=0\nstdout_logfile={}\nstdout_logfile_maxbytes=0\n\n[program:b]\ncommand={}\nstartsecs=0\nstdout_logfile={}\nstdout_logfile_maxbytes=0\n",
            a.display(),
            shared.display(),
            b.display(),
            shared.display()
        ),
    );
    f.wait_state("a", ProcessState::Running, T);
    f.wait_state("b", ProcessState::Running, T);
    // Nothing overwritten: every byte of both is in the file (lines of the two may
    // interleave where a read ended mid-line, as with supervisord, but none is lost).
    let want = 2 * 300_000 * "from-a-line\n".len();
    assert!(
        wait_until(
            T,
            || std::fs::metadata(&shared).map(|m| m.len()).unwrap_or(0) as usize >= want
        ),
        "only {} of {want} bytes arrived",
        std::fs::metadata(&shared).map(|m| m.len()).unwrap_or(0)
    );
    std::thread::sleep(Duration::from_millis(300));
    let bytes = std::fs::read(&shared).unwrap();
    let count = |c: u8| bytes.iter().filter(|b| **b == c).count();
    assert_eq!(bytes.len(), want, "bytes overwritten or added");
    assert_eq!(count(b'a'), 300_000, "a's bytes (one 'a' per line)");
    assert_eq!(count(b'b'), 300_000, "b's bytes (one 'b' per line)");
    assert_eq!(count(b'\n'), 600_000);
    // copytruncate while a program writes on: truncated in place mid-flow, the file holds
    // no NUL bytes afterwards (writes go to the current end, not to fild's old offset).
    let slow = dir.script(
        "c.sh",
        "i=0\nwhile [ $i -lt 100 ]; do echo \"from-c $i\"; i=$((i+1)); sleep 0.02; done\nexec sleep 1000",
    );
    let c_log = dir.join("c.log");
    std::fs::write(
        dir.join("fild.ini"),
        read(&dir.join("fild.ini"))
            + &format!(
                "\n[program:c]\ncommand={}\nstartsecs=0\nstdout_logfile={}\nstdout_logfile_maxbytes=0\n",
                slow.display(),
                c_log.display()
            ),
    )
    .unwrap();
    f.filc_ok(&["reload"]);
    assert!(wait_until(T, || read(&c_log).contains("from-c 30\n")));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&c_log)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(
        wait_until(T, || read(&c_log).contains("from-c 99\n")),
        "c's last line"
    );
    let bytes = std::fs::read(&c_log).unwrap();
    assert!(
        !bytes.contains(&0),
        "NUL bytes after copytruncate: {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
    );
}

/// `filc tail -f` counted its offset on decoded text: bytes that are not UTF-8 (replaced by
/// U+FFFD, three bytes each) pushed it past the file's end, and the next poll printed the
/// whole log again. Now it counts the bytes read.
#[test]
fn tail_follow_is_not_fooled_by_invalid_utf8() {
    use std::io::Read;
    let dir = TestDir::new("tail-utf8");
    let s = dir.script(
        "t.sh",
        "echo first-line\nprintf 'bad \\377\\376 bytes\\n'\nsleep 1.5\necho later-line\nexec sleep 1000",
    );
    let out = dir.join("t.out");
    let f = Fild::start(
        &dir,
        &format!(
            "[program:t]\ncommand={}\nstartsecs=0\nstdout_logfile={}\n",
            s.display(),
            out.display()
        ),
    );
    f.wait_state("t", ProcessState::Running, T);
    let has = |what: &str| {
        std::fs::read(&out)
            .unwrap_or_default()
            .windows(what.len())
            .any(|w| w == what.as_bytes())
    };
    assert!(wait_until(T, || has("bytes")));
    let mut tail = std::process::Command::new(FILC)
        .arg("-c")
        .arg(&f.config)
        .args(["tail", "-f", "t"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Polls (every 200 ms) while the file does not grow, then the later line comes.
    assert!(wait_until(T, || has("later-line")));
    std::thread::sleep(Duration::from_millis(800));
    signal(tail.id() as i32, libc::SIGKILL);
    let _ = tail.wait();
    let mut printed = String::new();
    tail.stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    assert_eq!(
        printed.matches("first-line").count(),
        1,
        "printed again:\n{printed}"
    );
    assert_eq!(printed.matches("later-line").count(), 1, "{printed}");
}

/// A numeric real-time `stopsignal` passed the config check but was never sent: the program
/// was SIGKILLed after stopwaitsecs instead. Now it gets the signal.
#[test]
fn a_real_time_stopsignal_is_sent() {
    let dir = TestDir::new("rt-signal");
    let got = dir.join("got");
    let s = dir.script(
        "rt.sh",
        &format!(
            "#!/bin/bash\ntrap 'echo got-40 > {}; exit 0' 40\nwhile :; do sleep 0.1; done",
            got.display()
        ),
    );
    let f = Fild::start(
        &dir,
        &format!(
            "[program:rt]\ncommand=/bin/bash {}\nstartsecs=0\nstopsignal=40\nstopwaitsecs=30\n",
            s.display()
        ),
    );
    f.wait_state("rt", ProcessState::Running, T);
    std::thread::sleep(Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    f.filc_ok(&["stop", "rt"]);
    assert_eq!(
        read(&got),
        "got-40\n",
        "signal 40 never reached the program"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stopped by the SIGKILL fallback"
    );
    let info = f.info("rt");
    assert_eq!(info.exit_status, Some(0), "{info:?}");
}
