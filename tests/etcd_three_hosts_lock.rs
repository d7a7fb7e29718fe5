//! One operation at a time across three hosts: the cluster-wide lock held in etcd. Three
//! hosts from network namespaces (one fild and one member each), real etcd, a write load
//! through every member the whole time, and the real etcdctl as the judge of membership.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::etcd::*;
use common::hosts::{Host, etcdctl_in, start_host};
use common::netns::Net;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(60);

/// What the judge (etcdctl from host 0) lists: (name, is learner, has client URLs).
fn members(net: &Net, all: &str) -> Vec<(String, bool, bool)> {
    let out = etcdctl_in(net, 0, all, &["member", "list", "-w", "json"]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or("").to_string(),
                        m["isLearner"].as_bool().unwrap_or(false),
                        m["clientURLs"].as_array().is_some_and(|c| !c.is_empty()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn three_voters(net: &Net, all: &str) -> bool {
    let ms = members(net, all);
    ms.len() == 3
        && ms
            .iter()
            .all(|(n, learner, urls)| !n.is_empty() && !learner && *urls)
}

/// Writes `w/<i>` through every member until stopped (at most 3,000 keys, each retried for
/// at most 8 s): the keys acknowledged, and the ones never acknowledged (quorum lost).
fn write_load(
    net: &Arc<Net>,
    all: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<String>, Vec<String>)> {
    let net = net.clone();
    std::thread::spawn(move || {
        let (mut acked, mut lost) = (Vec::new(), Vec::new());
        for i in 0..3000 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let key = format!("w/{i:05}");
            let end = Instant::now() + Duration::from_secs(8);
            loop {
                if etcdctl_in(&net, 0, &all, &["put", &key, "v"])
                    .status
                    .success()
                {
                    acked.push(key);
                    break;
                }
                if Instant::now() > end {
                    lost.push(key);
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (acked, lost)
    })
}

/// Wait until `host` shows `name` stopped (an operation stopped it).
fn wait_stopped(host: &Host, name: &str) {
    assert!(
        wait_until(UP, || host.fild.state(name) == ProcessState::Stopped),
        "{name} was never stopped; last: {:?}",
        host.fild.state(name)
    );
}

#[test]
fn one_operation_at_a_time_across_hosts_and_a_dead_holders_lock_expires() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Arc::new(Net::new("l"));
    let token = format!("lock-{}", net.id);
    let mut hosts: Vec<Host> = (0..3)
        .map(|n| start_host(&net, n, "lock", &token))
        .collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let all = (0..3)
        .map(|n| format!("http://{}", net.endpoint(n)))
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        wait_until(UP, || three_voters(&net, &all)
            && etcdctl_in(&net, 0, &all, &["endpoint", "health"])
                .status
                .success()),
        "the three-host cluster did not become healthy"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(&net, all.clone(), stop.clone());

    // Host 1 replaces its member; while that member is provably stopped, host 2's replace of
    // its own is refused by the lock (both would pass their quorum checks from here).
    let first = hosts[1]
        .filc_cmd(&net, 1, &["etcd", "replace", "etcd-1", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(&hosts[1], "etcd-1");
    let second = hosts[2].filc_in(&net, 2, &["etcd", "replace", "etcd-2", "--yes"]);
    let t = text(&second);
    assert_ne!(code(&second), 0, "the second operation ran:\n{t}");
    assert!(
        t.contains("holds the cluster-wide lock") && t.contains("`replace etcd-1`"),
        "the refusal does not name the holder:\n{t}"
    );
    assert_eq!(
        hosts[2].fild.state("etcd-2"),
        ProcessState::Running,
        "the refused operation touched its member"
    );
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "host 1's replace:\n{}",
        text(&first)
    );
    assert!(
        wait_until(UP, || three_voters(&net, &all)),
        "after the replace: {:?}",
        members(&net, &all)
    );
    // Released at the end: host 2 can now run one.
    let o = hosts[2].filc_in(&net, 2, &["etcd", "defrag"]);
    assert_eq!(code(&o), 0, "defrag after the replace:\n{}", text(&o));

    // The fild running a replace is SIGKILLed once its member is out of the voters: its lock
    // stays until its lease runs out, then another host's operation proceeds; a re-run on
    // the first host finishes the replace.
    let mut again = hosts[1]
        .filc_cmd(&net, 1, &["etcd", "replace", "etcd-1", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(UP, || {
            // Removed, or back only as a learner that has not started (no name yet).
            let ms = members(&net, &all);
            ms.len() >= 2 && !ms.iter().any(|(n, _, _)| n == "boot1")
        }),
        "boot1 never left the voters"
    );
    hosts[1].fild.kill9();
    let _ = again.wait();
    let killed = Instant::now();
    let o = hosts[2].filc_in(&net, 2, &["etcd", "defrag"]);
    let t = text(&o);
    if killed.elapsed() < Duration::from_secs(8) {
        assert_ne!(code(&o), 0, "defrag ran beside a held lock:\n{t}");
        assert!(t.contains("holds the cluster-wide lock"), "{t}");
    }
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let o = hosts[2].filc_in(&net, 2, &["etcd", "defrag"]);
            last = text(&o);
            code(&o) == 0
        }),
        "the dead holder's lock never expired:\n{last}"
    );
    eprintln!(
        "lock free {:.1} s after its holder's fild died",
        killed.elapsed().as_secs_f64()
    );
    hosts[1].restart_fild(&net, 1);
    let o = hosts[1].filc_in(&net, 1, &["etcd", "replace", "etcd-1", "--yes"]);
    assert_eq!(code(&o), 0, "the re-run on host 1:\n{}", text(&o));
    assert!(
        wait_until(UP, || three_voters(&net, &all)),
        "after the re-run: {:?}",
        members(&net, &all)
    );

    stop.store(true, Ordering::SeqCst);
    let (acked, lost) = load.join().unwrap();
    assert!(
        lost.is_empty(),
        "writes never acknowledged (quorum lost): {lost:?}"
    );
    assert!(acked.len() > 20, "too few writes to judge: {}", acked.len());
    // Every acknowledged write on every member, and the members agree.
    for n in 0..3 {
        let ep = format!("http://{}", net.endpoint(n));
        let mut got = Vec::new();
        assert!(
            wait_until(UP, || {
                let o = etcdctl_in(
                    &net,
                    0,
                    &ep,
                    &["get", "--consistency=s", "--keys-only", "--prefix", "w/"],
                );
                got = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                acked.iter().all(|k| got.contains(k))
            }),
            "member {n} lacks acknowledged writes ({} of {})",
            got.len(),
            acked.len()
        );
    }
    let hashkv = || -> Vec<String> {
        (0..3)
            .map(|n| {
                let o = etcdctl_in(
                    &net,
                    0,
                    &format!("http://{}", net.endpoint(n)),
                    &["endpoint", "hashkv", "-w", "json"],
                );
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                v[0]["HashKV"]["hash"].to_string()
            })
            .collect()
    };
    let mut hashes = hashkv();
    assert!(
        wait_until(UP, || {
            hashes = hashkv();
            hashes.iter().all(|h| h == &hashes[0] && h != "null")
        }),
        "hash_kv differs: {hashes:?}"
    );
    eprintln!(
        "{} writes acknowledged, none lost; hash_kv {}",
        acked.len(),
        hashes[0]
    );
    for h in &hosts {
        assert_kit_clean(h.root.path(), "the lock operations");
    }
}
