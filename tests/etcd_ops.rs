//! `filc etcd ...` against real three-member clusters.
mod common;

use std::time::Duration;

use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(30);

#[test]
fn etcd_status_rows_and_verdict_exit_codes() {
    let c = Cluster::new("etcdstatus");
    c.start_all();
    c.wait_healthy(UP);
    let f = c.fild();
    // Healthy: exit 0, one row per member, a leader, the verdict line.
    let mut o = f.filc(&["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = f.filc(&["etcd", "status"]);
            code(&o) == 0
        }),
        "{}",
        text(&o)
    );
    let out = text(&o);
    for n in 0..3 {
        assert!(out.contains(&format!("etcd-{n}")), "{out}");
        assert!(out.contains(&format!("boot{n}")), "{out}");
        assert!(out.contains(&format!("127.0.0.1:{}", c.client[n])), "{out}");
    }
    assert!(out.contains("verdict: healthy: 3 of 3"), "{out}");

    let o = f.filc(&["etcd", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["verdict"], "healthy");
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members.iter().filter(|m| m["leader"] == true).count(), 1);
    for m in members {
        for k in [
            "program",
            "program_state",
            "name",
            "id",
            "client_url",
            "leader",
            "raft_term",
            "raft_index",
            "db_size",
            "learner",
            "healthy",
            "alarms",
        ] {
            assert!(m.get(k).is_some(), "member lacks {k}: {m}");
        }
        assert!(m["db_size"].as_i64().unwrap() > 0);
        assert_eq!(m["healthy"], true);
    }

    // One member down: degraded, exit 1.
    f.filc_ok(&["stop", "--force", "etcd-2"]);
    let mut o = f.filc(&["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = f.filc(&["etcd", "status"]);
            code(&o) == 1
        }),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("degraded"), "{}", text(&o));

    // Two down: no quorum, exit 2.
    f.filc_ok(&["stop", "--force", "etcd-1"]);
    let mut o = f.filc(&["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = f.filc(&["etcd", "status"]);
            code(&o) == 2
        }),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("NO QUORUM"), "{}", text(&o));
}

#[test]
fn operations_given_a_member_name_point_to_its_program() {
    // The members view is all these refusals need: nothing is started, nothing changes.
    let c = Cluster::new("etcdnames");
    let f = c.fild();
    let peer = format!("http://127.0.0.1:{}", c.peer[1]);
    for (args, run) in [
        (
            vec!["replace", "boot0"],
            "filc etcd replace etcd-0".to_string(),
        ),
        (vec!["add", "boot1"], "filc etcd add etcd-1".into()),
        (vec!["remove", "boot2"], "filc etcd remove etcd-2".into()),
        (vec!["rescue", "boot0"], "filc etcd rescue etcd-0".into()),
        (
            vec!["move", "boot1", "--peer-url", &peer],
            format!("filc etcd move etcd-1 --peer-url {peer}"),
        ),
        (vec!["show", "boot2"], "filc etcd show etcd-2".into()),
    ] {
        let mut argv = vec!["etcd"];
        argv.extend(&args);
        let o = f.filc(&argv);
        let t = text(&o);
        assert_eq!(code(&o), 1, "{t}");
        let program = run.split(' ').nth(3).unwrap();
        let hint = format!(
            "{} is the etcd member name of program {program}: run `{run}`",
            args[1]
        );
        assert!(t.contains(&hint), "filc {argv:?}: {t}");
    }
    // A name close to one program's: that program.
    let t = text(&f.filc(&["etcd", "replace", "etcd1"]));
    assert!(
        t.contains("did you mean program etcd-1? run `filc etcd replace etcd-1`"),
        "{t}"
    );
    let t = text(&f.filc(&["etcd", "show", "etcdgw"]));
    assert!(
        t.contains("did you mean program etcd-gw? run `filc etcd show etcd-gw`"),
        "{t}"
    );
    for p in ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"] {
        assert_eq!(c.pid(p), 0, "{p} was started");
    }
    c.assert_kit_clean("refused operations");
}
