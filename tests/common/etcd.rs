//! A real three-member etcd cluster plus gateway under a real fild, built from the kit's own
//! files (`tpl/`, `apps/etcd/`, `etc/fild/fild.ini`) in a per-test PRJ_ROOT, with unique
//! ports on 127.0.0.1 and data on /dev/shm. At most two such clusters run at once.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How many etcd clusters tests may run at once on this 2-core machine.
const SLOTS: usize = 2;

/// A held slot (an flock on a file in /tmp; released when dropped, even across processes).
pub struct Slot(std::fs::File);

impl Slot {
    pub fn acquire() -> Slot {
        loop {
            for i in 0..SLOTS {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(format!("/tmp/fild-etcd-test-slot-{i}"))
                    .unwrap();
                if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                    return Slot(f);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Fail loudly (never skip) when etcd is missing.
pub fn require_etcd() {
    for bin in ["etcd", "etcdctl"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "{bin} is not installed: run scripts/setup.sh (these tests need real etcd)"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Distinct free ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::new();
    while out.len() < n {
        let p = free_port();
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// A deployment: PRJ_ROOT with the kit's files, the environment fild runs with, and fild.
pub struct Cluster {
    pub root: TestDir,
    pub data: PathBuf,
    pub peer: [u16; 3],
    pub client: [u16; 3],
    pub gw: u16,
    pub env: Vec<(String, String)>,
    pub fild: Option<Fild>,
    _slot: Slot,
}

impl Cluster {
    /// Lay out PRJ_ROOT, activate the three members and the gateway, start fild.
    pub fn new(name: &str) -> Cluster {
        require_etcd();
        let slot = Slot::acquire();
        let root = TestDir::new(name);
        copy_dir(&Path::new(REPO).join("apps"), &root.join("apps"));
        std::fs::create_dir_all(root.join("etc/fild/apps")).unwrap();
        std::fs::copy(
            Path::new(REPO).join("etc/fild/fild.ini"),
            root.join("etc/fild/fild.ini"),
        )
        .unwrap();
        for t in ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"] {
            std::fs::copy(
                Path::new(REPO).join(format!("tpl/{t}.ini")),
                root.join(&format!("etc/fild/apps/{t}.ini")),
            )
            .unwrap();
        }
        let data = tempfile::Builder::new()
            .prefix(&format!("fild-etcd-{name}-"))
            .tempdir_in("/dev/shm")
            .unwrap()
            .keep();
        let ports = free_ports(7);
        let peer = [ports[0], ports[1], ports[2]];
        let client = [ports[3], ports[4], ports[5]];
        let gw = ports[6];
        let mut env = vec![
            ("PRJ_ROOT".to_string(), root.path().display().to_string()),
            ("ETCD_DATA_ROOT".to_string(), data.display().to_string()),
            (
                "ETCD_TOKEN".to_string(),
                format!("test-{name}-{}", ports[0]),
            ),
            ("ETCD_GW_ADDR".to_string(), format!("127.0.0.1:{gw}")),
        ];
        for n in 0..3 {
            env.push((format!("ETCD{n}_PEER_PORT"), peer[n].to_string()));
            env.push((format!("ETCD{n}_CLIENT_PORT"), client[n].to_string()));
        }
        let mut c = Cluster {
            root,
            data,
            peer,
            client,
            gw,
            env,
            fild: None,
            _slot: slot,
        };
        c.start_fild();
        c
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("etc/fild/fild.ini")
    }

    /// Start (or start again) fild on this deployment.
    pub fn start_fild(&mut self) {
        let f = start_fild_env(self.root.path(), &self.config(), &self.env);
        self.fild = Some(f);
    }

    pub fn fild(&self) -> &Fild {
        self.fild.as_ref().expect("fild is running")
    }

    pub fn fild_mut(&mut self) -> &mut Fild {
        self.fild.as_mut().expect("fild is running")
    }

    pub fn endpoint(&self, n: usize) -> String {
        format!("127.0.0.1:{}", self.client[n])
    }

    pub fn gateway(&self) -> String {
        format!("127.0.0.1:{}", self.gw)
    }

    /// `filc start etcd:*` then the gateway.
    pub fn start_all(&self) {
        self.fild().filc_ok(&["start", "etcd:*"]);
        self.fild().filc_ok(&["start", "etcd-gw"]);
    }

    /// GET /health on a member.
    pub fn healthy(&self, n: usize) -> bool {
        http_get(&self.endpoint(n), "/health").is_some_and(|b| b.contains("\"true\""))
    }

    pub fn wait_healthy(&self, timeout: Duration) {
        let ok = wait_until(timeout, || (0..3).all(|n| self.healthy(n)));
        assert!(ok, "cluster not healthy within {timeout:?}");
    }

    /// etcdctl against one endpoint only.
    pub fn etcdctl(&self, endpoint: &str, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    pub fn put(&self, endpoint: &str, key: &str, value: &str) -> bool {
        self.etcdctl(endpoint, &["put", key, value])
            .status
            .success()
    }

    /// A serializable read: what this member itself holds, no forwarding.
    pub fn get_local(&self, n: usize, key: &str) -> Option<String> {
        let out = self.etcdctl(
            &self.endpoint(n),
            &["get", "--consistency=s", "--print-value-only", key],
        );
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    /// Wait until member `n` holds `key = value` in its own store.
    pub fn wait_value(&self, n: usize, key: &str, value: &str, timeout: Duration) {
        let ok = wait_until(timeout, || self.get_local(n, key).as_deref() == Some(value));
        assert!(
            ok,
            "member {n} does not hold {key}={value} within {timeout:?} (has {:?})",
            self.get_local(n, key)
        );
    }

    pub fn pid(&self, name: &str) -> i32 {
        self.fild().info(name).pid as i32
    }

    /// Whether anything listens on a port of ours.
    pub fn port_held(port: u16) -> bool {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in 0..3 {
                let log = self.root.join(&format!("var/log/etcd-{n}.stderr.log"));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("----- etcd-{n} stderr (last lines) -----");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        drop(self.fild.take());
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A tiny HTTP GET (no client library needed for /health).
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}
