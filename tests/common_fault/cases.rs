//! The fault cases. Each one injects its faults under a write load, then ends with
//! [`check`]: every acknowledged write read back from every member through its own endpoint,
//! and hash_kv equal at one revision; then it emits its figures ([`Report`]).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fild::api::ProcessState;

use super::*;
use crate::common::etcd::{Slot, require_etcd};
use crate::common::hosts::{Host, start_host};

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A running single-host cluster (three members and the gateway), healthy.
fn cluster(name: &str, liveness: Option<&str>) -> Cluster {
    let mut c = Cluster::new(name);
    if let Some(w) = liveness {
        set_etcd_option(&c, "liveness_window", w);
        c.fild_mut().terminate();
        c.start_fild();
    }
    c.start_all();
    c.wait_healthy(UP);
    c
}

/// Stop the load, run the final check on the single-host cluster, the stray check, report.
fn finish(
    c: &Cluster,
    case: &str,
    t0: Instant,
    load: Load,
    faults: u64,
    inputs: u64,
    notes: String,
) {
    let prefix = load.prefix.clone();
    let res = load.finish();
    assert!(!res.acked.is_empty(), "{case}: no write was acknowledged");
    c.wait_healthy(UP);
    let checked = check(&members(c), None, &prefix, &res.acked);
    assert_no_strays(c.fild(), &cluster_markers(c));
    Report {
        case,
        faults,
        load: &res,
        checked: &checked,
        inputs,
        secs: t0.elapsed().as_secs(),
        notes,
    }
    .emit();
}

/// The write load of a single-host case, through the gateway, once it is going.
fn gateway_load(c: &Cluster, prefix: &str) -> Load {
    let load = Load::start(
        prefix,
        vec![c.gateway()],
        None,
        500_000,
        Duration::from_secs(600),
    );
    assert!(load.wait_progress(100, UP), "the load never got going");
    load
}

fn member_name(n: u64) -> String {
    format!("etcd-{n}")
}

// ----- 1. a random member SIGKILLed every few seconds ------------------------------------------

pub fn member_kills(case: &str, secs: u64) {
    let _s = serial();
    let t0 = Instant::now();
    let c = cluster(case, None);
    let mut rng = Rng::new(case);
    let load = Load::start(
        "fault/kill/",
        vec![c.gateway()],
        None,
        500_000,
        Duration::from_secs(secs + 300),
    );
    assert!(load.wait_progress(100, UP), "the load never got going");
    let end = Instant::now() + Duration::from_secs(secs);
    let mut faults = 0;
    let mut killed = [0u64; 3];
    while Instant::now() < end {
        c.wait_healthy(UP);
        sleep_ms(2000 + rng.below(2000));
        let n = rng.below(3);
        let name = member_name(n);
        let pid = c.pid(&name);
        if pid == 0 {
            continue;
        }
        signal(pid, libc::SIGKILL);
        faults += 1;
        killed[n as usize] += 1;
        wait_new_pid(c.fild(), &name, pid, UP);
    }
    c.wait_healthy(UP);
    assert!(
        load.wait_progress(100, UP),
        "writes did not resume after the kills"
    );
    finish(
        &c,
        case,
        t0,
        load,
        faults,
        0,
        format!("SIGKILLs per member {killed:?}"),
    );
}

// ----- 2. SIGKILL of fild under load, then a new fild ------------------------------------------

pub fn fild_kills(case: &str, rounds: u64) {
    let _s = serial();
    let t0 = Instant::now();
    let mut c = cluster(case, None);
    let load = gateway_load(&c, "fault/fild/");
    let mut faults = 0;
    for _ in 0..rounds {
        let old: Vec<i32> = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
            .iter()
            .map(|n| c.pid(n))
            .collect();
        let old_fild = c.fild().pid();
        c.fild_mut().kill9();
        faults += 1;
        // fild's guard takes its programs with it: nothing of the old fild lives on.
        assert!(
            wait_until(Duration::from_secs(30), || old.iter().all(|p| !alive(*p))),
            "programs of the killed fild {old_fild} still run: {:?}",
            old.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
        );
        drop(c.fild.take());
        c.start_fild();
        c.start_all();
        c.wait_healthy(UP);
        assert!(
            load.wait_progress(100, UP),
            "writes did not resume under the new fild"
        );
        assert_no_strays(c.fild(), &cluster_markers(&c));
    }
    finish(&c, case, t0, load, faults, 0, String::new());
}

// ----- 3. SIGKILL of the gateway under load ----------------------------------------------------

pub fn gateway_kills(case: &str, rounds: u64) {
    let _s = serial();
    let t0 = Instant::now();
    let c = cluster(case, None);
    let load = gateway_load(&c, "fault/gw/");
    let mut faults = 0;
    for _ in 0..rounds {
        let pid = c.pid("etcd-gw");
        signal(pid, libc::SIGKILL);
        faults += 1;
        wait_new_pid(c.fild(), "etcd-gw", pid, UP);
        assert!(
            load.wait_progress(100, UP),
            "clients did not carry on through the restarted gateway"
        );
    }
    finish(&c, case, t0, load, faults, 0, String::new());
}

// ----- 4. SIGSTOP of a member: the liveness check restarts it ----------------------------------

pub fn member_stops(case: &str, rounds: u64) {
    let _s = serial();
    let t0 = Instant::now();
    let c = cluster(case, Some("3s"));
    let mut rng = Rng::new(case);
    let load = gateway_load(&c, "fault/stop/");
    let mut faults = 0;
    let mut secs_to_restart = Vec::new();
    for _ in 0..rounds {
        c.wait_healthy(UP);
        let name = member_name(rng.below(3));
        let victim = c.pid(&name);
        let _cleanup = KillIfStopped(victim);
        signal(victim, libc::SIGSTOP);
        let at = Instant::now();
        faults += 1;
        wait_new_pid(c.fild(), &name, victim, UP);
        secs_to_restart.push(at.elapsed().as_secs());
        assert!(
            wait_until(Duration::from_secs(20), || !alive(victim)),
            "the hung {name} ({victim}) is still there"
        );
        c.wait_healthy(UP);
        assert!(
            load.wait_progress(100, UP),
            "writes did not carry on after the liveness restart"
        );
    }
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap_or_default();
    assert!(
        log.contains("liveness window"),
        "no liveness restart in fild.log"
    );
    finish(
        &c,
        case,
        t0,
        load,
        faults,
        0,
        format!(
            "liveness_window=3s; seconds from SIGSTOP to the new member running: {secs_to_restart:?}"
        ),
    );
}

// ----- 5. the log folder's filesystem full ----------------------------------------------------

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub fn log_disk_full(case: &str) {
    let _s = serial();
    let t0 = Instant::now();
    let mut c = Cluster::new(case);
    c.fild_mut().terminate();
    let logdir = c.root.join("var/log");
    let tmpfs = Tmpfs::mount(&logdir, "2m");
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);
    let mut rng = Rng::new(case);
    let load = gateway_load(&c, "fault/full/");

    // Fill the filesystem.
    let filler = logdir.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        for _ in 0..1024 {
            if f.write_all(&chunk).is_err() || f.flush().is_err() {
                break;
            }
        }
    }
    let full = Command::new("df").arg(&logdir).output().unwrap();
    eprintln!("[{case}] {}", String::from_utf8_lossy(&full.stdout));
    let mut faults = 1;

    // Still supervising on a full disk: a killed member comes back; members are not stalled
    // on their output pipes; writes go on.
    for _ in 0..2 {
        let name = member_name(rng.below(3));
        let pid = c.pid(&name);
        signal(pid, libc::SIGKILL);
        faults += 1;
        wait_new_pid(c.fild(), &name, pid, UP);
        c.wait_healthy(UP);
        assert!(
            load.wait_progress(100, UP),
            "writes stalled while the log disk was full"
        );
    }
    c.fild().filc_ok(&["status"]);

    // Space returns: log capture resumes.
    std::fs::remove_file(&filler).unwrap();
    let name = member_name(rng.below(3));
    let log = logdir.join(format!("{name}.stderr.log"));
    let fild_log = logdir.join("fild.log");
    let (before, fild_before) = (size(&log), size(&fild_log));
    let pid = c.pid(&name);
    signal(pid, libc::SIGKILL);
    faults += 1;
    wait_new_pid(c.fild(), &name, pid, UP);
    c.wait_healthy(UP);
    assert!(
        wait_until(UP, || size(&log) > before),
        "{name}'s log did not grow after space returned ({before} bytes)"
    );
    assert!(
        wait_until(UP, || size(&fild_log) > fild_before),
        "fild.log did not grow after space returned ({fild_before} bytes)"
    );
    let notes = format!(
        "2 MiB tmpfs on var/log filled; {name}.stderr.log {before} -> {} bytes and fild.log {fild_before} -> {} bytes after space returned",
        size(&log),
        size(&fild_log)
    );
    assert!(load.wait_progress(100, UP));
    finish(&c, case, t0, load, faults, 0, notes);
    c.fild_mut().terminate();
    drop(tmpfs);
}

// ----- 6. 200 concurrent mixed requests -------------------------------------------------------

const OPS: [&str; 5] = ["start", "stop", "restart", "reload", "status"];

/// One client's requests: (operation, succeeded, filc's output), and its worker's last
/// start/stop/restart.
type ClientRun = (Option<&'static str>, Vec<(String, bool, String)>);

pub fn concurrent_requests(case: &str, clients: usize, per_client: usize) {
    let _s = serial();
    let t0 = Instant::now();
    let mut c = Cluster::new(case);
    let root = c.root.path().to_path_buf();
    std::fs::write(root.join("fw.txt"), "").unwrap();
    let mut ini = String::new();
    for k in 0..clients {
        ini.push_str(&format!(
            "[program:fw{k}]\ncommand=tail -f {}/fw.txt\nautostart=false\nautorestart=false\nstartsecs=1\nstopwaitsecs=5\n\n",
            root.display()
        ));
    }
    std::fs::write(root.join("etc/fild/apps/fault-workers.ini"), ini).unwrap();
    c.fild_mut().terminate();
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);
    let load = gateway_load(&c, "fault/req/");
    let workers: Vec<String> = (0..clients).map(|k| format!("fw{k}")).collect();
    let fild_pid = c.fild().pid();
    // Warm up every path once, then count fild's descriptors with every worker stopped.
    c.fild().filc_ok(&["start", "fw0"]);
    c.fild().filc_ok(&["restart", "fw0"]);
    c.fild().filc_ok(&["stop", "fw0"]);
    c.fild().filc_ok(&["reload"]);
    sleep_ms(1000);
    let fd_before = fd_count(fild_pid);

    // Each client drives its own worker (so "the last operation" on it is well defined) and
    // sends reloads and status requests for all.
    let mut rng = Rng::new(case);
    let seeds: Vec<u64> = (0..clients).map(|_| rng.next()).collect();
    let fild = c.fild();
    let results: Vec<ClientRun> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds
            .iter()
            .enumerate()
            .map(|(k, seed)| {
                let w = workers[k].clone();
                s.spawn(move || {
                    let mut r = Rng(*seed | 1);
                    let mut last = None;
                    let mut done = Vec::new();
                    for _ in 0..per_client {
                        let op = OPS[r.below(OPS.len() as u64) as usize];
                        let out = match op {
                            "reload" => fild.filc(&["reload"]),
                            "status" => fild.filc(&["status"]),
                            _ => fild.filc(&[op, &w]),
                        };
                        if op != "reload" && op != "status" {
                            last = Some(op);
                        }
                        let text = format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                        done.push((op.to_string(), out.status.code() == Some(0), text));
                    }
                    (last, done)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Refusals that are the right answer ("already started", "not running" and the like, for
    // a start of a running worker or a stop of a stopped one; status exits non-zero while
    // some programs are stopped) are fine; anything else is a failure.
    let mut inputs = 0;
    let mut refused = 0;
    let mut failures = Vec::new();
    for (_, done) in &results {
        for (op, ok, text) in done {
            inputs += 1;
            if *ok {
                continue;
            }
            let t = text.to_lowercase();
            let benign = match op.as_str() {
                "start" => t.contains("already"),
                "stop" => t.contains("not running") || t.contains("already"),
                "status" => true,
                _ => false,
            };
            if benign {
                refused += 1;
            } else {
                failures.push(format!("{op}: {text}"));
            }
        }
    }
    assert!(failures.is_empty(), "failed requests: {failures:#?}");

    // Final states match each worker's last operation.
    for (k, (last, _)) in results.iter().enumerate() {
        let want = match last {
            Some("start") | Some("restart") => ProcessState::Running,
            _ => ProcessState::Stopped,
        };
        c.fild().wait_state(&workers[k], want, UP);
    }
    assert_no_strays(c.fild(), &cluster_markers(&c));
    let mut z = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            z = zombies(fild_pid);
            z.is_empty()
        }),
        "zombie children of fild: {z:?}"
    );
    // Descriptors: back to the count before, with every worker stopped again.
    let mut names = vec!["stop"];
    names.extend(workers.iter().map(|s| s.as_str()));
    let _ = c.fild().filc(&names);
    for w in &workers {
        c.fild().wait_state(w, ProcessState::Stopped, UP);
    }
    let mut fd_after = 0;
    let ok = wait_until(Duration::from_secs(20), || {
        fd_after = fd_count(fild_pid);
        fd_after <= fd_before
    });
    assert!(
        ok,
        "fild's descriptors grew: {fd_before} before, {fd_after} after"
    );
    let notes = format!(
        "{clients} clients x {per_client} requests; {refused} refused as expected (start of a running / stop of a stopped worker, status with stopped programs); fild fds {fd_before} before, {fd_after} after; no zombies"
    );
    finish(&c, case, t0, load, 0, inputs, notes);
}

// ----- 7. three hosts: one host's link cut under load, then healed -----------------------------

/// Per member (by endpoint): whether it answers a status call, and whether it is the leader.
fn roles(net: &Net) -> Vec<(bool, bool)> {
    let eps: Vec<String> = (0..3).map(|n| net.endpoint(n)).collect();
    in_ns(Some(&net.switch), move || async move {
        let mut out = Vec::new();
        for ep in &eps {
            let r = async {
                let mut c = connect(ep, Duration::from_secs(2)).await?;
                let s = tokio::time::timeout(Duration::from_secs(3), c.status())
                    .await
                    .ok()?
                    .ok()?;
                let id = s.header()?.member_id();
                Some(s.leader() == id)
            }
            .await;
            out.push((r.is_some(), r.unwrap_or(false)));
        }
        out
    })
}

pub fn partition(case: &str, cut_secs: u64) {
    let _s = serial();
    require_etcd();
    let _slot = Slot::acquire();
    let t0 = Instant::now();
    let net = Net::new("ff");
    let hosts: Vec<Host> = (0..3)
        .map(|n| start_host(&net, n, "faulthost", &format!("fault-{}", net.id)))
        .collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let mut leader = None;
    assert!(
        wait_until(UP, || {
            let r = roles(&net);
            leader = r.iter().position(|(_, l)| *l);
            r.iter().all(|(up, _)| *up) && leader.is_some()
        }),
        "the three-host cluster did not come up with a leader"
    );
    let eps: Vec<String> = (0..3).map(|n| net.endpoint(n)).collect();
    let load = Load::start(
        "fault/part/",
        eps.clone(),
        Some(net.switch.clone()),
        500_000,
        Duration::from_secs(600),
    );
    assert!(load.wait_progress(100, UP), "the load never got going");
    // Cut the leader's host: the harshest single cut.
    let cut = roles(&net).iter().position(|(_, l)| *l).unwrap_or(2);
    net.link(cut, false);
    let at = Instant::now();
    let acked_at_cut = load.acked();
    assert!(
        load.wait_progress(100, UP),
        "the majority stopped serving while host {cut} was cut off"
    );
    let wait = Duration::from_secs(cut_secs).saturating_sub(at.elapsed());
    std::thread::sleep(wait);
    let during = load.acked() - acked_at_cut;
    let cut_for = at.elapsed().as_secs();
    net.link(cut, true);
    assert!(load.wait_progress(100, UP), "writes stopped after the heal");
    let prefix = load.prefix.clone();
    let res = load.finish();
    let checked = check(&eps, Some(&net.switch), &prefix, &res.acked);
    for (n, h) in hosts.iter().enumerate() {
        let name = format!("etcd-{n}");
        h.fild.wait_state(&name, ProcessState::Running, UP);
    }
    Report {
        case,
        faults: 1,
        load: &res,
        checked: &checked,
        inputs: 0,
        secs: t0.elapsed().as_secs(),
        notes: format!(
            "cut host {cut} (the leader's) for {cut_for}s; {during} writes acknowledged by the majority while it was cut"
        ),
    }
    .emit();
    drop(hosts);
}
