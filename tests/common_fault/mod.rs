//! The fault suite's shared pieces: a bounded write load through the gateway (or any list of
//! endpoints), the final check every case ends with (each acknowledged write readable from
//! every member through that member's own endpoint, and `hash_kv` equal at one revision),
//! process checks (strays, zombies, file descriptors) and a namespace network for the
//! three-host case. The cases themselves are in `cases.rs`, shared by `tests/fault.rs` (CI)
//! and `tests/fault_full.rs` (the full run, `scripts/fault-suite.sh`).
#![allow(dead_code)]

pub mod cases;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

pub use crate::common::netns::Net;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};

use crate::common::etcd::Cluster;
use crate::common::*;

/// The longest any single wait in the suite may take.
pub const UP: Duration = Duration::from_secs(90);

/// One case at a time within a test binary: the load's timing means something only when a
/// case has the machine (2 cores) to itself.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ----- randomness -----------------------------------------------------------------------------

/// A small xorshift generator; the seed is printed so a run can be repeated (FAULT_SEED=...).
pub struct Rng(u64);

impl Rng {
    pub fn new(case: &str) -> Rng {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("[{case}] seed {seed}");
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ----- running async code, optionally inside a network namespace -------------------------------

/// Run `f` on a fresh current-thread runtime in its own thread, which first joins network
/// namespace `ns` (setns affects only the calling thread) when one is given.
pub fn in_ns<T: Send + 'static, F>(ns: Option<&str>, f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T>,
{
    let ns = ns.map(String::from);
    std::thread::spawn(move || {
        if let Some(ns) = ns {
            enter_ns(&ns);
        }
        runtime().block_on(f())
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn enter_ns(ns: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the namespace");
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

pub async fn connect(endpoint: &str, timeout: Duration) -> Option<Client> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(timeout)
        .with_timeout(timeout);
    tokio::time::timeout(timeout, Client::connect([endpoint.to_string()], Some(opts)))
        .await
        .ok()?
        .ok()
}

// ----- the write load -------------------------------------------------------------------------

/// What a load did.
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    /// Indexes i whose put `prefix + i = i` was acknowledged (Ok).
    pub acked: Vec<u64>,
    /// Puts that failed or timed out (not acknowledged; they may or may not have applied).
    pub errors: u64,
}

/// A client thread doing sequential puts (key i -> value i), bounded in count and time.
pub struct Load {
    pub prefix: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<LoadResult>>,
}

pub fn key(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:08}")
}

impl Load {
    /// Start putting through `endpoints` (the first one, moving on to the next after an
    /// error), from inside namespace `ns` if given; at most `max` puts, for at most `limit`.
    pub fn start(
        prefix: &str,
        endpoints: Vec<String>,
        ns: Option<String>,
        max: u64,
        limit: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let (s, a, p) = (stop.clone(), acked.clone(), prefix.to_string());
        let thread = std::thread::spawn(move || {
            if let Some(ns) = &ns {
                enter_ns(ns);
            }
            runtime().block_on(run_load(p, endpoints, max, limit, s, a))
        });
        Load {
            prefix: prefix.to_string(),
            stop,
            acked,
            thread: Some(thread),
        }
    }

    /// Acknowledged puts so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    /// Wait until `n` more puts than now are acknowledged (clients carry on).
    pub fn wait_progress(&self, n: u64, timeout: Duration) -> bool {
        let from = self.acked();
        wait_until(timeout, || self.acked() >= from + n)
    }

    pub fn finish(mut self) -> LoadResult {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .unwrap()
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn run_load(
    prefix: String,
    endpoints: Vec<String>,
    max: u64,
    limit: Duration,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> LoadResult {
    let end = Instant::now() + limit;
    let mut out = LoadResult::default();
    let mut client: Option<Client> = None;
    let mut at = 0;
    let mut i = 0;
    while i < max && Instant::now() < end && !stop.load(Ordering::SeqCst) {
        if client.is_none() {
            client = connect(&endpoints[at], Duration::from_secs(2)).await;
            if client.is_none() {
                out.errors += 1;
                at = (at + 1) % endpoints.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let c = client.as_mut().unwrap();
        let put = tokio::time::timeout(
            Duration::from_secs(3),
            c.put(key(&prefix, i), i.to_string(), None),
        )
        .await;
        if matches!(put, Ok(Ok(_))) {
            out.acked.push(i);
            count.fetch_add(1, Ordering::SeqCst);
            // Pacing: about 200 puts/s at most on this 2-core machine.
            tokio::time::sleep(Duration::from_millis(4)).await;
        } else {
            out.errors += 1;
            client = None;
            at = (at + 1) % endpoints.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A failed put's key is never reused: its outcome is unknown.
        i += 1;
    }
    out
}

// ----- the final check ------------------------------------------------------------------------

/// What the final check found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The revision all members were hashed at.
    pub rev: i64,
    /// Per member: acknowledged keys read back through its own endpoint.
    pub keys: Vec<usize>,
    /// Per member: keys under the prefix it holds (acknowledged or not).
    pub held: Vec<usize>,
    /// Per member: hash_kv(rev).
    pub hashes: Vec<u32>,
}

/// Every acknowledged write readable from every member through that member's own endpoint,
/// and the members' hash_kv equal at one revision (taken from one member after writes
/// stopped). Panics with the details otherwise.
pub fn check(endpoints: &[String], ns: Option<&str>, prefix: &str, acked: &[u64]) -> Checked {
    let eps = endpoints.to_vec();
    let prefix = prefix.to_string();
    let acked = acked.to_vec();
    in_ns(ns, move || async move {
        // The current revision, read linearizably from whichever member answers first.
        let end = Instant::now() + UP;
        let rev = loop {
            let mut got = None;
            for ep in &eps {
                if let Some(mut c) = connect(ep, Duration::from_secs(3)).await
                    && let Ok(Ok(r)) =
                        tokio::time::timeout(Duration::from_secs(5), c.get("fault/rev", None)).await
                {
                    got = r.header().map(|h| h.revision());
                    break;
                }
            }
            if let Some(r) = got {
                break r;
            }
            assert!(
                Instant::now() < end,
                "no member answered a linearizable get"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let mut keys = Vec::new();
        let mut held = Vec::new();
        let mut hashes = Vec::new();
        for (n, ep) in eps.iter().enumerate() {
            // This member only, serializable: wait until it has applied `rev`.
            let end = Instant::now() + UP;
            let kvs: BTreeMap<String, String> = loop {
                let got = async {
                    let mut c = connect(ep, Duration::from_secs(3)).await?;
                    let r = tokio::time::timeout(
                        Duration::from_secs(10),
                        c.get(
                            prefix.as_str(),
                            Some(GetOptions::new().with_prefix().with_serializable()),
                        ),
                    )
                    .await
                    .ok()?
                    .ok()?;
                    let at = r.header()?.revision();
                    (at >= rev).then(|| {
                        r.kvs()
                            .iter()
                            .map(|kv| {
                                (
                                    kv.key_str().unwrap_or("").to_string(),
                                    kv.value_str().unwrap_or("").to_string(),
                                )
                            })
                            .collect()
                    })
                }
                .await;
                if let Some(m) = got {
                    break m;
                }
                assert!(
                    Instant::now() < end,
                    "member {n} ({ep}) did not reach revision {rev} within {UP:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let mut found = 0;
            let mut missing = Vec::new();
            for &i in &acked {
                match kvs.get(&key(&prefix, i)) {
                    Some(v) if *v == i.to_string() => found += 1,
                    other => missing.push((i, other.cloned())),
                }
            }
            assert!(
                missing.is_empty(),
                "member {n} ({ep}) lacks {} acknowledged writes (of {}), e.g. {:?}",
                missing.len(),
                acked.len(),
                &missing[..missing.len().min(10)]
            );
            keys.push(found);
            held.push(kvs.len());
            let mut c = connect(ep, Duration::from_secs(3))
                .await
                .unwrap_or_else(|| panic!("member {n} ({ep}) does not answer"));
            let h = tokio::time::timeout(Duration::from_secs(20), c.hash_kv(rev))
                .await
                .unwrap_or_else(|_| panic!("hash_kv({rev}) on member {n} timed out"))
                .unwrap_or_else(|e| panic!("hash_kv({rev}) on member {n}: {e}"));
            hashes.push(h.hash());
        }
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "members disagree on hash_kv({rev}): {hashes:?}"
        );
        Checked {
            rev,
            keys,
            held,
            hashes,
        }
    })
}

/// The member endpoints of a single-host cluster.
pub fn members(c: &Cluster) -> Vec<String> {
    (0..3).map(|n| c.endpoint(n)).collect()
}

// ----- the report -----------------------------------------------------------------------------

/// One case's figures: printed, and appended as a JSON line to $FAULT_REPORT when set.
pub struct Report<'a> {
    pub case: &'a str,
    pub faults: u64,
    pub load: &'a LoadResult,
    pub checked: &'a Checked,
    pub inputs: u64,
    pub secs: u64,
    pub notes: String,
}

impl Report<'_> {
    pub fn emit(&self) {
        let hashes: Vec<String> = self
            .checked
            .hashes
            .iter()
            .map(|h| format!("{h:#010x}"))
            .collect();
        let line = serde_json::json!({
            "case": self.case,
            "secs": self.secs,
            "faults": self.faults,
            "acked": self.load.acked.len(),
            "put_errors": self.load.errors,
            "keys_checked_per_member": self.checked.keys,
            "keys_held_per_member": self.checked.held,
            "rev": self.checked.rev,
            "hash_kv": hashes,
            "inputs": self.inputs,
            "failures": 0,
            "notes": self.notes,
        });
        println!("FAULT-REPORT {line}");
        if let Ok(path) = std::env::var("FAULT_REPORT") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(f, "{line}").unwrap();
        }
    }
}

// ----- processes ------------------------------------------------------------------------------

fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let i = s.rfind(')')?;
    let f: Vec<&str> = s[i + 2..].split_whitespace().collect();
    Some((f.first()?.chars().next()?, f.get(1)?.parse().ok()?))
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Zombie children of `parent`.
pub fn zombies(parent: i32) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|&p| proc_stat(p) == Some(('Z', parent)))
        .collect()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Live processes (not fild itself nor its guard) whose command line contains one of
/// `markers`: what a deployment runs.
pub fn marked(markers: &[String]) -> BTreeSet<i32> {
    let fild = std::fs::canonicalize(FILD).unwrap();
    pids()
        .into_iter()
        .filter(|&p| {
            if !alive(p) || p == std::process::id() as i32 {
                return false;
            }
            if std::fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&fild) {
                return false;
            }
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            markers.iter().any(|m| cmd.contains(m.as_str()))
        })
        .collect()
}

/// The deployment's markers: its PRJ_ROOT, its data dir, its gateway address.
pub fn cluster_markers(c: &Cluster) -> Vec<String> {
    vec![
        c.root.path().display().to_string(),
        c.data.display().to_string(),
        c.gateway(),
    ]
}

/// Pids fild reports for its programs.
pub fn known_pids(f: &Fild) -> BTreeSet<i32> {
    f.status()
        .iter()
        .filter(|p| p.pid != 0)
        .map(|p| p.pid as i32)
        .collect()
}

/// Assert every process of the deployment is one fild knows (waiting a little for
/// processes that are being stopped or spawned to settle).
pub fn assert_no_strays(f: &Fild, markers: &[String]) {
    let mut last = (BTreeSet::new(), BTreeSet::new());
    let ok = wait_until(Duration::from_secs(20), || {
        let found = marked(markers);
        let known = known_pids(f);
        let ok = found.is_subset(&known);
        last = (found, known);
        ok
    });
    assert!(
        ok,
        "processes fild does not know: {:?} (fild knows {:?})",
        last.0.difference(&last.1).collect::<Vec<_>>(),
        last.1
    );
}

/// Resume-and-kill a member we stopped, if it is still stopped when the case ends.
pub struct KillIfStopped(pub i32);

impl Drop for KillIfStopped {
    fn drop(&mut self) {
        if proc_stat(self.0).is_some_and(|(s, _)| s == 'T') {
            signal(self.0, libc::SIGKILL);
        }
    }
}

/// Add `key=value` under `[etcd]` in the deployment's fild.ini.
pub fn set_etcd_option(c: &Cluster, key: &str, value: &str) {
    let path = c.config();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("[etcd]\n", &format!("[etcd]\n{key}={value}\n"), 1);
    assert!(text.contains(&format!("{key}={value}")));
    std::fs::write(&path, text).unwrap();
}

pub fn wait_new_pid(f: &Fild, name: &str, old: i32, timeout: Duration) -> i32 {
    f.wait_new_pid(name, old, timeout).pid as i32
}

// ----- a tmpfs --------------------------------------------------------------------------------

/// A small tmpfs mounted on `dir`; unmounted (lazily, if still busy) on drop.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mount tmpfs on {} (the case needs root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

// ----- three hosts in network namespaces ------------------------------------------------------
