//! The runbooks' recovery procedures on three hosts (docs/runbooks.md sections 9, 10 and 11,
//! and TLS): network namespaces, one fild and one member each, real etcd, a write load while
//! each step runs, the real etcdctl from another host's namespace as the judge of membership,
//! and at the end of each case every acknowledged key read back from every member with
//! `etcdctl endpoint hashkv` equal on all.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::etcd::*;
use common::hosts::{Host, start_host, start_host_env, start_member_host};
use common::load::{Judge, Member};
use common::netns::Net;
use common::pki::make_pki_for;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(90);

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn member<'a>(ms: &'a [Member], name: &str) -> &'a Member {
    ms.iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} not in the member list: {ms:?}"))
}

/// A filc command on host `n` that succeeds, with its output.
fn filc_ok_in(h: &Host, net: &Net, n: usize, args: &[&str]) -> String {
    let o = h.filc_in(net, n, args);
    assert_eq!(code(&o), 0, "host {n}: filc {args:?}:\n{}", text(&o));
    text(&o)
}

/// Wait for `filc etcd status` on host `n` to say healthy (exit 0); its output.
fn status_healthy(h: &Host, net: &Net, n: usize) -> String {
    let mut o = h.filc_in(net, n, &["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = h.filc_in(net, n, &["etcd", "status"]);
            code(&o) == 0
        }),
        "host {n}: filc etcd status never healthy:\n{}",
        text(&o)
    );
    text(&o)
}

/// Let a load run for `d` before the step it watches.
fn settle(d: u64) {
    std::thread::sleep(Duration::from_secs(d));
}

/// Runbook section 10 on host 1, then section 11 with a snapshot from host 0 restored on
/// every host, then section 9: etcd-0's data copied to a new host (a fourth namespace) and
/// `filc etcd move` there.
#[test]
fn recovery_modes_two_three_and_one_on_three_hosts() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Arc::new(Net::with_hosts("r", 4));
    let token = format!("runbooks-{}", net.id);
    let mut hosts: Vec<Host> = (0..3).map(|n| start_host(&net, n, "rbk", &token)).collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let judge = Judge::of_hosts(&net, 0, "http");
    judge.wait_three_voters(UP, "the three-host cluster");

    // ---- Mode two (section 10): host 1's member data is lost; replace it on host 1. ----
    let t = Instant::now();
    let old_id = member(&judge.members(), "boot1").id;
    let load = judge.load("replace");
    settle(2);
    hosts[1].fild.filc_ok(&["stop", "etcd-1"]);
    let data = hosts[1].data.join("boot1.etcd");
    std::fs::rename(&data, hosts[1].data.join("boot1.etcd.lost-by-the-test")).unwrap();
    let out = filc_ok_in(&hosts[1], &net, 1, &["etcd", "replace", "etcd-1", "--yes"]);
    assert!(out.contains("replace etcd-1: done"), "{out}");
    judge.wait_three_voters(UP, "after the replace");
    let new_id = member(&judge.members(), "boot1").id;
    assert_ne!(new_id, old_id, "boot1 is not a new member");
    settle(2);
    let w = load.finish();
    w.assert_sound("mode two", 10);
    let hash = judge.check_every_key("replace", &w.keys());
    eprintln!(
        "RUNBOOK mode two (replace etcd-1 on host 1, data dir gone): {} writes acknowledged in {:.1} s, none lost, on every member, hash_kv {hash}; case {:.1} s",
        w.acked.len(),
        w.secs,
        t.elapsed().as_secs_f64()
    );

    // ---- Mode three (section 11): a snapshot on host 0, more writes, every member
    // stopped, the same file restored on each host. ----
    let t = Instant::now();
    let old_ids: Vec<u64> = judge.members().iter().map(|m| m.id).collect();
    let load = judge.load("before");
    settle(3);
    let snaps = hosts[0].root.join("snaps");
    filc_ok_in(
        &hosts[0],
        &net,
        0,
        &["etcd", "snapshot", snaps.to_str().unwrap()],
    );
    let before = load.finish();
    before.assert_sound("writes around the snapshot", 10);
    let file: PathBuf = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "db"))
        .expect("a snapshot file");
    let status = judge.etcdctl(
        &judge.all(),
        &["snapshot", "status", file.to_str().unwrap(), "-w", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
    let snap_rev = v["revision"].as_i64().expect("the snapshot's revision");
    let after = judge.load("after");
    settle(3);
    let after = after.finish();
    after.assert_sound("writes after the snapshot", 5);
    assert!(after.acked.iter().all(|(_, r)| *r > snap_rev));

    // Over a live cluster a restore is refused and changes nothing.
    let pid = hosts[0].fild.info("etcd-0").pid;
    let o = hosts[0].filc_in(&net, 0, &["etcd", "restore", file.to_str().unwrap()]);
    assert_ne!(
        code(&o),
        0,
        "a restore over a live cluster ran:\n{}",
        text(&o)
    );
    assert!(text(&o).contains("the cluster has quorum"), "{}", text(&o));
    assert_eq!(
        hosts[0].fild.info("etcd-0").pid,
        pid,
        "the refusal touched etcd-0"
    );

    // The runbook: stop every member on every host, the same file on each host, restore on
    // each (their restores start within seconds of each other, well inside the 120 s each
    // waits for a majority).
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["stop", "--force", &format!("etcd-{n}")]);
    }
    let copies: Vec<PathBuf> = (0..3)
        .map(|n| {
            let dir = hosts[n].root.join("snaps");
            std::fs::create_dir_all(&dir).unwrap();
            let to = dir.join(file.file_name().unwrap());
            if to != file {
                std::fs::copy(&file, &to).unwrap();
            }
            to
        })
        .collect();
    let restores: Vec<_> = (0..3)
        .map(|n| {
            hosts[n]
                .filc_cmd(
                    &net,
                    n,
                    &["etcd", "restore", copies[n].to_str().unwrap(), "--yes"],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (n, r) in restores.into_iter().enumerate() {
        let o = r.wait_with_output().unwrap();
        assert_eq!(code(&o), 0, "restore on host {n}:\n{}", text(&o));
        assert!(
            text(&o).contains("new cluster with 3 members"),
            "host {n}:\n{}",
            text(&o)
        );
    }
    judge.wait_three_voters(UP, "after the restore");
    let ms = judge.members();
    assert!(
        ms.iter().all(|m| !old_ids.contains(&m.id)),
        "a member of the old cluster survived the restore: {ms:?} (old {old_ids:?})"
    );
    // Exactly the snapshot: the acknowledged keys up to its revision, none after it.
    let mut want: Vec<String> = before
        .acked
        .iter()
        .filter(|(_, r)| *r <= snap_rev)
        .map(|(k, _)| k.clone())
        .collect();
    want.sort();
    assert!(!want.is_empty(), "no write made it into the snapshot");
    for ep in &judge.endpoints {
        let mut got = judge.keys_on(ep, "before").unwrap_or_default();
        got.sort();
        assert_eq!(got, want, "{ep}: the keys before the snapshot");
        assert_eq!(
            judge.keys_on(ep, "after"),
            Some(vec![]),
            "{ep}: keys written after the snapshot"
        );
        assert_eq!(judge.keys_on(ep, "replace"), {
            let mut k = w.keys();
            k.sort();
            Some(k)
        });
        let o = judge.etcdctl(ep, &["get", "--consistency=s", "none", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        assert_eq!(
            v["header"]["revision"].as_i64(),
            Some(snap_rev),
            "{ep}: the restored revision"
        );
    }
    let hash = judge.equal_hash_kv();
    let load = judge.load("restored");
    settle(3);
    let r = load.finish();
    r.assert_sound("the restored cluster", 5);
    judge.check_every_key("restored", &r.keys());
    eprintln!(
        "RUNBOOK mode three (snapshot on host 0 at revision {snap_rev}, restored on every host): {} writes around the snapshot ({} in it), {} after it gone, hash_kv {hash} on all; then {} writes acknowledged on the new cluster; case {:.1} s",
        before.acked.len(),
        want.len(),
        after.acked.len(),
        r.acked.len(),
        t.elapsed().as_secs_f64()
    );

    // ---- Mode one (section 9): etcd-0 moves to a new host (namespace 3, its own fild and
    // PRJ_ROOT) with its data copied there. ----
    let t = Instant::now();
    let new_addr = net.addr(3);
    let stay = judge.at(
        2,
        (1..3)
            .map(|n| format!("http://{}", net.endpoint(n)))
            .collect(),
    );
    let boot0 = member(&judge.members(), "boot0").clone();
    let load = stay.load("move");
    settle(2);
    // 1. On the old host: the other two healthy; stop the member, then deactivate it.
    assert!(
        text(&hosts[0].filc_in(&net, 0, &["etcd", "status"])).contains("boot1"),
        "status on the old host"
    );
    hosts[0].fild.filc_ok(&["stop", "etcd-0"]);
    std::fs::remove_file(hosts[0].root.join("etc/fild/apps/etcd-0.ini")).unwrap();
    hosts[0].fild.filc_ok(&["reload"]);
    // 2. The new host, its data dir a copy of the old one (mode kept: cp -a).
    let moved = env(&[("ETCD0_HOST", new_addr.clone())]);
    let new_host = start_member_host(&net, 3, 0, "rbk", &token, &moved);
    copy_tree(
        &hosts[0].data.join("boot0.etcd"),
        &new_host.data.join("boot0.etcd"),
    );
    // 4. On the new host (ETCD0_HOST set, etcd-0 active): the plan, then the move.
    let peer = format!("http://{new_addr}:2080");
    let plan = filc_ok_in(
        &new_host,
        &net,
        3,
        &["etcd", "move", "etcd-0", "--peer-url", &peer, "--dry-run"],
    );
    assert!(plan.contains("dry run: nothing changed"), "{plan}");
    let out = filc_ok_in(
        &new_host,
        &net,
        3,
        &["etcd", "move", "etcd-0", "--peer-url", &peer],
    );
    assert!(out.contains("move etcd-0: done"), "{out}");
    // 5. The judge, from host 2, sees boot0 under its old ID at the new address.
    let moved_judge = stay.at(
        2,
        vec![
            format!("http://{new_addr}:2079"),
            format!("http://{}", net.endpoint(1)),
            format!("http://{}", net.endpoint(2)),
        ],
    );
    moved_judge.wait_three_voters(UP, "after the move");
    let ms = moved_judge.members();
    let now0 = member(&ms, "boot0");
    assert_eq!(now0.id, boot0.id, "boot0 is not the same member");
    assert_eq!(now0.peer_urls, vec![peer.clone()], "{ms:?}");
    assert_eq!(
        now0.client_urls,
        vec![format!("http://{new_addr}:2079")],
        "{ms:?}"
    );
    assert_ne!(now0.peer_urls, boot0.peer_urls);
    settle(2);
    let w = load.finish();
    w.assert_sound("mode one", 10);
    let hash = moved_judge.check_every_key("move", &w.keys());
    moved_judge.check_every_key("restored", &r.keys());
    assert_eq!(new_host.fild.state("etcd-0"), ProcessState::Running);
    let move_secs = t.elapsed().as_secs_f64();

    // Then ETCD0_HOST on the other hosts, one host at a time: each host's status is healthy
    // and names boot0 at its new address.
    for (n, h) in hosts.iter_mut().enumerate().skip(1) {
        h.restart_fild_env(&net, n, &moved);
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
        moved_judge.wait_three_voters(UP, &format!("after host {n}'s ETCD0_HOST change"));
    }
    for (n, h) in [(1, &hosts[1]), (2, &hosts[2]), (3, &new_host)] {
        let st = status_healthy(h, &net, n);
        assert!(
            st.contains(&format!("http://{new_addr}:2079")),
            "host {n}:\n{st}"
        );
        // (The versions' own notices, such as 3.4's end of life, are not the names'.)
        assert!(
            warnings_but_versions(&st).is_empty(),
            "host {n} warns:\n{st}"
        );
    }
    eprintln!(
        "RUNBOOK mode one (etcd-0 moved to a new host, data copied, filc etcd move): {} writes acknowledged in {:.1} s through the other two, none lost, on every member, hash_kv {hash}; move {move_secs:.1} s, case with the ETCD0_HOST changes {:.1} s",
        w.acked.len(),
        w.secs,
        t.elapsed().as_secs_f64()
    );
    for h in hosts.iter().chain([&new_host]) {
        assert_kit_clean(h.root.path(), "the recovery runbooks");
    }
}

/// `cp -a`: the data dir with its modes.
fn copy_tree(from: &Path, to: &Path) {
    let o = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(o.status.success(), "cp -a: {}", text(&o));
}

/// Peer and client TLS (`ETCD_TLS=files`) across three hosts: certificates naming each
/// host's address; the cluster forms over https, every host's status is healthy, and a
/// replace rejoins over https.
#[test]
fn tls_files_across_three_hosts_and_a_replace() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Arc::new(Net::new("t"));
    let token = format!("rbtls-{}", net.id);
    let dir = TestDir::new("rbtls-pki");
    let pki = make_pki_for(dir.path(), &(0..3).map(|n| net.addr(n)).collect::<Vec<_>>());
    let s = |p: &Path| p.display().to_string();
    let tls = env(&[
        ("ETCD_TLS", "files".into()),
        ("ETCD_SCHEME", "https".into()),
        ("ETCD_CERT_FILE", s(&pki.cert)),
        ("ETCD_KEY_FILE", s(&pki.key)),
        ("ETCD_TRUSTED_CA_FILE", s(&pki.ca)),
    ]);
    let t = Instant::now();
    let hosts: Vec<Host> = (0..3)
        .map(|n| start_host_env(&net, n, "rbt", &token, &tls))
        .collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let judge = Judge::of_hosts(&net, 0, "https").with_tls(&pki.ca, &pki.cert, &pki.key);
    judge.wait_three_voters(UP, "the TLS cluster");
    let formed = t.elapsed().as_secs_f64();
    let ms = judge.members();
    for n in 0..3 {
        let m = member(&ms, &format!("boot{n}"));
        assert_eq!(
            m.peer_urls,
            vec![format!("https://{}:{}", net.addr(n), 2080 + 100 * n)],
            "{ms:?}"
        );
    }
    for (n, h) in hosts.iter().enumerate() {
        let st = status_healthy(h, &net, n);
        assert!(st.contains("verdict: healthy: 3 of 3"), "host {n}:\n{st}");
        for m in 0..3 {
            let url = format!("https://{}", net.endpoint(m));
            assert!(st.contains(&url), "host {n} lacks {url}:\n{st}");
        }
    }
    // Plain http gets nothing from the members.
    let plain: Output = judge
        .at(0, vec![])
        .etcdctl(&format!("http://{}", net.endpoint(1)), &["get", "x"]);
    assert!(
        !plain.status.success(),
        "plain http answered: {}",
        text(&plain)
    );

    let t = Instant::now();
    let old_id = member(&ms, "boot2").id;
    let load = judge.load("tls");
    settle(2);
    let out = filc_ok_in(&hosts[2], &net, 2, &["etcd", "replace", "etcd-2", "--yes"]);
    assert!(out.contains("replace etcd-2: done"), "{out}");
    judge.wait_three_voters(UP, "after the replace over TLS");
    let ms = judge.members();
    let b2 = member(&ms, "boot2");
    assert_ne!(b2.id, old_id);
    assert_eq!(b2.peer_urls, vec![format!("https://{}:2280", net.addr(2))]);
    settle(2);
    let w = load.finish();
    w.assert_sound("TLS replace", 10);
    let hash = judge.check_every_key("tls", &w.keys());
    eprintln!(
        "RUNBOOK TLS across three hosts: formed over https in {formed:.1} s, status healthy on every host; replace etcd-2: {} writes acknowledged in {:.1} s, none lost, on every member, hash_kv {hash}; replace case {:.1} s",
        w.acked.len(),
        w.secs,
        t.elapsed().as_secs_f64()
    );
    for h in &hosts {
        assert_kit_clean(h.root.path(), "the TLS case");
    }
}
