//! One operation at a time across three hosts: the cluster-wide lock held in etcd. Three
//! hosts from network namespaces (one fild and one member each), real etcd, a write load
//! through every member the whole time, and the real etcdctl as the judge of membership.
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::etcd::*;
use common::hosts::{Host, start_host};
use common::load::Judge;
use common::netns::Net;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(60);

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
    let judge = Judge::of_hosts(&net, 0, "http");
    judge.wait_three_voters(UP, "the three-host cluster");
    let load = judge.load("w");

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
    judge.wait_three_voters(UP, "after the replace");
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
            let ms = judge.members();
            ms.len() >= 2 && !ms.iter().any(|m| m.name == "boot1")
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
    judge.wait_three_voters(UP, "after the re-run");

    let written = load.finish();
    written.assert_sound("the lock operations", 20);
    // Every acknowledged write on every member, and the members agree.
    let hash = judge.check_every_key("w", &written.keys());
    eprintln!(
        "{} writes acknowledged in {:.1} s, none lost; hash_kv {hash}",
        written.acked.len(),
        written.secs
    );
    for h in &hosts {
        assert_kit_clean(h.root.path(), "the lock operations");
    }
}
