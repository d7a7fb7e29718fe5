//! The status page at `/`, driven in a real headless browser: Debian's `chromium` and
//! `chromium-driver` with PyPI's Selenium (`scripts/setup.sh --tests` installs them; missing,
//! the test fails, it never skips), against a real three-member etcd cluster under fild,
//! on the TCP listener behind its credentials. `tests/page/drive.py` presses the buttons
//! and checks what the page shows; this side checks what fild did, and the HTTP edges.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::etcd::Cluster;
use common::*;
use fild::api::ProcessState;

/// The Selenium venv's python (scripts/setup.sh --tests), with the browser and its driver.
fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("var/selenium/venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} with PyPI's selenium is required (scripts/setup.sh --tests installs it)",
        p.display()
    );
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is required (Debian's chromium and chromium-driver; scripts/setup.sh --tests installs them)"
        );
    }
    p
}

/// One HTTP/1.1 exchange over TCP: status, headers (lower-case names), body.
fn http(port: u16, head: &str, body: &str) -> (u16, HashMap<String, String>, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{head}Host: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    read_reply(s)
}

fn header<'a>(h: &'a HashMap<String, String>, name: &str) -> &'a str {
    h.get(name).map(String::as_str).unwrap_or("")
}

const AUTH: &str = "Authorization: Basic b3A6cGFnZS1wdw==\r\n"; // op:page-pw

#[test]
fn the_page_shows_and_drives_a_real_cluster_in_chromium() {
    let py = python();
    let mut c = Cluster::new("page");
    let port = free_port();
    let chatty = c.root.script(
        "chatty.sh",
        "echo '<img src=x onerror=alert(1)>'\necho '<script>alert(2)</script>'\n\
         i=0\nwhile [ $i -lt 600 ]; do i=$((i+1)); echo line-$i; sleep 0.5; done",
    );
    let ini = std::fs::read_to_string(c.config()).unwrap();
    std::fs::write(
        c.config(),
        format!(
            "{ini}\n[inet_http_server]\nport=127.0.0.1:{port}\nusername=op\npassword=page-pw\n\n\
             [program:chatty]\ncommand={}\nstartsecs=0\n",
            chatty.display()
        ),
    )
    .unwrap();
    c.fild_mut().terminate();
    c.start_fild();
    c.start_all();
    c.wait_healthy(Duration::from_secs(60));
    c.fild()
        .wait_state("chatty", ProcessState::Running, Duration::from_secs(10));

    // The HTTP edges: behind the credentials, confined by its headers, HEAD without a body.
    let (s, h, _) = http(port, "GET / HTTP/1.1\r\n", "");
    assert_eq!(s, 401);
    assert_eq!(header(&h, "www-authenticate"), "Basic realm=\"fild\"");
    let (s, h, page) = http(port, &format!("GET / HTTP/1.1\r\n{AUTH}"), "");
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    let csp = header(&h, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("'nonce-"),
        "{csp}"
    );
    assert!(page.contains("<title>fild</title>") && !page.contains("{{NONCE}}"));
    let (s, _, body) = http(port, &format!("HEAD / HTTP/1.1\r\n{AUTH}"), "");
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, h, _) = http(
        port,
        &format!("POST / HTTP/1.1\r\n{AUTH}Content-Type: application/json\r\n"),
        "{}",
    );
    assert_eq!((s, header(&h, "allow")), (405, "GET, HEAD"));
    // A stop from a foreign origin, JSON and credentials and all, is refused.
    let (s, _, body) = http(
        port,
        &format!(
            "POST /v1/processes/stop HTTP/1.1\r\n{AUTH}Origin: http://evil.example\r\nContent-Type: application/json\r\n"
        ),
        r#"{"names":["chatty"]}"#,
    );
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    assert_eq!(c.fild().state("chatty"), ProcessState::Running);

    // The periodic view the page's etcd table reads, once it has three healthy voters.
    let mut view = serde_json::Value::Null;
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (_, _, b) = http(port, &format!("GET /v1/etcd/view HTTP/1.1\r\n{AUTH}"), "");
            view = serde_json::from_str(&b).unwrap_or_default();
            view["healthy_voters"] == 3
        }),
        "the etcd view never had three healthy voters: {view}"
    );
    assert_eq!(view["verdict"], "healthy");

    let members: Vec<String> = c
        .fild()
        .status()
        .into_iter()
        .filter(|p| p.group == "etcd")
        .map(|p| p.name)
        .collect();
    assert_eq!(members.len(), 3, "{members:?}");
    let shots = tempfile::Builder::new()
        .prefix("fild-page-shots-")
        .tempdir()
        .unwrap()
        .keep();
    let cfg = serde_json::json!({
        "url": format!("http://127.0.0.1:{port}/"),
        "user": "op",
        "password": "page-pw",
        "shots": shots,
        "members": members,
        "chatty": "chatty",
        "evil_port": free_port(),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page/drive.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(cfg.to_string())
        .output()
        .unwrap();
    let said = text(&out);
    println!("{said}");
    assert!(
        out.status.success() && said.contains("page: all checks passed"),
        "the browser's checks failed:\n{said}\nfild's log:\n{}",
        std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap_or_default()
    );
    for name in [
        "page-en.png",
        "page-zh.png",
        "page-phone.png",
        "page-guard-refusal.png",
    ] {
        let p = shots.join(name);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} is missing or empty", p.display());
    }
    println!("screenshots in {}", shots.display());

    // What fild did: the first member was stopped and started again from the page, the
    // second kept running (the guard), and the other origin stopped nothing.
    for m in &members {
        assert_eq!(c.fild().state(m), ProcessState::Running, "{m}");
    }
    assert_eq!(c.fild().state("chatty"), ProcessState::Running);
    let first = c.fild().info(&members[0]);
    let second = c.fild().info(&members[1]);
    assert!(
        first.uptime_secs < second.uptime_secs,
        "{} was not restarted from the page",
        members[0]
    );
    c.wait_healthy(Duration::from_secs(60));
}
