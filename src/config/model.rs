//! The checked configuration model: what the parser produces and the rest of fild consumes.
//!
//! Every value here is already expanded, typed and validated. Two `ProgramSpec`s compare equal
//! exactly when running one in place of the other would make no difference: reload diffs on this.

use std::path::PathBuf;

use super::error::Warning;

/// Signals are kept as their numbers so the model stays free of any process API.
pub type SignalNumber = i32;

/// The whole configuration: the main file plus its includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The main file, as given (made absolute).
    pub path: PathBuf,
    /// `[unix_http_server]`; `None` when the section is absent.
    pub unix_http_server: Option<UnixHttpServer>,
    /// `[inet_http_server]`; only served when both username and password are set.
    pub inet_http_server: Option<InetHttpServer>,
    /// `[supervisord]`.
    pub daemon: DaemonSettings,
    /// `[supervisorctl]`.
    pub ctl: CtlSettings,
    /// One entry per process (a `numprocs=3` program gives three), in file order.
    pub programs: Vec<ProgramSpec>,
    /// `[etcd]`: fild's own etcd duties (backups, liveness).
    pub etcd: EtcdSettings,
    /// `[cluster]`: the other hosts' filds (mode two); `None` on a single host.
    pub cluster: Option<ClusterSettings>,
    /// Non-fatal findings (unknown keys or sections), shown by `filc reload`.
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Plain(String),
    /// `{SHA}` followed by the hex SHA-1 of the password (stored lower-case).
    Sha1Hex(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixHttpServer {
    pub file: PathBuf,
    /// Socket file mode; default 0o600.
    pub chmod: u32,
    /// `chown=user[:group]`.
    pub chown: Option<(String, Option<String>)>,
    /// Set only when both username and password are given.
    pub auth: Option<Credentials>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetHttpServer {
    /// `host:port` (`*:port` or `:port` mean all interfaces).
    pub port: String,
    pub auth: Option<Credentials>,
    /// `tls_cert_file`/`tls_key_file` (fild keys): the listener then speaks only TLS.
    pub tls: Option<ServerTls>,
}

/// The TCP listener's certificate chain and key, as read and checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The chain, the listener's own certificate first.
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Its private key (shown as elided in `Debug`).
    pub key: std::sync::Arc<rustls::pki_types::PrivateKeyDer<'static>>,
}

/// The certificates of a CA file, as read and checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    pub file: PathBuf,
    pub certs: Vec<rustls::pki_types::CertificateDer<'static>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    Stdout,
    Stderr,
    Null,
    Syslog,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `logfile`: a comma list of sinks. Default: `fild.log` next to the main file.
    pub logfile: Vec<LogSink>,
    pub logfile_maxbytes: u64,
    pub logfile_backups: u32,
    /// `critical|error|warn|info|debug|trace|blather` (lower-cased).
    pub loglevel: String,
    /// Default: `fild.pid` next to the main file.
    pub pidfile: PathBuf,
    pub directory: Option<PathBuf>,
    /// `[supervisord] environment`, given to every program (and used for expansion).
    pub environment: Vec<(String, String)>,
    /// Where `AUTO` child logs go; default `/tmp`.
    pub childlogdir: PathBuf,
    /// The key that makes `AUTO` log names unpredictable (from `FILD_AUTO_LOG_KEY` in the
    /// environment the config is loaded with, which fild sets to a random value at start).
    pub auto_log_key: String,
    pub minfds: u64,
    pub umask: Option<u32>,
    /// `strict=true` (a fild key): every warning is an error, so start-up, `filc reload` and
    /// SIGHUP refuse a file with an unknown key or section.
    pub strict: bool,
    /// `on_change` and its bounds (fild keys): the alert hook.
    pub on_change: OnChange,
}

/// `[supervisord] on_change`, `on_change_timeout`, `on_change_queue` (fild keys): a command
/// fild runs, with the event as JSON on its standard input, when a program enters FATAL or
/// BACKOFF or the etcd cluster's verdict changes (see `crate::alert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChange {
    /// Run as `sh -c COMMAND`; None: no hook.
    pub command: Option<String>,
    /// How long one run may take; then its process group is stopped. Default 30 s.
    pub timeout: std::time::Duration,
    /// Events waiting for the command beyond this many are dropped, and counted in an
    /// `overflow` event. Default 64.
    pub queue: usize,
}

impl Default for OnChange {
    fn default() -> OnChange {
        OnChange {
            command: None,
            timeout: std::time::Duration::from_secs(30),
            queue: 64,
        }
    }
}

/// `[etcd]` (a fild section): what fild does by itself for the etcd members it supervises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Where snapshots go; default `backups/etcd` beside the pidfile.
    pub backup_dir: PathBuf,
    /// Time between scheduled snapshots; 0 disables them. Default 24 h.
    pub backup_interval: std::time::Duration,
    /// Snapshots always kept, newest first. Default 7.
    pub backup_keep: u32,
    /// Beyond `backup_keep`, snapshots older than this are deleted. Default 7 days.
    pub backup_max_age: std::time::Duration,
    /// Run on each new snapshot (`sh -c COMMAND sh FILE`), e.g. to copy it off the host.
    pub backup_command: Option<String>,
    /// A running member unhealthy this long is restarted; 0 disables. Default 30 s.
    pub liveness_window: std::time::Duration,
}

/// `[cluster]` (a fild section): every host's fild control address, so that one host's
/// operations can ask the others (their operations, their members' data positions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Every host listed, this one's own entry included (recognised at run time).
    pub hosts: Vec<ClusterHost>,
    /// The credentials to present to the other filds: `[cluster] username`/`password`, else
    /// this fild's own `[inet_http_server]` ones.
    pub username: String,
    pub password: String,
    /// `ca_file`: the CA that signed the other hosts' control certificates; required when a
    /// host is `https://`.
    pub ca: Option<CaBundle>,
}

/// One host of `[cluster] hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHost {
    /// As given (`name=URL`), else the URL's `host:port`.
    pub name: String,
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// Its `host:port` is this fild's own `[inet_http_server] port`: this host.
    pub own: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CtlSettings {
    /// `unix:///path`, `http://host:port` or `https://host:port`.
    pub serverurl: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `ca_file` (a fild key): the CA that signed an `https://` fild's certificate. Read by
    /// filc when it connects, not at load.
    pub ca_file: Option<PathBuf>,
}

/// What the client needs: where the daemon listens and how to authenticate. Loaded without
/// expanding (or failing on) program sections, so `filc` works with any program config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub path: PathBuf,
    pub unix_http_server: Option<UnixHttpServer>,
    pub inet_http_server: Option<InetHttpServer>,
    pub ctl: CtlSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoRestart {
    Never,
    Unexpected,
    Always,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRetries {
    Count(u32),
    /// Never FATAL: keep retrying with capped backoff.
    Forever,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `NONE`: discard (/dev/null).
    Discard,
    /// A file (`AUTO` is resolved to `<childlogdir>/<name>-<stream>.log`).
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    pub target: LogTarget,
    /// 0 means never rotate.
    pub maxbytes: u64,
    pub backups: u32,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// The process name (from `process_name`, default the program name); unique in a config.
    pub name: String,
    /// The `[program:x]` section name.
    pub program: String,
    /// The `[group:g]` listing it, else the program name.
    pub group: String,
    /// argv; `argv[0]` relative paths (`./x.sh`) are already resolved against `directory`.
    pub command: Vec<String>,
    pub directory: Option<PathBuf>,
    /// `[supervisord] environment` then the program's own `environment=` (later wins).
    pub environment: Vec<(String, String)>,
    /// `user=name`; resolved to uid/gid at spawn time.
    pub user: Option<String>,
    pub umask: Option<u32>,
    pub priority: i32,
    pub autostart: bool,
    pub autorestart: AutoRestart,
    pub startsecs: u64,
    pub startretries: StartRetries,
    pub exitcodes: Vec<i32>,
    /// Sent in turn, each followed by up to `stopwaitsecs`; default `[SIGTERM]`.
    pub stopsignals: Vec<SignalNumber>,
    pub stopwaitsecs: u64,
    pub stopasgroup: bool,
    pub killasgroup: bool,
    pub redirect_stderr: bool,
    pub stdout: LogSpec,
    pub stderr: LogSpec,
    pub restart_when_binary_changed: bool,
    pub restart_directory_monitor: Option<PathBuf>,
    pub restart_file_pattern: Option<String>,
}
