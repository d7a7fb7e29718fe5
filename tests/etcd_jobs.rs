//! etcd operations run inside fild (issue 13): they outlive their client, are followed and
//! re-attached, journaled across a SIGKILL of fild, one at a time, planned first, and
//! destructive steps wait for a confirmation.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(30);

/// `(name, id, learner)` of each member, from member `n`.
fn member_list(c: &Cluster, n: usize) -> Option<Vec<(String, u64, bool)>> {
    let out = c.etcdctl(&c.endpoint(n), &["member", "list", "-w", "json"]);
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut l: Vec<(String, u64, bool)> = v["members"]
        .as_array()?
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["ID"].as_u64().unwrap_or(0),
                m["isLearner"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    l.sort();
    Some(l)
}

fn members(c: &Cluster, from: &[usize]) -> Vec<(String, u64, bool)> {
    let mut got = None;
    assert!(
        wait_until(UP, || {
            got = from.iter().find_map(|n| member_list(c, *n));
            got.is_some()
        }),
        "no member of {from:?} answers a member list"
    );
    got.unwrap()
}

/// Three started voting members, none a learner.
fn three_voters(c: &Cluster) {
    let mut l = Vec::new();
    assert!(
        wait_until(Duration::from_secs(60), || {
            l = members(c, &[0, 1, 2]);
            l.len() == 3
                && l.iter()
                    .all(|(name, _, learner)| !name.is_empty() && !learner)
        }),
        "{l:?}"
    );
}

fn put_keys(c: &Cluster, prefix: &str, n: usize) {
    for i in 0..n {
        assert!(
            wait_until(UP, || c.put(&c.gateway(), &format!("{prefix}{i}"), "v")),
            "put {prefix}{i}"
        );
    }
}

fn keys_everywhere(c: &Cluster, prefix: &str, n: usize) {
    for m in 0..3 {
        for i in 0..n {
            c.wait_value(m, &format!("{prefix}{i}"), "v", UP);
        }
    }
}

/// filc with its stdout piped, as `filc ... | head` runs it.
fn spawn_filc(c: &Cluster, args: &[&str]) -> std::process::Child {
    let f = c.fild();
    Command::new(FILC)
        .arg("-c")
        .arg(&f.config)
        .args(args)
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn filc")
}

/// Read `child`'s stdout until a line starts with `until`; the operation's ID and the lines.
fn read_until(child: &mut std::process::Child, until: &str) -> (u64, Vec<String>) {
    let out = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut id = None;
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        if id.is_none() {
            id = line
                .strip_prefix("operation ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok());
        }
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            return (id.expect("no operation ID line"), lines);
        }
    }
    panic!("filc ended before {until:?}:\n{}", lines.join("\n"));
}

fn kill_child(mut child: std::process::Child) {
    signal(child.id() as i32, libc::SIGKILL);
    let _ = child.wait();
}

fn ops(c: &Cluster) -> Vec<serde_json::Value> {
    let out = c.fild().filc(&["etcd", "ops", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn op(c: &Cluster, id: u64) -> serde_json::Value {
    ops(c)
        .into_iter()
        .find(|o| o["id"].as_u64() == Some(id))
        .unwrap_or_else(|| panic!("no operation {id}"))
}

#[test]
fn an_operation_outlives_its_client_and_a_second_client_sees_every_step() {
    let c = Cluster::up("jobsdetach");
    put_keys(&c, "k", 5);
    let before = members(&c, &[0, 1, 2]);

    // The client goes away right after the first step began (a pipe closed, an SSH drop).
    let mut child = spawn_filc(&c, &["etcd", "replace", "etcd-2", "--yes"]);
    let (id, seen) = read_until(&mut child, "step 1/");
    kill_child(child);
    assert!(
        seen.iter().any(|l| l.starts_with("plan 1/")),
        "no plan before the first step:\n{}",
        seen.join("\n")
    );

    // One operation at a time: a second one is refused, naming the first.
    let o = c.fild().filc(&["etcd", "snapshot"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!("operation {id} (replace etcd-2) running since")),
        "{t}"
    );
    assert!(t.contains(&format!("filc etcd ops --follow {id}")), "{t}");

    // A second client re-attaches and sees every line from the first on, to the end.
    let o = c.fild().filc(&["etcd", "ops", "--follow", &id.to_string()]);
    let t = text(&o);
    assert_eq!(code(&o), 0, "{t}");
    let planned = t.lines().filter(|l| l.starts_with("plan ")).count();
    assert!(planned >= 8, "{t}");
    for i in 1..=planned {
        assert!(
            t.contains(&format!("step {i}/{planned}: done")),
            "step {i} not done:\n{t}"
        );
    }
    assert!(t.contains("replace etcd-2: done"), "{t}");
    assert!(
        t.starts_with(&seen[1]),
        "re-attach did not start from the first line:\n{t}"
    );

    let o = op(&c, id);
    assert_eq!(o["state"], "succeeded", "{o}");
    let journal = std::path::PathBuf::from(o["journal"].as_str().unwrap());
    assert!(
        journal.starts_with(c.root.path().join("var")),
        "{journal:?}"
    );
    let j = std::fs::read_to_string(&journal).unwrap();
    assert!(j.lines().next().unwrap().contains("\"e\":\"begin\""), "{j}");
    assert!(
        j.lines()
            .last()
            .unwrap()
            .contains("\"state\":\"succeeded\""),
        "{j}"
    );
    // fild's log has the steps too.
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap();
    assert!(log.contains("replace etcd-2: done"), "{log}");

    three_voters(&c);
    let after = members(&c, &[0, 1, 2]);
    let id_of = |l: &[(String, u64, bool)], n: &str| l.iter().find(|m| m.0 == n).map(|m| m.1);
    assert_ne!(
        id_of(&after, "boot2"),
        id_of(&before, "boot2"),
        "boot2 was not replaced"
    );
    keys_everywhere(&c, "k", 5);
    c.assert_kit_clean("filc etcd replace etcd-2");
}

#[test]
fn fild_killed_mid_replace_reports_it_and_a_rerun_finishes_it() {
    let mut c = Cluster::up("jobskill");
    put_keys(&c, "k", 5);

    // fild dies right after the old member was removed (the cluster has two voters).
    let mut child = spawn_filc(&c, &["etcd", "replace", "etcd-2", "--yes"]);
    let (id, seen) = read_until(&mut child, "step 4/");
    assert!(
        seen.iter().any(|l| l.starts_with("member remove boot2")),
        "{}",
        seen.join("\n")
    );
    c.fild_mut().kill9();
    kill_child(child);

    // The next fild reports the interrupted operation and what is left.
    c.start_fild();
    c.fild().filc_ok(&["start", "etcd-0", "etcd-1", "etcd-gw"]);
    let o = op(&c, id);
    assert_eq!(o["state"], "interrupted", "{o}");
    let why = o["error"].as_str().unwrap();
    assert!(why.contains("was interrupted"), "{why}");
    assert!(why.contains("steps done"), "{why}");
    assert!(why.contains("left: "), "{why}");
    assert!(
        why.contains("run `filc etcd replace etcd-2 --yes` again"),
        "{why}"
    );
    let log = std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap();
    assert!(
        log.contains(&format!("operation {id} (replace etcd-2) was interrupted")),
        "{log}"
    );
    let table = c.fild().filc_ok(&["etcd", "ops"]);
    assert!(table.contains("interrupted"), "{table}");

    // Writes acknowledged by the two-voter cluster in between must survive too.
    let ok = wait_until(Duration::from_secs(60), || {
        c.put(&c.endpoint(0), "between", "v")
    });
    assert!(ok, "the two remaining voters do not take writes");

    // The re-run plans only what is left and finishes it.
    let o = c.fild().filc(&["etcd", "replace", "etcd-2", "--yes"]);
    let t = text(&o);
    assert_eq!(code(&o), 0, "{t}");
    assert!(t.contains("not in the member list"), "{t}");
    three_voters(&c);
    keys_everywhere(&c, "k", 5);
    for m in 0..3 {
        c.wait_value(m, "between", "v", UP);
    }
}

/// What a dry run must leave as it was.
#[derive(Debug, PartialEq)]
struct World {
    members: Vec<(String, u64, bool)>,
    data: Vec<String>,
    pids: Vec<i32>,
    backups: Vec<String>,
    runtime: Vec<(String, String)>,
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn world(c: &Cluster) -> World {
    let rt = c.root.join("var/etcd/runtime");
    World {
        members: members(c, &[0, 1, 2]),
        data: listing(&c.data),
        pids: ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
            .iter()
            .map(|p| c.pid(p))
            .collect(),
        backups: listing(&c.root.join("var/backups/etcd")),
        runtime: listing(&rt)
            .into_iter()
            .map(|f| {
                let t = std::fs::read_to_string(rt.join(&f)).unwrap_or_default();
                (f, t)
            })
            .collect(),
    }
}

#[test]
fn dry_runs_print_the_plan_and_change_nothing() {
    let c = Cluster::up("jobsdry");
    put_keys(&c, "k", 3);
    let snap = c.fild().filc_ok(&["etcd", "snapshot"]);
    let snap = snap.lines().last().unwrap().trim().to_string();
    assert!(std::path::Path::new(&snap).is_file(), "{snap}");
    let before = world(&c);
    let free = free_port();
    let peer = format!("http://127.0.0.1:{free}");
    let runs: Vec<Vec<&str>> = vec![
        vec!["etcd", "replace", "etcd-2", "--dry-run"],
        vec!["etcd", "remove", "etcd-2", "--dry-run"],
        vec!["etcd", "move", "etcd-1", "--peer-url", &peer, "--dry-run"],
        vec!["etcd", "restore", &snap, "--force", "--dry-run"],
        vec!["etcd", "defrag", "--dry-run"],
        vec!["etcd", "snapshot", "--dry-run"],
    ];
    for args in &runs {
        let o = c.fild().filc(args);
        let t = text(&o);
        assert_eq!(code(&o), 0, "{args:?}:\n{t}");
        assert!(t.contains("plan 1/"), "{args:?} printed no plan:\n{t}");
        assert!(t.contains("dry run"), "{args:?}:\n{t}");
        assert!(!t.contains("step 1/"), "{args:?} carried out a step:\n{t}");
    }
    // The restore's plan names the revisions it would lose.
    put_keys(&c, "after", 2);
    let o = c
        .fild()
        .filc(&["etcd", "restore", &snap, "--force", "--dry-run"]);
    assert!(
        text(&o).contains("revisions after it are lost"),
        "{}",
        text(&o)
    );
    // A refusal under a dry run changes nothing either.
    let o = c.fild().filc(&["etcd", "add", "etcd-2", "--dry-run"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("refused"), "{}", text(&o));
    assert_eq!(before, world(&c));

    // Quorum lost: a rescue's dry run shows the forced new cluster and does not force it.
    c.fild().filc_ok(&["stop", "--force", "etcd-1", "etcd-2"]);
    let lost = world(&c);
    let o = c.fild().filc(&["etcd", "rescue", "etcd-0", "--dry-run"]);
    let t = text(&o);
    assert_eq!(code(&o), 0, "{t}");
    assert!(t.contains("--force-new-cluster"), "{t}");
    assert!(t.contains("destructive: "), "{t}");
    assert!(t.contains("dry run"), "{t}");
    assert!(!t.contains("step 1/"), "{t}");
    assert_eq!(lost, world(&c));
    let states: Vec<String> = ops(&c)
        .iter()
        .map(|o| o["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "planned").count(),
        runs.len() + 2,
        "{states:?}"
    );
}

#[test]
fn destructive_steps_wait_for_a_confirmation() {
    let c = Cluster::up("jobsyes");
    put_keys(&c, "k", 3);
    let before = members(&c, &[0, 1, 2]);

    // No terminal, no --yes: a healthy member is not removed.
    let o = c.fild().filc(&["etcd", "remove", "etcd-2"]);
    let t = text(&o);
    assert_eq!(code(&o), 1, "{t}");
    assert!(t.contains("removes boot2"), "{t}");
    assert!(t.contains("needs confirmation"), "{t}");
    assert!(t.contains("--yes"), "{t}");
    assert_eq!(members(&c, &[0, 1, 2]), before);

    // Restore over a cluster with quorum: refused without --force, unconfirmed without --yes.
    let snap = c.fild().filc_ok(&["etcd", "snapshot"]);
    let snap = snap.lines().last().unwrap().trim().to_string();
    put_keys(&c, "late", 1);
    let o = c.fild().filc(&["etcd", "restore", &snap]);
    let t = text(&o);
    assert_eq!(code(&o), 1, "{t}");
    assert!(t.contains("the cluster has quorum"), "{t}");
    assert!(t.contains("--force --yes"), "{t}");
    let o = c.fild().filc(&["etcd", "restore", &snap, "--force"]);
    let t = text(&o);
    assert_eq!(code(&o), 1, "{t}");
    assert!(t.contains("revisions after it are lost"), "{t}");
    assert!(t.contains("needs confirmation"), "{t}");
    assert_eq!(members(&c, &[0, 1, 2]), before);
    c.wait_value(0, "late0", "v", UP);

    // At a terminal, the question is asked and a "y" carries the plan out.
    let f = c.fild();
    let cmd = format!("{FILC} -c {} etcd remove etcd-2", f.config.display());
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .envs(f.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write;
            ch.stdin.take().unwrap().write_all(b"y\n")?;
            ch.wait_with_output()
        })
        .expect("run filc under script(1)");
    let t = text(&o);
    assert_eq!(code(&o), 0, "{t}");
    assert!(t.contains("Carry out this plan?"), "{t}");
    assert!(t.contains("remove etcd-2: done"), "{t}");
    let l = members(&c, &[0, 1]);
    assert_eq!(l.len(), 2, "{l:?}");
}
