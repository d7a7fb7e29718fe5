//! TLS on the TCP control API: a real fild serving `[inet_http_server]` with `tls_cert_file`
//! and `tls_key_file`, real filc over `https://` (with the right CA, a wrong one, none, and a
//! plain `http://` client, after which fild still serves), `fild --check` on bad TLS values,
//! and fild to fild (`etcd::peers`) over https: `filc etcd backups` lists the other host's
//! folder through it, which needs no etcd.
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::pki::{Pki, make_pki};
use common::*;

/// `[inet_http_server]` on `port` over TLS with the test PKI's member certificate.
fn inet_tls(port: u16, pki: &Pki) -> String {
    format!(
        "[inet_http_server]\nport=127.0.0.1:{port}\nusername=bob\npassword=tcp-pw\ntls_cert_file={}\ntls_key_file={}\n\n",
        pki.cert.display(),
        pki.key.display()
    )
}

/// filc with `args`, no configuration and no `FILC_CA_FILE` from the environment.
fn filc(args: &[&str]) -> Output {
    Command::new(FILC)
        .args(args)
        .env_remove("FILC_CA_FILE")
        .env_remove("FILD_CONFIG")
        .env_remove("PRJ_ROOT")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("run filc")
}

fn https_status(port: u16, ca: &Path) -> Output {
    let url = format!("https://127.0.0.1:{port}");
    let ca = ca.display().to_string();
    filc(&[
        "-s",
        &url,
        "--ca-file",
        &ca,
        "-u",
        "bob",
        "-p",
        "tcp-pw",
        "status",
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn filc_talks_tls_to_fild_with_the_right_ca_only_and_plain_http_disturbs_nothing() {
    let dir = TestDir::new("tls-serve");
    let pki = make_pki(&dir.join("pki"));
    let port = free_port();
    let config = dir.write(
        "fild.ini",
        &format!(
            "{}{}[program:a]\ncommand=sleep 100201\nstartsecs=0\n",
            preamble(dir.path()),
            inet_tls(port, &pki)
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    assert!(wait_until(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));

    // The right CA: the table, exit 0.
    let ok = https_status(port, &pki.ca);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("RUNNING"),
        "{}",
        text(&ok)
    );

    // The CA from FILC_CA_FILE, and from [supervisorctl] serverurl and ca_file.
    let url = format!("https://127.0.0.1:{port}");
    let by_env = Command::new(FILC)
        .args(["-s", &url, "-u", "bob", "-p", "tcp-pw", "status"])
        .env("FILC_CA_FILE", &pki.ca)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(by_env.status.success(), "{}", text(&by_env));
    let client_ini = dir.write(
        "client/filc.ini",
        &format!(
            "[supervisorctl]\nserverurl={url}\nusername=bob\npassword=tcp-pw\nca_file=../pki/ca.crt\n"
        ),
    );
    let by_config = filc(&["-c", &client_ini.display().to_string(), "status"]);
    assert!(by_config.status.success(), "{}", text(&by_config));

    // A CA that did not sign fild's certificate: a clear refusal, no panic.
    let other_ca = dir.join("pki/other-ca.crt");
    let wrong = https_status(port, &other_ca);
    assert_eq!(code(&wrong), 1, "{}", text(&wrong));
    let said = stderr(&wrong);
    assert!(
        said.contains(&format!("TLS with fild at {url} failed"))
            && said.contains("invalid peer certificate")
            && said.contains("other-ca.crt"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");

    // No CA at all, and a CA file that is no PEM: said before anything is sent.
    let none = filc(&["-s", &url, "-u", "bob", "-p", "tcp-pw", "status"]);
    assert_ne!(code(&none), 0);
    assert!(stderr(&none).contains("--ca-file"), "{}", text(&none));
    let junk = dir.write("junk.pem", "not a CA\n");
    let bad_ca = https_status(port, &junk);
    assert_ne!(code(&bad_ca), 0);
    assert!(
        stderr(&bad_ca).contains("junk.pem") && stderr(&bad_ca).contains("no certificate"),
        "{}",
        text(&bad_ca)
    );

    // A plain-http client gets no answer from the TLS port...
    let plain = filc(&[
        "-s",
        &format!("http://127.0.0.1:{port}"),
        "-u",
        "bob",
        "-p",
        "tcp-pw",
        "status",
    ]);
    assert_ne!(code(&plain), 0, "{}", text(&plain));
    assert!(
        stderr(&plain).contains("does fild serve TLS there?"),
        "{}",
        text(&plain)
    );
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("RUNNING"));
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(
            !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
            "plain http was answered: {}",
            String::from_utf8_lossy(&got)
        );
    }
    // ...and a client that connects and says nothing holds nothing up: fild goes on serving.
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let again = https_status(port, &pki.ca);
    assert!(again.status.success(), "{}", text(&again));
    drop(silent);
    f.filc_ok(&["status"]); // the Unix socket is unchanged

    // A reload whose TLS files are broken is refused and changes nothing.
    std::fs::write(
        &config,
        format!(
            "{}{}[program:a]\ncommand=sleep 100201\nstartsecs=0\n[program:b]\ncommand=sleep 100202\nstartsecs=0\n",
            preamble(dir.path()),
            inet_tls(port, &pki).replace("member.key", "missing.key")
        ),
    )
    .unwrap();
    let reload = f.filc(&["reload"]);
    assert_ne!(code(&reload), 0, "{}", text(&reload));
    assert!(text(&reload).contains("tls_key_file"), "{}", text(&reload));
    assert_eq!(f.status().len(), 1, "the refused reload added a program");
    let after = https_status(port, &pki.ca);
    assert!(after.status.success(), "{}", text(&after));

    let pid = f.pid();
    drop(f);
    assert!(!alive(pid));
    let log = std::fs::read_to_string(dir.join("fild.log")).unwrap();
    assert!(log.contains("TLS handshake failed"), "{log}");
    assert!(!log.contains("tcp-pw"), "fild.log holds a password");
}

/// `fild -c CONFIG --check`.
fn check(config: &Path) -> Output {
    Command::new(FILD)
        .arg("-c")
        .arg(config)
        .arg("--check")
        .stdin(Stdio::null())
        .output()
        .expect("run fild --check")
}

/// The 1-based line of `config` that starts with `prefix`.
fn line_of(config: &Path, prefix: &str) -> usize {
    let text = std::fs::read_to_string(config).unwrap();
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

#[test]
fn bad_tls_values_are_errors_at_their_file_line_and_key() {
    let dir = TestDir::new("tls-check");
    let pki = make_pki(&dir.join("pki"));
    let garbage = dir.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    let inet = "[inet_http_server]\nport=127.0.0.1:9\nusername=bob\npassword=tcp-pw\n";
    let cluster = "[cluster]\nusername=bob\npassword=tcp-pw\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{inet}tls_cert_file={}\n", pki.cert.display()),
            "tls_cert_file",
            "without tls_key_file",
        ),
        (
            format!(
                "{inet}tls_cert_file={}\ntls_key_file={}\n",
                pki.cert.display(),
                dir.join("nope.key").display()
            ),
            "tls_key_file",
            "cannot read",
        ),
        (
            // A directory cannot be read as a file.
            format!(
                "{inet}tls_cert_file={}\ntls_key_file={}\n",
                dir.join("pki").display(),
                pki.key.display()
            ),
            "tls_cert_file",
            "cannot read",
        ),
        (
            format!(
                "{inet}tls_cert_file={}\ntls_key_file={}\n",
                garbage.display(),
                pki.key.display()
            ),
            "tls_cert_file",
            "no end line",
        ),
        (
            format!(
                "{inet}tls_cert_file={}\ntls_key_file={}\n",
                pki.cert.display(),
                pki.other_key.display()
            ),
            "tls_key_file",
            "does not go with",
        ),
        (
            format!("{cluster}hosts=a=https://127.0.0.1:9 b=https://127.0.0.1:10\n"),
            "hosts",
            "names no ca_file",
        ),
        (
            format!(
                "{cluster}hosts=a=https://127.0.0.1:9\nca_file={}\n",
                garbage.display()
            ),
            "ca_file",
            "no end line",
        ),
    ];
    for (section, key, says) in cases {
        let config = dir.write("fild.ini", &(preamble(dir.path()) + &section));
        let o = check(&config);
        assert_eq!(code(&o), 2, "{section}: {}", text(&o));
        let place = format!("fild.ini:{}:", line_of(&config, &format!("{key}=")));
        let said = stderr(&o);
        assert!(
            said.lines()
                .any(|l| l.contains(&place) && l.contains(&format!(" {key}:")) && l.contains(says)),
            "{section}: want {place} {key}: {says}; got {said}"
        );
    }
    // The good pair passes.
    let config = dir.write("fild.ini", &(preamble(dir.path()) + &inet_tls(9, &pki)));
    let o = check(&config);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn one_fild_asks_another_over_https_and_verifies_it_with_the_cluster_ca() {
    let dir = TestDir::new("tls-peers");
    let pki = make_pki(&dir.join("pki"));
    let (pa, pb) = (free_port(), free_port());
    let hosts = format!("hosts=ha=https://127.0.0.1:{pa} hb=https://127.0.0.1:{pb}");
    let start = |name: &str, port: u16, ca: &Path| {
        let d = dir.join(name);
        std::fs::create_dir_all(d.join("backups/etcd")).unwrap();
        std::fs::write(d.join(format!("backups/etcd/{name}-snap.db")), b"x").unwrap();
        let text = format!(
            "{}{}[etcd]\nbackup_dir={}/backups/etcd\n\n[cluster]\n{hosts}\nca_file={}\n\n[program:a]\ncommand=sleep 100203\nstartsecs=0\n",
            preamble(&d),
            inet_tls(port, &pki),
            d.display(),
            ca.display()
        );
        let config = d.join("fild.ini");
        std::fs::write(&config, text).unwrap();
        let f = Fild::start_with(&d, &config);
        assert!(wait_until(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        f
    };
    let a = start("ha", pa, &pki.ca);
    // b trusts another CA: its calls to a must fail verification.
    let b = start("hb", pb, &dir.join("pki/other-ca.crt"));

    // The listing (exit 1 when a host did not answer).
    let listing = |f: &Fild, exit: i32| -> serde_json::Value {
        let o = f.filc(&["etcd", "backups", "--json"]);
        assert_eq!(code(&o), exit, "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let from_a = listing(&a, 0);
    let hosts_a = from_a.as_array().unwrap();
    assert_eq!(hosts_a.len(), 2, "{from_a:#}");
    let hb = &hosts_a[1];
    assert_eq!(hb["host"], "hb", "{from_a:#}");
    assert_eq!(hb["url"], format!("https://127.0.0.1:{pb}"));
    assert!(hb["error"].is_null(), "{from_a:#}");
    assert!(
        hb["files"].to_string().contains("hb-snap.db"),
        "a did not list b's folder over https: {from_a:#}"
    );

    let from_b = listing(&b, 1);
    let ha = &from_b.as_array().unwrap()[1];
    assert_eq!(ha["host"], "ha", "{from_b:#}");
    let why = ha["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("TLS with fild at https://127.0.0.1")
            && why.contains("invalid peer certificate"),
        "{from_b:#}"
    );
    assert!(
        ha["files"].as_array().is_none_or(|f| f.is_empty()),
        "{from_b:#}"
    );

    let pids = [a.pid(), b.pid()];
    drop(a);
    drop(b);
    assert!(pids.iter().all(|p| !alive(*p)));
}
