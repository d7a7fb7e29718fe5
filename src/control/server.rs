//! The control server: HTTP/1.1 + JSON on the Unix socket (and optionally TCP), turned into
//! [`Request`]s for the supervisor loop. Routes and bodies are defined in [`crate::api`].
//!
//! Every malformed or unknown request gets a 4xx JSON [`ErrorReply`]; nothing a client sends
//! can stop the daemon.

use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request as HttpRequest, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use super::admission::{Brake, Slots, credentials_match};
use crate::api::{self, Ack, ErrorReply, LogChunk, NamesRequest, SignalRequest, VersionInfo};
use crate::config::Credentials;
use crate::supervisor::{ApiError, ErrorKind, Handle, ProgramsView, Request, UserOp};

/// The future a hook returns.
pub type HookFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
/// The future the quorum guard hook returns.
pub type GuardFuture = HookFuture<Result<api::ActionReply, ApiError>>;

/// The etcd operations fild runs (`/v1/etcd/ops`), as the server sees them.
pub trait OpsHook: Send + Sync {
    /// Start an operation, or refuse while another runs.
    fn begin(&self, req: api::EtcdOpRequest) -> Result<api::EtcdOp, ApiError>;
    /// Every operation kept, without its lines.
    fn list(&self) -> Vec<api::EtcdOp>;
    /// Operation `id` with its lines from `from` on, once there is one or it ended (or `wait`
    /// passed).
    fn follow(
        &self,
        id: u64,
        from: usize,
        wait: std::time::Duration,
    ) -> HookFuture<Result<api::EtcdOp, ApiError>>;
}

/// What the server asks of the etcd side, handed in by `daemon`, so that `control` never
/// imports the etcd operations: the quorum guard in front of start/stop/restart, the
/// members view of `GET /v1/etcd/members`, and the operations.
#[derive(Clone)]
pub struct EtcdHooks {
    /// Carry out a start, stop or restart (with the quorum guard and rolling restarts).
    pub action:
        std::sync::Arc<dyn Fn(Handle, UserOp, Vec<String>, bool) -> GuardFuture + Send + Sync>,
    /// The etcd members and gateway among the programs.
    pub members: std::sync::Arc<dyn Fn(ProgramsView) -> HookFuture<api::EtcdMembers> + Send + Sync>,
    /// Send a signal (with the quorum guard for etcd members).
    pub signal: std::sync::Arc<dyn Fn(Handle, SignalRequest) -> GuardFuture + Send + Sync>,
    /// The operations fild runs.
    pub ops: std::sync::Arc<dyn OpsHook>,
    /// This host's members' data positions (`GET /v1/etcd/positions`).
    pub positions:
        std::sync::Arc<dyn Fn(ProgramsView) -> HookFuture<api::EtcdPositions> + Send + Sync>,
    /// The snapshots of this host (`true`: only this host's) and of the others
    /// (`GET /v1/etcd/backups`).
    pub backups: std::sync::Arc<
        dyn Fn(ProgramsView, bool) -> HookFuture<Vec<api::HostBackups>> + Send + Sync,
    >,
    /// Where snapshot file `name` of this host's backup folder is, if it is one
    /// (`GET /v1/etcd/backups/{name}`).
    pub backup_file: BackupFileHook,
    /// fild's own periodic view of the etcd cluster for `GET /metrics`, as last refreshed
    /// (None: no etcd member configured). It never asks the cluster: the scrape waits on
    /// nothing of etcd.
    pub metrics: std::sync::Arc<dyn Fn() -> Option<api::EtcdFigures> + Send + Sync>,
}

/// [`EtcdHooks::backup_file`].
pub type BackupFileHook = std::sync::Arc<
    dyn Fn(ProgramsView, String) -> HookFuture<Result<PathBuf, ApiError>> + Send + Sync,
>;

/// This fild's instance: random, drawn once per process ([`VersionInfo::instance`]).
pub fn instance() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::io::Read;
        let mut b = [0u8; 8];
        let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
        if ok.is_err() {
            // Unique enough among the hosts of one cluster: pid and start time.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            b = (t ^ u64::from(std::process::id()) << 40).to_le_bytes();
        }
        b.iter().map(|x| format!("{x:02x}")).collect()
    })
}

/// What every connection is served with: the way into the loop, the etcd hooks, and the
/// admission state every listener shares.
#[derive(Clone)]
pub struct Served {
    pub handle: Handle,
    pub etcd: EtcdHooks,
    pub slots: Slots,
    pub brake: Brake,
}

/// How long a client may take to send a request's headers, and then its body.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most bytes one log read returns.
const MAX_LOG_READ: u64 = 1 << 20;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The Unix socket: no browser can reach it.
    Unix,
    /// `[inet_http_server]`: a browser can, so state-changing requests are checked for
    /// cross-site use ([`cross_site`]).
    Tcp,
    /// `[inet_http_server]` with `tls_cert_file`: as [`Via::Tcp`], its origin `https://`.
    Tls,
}

/// On the TCP listener, why a request that may change state must be refused as one a web
/// page elsewhere could have made a browser send (with its cached Basic credentials): it
/// must say `Content-Type: application/json` (which a page cannot send without CORS, and
/// fild answers no CORS preflight), and an `Origin` it carries must be the listener's own
/// (`http://`, or `https://` over TLS, and the `Host` it was asked at). Reads (GET, HEAD) pass; so does any request
/// on the Unix socket.
pub fn cross_site(via: Via, method: &Method, headers: &hyper::HeaderMap) -> Option<(u16, String)> {
    if via == Via::Unix || method == Method::GET || method == Method::HEAD {
        return None;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Some((
            415,
            "a request that changes state needs the header Content-Type: application/json".into(),
        ));
    }
    // No Origin: not a browser's cross-site request (filc, curl).
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let scheme = if via == Via::Tls { "https" } else { "http" };
    let own = host.map(|h| format!("{scheme}://{h}"));
    match (origin.to_str().ok(), own) {
        (Some(o), Some(own)) if o.eq_ignore_ascii_case(&own) => None,
        (o, _) => Some((
            403,
            format!(
                "refused: a request from the web page origin {} (fild only takes state changes from its own origin or from clients that send no Origin)",
                o.unwrap_or("(unreadable)")
            ),
        )),
    }
}

/// The peer of one connection: which listener, and who (a TCP peer's address, a Unix peer's
/// uid), as the failed-login brake counts it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub via: Via,
    pub source: String,
}

/// Serve one accepted connection until the client closes it.
pub async fn serve_connection<S>(io: S, served: Served, auth: Option<Credentials>, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let served = served.clone();
        let auth = auth.clone();
        let peer = peer.clone();
        async move { Ok::<_, Infallible>(route(req, &served, auth.as_ref(), &peer).await) }
    });
    // Headers beyond 64 KiB get 431; bodies are limited separately (api::MAX_BODY_BYTES).
    // A client that stalls mid-request is dropped instead of holding a connection forever.
    if let Err(e) = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .half_close(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, "Control connection ended with an error.");
    }
}

/// Who may talk to fild on its Unix socket, checked on the peer's credentials (SO_PEERCRED)
/// before a byte is read: root, fild's own user, the socket's owner, or a member of the
/// socket's group when `[unix_http_server] chown` names one. File modes already keep others
/// out; this holds even when `chmod` is opened up.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    pub own_uid: u32,
    pub owner_uid: u32,
    pub group: Option<u32>,
}

impl PeerPolicy {
    /// Whether a peer of `uid` and primary `gid` may connect; its supplementary groups
    /// (`groups`) are asked for only when they decide it.
    pub fn allows(&self, uid: u32, gid: u32, groups: impl FnOnce() -> Vec<u32>) -> bool {
        if uid == 0 || uid == self.own_uid || uid == self.owner_uid {
            return true;
        }
        let Some(group) = self.group else {
            return false;
        };
        gid == group || groups().contains(&group)
    }
}

/// The peer's supplementary groups as the kernel recorded them when it connected
/// (`SO_PEERGROUPS`), not as `/proc` shows them later, when the pid may be someone else's.
pub fn peer_groups(fd: std::os::fd::RawFd) -> Vec<u32> {
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
    // SAFETY: getsockopt into our buffer, its size in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERGROUPS,
            groups.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Vec::new();
    }
    groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
    groups
}

/// Accept on a Unix listener forever.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    served: Served,
    auth: Option<Credentials>,
    policy: PeerPolicy,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let cred = stream.peer_cred().ok();
                let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                let allowed =
                    cred.is_some_and(|c| policy.allows(c.uid(), c.gid(), || peer_groups(fd)));
                let local_root = cred.is_some_and(|c| c.uid() == 0 || c.uid() == policy.own_uid);
                // No slot: closed at once (dropped), before a byte is read.
                let Some(slot) = served.slots.admit(local_root) else {
                    tracing::debug!("Control connection closed: every slot is taken.");
                    continue;
                };
                if allowed {
                    let peer = Peer {
                        via: Via::Unix,
                        source: cred.map_or("uid ?".into(), |c| format!("uid {}", c.uid())),
                    };
                    let conn = serve_connection(stream, served.clone(), auth.clone(), peer);
                    tokio::spawn(async move {
                        conn.await;
                        drop(slot);
                    });
                } else {
                    let who = stream
                        .peer_cred()
                        .map(|c| format!("uid {} (pid {:?})", c.uid(), c.pid()))
                        .unwrap_or_else(|_| "an unknown peer".into());
                    tracing::warn!(peer = %who, "Refused a control connection.");
                    tokio::spawn(async move {
                        refuse_connection(stream, who).await;
                        drop(slot);
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed on the control socket.");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Answer the first request on a connection with 403, then close it.
async fn refuse_connection(stream: tokio::net::UnixStream, who: String) {
    let service = service_fn(move |_req| {
        let msg = format!(
            "permission denied: {who} is not root, fild's user, the socket's owner or in its group"
        );
        async move { Ok::<_, Infallible>(error(403, msg)) }
    });
    let _ = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(REQUEST_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// How long a TCP client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accept on a TCP listener forever (only ever started with credentials); with `tls`, every
/// connection is TLS first. A handshake that fails (a plain-http client, a peer that does not
/// trust the certificate, one that says nothing) ends that connection and nothing else.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    served: Served,
    auth: Credentials,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Some(slot) = served.slots.admit(false) else {
                    tracing::debug!(peer = %addr, "TCP control connection closed: every slot is taken.");
                    continue;
                };
                let peer = Peer {
                    via: if tls.is_some() { Via::Tls } else { Via::Tcp },
                    source: addr.ip().to_string(),
                };
                let served = served.clone();
                let auth = Some(auth.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(stream, served, auth, peer).await,
                        Some(acceptor) => {
                            let shake =
                                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                            match shake.await {
                                Ok(Ok(s)) => serve_connection(s, served, auth, peer).await,
                                Ok(Err(e)) => tracing::warn!(
                                    peer = %addr,
                                    error = %super::tls::describe(&e),
                                    "TLS handshake failed on the TCP control port (a client without TLS, or one that does not trust fild's certificate)."
                                ),
                                Err(_) => tracing::debug!(
                                    peer = %addr,
                                    "TLS handshake not done in time on the TCP control port."
                                ),
                            }
                        }
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed on the TCP control port.");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static response parts are valid")
}

/// The server's own refusals (routing, decoding, authentication), with their HTTP status.
fn error(status: u16, msg: impl Into<String>) -> Resp {
    reply_error(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        ErrorReply {
            error: msg.into(),
            details: Vec::new(),
        },
    )
}

/// The HTTP status of each kind of core error.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Refused => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn from_api_error(e: ApiError) -> Resp {
    reply_error(
        http_status(e.kind),
        ErrorReply {
            error: e.error,
            details: e.details,
        },
    )
}

fn reply_error(status: StatusCode, body: ErrorReply) -> Resp {
    let mut resp = json(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"fild\""),
        );
    }
    // A refused client gets its answer and the connection ends: it holds no slot.
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

fn result<T: Serialize>(r: Result<T, ApiError>) -> Resp {
    match r {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => from_api_error(e),
    }
}

/// Whether the request carries the configured credentials (Basic auth).
fn authorized(req: &HttpRequest<Incoming>, auth: Option<&Credentials>) -> bool {
    let Some(creds) = auth else {
        return true;
    };
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, pass)) = decoded.split_once(':') else {
        return false;
    };
    credentials_match(creds, user, pass)
}

async fn body<T: DeserializeOwned>(req: HttpRequest<Incoming>) -> Result<T, Resp> {
    let collect = Limited::new(req.into_body(), api::MAX_BODY_BYTES).collect();
    let Ok(collected) = tokio::time::timeout(REQUEST_TIMEOUT, collect).await else {
        return Err(error(408, "request body not received in time"));
    };
    let bytes = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Err(error(
                    413,
                    format!("request body larger than {} bytes", api::MAX_BODY_BYTES),
                ));
            }
            return Err(error(400, format!("cannot read request body: {e}")));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| error(400, format!("malformed JSON body: {e}")))
}

fn query(req: &HttpRequest<Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

async fn route(
    req: HttpRequest<Incoming>,
    served: &Served,
    auth: Option<&Credentials>,
    peer: &Peer,
) -> Resp {
    let handle = &served.handle;
    if let Some((status, why)) = cross_site(peer.via, req.method(), req.headers()) {
        tracing::warn!(path = %req.uri().path(), "{why}");
        return error(status, why);
    }
    if !authorized(&req, auth) {
        let (failures, delay) = served.brake.failed(&peer.source, std::time::Instant::now());
        tracing::warn!(
            source = %peer.source,
            failures,
            delay_ms = delay.as_millis() as u64,
            "Failed login to the control API."
        );
        tokio::time::sleep(delay).await;
        return error(
            401,
            "authentication required (username/password from the config)",
        );
    }
    if auth.is_some() {
        served.brake.succeeded(&peer.source);
    }
    let path = req.uri().path().to_string();
    if path == api::routes::METRICS {
        return match *req.method() {
            Method::GET | Method::HEAD => metrics(served).await,
            ref m => {
                let mut resp = error(405, format!("{m} is not allowed on {path}: use GET"));
                resp.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
                resp
            }
        };
    }
    if path == api::routes::PAGE {
        return match *req.method() {
            Method::GET => super::page::response(false),
            Method::HEAD => super::page::response(true),
            ref m => {
                let mut resp = error(405, format!("{m} is not allowed on {path}: use GET"));
                resp.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
                resp
            }
        };
    }
    let Some(rest) = path.strip_prefix(api::PREFIX) else {
        return error(
            404,
            format!("unknown path {path} (this fild speaks {})", api::PREFIX),
        );
    };
    let method = req.method().clone();
    match (&method, rest) {
        (&Method::GET, "/version") => json(
            StatusCode::OK,
            &VersionInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                api: api::PREFIX.trim_start_matches('/').to_string(),
                pid: std::process::id(),
                instance: instance().to_string(),
            },
        ),
        (&Method::GET, "/processes") => {
            let names: Vec<String> = query(&req, "names")
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(percent_decode)
                        .collect()
                })
                .unwrap_or_default();
            let stats = query(&req, "stats").is_none_or(|v| v != "0");
            result(
                handle
                    .call(|reply| Request::Status {
                        names,
                        stats,
                        reply,
                    })
                    .await,
            )
        }
        (&Method::POST, "/processes/start" | "/processes/stop" | "/processes/restart") => {
            let op = match rest {
                "/processes/start" => UserOp::Start,
                "/processes/stop" => UserOp::Stop,
                _ => UserOp::Restart,
            };
            let req: NamesRequest = match body(req).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            // Stops and restarts naming etcd members pass the quorum guard (unless forced);
            // a restart of several members rolls through them one at a time.
            result((served.etcd.action)(handle.clone(), op, req.names, req.force).await)
        }
        (&Method::POST, "/processes/signal") => {
            let req: SignalRequest = match body(req).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            // A signal to etcd members passes the quorum guard, as a stop does.
            result((served.etcd.signal)(handle.clone(), req).await)
        }
        (&Method::POST, "/reload") => {
            // A reload that would cost the etcd members quorum is refused unless forced.
            let force = query(&req, "force").is_some_and(|v| v == "1" || v == "true");
            result(handle.call(|reply| Request::Reload { force, reply }).await)
        }
        (&Method::GET, "/etcd/members") => {
            match handle.call(|reply| Request::Programs { reply }).await {
                Ok(view) => result(Ok::<_, ApiError>((served.etcd.members)(view).await)),
                Err(e) => from_api_error(e),
            }
        }
        // The periodic view, as it was last refreshed: never a call to the cluster.
        (&Method::GET, "/etcd/view") => json(StatusCode::OK, &(served.etcd.metrics)()),
        (&Method::GET, "/etcd/positions") => {
            match handle.call(|reply| Request::Programs { reply }).await {
                Ok(view) => result(Ok::<_, ApiError>((served.etcd.positions)(view).await)),
                Err(e) => from_api_error(e),
            }
        }
        (&Method::GET, "/etcd/backups") => {
            let here = query(&req, "here").is_some_and(|v| v == "1" || v == "true");
            match handle.call(|reply| Request::Programs { reply }).await {
                Ok(view) => result(Ok::<_, ApiError>((served.etcd.backups)(view, here).await)),
                Err(e) => from_api_error(e),
            }
        }
        (&Method::GET, r) if r.starts_with("/etcd/backups/") => {
            let name = percent_decode(&r["/etcd/backups/".len()..]);
            let offset = match query(&req, "offset").map(|v| v.parse::<u64>()) {
                None => 0,
                Some(Ok(o)) => o,
                Some(Err(_)) => return error(400, "offset must be a byte count"),
            };
            let max = match query(&req, "max").map(|v| v.parse::<u64>()) {
                None => MAX_BACKUP_READ,
                Some(Ok(m)) => m.min(MAX_BACKUP_READ),
                Some(Err(_)) => return error(400, "max must be a byte count"),
            };
            let view = match handle.call(|reply| Request::Programs { reply }).await {
                Ok(v) => v,
                Err(e) => return from_api_error(e),
            };
            let file = match (served.etcd.backup_file)(view, name).await {
                Ok(f) => f,
                Err(e) => return from_api_error(e),
            };
            match tokio::task::spawn_blocking(move || read_chunk(&file, offset, max)).await {
                Ok(Ok((bytes, size))) => {
                    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
                    let h = resp.headers_mut();
                    h.insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/octet-stream"),
                    );
                    h.insert("x-fild-size", header::HeaderValue::from(size));
                    resp
                }
                Ok(Err(e)) => from_api_error(e),
                Err(e) => error(500, format!("snapshot read failed: {e}")),
            }
        }
        (&Method::POST, "/etcd/ops") => {
            let req: api::EtcdOpRequest = match body(req).await {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            result(served.etcd.ops.begin(req))
        }
        (&Method::GET, "/etcd/ops") => result(Ok::<_, ApiError>(served.etcd.ops.list())),
        (&Method::GET, r) if r.starts_with("/etcd/ops/") => {
            let Ok(id) = r["/etcd/ops/".len()..].parse::<u64>() else {
                return error(404, "use /v1/etcd/ops/{id} with a numeric id");
            };
            let from = match query(&req, "from").map(|v| v.parse::<usize>()) {
                None => 0,
                Some(Ok(f)) => f,
                Some(Err(_)) => return error(400, "from must be a line count"),
            };
            let wait = match query(&req, "wait").map(|v| v.parse::<u64>()) {
                None => 0,
                Some(Ok(w)) => w,
                Some(Err(_)) => return error(400, "wait must be whole seconds"),
            };
            let wait = std::time::Duration::from_secs(wait);
            result(served.etcd.ops.follow(id, from, wait).await)
        }
        (&Method::POST, "/shutdown") => result(
            handle
                .call(|reply| Request::Shutdown { reply })
                .await
                .map(|()| Ack { ok: true }),
        ),
        (&Method::GET, r) if r.starts_with("/logs/") => {
            let parts: Vec<&str> = r["/logs/".len()..].split('/').collect();
            let [name, stream] = parts[..] else {
                return error(404, "use /v1/logs/{name}/{stdout|stderr}");
            };
            let (name, stream) = (percent_decode(name), stream.to_string());
            let offset = match query(&req, "offset").map(|v| v.parse::<u64>()) {
                None => None,
                Some(Ok(o)) => Some(o),
                Some(Err(_)) => return error(400, "offset must be a byte count"),
            };
            let max = match query(&req, "max").map(|v| v.parse::<u64>()) {
                None => 1600,
                Some(Ok(m)) => m.min(MAX_LOG_READ),
                Some(Err(_)) => return error(400, "max must be a byte count"),
            };
            match handle
                .call(|reply| Request::LogFile {
                    name,
                    stream,
                    reply,
                })
                .await
            {
                // Up to 1 MiB from disk: on the blocking pool, never on the loop's thread.
                Ok(file) => {
                    match tokio::task::spawn_blocking(move || read_log(&file, offset, max)).await {
                        Ok(r) => result(r),
                        Err(e) => error(500, format!("log read failed: {e}")),
                    }
                }
                Err(e) => from_api_error(e),
            }
        }
        (_, "/version" | "/processes" | "/reload" | "/shutdown")
        | (_, "/processes/start" | "/processes/stop" | "/processes/restart")
        | (_, "/processes/signal") => error(405, format!("{method} is not allowed on {path}")),
        _ => error(404, format!("unknown path {path}")),
    }
}

/// `GET /metrics`: the programs (one status request to the loop, as `filc status --json`
/// makes), fild's own figures and the etcd side's cached view, as Prometheus text.
async fn metrics(served: &Served) -> Resp {
    let procs = match served
        .handle
        .call(|reply| Request::Status {
            names: Vec::new(),
            stats: true,
            reply,
        })
        .await
    {
        Ok(p) => p,
        Err(e) => return from_api_error(e),
    };
    let etcd = (served.etcd.metrics)();
    let text = super::metrics::render(&procs, &super::metrics::Own::read(), etcd.as_ref());
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    resp
}

/// The most one `GET /v1/etcd/backups/{file}` returns.
const MAX_BACKUP_READ: u64 = 4 << 20;

/// Up to `max` bytes of `path` from `offset`, and the file's size.
fn read_chunk(path: &Path, offset: u64, max: u64) -> Result<(Vec<u8>, u64), ApiError> {
    let internal = |e: std::io::Error| {
        ApiError::new(
            ErrorKind::Internal,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let mut f = std::fs::File::open(path).map_err(internal)?;
    let size = f.metadata().map_err(internal)?.len();
    f.seek(SeekFrom::Start(offset.min(size)))
        .map_err(internal)?;
    let mut buf = Vec::with_capacity(max.min(size.saturating_sub(offset)) as usize);
    f.take(max).read_to_end(&mut buf).map_err(internal)?;
    Ok((buf, size))
}

/// Read up to `max` bytes from `offset`, or the last `max` bytes when no offset is given.
fn read_log(path: &Path, offset: Option<u64>, max: u64) -> Result<LogChunk, ApiError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogChunk {
                file: path.display().to_string(),
                offset: 0,
                size: 0,
                read: 0,
                data: String::new(),
            });
        }
        Err(e) => {
            return Err(ApiError::new(
                ErrorKind::Internal,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let size = f
        .metadata()
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?
        .len();
    // A rotated or truncated file is shorter than the client's offset: start over.
    let start = match offset {
        Some(o) if o <= size => o,
        Some(_) => 0,
        None => size.saturating_sub(max),
    };
    f.seek(SeekFrom::Start(start))
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let mut buf = Vec::new();
    f.take(max)
        .read_to_end(&mut buf)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    // Whole characters only: a tail read that began inside one skips its rest, and a
    // character cut at the end waits for the next read.
    let skip = if offset.is_none() && start > 0 {
        buf.iter()
            .take(3)
            .take_while(|b| **b & 0xC0 == 0x80)
            .count()
    } else {
        0
    };
    let mut end = whole_utf8_end(&buf).max(skip);
    if end == skip && buf.len() as u64 >= max {
        // A `max` below one character's length: progress over whole characters.
        end = buf.len();
    }
    Ok(LogChunk {
        file: path.display().to_string(),
        offset: start + skip as u64,
        size,
        read: (end - skip) as u64,
        data: String::from_utf8_lossy(&buf[skip..end]).into_owned(),
    })
}

/// How much of `buf` to show now: all of it, less a UTF-8 character cut off at its end
/// (a lead byte whose continuation bytes have not been read yet).
fn whole_utf8_end(buf: &[u8]) -> usize {
    for back in 1..=buf.len().min(3) {
        let i = buf.len() - back;
        let b = buf[i];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let need = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => 1,
        };
        return if back < need { i } else { buf.len() };
    }
    buf.len()
}

/// A percent-encoded name, decoded (invalid UTF-8 is replaced, never an error).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_read_shows_whole_characters_only() {
        let text = "日志 ok é".as_bytes();
        assert_eq!(whole_utf8_end(text), text.len());
        assert_eq!(whole_utf8_end(b""), 0);
        // Cut inside 志 (3 bytes) or é (2): held back until the rest is read.
        assert_eq!(whole_utf8_end(&text[..4]), 3);
        assert_eq!(whole_utf8_end(&text[..5]), 3);
        assert_eq!(whole_utf8_end(&text[..text.len() - 1]), text.len() - 2);
        // Invalid bytes are not held back (they are shown as replacement characters).
        assert_eq!(whole_utf8_end(b"ab\xff"), 3);
        assert_eq!(whole_utf8_end(b"\x80\x80\x80\x80"), 4);
        // Through a file, read in pieces from each `offset + read`: the text comes back whole.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let all = "行一\n第二行 ünï\n€\n".repeat(20);
        std::fs::write(&path, &all).unwrap();
        for max in [4, 5, 7, 13] {
            let (mut got, mut at) = (String::new(), 0);
            for _ in 0..10_000 {
                let c = read_log(&path, Some(at), max).unwrap();
                got.push_str(&c.data);
                at = c.offset + c.read;
                if at == c.size {
                    break;
                }
            }
            assert_eq!(got, all, "max {max}");
        }
        // A tail read that starts inside a character skips to the next whole one.
        let c = read_log(&path, None, 5).unwrap();
        assert!(!c.data.contains('\u{fffd}'), "{:?}", c.data);
        assert!(all.ends_with(&c.data), "{:?}", c.data);
        assert_eq!(c.offset + c.read, c.size);
    }

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_page_elsewhere_cannot_change_state_over_tcp() {
        let post = Method::POST;
        // What any page can make a browser send.
        let page = headers(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "http://evil.example"),
            ("content-type", "text/plain"),
        ]);
        assert_eq!(cross_site(Via::Tcp, &post, &page).unwrap().0, 415);
        let page_json = headers(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "http://evil.example"),
            ("content-type", "application/json"),
        ]);
        let (status, why) = cross_site(Via::Tcp, &post, &page_json).unwrap();
        assert_eq!(status, 403);
        assert!(why.contains("http://evil.example"), "{why}");
        let null = headers(&[("origin", "null"), ("content-type", "application/json")]);
        assert_eq!(cross_site(Via::Tcp, &post, &null).unwrap().0, 403);
        // filc and curl: JSON, no Origin; a page of fild's own origin.
        let client = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(cross_site(Via::Tcp, &post, &client), None);
        let own = headers(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "http://127.0.0.1:9001"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(cross_site(Via::Tcp, &post, &own), None);
        // Over TLS the listener's own origin is https://.
        let own_tls = headers(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "https://127.0.0.1:9001"),
            ("content-type", "application/json"),
        ]);
        assert_eq!(cross_site(Via::Tls, &post, &own_tls), None);
        assert_eq!(cross_site(Via::Tls, &post, &own).unwrap().0, 403);
        assert_eq!(cross_site(Via::Tcp, &post, &own_tls).unwrap().0, 403);
        // Reads, and the Unix socket, are not checked.
        assert_eq!(cross_site(Via::Tcp, &Method::GET, &page), None);
        assert_eq!(cross_site(Via::Unix, &post, &page), None);
    }
}
