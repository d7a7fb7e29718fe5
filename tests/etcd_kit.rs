//! The deployment kit with real etcd: three members and the gateway under fild, built from
//! tpl/ and apps/etcd/ exactly as operators use them.
mod common;

use std::time::{Duration, Instant};

use common::etcd::*;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(30);

#[test]
fn members_start_concurrently_and_serve_through_the_gateway() {
    let c = Cluster::new("concurrent");
    let f = c.fild();
    // Watch status while `filc start etcd:*` runs: every member has a pid before any is
    // RUNNING (startsecs=2 in the templates), i.e. they start at once, not in turn.
    let watcher = {
        let env = f.env.clone();
        let config = f.config.clone();
        std::thread::spawn(move || {
            let mut all_pids_at = None;
            let mut first_running_at = None;
            let end = Instant::now() + UP;
            while Instant::now() < end && first_running_at.is_none() {
                let out = std::process::Command::new(FILC)
                    .arg("-c")
                    .arg(&config)
                    .args(["status", "--json", "etcd:*"])
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .output()
                    .unwrap();
                let st: Vec<fild::api::ProcessInfo> =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                if st.len() == 3 && st.iter().all(|p| p.pid != 0) && all_pids_at.is_none() {
                    all_pids_at = Some(Instant::now());
                }
                if st.iter().any(|p| p.state == ProcessState::Running) {
                    first_running_at = Some(Instant::now());
                }
            }
            (all_pids_at, first_running_at)
        })
    };
    f.filc_ok(&["start", "etcd:*"]);
    let (all_pids, first_running) = watcher.join().unwrap();
    let (all_pids, first_running) = (all_pids.expect("all pids seen"), first_running.unwrap());
    assert!(
        all_pids < first_running,
        "a member ran before all three had started"
    );
    f.filc_ok(&["start", "etcd-gw"]);
    c.wait_healthy(UP);

    assert!(
        wait_until(UP, || c.put(&c.gateway(), "kit/hello", "world")),
        "put through the gateway"
    );
    for n in 0..3 {
        c.wait_value(n, "kit/hello", "world", UP);
    }
    // Members and gateway listen on the configured (loopback) addresses only.
    for port in c.client.iter().chain(c.peer.iter()).copied().chain([c.gw]) {
        let addrs = listen_addrs(port);
        assert!(
            !addrs.is_empty() && addrs.iter().all(|a| a == "127.0.0.1"),
            "port {port} listens on {addrs:?}"
        );
    }
    // The data dirs are private.
    use std::os::unix::fs::PermissionsExt;
    for n in 0..3 {
        let mode = std::fs::metadata(c.data.join(format!("boot{n}.etcd")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "boot{n}.etcd is {mode:o}");
    }
}

#[test]
fn a_killed_member_is_restarted_at_once_and_catches_up() {
    let c = Cluster::new("killone");
    c.start_all();
    c.wait_healthy(UP);
    let f = c.fild();
    // Let it run past startsecs so the crash counts as a long run (immediate restart).
    f.wait_state("etcd-1", ProcessState::Running, UP);
    std::thread::sleep(Duration::from_millis(1500));
    let old = c.pid("etcd-1");
    signal(old, libc::SIGKILL);
    // Writes while it is down (or restarting) go to the two others.
    for i in 0..20 {
        assert!(
            wait_until(UP, || c.put(&c.endpoint(0), &format!("down/{i}"), "v")),
            "write {i} while etcd-1 is down"
        );
    }
    let info = f.wait_new_pid("etcd-1", old, UP);
    assert!(info.restarts >= 1);
    for i in 0..20 {
        c.wait_value(1, &format!("down/{i}"), "v", UP);
    }
}

#[test]
fn all_members_killed_come_back_with_every_acknowledged_write() {
    let c = Cluster::new("killall");
    c.start_all();
    c.wait_healthy(UP);
    let mut acked = Vec::new();
    for i in 0..50 {
        let k = format!("all/{i}");
        if c.put(&c.gateway(), &k, &i.to_string()) {
            acked.push((k, i.to_string()));
        }
    }
    assert!(
        acked.len() >= 45,
        "most writes acknowledged: {}",
        acked.len()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let old: Vec<i32> = (0..3).map(|n| c.pid(&format!("etcd-{n}"))).collect();
    for p in &old {
        signal(*p, libc::SIGKILL);
    }
    for (n, old_pid) in old.iter().enumerate() {
        let name = format!("etcd-{n}");
        c.fild().wait_new_pid(&name, *old_pid, UP);
    }
    c.wait_healthy(UP);
    for n in 0..3 {
        for (k, v) in &acked {
            c.wait_value(n, k, v, UP);
        }
    }
}

#[test]
fn a_stopped_member_stays_stopped_and_rejoins_on_start() {
    let c = Cluster::new("stopone");
    c.start_all();
    c.wait_healthy(UP);
    let f = c.fild();
    f.filc_ok(&["stop", "etcd-1"]);
    assert_eq!(f.state("etcd-1"), ProcessState::Stopped);
    assert!(!c.healthy(1));
    for i in 0..10 {
        assert!(
            wait_until(UP, || c.put(&c.gateway(), &format!("stopped/{i}"), "v")),
            "the two others keep serving"
        );
    }
    // Still stopped a while later: nothing restarts a member a person stopped.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(f.state("etcd-1"), ProcessState::Stopped);
    f.filc_ok(&["start", "etcd-1"]);
    c.wait_healthy(UP);
    for i in 0..10 {
        c.wait_value(1, &format!("stopped/{i}"), "v", UP);
    }
}

#[test]
fn editing_one_template_and_reloading_restarts_only_that_member() {
    let c = Cluster::new("reload");
    c.start_all();
    c.wait_healthy(UP);
    let f = c.fild();
    let before: Vec<i32> = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
        .iter()
        .map(|n| c.pid(n))
        .collect();
    let path = c.root.join("etc/fild/apps/etcd-2.ini");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("stdout_logfile_backups=5", "stdout_logfile_backups=7"),
    )
    .unwrap();
    let out = f.filc_ok(&["reload"]);
    assert!(out.contains("Changed: etcd-2"), "{out}");
    let after: Vec<i32> = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
        .iter()
        .map(|n| c.pid(n))
        .collect();
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    assert_eq!(after[3], before[3]);
    assert_ne!(after[2], before[2]);
    c.wait_healthy(UP);
}

#[test]
fn fild_sigterm_stops_members_and_sigkill_leaves_nothing_then_data_returns() {
    let mut c = Cluster::new("fildkill");
    c.start_all();
    c.wait_healthy(UP);
    assert!(wait_until(UP, || c.put(&c.gateway(), "keep/me", "safe")));

    // SIGTERM: every member stops, fild exits 0, no etcd of ours is left.
    let pids: Vec<i32> = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
        .iter()
        .map(|n| c.pid(n))
        .collect();
    let st = c.fild_mut().terminate().expect("fild exits on SIGTERM");
    assert!(st.success(), "fild exit status {st}");
    for p in &pids {
        assert!(group_members(*p).is_empty(), "group {p} left after SIGTERM");
    }

    // Back up, then SIGKILL fild: within 2 s nothing of ours runs and the ports are free.
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);
    let pids: Vec<i32> = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
        .iter()
        .map(|n| c.pid(n))
        .collect();
    c.fild_mut().kill9();
    let gone = wait_until(Duration::from_secs(2), || {
        pids.iter().all(|p| group_members(*p).is_empty())
    });
    assert!(gone, "etcd processes outlived a SIGKILLed fild by 2 s");
    let ports: Vec<u16> = c
        .client
        .iter()
        .chain(c.peer.iter())
        .copied()
        .chain([c.gw])
        .collect();
    assert!(
        wait_until(Duration::from_secs(2), || ports
            .iter()
            .all(|p| !Cluster::port_held(*p))),
        "ports still held"
    );

    // A new fild brings the cluster back with its data.
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);
    for n in 0..3 {
        c.wait_value(n, "keep/me", "safe", UP);
    }
}

/// The IPv4 addresses listening on `port` (from /proc/net/tcp), plus "::" for IPv6 ones.
fn listen_addrs(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1] (hex ip:port), state 0A is LISTEN.
            let (Some(local), Some(state)) = (f.get(1), f.get(3)) else {
                continue;
            };
            let Some((ip, p)) = local.split_once(':') else {
                continue;
            };
            if *state != "0A" || u16::from_str_radix(p, 16).ok() != Some(port) {
                continue;
            }
            if v6 {
                out.push("::".to_string());
            } else if let Ok(n) = u32::from_str_radix(ip, 16) {
                out.push(std::net::Ipv4Addr::from(n.to_le_bytes()).to_string());
            }
        }
    }
    out
}
