//! Rescue and restore across three hosts (mode two), each fild knowing the others through
//! `[cluster]`: rescue never makes a second cluster. The hosts are network namespaces this
//! test creates (see tests/common/netns.rs); etcdctl, run from the switch namespace, is the
//! judge of membership and data.
mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::etcd::*;
use common::hosts::{CONTROL_PORT, Host, start_cluster_host};
use common::netns::Net;
use common::*;

const UP: Duration = Duration::from_secs(60);

/// etcdctl from the switch namespace (another host than the three) against `endpoints`.
fn etcdctl(net: &Net, endpoints: &[usize], args: &[&str]) -> Output {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|n| format!("http://{}", net.endpoint(*n)))
        .collect();
    Command::new("ip")
        .args(["netns", "exec", &net.switch, "etcdctl"])
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", eps.join(",")))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .expect("run etcdctl")
}

fn filc_cmd(net: &Net, n: usize, host: &Host, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &net.hosts[n], FILC, "-c"])
        .arg(&host.fild.config)
        .args(args)
        .envs(host.fild.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    c
}

/// filc run inside host `n`'s namespace (where its fild's etcd addresses are reachable).
fn filc_in(net: &Net, n: usize, host: &Host, args: &[&str]) -> Output {
    filc_cmd(net, n, host, args)
        .output()
        .expect("run filc in the host's namespace")
}

/// The names etcd lists (started members only have a name).
fn member_names(net: &Net, n: usize) -> Vec<String> {
    let o = etcdctl(net, &[n], &["member", "list"]);
    if !o.status.success() {
        return Vec::new();
    }
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split(", ").nth(2).map(str::to_string))
        .collect();
    names.sort();
    names
}

fn get_from(net: &Net, n: usize, key: &str) -> Option<String> {
    let o = etcdctl(
        net,
        &[n],
        &["get", "--consistency=s", "--print-value-only", key],
    );
    let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

fn healthy(net: &Net, n: usize) -> bool {
    etcdctl(net, &[n], &["endpoint", "health"]).status.success()
}

fn put(net: &Net, via: usize, key: &str, value: &str) {
    assert!(
        wait_until(UP, || etcdctl(net, &[via], &["put", key, value])
            .status
            .success()),
        "put {key} through member {via} failed"
    );
}

/// `filc etcd snapshot` on host `n`: the file it wrote.
fn snapshot_on(net: &Net, n: usize, host: &Host) -> String {
    let snap = filc_in(net, n, host, &["etcd", "snapshot"]);
    assert!(snap.status.success(), "{}", text(&snap));
    text(&snap)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.ends_with(".db")))
        .next_back()
        .expect("the snapshot's path")
        .to_string()
}

/// A restored cluster: healthy, three members, every one of `keys` on every member and
/// `lost` (written after the snapshot) on none.
fn assert_restored(net: &Net, keys: &[(String, String)], lost: &str, what: &str) {
    assert!(
        wait_until(UP, || (0..3).all(|n| healthy(net, n))),
        "{what}: not healthy"
    );
    assert_eq!(
        member_names(net, 1),
        vec!["boot0", "boot1", "boot2"],
        "{what}"
    );
    for n in 0..3 {
        for (k, v) in keys {
            assert!(
                wait_until(UP, || get_from(net, n, k).as_deref() == Some(v.as_str())),
                "{what}: member {n} lacks {k}={v}"
            );
        }
        assert_eq!(get_from(net, n, lost), None, "{what}: member {n}");
    }
}

fn refused(o: &Output, why: &str) {
    assert!(
        !o.status.success() && text(o).contains(why),
        "expected a refusal naming {why:?}, got (exit {}):\n{}",
        code(o),
        text(o)
    );
    assert!(
        !text(o).contains("once with --force-new-cluster"),
        "a refused rescue forced a new cluster:\n{}",
        text(o)
    );
}

#[test]
fn rescue_and_restore_never_make_two_clusters() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Net::new("r");
    let token = format!("rescue-{}", net.id);
    let hosts: Vec<Host> = (0..3)
        .map(|n| start_cluster_host(&net, n, "resc", &token))
        .collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    assert!(
        wait_until(UP, || (0..3).all(|n| healthy(&net, n))),
        "the three-host cluster did not become healthy"
    );
    let mut keys: Vec<(String, String)> = Vec::new();
    for i in 0..10 {
        let (k, v) = (format!("before/{i}"), format!("v{i}"));
        put(&net, 0, &k, &v);
        keys.push((k, v));
    }
    let three = vec!["boot0", "boot1", "boot2"];

    // A fild answers its members' data positions over TCP, to another host's credentials.
    let o = Command::new("ip")
        .args(["netns", "exec", &net.hosts[0], "curl", "-sf", "-u"])
        .arg("fild:peer-secret")
        .arg(format!("http://{}:9001/v1/etcd/positions", net.addr(1)))
        .output()
        .expect("run curl");
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && t.contains("\"name\":\"boot1\"") && t.contains("\"revision\":"),
        "positions from host 1's fild: {t}"
    );

    // 1. The other two hold quorum: refused, nothing changes.
    let o = filc_in(&net, 0, &hosts[0], &["etcd", "rescue", "etcd-0", "--yes"]);
    refused(&o, "holds quorum");
    assert_eq!(member_names(&net, 1), three);

    // 2. Restore on a live cluster: refused.
    let file = snapshot_on(&net, 0, &hosts[0]);
    put(&net, 0, "lost/0", "after the snapshot");
    let o = filc_in(&net, 0, &hosts[0], &["etcd", "restore", &file, "--yes"]);
    refused(&o, "the cluster has quorum");
    assert_eq!(member_names(&net, 2), three);

    // 2b. The cluster dies (boot1 and boot2 stop; boot0 runs on, without quorum): the
    // snapshot is restored on the three hosts at once. Restores beside restores
    // go on; each first takes a safety snapshot from the lone member that still answers.
    for (n, h) in hosts.iter().enumerate().skip(1) {
        h.fild.filc_ok(&["stop", "--force", &format!("etcd-{n}")]);
    }
    assert!(wait_until(UP, || !healthy(&net, 0)));
    // Host 0 first, up to its member's new start (a restore's last step waits for the
    // others); then hosts 1 and 2, beside host 0's restore that still runs.
    let old = hosts[0].fild.info("etcd-0").pid;
    let first = filc_cmd(&net, 0, &hosts[0], &["etcd", "restore", &file, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(UP, || {
            let i = hosts[0].fild.info("etcd-0");
            i.pid != 0 && i.pid != old
        }),
        "host 0's restore never started its member again"
    );
    let restores: Vec<_> = std::iter::once(first)
        .chain((1..3).map(|n| {
            filc_cmd(&net, n, &hosts[n], &["etcd", "restore", &file, "--yes"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        }))
        .collect();
    let outs: Vec<Output> = restores
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (n, o) in outs.iter().enumerate() {
        assert!(
            o.status.success(),
            "restore on host {n}:\n{}\n--- all three:\n{}",
            text(o),
            outs.iter().map(text).collect::<Vec<_>>().join("\n---\n")
        );
    }
    let safety = text(&outs[0]);
    let path = safety
        .lines()
        .find_map(|l| l.strip_prefix("safety snapshot: "))
        .and_then(|l| l.split(" (revision").next())
        .unwrap_or_else(|| panic!("no safety snapshot on host 0:\n{safety}"));
    assert!(std::path::Path::new(path).is_file(), "{path}");
    assert!(safety.contains("from boot0"), "{safety}");
    assert_restored(&net, &keys, "lost/0", "the restored cluster");

    // 3. Host 2 cut off: it sees no quorum, yet must not force without --assume-down.
    net.link(2, false);
    let o = filc_in(&net, 2, &hosts[2], &["etcd", "rescue", "etcd-2", "--yes"]);
    refused(&o, "this host may be the one cut off");
    assert!(text(&o).contains("--assume-down boot0"), "{}", text(&o));
    net.link(2, true);
    assert!(
        wait_until(UP, || (0..3).all(|n| healthy(&net, n))),
        "the cluster did not heal after host 2's link came back"
    );
    assert_eq!(member_names(&net, 0), three);

    // 4. A survivor behind: host 0's etcd traffic cut off (its fild's still flows) while
    // writes go on, then the others stop. etcd 3.4 serves clients only once it joined a cluster with a
    // leader, so a survivor is one still running (a restarted one would never answer).
    net.isolate(0, CONTROL_PORT, true);
    for i in 0..10 {
        let (k, v) = (format!("after/{i}"), format!("w{i}"));
        put(&net, 1, &k, &v);
        keys.push((k, v));
    }
    // boot0, cut off, is behind boot1 (each asked in its own namespace).
    let rev = |ns: &str, n: usize| -> Option<i64> {
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "etcdctl"])
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=http://{}", net.endpoint(n)))
            .args(["endpoint", "status", "-w", "json", "--command-timeout=5s"])
            .output()
            .ok()?;
        let t = String::from_utf8_lossy(&o.stdout).to_string();
        let at = t.find("\"revision\":")? + "\"revision\":".len();
        t[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let (r0, r1) = (rev(&net.hosts[0], 0), rev(&net.switch, 1));
    assert!(
        matches!((r0, r1), (Some(a), Some(b)) if a < b),
        "boot0 is not behind boot1 while cut off: {r0:?} vs {r1:?}"
    );
    hosts[1].fild.filc_ok(&["stop", "--force", "etcd-1"]);
    hosts[2].fild.filc_ok(&["stop", "--force", "etcd-2"]);
    let o = filc_in(
        &net,
        0,
        &hosts[0],
        &[
            "etcd",
            "rescue",
            "etcd-0",
            "--assume-down",
            "boot1",
            "--assume-down",
            "boot2",
            "--yes",
        ],
    );
    refused(&o, "boot0 is behind");
    assert!(
        text(&o).contains("boot1 holds revision") || text(&o).contains("boot2 holds revision"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("data positions: boot0 revision"),
        "{}",
        text(&o)
    );

    net.isolate(0, CONTROL_PORT, false);

    // 5. boot1 and boot2 back (boot0 catches up), then boot0 and boot2 stop: boot1 runs
    // alone without quorum, the others silent. Without --assume-down: refused.
    hosts[1].fild.filc_ok(&["start", "etcd-1"]);
    hosts[2].fild.filc_ok(&["start", "etcd-2"]);
    assert!(
        wait_until(UP, || (0..3).all(|n| healthy(&net, n))),
        "the cluster did not heal"
    );
    hosts[0].fild.filc_ok(&["stop", "--force", "etcd-0"]);
    hosts[2].fild.filc_ok(&["stop", "--force", "etcd-2"]);
    let o = filc_in(&net, 1, &hosts[1], &["etcd", "rescue", "etcd-1", "--yes"]);
    refused(&o, "answer on neither");
    assert_eq!(member_names(&net, 1), three);

    // 6. Two rescues at once on two hosts: at most one proceeds.
    let args = |me: &str, a: &str, b: &str| -> Vec<String> {
        [
            "etcd",
            "rescue",
            me,
            "--assume-down",
            a,
            "--assume-down",
            b,
            "--yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a1 = args("etcd-1", "boot0", "boot2");
    let a2 = args("etcd-2", "boot0", "boot1");
    let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
    let a2: Vec<&str> = a2.iter().map(String::as_str).collect();
    let c1 = filc_cmd(&net, 1, &hosts[1], &a1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let c2 = filc_cmd(&net, 2, &hosts[2], &a2)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (o1, o2) = (
        c1.wait_with_output().unwrap(),
        c2.wait_with_output().unwrap(),
    );
    let ok: Vec<usize> = [(1, &o1), (2, &o2)]
        .iter()
        .filter(|(_, o)| o.status.success())
        .map(|(n, _)| *n)
        .collect();
    assert!(
        ok.len() <= 1,
        "both rescues proceeded:\n{}\n---\n{}",
        text(&o1),
        text(&o2)
    );
    // The one that checked second sees the other's operation; the first may go on, or meet
    // the quorum its own start gave back to the stopped member's cluster.
    let why = [
        "one operation without quorum at a time",
        "holds quorum",
        "as part of a cluster with a leader",
    ];
    assert!(
        [&o1, &o2]
            .iter()
            .any(|o| text(o).contains("one operation without quorum at a time")),
        "neither rescue saw the other's operation:\n{}\n---\n{}",
        text(&o1),
        text(&o2)
    );
    for (n, o) in [(1, &o1), (2, &o2)] {
        if !o.status.success() {
            assert!(
                why.iter().any(|w| text(o).contains(w)),
                "rescue on host {n}:\n{}",
                text(o)
            );
        }
    }
    for n in [0, 2] {
        hosts[n]
            .fild
            .wait_state(&format!("etcd-{n}"), fild::api::ProcessState::Stopped, UP);
    }
    // 7. Neither or one proceeded: with --assume-down and --yes, one rescue proceeds.
    let survivor = match ok.first() {
        Some(&n) => n,
        None => {
            let o = filc_in(&net, 1, &hosts[1], &a1);
            assert!(o.status.success(), "{}", text(&o));
            1
        }
    };
    assert!(wait_until(UP, || healthy(&net, survivor)));
    assert_eq!(
        member_names(&net, survivor),
        vec![format!("boot{survivor}")]
    );

    // 8. Re-growth: each other host re-adds its member with a fresh data dir.
    for n in (0..3).filter(|n| *n != survivor) {
        // The host's gateway is its way to the cluster while its own member is down.
        activate(hosts[n].root.path(), "etcd-gw");
        hosts[n].fild.filc_ok(&["reload"]);
        hosts[n].fild.filc_ok(&["start", "etcd-gw"]);
        let o = filc_in(
            &net,
            n,
            &hosts[n],
            &["etcd", "replace", &format!("etcd-{n}"), "--yes"],
        );
        assert!(o.status.success(), "replace on host {n}:\n{}", text(&o));
    }
    assert!(
        wait_until(UP, || (0..3).all(|n| healthy(&net, n))),
        "the regrown cluster is not healthy"
    );
    // The first host re-added joined a cluster of two, and its gateway listed those two; the
    // member re-added after it reaches that gateway through fild's liveness (a window).
    for n in (0..3).filter(|n| *n != survivor) {
        let mut endpoints = Vec::new();
        assert!(
            wait_until(Duration::from_secs(90), || {
                let o = hosts[n].fild.filc(&["etcd", "show", "etcd-gw", "--json"]);
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
                endpoints = v["endpoints"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                endpoints.len() == 3
            }),
            "host {n}'s gateway lists {endpoints:?}, not the three members"
        );
    }
    assert_eq!(member_names(&net, 0), three);
    for n in 0..3 {
        for (k, v) in &keys {
            assert!(
                wait_until(UP, || get_from(&net, n, k).as_deref() == Some(v.as_str())),
                "member {n} lacks {k}={v}"
            );
        }
    }
    let mut hashes = Vec::new();
    assert!(wait_until(UP, || {
        let o = etcdctl(&net, &[0, 1, 2], &["endpoint", "hashkv"]);
        hashes = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split(", ").nth(1).map(str::to_string))
            .collect();
        o.status.success() && hashes.len() == 3 && hashes.iter().all(|h| *h == hashes[0])
    }));

    // 9. A restore after the rescue and the re-growth, host after host. The first host
    // re-added learned the list of its day (the survivor and itself); every host must still
    // rebuild the configured cluster of three. The last host starts after the first two
    // formed the restored cluster's quorum: it joins them, and a re-run there has nothing
    // left to do.
    let file = snapshot_on(&net, survivor, &hosts[survivor]);
    put(&net, survivor, "lost/9", "after the second snapshot");
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["stop", "--force", &format!("etcd-{n}")]);
    }
    let order: Vec<usize> = (0..3)
        .filter(|n| *n != survivor)
        .chain([survivor])
        .collect();
    let restore = |n: usize| {
        filc_cmd(&net, n, &hosts[n], &["etcd", "restore", &file, "--yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (restore(order[0]), restore(order[1]));
    for (n, c) in [(order[0], a), (order[1], b)] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "restore on host {n}:\n{}", text(&o));
        assert!(
            text(&o).contains("new cluster with 3 members"),
            "host {n} did not rebuild the configured three:\n{}",
            text(&o)
        );
    }
    let last = filc_in(
        &net,
        order[2],
        &hosts[order[2]],
        &["etcd", "restore", &file, "--yes"],
    );
    eprintln!("the last host's restore:\n{}", text(&last));
    assert!(
        last.status.success(),
        "the last host's restore, after the others formed quorum:\n{}",
        text(&last)
    );
    assert!(
        text(&last).contains("already has quorum on the other hosts"),
        "{}",
        text(&last)
    );
    let again = filc_in(
        &net,
        order[2],
        &hosts[order[2]],
        &["etcd", "restore", &file, "--yes"],
    );
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already done"), "{}", text(&again));
    assert_restored(
        &net,
        &keys,
        "lost/9",
        "the cluster restored host after host",
    );

    drop(hosts);
}
