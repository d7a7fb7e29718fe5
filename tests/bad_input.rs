//! Malformed control requests: each gets a clear 4xx JSON error (or, for bytes that are not
//! HTTP at all, a closed connection), and nothing changes: the program keeps its pid, the
//! daemon keeps answering, and its descriptor count does not grow.
mod common;

use std::time::Duration;

use common::*;
use fild::api::ProcessState;

const T: Duration = Duration::from_secs(20);

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// (what, request bytes, expected status; None = connection closed without a reply is OK)
fn cases() -> Vec<(&'static str, Vec<u8>, Option<u16>)> {
    let post = |path: &str, body: &str| request("POST", path, body, "");
    let get = |path: &str| request("GET", path, "", "");
    let start = "/v1/processes/start";
    let signal = "/v1/processes/signal";
    let body: &[u8] = b"{\"names\":[\"\xff\xfe\"]}";
    let mut bad_utf8 = format!(
        "POST /v1/processes/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bad_utf8.extend_from_slice(body);
    let big = format!("{{\"names\":[\"{}\"]}}", "a".repeat(70 * 1024));
    let huge_header = format!(
        "GET /v1/version HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\nConnection: close\r\n\r\n",
        "j".repeat(200 * 1024)
    );
    vec![
        ("unknown path", get("/v1/nope"), Some(404)),
        ("outside the API and the page", get("/index.html"), Some(404)),
        ("a POST to the status page", request("POST", "/", "{}", ""), Some(405)),
        ("other API version", get("/v2/processes"), Some(404)),
        ("DELETE on processes", request("DELETE", "/v1/processes", "", ""), Some(405)),
        ("PUT on reload", request("PUT", "/v1/reload", "", ""), Some(405)),
        ("GET on start", get(start), Some(405)),
        ("unknown method", request("FOO", "/v1/version", "", ""), Some(405)),
        ("empty body", post(start, ""), Some(400)),
        ("truncated JSON", post(start, "{\"names\": [\"a\""), Some(400)),
        ("null body", post(start, "null"), Some(400)),
        ("array body", post(start, "[]"), Some(400)),
        ("names is a number", post(start, "{\"names\": 5}"), Some(400)),
        ("names is a string", post(start, "{\"names\": \"a\"}"), Some(400)),
        ("names holds numbers", post(start, "{\"names\": [1, 2]}"), Some(400)),
        ("force is a string", post(start, "{\"names\": [\"a\"], \"force\": \"yes\"}"), Some(400)),
        ("unknown field", post(start, "{\"names\": [\"a\"], \"extra\": 1}"), Some(400)),
        ("invalid UTF-8 in body", bad_utf8, Some(400)),
        ("no names", post(start, "{\"names\": []}"), Some(400)),
        ("unknown name", post(start, "{\"names\": [\"nosuch\"]}"), Some(404)),
        ("NUL in a name", post(start, "{\"names\": [\"\\u0000\"]}"), Some(404)),
        ("unknown group", post("/v1/processes/stop", "{\"names\": [\"nog:*\"]}"), Some(404)),
        ("body over 64 KiB", post(start, &big), Some(413)),
        ("unknown signal", post(signal, "{\"signal\": \"NOPE\", \"names\": [\"a\"]}"), Some(400)),
        ("signal as a number type", post(signal, "{\"signal\": 9, \"names\": [\"a\"]}"), Some(400)),
        ("signal missing", post(signal, "{\"names\": [\"a\"]}"), Some(400)),
        ("signal to unknown name", post(signal, "{\"signal\": \"HUP\", \"names\": [\"nosuch\"]}"), Some(404)),
        ("log path too short", get("/v1/logs/a"), Some(404)),
        ("log path too long", get("/v1/logs/a/stdout/more"), Some(404)),
        ("unknown log stream", get("/v1/logs/a/weird"), Some(400)),
        ("log of unknown name", get("/v1/logs/nosuch/stdout"), Some(404)),
        ("log offset not a number", get("/v1/logs/a/stdout?offset=abc"), Some(400)),
        ("log max negative", get("/v1/logs/a/stdout?max=-1"), Some(400)),
        ("status of unknown name", get("/v1/processes?names=nosuch"), Some(404)),
        ("status with bad escapes", get("/v1/processes?names=%ff%fe"), Some(404)),
        ("not HTTP at all", b"\x00\x01\x02garbage\r\n\r\n".to_vec(), None),
        ("HTTP/0.9 style line", b"GET /v1/version\r\n\r\n".to_vec(), None),
        ("header over the limit", huge_header.into_bytes(), None),
        (
            "body shorter than Content-Length",
            b"POST /v1/processes/start HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{\"names\":".to_vec(),
            None,
        ),
    ]
}

#[test]
fn malformed_requests_are_refused_and_change_nothing() {
    let dir = TestDir::new("badinput");
    let f = Fild::start(
        &dir,
        "[program:a]\ncommand=sleep 1000\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n",
    );
    let before = f.wait_state("a", ProcessState::Running, T);
    let fds = fd_count(f.pid());
    let sock = f.socket();
    let cases = cases();
    assert!(cases.len() >= 30, "at least 30 malformed requests");
    for (what, req, want) in &cases {
        let (got, body) = raw(&sock, req);
        match want {
            Some(status) => {
                assert_eq!(got, Some(*status), "{what}: got {got:?}, body {body}");
                let v: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {body}"));
                assert!(
                    v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{what}: no error message: {body}"
                );
            }
            // Not HTTP: a 4xx or a closed connection, never a success.
            None => assert!(
                got.is_none_or(|s| (400..500).contains(&s)),
                "{what}: got {got:?}"
            ),
        }
    }
    // Nothing changed, nothing leaked, the daemon still answers.
    let after = f.info("a");
    assert_eq!(after.pid, before.pid);
    assert_eq!(after.state, ProcessState::Running);
    assert!(
        wait_until(T, || fd_count(f.pid()) <= fds),
        "descriptors grew from {fds} to {}",
        fd_count(f.pid())
    );
    f.filc_ok(&["status"]);
}

#[test]
fn a_stalled_client_is_dropped_and_others_are_served_meanwhile() {
    use std::io::{Read, Write};
    let dir = TestDir::new("stalled");
    let f = Fild::start(&dir, "[program:a]\ncommand=sleep 1000\nstartsecs=0\n");
    let mut s = std::os::unix::net::UnixStream::connect(f.socket()).unwrap();
    s.write_all(b"POST /v1/processes/start HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Others are served while it stalls.
    f.filc_ok(&["status"]);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "the stalled connection was not dropped"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
}
