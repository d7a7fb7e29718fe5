//! The kit's TLS options against real clusters: `tls=files` (client and peer traffic over
//! https with certificates from a test CA, client-certificate authentication on) and
//! `tls=auto` (peer traffic with etcd's self-signed certificates, clients over plain http).
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::etcd::*;
use common::pki::*;
use common::*;

const UP: Duration = Duration::from_secs(60);

/// Restart fild (nothing runs yet) with extra environment.
fn restart_fild_with(c: &mut Cluster, extra: &[(&str, String)]) {
    drop(c.fild.take());
    for (k, v) in extra {
        c.env.push((k.to_string(), v.clone()));
    }
    c.start_fild();
}

/// etcdctl with explicit TLS files; `tls` = (cacert, cert, key), any of them optional.
fn etcdctl_tls(endpoint: &str, tls: [Option<&Path>; 3], args: &[&str]) -> Output {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=5s")
        .arg("--dial-timeout=3s");
    for (flag, p) in ["--cacert", "--cert", "--key"].iter().zip(tls) {
        if let Some(p) = p {
            cmd.arg(format!("{flag}={}", p.display()));
        }
    }
    cmd.args(args).output().expect("run etcdctl")
}

/// `filc etcd status` until it exits 0 (healthy), returned.
fn wait_status_healthy(c: &Cluster) -> Output {
    let mut o = c.fild().filc(&["etcd", "status"]);
    let ok = wait_until(UP, || {
        o = c.fild().filc(&["etcd", "status"]);
        code(&o) == 0
    });
    assert!(
        ok,
        "filc etcd status not healthy within {UP:?}:\n{}",
        text(&o)
    );
    o
}

/// Every member's peer URL, as the cluster lists it, uses `scheme`.
fn assert_peer_urls(c: &Cluster, scheme: &str) {
    let o = c.fild().filc(&["etcd", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let mut urls: Vec<String> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["peer_url"].as_str().unwrap_or("").to_string())
        .collect();
    urls.sort();
    let mut want: Vec<String> = c
        .peer
        .iter()
        .map(|p| format!("{scheme}://127.0.0.1:{p}"))
        .collect();
    want.sort();
    assert_eq!(urls, want, "{}", text(&o));
}

#[test]
fn tls_files_cluster_serves_https_only_and_filc_status_works() {
    let mut c = Cluster::new("etcdtls");
    let pki = make_pki(&c.root.join("pki"));
    let s = |p: &Path| p.display().to_string();
    restart_fild_with(
        &mut c,
        &[
            ("ETCD_TLS", "files".into()),
            ("ETCD_SCHEME", "https".into()),
            ("ETCD_CERT_FILE", s(&pki.cert)),
            ("ETCD_KEY_FILE", s(&pki.key)),
            ("ETCD_TRUSTED_CA_FILE", s(&pki.ca)),
        ],
    );
    c.start_all();

    // filc etcd status: healthy over https, one https row per member.
    let o = wait_status_healthy(&c);
    let out = text(&o);
    for n in 0..3 {
        assert!(
            out.contains(&format!("https://127.0.0.1:{}", c.client[n])),
            "{out}"
        );
    }
    assert!(out.contains("verdict: healthy: 3 of 3"), "{out}");
    assert_peer_urls(&c, "https");
    let o = c.fild().filc(&["etcd", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["verdict"], "healthy", "{}", text(&o));
    assert!(
        v["asked"].as_str().unwrap_or("").starts_with("https://"),
        "{v}"
    );
    for m in v["members"].as_array().unwrap() {
        assert_eq!(m["healthy"], true, "{m}");
        assert!(m["client_url"].as_str().unwrap().starts_with("https://"));
    }

    // A put through the gateway (TLS end to end: the gateway forwards TCP), read back from
    // every member through its own endpoint.
    let all = [Some(pki.ca.as_path()), Some(&pki.cert), Some(&pki.key)];
    let gw = format!("https://{}", c.gateway());
    let o = etcdctl_tls(&gw, all, &["put", "tls-key", "tls-value"]);
    assert!(o.status.success(), "put via the gateway: {}", text(&o));
    for n in 0..3 {
        let ep = format!("https://{}", c.endpoint(n));
        let ok = wait_until(UP, || {
            let o = etcdctl_tls(
                &ep,
                all,
                &["get", "--consistency=s", "--print-value-only", "tls-key"],
            );
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "tls-value"
        });
        assert!(ok, "member {n} does not hold tls-key over https");
    }

    // The kit's etcdctl.sh finds the scheme and files in etcd-gw.env.
    let script = c.root.join("apps/etcd/etcdctl.sh");
    let o = Command::new("sh")
        .arg(&script)
        .args(["get", "--print-value-only", "tls-key"])
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(o.status.success(), "etcdctl.sh: {}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "tls-value");

    // TLS is enforced: plain http to client and peer ports gets no answer worth having.
    for n in 0..3 {
        let h = http_get(&c.endpoint(n), "/health").unwrap_or_default();
        assert!(
            !h.contains("\"health\""),
            "plain http /health answered: {h}"
        );
        let p = http_get(&format!("127.0.0.1:{}", c.peer[n]), "/members").unwrap_or_default();
        assert!(
            !p.contains("200 OK"),
            "plain http on a peer port answered: {p}"
        );
        let o = etcdctl_tls(
            &format!("http://{}", c.endpoint(n)),
            [None, None, None],
            &["get", "tls-key"],
        );
        assert!(!o.status.success(), "plain etcdctl worked: {}", text(&o));
    }
    // Client-certificate authentication: the CA alone is not enough, nor another CA's cert.
    let ep = format!("https://{}", c.endpoint(0));
    let o = etcdctl_tls(
        &ep,
        [Some(pki.ca.as_path()), None, None],
        &["get", "tls-key"],
    );
    assert!(!o.status.success(), "no client cert, yet: {}", text(&o));
    let o = etcdctl_tls(
        &ep,
        [
            Some(pki.ca.as_path()),
            Some(&pki.other_cert),
            Some(&pki.other_key),
        ],
        &["get", "tls-key"],
    );
    assert!(
        !o.status.success(),
        "foreign client cert, yet: {}",
        text(&o)
    );

    // A snapshot is taken over TLS too (a healthy member picked via the gRPC health check).
    let snaps = c.root.join("snaps");
    let o = c
        .fild()
        .filc(&["etcd", "snapshot", snaps.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let n = std::fs::read_dir(&snaps).map(|d| d.count()).unwrap_or(0);
    assert!(n >= 1, "no snapshot in {}: {}", snaps.display(), text(&o));

    // fild's own health checks go over TLS too: a member stopped and started again is seen
    // down, then healthy again.
    c.fild().filc_ok(&["stop", "etcd-2"]);
    let ok = wait_until(UP, || code(&c.fild().filc(&["etcd", "status"])) == 1);
    assert!(ok, "{}", text(&c.fild().filc(&["etcd", "status"])));
    c.fild().filc_ok(&["start", "etcd-2"]);
    wait_status_healthy(&c);
}

#[test]
fn tls_files_refuses_contradicting_settings() {
    // tls=files with http URLs: the launch script says what to set, etcd never starts.
    let mut c = Cluster::new("etcdtlsbad");
    let pki = make_pki(&c.root.join("pki"));
    restart_fild_with(
        &mut c,
        &[
            ("ETCD_TLS", "files".into()),
            ("ETCD_CERT_FILE", pki.cert.display().to_string()),
            ("ETCD_KEY_FILE", pki.key.display().to_string()),
        ],
    );
    let _ = c.fild().filc(&["start", "etcd-0"]);
    let log = c.root.join("var/log/etcd-0.stderr.log");
    let ok = wait_until(UP, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("set ETCD_SCHEME=https")
    });
    assert!(ok, "{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert!(!Cluster::port_held(c.client[0]));
}

#[test]
fn tls_auto_encrypts_peer_traffic() {
    let mut c = Cluster::new("etcdtlsauto");
    restart_fild_with(
        &mut c,
        &[
            ("ETCD_TLS", "auto".into()),
            ("ETCD_PEER_SCHEME", "https".into()),
        ],
    );
    c.start_all();
    c.wait_healthy(UP);
    let o = wait_status_healthy(&c);
    let out = text(&o);
    for n in 0..3 {
        assert!(
            out.contains(&format!("http://127.0.0.1:{}", c.client[n])),
            "{out}"
        );
        let p = http_get(&format!("127.0.0.1:{}", c.peer[n]), "/members").unwrap_or_default();
        assert!(
            !p.contains("200 OK"),
            "plain http on a peer port answered: {p}"
        );
    }
    assert_peer_urls(&c, "https");
    // etcd made its own peer certificates.
    assert!(c.data.join("boot0.etcd/fixtures/peer/cert.pem").is_file());
    assert!(c.put(&c.gateway(), "auto-key", "auto-value"));
    for n in 0..3 {
        c.wait_value(n, "auto-key", "auto-value", UP);
    }
}
