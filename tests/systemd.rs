//! systemd integration without systemd as PID 1: the unit passes `systemd-analyze verify`,
//! and fild speaks the notify protocol to a fake `$NOTIFY_SOCKET`.
mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fild::api::ProcessState;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn unit_renders_and_passes_systemd_analyze_verify() {
    let dir = TestDir::new("unit");
    for sub in ["bin", "systemd", "etc/fild"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(FILD, dir.join("bin/fild")).unwrap();
    std::fs::copy(FILC, dir.join("bin/filc")).unwrap();
    std::fs::copy(
        Path::new(REPO).join("systemd/fild.service"),
        dir.join("systemd/fild.service"),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(Path::new(REPO).join("systemd/install.sh"))
        .arg("--print")
        .env("PRJ_ROOT", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = String::from_utf8(out.stdout).unwrap();
    assert!(!unit.contains("@PRJ_ROOT@"));
    for line in [
        "Type=notify",
        "KillMode=mixed",
        "Restart=on-failure",
        "ExecReload=",
        "reload --no-wait",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(line), "unit lacks {line}");
    }
    let timeout: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim().parse().ok())
        .expect("TimeoutStopSec");
    // Above the sum of the members' and the gateway's stopwaitsecs.
    let mut sum = 0;
    for t in ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"] {
        let text = std::fs::read_to_string(Path::new(REPO).join(format!("tpl/{t}.ini"))).unwrap();
        sum += text
            .lines()
            .find_map(|l| l.strip_prefix("stopwaitsecs="))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(10);
    }
    assert!(timeout > sum, "TimeoutStopSec={timeout} <= {sum}");

    let path = dir.join("fild.service");
    std::fs::write(&path, unit).unwrap();
    let analyze = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (scripts/setup.sh installs it)");
    assert!(
        analyze.status.success() && analyze.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&analyze.stderr)
    );
}

#[test]
fn ready_only_after_the_socket_answers_and_autostart_programs_run() {
    let dir = TestDir::new("notify");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let config = dir.write(
        "fild.ini",
        &(preamble(dir.path())
            + "[program:slow]\ncommand=sleep 1000\nstartsecs=2\n\n[program:idle]\ncommand=sleep 1000\nautostart=false\n"),
    );
    let t0 = Instant::now();
    let mut child = Command::new(FILD)
        .arg("-c")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let f = Fild {
        child: None,
        dir: dir.path().to_path_buf(),
        config: config.clone(),
        env: Vec::new(),
        left: Vec::new(),
    };
    let mut buf = [0u8; 4096];
    let mut ready_at = None;
    let mut watchdogs = 0;
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end && (ready_at.is_none() || watchdogs < 2) {
        let n = sock.recv(&mut buf).expect("a notify datagram within 15 s");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.contains("READY=1") {
            assert!(
                msg.contains(&format!("MAINPID={}", child.id())),
                "READY names the main pid: {msg}"
            );
            // At READY time, the socket answers and the autostart program is RUNNING.
            let st = f.status();
            let slow = st.iter().find(|p| p.name == "slow").unwrap();
            assert_eq!(slow.state, ProcessState::Running, "READY before RUNNING");
            ready_at = Some(t0.elapsed());
        }
        if msg.contains("WATCHDOG=1") {
            watchdogs += 1;
        }
    }
    let ready_at = ready_at.expect("READY=1 received");
    assert!(
        ready_at >= Duration::from_secs(2),
        "READY came before startsecs ran out"
    );
    assert!(
        watchdogs >= 2,
        "WATCHDOG=1 keep-alives are sent when WATCHDOG_USEC is set"
    );

    signal(child.id() as i32, libc::SIGTERM);
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "STOPPING=1 on shutdown");
    let st = child.wait().unwrap();
    assert!(st.success(), "fild exits 0 on SIGTERM: {st}");
}
