//! Who may use the control socket: peer credentials are checked (root, fild's user, the
//! socket's owner, or its group when `chown` sets one), whatever the socket's mode.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

const NOBODY: &str = "65534";

/// filc as user nobody (no supplementary groups, or `group`), by socket path only.
fn filc_as_nobody(sock: &std::path::Path, group: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", NOBODY, "--regid", group.unwrap_or(NOBODY)]);
    cmd.arg("--clear-groups");
    cmd.arg(FILC)
        .arg("-s")
        .arg(format!("unix://{}", sock.display()))
        .arg("status")
        .env_remove("FILD_CONFIG")
        .env_remove("PRJ_ROOT")
        .current_dir("/");
    cmd.output()
        .expect("setpriv (util-linux) runs filc as nobody")
}

fn open_dir(dir: &TestDir) {
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn strangers_are_refused_even_on_a_world_writable_socket() {
    let dir = TestDir::new("peercred");
    open_dir(&dir);
    let config = dir.write(
        "fild.ini",
        &format!(
            "[unix_http_server]\nfile={d}/fild.sock\nchmod=0666\n\n[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\n\n[program:a]\ncommand=sleep 1000\nstartsecs=0\n",
            d = dir.path().display()
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    let out = filc_as_nobody(&f.socket(), None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("permission denied"), "{err}");
    // The owner (root here) is served; the refusal was logged.
    f.filc_ok(&["status"]);
    let log = std::fs::read_to_string(dir.join("fild.log")).unwrap();
    assert!(log.contains("Refused a control connection"), "{log}");
}

#[test]
fn the_socket_group_is_let_in() {
    let dir = TestDir::new("peergroup");
    open_dir(&dir);
    let config = dir.write(
        "fild.ini",
        &format!(
            "[unix_http_server]\nfile={d}/fild.sock\nchmod=0660\nchown=root:nogroup\n\n[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\n\n[program:a]\ncommand=sleep 1000\nstartsecs=0\n",
            d = dir.path().display()
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    let out = filc_as_nobody(&f.socket(), Some("nogroup"));
    assert!(
        out.status.success(),
        "a member of the socket's group is served: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("RUNNING"));
}

#[test]
fn no_tcp_listener_without_credentials_and_passwords_never_logged() {
    let dir = TestDir::new("inet");
    let port = free_port();
    let base = format!(
        "[unix_http_server]\nfile={d}/fild.sock\nusername=alice\npassword=s3cret-pw\n\n[supervisorctl]\nusername=alice\npassword=s3cret-pw\n\n[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\nloglevel=trace\n\n[program:a]\ncommand=sleep 1000\nstartsecs=0\n",
        d = dir.path().display()
    );
    // An [inet_http_server] without credentials is not served at all.
    let config = dir.write(
        "fild.ini",
        &format!("{base}\n[inet_http_server]\nport=127.0.0.1:{port}\n"),
    );
    let mut f = Fild::start_with(dir.path(), &config);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "an unauthenticated TCP listener was opened"
    );
    f.filc_ok(&["status"]);
    f.terminate();
    // With credentials it is served, and only with them.
    let config = dir.write(
        "fild.ini",
        &format!(
            "{base}\n[inet_http_server]\nport=127.0.0.1:{port}\nusername=bob\npassword=tcp-pw\n"
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    let tcp = |user: Option<&str>| {
        let mut cmd = Command::new(FILC);
        cmd.arg("-s")
            .arg(format!("http://127.0.0.1:{port}"))
            .current_dir("/");
        if let Some(u) = user {
            cmd.args(["-u", u, "-p", "tcp-pw"]);
        }
        cmd.arg("status").output().unwrap()
    };
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let anon = tcp(None);
    assert!(!anon.status.success());
    assert!(String::from_utf8_lossy(&anon.stderr).contains("authentication required"));
    let ok = tcp(Some("bob"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    drop(f);
    // No password ever reaches fild's log, whatever the level.
    let log = std::fs::read_to_string(dir.join("fild.log")).unwrap();
    for secret in ["s3cret-pw", "tcp-pw"] {
        assert!(!log.contains(secret), "fild.log holds a password");
    }
}

/// One raw HTTP/1.1 request over TCP; the status code of the answer.
fn raw_post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"))
}

/// What a page elsewhere can make a browser send to the TCP listener, with the Basic
/// credentials it cached, once stopped a program. Now: refused, the program untouched; the
/// same request with fild's JSON content type and no Origin (filc, curl) still works.
#[test]
fn a_web_page_elsewhere_cannot_stop_a_program_over_tcp() {
    use base64::Engine;
    let dir = TestDir::new("csrf");
    let port = free_port();
    let config = dir.write(
        "fild.ini",
        &format!(
            "{}[inet_http_server]\nport=127.0.0.1:{port}\nusername=bob\npassword=tcp-pw\n\n[program:a]\ncommand=sleep 100079\nstartsecs=0\n",
            preamble(dir.path())
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    let a = f.wait_state(
        "a",
        fild::api::ProcessState::Running,
        std::time::Duration::from_secs(20),
    );
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bob:tcp-pw")
    );
    let body = r#"{"names":["a"]}"#;
    let page = [
        ("Authorization", auth.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "text/plain"),
    ];
    assert_eq!(raw_post(port, "/v1/processes/stop", &page, body), 415);
    let page_json = [
        ("Authorization", auth.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(raw_post(port, "/v1/processes/stop", &page_json, body), 403);
    let still = f.info("a");
    assert_eq!(
        (still.state, still.pid),
        (fild::api::ProcessState::Running, a.pid),
        "a page elsewhere stopped a program"
    );
    // The README's curl form: JSON content type, no Origin.
    let curl = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(raw_post(port, "/v1/processes/stop", &curl, body), 200);
    assert_eq!(f.info("a").state, fild::api::ProcessState::Stopped);
}

/// More connections than fild serves at once: the ones past the cap are closed at once, and
/// root's `filc status` on the Unix socket is still answered from the slots kept for it.
/// Refused logins end their connection, and repeated ones are answered later and later
/// (counted in fild's log, not timed).
#[test]
fn connections_are_capped_with_room_for_root_and_failed_logins_are_braked() {
    use std::io::{Read, Write};
    let dir = TestDir::new("cap");
    let port = free_port();
    let config = dir.write(
        "fild.ini",
        &format!(
            "{}[inet_http_server]\nport=127.0.0.1:{port}\nusername=bob\npassword=tcp-pw\n\n[program:a]\ncommand=sleep 100080\nstartsecs=0\n",
            preamble(dir.path())
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    f.wait_state(
        "a",
        fild::api::ProcessState::Running,
        std::time::Duration::from_secs(20),
    );
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    std::thread::sleep(std::time::Duration::from_millis(200));

    // A wrong password: 401, then the connection is closed (read reaches EOF).
    let wrong = |n: usize| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        // Keep-alive asked for: fild closes anyway.
        s.write_all(format!("GET /v1/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Ym9iOndyb25n{n}\r\n\r\n").as_bytes())
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .expect("the refused connection is closed");
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    };
    for n in 0..6 {
        wrong(n);
    }
    let log = std::fs::read_to_string(dir.join("fild.log")).unwrap();
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("Failed login")).collect();
    assert_eq!(failed.len(), 6, "{failed:#?}");
    let held = failed.iter().filter(|l| !l.contains("delay_ms=0")).count();
    assert_eq!(
        held, 3,
        "three free failures, then three held-back replies: {failed:#?}"
    );
    assert!(
        failed[5].contains("failures=6") && failed[5].contains("delay_ms=1000"),
        "{}",
        failed[5]
    );

    // Hold every general slot (and then some) with idle TCP connections.
    let total = fild::control::admission::GENERAL_SLOTS + 20;
    let mut held_conns = Vec::new();
    for _ in 0..total {
        held_conns.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut closed = 0;
    for s in &mut held_conns {
        s.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        closed += usize::from(matches!(s.read(&mut [0u8; 1]), Ok(0)));
    }
    assert!(
        closed >= 20,
        "only {closed} of {total} connections past the cap were closed"
    );
    let root = f.filc(&["status", "a"]);
    assert!(
        root.status.success(),
        "root's status was not answered: {}",
        String::from_utf8_lossy(&root.stderr)
    );
    drop(held_conns);
}

/// `chown` naming fild's own group (root's, here) was ignored: that group's members were
/// refused. Now a group chown names counts, whichever it is.
#[test]
fn a_chown_naming_filds_own_group_lets_that_group_in() {
    let dir = TestDir::new("owngroup");
    open_dir(&dir);
    let config = dir.write(
        "fild.ini",
        &format!(
            "[unix_http_server]\nfile={d}/fild.sock\nchmod=0660\nchown=root:root\n\n[supervisord]\nlogfile={d}/fild.log\npidfile={d}/fild.pid\n\n[program:a]\ncommand=sleep 1000\nstartsecs=0\n",
            d = dir.path().display()
        ),
    );
    let f = Fild::start_with(dir.path(), &config);
    let out = filc_as_nobody(&f.socket(), Some("0"));
    assert!(
        out.status.success(),
        "a member of root's group, named by chown, is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Someone outside it still is not.
    let out = filc_as_nobody(&f.socket(), None);
    assert!(!out.status.success());
}
