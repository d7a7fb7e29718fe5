//! `filc etcd replace|add|remove|move|rescue` against real three-member clusters. Every
//! operation is checked by what etcd and the files show afterwards; keys written before an
//! operation are read back from every member through its own endpoint.
mod common;

use std::path::Path;
use std::time::Duration;

use common::backups::{assert_named_by_revision, assert_private, db_files};
use common::etcd::*;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
struct Member {
    id: u64,
    name: String,
    peer: Vec<String>,
    learner: bool,
}

/// `etcdctl member list` through one endpoint.
fn member_list(c: &Cluster, n: usize) -> Option<Vec<Member>> {
    let out = c.etcdctl(&c.endpoint(n), &["member", "list", "-w", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let ms = v["members"].as_array()?;
    Some(
        ms.iter()
            .map(|m| Member {
                id: m["ID"].as_u64().unwrap_or(0),
                name: m["name"].as_str().unwrap_or("").to_string(),
                peer: m["peerURLs"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|u| u.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                learner: m["isLearner"].as_bool().unwrap_or(false),
            })
            .collect(),
    )
}

/// The member list, asked of the first member that answers among `from`.
fn members(c: &Cluster, from: &[usize]) -> Vec<Member> {
    let mut got = None;
    let ok = wait_until(UP, || {
        got = from.iter().find_map(|n| member_list(c, *n));
        got.is_some()
    });
    assert!(ok, "no member of {from:?} answers a member list");
    let mut l = got.unwrap();
    l.sort_by(|a, b| a.name.cmp(&b.name));
    l
}

fn id_of(list: &[Member], name: &str) -> u64 {
    list.iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
        .id
}

/// Entries of the data root, sorted.
fn data_dirs(c: &Cluster) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&c.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `boot2.etcd.<UTC timestamp>` dirs.
fn moved_aside(c: &Cluster, member: &str) -> Vec<String> {
    let prefix = format!("{member}.etcd.");
    data_dirs(c)
        .into_iter()
        .filter(|d| {
            d.strip_prefix(&prefix).is_some_and(|s| {
                s.len() >= 16
                    && s.as_bytes()[8] == b'T'
                    && s[..8].bytes().all(|b| b.is_ascii_digit())
                    && s[9..15].bytes().all(|b| b.is_ascii_digit())
                    && s.as_bytes()[15] == b'Z'
            })
        })
        .collect()
}

/// What "nothing changed" compares: member IDs, data dirs, pids and states of the programs.
fn fingerprint(c: &Cluster, ask: &[usize]) -> (Vec<Member>, Vec<String>, Vec<(i32, ProcessState)>) {
    let pids = (0..3)
        .map(|n| {
            let i = c.fild().info(&format!("etcd-{n}"));
            (i.pid as i32, i.state)
        })
        .collect();
    (members(c, ask), data_dirs(c), pids)
}

/// Snapshot files in the default backup dir.
/// The snapshots in the deployment's backup dir (`[etcd] backup_dir`, as fild reports it).
fn snapshots(c: &Cluster) -> Vec<String> {
    let out = c.fild().filc(&["etcd", "backups", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let dir = list
        .first()
        .and_then(|b| b["path"].as_str())
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| c.root.join("var/backups/etcd"));
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".db"))
                .collect()
        })
        .unwrap_or_default()
}

/// The deployment's backup folder (`[etcd] backup_dir` of the kit's fild.ini).
fn backup_dir(c: &Cluster) -> std::path::PathBuf {
    c.root.join("var/backups/etcd")
}

/// A healthy cluster with keys k0..k4 written through etcd-0.
fn cluster_with_keys(name: &str) -> Cluster {
    let c = Cluster::new(name);
    c.start_all();
    c.wait_healthy(UP);
    for i in 0..5 {
        let ok = wait_until(UP, || {
            c.put(&c.endpoint(0), &format!("k{i}"), &format!("v{i}"))
        });
        assert!(ok, "put k{i}");
    }
    c
}

/// Every key written before is held by each of `ns`, read through its own endpoint.
fn keys_on(c: &Cluster, ns: &[usize]) {
    for &n in ns {
        for i in 0..5 {
            c.wait_value(n, &format!("k{i}"), &format!("v{i}"), UP);
        }
    }
}

/// A new write reaches every member of `ns`.
fn write_reaches(c: &Cluster, key: &str, ns: &[usize]) {
    let ok = wait_until(UP, || c.put(&c.gateway(), key, "after"));
    assert!(ok, "put {key} through the gateway");
    for &n in ns {
        c.wait_value(n, key, "after", UP);
    }
}

fn filc_ok(c: &Cluster, args: &[&str]) -> String {
    let o = c.fild().filc(args);
    assert!(o.status.success(), "filc {args:?} failed:\n{}", text(&o));
    text(&o)
}

fn filc_refused(c: &Cluster, args: &[&str], mention: &str) -> String {
    let o = c.fild().filc(args);
    let t = text(&o);
    assert!(!o.status.success(), "filc {args:?} should be refused:\n{t}");
    assert!(
        t.to_lowercase().contains(mention),
        "filc {args:?}: refusal does not mention {mention:?}:\n{t}"
    );
    t
}

/// etcdctl, retried while etcd refuses reconfiguration for a few seconds after a change.
fn etcdctl_retry(c: &Cluster, args: &[&str]) {
    let mut last = String::new();
    let ok = wait_until(UP, || {
        let o = c.etcdctl(&c.endpoint(0), args);
        last = text(&o);
        o.status.success()
    });
    assert!(ok, "etcdctl {args:?}: {last}");
}

fn stop(c: &Cluster, program: &str) {
    c.fild().filc_ok(&["stop", "--force", program]);
}

#[test]
fn replace_rebuilds_a_member_whose_data_is_lost() {
    let c = cluster_with_keys("mreplace");
    let before = members(&c, &[0, 1]);
    let old_id = id_of(&before, "boot2");

    // etcd-2's disk "fails": stop it and put garbage where its data was.
    stop(&c, "etcd-2");
    let dd = c.data.join("boot2.etcd");
    std::fs::rename(&dd, c.data.join("lost-boot2")).unwrap();
    std::fs::create_dir_all(dd.join("member/snap")).unwrap();
    std::fs::write(dd.join("member/snap/db"), b"garbage, not a bolt db").unwrap();

    let out = filc_ok(&c, &["etcd", "replace", "etcd-2"]);
    for step in [
        "snapshot",
        "check quorum",
        "stop etcd-2",
        "member remove",
        "moved old data dir aside",
        "member add",
        "cluster_state=existing",
        "start etcd-2",
        "promote",
        "verified",
    ] {
        assert!(out.contains(step), "no step {step:?} in:\n{out}");
    }

    let after = members(&c, &[0, 1, 2]);
    assert_eq!(after.len(), 3, "{after:?}");
    let new_id = id_of(&after, "boot2");
    assert_ne!(new_id, old_id, "boot2 kept its member ID");
    assert!(after.iter().all(|m| !m.learner), "{after:?}");
    assert_eq!(id_of(&after, "boot0"), id_of(&before, "boot0"));
    assert_eq!(id_of(&after, "boot1"), id_of(&before, "boot1"));
    let aside = moved_aside(&c, "boot2");
    assert_eq!(aside.len(), 1, "{:?}", data_dirs(&c));
    assert!(c.data.join(&aside[0]).join("member/snap/db").is_file());
    // What the replace learned is runtime state; the shipped kit is untouched.
    c.assert_kit_clean("filc etcd replace etcd-2");
    let s = c.settings("etcd-2");
    assert_eq!(s.cluster_state, "existing", "{s:?}");
    assert!(s.argv.contains(&"existing".to_string()), "{:?}", s.argv);
    // It joins with the cluster its settings already name, so no initial_cluster is learned
    // (one learned would pin the others' URLs over later ETCDn_HOST changes).
    assert!(
        s.initial_cluster
            .contains(&format!("boot2=http://127.0.0.1:{}", c.peer[2])),
        "{s:?}"
    );
    assert_eq!(c.learned("etcd-2", "initial_cluster"), None, "{s:?}");
    assert!(
        s.runtime_file
            .starts_with(&c.root.path().display().to_string())
    );
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);
    write_reaches(&c, "after-replace", &[0, 1, 2]);
    // A snapshot was taken before the first change, into the backup dir.
    assert_eq!(snapshots(&c).len(), 1, "{out}");
    assert!(out.find("snapshot:").unwrap() < out.rfind("stop etcd-2").unwrap());
    assert_private(&backup_dir(&c));
    assert_named_by_revision(&db_files(&backup_dir(&c))[0]);
    let st = filc_ok(&c, &["etcd", "status"]);
    assert!(st.contains("healthy: 3 of 3"), "{st}");
}

#[test]
fn replace_is_refused_without_quorum_of_the_others_and_changes_nothing() {
    let c = cluster_with_keys("mrefuse");
    stop(&c, "etcd-1");
    assert!(wait_until(UP, || !c.healthy(1)));
    let before = fingerprint(&c, &[0, 2]);
    let t = filc_refused(&c, &["etcd", "replace", "etcd-2"], "quorum");
    assert!(t.contains("etcd-2"), "{t}");
    assert!(t.contains("Nothing changed"), "{t}");
    let after = fingerprint(&c, &[0, 2]);
    assert_eq!(before, after, "the refusal changed something:\n{t}");
    assert!(snapshots(&c).is_empty(), "a refusal took a snapshot");

    // Bad input: a program that is not a member.
    let t = filc_refused(&c, &["etcd", "replace", "etcd-9"], "etcd-9");
    assert!(t.contains("not the program of an etcd member"), "{t}");
    // As close to every program's name as to any one's: no guess.
    assert!(!t.contains("did you mean"), "{t}");
    assert_eq!(fingerprint(&c, &[0, 2]), after);
}

#[test]
fn an_interrupted_replace_run_again_finishes() {
    let c = cluster_with_keys("mrerun");

    // Round 1: interrupted after the member remove (done by hand), program stopped.
    let id2 = id_of(&members(&c, &[0]), "boot2");
    etcdctl_retry(&c, &["member", "remove", &format!("{id2:x}")]);
    stop(&c, "etcd-2");
    let out = filc_ok(&c, &["etcd", "replace", "etcd-2"]);
    assert!(
        out.contains("already removed") || out.contains("skipped"),
        "{out}"
    );
    let after = members(&c, &[0, 1, 2]);
    assert_eq!(after.len(), 3, "{after:?}");
    let id2b = id_of(&after, "boot2");
    assert_ne!(id2b, id2);
    assert!(after.iter().all(|m| !m.learner));
    assert_eq!(moved_aside(&c, "boot2").len(), 1, "{:?}", data_dirs(&c));
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);

    // Round 2: interrupted after the learner add (old data dir still in place).
    stop(&c, "etcd-2");
    etcdctl_retry(&c, &["member", "remove", &format!("{id2b:x}")]);
    let peer = format!("http://127.0.0.1:{}", c.peer[2]);
    etcdctl_retry(
        &c,
        &[
            "member",
            "add",
            "boot2",
            &format!("--peer-urls={peer}"),
            "--learner",
        ],
    );
    // The learner is reused; the data dir it would start on is the old member's: moved aside.
    let out = filc_ok(&c, &["etcd", "replace", "etcd-2"]);
    assert!(out.contains("reused"), "{out}");
    let after = members(&c, &[0, 1, 2]);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().all(|m| !m.learner), "{after:?}");
    assert_eq!(moved_aside(&c, "boot2").len(), 2, "{:?}", data_dirs(&c));
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);
    write_reaches(&c, "after-rerun", &[0, 1, 2]);
}

#[test]
fn remove_guards_quorum_and_remove_then_add_round_trips() {
    let c = cluster_with_keys("mremove");
    // Another member down: removing etcd-2 would leave one healthy member of two.
    stop(&c, "etcd-0");
    assert!(wait_until(UP, || !c.healthy(0)));
    let before = fingerprint(&c, &[1, 2]);
    let t = filc_refused(&c, &["etcd", "remove", "etcd-2"], "quorum");
    assert!(t.contains("Nothing changed"), "{t}");
    assert_eq!(fingerprint(&c, &[1, 2]), before, "{t}");
    c.fild().filc_ok(&["start", "etcd-0"]);
    c.wait_healthy(UP);

    // Remove etcd-2: two members left.
    let ids = members(&c, &[0, 1]);
    let out = filc_ok(&c, &["etcd", "remove", "etcd-2", "--yes"]);
    assert!(out.contains("member remove boot2"), "{out}");
    assert!(out.contains("even number"), "{out}");
    let two = members(&c, &[0, 1]);
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.iter().all(|m| m.name != "boot2"));
    assert_eq!(id_of(&two, "boot0"), id_of(&ids, "boot0"));
    assert_eq!(c.fild().state("etcd-2"), ProcessState::Stopped);
    assert_eq!(moved_aside(&c, "boot2").len(), 1, "{:?}", data_dirs(&c));
    assert_eq!(
        c.learned("etcd-2", "cluster_state").as_deref(),
        Some("existing")
    );
    c.assert_kit_clean("filc etcd remove etcd-2");
    assert!(wait_until(UP, || c.healthy(0) && c.healthy(1)));
    keys_on(&c, &[0, 1]);

    // From two members, any removal is refused.
    let before = fingerprint(&c, &[0, 1]);
    let t = filc_refused(&c, &["etcd", "remove", "etcd-1"], "unsafe");
    assert!(t.contains("Nothing changed"), "{t}");
    assert_eq!(fingerprint(&c, &[0, 1]), before, "{t}");

    // Add it back: three voting members, the keys on all.
    let out = filc_ok(&c, &["etcd", "add", "etcd-2"]);
    assert!(out.contains("member add boot2 as a learner"), "{out}");
    c.assert_kit_clean("filc etcd add etcd-2");
    assert!(out.contains("promote"), "{out}");
    let three = members(&c, &[0, 1, 2]);
    assert_eq!(three.len(), 3, "{three:?}");
    assert!(three.iter().all(|m| !m.learner));
    assert_ne!(id_of(&three, "boot2"), id_of(&ids, "boot2"));
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);
    write_reaches(&c, "after-add", &[0, 1, 2]);

    // One snapshot before the remove, one before the add, both private.
    assert_eq!(db_files(&backup_dir(&c)).len(), 2);
    assert_private(&backup_dir(&c));
    for f in db_files(&backup_dir(&c)) {
        assert_named_by_revision(&f);
    }

    // Adding a member that is one already is refused.
    let before = fingerprint(&c, &[0, 1, 2]);
    filc_refused(&c, &["etcd", "add", "etcd-2"], "already a member");
    assert_eq!(fingerprint(&c, &[0, 1, 2]), before);
}

#[test]
fn move_gives_a_member_a_new_peer_url() {
    let c = cluster_with_keys("mmove");
    let before = fingerprint(&c, &[0, 1, 2]);
    // Bad input first: refused, nothing changed.
    filc_refused(
        &c,
        &["etcd", "move", "etcd-1", "--peer-url", "nonsense"],
        "not a peer url",
    );
    let gw = format!("http://127.0.0.1:{}", c.gw);
    filc_refused(
        &c,
        &["etcd", "move", "etcd-1", "--peer-url", &gw],
        "gateway",
    );
    assert_eq!(fingerprint(&c, &[0, 1, 2]), before);

    let port = loop {
        let p = free_port();
        if !c.peer.contains(&p) && !c.client.contains(&p) && p != c.gw {
            break p;
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    let out = filc_ok(&c, &["etcd", "move", "etcd-1", "--peer-url", &url]);
    assert!(out.contains("member update boot1"), "{out}");
    let after = members(&c, &[0, 1, 2]);
    let b1 = after.iter().find(|m| m.name == "boot1").unwrap();
    assert_eq!(b1.peer, vec![url.clone()]);
    assert_eq!(b1.id, id_of(&before.0, "boot1"), "move keeps the member ID");
    c.assert_kit_clean("filc etcd move etcd-1");
    let s = c.settings("etcd-1");
    assert_eq!(s.peer_url, url, "{s:?}");
    assert!(s.initial_cluster.contains(&format!("boot1={url}")), "{s:?}");
    // The other members' initial cluster follows too.
    assert!(
        c.settings("etcd-0")
            .initial_cluster
            .contains(&format!("boot1={url}"))
    );
    c.wait_healthy(UP);
    // It listens on the new port, no longer on the old one.
    assert!(Cluster::port_held(port));
    assert!(wait_until(UP, || !Cluster::port_held(c.peer[1])));
    keys_on(&c, &[0, 1, 2]);
    write_reaches(&c, "after-move", &[0, 1, 2]);
}

#[test]
fn rescue_rebuilds_the_cluster_from_one_survivor() {
    let c = cluster_with_keys("mrescue");
    let id0 = id_of(&members(&c, &[0]), "boot0");
    // Two of three members lose their data for good.
    stop(&c, "etcd-1");
    stop(&c, "etcd-2");
    for m in ["boot1", "boot2"] {
        std::fs::rename(
            c.data.join(format!("{m}.etcd")),
            c.data.join(format!("destroyed-{m}")),
        )
        .unwrap();
    }
    assert!(
        wait_until(UP, || !c.healthy(0)),
        "etcd-0 still healthy alone"
    );

    let out = filc_ok(&c, &["etcd", "rescue", "etcd-0", "--yes"]);
    assert!(out.contains("--force-new-cluster"), "{out}");
    // The member list is checked after the forced start (releases before 3.5.22 can leave
    // zombie members): boot0 alone before the re-adds.
    assert!(
        out.contains("member list: boot0 alone, as forced (no zombie members)"),
        "{out}"
    );
    // The survivor's snapshot before the forced restart, private, and named by the revision
    // it holds (a read before it, without quorum, once named it r0).
    assert_eq!(db_files(&backup_dir(&c)).len(), 1, "{out}");
    assert_private(&backup_dir(&c));
    assert!(assert_named_by_revision(&db_files(&backup_dir(&c))[0]) > 5);
    assert!(out.contains("re-add etcd-1"), "{out}");
    assert!(out.contains("re-add etcd-2"), "{out}");
    c.assert_kit_clean("filc etcd rescue etcd-0");
    let s0 = c.settings("etcd-0");
    assert!(s0.next_start_flags.is_empty(), "{s0:?}");
    assert!(
        !s0.argv.contains(&"--force-new-cluster".to_string()),
        "{s0:?}"
    );
    // The running etcd-0 is the normal restart after the forced one.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", c.pid("etcd-0"))).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("--force-new-cluster"),
        "the forced start's flag stayed"
    );
    let after = members(&c, &[0, 1, 2]);
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().all(|m| !m.learner), "{after:?}");
    assert_eq!(id_of(&after, "boot0"), id0);
    assert!(Path::new(&c.data.join("boot0.etcd")).is_dir());
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);
    write_reaches(&c, "after-rescue", &[0, 1, 2]);

    // Run again on a healthy cluster: nothing to do, nothing changed.
    let before = fingerprint(&c, &[0, 1, 2]);
    let out = filc_ok(&c, &["etcd", "rescue", "etcd-0", "--yes"]);
    assert!(!out.contains("runtime "), "{out}");
    assert_eq!(fingerprint(&c, &[0, 1, 2]), before);
}

#[test]
fn rescue_from_a_member_that_cannot_serve_points_to_the_backups() {
    let c = cluster_with_keys("mrescuebad");
    // Every member down, and the one named as the survivor has no usable data.
    for n in 0..3 {
        stop(&c, &format!("etcd-{n}"));
    }
    let dd = c.data.join("boot0.etcd");
    std::fs::rename(&dd, c.data.join("lost-boot0")).unwrap();
    std::fs::create_dir_all(dd.join("member/snap")).unwrap();
    std::fs::write(dd.join("member/snap/db"), b"garbage, not a bolt db").unwrap();
    let dirs = data_dirs(&c);

    let t = filc_refused(&c, &["etcd", "rescue", "etcd-0"], "does not answer");
    assert!(
        t.contains("restore a snapshot instead: `filc etcd backups` lists them, then `filc etcd restore FILE`"),
        "{t}"
    );
    assert_eq!(data_dirs(&c), dirs, "{t}");
    assert!(snapshots(&c).is_empty(), "{t}");
    c.assert_kit_clean("a refused rescue");
}

#[test]
fn a_rescued_cluster_of_one_grows_back_to_three_with_replace_and_add() {
    let c = cluster_with_keys("mgrow");
    // etcd-1 and etcd-2 are lost and, as on other hosts, not among this fild's programs.
    stop(&c, "etcd-1");
    stop(&c, "etcd-2");
    for p in ["etcd-1", "etcd-2"] {
        std::fs::remove_file(c.root.path().join(format!("etc/fild/apps/{p}.ini"))).unwrap();
    }
    filc_ok(&c, &["reload"]);
    assert!(
        wait_until(UP, || !c.healthy(0)),
        "etcd-0 still healthy alone"
    );
    // Members this fild does not run and that answer nothing may be alive elsewhere: the
    // rescue refuses until they are named as down.
    filc_refused(
        &c,
        &["etcd", "rescue", "etcd-0", "--yes"],
        "--assume-down boot1",
    );
    filc_ok(
        &c,
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
    let one = members(&c, &[0]);
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(wait_until(UP, || c.put(
        &c.endpoint(0),
        "after-rescue",
        "v"
    )));

    // The members come back: a replace grows one voter to two, an add two to three.
    activate(c.root.path(), "etcd-1");
    activate(c.root.path(), "etcd-2");
    filc_ok(&c, &["reload"]);
    let out = filc_ok(&c, &["etcd", "replace", "etcd-1", "--yes"]);
    assert!(out.contains("joins as a learner"), "{out}");
    assert!(
        out.contains("promote boot1 once it caught up: voting members 1 -> 2"),
        "{out}"
    );
    let two = members(&c, &[0, 1]);
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.iter().all(|m| !m.learner), "{two:?}");
    let out = filc_ok(&c, &["etcd", "add", "etcd-2"]);
    assert!(out.contains("voting members 2 -> 3"), "{out}");
    let three = members(&c, &[0, 1, 2]);
    assert_eq!(three.len(), 3, "{three:?}");
    assert!(three.iter().all(|m| !m.learner), "{three:?}");
    c.wait_healthy(UP);
    keys_on(&c, &[0, 1, 2]);
    for n in 0..3 {
        c.wait_value(n, "after-rescue", "v", UP);
    }
    write_reaches(&c, "after-growth", &[0, 1, 2]);
    c.assert_kit_clean("filc etcd replace etcd-1; filc etcd add etcd-2");
}
