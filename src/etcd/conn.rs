//! etcd connections for the operations: the member list as the cluster sees it ([`Mem`]), one
//! connection at a time with failover ([`Conn`]), retries of transient errors, and the
//! health and read checks the operations wait on. Every etcd connection in the process is
//! opened here ([`connect_with`]), with the client TLS files of the configured members
//! ([`Tls`], a value passed along).

use std::time::{Duration, Instant};

use anyhow::anyhow;
use etcd_client::{Client as Etcd, ConnectOptions};

use super::Say;
use super::errors::{self, Class};
use super::poll::poll_until;
use super::releases::{self, HealthEndpoints, Version};
use crate::api::{EtcdMember, EtcdMembers};

pub use crate::api::EtcdClientTls as ClientTls;

/// The client TLS files every connection to an `https://` member is opened with: a value the
/// operations carry (from the members' settings, [`Tls::of`]), never process-wide state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tls(Option<ClientTls>);

impl Tls {
    /// The client TLS files of the configured members (the first member that names any),
    /// else etcdctl's environment variables `ETCDCTL_CACERT`, `ETCDCTL_CERT`, `ETCDCTL_KEY`.
    pub fn of(local: &EtcdMembers) -> Tls {
        let found = local
            .members
            .iter()
            .map(|m| &m.client_tls)
            .find(|t| !t.is_empty())
            .cloned();
        if found.is_some() {
            return Tls(found);
        }
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let t = ClientTls {
            trusted_ca_file: var("ETCDCTL_CACERT"),
            cert_file: var("ETCDCTL_CERT"),
            key_file: var("ETCDCTL_KEY"),
        };
        Tls((!t.is_empty()).then_some(t))
    }

    /// Exactly these files (`None`: plain `http://` only).
    pub fn new(tls: Option<ClientTls>) -> Tls {
        Tls(tls)
    }

    /// `opts` with TLS added when `url` is `https://`. An https URL without a known CA is an
    /// error naming what to set.
    pub fn options(&self, url: &str, opts: ConnectOptions) -> Result<ConnectOptions, String> {
        if !url.starts_with("https://") {
            return Ok(opts);
        }
        let t = self.0.clone().unwrap_or_default();
        if t.trusted_ca_file.is_empty() {
            return Err(format!(
                "{url}: an https member needs a CA to verify it: set client_trusted_ca_file \
                 (or trusted_ca_file) in the member env files, or ETCDCTL_CACERT"
            ));
        }
        let read = |what: &str, path: &str| {
            std::fs::read(path).map_err(|e| format!("{url}: cannot read the {what} {path}: {e}"))
        };
        let ca = read("CA certificate", &t.trusted_ca_file)?;
        let mut cfg =
            etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(ca));
        match (t.cert_file.is_empty(), t.key_file.is_empty()) {
            (true, true) => {}
            (false, false) => {
                let cert = read("client certificate", &t.cert_file)?;
                let key = read("client key", &t.key_file)?;
                cfg = cfg.identity(etcd_client::Identity::from_pem(cert, key));
            }
            _ => {
                return Err(format!(
                    "{url}: a client certificate needs both files (cert {:?}, key {:?})",
                    t.cert_file, t.key_file
                ));
            }
        }
        Ok(opts.with_tls(cfg))
    }
}

/// The one way to open an etcd connection: exactly `url` (over TLS when it is `https://`),
/// with these connect and request timeouts.
pub async fn connect_with(
    url: &str,
    tls: &Tls,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<Etcd, String> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(connect_timeout)
        .with_timeout(request_timeout);
    let opts = tls.options(url, opts)?;
    Etcd::connect([url], Some(opts))
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// Connect to exactly one endpoint with the usual timeouts ([`TIMEOUT`]).
pub async fn connect(url: &str, tls: &Tls) -> Result<Etcd, String> {
    connect_with(url, tls, TIMEOUT, TIMEOUT).await
}

/// Connect to the first of `urls` that answers a member list.
pub async fn connect_any(urls: &[String], tls: &Tls) -> Result<(Etcd, String), String> {
    let mut last = String::from("no endpoint to try");
    for url in urls {
        match connect(url, tls).await {
            Ok(mut c) => match c.member_list().await {
                Ok(_) => return Ok((c, url.clone())),
                Err(e) => last = format!("{url}: {e}"),
            },
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// How long a (re)started member may take to show up healthy.
pub(crate) const VERIFY_BUDGET: Duration = Duration::from_secs(60);
/// How long one request to one member may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` of a URL like `http://127.0.0.1:2079`.
pub fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// `GET path` over plain http on `addr` (`host:port`): the status and body it answers, or
/// `None` on no answer (the caller bounds the time).
async fn get(addr: String, path: &str) -> Option<(hyper::StatusCode, bytes::Bytes)> {
    use http_body_util::{BodyExt, Empty};
    let s = tokio::net::TcpStream::connect(&addr).await.ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr)
        .body(Empty::<bytes::Bytes>::new())
        .ok()?;
    let resp = send.send_request(req).await.ok()?;
    let status = resp.status();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, body))
}

/// [`get`]'s body as JSON.
async fn get_json(addr: String, path: &str) -> Option<serde_json::Value> {
    let (_, body) = get(addr, path).await?;
    serde_json::from_slice(&body).ok()
}

/// What each plain-http client URL's `GET /version` said its server runs (`etcdserver`), so
/// a health probe asks the endpoint that version serves without asking `/version` each time.
/// A failed probe forgets its URL: the member may come back on another binary (an upgrade,
/// or going back), and the next probe asks again.
static SERVER_VERSIONS: std::sync::Mutex<std::collections::BTreeMap<String, Version>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn remember(client_url: &str, version: &serde_json::Value) -> Option<Version> {
    let v = releases::parse(version.get("etcdserver")?.as_str()?).ok()?;
    if let Ok(mut m) = SERVER_VERSIONS.lock() {
        m.insert(client_url.to_string(), v);
    }
    Some(v)
}

fn forget(client_url: &str) {
    if let Ok(mut m) = SERVER_VERSIONS.lock() {
        m.remove(client_url);
    }
}

/// The server version at a plain-http client URL: remembered, or asked (`GET /version`);
/// `None` when it does not say.
async fn server_version(client_url: &str) -> Option<Version> {
    if let Some(v) = SERVER_VERSIONS
        .lock()
        .ok()
        .and_then(|m| m.get(client_url).copied())
    {
        return Some(v);
    }
    let v = get_json(host_port(client_url).to_string(), "/version").await?;
    remember(client_url, &v)
}

/// The cluster version a member reports (`GET /version`'s `etcdcluster`, such as `3.5.0`),
/// over plain http; `None` for an https member or no answer within [`TIMEOUT`]. The server
/// version beside it is remembered for the health probes.
pub async fn cluster_version(client_url: &str) -> Option<String> {
    if !client_url.starts_with("http://") {
        return None;
    }
    let v = tokio::time::timeout(
        TIMEOUT,
        get_json(host_port(client_url).to_string(), "/version"),
    )
    .await
    .ok()
    .flatten()?;
    remember(client_url, &v);
    v.get("etcdcluster")
        .and_then(|c| c.as_str())
        .filter(|c| !c.is_empty() && *c != "not_decided")
        .map(String::from)
}

/// The health endpoint to ask a member of version `v` (unknown: `/health`, which every
/// version serves): `/readyz` (serving: no corruption alarm, reads answered) where the
/// version offers it ([`releases::health_endpoints`]), else `/health`.
pub fn health_path(v: Option<Version>) -> &'static str {
    match v.map(releases::health_endpoints) {
        Some(HealthEndpoints::ReadyzLivez) => "/readyz",
        Some(HealthEndpoints::Health) | None => "/health",
    }
}

/// Whether a member is healthy, within [`TIMEOUT`]: over plain http, `GET /readyz` answers
/// 200 where its version serves it ([`health_path`]: 3.4.29+, 3.5.11+, 3.6 on), else
/// `GET /health` answers `"health":"true"`. An `https://` member is asked what `/health`
/// checks over its gRPC API instead: no alarm raised, and a linearizable read answered.
pub async fn healthy(client_url: &str, tls: &Tls) -> bool {
    if client_url.starts_with("https://") {
        return tokio::time::timeout(TIMEOUT, healthy_grpc(client_url, tls))
            .await
            .unwrap_or(false);
    }
    let probe = async {
        let path = health_path(server_version(client_url).await);
        let addr = host_port(client_url).to_string();
        if path == "/readyz" {
            get(addr, path)
                .await
                .is_some_and(|(status, _)| status.is_success())
        } else {
            get_json(addr, path)
                .await
                .is_some_and(|v| v.get("health").and_then(|h| h.as_str()) == Some("true"))
        }
    };
    let ok = tokio::time::timeout(TIMEOUT, probe).await.unwrap_or(false);
    if !ok {
        forget(client_url);
    }
    ok
}

/// What one member says of itself in a status call: the leader it knows (0: none) and the
/// revision its data holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelfStatus {
    pub(crate) leader: u64,
    pub(crate) revision: i64,
}

/// A status call to exactly this member (served locally: a member without quorum answers
/// too), bounded by [`TIMEOUT`] in all.
pub(crate) async fn self_status(client_url: &str, tls: &Tls) -> Result<SelfStatus, String> {
    let ask = async {
        let mut c = connect(client_url, tls).await?;
        let s = c.status().await.map_err(|e| format!("{client_url}: {e}"))?;
        Ok(SelfStatus {
            leader: s.leader(),
            revision: s.header().map_or(0, |h| h.revision()),
        })
    };
    tokio::time::timeout(TIMEOUT + Duration::from_secs(1), ask)
        .await
        .unwrap_or_else(|_| Err(format!("{client_url}: no answer within {TIMEOUT:?}")))
}

/// Whether the etcd process behind a peer URL is alive: its peer listener answers
/// `GET /version` (plain http), or takes a TCP connection (https: etcd would ask for a peer
/// certificate, and a connection taken is already a process alive).
pub(crate) async fn peer_answers(peer_url: &str) -> bool {
    let addr = host_port(peer_url).to_string();
    let https = peer_url.starts_with("https://");
    let fut = async move {
        use http_body_util::{BodyExt, Empty};
        let s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        if https {
            return Some(true);
        }
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/version")
            .header(hyper::header::HOST, addr)
            .body(Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let ok = resp.status().is_success();
        let _ = resp.into_body().collect().await;
        Some(ok)
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// etcd 3.4's `/health`: false while any alarm is raised or without a leader, else whether a
/// quorum read answers.
async fn healthy_grpc(client_url: &str, tls: &Tls) -> bool {
    let Ok(mut c) = connect(client_url, tls).await else {
        return false;
    };
    match c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await
    {
        Ok(a) if a.alarms().is_empty() => {}
        _ => return false,
    }
    c.get("health", None).await.is_ok()
}

/// The endpoints worth asking: the local members' client URLs, then the other members'
/// their settings name (`cluster_client_urls`), then the gateway, then the members the
/// gateway forwards to. The gateway only forwards TCP, so it speaks whatever the members
/// speak.
pub fn endpoints(local: &EtcdMembers) -> Vec<String> {
    let mut urls: Vec<String> = local.members.iter().map(|m| m.client_url.clone()).collect();
    for u in local.members.iter().flat_map(|m| &m.cluster_client_urls) {
        if !urls.contains(u) {
            urls.push(u.clone());
        }
    }
    if let Some(gw) = &local.gateway {
        let https = local
            .members
            .iter()
            .any(|m| m.client_url.starts_with("https://"));
        let scheme = if https { "https" } else { "http" };
        urls.push(format!("{scheme}://{}", gw.listen_addr));
        // The members the gateway forwards to, asked directly: with the local member and the
        // gateway down (or on a host that runs only the gateway), they still answer.
        for e in &gw.endpoints {
            let u = format!("{scheme}://{e}");
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
    }
    urls
}

/// Timeout of one membership request.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A member as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    tls: Tls,
    at: usize,
    client: Option<Etcd>,
}

impl Conn {
    pub(crate) fn new(urls: Vec<String>, tls: &Tls) -> Conn {
        Conn {
            urls,
            tls: tls.clone(),
            at: 0,
            client: None,
        }
    }

    /// The TLS files this connection uses, for the checks made beside it.
    pub(crate) fn tls(&self) -> &Tls {
        &self.tls
    }

    pub(crate) async fn client(&mut self) -> Result<&mut Etcd, String> {
        if self.urls.is_empty() {
            return Err("no endpoint to ask".into());
        }
        if self.client.is_none() {
            let url = &self.urls[self.at % self.urls.len()];
            let c = connect_with(url, &self.tls, TIMEOUT, REQUEST_TIMEOUT).await;
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

/// An operation's etcd request that failed for good: its class and the whole message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text}")]
pub(crate) struct OpError {
    pub(crate) class: Class,
    pub(crate) text: String,
}

/// Run `op` until it succeeds, retrying transient errors (and failed connections) with
/// backoff for `budget`.
pub(crate) async fn retry<T, F, Fut>(
    say: Say<'_>,
    what: &str,
    budget: Duration,
    conn: &mut Conn,
    mut op: F,
) -> Result<T, OpError>
where
    F: FnMut(Etcd) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(500);
    let mut told = false;
    loop {
        let (class, e) = match conn.client().await {
            Ok(c) => match op(c.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => (errors::classify(&e), e.to_string()),
            },
            // Not connected: the member may be starting or gone; another may answer.
            Err(e) => (Class::Transient, e),
        };
        if class != Class::Transient {
            return Err(OpError {
                class,
                text: format!("{what}: {e}"),
            });
        }
        conn.failed();
        if Instant::now() + delay > deadline {
            return Err(OpError {
                class,
                text: format!("{what}: still refused after {budget:?}: {e}"),
            });
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
    let mut urls: Vec<String> = endpoints(local)
        .into_iter()
        .filter(|u| exclude.is_none_or(|m| *u != m.client_url))
        .collect();
    if let Some(m) = exclude {
        urls.push(m.client_url.clone());
    }
    let mut conn = Conn::new(urls, &Tls::of(local));
    conn.list()
        .await
        .map_err(|e| anyhow!("no member answers a member list: {e}"))
}

pub(crate) async fn wait_list(conn: &mut Conn, budget: Duration) -> anyhow::Result<Vec<Mem>> {
    poll_until(budget, Duration::from_millis(500), async || {
        conn.list().await
    })
    .await
    .map_err(|e| anyhow!(e))
}

/// How long a guard keeps asking while fewer members than it needs are healthy: right after
/// a membership change or a leader loss, `/health` fails for a few seconds.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);

/// `/health` of each member, asked again (for up to [`SETTLE`]) until `need` are healthy.
pub(crate) async fn settled_health(ms: &[&Mem], need: usize, tls: &Tls) -> Vec<bool> {
    if ms.is_empty() {
        return Vec::new();
    }
    let enough = async || {
        let h = health_of(ms, tls).await;
        if h.iter().filter(|ok| **ok).count() >= need {
            Ok(h)
        } else {
            Err(h)
        }
    };
    poll_until(SETTLE, Duration::from_secs(1), enough)
        .await
        .unwrap_or_else(|h| h)
}

/// `/health` of each member, all at once (an unstarted member is not healthy).
pub(crate) async fn health_of(ms: &[&Mem], tls: &Tls) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in ms.iter().enumerate() {
        let url = m.client_urls.first().cloned();
        let tls = tls.clone();
        set.spawn(async move {
            let ok = match url {
                Some(u) => healthy(&u, &tls).await,
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
pub(crate) async fn read_works(client_url: &str, tls: &Tls) -> bool {
    match connect(client_url, tls).await {
        Ok(mut c) => c.get("fild-membership-probe", None).await.is_ok(),
        Err(_) => false,
    }
}

pub(crate) async fn wait_healthy(
    say: Say<'_>,
    name: &str,
    client_url: &str,
    tls: &Tls,
) -> anyhow::Result<()> {
    say(&format!("wait for {name} to be healthy at {client_url}"));
    let serves = async || {
        (healthy(client_url, tls).await && read_works(client_url, tls).await)
            .then_some(())
            .ok_or(())
    };
    poll_until(VERIFY_BUDGET, Duration::from_millis(500), serves)
        .await
        .map_err(|()| anyhow!("{name} is not healthy at {client_url} after {VERIFY_BUDGET:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ProcessState;

    #[test]
    fn the_gateway_speaks_the_members_scheme() {
        let m = |url: &str| crate::api::EtcdMember {
            program: "etcd-0".into(),
            state: ProcessState::Running,
            pid: 1,
            env_file: String::new(),
            name: "boot0".into(),
            client_url: url.into(),
            peer_url: String::new(),
            data_dir: String::new(),
            initial_cluster: String::new(),
            configured_initial_cluster: String::new(),
            cluster_token: String::new(),
            cluster_state: String::new(),
            cluster_client_urls: vec![],
            runtime_file: String::new(),
            argv: vec![],
            next_start_flags: vec![],
            learned: vec![],
            etcd_version: String::new(),
            etcd_version_problem: String::new(),
            etcdctl_bin: String::new(),
            etcdutl_bin: String::new(),
            client_tls: Default::default(),
        };
        let gw = Some(crate::api::EtcdGateway {
            program: "etcd-gw".into(),
            state: ProcessState::Running,
            env_file: String::new(),
            listen_addr: "127.0.0.1:2379".into(),
            endpoints: vec![],
            runtime_file: String::new(),
            argv: vec![],
            learned: vec![],
        });
        let mut local = EtcdMembers {
            members: vec![m("https://127.0.0.1:2079")],
            gateway: gw,
            ..Default::default()
        };
        assert_eq!(endpoints(&local)[1], "https://127.0.0.1:2379");
        local.members = vec![m("http://127.0.0.1:2079")];
        assert_eq!(endpoints(&local)[1], "http://127.0.0.1:2379");
        // The gateway's members come after it, each once.
        if let Some(g) = local.gateway.as_mut() {
            g.endpoints = vec!["127.0.0.1:2079".into(), "10.0.0.2:2179".into()];
        }
        assert_eq!(
            endpoints(&local),
            [
                "http://127.0.0.1:2079",
                "http://127.0.0.1:2379",
                "http://10.0.0.2:2179"
            ]
        );
        // The other members the settings name come after the local ones, each once.
        local.gateway = None;
        local.members[0].cluster_client_urls = vec![
            "http://127.0.0.1:2079".into(),
            "http://10.0.0.3:2279".into(),
        ];
        assert_eq!(
            endpoints(&local),
            ["http://127.0.0.1:2079", "http://10.0.0.3:2279"]
        );
    }
    #[test]
    fn the_health_endpoint_follows_the_version() {
        let v = |s: &str| releases::parse(s).ok();
        // Both installable versions (and an unknown one) keep /health.
        assert_eq!(health_path(v("3.4.23")), "/health");
        assert_eq!(health_path(v("3.5.1")), "/health");
        assert_eq!(health_path(None), "/health");
        assert_eq!(health_path(v("3.5.10")), "/health");
        // Where the version serves /readyz, the probe asks it.
        assert_eq!(health_path(v("3.4.29")), "/readyz");
        assert_eq!(health_path(v("3.5.11")), "/readyz");
        assert_eq!(health_path(v("3.6.0")), "/readyz");
    }

    /// A tiny HTTP stand-in for a member's client port: `/version` says `version`; `/readyz`
    /// answers ok only from 3.6 on (404 below, as 3.5.1 does); `/health` answers
    /// `"health":"true"` only below 3.6 (503 `"false"` from 3.6 on, so a probe that asks it
    /// on 3.6 fails). Every path asked is recorded.
    struct StandIn {
        url: String,
        version: std::sync::Arc<std::sync::Mutex<String>>,
        asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    async fn stand_in(version: &str) -> StandIn {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let version = std::sync::Arc::new(std::sync::Mutex::new(version.to_string()));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (ver, log) = (version.clone(), asked.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let (ver, log) = (ver.clone(), log.clone());
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&req).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    log.lock().unwrap().push(path.clone());
                    let v = ver.lock().unwrap().clone();
                    let new = releases::parse(&v).unwrap() >= Version::new(3, 6, 0);
                    let (code, body) = match path.as_str() {
                        "/version" => (
                            "200 OK",
                            format!(r#"{{"etcdserver":"{v}","etcdcluster":"3.6.0"}}"#),
                        ),
                        "/readyz" if new => ("200 OK", "ok".to_string()),
                        "/health" if !new => ("200 OK", r#"{"health":"true"}"#.to_string()),
                        "/health" => (
                            "503 Service Unavailable",
                            r#"{"health":"false"}"#.to_string(),
                        ),
                        _ => ("404 Not Found", "404 page not found".to_string()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        StandIn {
            url,
            version,
            asked,
        }
    }

    impl StandIn {
        /// The paths asked since the last call.
        fn asked(&self) -> Vec<String> {
            std::mem::take(&mut *self.asked.lock().unwrap())
        }
    }

    #[tokio::test]
    async fn the_probe_asks_readyz_of_a_3_6_member_and_health_of_an_older_one() {
        let tls = Tls::new(None);
        let m = stand_in("3.6.0").await;
        // /health fails on this stand-in: healthy only because /readyz is asked.
        assert!(healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/version", "/readyz"]);
        // The version is remembered: the next probe asks /readyz alone.
        assert!(healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/readyz"]);
        // The member comes back on an older binary (no /readyz): the probe that fails
        // forgets the version, the next one asks /version again and then /health.
        *m.version.lock().unwrap() = "3.5.1".into();
        assert!(!healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/readyz"]);
        assert!(healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/version", "/health"]);
        assert!(healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/health"]);
        // What cluster_version asks is remembered too.
        let m = stand_in("3.4.23").await;
        assert_eq!(cluster_version(&m.url).await.as_deref(), Some("3.6.0"));
        assert!(healthy(&m.url, &tls).await);
        assert_eq!(m.asked(), ["/version", "/health"]);
        // Nothing listening: not healthy (and nothing remembered).
        let gone = format!("http://{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        });
        assert!(!healthy(&gone, &tls).await);
        assert!(!SERVER_VERSIONS.lock().unwrap().contains_key(&gone));
    }

    #[test]
    fn tls_options_only_for_https_and_errors_name_the_file() {
        let tls = Tls::new(Some(ClientTls {
            trusted_ca_file: "/nonexistent/ca.crt".into(),
            ..Default::default()
        }));
        assert!(
            tls.options("http://127.0.0.1:1", ConnectOptions::new())
                .is_ok()
        );
        let e = tls
            .options("https://127.0.0.1:1", ConnectOptions::new())
            .unwrap_err();
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
        let e = Tls::new(None)
            .options("https://127.0.0.1:1", ConnectOptions::new())
            .unwrap_err();
        assert!(e.contains("ETCDCTL_CACERT"), "{e}");
    }
}
