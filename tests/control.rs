mod common;
use common::*;
use fild::api::ProcessState;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn prog(name: &str, command: &str, extra: &str) -> String {
    format!("[program:{name}]\ncommand={command}\nstartsecs=0\nstopwaitsecs=5\n{extra}\n")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn status_json_exit_codes_and_plain_format() {
    let dir = TestDir::new("status");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "") + &prog("b", "sleep 1002", "autostart=false")),
    );
    let a = f.wait_state("a", ProcessState::Running, T);

    let out = f.filc_ok(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 2);
    for row in rows {
        for key in [
            "name",
            "group",
            "state",
            "pid",
            "uptime_secs",
            "restarts",
            "exit_status",
            "cpu_percent",
            "rss_bytes",
        ] {
            assert!(row.get(key).is_some(), "no {key} in {row}");
        }
    }
    let row_a = rows.iter().find(|r| r["name"] == "a").unwrap();
    assert_eq!(row_a["group"], "a");
    assert_eq!(row_a["state"], "RUNNING");
    assert_eq!(row_a["pid"], a.pid);
    assert!(
        row_a["rss_bytes"].as_u64().unwrap() > 0,
        "rss of a running program: {row_a}"
    );
    assert!(row_a["cpu_percent"].as_f64().is_some());
    let row_b = rows.iter().find(|r| r["name"] == "b").unwrap();
    assert_eq!(row_b["state"], "STOPPED");
    assert_eq!(row_b["pid"], 0);

    // Exit codes: 0 when every named one runs, 3 otherwise.
    assert_eq!(f.filc(&["status", "a"]).status.code(), Some(0));
    assert_eq!(f.filc(&["status", "b"]).status.code(), Some(3));
    assert_eq!(f.filc(&["status", "a", "b"]).status.code(), Some(3));
    f.filc_ok(&["start", "b"]);
    f.wait_state("b", ProcessState::Running, T);
    assert_eq!(f.filc(&["status", "b"]).status.code(), Some(0));
    f.filc_ok(&["stop", "b"]);
    assert_eq!(f.filc(&["status", "b"]).status.code(), Some(3));

    // Plain output (stdout is a pipe, not a TTY): no colour, supd's columns.
    let plain = f.filc_ok(&["status"]);
    assert!(!plain.contains('\x1b'), "ANSI escapes in {plain:?}");
    let line_a = plain
        .lines()
        .find(|l| l.starts_with("a "))
        .unwrap_or_else(|| panic!("no line for a in {plain:?}"));
    let w: Vec<&str> = line_a.split_whitespace().collect();
    assert_eq!(w.len(), 6, "{line_a:?}");
    assert_eq!(w[0], "a");
    assert_eq!(w[1], "RUNNING");
    assert_eq!(w[2], "pid");
    assert_eq!(w[3], format!("{},", a.pid));
    assert_eq!(w[4], "uptime");
    let hms: Vec<&str> = w[5].split(':').collect();
    assert!(
        hms.len() == 3
            && hms[0].parse::<u32>().is_ok()
            && hms[1].len() == 2
            && hms[2].len() == 2
            && hms[1].parse::<u32>().is_ok_and(|m| m < 60)
            && hms[2].parse::<u32>().is_ok_and(|s| s < 60),
        "uptime is not H:MM:SS in {line_a:?}"
    );
    // Columns: name, then at least two spaces, then the state.
    assert!(line_a.starts_with("a  "), "{line_a:?}");
    assert!(line_a.contains("RUNNING  "), "{line_a:?}");
    let line_b = plain.lines().find(|l| l.starts_with("b ")).unwrap();
    assert_eq!(
        line_b.split_whitespace().nth(1),
        Some("STOPPED"),
        "{line_b:?}"
    );
}

#[test]
fn malformed_requests_get_4xx_and_the_daemon_survives() {
    let dir = TestDir::new("malformed");
    let f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "") + &prog("b", "sleep 1002", "autostart=false")),
    );
    let a = f.wait_state("a", ProcessState::Running, T);
    let sock = f.socket();

    // A well-formed request works over the raw socket, so the helper is right.
    let (st, body) = raw(&sock, &request("GET", "/v1/version", "", ""));
    assert_eq!(st, Some(200), "{body}");

    expect_error(
        &sock,
        "unknown path",
        &request("GET", "/v1/nothing-here", "", ""),
        404,
    );
    expect_error(
        &sock,
        "unknown prefix",
        &request("GET", "/v2/processes", "", ""),
        404,
    );
    expect_error(
        &sock,
        "GET on a POST route",
        &request("GET", "/v1/processes/start", "", ""),
        405,
    );
    expect_error(
        &sock,
        "DELETE on /v1/processes",
        &request("DELETE", "/v1/processes", "", ""),
        405,
    );
    expect_error(
        &sock,
        "invalid JSON",
        &request("POST", "/v1/processes/stop", "{\"names\": [\"a\"", ""),
        400,
    );
    expect_error(
        &sock,
        "wrong types",
        &request("POST", "/v1/processes/stop", "{\"names\": 5}", ""),
        400,
    );
    expect_error(
        &sock,
        "unknown field",
        &request(
            "POST",
            "/v1/processes/stop",
            "{\"names\": [\"a\"], \"frobnicate\": true}",
            "",
        ),
        400,
    );
    let big = format!("{{\"names\": [\"{}\"]}}", "a".repeat(70 * 1024));
    expect_error(
        &sock,
        "body over 64 KiB",
        &request("POST", "/v1/processes/stop", &big, ""),
        413,
    );

    // Garbage that is not HTTP at all: a 400 or a closed connection, never a crash.
    for junk in [
        &b"\x00\x01\x02 this is not http\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"POST /v1/processes/stop HTTP/1.1\r\nContent-Length: banana\r\n\r\n",
        b"\xff\xfe\xfd",
    ] {
        let (st, body) = raw(&sock, junk);
        assert!(
            st.is_none() || st == Some(400),
            "garbage {junk:?} got {st:?}: {body}"
        );
    }
    // A client that connects and goes away without a word.
    drop(std::os::unix::net::UnixStream::connect(&sock).unwrap());

    // An unknown name fails the whole request: nothing is started or stopped.
    expect_error(
        &sock,
        "unknown name",
        &request(
            "POST",
            "/v1/processes/start",
            "{\"names\": [\"b\", \"nope\"]}",
            "",
        ),
        404,
    );
    expect_error(
        &sock,
        "unknown name in stop",
        &request(
            "POST",
            "/v1/processes/stop",
            "{\"names\": [\"a\", \"nope\"]}",
            "",
        ),
        404,
    );
    let o = f.filc(&["start", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("nope"), "{}", text(&o.stderr));

    // The daemon still answers, and nothing changed.
    f.filc_ok(&["status"]);
    let a2 = f.info("a");
    assert_eq!((a2.state, a2.pid), (ProcessState::Running, a.pid));
    assert_eq!(f.state("b"), ProcessState::Stopped);
    assert!(alive(f.pid()));
}

#[test]
fn credentials_are_required_when_configured() {
    use sha1::Digest;
    // Plain password in [unix_http_server], the same in [supervisorctl] for filc.
    let dir = TestDir::new("auth");
    let cfg = preamble(dir.path()).replacen(
        "[unix_http_server]\n",
        "[unix_http_server]\nusername=alice\npassword=s3cret\n",
        1,
    ) + "[supervisorctl]\nusername=alice\npassword=s3cret\n\n"
        + &prog("a", "sleep 1001", "");
    let config = dir.write("fild.ini", &cfg);
    let f = Fild::start_with(dir.path(), &config);
    f.wait_state("a", ProcessState::Running, T);
    let sock = f.socket();
    expect_error(
        &sock,
        "no Authorization",
        &request("GET", "/v1/processes", "", ""),
        401,
    );
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    expect_error(
        &sock,
        "wrong password",
        &request(
            "GET",
            "/v1/processes",
            "",
            &format!("Authorization: Basic {}\r\n", b64("alice:wrong")),
        ),
        401,
    );
    expect_error(
        &sock,
        "unauthenticated shutdown",
        &request("POST", "/v1/shutdown", "{}", ""),
        401,
    );
    let (st, body) = raw(
        &sock,
        &request(
            "GET",
            "/v1/processes",
            "",
            &format!("Authorization: Basic {}\r\n", b64("alice:s3cret")),
        ),
    );
    assert_eq!(st, Some(200), "{body}");
    assert!(f.filc_ok(&["status"]).contains("RUNNING"));
    let o = f.filc(&["-p", "wrong", "status"]);
    assert_eq!(o.status.code(), Some(1), "a wrong -p must fail");
    assert!(alive(f.pid()), "an unauthenticated shutdown stopped fild");
    drop(f);

    // A {SHA} password: the server stores the hash, filc sends the plain text.
    let dir = TestDir::new("auth-sha");
    let hash = hex::encode(sha1::Sha1::digest(b"s3cret"));
    let cfg = preamble(dir.path()).replacen(
        "[unix_http_server]\n",
        &format!("[unix_http_server]\nusername=alice\npassword={{SHA}}{hash}\n"),
        1,
    ) + "[supervisorctl]\nusername=alice\npassword=s3cret\n\n"
        + &prog("a", "sleep 1001", "");
    let config = dir.write("fild.ini", &cfg);
    let f = Fild::start_with(dir.path(), &config);
    f.wait_state("a", ProcessState::Running, T);
    expect_error(
        &f.socket(),
        "no Authorization (SHA)",
        &request("GET", "/v1/processes", "", ""),
        401,
    );
    assert!(f.filc_ok(&["status"]).contains("RUNNING"));
    assert!(
        f.filc_ok(&["-u", "alice", "-p", "s3cret", "status"])
            .contains("RUNNING")
    );
    let o = f.filc(&["-p", "wrong", "status"]);
    assert_eq!(o.status.code(), Some(1));
    // Sending the hash itself is not the password.
    let o = f.filc(&["-p", &format!("{{SHA}}{hash}"), "status"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn shutdown_stops_everything_and_version_prints_both() {
    let dir = TestDir::new("shutdown");
    let mut f = Fild::start(
        &dir,
        &(prog("a", "sleep 1001", "") + &prog("b", "sleep 1002", "priority=10")),
    );
    let pids: Vec<i32> = ["a", "b"]
        .iter()
        .map(|n| f.wait_state(n, ProcessState::Running, T).pid as i32)
        .collect();

    let v = f.filc_ok(&["version"]);
    let lines: Vec<&str> = v.lines().collect();
    let ver = env!("CARGO_PKG_VERSION");
    assert_eq!(lines.len(), 2, "{v}");
    assert_eq!(lines[0], format!("filc {ver}"));
    assert!(
        lines[1].starts_with(&format!("fild {ver} "))
            && lines[1].contains(&format!("pid {}", f.pid())),
        "{v}"
    );

    let out = f.filc_ok(&["shutdown"]);
    assert!(out.contains("Shut Down"), "{out}");
    let mut child = f.child.take().unwrap();
    let end = Instant::now() + T;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = status.expect("fild did not exit after filc shutdown");
    assert!(status.success(), "fild exit status: {status:?}");
    for p in pids {
        assert!(group_members(p).is_empty(), "group {p} survived shutdown");
    }
    assert!(!f.socket().exists());
    assert!(!dir.join("fild.pid").exists());
    let o = f.filc(&["status"]);
    assert_eq!(o.status.code(), Some(1));
}
