//! The client side of the control protocol: what `filc` (and the tests) call.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tls::Trust;
use crate::api::{
    Ack, ActionReply, ErrorReply, EtcdMembers, EtcdOp, EtcdOpRequest, EtcdPositions, HostBackups,
    LogChunk, NamesRequest, ProcessInfo, ReloadReply, SignalRequest, VersionInfo, routes,
};

/// What a name may hold unencoded in a query or a path segment.
const NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b':')
    .remove(b'*');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NAME).to_string()
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(std::path::PathBuf),
    /// `host:port`
    Tcp(String),
    /// `host:port`, over TLS.
    Https(String),
}

impl Target {
    /// Parse `unix:///path`, `/path`, `http://host:port`, `https://host:port`.
    pub fn parse(url: &str) -> Result<Target, String> {
        if let Some(p) = url.strip_prefix("unix://") {
            Ok(Target::Unix(p.into()))
        } else if let Some(h) = url.strip_prefix("http://") {
            Ok(Target::Tcp(h.trim_end_matches('/').to_string()))
        } else if let Some(h) = url.strip_prefix("https://") {
            Ok(Target::Https(h.trim_end_matches('/').to_string()))
        } else if url.starts_with('/') || url.starts_with('.') {
            Ok(Target::Unix(url.into()))
        } else {
            Err(format!(
                "unsupported server URL {url:?} (use unix:///path, http://host:port or https://host:port)"
            ))
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
            Target::Tcp(h) => write!(f, "http://{h}"),
            Target::Https(h) => write!(f, "https://{h}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection to fild. The message says the cause once (the I/O error is not also a
    /// `source`, which anyhow would print a second time) and what to do: [`unreachable`].
    #[error("{}", unreachable(.target, .error))]
    Unreachable {
        target: Target,
        error: std::io::Error,
    },
    /// The TLS handshake with fild failed, or there is nothing to verify it with.
    #[error("TLS with fild at {target} failed: {error}")]
    Tls { target: Target, error: String },
    #[error("{}", .body.error)]
    Api { status: u16, body: ErrorReply },
    #[error("protocol error talking to fild: {0}")]
    Protocol(String),
}

/// Why filc cannot reach fild at `target`, said once, and what to do about it.
pub fn unreachable(target: &Target, error: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    const START: &str = "start fild (fild -c FILE, or systemctl start fild)";
    match (target, error.kind()) {
        (Target::Unix(p), K::NotFound) => format!(
            "fild is not running: there is no socket at {}; {START}, or point filc at the socket fild uses (-s PATH, or [unix_http_server] file)",
            p.display()
        ),
        (Target::Unix(p), K::ConnectionRefused) => format!(
            "fild is not running: nothing listens on the socket {} (a fild that stopped left it); {START}, which replaces it, or point filc at the socket fild uses (-s PATH, or [unix_http_server] file)",
            p.display()
        ),
        (Target::Unix(p), K::PermissionDenied) => format!(
            "not allowed to use fild's socket {}; run filc as fild's user or root, or see [unix_http_server] chmod and chown",
            p.display()
        ),
        (t @ (Target::Tcp(_) | Target::Https(_)), K::ConnectionRefused) => format!(
            "fild does not listen at {t}: the connection was refused; {START}, or point filc at where fild listens (-s http://HOST:PORT or https://HOST:PORT, or [supervisorctl] serverurl)"
        ),
        (t, _) => format!(
            "cannot reach fild at {t}: {error}; check that fild runs and that filc points at it (-s, or the config's [unix_http_server] / [supervisorctl] serverurl)"
        ),
    }
}

/// What a person gave on the command line; each wins over the configuration.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `-s URL`
    pub server: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `--ca-file` (or `FILC_CA_FILE`): the CA of an `https://` server.
    pub ca_file: Option<std::path::PathBuf>,
}

/// What to verify an `https://` fild with: `--ca-file`, else `[supervisorctl] ca_file`.
fn trust_for(
    target: &Target,
    flag: Option<&std::path::Path>,
    ctl: Option<&std::path::Path>,
) -> Result<Option<Trust>, String> {
    let Target::Https(_) = target else {
        return Ok(None);
    };
    let Some(file) = flag.or(ctl) else {
        return Err(format!(
            "{target} is TLS and filc has no CA to verify fild's certificate with; give --ca-file FILE (or FILC_CA_FILE, or [supervisorctl] ca_file=) naming the PEM CA that signed it"
        ));
    };
    let ca = crate::config::read_ca(file).map_err(|e| format!("the CA file for {target}: {e}"))?;
    Trust::of(&ca)
        .map(Some)
        .map_err(|e| format!("the CA file {}: {e}", file.display()))
}

/// The server and credentials for `flags` and the configuration's client sections, as
/// supervisorctl picks them: the server from `-s`, else `[supervisorctl] serverurl`, else the
/// unix socket (`[unix_http_server] file`, else `fild.sock` beside the config); credentials
/// from the flags, else `[supervisorctl]`, else the socket's own plain-text ones; for an
/// `https://` server the CA from `--ca-file`, else `[supervisorctl] ca_file`.
pub fn from_settings(
    flags: &Flags,
    settings: Option<&crate::config::ClientSettings>,
) -> Result<Client, String> {
    let target = match (&flags.server, settings) {
        (Some(s), _) => Target::parse(s)?,
        (None, Some(s)) => match (&s.ctl.serverurl, &s.unix_http_server) {
            (Some(url), _) => Target::parse(url)?,
            (None, Some(u)) => Target::Unix(u.file.clone()),
            (None, None) => Target::Unix(crate::config::default_socket(&s.path)),
        },
        (None, None) => {
            return Err(
                "no configuration file found and no -s given; pass -c FILE, set FILD_CONFIG, or -s unix:///path/to/fild.sock"
                    .into(),
            );
        }
    };
    let from_server = settings
        .and_then(|s| s.unix_http_server.as_ref())
        .and_then(|u| u.auth.as_ref())
        .and_then(|a| match &a.password {
            crate::config::Password::Plain(p) => Some((a.username.clone(), p.clone())),
            crate::config::Password::Sha1Hex(_) => None,
        });
    let ctl = settings.map(|s| s.ctl.clone()).unwrap_or_default();
    let trust = trust_for(&target, flags.ca_file.as_deref(), ctl.ca_file.as_deref())?;
    let username = flags
        .username
        .clone()
        .or(ctl.username)
        .or(from_server.as_ref().map(|a| a.0.clone()));
    let password = flags
        .password
        .clone()
        .or(ctl.password)
        .or(from_server.map(|a| a.1));
    let client = Client::new(target, username.as_deref(), password.as_deref());
    Ok(match trust {
        Some(t) => client.with_trust(t),
        None => client,
    })
}

/// A connection-per-request client.
#[derive(Debug, Clone)]
pub struct Client {
    pub target: Target,
    auth: Option<String>,
    /// The CA an `https://` target's certificate is verified with.
    trust: Option<Trust>,
}

impl Client {
    pub fn new(target: Target, username: Option<&str>, password: Option<&str>) -> Client {
        let auth = match (username, password) {
            (Some(u), Some(p)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            _ => None,
        };
        Client {
            target,
            auth,
            trust: None,
        }
    }

    /// Verify an `https://` target's certificate with `trust`.
    pub fn with_trust(mut self, trust: Trust) -> Client {
        self.trust = Some(trust);
        self
    }

    /// fild's version, API and pid.
    pub async fn version(&self) -> Result<VersionInfo, ClientError> {
        self.get(routes::VERSION).await
    }

    /// The named processes (all when `names` is empty); `stats` asks for CPU and RSS.
    pub async fn processes(
        &self,
        names: &[String],
        stats: bool,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        let stats = if stats { "1" } else { "0" };
        let path = if names.is_empty() {
            format!("{}?stats={stats}", routes::PROCESSES)
        } else {
            let q: Vec<String> = names.iter().map(|n| encode(n)).collect();
            format!("{}?names={}&stats={stats}", routes::PROCESSES, q.join(","))
        };
        self.get(&path).await
    }

    /// `start`, `stop` or `restart` of `names` (`force`: past the quorum guard).
    pub async fn action(
        &self,
        op: &str,
        names: Vec<String>,
        force: bool,
    ) -> Result<ActionReply, ClientError> {
        self.post(&routes::action(op), &NamesRequest { names, force })
            .await
    }

    pub async fn signal(
        &self,
        signal: String,
        names: Vec<String>,
        force: bool,
    ) -> Result<ActionReply, ClientError> {
        self.post(
            routes::SIGNAL,
            &SignalRequest {
                signal,
                names,
                force,
            },
        )
        .await
    }

    /// Reload; `force` goes past the quorum guard.
    pub async fn reload(&self, force: bool) -> Result<ReloadReply, ClientError> {
        let path = if force {
            format!("{}?force=1", routes::RELOAD)
        } else {
            routes::RELOAD.to_string()
        };
        self.post(&path, &serde_json::json!({})).await
    }

    pub async fn shutdown(&self) -> Result<Ack, ClientError> {
        self.post(routes::SHUTDOWN, &serde_json::json!({})).await
    }

    /// The etcd members and gateway as fild evaluates them.
    pub async fn members(&self) -> Result<EtcdMembers, ClientError> {
        self.get(routes::ETCD_MEMBERS).await
    }

    /// Start an etcd operation inside fild.
    pub async fn start_op(&self, req: &EtcdOpRequest) -> Result<EtcdOp, ClientError> {
        self.post(routes::ETCD_OPS, req).await
    }

    /// The operations fild keeps, without their lines.
    pub async fn ops(&self) -> Result<Vec<EtcdOp>, ClientError> {
        self.get(routes::ETCD_OPS).await
    }

    /// Operation `id` with its lines from `from` on, waiting up to `wait_secs` for one.
    pub async fn op(&self, id: u64, from: usize, wait_secs: u64) -> Result<EtcdOp, ClientError> {
        self.get(&format!(
            "{}/{id}?from={from}&wait={wait_secs}",
            routes::ETCD_OPS
        ))
        .await
    }

    /// This host's members' data positions (revision, from status or the stopped database).
    pub async fn positions(&self) -> Result<EtcdPositions, ClientError> {
        self.get(routes::ETCD_POSITIONS).await
    }

    /// At most `max` bytes of a program's log, from `offset` (default: the end less `max`).
    pub async fn logs(
        &self,
        name: &str,
        stream: &str,
        offset: Option<u64>,
        max: u64,
    ) -> Result<LogChunk, ClientError> {
        let mut path = format!(
            "{}/{}/{}?max={max}",
            routes::LOGS,
            encode(name),
            encode(stream)
        );
        if let Some(o) = offset {
            path.push_str(&format!("&offset={o}"));
        }
        self.get(&path).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send(Method::POST, path, Bytes::from(body)).await
    }

    /// Every host's snapshots (`here`: only the answering host's).
    pub async fn backups(&self, here: bool) -> Result<Vec<HostBackups>, ClientError> {
        let q = if here { "?here=1" } else { "" };
        self.get(&format!("{}{q}", routes::ETCD_BACKUPS)).await
    }

    /// Up to `max` bytes of snapshot `file` from `offset`, and the file's size.
    pub async fn backup_chunk(
        &self,
        file: &str,
        offset: u64,
        max: u64,
    ) -> Result<(Bytes, u64), ClientError> {
        let path = format!(
            "{}/{}?offset={offset}&max={max}",
            routes::ETCD_BACKUPS,
            encode(file)
        );
        let (headers, bytes) = self.exchange(Method::GET, &path, Bytes::new()).await?;
        let size = headers
            .get("x-fild-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Protocol("no x-fild-size in the reply".into()))?;
        Ok((bytes, size))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self.exchange(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Protocol(format!(
                "unexpected reply ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ))
        })
    }

    /// One request; a success's headers and body, or the error reply.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(hyper::HeaderMap, Bytes), ClientError> {
        let unreachable = |error| ClientError::Unreachable {
            target: self.target.clone(),
            error,
        };
        let plain = matches!(self.target, Target::Tcp(_));
        let proto = |e: hyper::Error| {
            // What a TLS listener's answer to plain http looks like to an HTTP parser.
            let hint = if plain && e.is_parse() {
                " (does fild serve TLS there? then use https:// with --ca-file)"
            } else {
                ""
            };
            ClientError::Protocol(format!("{e}{hint}"))
        };
        let (mut sender, host) = match &self.target {
            Target::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(unreachable)?;
                (handshake(s).await.map_err(proto)?, "localhost".to_string())
            }
            Target::Tcp(h) => {
                let s = tokio::net::TcpStream::connect(h)
                    .await
                    .map_err(unreachable)?;
                (handshake(s).await.map_err(proto)?, h.clone())
            }
            Target::Https(h) => {
                let tls = |error: String| ClientError::Tls {
                    target: self.target.clone(),
                    error,
                };
                let Some(trust) = &self.trust else {
                    return Err(tls(
                        "no CA to verify its certificate with (--ca-file, FILC_CA_FILE or [supervisorctl] ca_file; [cluster] ca_file between filds)".into(),
                    ));
                };
                let s = tokio::net::TcpStream::connect(h)
                    .await
                    .map_err(unreachable)?;
                let s = trust.connect(h, s).await.map_err(|e| {
                    tls(format!(
                        "{e} (is fild's certificate signed by the CA in {}, does it name the host, and does fild serve TLS there?)",
                        trust.ca_file.display()
                    ))
                })?;
                (handshake(s).await.map_err(proto)?, h.clone())
            }
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = &self.auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(proto)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.map_err(proto)?.to_bytes();
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorReply>(&bytes).unwrap_or(ErrorReply {
                error: format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
                details: Vec::new(),
            });
            return Err(ClientError::Api {
                status: status.as_u16(),
                body,
            });
        }
        Ok((headers, bytes))
    }
}

/// HTTP/1.1 over a connected stream; the connection runs as its own task.
async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientSettings, Credentials, CtlSettings, Password, UnixHttpServer};

    fn settings(serverurl: Option<&str>, socket: Option<&str>) -> ClientSettings {
        ClientSettings {
            path: "/etc/fild/fild.ini".into(),
            unix_http_server: socket.map(|f| UnixHttpServer {
                file: f.into(),
                chmod: 0o600,
                chown: None,
                auth: Some(Credentials {
                    username: "sock".into(),
                    password: Password::Plain("sockpw".into()),
                }),
            }),
            inet_http_server: None,
            ctl: CtlSettings {
                serverurl: serverurl.map(String::from),
                ..Default::default()
            },
        }
    }

    fn basic(u: &str, p: &str) -> Option<String> {
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ))
    }

    #[test]
    fn the_flag_wins_then_serverurl_then_the_socket_then_the_default() {
        let s = settings(Some("http://127.0.0.1:9001"), Some("/run/fild.sock"));
        let flags = Flags {
            server: Some("unix:///tmp/x.sock".into()),
            ..Default::default()
        };
        let c = from_settings(&flags, Some(&s)).unwrap();
        assert_eq!(c.target, Target::Unix("/tmp/x.sock".into()));
        let c = from_settings(&Flags::default(), Some(&s)).unwrap();
        assert_eq!(c.target, Target::Tcp("127.0.0.1:9001".into()));
        let c = from_settings(
            &Flags::default(),
            Some(&settings(None, Some("/run/f.sock"))),
        )
        .unwrap();
        assert_eq!(c.target, Target::Unix("/run/f.sock".into()));
        let c = from_settings(&Flags::default(), Some(&settings(None, None))).unwrap();
        assert_eq!(c.target, Target::Unix("/etc/fild/fild.sock".into()));
        let e = from_settings(&Flags::default(), None).unwrap_err();
        assert!(e.contains("no configuration file found"), "{e}");
    }

    #[test]
    fn an_unreachable_fild_is_told_once_with_what_to_do() {
        use std::io::{Error, ErrorKind};
        let sock = Target::Unix("/run/fild.sock".into());
        let tcp = Target::Tcp("127.0.0.1:9001".into());
        let said = |t: &Target, e: Error| {
            let err = ClientError::Unreachable {
                target: t.clone(),
                error: e,
            };
            // As filc prints it: the whole chain.
            format!("{:#}", anyhow::Error::new(err))
        };
        let missing = said(&sock, Error::from(ErrorKind::NotFound));
        assert!(
            missing.starts_with(
                "fild is not running: there is no socket at /run/fild.sock; start fild"
            ),
            "{missing}"
        );
        assert!(missing.contains("-s PATH"), "{missing}");
        let stale = said(&sock, Error::from_raw_os_error(libc::ECONNREFUSED));
        assert!(
            stale.starts_with("fild is not running: nothing listens on the socket /run/fild.sock"),
            "{stale}"
        );
        assert!(!stale.to_lowercase().contains("refused"), "{stale}");
        let denied = said(&sock, Error::from(ErrorKind::PermissionDenied));
        assert!(
            denied.contains("run filc as fild's user or root"),
            "{denied}"
        );
        let tcp_refused = said(&tcp, Error::from_raw_os_error(libc::ECONNREFUSED));
        assert!(
            tcp_refused.starts_with("fild does not listen at http://127.0.0.1:9001"),
            "{tcp_refused}"
        );
        let other = said(&tcp, Error::from_raw_os_error(libc::EHOSTUNREACH));
        for text in [&missing, &stale, &denied, &tcp_refused, &other] {
            // The cause once: no OS error text twice, no "(os error" at all where it is
            // said in words.
            assert!(text.matches("os error").count() <= 1, "{text}");
        }
        assert_eq!(other.matches("os error").count(), 1, "{other}");
        assert!(!missing.contains("os error"), "{missing}");
    }

    #[test]
    fn credentials_from_the_flags_then_supervisorctl_then_the_socket() {
        let mut s = settings(None, Some("/run/f.sock"));
        let c = from_settings(&Flags::default(), Some(&s)).unwrap();
        assert_eq!(c.auth, basic("sock", "sockpw"));
        s.ctl.username = Some("ctl".into());
        s.ctl.password = Some("ctlpw".into());
        let c = from_settings(&Flags::default(), Some(&s)).unwrap();
        assert_eq!(c.auth, basic("ctl", "ctlpw"));
        let flags = Flags {
            username: Some("me".into()),
            password: Some("mine".into()),
            ..Default::default()
        };
        let c = from_settings(&flags, Some(&s)).unwrap();
        assert_eq!(c.auth, basic("me", "mine"));
    }
}
