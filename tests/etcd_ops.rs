//! `filc etcd ...` against real three-member clusters.
mod common;

use std::time::Duration;

use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(30);

/// The HEALTH cell of `program`'s row in `filc etcd status`'s table.
fn health_cell(table: &str, program: &str) -> String {
    let header = table.lines().next().unwrap();
    let (from, to) = (
        header.find("HEALTH").unwrap(),
        header.find("ALARMS").unwrap(),
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{program} ")))
        .unwrap_or_else(|| panic!("no row for {program}: {table}"));
    let row = format!("{row:<w$}", w = header.len());
    row[from..to].trim().to_string()
}

/// `filc etcd status --json`'s row for `program`.
fn json_row(c: &Cluster, program: &str) -> serde_json::Value {
    let o = c.fild().filc(&["etcd", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["program"] == program)
        .cloned()
        .unwrap_or_else(|| panic!("no {program} in {v}"))
}

/// Wait until `program`'s HEALTH cell says `word`; the last table.
fn wait_health(c: &Cluster, program: &str, word: &str) -> String {
    let mut out = String::new();
    let ok = wait_until(UP, || {
        out = text(&c.fild().filc(&["etcd", "status"]));
        health_cell(&out, program) == word
    });
    assert!(ok, "{program} is not {word}: {out}");
    out
}

/// The table stays as narrow as its header (warnings under it, such as a version's
/// end-of-life notice, are sentences).
fn assert_narrow(table: &str) {
    let width = table.lines().next().unwrap().len();
    assert!(
        table
            .lines()
            .filter(|l| !l.starts_with("warning:"))
            .all(|l| l.len() <= width),
        "{table}"
    );
}

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
            "health",
            "alarms",
        ] {
            assert!(m.get(k).is_some(), "member lacks {k}: {m}");
        }
        assert_eq!(m["health"], "ok");
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

    // Its HEALTH cell is one word; the table stays narrow; the error is in --json and -v.
    let table = wait_health(&c, "etcd-2", "refused");
    assert_eq!(health_cell(&table, "etcd-0"), "ok");
    assert_narrow(&table);
    assert!(table.contains("why: filc etcd status -v"), "{table}");
    let row = json_row(&c, "etcd-2");
    assert_eq!(row["health"], "refused", "{row}");
    assert_eq!(row["healthy"], false, "{row}");
    let error = row["error"].as_str().unwrap_or_else(|| panic!("{row}"));
    assert!(error.to_lowercase().contains("connection refused"), "{row}");
    let v = text(&f.filc(&["etcd", "status", "-v"]));
    let verdict = v.find("\nverdict: ").unwrap_or_else(|| panic!("{v}"));
    let detail = v
        .find("\netcd-2 (boot2): refused: ")
        .unwrap_or_else(|| panic!("{v}"));
    assert!(v.starts_with("PROGRAM ") && verdict < detail, "{v}");
    assert!(!v.contains("why: filc etcd status -v"), "{v}");
    assert!(v.to_lowercase().contains("connection refused"), "{v}");

    // A hung member: timeout.
    let hung = c.pid("etcd-1");
    signal(hung, libc::SIGSTOP);
    let table = wait_health(&c, "etcd-1", "timeout");
    signal(hung, libc::SIGCONT);
    assert_narrow(&table);
    assert!(wait_until(UP, || c.healthy(1)), "etcd-1 did not come back");

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
