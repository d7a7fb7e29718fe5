//! The quorum guard, rolling restarts, liveness restarts and defrag/NOSPACE recovery against
//! real three-member clusters.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::etcd::*;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(60);
const MEMBERS: [&str; 3] = ["etcd-0", "etcd-1", "etcd-2"];

/// Start members and gateway and wait until `filc etcd status` says healthy.
fn up(c: &Cluster) {
    c.start_all();
    c.wait_healthy(UP);
    c.wait_status_healthy(UP);
}

/// `filc etcd status --json`, parsed.
fn status_json(c: &Cluster) -> serde_json::Value {
    let o = c.fild().filc(&["etcd", "status", "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// The program of the current leader.
fn leader_program(c: &Cluster) -> String {
    let mut found = None;
    assert!(
        wait_until(UP, || {
            let v = status_json(c);
            found = v["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["leader"] == true)
                .and_then(|m| m["program"].as_str().map(String::from));
            found.is_some()
        }),
        "no leader"
    );
    found.unwrap()
}

/// Member IDs as the cluster lists them (sorted), asked through a running member.
fn member_ids(c: &Cluster) -> Vec<String> {
    for n in 0..3 {
        let o = c.etcdctl(&c.endpoint(n), &["member", "list"]);
        if o.status.success() {
            let mut ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.to_string())
                .collect();
            ids.sort();
            return ids;
        }
    }
    panic!("no member answers member list");
}

/// Everything a refusal must leave alone: states, pids, member IDs, data dirs.
fn snapshot(c: &Cluster) -> (Vec<(ProcessState, u32)>, Vec<String>, Vec<String>) {
    let procs = MEMBERS
        .iter()
        .map(|m| {
            let i = c.fild().info(m);
            (i.state, i.pid)
        })
        .collect();
    let mut dirs: Vec<String> = std::fs::read_dir(&c.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    (procs, member_ids(c), dirs)
}

/// Whether a member serves clients (`/version` answers only once etcd is ready; unlike
/// `/health` it does not depend on a leader).
fn serving(c: &Cluster, n: usize) -> bool {
    http_get(&c.endpoint(n), "/version").is_some_and(|b| b.contains("etcdserver"))
}

#[test]
fn guard_refuses_stop_below_quorum_and_force_overrides() {
    let c = Cluster::new("guardstop");
    up(&c);
    let f = c.fild();
    assert!(c.put(&c.endpoint(0), "guard/k", "v1"));

    // One of three may go: two stay, quorum 2.
    f.filc_ok(&["stop", "etcd-2"]);
    f.wait_state("etcd-2", ProcessState::Stopped, UP);
    assert!(wait_until(UP, || c.healthy(0) && c.healthy(1)));

    // A second may not: stop, restart, and wildcards naming it are refused; nothing changes.
    let before = snapshot(&c);
    for args in [
        &["stop", "etcd-1"][..],
        &["restart", "etcd-1"][..],
        &["stop", "etcd:*"][..],
        &["stop", "all"][..],
        &["stop", "etcd"][..],
    ] {
        let o = f.filc(args);
        let out = text(&o);
        eprintln!("filc {args:?}:\n{out}");
        assert_eq!(code(&o), 1, "filc {args:?} should be refused: {out}");
        assert!(out.contains("refused"), "{args:?}: {out}");
        assert!(out.contains("below quorum 2"), "{args:?}: {out}");
        assert!(out.contains("--force"), "{args:?}: {out}");
        assert_eq!(snapshot(&c), before, "filc {args:?} changed something");
    }
    assert_eq!(before.0[0].0, ProcessState::Running);
    assert_eq!(before.0[1].0, ProcessState::Running);
    // Non-members are never affected by the guard.
    let gw = f.info("etcd-gw").pid;
    f.filc_ok(&["restart", "etcd-gw"]);
    assert_ne!(f.info("etcd-gw").pid, gw);
    // Stopping a member that is already down costs nothing.
    f.filc_ok(&["stop", "etcd-2"]);
    assert_eq!(snapshot(&c), before);

    // --force does it anyway.
    let out = f.filc_ok(&["stop", "--force", "etcd-1"]);
    assert!(out.contains("etcd-1: stopped"), "{out}");
    assert_eq!(f.state("etcd-1"), ProcessState::Stopped);
    assert_eq!(f.state("etcd-0"), ProcessState::Running);

    // Back up: every member still holds the key.
    f.filc_ok(&["start", "etcd:*"]);
    c.wait_healthy(UP);
    for n in 0..3 {
        c.wait_value(n, "guard/k", "v1", UP);
    }
}

#[test]
fn restart_of_members_is_rolling_leader_last() {
    let c = Cluster::new("guardroll");
    up(&c);
    let f = c.fild();
    for i in 0..5 {
        assert!(c.put(&c.endpoint(i % 3), &format!("roll/{i}"), &format!("v{i}")));
    }
    let before: Vec<u32> = MEMBERS.iter().map(|m| f.info(m).pid).collect();
    let gw_before = f.info("etcd-gw").pid;
    let leader = leader_program(&c);

    // Watch every member while the restart runs: never two down at once.
    let stop = Arc::new(AtomicBool::new(false));
    let max_down = Arc::new(AtomicUsize::new(0));
    let seen_down = Arc::new(AtomicUsize::new(0));
    let eps: Vec<String> = (0..3).map(|n| c.endpoint(n)).collect();
    let watcher = {
        let (stop, max_down, seen_down) = (stop.clone(), max_down.clone(), seen_down.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let down = eps
                    .iter()
                    .filter(|ep| {
                        !http_get(ep, "/version").is_some_and(|b| b.contains("etcdserver"))
                    })
                    .count();
                if down > 0 {
                    seen_down.fetch_add(1, Ordering::SeqCst);
                }
                max_down.fetch_max(down, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Each step is printed as it happens: when the first member's line arrives, another
    // member still runs its old process.
    let mut child = std::process::Command::new(FILC)
        .arg("-c")
        .arg(&f.config)
        .args(["restart", "etcd:*", "etcd-gw"])
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut old_left_at_first = None;
    use std::io::BufRead;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if old_left_at_first.is_none() && MEMBERS.iter().any(|m| line == format!("{m}: restarted"))
        {
            old_left_at_first = Some(
                MEMBERS
                    .iter()
                    .zip(&before)
                    .filter(|(m, pid)| f.info(m).pid == **pid)
                    .count(),
            );
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let out = lines.join("\n");
    assert!(status.success(), "{out}");
    assert!(old_left_at_first.is_some_and(|n| n >= 1), "{out}");
    for p in MEMBERS.iter().chain(["etcd-gw"].iter()) {
        let n = lines
            .iter()
            .filter(|l| **l == format!("{p}: restarted"))
            .count();
        assert_eq!(n, 1, "{p}: {out}");
    }
    // In the order it happened: the gateway first (not a member), the leader last.
    let at = |p: &str| {
        lines
            .iter()
            .position(|l| *l == format!("{p}: restarted"))
            .unwrap()
    };
    for m in MEMBERS.iter().filter(|m| **m != leader) {
        assert!(at("etcd-gw") < at(m) && at(m) < at(&leader), "{out}");
    }
    assert!(out.contains("plan 3/3: restart"), "{out}");
    assert!(out.contains("step 3/3: done"), "{out}");
    assert!(
        seen_down.load(Ordering::SeqCst) > 0,
        "never saw a member down"
    );
    assert_eq!(
        max_down.load(Ordering::SeqCst),
        1,
        "two members were down at once during the rolling restart"
    );

    let after: Vec<_> = MEMBERS.iter().map(|m| f.info(m)).collect();
    for (i, a) in after.iter().enumerate() {
        assert_eq!(a.state, ProcessState::Running);
        assert_ne!(a.pid, before[i], "{} was not restarted", a.name);
    }
    assert_ne!(f.info("etcd-gw").pid, gw_before);
    let leader_start = after.iter().find(|a| a.name == leader).unwrap().start_unix;
    for a in after.iter().filter(|a| a.name != leader) {
        assert!(
            a.start_unix < leader_start,
            "leader {leader} (start {leader_start}) was not restarted last: {} started {}",
            a.name,
            a.start_unix
        );
    }
    c.wait_healthy(UP);
    for n in 0..3 {
        assert!(serving(&c, n));
        for i in 0..5 {
            c.wait_value(n, &format!("roll/{i}"), &format!("v{i}"), UP);
        }
    }
}

/// SIGKILLs a pid on drop if it is still a stopped process (the SIGSTOPped member).
struct KillIfStopped(i32);

impl Drop for KillIfStopped {
    fn drop(&mut self) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
        if state == Some('T') {
            signal(self.0, libc::SIGKILL);
        }
    }
}

/// Add `key=value` under `[etcd]` in the copied fild.ini (appending the section if needed).
fn set_etcd_option(c: &Cluster, key: &str, value: &str) {
    let path = c.config();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.trim() == "[etcd]" {
            out.push_str(&format!("{key}={value}\n"));
            done = true;
        }
    }
    if !done {
        out.push_str(&format!("\n[etcd]\n{key}={value}\n"));
    }
    std::fs::write(&path, out).unwrap();
}

#[test]
fn liveness_restarts_a_stopped_member() {
    let mut c = Cluster::new("guardlive");
    set_etcd_option(&c, "liveness_window", "3s");
    c.fild_mut().terminate();
    c.start_fild();
    up(&c);
    assert!(c.put(&c.endpoint(0), "live/k", "v1"));
    let f = c.fild();
    let before: Vec<u32> = MEMBERS.iter().map(|m| f.info(m).pid).collect();
    let victim = before[1] as i32;
    let _cleanup = KillIfStopped(victim);
    signal(victim, libc::SIGSTOP);

    let mut last = None;
    let restarted = wait_until(Duration::from_secs(45), || {
        let i = f.info("etcd-1");
        let ok = i.pid != before[1] && i.pid != 0 && i.state == ProcessState::Running;
        last = Some(i);
        ok
    });
    assert!(restarted, "etcd-1 was not restarted: {last:?}");
    c.wait_healthy(UP);
    c.wait_value(1, "live/k", "v1", UP);
    assert!(!alive(victim), "the stopped process is still there");
    // Only the hung member was restarted.
    assert_eq!(f.info("etcd-0").pid, before[0]);
    assert_eq!(f.info("etcd-2").pid, before[2]);
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap_or_default();
    assert!(
        log.contains("liveness"),
        "no liveness restart logged:\n{log}"
    );
    for l in log
        .lines()
        .filter(|l| l.contains("etcd::guard") || l.contains("etcd-1"))
    {
        eprintln!("{l}");
    }
    // And it stays that way: healthy members are left alone.
    assert!(c.put(&c.endpoint(1), "live/k2", "v2"));
    std::thread::sleep(Duration::from_secs(5));
    let now: Vec<u32> = MEMBERS.iter().map(|m| f.info(m).pid).collect();
    assert_eq!(now[0], before[0]);
    assert_eq!(now[2], before[2]);
    assert_eq!(f.info("etcd-1").restarts, 0);
}

/// A tokio runtime for direct etcd writes (etcdctl per key is too slow to grow a DB).
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn db_sizes(c: &Cluster) -> Vec<i64> {
    status_json(c)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["db_size"].as_i64().unwrap_or(0))
        .collect()
}

#[test]
fn defrag_compacts_and_shrinks_every_member() {
    let c = Cluster::new("guarddefrag");
    up(&c);
    assert!(c.put(&c.endpoint(0), "keep/k", "v1"));
    let url = format!("http://{}", c.endpoint(0));
    rt().block_on(async {
        let mut e = etcd_client::Client::connect([url], None).await.unwrap();
        let big = "x".repeat(20_000);
        for round in 0..3 {
            for i in 0..100 {
                e.put(format!("junk/{i}"), format!("{round}{big}"), None)
                    .await
                    .unwrap();
            }
        }
        e.delete(
            "junk/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    });
    let before = db_sizes(&c);
    assert!(before.iter().all(|s| *s > 3_000_000), "{before:?}");

    let o = c.fild().filc(&["etcd", "defrag"]);
    let out = text(&o);
    eprintln!("filc etcd defrag:\n{out}");
    assert_eq!(code(&o), 0, "{out}");
    for want in [
        "compacted to revision",
        "defragmenting boot0",
        "defragmented boot1",
        "->",
        "no alarm raised",
        "a test write succeeded",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    // The leader was defragmented last.
    let last = out
        .lines()
        .rfind(|l| l.starts_with("defragmented "))
        .unwrap();
    assert!(last.contains("leader"), "{out}");

    let after = db_sizes(&c);
    for (b, a) in before.iter().zip(&after) {
        assert!(a * 2 < *b, "db did not shrink: {before:?} -> {after:?}");
    }
    c.wait_healthy(UP);
    for n in 0..3 {
        c.wait_value(n, "keep/k", "v1", UP);
    }
    assert_eq!(code(&c.fild().filc(&["etcd", "status"])), 0);
}

#[test]
fn nospace_shows_in_status_and_defrag_recovers() {
    let mut c = Cluster::new("guardnospace");
    c.env.push((
        "ETCD_QUOTA_BACKEND_BYTES".to_string(),
        (2 * 1024 * 1024).to_string(),
    ));
    c.fild_mut().terminate();
    c.start_fild();
    up(&c);
    assert!(c.put(&c.endpoint(0), "keep/k", "v1"));

    // Fill until etcd raises NOSPACE.
    let url = format!("http://{}", c.endpoint(0));
    let err = rt().block_on(async {
        let mut e = etcd_client::Client::connect([url], None).await.unwrap();
        let big = "x".repeat(100_000);
        for i in 0..200 {
            if let Err(err) = e.put(format!("fill/{i}"), big.clone(), None).await {
                return err.to_string();
            }
        }
        "no error after 20 MB".to_string()
    });
    assert!(err.contains("database space exceeded"), "{err}");

    let mut o = c.fild().filc(&["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = c.fild().filc(&["etcd", "status"]);
            text(&o).contains("NOSPACE")
        }),
        "{}",
        text(&o)
    );
    // All three members still serve: an alarm degrades the cluster, it does not end quorum.
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("degraded"), "{}", text(&o));
    assert!(
        !c.put(&c.endpoint(1), "nospace/k", "v"),
        "put works under NOSPACE"
    );

    // A member may be stopped under NOSPACE only while quorum holds: the guard still counts
    // alarmed members (whose /health is false) as up.
    let o = c.fild().filc(&["stop", "etcd:*"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("below quorum"), "{}", text(&o));

    // Deletes are allowed under NOSPACE; then defrag reclaims the space and disarms.
    let o = c.etcdctl(&c.endpoint(0), &["del", "--prefix", "fill/"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = c.fild().filc(&["etcd", "defrag"]);
    let out = text(&o);
    eprintln!("filc etcd defrag:\n{out}");
    assert_eq!(code(&o), 0, "{out}");
    assert!(out.contains("disarmed the NOSPACE alarm"), "{out}");
    assert!(out.contains("a test write succeeded"), "{out}");
    // Right after the defrag the members may still settle: a put goes through within UP.
    assert!(wait_until(UP, || c.put(&c.endpoint(1), "nospace/k", "v")));
    let mut o = c.fild().filc(&["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = c.fild().filc(&["etcd", "status"]);
            code(&o) == 0
        }),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("NOSPACE"), "{}", text(&o));
    for n in 0..3 {
        c.wait_value(n, "keep/k", "v1", UP);
        c.wait_value(n, "nospace/k", "v", UP);
    }
}

#[test]
fn reload_refuses_to_remove_a_member_below_quorum_unless_forced() {
    let c = Cluster::up("guardreload");
    up(&c);
    // The runbook's mode one: etcd-1 is down, and etcd-0's program file is taken away.
    c.fild().filc_ok(&["stop", "--force", "etcd-1"]);
    assert!(wait_until(UP, || !c.healthy(1)));
    let pid0 = c.pid("etcd-0");
    std::fs::remove_file(c.root.join("etc/fild/apps/etcd-0.ini")).unwrap();

    let o = c.fild().filc(&["reload"]);
    let t = text(&o);
    assert_eq!(code(&o), 1, "{t}");
    assert!(t.contains("below quorum"), "{t}");
    assert!(t.contains("etcd-0"), "{t}");
    assert!(t.contains("filc reload --force"), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");
    assert_eq!(c.pid("etcd-0"), pid0, "the refused reload touched etcd-0");
    assert!(c.healthy(0));

    // SIGHUP (and the unit's ExecReload) take the same path, and say so in the log.
    signal(c.fild().pid(), libc::SIGHUP);
    let log = c.root.join("var/log/fild.log");
    assert!(
        wait_until(UP, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("SIGHUP reload refused")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(c.pid("etcd-0"), pid0, "the refused SIGHUP touched etcd-0");

    // Forced, it goes through.
    let o = c.fild().filc(&["reload", "--force"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("etcd-0"), "{}", text(&o));
    assert!(wait_until(UP, || !c.healthy(0)));
    let st = c.fild().filc(&["status"]);
    assert!(!text(&st).contains("etcd-0 "), "{}", text(&st));
}

#[test]
fn a_signal_to_members_passes_the_quorum_guard() {
    let c = Cluster::up("guardsignal");
    up(&c);
    c.fild().filc_ok(&["stop", "--force", "etcd-1"]);
    assert!(wait_until(UP, || !c.healthy(1)));
    let pid0 = c.pid("etcd-0");

    // etcd ends on a signal it does not handle: refused like a stop below quorum.
    let o = c.fild().filc(&["signal", "KILL", "etcd-0"]);
    let t = text(&o);
    assert_eq!(code(&o), 1, "{t}");
    assert!(t.contains("below quorum"), "{t}");
    assert!(t.contains("sending KILL to etcd-0"), "{t}");
    assert_eq!(c.pid("etcd-0"), pid0);
    assert!(c.healthy(0));
    // Not a member, or a signal that only resumes: straight through.
    c.fild().filc_ok(&["signal", "CONT", "etcd-0"]);
    c.fild().filc_ok(&["signal", "HUP", "etcd-gw"]);
    assert_eq!(c.pid("etcd-0"), pid0);

    // Forced, it is sent (and fild restarts the member).
    let o = c.fild().filc(&["signal", "--force", "KILL", "etcd-0"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("sent SIGKILL"), "{}", text(&o));
    c.fild().wait_new_pid("etcd-0", pid0, UP);
}

/// The members' "Signalling." and "Exited." events in fild's log after `from` bytes of it.
fn stop_events(c: &Cluster, from: usize) -> Vec<(&'static str, String)> {
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap_or_default();
    log[from.min(log.len())..]
        .lines()
        .filter_map(|l| {
            let kind = ["Signalling.", "Exited."]
                .into_iter()
                .find(|k| l.contains(k))?;
            let m = MEMBERS
                .iter()
                .find(|m| l.contains(&format!("program={m} ")))?;
            Some((kind, m.to_string()))
        })
        .collect()
}

/// The leader was signalled only once both followers had exited.
fn assert_leader_last(c: &Cluster, from: usize, leader: &str) {
    let ev = stop_events(c, from);
    let pos = |kind: &str, m: &str| ev.iter().position(|(k, p)| *k == kind && p == m);
    let signalled = pos("Signalling.", leader).unwrap_or_else(|| panic!("{ev:?}"));
    for f in MEMBERS.iter().filter(|m| **m != leader) {
        let exited = pos("Exited.", f).unwrap_or_else(|| panic!("{f}: {ev:?}"));
        assert!(
            exited < signalled,
            "{leader} signalled before {f} exited: {ev:?}"
        );
    }
}

fn log_len(c: &Cluster) -> usize {
    std::fs::metadata(c.root.join("var/log/fild.log")).map_or(0, |m| m.len() as usize)
}

#[test]
fn several_members_stop_followers_first_and_the_leader_last() {
    let mut c = Cluster::new("guardstoporder");
    up(&c);
    // Stopped together, the leader hands leadership to members that are exiting and stalls:
    // `filc stop` of several members stops the leader after the others.
    let leader = leader_program(&c);
    let at = log_len(&c);
    c.fild().filc_ok(&["stop", "--force", "etcd:*"]);
    assert_leader_last(&c, at, &leader);

    // So does a shutdown (SIGTERM, `filc shutdown`, systemd's stop).
    c.start_all();
    up(&c);
    let leader = leader_program(&c);
    let at = log_len(&c);
    assert!(c.fild_mut().terminate().is_some_and(|s| s.success()));
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap();
    assert!(
        log[at..].contains("Shutdown: stopping these after the others."),
        "{}",
        &log[at..]
    );
    assert_leader_last(&c, at, &leader);
}
