mod common;
use common::*;
use fild::api::ProcessState;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// One `[program:x]` section.
fn prog(name: &str, command: &str, extra: &str) -> String {
    format!("[program:{name}]\ncommand={command}\nstartsecs=0\nstopwaitsecs=5\n{extra}\n")
}

/// Rewrite the test's `fild.ini` (same preamble as `Fild::start`).
fn rewrite(dir: &TestDir, programs: &str) {
    dir.write("fild.ini", &(preamble(dir.path()) + programs));
}

/// 1-based line number of the first line of `text` that equals `line`.
fn line_of(text: &str, line: &str) -> usize {
    text.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not in config"))
        + 1
}

fn out_text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether a line of `text` is exactly `line` (ignoring surrounding whitespace).
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Every process's name, pid and state.
fn table(f: &Fild) -> Vec<(String, u32, ProcessState)> {
    f.status()
        .into_iter()
        .map(|p| (p.name, p.pid, p.state))
        .collect()
}

/// `filc reload` must fail (exit 1) with a line naming `place` and `what`; all it said.
fn assert_reload_refused(f: &Fild, place: &str, what: &str) -> String {
    let o = f.filc(&["reload"]);
    let (stdout, stderr) = out_text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.lines().any(|l| l.contains(place) && l.contains(what)),
        "the error must name {place} and {what}:\n{all}"
    );
    all
}

#[test]
fn reload_adds_changes_and_removes_per_program() {
    let dir = TestDir::new("reload-acr");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "")
            + &prog("b", "sleep 1002", "")
            + &prog("c", "sleep 1003", "")),
    );
    let a = f.wait_state("a", ProcessState::Running, T);
    let b = f.wait_state("b", ProcessState::Running, T);
    let c = f.wait_state("c", ProcessState::Running, T);

    rewrite(
        &dir,
        &(prog("a", "sleep 1001", "")
            + &prog("b", "sleep 1012", "")
            + &prog("d", "sleep 1004", "")),
    );
    let out = f.filc_ok(&["reload"]);
    assert!(has_line(&out, "Added: d"), "reload output: {out}");
    assert!(has_line(&out, "Changed: b"), "reload output: {out}");
    assert!(has_line(&out, "Removed: c"), "reload output: {out}");

    let a2 = f.wait_state("a", ProcessState::Running, T);
    assert_eq!(a2.pid, a.pid, "a is unchanged and must keep its process");
    assert!(alive(a.pid as i32));

    let b2 = f.wait_state("b", ProcessState::Running, T);
    assert_ne!(b2.pid, b.pid, "b changed and must have been restarted");
    assert!(cmdline(b2.pid).contains("1012"), "b runs its new command");
    assert!(
        wait_until(T, || !alive(b.pid as i32)),
        "b's old process is still alive"
    );

    assert!(
        wait_until(T, || !alive(c.pid as i32)
            && group_members(c.pid as i32).is_empty()),
        "c's process is still alive after it was removed"
    );
    assert!(
        f.status().iter().all(|p| p.name != "c"),
        "c is still listed: {:?}",
        f.status()
    );

    let d = f.wait_state("d", ProcessState::Running, T);
    assert!(alive(d.pid as i32));
}

#[test]
fn reload_restarts_only_the_changed_program_of_a_group() {
    let dir = TestDir::new("reload-group");
    let programs = |xcmd: &str| {
        "[group:g]\nprograms=x,y\n\n".to_string()
            + &prog("x", xcmd, "")
            + &prog("y", "sleep 1002", "")
    };
    let f = Fild::start(&dir, &programs("sleep 1001"));
    let x = f.wait_state("x", ProcessState::Running, T);
    let y = f.wait_state("y", ProcessState::Running, T);
    assert_eq!(x.group, "g");
    assert_eq!(y.group, "g");

    rewrite(&dir, &programs("sleep 1011"));
    let out = f.filc_ok(&["reload"]);
    assert!(has_line(&out, "Changed: x"), "reload output: {out}");
    assert!(!out.contains("Added") && !out.contains("Removed"), "{out}");

    let x2 = f.wait_state("x", ProcessState::Running, T);
    assert_ne!(x2.pid, x.pid, "x changed and must have been restarted");
    let y2 = f.wait_state("y", ProcessState::Running, T);
    assert_eq!(y2.pid, y.pid, "y did not change and must not restart");
    assert!(alive(y.pid as i32));
    assert_eq!(y2.restarts, y.restarts);
}

#[test]
fn failed_reload_changes_nothing() {
    let dir = TestDir::new("reload-fail");
    let good = prog("a", "sleep 1001", "") + &prog("b", "sleep 1002", "");
    let f = Fild::start(&dir, &good);
    f.wait_state("a", ProcessState::Running, T);
    f.wait_state("b", ProcessState::Running, T);
    let before = table(&f);

    // Two kinds of error: an unset variable, and a size that is not a size. Each also tries
    // to add, change and remove programs, none of which may happen.
    let attempts = [
        (
            prog("a", "sleep $NOPE_VAR", "") + &prog("c", "sleep 1003", ""),
            "command=sleep $NOPE_VAR",
            "command",
        ),
        (
            prog("a", "sleep 1001", "stdout_logfile_maxbytes=1.5MB") + &prog("c", "sleep 1003", ""),
            "stdout_logfile_maxbytes=1.5MB",
            "stdout_logfile_maxbytes",
        ),
        // Once accepted, then a panic at reload (Instant + Duration overflow) that took fild
        // and, through its guard, every program down.
        (
            "[program:a]\ncommand=sleep 1001\nstartsecs=18446744073709551615\nstopwaitsecs=5\n"
                .to_string()
                + &prog("b", "sleep 1002", ""),
            "startsecs=18446744073709551615",
            "startsecs",
        ),
    ];
    for (programs, bad_line, key) in attempts {
        assert!(std::env::var_os("NOPE_VAR").is_none());
        rewrite(&dir, &programs);
        let text = std::fs::read_to_string(dir.join("fild.ini")).unwrap();
        let line = line_of(&text, bad_line);
        assert_reload_refused(&f, &format!("fild.ini:{line}"), key);
        assert_eq!(table(&f), before, "a failed reload changed something");
    }

    // A valid reload afterwards still works.
    rewrite(&dir, &(good.clone() + &prog("c", "sleep 1003", "")));
    let out = f.filc_ok(&["reload"]);
    assert!(has_line(&out, "Added: c"), "reload output: {out}");
    f.wait_state("c", ProcessState::Running, T);
    for (name, pid, _) in &before {
        assert_eq!(f.info(name).pid, *pid, "{name} was restarted");
    }
}

#[test]
fn reload_registers_non_autostart_and_keeps_stopped_programs_stopped() {
    let dir = TestDir::new("reload-stopped");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "") + &prog("s", "sleep 1002", "autostart=false")),
    );
    let a = f.wait_state("a", ProcessState::Running, T);
    assert_eq!(f.state("s"), ProcessState::Stopped);

    rewrite(
        &dir,
        &(prog("a", "sleep 1001", "")
            + &prog("s", "sleep 1234", "autostart=false")
            + &prog("n", "sleep 1003", "autostart=false")),
    );
    let out = f.filc_ok(&["reload"]);
    assert!(has_line(&out, "Added: n"), "reload output: {out}");
    assert!(has_line(&out, "Changed: s"), "reload output: {out}");

    let n = f.info("n");
    assert_eq!(n.state, ProcessState::Stopped, "{n:?}");
    assert_eq!(n.pid, 0);
    let s = f.info("s");
    assert_eq!(s.state, ProcessState::Stopped, "{s:?}");
    assert_eq!(s.pid, 0);
    assert_eq!(f.info("a").pid, a.pid);

    // Neither was started, even a little later.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(f.state("n"), ProcessState::Stopped);
    assert_eq!(f.state("s"), ProcessState::Stopped);

    // The changed spec took effect silently: starting s runs the new command.
    f.filc_ok(&["start", "s"]);
    let s = f.wait_state("s", ProcessState::Running, T);
    assert!(
        cmdline(s.pid).contains("1234"),
        "s runs {:?}, not its new command",
        cmdline(s.pid)
    );
}

#[test]
fn sighup_reloads() {
    let dir = TestDir::new("reload-hup");
    let f = Fild::start(&dir, &prog("a", "sleep 1001", ""));
    let a = f.wait_state("a", ProcessState::Running, T);

    rewrite(
        &dir,
        &(prog("a", "sleep 1001", "") + &prog("h", "sleep 1002", "")),
    );
    signal(f.pid(), libc::SIGHUP);
    assert!(
        wait_until(T, || f.status().iter().any(|p| p.name == "h")),
        "h did not appear after SIGHUP"
    );
    let h = f.wait_state("h", ProcessState::Running, T);
    assert_eq!(f.info("a").pid, a.pid);
    assert!(alive(f.pid()), "fild must survive SIGHUP");

    // SIGHUP with a broken config changes nothing and fild keeps running.
    rewrite(
        &dir,
        &(prog("a", "sleep $NOPE_VAR", "") + &prog("z", "sleep 1003", "")),
    );
    signal(f.pid(), libc::SIGHUP);
    let log = dir.join("fild.log");
    assert!(
        wait_until(T, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("SIGHUP reload refused")),
        "no refusal logged"
    );
    assert!(alive(f.pid()));
    let names: Vec<_> = f.status().into_iter().map(|p| (p.name, p.pid)).collect();
    assert_eq!(
        names,
        [("a".to_string(), a.pid), ("h".to_string(), h.pid)],
        "a refused SIGHUP reload changed something"
    );
}

#[test]
fn reload_shows_unknown_key_warnings() {
    let dir = TestDir::new("reload-warn");
    let f = Fild::start(&dir, &prog("a", "sleep 1001", ""));
    f.wait_state("a", ProcessState::Running, T);

    rewrite(&dir, &prog("a", "sleep 1001", "bogus_key=1"));
    let text = std::fs::read_to_string(dir.join("fild.ini")).unwrap();
    let line = line_of(&text, "bogus_key=1");
    let out = f.filc_ok(&["reload"]);
    let place = format!("fild.ini:{line}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning:") && l.contains(&place) && l.contains("bogus_key")),
        "expected a warning naming {place} and bogus_key:\n{out}"
    );
    // Unknown keys are not a change.
    assert!(has_line(&out, "No changes."), "{out}");
}

/// The typo once seen: `stdout_logfile_maxbyte` was ignored with a warning, the reload went
/// on and the program restarted with the default size. Now `filc reload` and SIGHUP refuse
/// the file, name file:line:key and the key meant, and every program keeps its pid.
#[test]
fn a_near_miss_key_fails_the_reload_and_changes_nothing() {
    let dir = TestDir::new("reload-near");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "stdout_logfile_maxbytes=1MB") + &prog("b", "sleep 1002", "")),
    );
    f.wait_state("a", ProcessState::Running, T);
    f.wait_state("b", ProcessState::Running, T);
    let before = table(&f);

    // Read as a change (the size back to its default), and a program added.
    let typo = "stdout_logfile_maxbyte=10MB";
    rewrite(
        &dir,
        &(prog("a", "sleep 1001", typo)
            + &prog("b", "sleep 1002", "")
            + &prog("c", "sleep 1003", "")),
    );
    let text = std::fs::read_to_string(dir.join("fild.ini")).unwrap();
    let place = format!("fild.ini:{}:", line_of(&text, typo));
    let error =
        "[program:a] stdout_logfile_maxbyte: unknown key; did you mean `stdout_logfile_maxbytes`?";
    assert_reload_refused(&f, &place, error);
    assert_eq!(table(&f), before, "a refused reload changed something");

    // SIGHUP takes the same path: refused, logged with the same error, nothing changed.
    signal(f.pid(), libc::SIGHUP);
    let log = dir.join("fild.log");
    assert!(
        wait_until(T, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("SIGHUP reload refused")
                && text
                    .lines()
                    .any(|l| l.contains(&place) && l.contains(error))
        }),
        "no refusal naming {place} logged"
    );
    assert!(alive(f.pid()));
    assert_eq!(
        table(&f),
        before,
        "a refused SIGHUP reload changed something"
    );
}
