//! The three-host tests' judge and write load: the real etcdctl, run from one host's
//! namespace, says who the members are; a write load puts keys through every member while a
//! step runs; the final check reads every acknowledged key back from every member (through
//! its own endpoint only) and compares `etcdctl endpoint hashkv` across them.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::hosts::etcdctl_in_tls;
use super::netns::Net;
use super::wait_until;

/// At most this many keys per load, each retried for at most [`RETRY`].
const MAX_KEYS: usize = 3000;
/// A load stops by itself after this long.
const MAX_TIME: Duration = Duration::from_secs(300);
const RETRY: Duration = Duration::from_secs(8);
const CAUGHT_UP: Duration = Duration::from_secs(60);

/// A member as the judge lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub learner: bool,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// etcdctl from host `from`'s namespace against `endpoints` (full URLs), with TLS flags when
/// the cluster serves https.
#[derive(Clone)]
pub struct Judge {
    pub net: Arc<Net>,
    pub from: usize,
    pub endpoints: Vec<String>,
    pub tls: Vec<String>,
}

impl Judge {
    pub fn new(net: &Arc<Net>, from: usize, endpoints: Vec<String>) -> Judge {
        Judge {
            net: net.clone(),
            from,
            endpoints,
            tls: Vec::new(),
        }
    }

    /// The judge for the kit's default client ports on hosts 0..3 over `scheme`.
    pub fn of_hosts(net: &Arc<Net>, from: usize, scheme: &str) -> Judge {
        let eps = (0..3)
            .map(|n| format!("{scheme}://{}", net.endpoint(n)))
            .collect();
        Judge::new(net, from, eps)
    }

    /// Present `cert`/`key` and trust `ca` (a cluster with client-certificate auth).
    pub fn with_tls(mut self, ca: &Path, cert: &Path, key: &Path) -> Judge {
        self.tls = vec![
            format!("--cacert={}", ca.display()),
            format!("--cert={}", cert.display()),
            format!("--key={}", key.display()),
        ];
        self
    }

    /// The same judge asking from another host, or other endpoints.
    pub fn at(&self, from: usize, endpoints: Vec<String>) -> Judge {
        Judge {
            from,
            endpoints,
            ..self.clone()
        }
    }

    pub fn all(&self) -> String {
        self.endpoints.join(",")
    }

    pub fn etcdctl(&self, endpoints: &str, args: &[&str]) -> Output {
        etcdctl_in_tls(&self.net, self.from, endpoints, &self.tls, args)
    }

    /// The member list (empty when no endpoint answers).
    pub fn members(&self) -> Vec<Member> {
        let out = self.etcdctl(&self.all(), &["member", "list", "-w", "json"]);
        if !out.status.success() {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let urls = |m: &serde_json::Value, k: &str| -> Vec<String> {
            m[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|u| u.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        v["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| Member {
                        id: m["ID"].as_u64().unwrap_or(0),
                        name: m["name"].as_str().unwrap_or("").to_string(),
                        learner: m["isLearner"].as_bool().unwrap_or(false),
                        peer_urls: urls(m, "peerURLs"),
                        client_urls: urls(m, "clientURLs"),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Three started voting members (named, with client URLs), and every endpoint healthy.
    pub fn three_voters(&self) -> bool {
        let ms = self.members();
        ms.len() == 3
            && ms
                .iter()
                .all(|m| !m.name.is_empty() && !m.learner && !m.client_urls.is_empty())
            && self
                .etcdctl(&self.all(), &["endpoint", "health"])
                .status
                .success()
    }

    /// Wait (up to `within`) for [`Judge::three_voters`]; panics with the list otherwise.
    pub fn wait_three_voters(&self, within: Duration, after: &str) {
        assert!(
            wait_until(within, || self.three_voters()),
            "{after}: not three healthy voters: {:?}",
            self.members()
        );
    }

    /// Start a write load: `<prefix>/<i>` through every endpoint until [`Load::finish`].
    pub fn load(&self, prefix: &str) -> Load {
        let judge = self.clone();
        let prefix = prefix.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let started = Instant::now();
        let handle = std::thread::spawn(move || {
            let mut w = Written::default();
            for i in 0..MAX_KEYS {
                if stopped.load(Ordering::SeqCst) || started.elapsed() > MAX_TIME {
                    break;
                }
                let key = format!("{prefix}/{i:05}");
                let end = Instant::now() + RETRY;
                loop {
                    let o = judge.etcdctl(&judge.all(), &["put", &key, "v", "-w", "json"]);
                    if o.status.success() {
                        let v: serde_json::Value =
                            serde_json::from_slice(&o.stdout).unwrap_or_default();
                        let rev = v["header"]["revision"].as_i64().unwrap_or(0);
                        w.acked.push((key, rev));
                        break;
                    }
                    if Instant::now() > end {
                        w.lost.push(key);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            w.secs = started.elapsed().as_secs_f64();
            w
        });
        Load { stop, handle }
    }

    /// The keys under `prefix` that the member at `endpoint` holds itself (a serializable
    /// read through that endpoint only); None when it does not answer.
    pub fn keys_on(&self, endpoint: &str, prefix: &str) -> Option<Vec<String>> {
        let o = self.etcdctl(
            endpoint,
            &[
                "get",
                "--consistency=s",
                "--keys-only",
                "--prefix",
                &format!("{prefix}/"),
            ],
        );
        o.status.success().then(|| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
    }

    /// The final check: every key in `acked` on every member, through its own endpoint
    /// (waiting for it to catch up), then `hash_kv` equal on all; returns the hash.
    pub fn check_every_key(&self, prefix: &str, acked: &[String]) -> String {
        for ep in &self.endpoints {
            let mut got = Vec::new();
            assert!(
                wait_until(CAUGHT_UP, || {
                    got = self.keys_on(ep, prefix).unwrap_or_default();
                    acked.iter().all(|k| got.contains(k))
                }),
                "{ep} lacks acknowledged writes under {prefix}/ ({} of {})",
                got.len(),
                acked.len()
            );
        }
        self.equal_hash_kv()
    }

    /// `etcdctl endpoint hashkv` on every endpoint, waited for until all agree.
    pub fn equal_hash_kv(&self) -> String {
        let hashes = || -> Vec<String> {
            self.endpoints
                .iter()
                .map(|ep| {
                    let o = self.etcdctl(ep, &["endpoint", "hashkv", "-w", "json"]);
                    let v: serde_json::Value =
                        serde_json::from_slice(&o.stdout).unwrap_or_default();
                    v[0]["HashKV"]["hash"].to_string()
                })
                .collect()
        };
        let mut hs = hashes();
        assert!(
            wait_until(CAUGHT_UP, || {
                hs = hashes();
                hs.iter().all(|h| h == &hs[0] && h != "null")
            }),
            "hash_kv differs: {hs:?} ({:?})",
            self.endpoints
        );
        hs[0].clone()
    }
}

/// A running write load.
pub struct Load {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Written>,
}

impl Load {
    /// Stop the load and say what it wrote.
    pub fn finish(self) -> Written {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the write load panicked")
    }
}

/// What a load wrote: the acknowledged keys with the revision each put answered, and the
/// keys never acknowledged.
#[derive(Debug, Default)]
pub struct Written {
    pub acked: Vec<(String, i64)>,
    pub lost: Vec<String>,
    pub secs: f64,
}

impl Written {
    pub fn keys(&self) -> Vec<String> {
        self.acked.iter().map(|(k, _)| k.clone()).collect()
    }

    /// None lost, and enough acknowledged to judge by.
    pub fn assert_sound(&self, what: &str, at_least: usize) {
        assert!(
            self.lost.is_empty(),
            "{what}: writes never acknowledged (quorum lost): {:?}",
            self.lost
        );
        assert!(
            self.acked.len() >= at_least,
            "{what}: too few writes to judge: {}",
            self.acked.len()
        );
    }
}
