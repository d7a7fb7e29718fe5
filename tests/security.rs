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
