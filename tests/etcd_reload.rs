//! Reload with changed etcd members on a single-host deployment: a rolling reload, one member
//! at a time, writes acknowledged throughout; a changed member that cannot start stops it.
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::etcd::*;
use common::*;
use fild::api::{ProcessInfo, ProcessState};

const UP: Duration = Duration::from_secs(60);
const MEMBERS: [&str; 3] = ["etcd-0", "etcd-1", "etcd-2"];

/// Start members and gateway and wait until `filc etcd status` says healthy.
fn up(c: &Cluster) {
    c.start_all();
    c.wait_healthy(UP);
    c.wait_status_healthy(UP);
}

/// Put `environment=VARS` under `[supervisord]` (replacing one set before): every program's
/// environment changes, so every member and the gateway are changed for a reload.
fn set_daemon_env(c: &Cluster, vars: &str) {
    let path = c.config();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("environment=ROLL_") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.trim() == "[supervisord]" {
            out.push_str(&format!("environment={vars}\n"));
        }
    }
    std::fs::write(&path, out).unwrap();
}

/// The program of the current leader, from `filc etcd status --json`.
fn leader_program(c: &Cluster) -> String {
    let mut found = None;
    assert!(
        wait_until(UP, || {
            let o = c.fild().filc(&["etcd", "status", "--json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            found = v["members"].as_array().and_then(|ms| {
                ms.iter()
                    .find(|m| m["leader"] == true)
                    .and_then(|m| m["program"].as_str().map(String::from))
            });
            found.is_some()
        }),
        "no leader"
    );
    found.unwrap()
}

fn pids(c: &Cluster) -> Vec<i32> {
    MEMBERS.iter().map(|m| c.pid(m)).collect()
}

/// While it runs: writes through every member's endpoint (etcdctl fails over between them),
/// and samples of `filc status --json` and of each member's `/version`.
struct Watch {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    /// The most members seen not RUNNING (in fild's status) in one sample.
    max_not_running: Arc<AtomicUsize>,
    /// The most members seen not serving clients in one sample.
    max_down: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(c: &Cluster) -> Watch {
        let w = Watch {
            stop: Arc::new(AtomicBool::new(false)),
            acked: Arc::new(AtomicUsize::new(0)),
            failed: Arc::default(),
            max_not_running: Arc::new(AtomicUsize::new(0)),
            max_down: Arc::new(AtomicUsize::new(0)),
            samples: Arc::new(AtomicUsize::new(0)),
            threads: Vec::new(),
        };
        let endpoints: Vec<String> = (0..3).map(|n| c.endpoint(n)).collect();
        let all = endpoints.join(",");
        let writer = {
            let (stop, acked, failed) = (w.stop.clone(), w.acked.clone(), w.failed.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let o = Command::new("etcdctl")
                        .env("ETCDCTL_API", "3")
                        .arg(format!("--endpoints={all}"))
                        .arg("--command-timeout=10s")
                        .args(["put", &format!("rollw/{i}"), &format!("v{i}")])
                        .output()
                        .expect("run etcdctl");
                    if o.status.success() {
                        acked.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.lock().unwrap().push(format!(
                            "rollw/{i}: {}",
                            String::from_utf8_lossy(&o.stderr).trim()
                        ));
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let (config, env) = (c.fild().config.clone(), c.fild().env.clone());
        let sampler = {
            let (stop, max_nr, max_down, samples) = (
                w.stop.clone(),
                w.max_not_running.clone(),
                w.max_down.clone(),
                w.samples.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let o = Command::new(FILC)
                        .arg("-c")
                        .arg(&config)
                        .args(["status", "--json"])
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .stdin(Stdio::null())
                        .output()
                        .unwrap();
                    if let Ok(st) = serde_json::from_slice::<Vec<ProcessInfo>>(&o.stdout) {
                        let n = st
                            .iter()
                            .filter(|p| MEMBERS.contains(&p.name.as_str()))
                            .filter(|p| p.state != ProcessState::Running)
                            .count();
                        max_nr.fetch_max(n, Ordering::SeqCst);
                        samples.fetch_add(1, Ordering::SeqCst);
                    }
                    let down = endpoints
                        .iter()
                        .filter(|ep| {
                            !http_get(ep, "/version").is_some_and(|b| b.contains("etcdserver"))
                        })
                        .count();
                    max_down.fetch_max(down, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Watch {
            threads: vec![writer, sampler],
            ..w
        }
    }

    /// Stop watching; (acknowledged writes, failed writes).
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        let failed = self.failed.lock().unwrap().clone();
        (self.acked.load(Ordering::SeqCst), failed)
    }
}

#[test]
fn a_reload_that_changes_every_member_rolls_them_one_at_a_time() {
    let c = Cluster::new("rollall");
    up(&c);
    let f = c.fild();
    let before = pids(&c);
    let gw_before = c.pid("etcd-gw");
    let leader = leader_program(&c);

    // Every program changes: the gateway at once, the members one at a time.
    set_daemon_env(&c, "ROLL_ONE=1");
    let watch = Watch::start(&c);
    let started = Instant::now();
    let o = f.filc(&["reload"]);
    let took = started.elapsed();
    let max_nr = watch.max_not_running.load(Ordering::SeqCst);
    let max_down = watch.max_down.load(Ordering::SeqCst);
    let samples = watch.samples.load(Ordering::SeqCst);
    let (acked, failed) = watch.finish();
    let out = text(&o);
    eprintln!(
        "rolling reload took {took:?}; {acked} writes acknowledged, {} failed; {samples} status samples",
        failed.len()
    );
    eprintln!("{out}");
    assert_eq!(code(&o), 0, "{out}");
    assert!(out.contains("Rolling: etcd-0, etcd-1, etcd-2"), "{out}");
    assert!(out.contains("step 3/3: done"), "{out}");
    assert!(
        out.contains("has caught up (its raft applied index"),
        "{out}"
    );
    assert!(
        out.contains("waiting until every voting member is healthy"),
        "{out}"
    );
    assert!(
        failed.is_empty(),
        "writes failed during the roll: {failed:?}"
    );
    assert!(acked >= 10, "only {acked} writes in {took:?}");
    assert!(samples >= 10, "only {samples} status samples");
    assert_eq!(
        max_nr, 1,
        "members not RUNNING at once (0: never saw one restart)"
    );
    assert_eq!(max_down, 1, "members not serving at once");

    let after: Vec<ProcessInfo> = MEMBERS.iter().map(|m| f.info(m)).collect();
    for (i, a) in after.iter().enumerate() {
        assert_eq!(a.state, ProcessState::Running, "{out}");
        assert_ne!(
            a.pid as i32, before[i],
            "{} was not restarted: {out}",
            a.name
        );
    }
    // In the order they rolled: the lines say each member's restart, the leader's last.
    let at = |p: &str| {
        out.lines()
            .position(|l| l == format!("{p}: restarted"))
            .unwrap_or_else(|| panic!("no restart of {p}: {out}"))
    };
    for m in MEMBERS.iter().filter(|m| **m != leader) {
        assert!(at(m) < at(&leader), "{leader} not last: {out}");
    }
    let leader_start = after.iter().find(|a| a.name == leader).unwrap().start_unix;
    let gw = f.info("etcd-gw");
    assert_ne!(gw.pid as i32, gw_before, "the gateway was not restarted");
    for a in after.iter().filter(|a| a.name != leader) {
        assert!(a.start_unix < leader_start, "{} after the leader", a.name);
        // Applied at once: the gateway restarted no later than the first member.
        assert!(gw.start_unix <= a.start_unix, "gateway after {}", a.name);
    }
    c.wait_status_healthy(UP);

    // --no-wait: back as soon as the roll has started, with the ID to follow.
    let before = pids(&c);
    set_daemon_env(&c, "ROLL_ONE=2");
    let o = f.filc(&["reload", "--no-wait"]);
    let out = text(&o);
    assert_eq!(code(&o), 0, "{out}");
    let old_left = pids(&c).iter().zip(&before).filter(|(a, b)| a == b).count();
    assert!(
        old_left >= 2,
        "--no-wait returned after the roll had gone on: {out}"
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("follow it: filc etcd ops --follow "))
        .unwrap_or_else(|| panic!("no ID: {out}"))
        .trim()
        .to_string();
    let o = f.filc(&["etcd", "ops", "--follow", &id]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let after = pids(&c);
    for i in 0..3 {
        assert_ne!(after[i], before[i], "{} not restarted", MEMBERS[i]);
    }

    // SIGHUP takes the same path and says so in fild's log.
    let before = pids(&c);
    set_daemon_env(&c, "ROLL_ONE=3");
    signal(f.pid(), libc::SIGHUP);
    let log = c.root.join("var/log/fild.log");
    assert!(
        wait_until(UP, || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("SIGHUP reload: these restart one at a time")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        wait_until(Duration::from_secs(120), || {
            let now = pids(&c);
            (0..3).all(|i| now[i] != before[i] && now[i] != 0)
        }),
        "SIGHUP did not roll every member"
    );
    c.wait_status_healthy(UP);
}

#[test]
fn a_changed_member_that_cannot_start_stops_the_roll() {
    let c = Cluster::new("rollfail");
    up(&c);
    let f = c.fild();
    let leader = leader_program(&c);
    // The first member the roll takes: the first follower.
    let broken = MEMBERS.iter().find(|m| **m != leader).unwrap().to_string();
    let before = pids(&c);

    set_daemon_env(&c, "ROLL_TWO=1");
    let ini = c.root.join(&format!("etc/fild/apps/{broken}.ini"));
    let shipped = std::fs::read_to_string(&ini).unwrap();
    let env_line = shipped
        .lines()
        .find(|l| l.starts_with("environment="))
        .unwrap()
        .to_string();
    std::fs::write(
        &ini,
        shipped.replace(
            &env_line,
            &format!("{env_line},ETCD_EXTRA_FLAGS=\"--no-such-flag\""),
        ),
    )
    .unwrap();

    let o = f.filc(&["reload"]);
    let out = text(&o);
    eprintln!("{out}");
    assert_ne!(code(&o), 0, "{out}");
    assert!(out.contains(&format!("{broken} did not start")), "{out}");
    assert!(out.contains("still on their old settings"), "{out}");
    let now = pids(&c);
    for (i, m) in MEMBERS.iter().enumerate() {
        if *m != broken {
            assert_eq!(
                now[i], before[i],
                "{m} was restarted after the roll stopped"
            );
        }
    }
    let healthy = (0..3).filter(|n| c.healthy(*n)).count();
    assert!(
        healthy >= 2,
        "{healthy} of 3 healthy after the stopped roll"
    );

    // Fixed, a second reload finishes the roll: the broken one first, then the rest.
    std::fs::write(&ini, &shipped).unwrap();
    let o = f.filc(&["reload"]);
    let out = text(&o);
    assert_eq!(code(&o), 0, "{out}");
    assert!(out.contains("step 3/3: done"), "{out}");
    let after = pids(&c);
    for i in 0..3 {
        assert_ne!(after[i], before[i], "{} not restarted: {out}", MEMBERS[i]);
        assert_eq!(f.state(MEMBERS[i]), ProcessState::Running);
    }
    c.wait_healthy(UP);
    c.wait_status_healthy(UP);
    // Nothing left changed: a third reload has nothing to roll.
    let o = f.filc(&["reload"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(!text(&o).contains("Rolling:"), "{}", text(&o));
}
