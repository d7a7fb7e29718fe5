//! Process lifecycle against the real binaries: autostart, priority tiers, concurrent starts,
//! crash restarts, backoff to FATAL, exitcodes, stopping (gracefully and by escalation to a
//! group SIGKILL), restart, signals, pids, groups and the spawn environment.
mod common;
use common::*;
use fild::api::ProcessState;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// A `[program:NAME]` section with its logs kept inside the test dir.
fn prog(dir: &TestDir, name: &str, command: &Path, extra: &str) -> String {
    format!(
        "[program:{name}]\ncommand={cmd}\nstdout_logfile={d}/{name}.out\nstderr_logfile={d}/{name}.err\n{extra}\n\n",
        cmd = command.display(),
        d = dir.path().display(),
    )
}

/// Lines in a counter file (0 if it does not exist yet).
fn count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A script that records each start in `<name>.count` and then sleeps.
fn sleeper(dir: &TestDir, name: &str) -> std::path::PathBuf {
    dir.script(
        &format!("{name}.sh"),
        &format!(
            "echo start >> {d}/{name}.count\nexec sleep 1000",
            d = dir.path().display()
        ),
    )
}

#[test]
fn autostart_true_runs_and_autostart_false_waits_for_start() {
    let dir = TestDir::new("autostart");
    let a = sleeper(&dir, "a");
    let b = sleeper(&dir, "b");
    let f = Fild::start(
        &dir,
        &(prog(&dir, "a", &a, "autostart=true\nstartsecs=1")
            + &prog(&dir, "b", &b, "autostart=false\nstartsecs=1")),
    );
    let ai = f.wait_state("a", ProcessState::Running, T);
    assert!(alive(ai.pid as i32));
    assert_eq!(count(&dir.join("a.count")), 1);

    let bi = f.info("b");
    assert_eq!(bi.state, ProcessState::Stopped);
    assert_eq!(bi.pid, 0);
    assert_eq!(
        count(&dir.join("b.count")),
        0,
        "b must not have been spawned"
    );

    let out = f.filc_ok(&["start", "b"]);
    assert!(out.contains("b: started"), "{out}");
    let bi = f.info("b");
    assert_eq!(bi.state, ProcessState::Running);
    assert!(alive(bi.pid as i32));
    assert_eq!(count(&dir.join("b.count")), 1);
}

/// When a process was forked, in clock ticks since boot (/proc/PID/stat field 22).
fn fork_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let i = s.rfind(')').unwrap();
    s[i + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// Watch the three tiers come up: whenever a tier's marker exists, the tier before it must
/// already be RUNNING. (The marker is read before the status, so the check cannot race.)
fn check_tier_order(f: &Fild, dir: &TestDir) {
    let ok = wait_until(Duration::from_secs(30), || {
        let s2 = dir.join("p2.started").exists();
        let s3 = dir.join("p3.started").exists();
        let st = f.status();
        let state = |n: &str| st.iter().find(|p| p.name == n).unwrap().state;
        if s2 {
            assert_eq!(
                state("p1"),
                ProcessState::Running,
                "p2 spawned before p1 was RUNNING"
            );
        }
        if s3 {
            assert_eq!(
                state("p2"),
                ProcessState::Running,
                "p3 spawned before p2 was RUNNING"
            );
        }
        s3 && state("p3") == ProcessState::Running
    });
    assert!(ok, "tiers did not all come up");
    // Each tier is forked only once the previous one is RUNNING, which takes startsecs (1 s)
    // after its fork. The kernel's fork times (a tick is 10 ms) show the spacing exactly.
    let st = f.status();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let forked = |n: &str| fork_ticks(st.iter().find(|p| p.name == n).unwrap().pid);
    let (t1, t2, t3) = (forked("p1"), forked("p2"), forked("p3"));
    for (a, b, what) in [(t1, t2, "p2 after p1"), (t2, t3, "p3 after p2")] {
        assert!(
            b >= a + tick - 2,
            "{what}: forked {} ticks apart, startsecs=1 is {tick} ticks",
            b as i64 - a as i64
        );
    }
}

#[test]
fn priority_tiers_start_in_order_at_startup_and_on_start_all() {
    let dir = TestDir::new("tiers");
    let mut conf = String::new();
    // Listed out of priority order on purpose.
    for (name, prio) in [("p3", 30), ("p1", 10), ("p2", 20)] {
        let s = dir.script(
            &format!("{name}.sh"),
            &format!(
                "date +%s%N > {d}/{name}.started\nexec sleep 1000",
                d = dir.path().display()
            ),
        );
        conf += &prog(&dir, name, &s, &format!("priority={prio}\nstartsecs=1"));
    }
    let f = Fild::start(&dir, &conf);
    check_tier_order(&f, &dir);

    f.filc_ok(&["stop", "all"]);
    for n in ["p1", "p2", "p3"] {
        assert_eq!(f.state(n), ProcessState::Stopped);
        std::fs::remove_file(dir.join(&format!("{n}.started"))).unwrap();
    }
    let mut child = Command::new(FILC)
        .arg("-c")
        .arg(&f.config)
        .args(["start", "all"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check_tier_order(&f, &dir);
    let out = child.wait().unwrap();
    assert!(out.success(), "filc start all failed");
}

#[test]
fn start_of_several_names_is_concurrent_and_reports_failures() {
    let dir = TestDir::new("concurrent");
    let mut conf = String::new();
    for n in ["a", "b", "c", "good"] {
        let s = sleeper(&dir, n);
        conf += &prog(&dir, n, &s, "autostart=false\nstartsecs=2");
    }
    let bad = dir.script(
        "bad.sh",
        &format!(
            "echo start >> {d}/bad.count\necho failing >&2\nexit 1",
            d = dir.path().display()
        ),
    );
    conf += &prog(
        &dir,
        "bad",
        &bad,
        "autostart=false\nstartsecs=1\nstartretries=0",
    );
    let f = Fild::start(&dir, &conf);

    let child = Command::new(FILC)
        .arg("-c")
        .arg(&f.config)
        .args(["start", "a", "b", "c"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = None;
    let all_starting = wait_until(T, || {
        let st = f.status();
        let abc: Vec<_> = st
            .iter()
            .filter(|p| ["a", "b", "c"].contains(&p.name.as_str()))
            .collect();
        let ok = abc
            .iter()
            .all(|p| p.state == ProcessState::Starting && p.pid != 0 && alive(p.pid as i32));
        if ok {
            seen = Some(abc.iter().map(|p| p.pid).collect::<Vec<_>>());
        }
        ok
    });
    assert!(all_starting, "never saw a, b and c STARTING at once");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "filc start a b c: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    let text = stdout_of(&out);
    for n in ["a", "b", "c"] {
        assert!(text.contains(&format!("{n}: started")), "{text}");
    }
    // The reply came only once every one of them was RUNNING, with the pids seen starting.
    let st = f.status();
    for (n, pid) in ["a", "b", "c"].iter().zip(seen.unwrap()) {
        let p = st.iter().find(|p| p.name == *n).unwrap();
        assert_eq!(p.state, ProcessState::Running, "{p:?}");
        assert_eq!(p.pid, pid);
    }

    let out = f.filc(&["start", "good", "bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("good: started"), "{text}");
    assert!(text.contains("bad: ERROR"), "{text}");
    assert_eq!(f.state("good"), ProcessState::Running);
    assert!(
        matches!(f.state("bad"), ProcessState::Fatal | ProcessState::Backoff),
        "{:?}",
        f.info("bad")
    );
}

#[test]
fn crash_after_startsecs_restarts_at_once() {
    let dir = TestDir::new("crash");
    let s = sleeper(&dir, "svc");
    let f = Fild::start(
        &dir,
        &prog(&dir, "svc", &s, "startsecs=1\nautorestart=true"),
    );
    f.wait_state("svc", ProcessState::Running, T);
    // Ran well past max(startsecs, 1 s): not a quick exit.
    assert!(wait_until(T, || f.info("svc").uptime_secs >= 2));
    let before = f.info("svc");
    assert_eq!(before.restarts, 0);
    let old = before.pid as i32;

    signal(old, libc::SIGKILL);
    let killed = Instant::now();
    let mut new = 0;
    let respawned = wait_until(Duration::from_secs(10), || {
        let p = f.info("svc").pid as i32;
        if p != 0 && p != old {
            new = p;
            true
        } else {
            false
        }
    });
    let took = killed.elapsed();
    assert!(respawned, "no new pid after SIGKILL");
    assert!(
        took < Duration::from_secs(3),
        "respawn took {took:?}: a crash after a long run must not be backed off"
    );
    assert!(alive(new));
    assert!(!alive(old));
    let after = f.wait_state("svc", ProcessState::Running, T);
    assert_eq!(after.pid as i32, new);
    assert_eq!(after.restarts, 1);
    assert_eq!(count(&dir.join("svc.count")), 2);
}

#[test]
fn quick_exits_back_off_then_go_fatal_and_stay_fatal() {
    let dir = TestDir::new("fatal");
    let s = dir.script(
        "quick.sh",
        &format!(
            "echo try >> {d}/quick.count\nexit 1",
            d = dir.path().display()
        ),
    );
    let f = Fild::start(
        &dir,
        &prog(&dir, "quick", &s, "startsecs=1\nstartretries=2"),
    );
    let i = f.wait_state("quick", ProcessState::Fatal, Duration::from_secs(40));
    assert_eq!(count(&dir.join("quick.count")), 3, "1 try + 2 retries");
    assert_eq!(i.pid, 0);
    assert_eq!(i.restarts, 2);
    assert_eq!(i.exit_status, Some(1));
    // FATAL is final: no further attempt (the next backoff would have been 4 s).
    let changed = wait_until(Duration::from_secs(5), || {
        count(&dir.join("quick.count")) != 3 || f.state("quick") != ProcessState::Fatal
    });
    assert!(!changed, "FATAL program was retried: {:?}", f.info("quick"));
}

#[test]
fn startretries_forever_keeps_retrying() {
    let dir = TestDir::new("forever");
    let s = dir.script(
        "quick.sh",
        &format!(
            "echo try >> {d}/quick.count\nexit 1",
            d = dir.path().display()
        ),
    );
    let f = Fild::start(
        &dir,
        &prog(&dir, "quick", &s, "startsecs=1\nstartretries=forever"),
    );
    // Backoff 1 + 2 + 4 s before the 4th attempt.
    let ok = wait_until(Duration::from_secs(40), || {
        let st = f.state("quick");
        assert_ne!(st, ProcessState::Fatal, "startretries=forever went FATAL");
        count(&dir.join("quick.count")) >= 4
    });
    assert!(ok, "only {} attempts", count(&dir.join("quick.count")));
    let i = f.info("quick");
    assert!(
        matches!(i.state, ProcessState::Backoff | ProcessState::Starting),
        "{i:?}"
    );
    assert!(i.restarts >= 3, "{i:?}");
}

#[test]
fn exitcodes_decide_whether_unexpected_exits_restart() {
    let dir = TestDir::new("exitcodes");
    let d = dir.path().display();
    let two = dir.script(
        "two.sh",
        &format!("echo run >> {d}/two.count\nsleep 2\nexit 2"),
    );
    let three = dir.script(
        "three.sh",
        &format!("echo run >> {d}/three.count\nsleep 2\nexit 3"),
    );
    let extra = "startsecs=1\nautorestart=unexpected\nexitcodes=0,2";
    let f = Fild::start(
        &dir,
        &(prog(&dir, "two", &two, extra) + &prog(&dir, "three", &three, extra)),
    );
    let i = f.wait_state("two", ProcessState::Exited, T);
    assert_eq!(i.exit_status, Some(2));
    assert_eq!(i.restarts, 0);

    // Exit 3 is unexpected: restarted (at once, the run was longer than startsecs).
    assert!(
        wait_until(T, || count(&dir.join("three.count")) >= 2),
        "three was not restarted: {:?}",
        f.info("three")
    );
    let i = f.info("three");
    assert!(i.restarts >= 1, "{i:?}");
    assert_eq!(i.exit_status, Some(3));

    // two stays EXITED.
    let changed = wait_until(Duration::from_secs(3), || {
        count(&dir.join("two.count")) != 1 || f.state("two") != ProcessState::Exited
    });
    assert!(!changed, "expected exit was restarted: {:?}", f.info("two"));
}

#[test]
fn stop_of_a_term_handling_program_is_graceful() {
    let dir = TestDir::new("stopterm");
    let d = dir.path().display();
    let s = dir.script(
        "t.sh",
        &format!("trap 'echo bye > {d}/term.marker; exit 0' TERM\nwhile :; do sleep 0.1; done"),
    );
    let f = Fild::start(&dir, &prog(&dir, "t", &s, "startsecs=1"));
    let pid = f.wait_state("t", ProcessState::Running, T).pid as i32;

    let out = f.filc_ok(&["stop", "t"]);
    assert!(out.contains("t: stopped"), "{out}");
    let i = f.info("t");
    assert_eq!(i.state, ProcessState::Stopped);
    assert_eq!(i.pid, 0);
    assert_eq!(i.exit_status, Some(0), "{i:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("term.marker")).unwrap_or_default(),
        "bye\n"
    );
    assert!(!alive(pid));
    assert!(group_members(pid).is_empty());
}

#[test]
fn stop_escalates_to_sigkill_of_the_whole_group() {
    let dir = TestDir::new("stopgroup");
    let d = dir.path().display();
    // The ignored TERM is inherited by the backgrounded grandchild too.
    let s = dir.script(
        "g.sh",
        &format!("trap '' TERM\nsleep 1000 &\necho $! > {d}/child.pid\nwait"),
    );
    let f = Fild::start(
        &dir,
        &prog(
            &dir,
            "g",
            &s,
            "startsecs=1\nstopasgroup=true\nkillasgroup=true\nstopwaitsecs=2",
        ),
    );
    let pid = f.wait_state("g", ProcessState::Running, T).pid as i32;
    let mut child = 0;
    assert!(wait_until(T, || {
        child = std::fs::read_to_string(dir.join("child.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        child != 0
    }));
    assert!(alive(child));
    let members = group_members(pid);
    assert!(
        members.contains(&pid) && members.contains(&child),
        "{members:?}"
    );

    let began = Instant::now();
    let out = f.filc_ok(&["stop", "g"]);
    let took = began.elapsed();
    assert!(out.contains("g: stopped"), "{out}");
    assert!(
        took >= Duration::from_millis(1950),
        "stop returned after {took:?}, before stopwaitsecs=2 ran out"
    );
    let i = f.info("g");
    assert_eq!(i.state, ProcessState::Stopped);
    assert_eq!(i.exit_signal, Some(libc::SIGKILL), "{i:?}");
    assert_eq!(group_members(pid), Vec::<i32>::new());
    assert!(!alive(pid));
    assert!(!alive(child));
}

#[test]
fn autorestart_false_leaves_an_exited_program_exited() {
    let dir = TestDir::new("norestart");
    let s = dir.script(
        "once.sh",
        &format!(
            "echo run >> {d}/once.count\nsleep 2\nexit 1",
            d = dir.path().display()
        ),
    );
    let f = Fild::start(
        &dir,
        &prog(&dir, "once", &s, "startsecs=1\nautorestart=false"),
    );
    let i = f.wait_state("once", ProcessState::Exited, T);
    assert_eq!(i.exit_status, Some(1));
    assert_eq!(i.pid, 0);
    let changed = wait_until(Duration::from_secs(3), || {
        count(&dir.join("once.count")) != 1 || f.state("once") != ProcessState::Exited
    });
    assert!(
        !changed,
        "autorestart=false restarted: {:?}",
        f.info("once")
    );
    assert_eq!(f.info("once").restarts, 0);
}

#[test]
fn restart_gives_a_new_pid_and_unknown_names_change_nothing() {
    let dir = TestDir::new("restart");
    let a = sleeper(&dir, "a");
    let b = sleeper(&dir, "b");
    let f = Fild::start(
        &dir,
        &(prog(&dir, "a", &a, "startsecs=1") + &prog(&dir, "b", &b, "autostart=false")),
    );
    let old = f.wait_state("a", ProcessState::Running, T).pid as i32;

    let out = f.filc_ok(&["restart", "a"]);
    assert!(out.contains("a: restarted"), "{out}");
    let i = f.info("a");
    assert_eq!(i.state, ProcessState::Running);
    let new = i.pid as i32;
    assert_ne!(new, old);
    assert!(alive(new));
    assert!(!alive(old));

    for (verb, known) in [("stop", "a"), ("start", "b")] {
        let out = f.filc(&[verb, known, "nosuch"]);
        assert_eq!(out.status.code(), Some(1), "filc {verb} {known} nosuch");
        let err = stderr_of(&out);
        assert!(
            err.contains("no such process") && err.contains("nosuch"),
            "filc {verb}: stderr {err:?}, stdout {:?}",
            stdout_of(&out)
        );
        let out = f.filc(&[verb, "nosuch"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr_of(&out).contains("nosuch"), "{}", stderr_of(&out));
    }
    // Nothing changed: a still runs with the same pid, b was never started.
    let ai = f.info("a");
    assert_eq!(ai.state, ProcessState::Running);
    assert_eq!(ai.pid as i32, new);
    let bi = f.info("b");
    assert_eq!(bi.state, ProcessState::Stopped);
    assert_eq!(count(&dir.join("b.count")), 0);
}

#[test]
fn signal_delivers_to_the_program() {
    let dir = TestDir::new("signal");
    let d = dir.path().display();
    let s = dir.script(
        "h.sh",
        &format!("trap 'echo hup >> {d}/hup.marker' HUP\nwhile :; do sleep 0.1; done"),
    );
    let f = Fild::start(&dir, &prog(&dir, "h", &s, "startsecs=1"));
    let pid = f.wait_state("h", ProcessState::Running, T).pid;

    let out = f.filc_ok(&["signal", "HUP", "h"]);
    assert!(out.contains("h: "), "{out}");
    assert!(
        wait_until(T, || dir.join("hup.marker").exists()),
        "HUP not delivered"
    );
    let i = f.info("h");
    assert_eq!(i.state, ProcessState::Running);
    assert_eq!(i.pid, pid);
}

#[test]
fn pid_prints_process_and_daemon_pids() {
    let dir = TestDir::new("pid");
    let a = sleeper(&dir, "a");
    let b = sleeper(&dir, "b");
    let f = Fild::start(
        &dir,
        &(prog(&dir, "a", &a, "startsecs=1") + &prog(&dir, "b", &b, "autostart=false")),
    );
    let pid = f.wait_state("a", ProcessState::Running, T).pid;
    assert_eq!(f.filc_ok(&["pid", "a"]).trim(), pid.to_string());
    assert_eq!(f.filc_ok(&["pid", "b"]).trim(), "0");
    assert_eq!(f.filc_ok(&["pid"]).trim(), f.pid().to_string());
}

#[test]
fn group_members_answer_to_plain_name_and_group_wildcard() {
    let dir = TestDir::new("group");
    let m1 = sleeper(&dir, "m1");
    let m2 = sleeper(&dir, "m2");
    let f = Fild::start(
        &dir,
        &("[group:g]\nprograms=m1,m2\n\n".to_string()
            + &prog(&dir, "m1", &m1, "autostart=false\nstartsecs=1")
            + &prog(&dir, "m2", &m2, "autostart=false\nstartsecs=1")),
    );
    assert_eq!(f.info("m1").group, "g");

    let out = f.filc_ok(&["start", "m1"]);
    assert!(out.contains("m1: started"), "{out}");
    assert_eq!(f.state("m1"), ProcessState::Running);
    assert_eq!(f.state("m2"), ProcessState::Stopped);

    let out = f.filc_ok(&["start", "g:*"]);
    assert!(out.contains("m2: started"), "{out}");
    assert_eq!(f.state("m1"), ProcessState::Running);
    assert_eq!(f.state("m2"), ProcessState::Running);

    f.filc_ok(&["stop", "g:m1"]);
    assert_eq!(f.state("m1"), ProcessState::Stopped);
    assert_eq!(f.state("m2"), ProcessState::Running);

    f.filc_ok(&["stop", "g:*"]);
    assert_eq!(f.state("m1"), ProcessState::Stopped);
    assert_eq!(f.state("m2"), ProcessState::Stopped);
}

#[test]
fn environment_directory_and_relative_command() {
    let dir = TestDir::new("env");
    dir.script(
        "work/env.sh",
        "echo \"FOO=$FOO\" > out\necho \"BAR=$BAR\" >> out\necho \"NAME=$SUPERVISOR_PROCESS_NAME\" >> out\npwd -P >> out\nexec sleep 1000",
    );
    let conf = format!(
        "[program:envy]\ncommand=./env.sh\ndirectory={d}/work\nenvironment=FOO=\"a,b c\",BAR=plain\nstdout_logfile={d}/envy.out\nstderr_logfile={d}/envy.err\nstartsecs=1\n",
        d = dir.path().display()
    );
    let f = Fild::start(&dir, &conf);
    let pid = f.wait_state("envy", ProcessState::Running, T).pid;
    let work = dir.join("work").canonicalize().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        work
    );
    let out = std::fs::read_to_string(work.join("out")).unwrap();
    assert_eq!(
        out,
        format!("FOO=a,b c\nBAR=plain\nNAME=envy\n{}\n", work.display())
    );
}
