//! `GET /metrics`: checked by `promtool check metrics` and read with the official Python
//! client's parser, its figures against `filc status --json` and `filc etcd status --json`,
//! on the Unix socket and the TCP listener (behind its credentials); a real etcd cluster for
//! the etcd families. Both checkers are required (`scripts/setup.sh --tests` installs them):
//! missing, the tests fail, they never skip.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::etcd::Cluster;
use common::*;
use serde_json::Value;

/// One HTTP/1.1 exchange on `s`: status, headers (lower-case names), body.
fn exchange(
    mut s: impl Read + Write,
    method: &str,
    auth: Option<&str>,
) -> (u16, HashMap<String, String>, String) {
    let auth = auth
        .map(|a| {
            use base64::Engine;
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        })
        .unwrap_or_default();
    let req = format!(
        "{method} /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    read_reply(s)
}

fn unix_get(sock: &Path, method: &str) -> (u16, HashMap<String, String>, String) {
    let s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    exchange(s, method, None)
}

/// `/metrics` on the Unix socket, asserting a 200 in the 0.0.4 text format.
fn scrape(sock: &Path) -> String {
    let (status, headers, body) = unix_get(sock, "GET");
    assert_eq!(status, 200, "{body}");
    let ct = headers.get("content-type").cloned().unwrap_or_default();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    body
}

/// Run `cmd` with `text` on its standard input; `what` names it when it cannot start.
fn feed(cmd: &mut Command, text: &str, what: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{what} is required (scripts/setup.sh --tests installs it): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `promtool check metrics` on `text`: exit 0 and not a word of complaint.
fn promtool_check(text: &str) {
    let out = feed(
        Command::new("promtool").args(["check", "metrics"]),
        text,
        "promtool (Debian's prometheus)",
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

/// The official Python client's venv (scripts/setup.sh --tests).
fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("var/prom-client/venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} with PyPI's prometheus-client is required (scripts/setup.sh --tests installs it)",
        p.display()
    );
    p
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
print(json.dumps(out))
"#;

/// Samples by name, as the Python client's parser read them, and each family's type.
struct Parsed {
    types: HashMap<String, String>,
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Parsed {
    fn of(text: &str) -> Parsed {
        let out = feed(
            Command::new(python()).args(["-c", PARSE]),
            text,
            "PyPI's prometheus-client",
        );
        assert!(
            out.status.success(),
            "the Python client's parser refused it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fams: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        let mut p = Parsed {
            types: HashMap::new(),
            samples: Vec::new(),
        };
        for f in fams {
            let name = f["name"].as_str().unwrap().to_string();
            assert!(name.starts_with("fild_"), "{name}");
            assert!(
                !f["help"].as_str().unwrap().is_empty(),
                "{name} has no HELP"
            );
            p.types
                .insert(name.clone(), f["type"].as_str().unwrap().to_string());
            for s in f["samples"].as_array().unwrap() {
                let labels = s["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                p.samples.push((
                    s["name"].as_str().unwrap().to_string(),
                    labels,
                    s["value"].as_f64().unwrap(),
                ));
            }
        }
        p
    }

    /// The value of sample `name` whose labels include `want`.
    fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|s| s.2)
    }

    fn must(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.get(name, want)
            .unwrap_or_else(|| panic!("no sample {name}{want:?}"))
    }
}

#[test]
fn metrics_match_status_and_pass_promtool_and_the_python_parser() {
    let dir = TestDir::new("metrics");
    let port = free_port();
    let f = Fild::start(
        &dir,
        &format!(
            "[inet_http_server]\nport=127.0.0.1:{port}\nusername=bob\npassword=scrape-pw\n\n\
             [program:a]\ncommand=sh -c 'while :; do :; done'\nstartsecs=0\n\n\
             [program:b]\ncommand=sh -c 'exit 3'\nstartsecs=0\nautorestart=false\n\n\
             [program:c]\ncommand=sleep 100\nautostart=false\n"
        ),
    );
    f.wait_state(
        "a",
        fild::api::ProcessState::Running,
        Duration::from_secs(10),
    );
    f.wait_state(
        "b",
        fild::api::ProcessState::Exited,
        Duration::from_secs(10),
    );
    // a has burnt some CPU.
    std::thread::sleep(Duration::from_millis(700));

    let text = scrape(&f.socket());
    let status: Vec<Value> = serde_json::from_str(&f.filc_ok(&["status", "--json"])).unwrap();
    promtool_check(&text);
    let p = Parsed::of(&text);

    for (fam, ty) in [
        ("fild_build_info", "gauge"),
        ("fild_uptime_seconds", "gauge"),
        ("fild_cpu_seconds", "counter"),
        ("fild_resident_memory_bytes", "gauge"),
        ("fild_open_fds", "gauge"),
        ("fild_program_state", "gauge"),
        ("fild_program_pid", "gauge"),
        ("fild_program_uptime_seconds", "gauge"),
        ("fild_program_restarts", "counter"),
        ("fild_program_last_exit_status", "gauge"),
        ("fild_program_cpu_seconds", "counter"),
        ("fild_program_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(p.types.get(fam).map(String::as_str), Some(ty), "{fam}");
    }
    assert!(!p.types.keys().any(|k| k.starts_with("fild_etcd_")));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(p.must("fild_build_info", &[("version", version)]), 1.0);
    assert!(p.must("fild_resident_memory_bytes", &[]) > 1e6);
    assert!(p.must("fild_open_fds", &[]) >= 3.0);
    assert!(p.must("fild_uptime_seconds", &[]) > 0.0);

    assert_eq!(status.len(), 3);
    for row in &status {
        let name = row["name"].as_str().unwrap();
        let l = [("program", name)];
        let state = row["state"].as_str().unwrap();
        assert_eq!(
            p.must("fild_program_state", &[("program", name), ("state", state)]),
            1.0,
            "{name}"
        );
        let ones = p
            .samples
            .iter()
            .filter(|(n, lb, v)| n == "fild_program_state" && lb["program"] == name && *v == 1.0)
            .count();
        assert_eq!(ones, 1, "{name}: one state");
        assert_eq!(p.must("fild_program_pid", &l), row["pid"].as_f64().unwrap());
        assert_eq!(
            p.must("fild_program_restarts_total", &l),
            row["restarts"].as_f64().unwrap()
        );
        let up = p.must("fild_program_uptime_seconds", &l);
        assert!(
            (up - row["uptime_secs"].as_f64().unwrap()).abs() <= 2.0,
            "{name}"
        );
        assert_eq!(
            p.get("fild_program_last_exit_status", &l),
            row["exit_status"].as_f64(),
            "{name}"
        );
        let rss = p.must("fild_program_resident_memory_bytes", &l);
        let cpu = p.must("fild_program_cpu_seconds_total", &l);
        if state == "RUNNING" {
            assert!(
                rss > 0.0 && row["rss_bytes"].as_f64().unwrap() > 0.0,
                "{name}"
            );
            assert!(cpu > 0.1, "{name}: {cpu} CPU seconds");
            assert!(
                cpu <= row["cpu_seconds"].as_f64().unwrap() + 0.001,
                "{name}: the scrape came first"
            );
        } else {
            assert_eq!((rss, cpu), (0.0, 0.0), "{name}");
        }
    }
    assert_eq!(
        p.must("fild_program_last_exit_status", &[("program", "b")]),
        3.0
    );

    // HEAD is a GET without the body; every other method is a clear 405 naming GET.
    let (s, _, body) = unix_get(&f.socket(), "HEAD");
    assert_eq!((s, body.as_str()), (200, ""));
    for m in ["POST", "PUT", "DELETE"] {
        let (s, h, body) = unix_get(&f.socket(), m);
        assert_eq!(s, 405, "{m}: {body}");
        assert_eq!(h.get("allow").map(String::as_str), Some("GET, HEAD"));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("use GET"), "{body}");
    }

    // On the TCP listener, behind its credentials like every route.
    let tcp = |method: &str, auth: Option<&str>| {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        exchange(s, method, auth)
    };
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    assert_eq!(tcp("GET", None).0, 401);
    assert_eq!(tcp("GET", Some("bob:wrong")).0, 401);
    let (s, h, body) = tcp("GET", Some("bob:scrape-pw"));
    assert_eq!(s, 200, "{body}");
    assert!(h["content-type"].starts_with("text/plain; version=0.0.4"));
    promtool_check(&body);
    // A POST over TCP without JSON is refused before it is routed (cross-site rule), still 4xx.
    let (s, _, _) = tcp("POST", Some("bob:scrape-pw"));
    assert!((400..500).contains(&s), "{s}");
}

/// The etcd view `/metrics` reports once it names `want` healthy voters with a leader.
fn wait_etcd_view(sock: &Path, want: f64) -> (String, Parsed) {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(60), || {
        last = scrape(sock);
        let p = Parsed::of(&last);
        p.get("fild_etcd_cluster_healthy_voters", &[]) == Some(want)
            && p.samples
                .iter()
                .any(|(n, _, v)| n == "fild_etcd_member_leader" && *v == 1.0)
    });
    assert!(
        ok,
        "the etcd view never showed {want} healthy voters:\n{last}"
    );
    let p = Parsed::of(&last);
    (last, p)
}

#[test]
fn etcd_figures_match_filc_etcd_status() {
    let mut c = Cluster::new("metricsetcd");
    let ini = std::fs::read_to_string(c.config()).unwrap();
    let ini = ini.replacen("[etcd]\n", "[etcd]\nbackup_interval=3s\n", 1);
    std::fs::write(c.config(), ini).unwrap();
    c.fild_mut().terminate();
    c.start_fild();
    c.start_all();
    c.wait_healthy(Duration::from_secs(60));
    c.wait_status_healthy(Duration::from_secs(60));
    // The kit's socket ([unix_http_server] in etc/fild/fild.ini).
    let sock = c.root.join("var/fild/fild.sock");
    let (text, p) = wait_etcd_view(&sock, 3.0);
    promtool_check(&text);
    let st: Value = serde_json::from_str(&c.fild().filc_ok(&["etcd", "status", "--json"])).unwrap();

    for fam in [
        "fild_etcd_view_time_seconds",
        "fild_etcd_cluster_verdict",
        "fild_etcd_cluster_quorum_margin",
        "fild_etcd_member_info",
        "fild_etcd_member_healthy",
        "fild_etcd_member_leader",
        "fild_etcd_member_raft_term",
        "fild_etcd_member_raft_index",
        "fild_etcd_member_db_size_bytes",
        "fild_etcd_member_db_size_in_use_bytes",
        "fild_etcd_member_db_quota_bytes",
        "fild_etcd_member_alarm",
        "fild_etcd_backup_last_success_time_seconds",
        "fild_etcd_backup_last_failure_time_seconds",
        "fild_etcd_backup_last_size_bytes",
        "fild_etcd_backup_files",
    ] {
        assert_eq!(p.types.get(fam).map(String::as_str), Some("gauge"), "{fam}");
    }
    let verdict = st["verdict"].as_str().unwrap();
    assert_eq!(verdict, "healthy");
    assert_eq!(
        p.must("fild_etcd_cluster_verdict", &[("verdict", verdict)]),
        1.0
    );
    assert_eq!(
        p.must("fild_etcd_cluster_verdict", &[("verdict", "no_quorum")]),
        0.0
    );
    assert_eq!(
        p.must("fild_etcd_cluster_voters", &[]),
        st["voters"].as_f64().unwrap()
    );
    assert_eq!(
        p.must("fild_etcd_cluster_quorum", &[]),
        st["quorum"].as_f64().unwrap()
    );
    assert_eq!(p.must("fild_etcd_cluster_quorum_margin", &[]), 1.0);
    let members = st["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for m in members {
        let name = m["name"].as_str().unwrap();
        let l = [("member", name)];
        let flag = |k: &str| if m[k].as_bool().unwrap() { 1.0 } else { 0.0 };
        assert_eq!(
            p.must("fild_etcd_member_healthy", &l),
            flag("healthy"),
            "{name}"
        );
        assert_eq!(
            p.must("fild_etcd_member_leader", &l),
            flag("leader"),
            "{name}"
        );
        assert_eq!(
            p.must("fild_etcd_member_raft_term", &l),
            m["raft_term"].as_f64().unwrap(),
            "{name}"
        );
        let idx = p.must("fild_etcd_member_raft_index", &l);
        assert!(
            idx > 0.0 && idx <= m["raft_index"].as_f64().unwrap(),
            "{name}"
        );
        assert!(p.must("fild_etcd_member_db_size_bytes", &l) > 0.0);
        let in_use = p.must("fild_etcd_member_db_size_in_use_bytes", &l);
        assert!(in_use > 0.0 && in_use <= p.must("fild_etcd_member_db_size_bytes", &l));
        // The kit's quota_backend_bytes (8 GiB), from the argv this host starts it with.
        assert_eq!(p.must("fild_etcd_member_db_quota_bytes", &l), 8589934592.0);
        let version = m["version"].as_str().unwrap();
        assert!(!version.is_empty());
        let program = m["program"].as_str().unwrap();
        assert_eq!(
            p.must(
                "fild_etcd_member_info",
                &[("member", name), ("version", version), ("program", program)]
            ),
            1.0
        );
        for a in ["NOSPACE", "CORRUPT"] {
            assert_eq!(
                p.must("fild_etcd_member_alarm", &[("member", name), ("alarm", a)]),
                0.0
            );
        }
    }

    // The schedule's record: a snapshot written, its size, the files kept.
    let ok = wait_until(Duration::from_secs(60), || {
        let p = Parsed::of(&scrape(&sock));
        p.get("fild_etcd_backup_last_success_time_seconds", &[])
            .is_some_and(|t| t > 0.0)
            && p.get("fild_etcd_backup_files", &[])
                .is_some_and(|n| n >= 1.0)
    });
    assert!(ok, "no scheduled backup in the metrics:\n{}", scrape(&sock));
    let p = Parsed::of(&scrape(&sock));
    assert!(p.must("fild_etcd_backup_last_size_bytes", &[]) > 0.0);
    assert_eq!(p.must("fild_etcd_backup_interval_seconds", &[]), 3.0);
    // What the folder held at the last refresh; it only grows here (max_age is 7 days).
    let dir = c.root.join("var/backups/etcd");
    let now = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".db"))
        .count() as f64;
    let files = p.must("fild_etcd_backup_files", &[]);
    assert!(files >= 1.0 && files <= now, "{files} of {now}");

    // One member down: the view follows within a refresh, and the scrape never waits on it.
    c.fild().filc_ok(&["stop", "etcd-2"]);
    let (text, p) = wait_etcd_view(&sock, 2.0);
    promtool_check(&text);
    assert_eq!(p.must("fild_etcd_cluster_quorum_margin", &[]), 0.0);
    assert_eq!(
        p.must("fild_etcd_cluster_verdict", &[("verdict", "degraded")]),
        1.0
    );
    let t = std::time::Instant::now();
    scrape(&sock);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

/// The shipped alert rules: `promtool check rules`, and `promtool test rules` on series made
/// here: quorum lost, a stale backup (and none right after fild started), a FATAL program, a
/// failing on_change hook (and none for runs that went well).
#[test]
fn shipped_alert_rules_pass_promtool() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/prometheus/fild-rules.yml");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|e| panic!("promtool is required (scripts/setup.sh --tests): {e}"));
    assert!(out.status.success(), "{}", text(&out));
    let dir = TestDir::new("metricsrules");
    let l = r#"instance="h0",job="fild""#;
    let test = format!(
        r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'fild_etcd_cluster_verdict{{verdict="no_quorum",{l}}}'
        values: '0 0 1 1 1 1'
      - series: 'fild_etcd_backup_interval_seconds{{{l}}}'
        values: '60x5'
      - series: 'fild_etcd_backup_last_success_time_seconds{{{l}}}'
        values: '0x5'
      - series: 'fild_uptime_seconds{{{l}}}'
        values: '0+60x5'
      - series: 'fild_program_state{{program="a",state="FATAL",{l}}}'
        values: '1x5'
      - series: 'fild_on_change_runs_total{{outcome="ok",{l}}}'
        values: '0+1x5'
      - series: 'fild_on_change_runs_total{{outcome="timed_out",{l}}}'
        values: '0 0 0 1 1 1'
    alert_rule_test:
      - eval_time: 1m
        alertname: FildEtcdQuorumLost
        exp_alerts: []
      - eval_time: 3m
        alertname: FildEtcdQuorumLost
        exp_alerts:
          - exp_labels: {{severity: critical, verdict: no_quorum, instance: h0, job: fild}}
            exp_annotations:
              summary: "etcd has no quorum (h0)"
              description: "Fewer healthy voting members than quorum: the cluster refuses writes. See docs/runbooks.md."
      - eval_time: 2m
        alertname: FildEtcdBackupStale
        exp_alerts: []
      - eval_time: 3m
        alertname: FildEtcdBackupStale
        exp_alerts:
          - exp_labels: {{severity: warning, instance: h0, job: fild}}
            exp_annotations:
              summary: "no good etcd backup for over two intervals (h0)"
              description: "fild's log says why the scheduled rounds failed (Scheduled etcd backup)."
      - eval_time: 2m
        alertname: FildProgramFatal
        exp_alerts:
          - exp_labels: {{severity: critical, program: a, state: FATAL, instance: h0, job: fild}}
            exp_annotations:
              summary: "program a is FATAL (h0)"
              description: "It exited too quickly too often and fild gave up; filc tail a stderr."
      - eval_time: 2m
        alertname: FildOnChangeFailing
        exp_alerts: []
      - eval_time: 4m
        alertname: FildOnChangeFailing
        exp_alerts:
          - exp_labels: {{severity: warning, outcome: timed_out, instance: h0, job: fild}}
            exp_annotations:
              summary: "the on_change hook failed or timed out (h0)"
              description: "Alerts sent through on_change may not arrive; fild's log has the command's output (on_change failed)."
"#,
        rules = rules.display()
    );
    let file = dir.write("rules-test.yml", &test);
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
