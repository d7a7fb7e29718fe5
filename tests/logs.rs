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
