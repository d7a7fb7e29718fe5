//! etcd connections for the operations: the member list as the cluster sees it ([`Mem`]), one
//! connection at a time with failover ([`Conn`]), retries of transient errors, and the
//! health and read checks the operations wait on.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use etcd_client::{Client as Etcd, ConnectOptions};

use super::{Say, cluster};
use crate::api::{EtcdMember, EtcdMembers};

/// How long a (re)started member may take to show up healthy.
pub(crate) const VERIFY_BUDGET: Duration = Duration::from_secs(60);
/// Timeout of one membership request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A member as the cluster lists it.
#[derive(Debug, Clone)]
pub(crate) struct Mem {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) peer_urls: Vec<String>,
    pub(crate) client_urls: Vec<String>,
    pub(crate) learner: bool,
}

impl From<&etcd_client::Member> for Mem {
    fn from(m: &etcd_client::Member) -> Mem {
        Mem {
            id: m.id(),
            name: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            learner: m.is_learner(),
        }
    }
}

impl Mem {
    /// This member is the configured `me` (by name, or by peer URL when not started).
    pub(crate) fn is(&self, me: &EtcdMember) -> bool {
        (!self.name.is_empty() && self.name == me.name) || self.peer_urls.contains(&me.peer_url)
    }
    pub(crate) fn voter(&self) -> bool {
        !self.learner
    }
    pub(crate) fn started(&self) -> bool {
        !self.name.is_empty()
    }
    pub(crate) fn label(&self) -> String {
        if self.name.is_empty() {
            format!("unstarted {}", self.peer_urls.join(","))
        } else {
            self.name.clone()
        }
    }
}

/// One connection at a time to one of `urls`, moving on to the next after a failure.
pub(crate) struct Conn {
    urls: Vec<String>,
    at: usize,
    client: Option<Etcd>,
}

impl Conn {
    pub(crate) fn new(urls: Vec<String>) -> Conn {
        Conn {
            urls,
            at: 0,
            client: None,
        }
    }

    pub(crate) async fn client(&mut self) -> Result<&mut Etcd, String> {
        if self.urls.is_empty() {
            return Err("no endpoint to ask".into());
        }
        if self.client.is_none() {
            let url = &self.urls[self.at % self.urls.len()];
            let opts = ConnectOptions::new()
                .with_connect_timeout(cluster::TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT);
            let c = match cluster::tls(url, opts) {
                Ok(opts) => Etcd::connect([url.as_str()], Some(opts))
                    .await
                    .map_err(|e| format!("{url}: {e}")),
                Err(e) => Err(e),
            };
            match c {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.at += 1;
                    return Err(e);
                }
            }
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    /// Drop the connection; the next request goes to the next endpoint.
    pub(crate) fn failed(&mut self) {
        self.client = None;
        self.at += 1;
    }

    pub(crate) async fn list(&mut self) -> Result<Vec<Mem>, String> {
        let mut last = String::new();
        for _ in 0..self.urls.len().max(1) {
            let r = match self.client().await {
                Ok(c) => c.member_list().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match r {
                Ok(l) => return Ok(l.members().iter().map(Mem::from).collect()),
                Err(e) => {
                    self.failed();
                    last = format!("member list: {e}");
                }
            }
        }
        Err(last)
    }
}

/// Whether an etcd error is worth retrying (the cluster is settling, not refusing).
pub(crate) fn transient(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    [
        "unhealthy cluster",
        "not enough started members",
        "not ready",
        "timed out",
        "timeout",
        "leader changed",
        "no leader",
        "too many requests",
        "transport",
        "unavailable",
        "connect",
        "deadline",
        "broken pipe",
        "reset",
        "stopped",
    ]
    .iter()
    .any(|p| e.contains(p))
}

/// Run `op` until it succeeds, retrying transient errors with backoff for `budget`.
pub(crate) async fn retry<T, F, Fut>(
    say: Say<'_>,
    what: &str,
    budget: Duration,
    conn: &mut Conn,
    mut op: F,
) -> anyhow::Result<T>
where
    F: FnMut(Etcd) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(500);
    let mut told = false;
    loop {
        let e = match conn.client().await {
            Ok(c) => match op(c.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e.to_string(),
            },
            Err(e) => e,
        };
        if !transient(&e) {
            bail!("{what}: {e}");
        }
        conn.failed();
        if Instant::now() + delay > deadline {
            bail!("{what}: still refused after {budget:?}: {e}");
        }
        if !told {
            say(&format!("{what}: {e}; retrying for up to {budget:?}"));
            told = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

/// The member list, asked from any reachable member (not `exclude`'s own endpoint first).
pub(crate) async fn cluster_list(
    local: &EtcdMembers,
    exclude: Option<&EtcdMember>,
) -> anyhow::Result<Vec<Mem>> {
    let mut urls: Vec<String> = cluster::endpoints(local)
        .into_iter()
        .filter(|u| exclude.is_none_or(|m| *u != m.client_url))
        .collect();
    if let Some(m) = exclude {
        urls.push(m.client_url.clone());
    }
    let mut conn = Conn::new(urls);
    conn.list()
        .await
        .map_err(|e| anyhow!("no member answers a member list: {e}"))
}

pub(crate) async fn wait_list(conn: &mut Conn, budget: Duration) -> anyhow::Result<Vec<Mem>> {
    let deadline = Instant::now() + budget;
    loop {
        match conn.list().await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() > deadline => bail!(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// How long a guard keeps asking while fewer members than it needs are healthy: right after
/// a membership change or a leader loss, `/health` fails for a few seconds.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);

/// `/health` of each member, asked again (for up to [`SETTLE`]) until `need` are healthy.
pub(crate) async fn settled_health(ms: &[&Mem], need: usize) -> Vec<bool> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let h = health_of(ms).await;
        if h.iter().filter(|ok| **ok).count() >= need || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `/health` of each member, all at once (an unstarted member is not healthy).
pub(crate) async fn health_of(ms: &[&Mem]) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in ms.iter().enumerate() {
        let url = m.client_urls.first().cloned();
        set.spawn(async move {
            let ok = match url {
                Some(u) => cluster::healthy(&u).await,
                None => false,
            };
            (i, ok)
        });
    }
    let mut out = vec![false; ms.len()];
    while let Some(Ok((i, ok))) = set.join_next().await {
        out[i] = ok;
    }
    out
}

pub(crate) fn client_urls(ms: &[&Mem]) -> Vec<String> {
    ms.iter()
        .filter_map(|m| m.client_urls.first().cloned())
        .collect()
}

/// A linearizable read through this member's own endpoint.
pub(crate) async fn read_works(client_url: &str) -> bool {
    match cluster::connect(client_url).await {
        Ok(mut c) => c.get("fild-membership-probe", None).await.is_ok(),
        Err(_) => false,
    }
}

pub(crate) async fn wait_healthy(say: Say<'_>, name: &str, client_url: &str) -> anyhow::Result<()> {
    say(&format!("wait for {name} to be healthy at {client_url}"));
    let deadline = Instant::now() + VERIFY_BUDGET;
    while !(cluster::healthy(client_url).await && read_works(client_url).await) {
        if Instant::now() > deadline {
            bail!("{name} is not healthy at {client_url} after {VERIFY_BUDGET:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        assert!(transient(
            "status: Unavailable, message: \"etcdserver: unhealthy cluster\""
        ));
        assert!(!transient("etcdserver: Peer URLs already exists"));
        assert!(!transient("etcdserver: member not found"));
    }
}
