//! The one evaluator of a member's (or the gateway's) settings.
//!
//! A program is an etcd member when its own configuration says so: its `environment=` names
//! its settings file in `FILD_ETCD_MEMBER` (the gateway: `FILD_ETCD_GATEWAY`). The settings
//! file is the kit's `apps/etcd/etcd-N.env`; [`evaluate`] reads it with the program's
//! environment, layers the runtime state over it ([`super::runtime`]) and produces every
//! setting etcd gets: name, data dir, peer and client URLs, token, state, TLS files, extra
//! flags, the etcd binary, and the full argv; and a member's tools (`etcdctl_bin`,
//! `etcdutl_bin`, see [`TOOLS`]), which operations run for it.
//!
//! fild calls it to know its members (`GET /v1/etcd/members`, which every `filc etcd`
//! operation reads), and `fild --exec-etcd FILE` (what the kit's launch script runs) calls it
//! to start etcd. Nothing else computes a setting, so the two cannot disagree.
//!
//! Defaults that do not come from the file: `PRJ_ROOT` is the folder two levels above the
//! settings file's folder (`$PRJ_ROOT/apps/etcd/x.env`) when the environment has none, and
//! `ETCD_DATA_ROOT` is `$PRJ_ROOT/var/etcd`. Keys an older settings file may lack take the
//! values in [`DEFAULTS`].

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use super::runtime::{self, Runtime};
use super::{binary_probe, envfile, releases};

/// The program environment variable that names a member's settings file.
pub const MEMBER_ENV: &str = "FILD_ETCD_MEMBER";
/// The program environment variable that names the gateway's settings file.
pub const GATEWAY_ENV: &str = "FILD_ETCD_GATEWAY";

/// Values for keys a settings file does not set (older kits set fewer keys).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("etcd_bin", "etcd"),
    ("tls", "off"),
    ("cluster_state", "new"),
    ("auto_compaction_retention", "1h"),
    ("quota_backend_bytes", "8589934592"),
    ("heartbeat_interval", "100"),
    ("election_timeout", "1000"),
    ("extra_flags", ""),
    ("nofile", "65536"),
    ("retry_delay", "1s"),
];

/// What a settings file describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Member,
    Gateway,
}

/// A bad setting, named by file, line and key where it has one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
    #[error("{file}:{line}: {key}: {msg}")]
    Key {
        file: String,
        line: usize,
        key: String,
        msg: String,
    },
}

/// A member's or the gateway's evaluated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub kind: Kind,
    pub file: PathBuf,
    pub runtime_file: PathBuf,
    /// Every key's effective value (file, then runtime layer, then [`DEFAULTS`]).
    pub values: BTreeMap<String, String>,
    /// Every key's value as the file alone gives it (no runtime layer, no defaults).
    pub configured: BTreeMap<String, String>,
    /// Each key's line in the settings file, as written.
    pub lines: BTreeMap<String, envfile::Line>,
    pub runtime: Runtime,
    /// Learned keys whose line was edited by hand since: the file's value is used.
    pub overridden: Vec<String>,
    /// The full argv etcd starts with (argv[0] is the binary's path), without `once` flags.
    pub argv: Vec<String>,
    /// Flags for the next start only (used up by the launcher).
    pub once: Vec<String>,
    /// The version of the etcd binary (`argv[0]`), as `--version` says ([`evaluate`] asks
    /// it; the pure [`from_text`] leaves it unknown).
    pub version: Option<releases::Version>,
    /// Why the version is unknown, when the binary was asked and did not say.
    pub version_problem: Option<String>,
    /// What translating the kit's flags for this version left as written, and why
    /// ([`releases::translate_flags`]); the launcher prints them.
    pub flag_notes: Vec<String>,
    /// A member's `etcdctl` and `etcdutl` ([`TOOLS`]: the settings' `etcdctl_bin` and
    /// `etcdutl_bin`, else beside the etcd binary, else on PATH; none found: `None`).
    /// [`evaluate`] finds them; the pure [`from_text`] leaves them `None`.
    pub etcdctl: Option<PathBuf>,
    pub etcdutl: Option<PathBuf>,
}

impl Settings {
    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// The argv the next start runs: `argv` plus the `once` flags.
    pub fn launch_argv(&self) -> Vec<String> {
        let mut a = self.argv.clone();
        a.extend(self.once.iter().cloned());
        a
    }
}

/// Evaluate `file` in `env` (the environment the program runs with), resolving host names and
/// the etcd binary on this machine.
pub fn evaluate(file: &Path, env: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
    let ferr = |msg: String| SettingsError::File {
        file: file.display().to_string(),
        msg,
    };
    let text = std::fs::read_to_string(file).map_err(|e| ferr(e.to_string()))?;
    let prj_root = prj_root(file, env);
    let runtime_file = runtime::path_for(&prj_root, file);
    let rt = runtime::load(&runtime_file).map_err(ferr)?;
    let mut s = from_text(
        &text,
        file,
        &prj_root,
        runtime_file,
        rt,
        env,
        &Machine { env },
    )?;
    let key_err = |s: &Settings, key: &str, msg: String| match s.lines.get(key) {
        Some(l) => SettingsError::Key {
            file: file.display().to_string(),
            line: l.number,
            key: key.to_string(),
            msg,
        },
        None => ferr(format!("{key}: {msg}")),
    };
    // Where a key's bad value came from, when it was the runtime layer.
    let from_runtime = |s: &Settings, key: &str| {
        if s.runtime.learned.contains_key(key) && !s.overridden.iter().any(|k| k == key) {
            format!(" (set in the runtime layer, {})", s.runtime_file.display())
        } else {
            String::new()
        }
    };
    // The etcd binary must be an executable file; its version decides flags and notices.
    let bin = PathBuf::from(s.argv.first().cloned().unwrap_or_default());
    if let Err(msg) = executable(&bin) {
        let from = from_runtime(&s, "etcd_bin");
        return Err(key_err(&s, "etcd_bin", format!("{msg}{from}")));
    }
    if s.kind == Kind::Member {
        let machine = Machine { env };
        for (key, name, var) in TOOLS {
            let found = tool(&s, key, name, var, &bin, env, &machine).map_err(|msg| {
                let from = from_runtime(&s, key);
                key_err(&s, key, format!("{msg}{from}"))
            })?;
            match name {
                "etcdctl" => s.etcdctl = found,
                _ => s.etcdutl = found,
            }
        }
    }
    if s.kind == Kind::Member {
        match binary_probe::version(&bin) {
            Ok(v) => {
                s.version = Some(v);
                let checks = releases::needs_corrupt_checks(v);
                let renames = v >= releases::RENAMED_IN;
                match (checks || renames).then(|| binary_probe::help(&bin)) {
                    None => {}
                    Some(Ok(help)) => {
                        let flags = releases::corrupt_check_flags(v, &help, &s.argv);
                        s.argv.extend(flags);
                        // The kit's flags (extra flags and the checks above) in the names
                        // this binary takes.
                        let (argv, notes) =
                            releases::translate_flags(v, &help, std::mem::take(&mut s.argv));
                        s.argv = argv;
                        s.flag_notes = notes;
                    }
                    Some(Err(e)) if checks => {
                        s.version_problem = Some(format!(
                            "etcd {v} needs the corruption checks, but its --help could not be read: {e}"
                        ))
                    }
                    Some(Err(e)) => s.flag_notes.push(format!(
                        "etcd {v} renamed the --experimental-* flags, but its --help could not be read ({e}): flags passed as the kit wrote them"
                    )),
                }
            }
            Err(e) => s.version_problem = Some(e),
        }
    }
    // The TLS files etcd is given must be readable (as the user fild and etcd run as).
    for key in TLS_FILES {
        let v = s.get(key);
        if v.is_empty() || !s.argv.iter().any(|a| a == v) {
            continue;
        }
        if let Err(e) = std::fs::File::open(v) {
            return Err(key_err(&s, key, format!("cannot read {v}: {e}")));
        }
    }
    Ok(s)
}

/// A member's etcd tools: (settings key, the tool's name, the environment variable an
/// empty value falls back to).
pub const TOOLS: [(&str, &str, &str); 2] = [
    ("etcdctl_bin", "etcdctl", "ETCDCTL_BIN"),
    ("etcdutl_bin", "etcdutl", "ETCDUTL_BIN"),
];

/// One of a member's tools (`etcdctl`, `etcdutl`): the settings' `key` (a name on PATH, or a
/// path: relative to the settings file's folder), which must then be an executable file; when
/// empty, `var` from the environment the same way; when that is empty too, the file `name`
/// next to the member's etcd binary `etcd` when it is an executable one, else `name` on
/// PATH, else none (etcd 3.4 ships no etcdutl).
fn tool(
    s: &Settings,
    key: &str,
    name: &str,
    var: &str,
    etcd: &Path,
    env: &BTreeMap<String, String>,
    machine: &dyn Resolve,
) -> Result<Option<PathBuf>, String> {
    let (value, via) = match s.get(key) {
        "" => match env.get(var).map(String::as_str).unwrap_or("") {
            "" => ("", String::new()),
            v => (v, format!(" (from {var} in the environment)")),
        },
        v => (v, String::new()),
    };
    if value.is_empty() {
        let beside = etcd.parent().map(|d| d.join(name));
        if let Some(p) = beside.filter(|p| executable(p).is_ok()) {
            return Ok(Some(p));
        }
        return Ok(machine.binary(name).map(PathBuf::from));
    }
    let path = if value.contains('/') {
        let p = Path::new(value);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            s.file.parent().unwrap_or(Path::new("/")).join(p)
        }
    } else {
        PathBuf::from(machine.binary(value).ok_or_else(|| {
            format!("no {value} on PATH{via}: name the {name} binary's path, or leave {key} empty (the {name} beside etcd_bin, else on PATH)")
        })?)
    };
    executable(&path).map_err(|m| format!("{m}{via}"))?;
    Ok(Some(path))
}

/// Why `bin` is not an executable regular file, if it is not.
fn executable(bin: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    if !md.is_file() {
        return Err(format!("{}: not a regular file", bin.display()));
    }
    let mode = md.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(format!(
            "{}: not executable (mode {:o}): chmod +x it, or name another etcd binary",
            bin.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The keys that name TLS files etcd reads.
const TLS_FILES: &[&str] = &[
    "cert_file",
    "key_file",
    "trusted_ca_file",
    "peer_cert_file",
    "peer_key_file",
    "peer_trusted_ca_file",
];

/// `$PRJ_ROOT`, or the folder two levels above the settings file's.
pub fn prj_root(file: &Path, env: &BTreeMap<String, String>) -> PathBuf {
    if let Some(r) = env.get("PRJ_ROOT").filter(|r| !r.is_empty()) {
        return PathBuf::from(r);
    }
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    abs.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// What the evaluator asks of the machine: host names and binaries (a trait so the pure part
/// is tested and fuzzed without either).
pub trait Resolve {
    /// The IPv4 address of a host name, if it resolves.
    fn host(&self, name: &str) -> Option<String>;
    /// The path of a binary named without a `/`, searched in `PATH`.
    fn binary(&self, name: &str) -> Option<String>;
}

/// A [`Resolve`] that asks nothing of the machine: no host name resolves, and a binary
/// `NAME` is `/usr/bin/NAME`. For tests and fuzzing.
pub struct Offline;

impl Resolve for Offline {
    fn host(&self, _: &str) -> Option<String> {
        None
    }
    fn binary(&self, name: &str) -> Option<String> {
        Some(format!("/usr/bin/{name}"))
    }
}

struct Machine<'a> {
    env: &'a BTreeMap<String, String>,
}

impl Resolve for Machine<'_> {
    fn host(&self, name: &str) -> Option<String> {
        (name, 0)
            .to_socket_addrs()
            .ok()?
            .find(|a| a.is_ipv4())
            .map(|a| a.ip().to_string())
    }

    fn binary(&self, name: &str) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self
            .env
            .get("PATH")
            .map(String::as_str)
            .unwrap_or("/usr/bin:/bin");
        path.split(':').filter(|d| !d.is_empty()).find_map(|d| {
            let p = Path::new(d).join(name);
            let md = std::fs::metadata(&p).ok()?;
            (md.is_file() && md.permissions().mode() & 0o111 != 0).then(|| p.display().to_string())
        })
    }
}

/// The pure evaluator: settings text, runtime state and environment to [`Settings`].
pub fn from_text(
    text: &str,
    file: &Path,
    prj_root: &Path,
    runtime_file: PathBuf,
    rt: Runtime,
    env: &BTreeMap<String, String>,
    machine: &dyn Resolve,
) -> Result<Settings, SettingsError> {
    let fname = file.display().to_string();
    let ferr = |msg: String| SettingsError::File {
        file: fname.clone(),
        msg,
    };
    let mut env = env.clone();
    env.insert("PRJ_ROOT".into(), prj_root.display().to_string());
    if env.get("ETCD_DATA_ROOT").is_none_or(|v| v.is_empty()) {
        env.insert(
            "ETCD_DATA_ROOT".into(),
            prj_root.join("var/etcd").display().to_string(),
        );
    }
    let configured = envfile::evaluate(text, &env).map_err(ferr)?;
    let overridden = std::cell::RefCell::new(Vec::new());
    let layer = |key: &str, raw: &str| -> Option<String> {
        let l = rt.learned.get(key)?;
        if runtime::applies(l, Some(raw)) {
            Some(l.value.clone())
        } else {
            overridden.borrow_mut().push(key.to_string());
            None
        }
    };
    let ev = envfile::evaluate_layered(text, &env, &layer).map_err(ferr)?;
    let mut values = ev.values;
    for (k, l) in &rt.learned {
        if !ev.lines.contains_key(k) && runtime::applies(l, None) {
            values.insert(k.clone(), l.value.clone());
        }
    }
    for (k, v) in DEFAULTS {
        values.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    let has = |k: &str| ev.lines.contains_key(k);
    let kind = if has("name") && has("client_url") && has("peer_url") {
        Kind::Member
    } else if has("listen_addr") && has("endpoints") {
        Kind::Gateway
    } else {
        return Err(ferr(
            "neither a member (name, client_url, peer_url) nor a gateway (listen_addr, endpoints)"
                .into(),
        ));
    };
    let key_err = |key: &str, msg: String| match ev.lines.get(key) {
        Some(l) => SettingsError::Key {
            file: fname.clone(),
            line: l.number,
            key: key.to_string(),
            msg,
        },
        None => SettingsError::File {
            file: fname.clone(),
            msg: format!("{key}: {msg}"),
        },
    };
    let bin = binary(&values, file, machine).map_err(|m| key_err("etcd_bin", m))?;
    let argv = match kind {
        Kind::Member => member_argv(bin, &values, machine),
        Kind::Gateway => gateway_argv(bin, &values),
    }
    .map_err(|(k, m)| key_err(k, m))?;
    let once = rt
        .once
        .as_ref()
        .map(|o| o.flags.clone())
        .unwrap_or_default();
    let mut overridden = overridden.into_inner();
    overridden.sort();
    overridden.dedup();
    Ok(Settings {
        kind,
        file: file.to_path_buf(),
        runtime_file,
        values,
        configured,
        lines: ev.lines,
        runtime: rt,
        overridden,
        argv,
        once,
        version: None,
        version_problem: None,
        flag_notes: Vec::new(),
        etcdctl: None,
        etcdutl: None,
    })
}

fn binary(
    values: &BTreeMap<String, String>,
    file: &Path,
    machine: &dyn Resolve,
) -> Result<String, String> {
    let name = values.get("etcd_bin").map(String::as_str).unwrap_or("etcd");
    if name.is_empty() {
        return Err("empty: name the etcd binary (or leave the default, etcd on PATH)".into());
    }
    if name.contains('/') {
        let p = Path::new(name);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            file.parent().unwrap_or(Path::new("/")).join(p)
        };
        return Ok(p.display().to_string());
    }
    machine.binary(name).ok_or_else(|| {
        format!("no {name} on PATH: install etcd-server, or set ETCD_BIN to the binary's path")
    })
}

type KeyError = (&'static str, String);

/// `scheme://host:port` split, with the scheme and port checked.
fn split_url(url: &str) -> Result<(&str, &str, u16), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL (expected http://HOST:PORT)"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("{url:?}: the scheme must be http or https"));
    }
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{url:?} has no port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("{url:?}: the port must be 1 to 65535"))?;
    if host.is_empty() || host.contains(['/', '@', ' ', ',']) {
        return Err(format!("{url:?}: bad host"));
    }
    Ok((scheme, host, port))
}

/// etcd binds IP addresses only: a host name in a listen URL is resolved here (it is still
/// what peers and clients are told).
fn bind_url(url: &str, machine: &dyn Resolve) -> Result<String, String> {
    let (scheme, host, port) = split_url(url)?;
    let literal = host.chars().all(|c| c.is_ascii_digit() || c == '.') || host.starts_with('[');
    let host = if literal {
        host.to_string()
    } else {
        machine
            .host(host)
            .ok_or_else(|| format!("cannot resolve {host}"))?
    };
    Ok(format!("{scheme}://{host}:{port}"))
}

fn bind_list(list: &str, machine: &dyn Resolve) -> Result<String, String> {
    let urls: Result<Vec<String>, String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| bind_url(u, machine))
        .collect();
    let urls = urls?;
    if urls.is_empty() {
        return Err("empty".into());
    }
    Ok(urls.join(","))
}

fn number(values: &BTreeMap<String, String>, key: &'static str) -> Result<String, KeyError> {
    let v = values.get(key).map(String::as_str).unwrap_or("");
    v.parse::<u64>()
        .map(|n| n.to_string())
        .map_err(|_| (key, format!("{v:?} is not a whole number")))
}

fn member_argv(
    bin: String,
    v: &BTreeMap<String, String>,
    machine: &dyn Resolve,
) -> Result<Vec<String>, KeyError> {
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("");
    let name = get("name");
    if name.is_empty() || name.contains([',', '=', ' ']) {
        return Err((
            "name",
            format!("{name:?}: a member needs a name without , = or spaces"),
        ));
    }
    let data_dir = get("data_dir");
    if !data_dir.starts_with('/') || data_dir.split('/').any(|c| c == "..") {
        return Err((
            "data_dir",
            format!("{data_dir:?}: must be an absolute path without .."),
        ));
    }
    let peer_url = get("peer_url");
    let client_url = get("client_url");
    let (peer_scheme, _, _) = split_url(peer_url).map_err(|e| ("peer_url", e))?;
    let (client_scheme, _, client_port) = split_url(client_url).map_err(|e| ("client_url", e))?;
    let listen_peer = match get("listen_peer_urls") {
        "" => peer_url,
        l => l,
    };
    let listen_client = match get("listen_client_urls") {
        "" => client_url,
        l => l,
    };
    let listen_peer = bind_list(listen_peer, machine).map_err(|e| ("listen_peer_urls", e))?;
    let mut listen_client =
        bind_list(listen_client, machine).map_err(|e| ("listen_client_urls", e))?;
    // Off loopback (mode two), also serve clients on 127.0.0.1 for the local gateway and tools.
    if !listen_client.contains("://127.0.0.1:") {
        listen_client.push_str(&format!(",{client_scheme}://127.0.0.1:{client_port}"));
    }
    let initial_cluster = get("initial_cluster");
    for entry in initial_cluster.split(',') {
        let (n, u) = entry.split_once('=').ok_or((
            "initial_cluster",
            format!("{entry:?}: expected name=URL entries separated by commas"),
        ))?;
        if n.is_empty() {
            return Err(("initial_cluster", format!("{entry:?}: empty name")));
        }
        split_url(u).map_err(|e| ("initial_cluster", e))?;
    }
    for u in get("cluster_client_urls").split(',').map(str::trim) {
        if !u.is_empty() {
            split_url(u).map_err(|e| ("cluster_client_urls", e))?;
        }
    }
    let state = get("cluster_state");
    if state != "new" && state != "existing" {
        return Err((
            "cluster_state",
            format!("{state:?}: expected new or existing"),
        ));
    }
    let token = get("cluster_token");
    if token.is_empty() {
        return Err(("cluster_token", "empty".into()));
    }
    let tls_flags = tls_flags(v, client_scheme == "https", peer_scheme == "https")?;
    let mut a = vec![
        bin,
        "--name".into(),
        name.into(),
        "--data-dir".into(),
        data_dir.into(),
        "--listen-peer-urls".into(),
        listen_peer,
        "--initial-advertise-peer-urls".into(),
        peer_url.into(),
        "--listen-client-urls".into(),
        listen_client,
        "--advertise-client-urls".into(),
        client_url.into(),
        "--initial-cluster".into(),
        initial_cluster.into(),
        "--initial-cluster-token".into(),
        token.into(),
        "--initial-cluster-state".into(),
        state.into(),
        "--auto-compaction-mode".into(),
        "periodic".into(),
        "--auto-compaction-retention".into(),
        get("auto_compaction_retention").into(),
        "--quota-backend-bytes".into(),
        number(v, "quota_backend_bytes")?,
        "--heartbeat-interval".into(),
        number(v, "heartbeat_interval")?,
        "--election-timeout".into(),
        number(v, "election_timeout")?,
        "--logger".into(),
        "zap".into(),
    ];
    a.extend(tls_flags);
    a.extend(extra_flags(get("extra_flags"))?);
    Ok(a)
}

fn extra_flags(s: &str) -> Result<Vec<String>, KeyError> {
    shlex::split(s).ok_or(("extra_flags", format!("{s:?}: unbalanced quotes")))
}

/// The certificate flags for client (`prefix` "") or peer (`prefix` "peer_") traffic: the
/// certificate and key are needed; a CA turns on client-certificate authentication.
fn cert_flags(
    v: &BTreeMap<String, String>,
    prefix: &'static str,
    tls: &str,
) -> Result<Vec<String>, KeyError> {
    // The keys, as 'static names for the error: (cert, key, ca).
    let (cert, key, ca) = match prefix {
        "" => ("cert_file", "key_file", "trusted_ca_file"),
        _ => ("peer_cert_file", "peer_key_file", "peer_trusted_ca_file"),
    };
    let flag = prefix.replace('_', "-");
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("");
    let need = |k: &'static str| match get(k) {
        "" => Err((k, format!("tls={tls} needs {k}"))),
        f => Ok(f.to_string()),
    };
    let mut out = vec![
        format!("--{flag}cert-file"),
        need(cert)?,
        format!("--{flag}key-file"),
        need(key)?,
    ];
    if !get(ca).is_empty() {
        out.extend([
            format!("--{flag}trusted-ca-file"),
            get(ca).to_string(),
            format!("--{flag}client-cert-auth"),
        ]);
    }
    Ok(out)
}

/// TLS (`tls=off|files|auto`): the flags, or the contradiction with the URLs' schemes.
fn tls_flags(
    v: &BTreeMap<String, String>,
    client_https: bool,
    peer_https: bool,
) -> Result<Vec<String>, KeyError> {
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("");
    let tls = get("tls");
    let mut out: Vec<String> = Vec::new();
    match tls {
        "off" => {
            if client_https || peer_https {
                return Err((
                    "tls",
                    "tls=off, but client_url or peer_url use https (set ETCD_TLS=files, or ETCD_SCHEME=http)".into(),
                ));
            }
        }
        "files" | "auto" => {
            if client_https {
                out.extend(cert_flags(v, "", tls)?);
            } else if tls == "files" {
                return Err((
                    "tls",
                    "tls=files serves clients over https, but client_url is http (set ETCD_SCHEME=https)".into(),
                ));
            }
            if !peer_https {
                return Err((
                    "tls",
                    format!(
                        "tls={tls} encrypts peer traffic, but peer_url is http (set ETCD_SCHEME=https or ETCD_PEER_SCHEME=https)"
                    ),
                ));
            }
            if tls == "files" {
                out.extend(cert_flags(v, "peer_", tls)?);
            } else {
                // Self-signed certificates under <data_dir>/fixtures/peer: encrypted, not
                // authenticated (peers do not verify each other).
                out.push("--peer-auto-tls".into());
            }
        }
        other => return Err(("tls", format!("{other:?}: expected off, files or auto"))),
    }
    Ok(out)
}

fn gateway_argv(bin: String, v: &BTreeMap<String, String>) -> Result<Vec<String>, KeyError> {
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("");
    let listen = get("listen_addr");
    if !listen.contains(':') {
        return Err(("listen_addr", format!("{listen:?}: expected HOST:PORT")));
    }
    let endpoints = get("endpoints");
    if endpoints.split(',').all(|e| e.trim().is_empty()) {
        return Err(("endpoints", "empty: list the members' HOST:PORT".into()));
    }
    Ok(vec![
        bin,
        "gateway".into(),
        "start".into(),
        "--listen-addr".into(),
        listen.into(),
        "--endpoints".into(),
        endpoints.into(),
        "--retry-delay".into(),
        get("retry_delay").into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Resolve for Fake {
        fn host(&self, name: &str) -> Option<String> {
            (name == "boot0.etcd.local").then(|| "10.0.0.1".to_string())
        }
        fn binary(&self, name: &str) -> Option<String> {
            Some(format!("/usr/bin/{name}"))
        }
    }

    fn kit(file: &str) -> String {
        std::fs::read_to_string(format!("{}/apps/etcd/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn eval(file: &str, e: &[(&str, &str)], rt: Runtime) -> Result<Settings, SettingsError> {
        from_text(
            &kit(file),
            Path::new(&format!("/prj/apps/etcd/{file}")),
            Path::new("/prj"),
            PathBuf::from("/prj/var/etcd/runtime/x.json"),
            rt,
            &env(e),
            &Fake,
        )
    }

    #[test]
    fn the_units_environment_gives_the_launchers_defaults() {
        // Exactly what systemd gives: PRJ_ROOT and nothing about etcd.
        let s = eval("etcd-0.env", &[], Runtime::default()).unwrap();
        assert_eq!(s.kind, Kind::Member);
        assert_eq!(s.get("data_dir"), "/prj/var/etcd/boot0.etcd");
        assert_eq!(
            s.argv,
            [
                "/usr/bin/etcd",
                "--name",
                "boot0",
                "--data-dir",
                "/prj/var/etcd/boot0.etcd",
                "--listen-peer-urls",
                "http://127.0.0.1:2080",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2080",
                "--listen-client-urls",
                "http://127.0.0.1:2079",
                "--advertise-client-urls",
                "http://127.0.0.1:2079",
                "--initial-cluster",
                "boot0=http://127.0.0.1:2080,boot1=http://127.0.0.1:2180,boot2=http://127.0.0.1:2280",
                "--initial-cluster-token",
                "etcd-cluster-1",
                "--initial-cluster-state",
                "new",
                "--auto-compaction-mode",
                "periodic",
                "--auto-compaction-retention",
                "1h",
                "--quota-backend-bytes",
                "8589934592",
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--logger",
                "zap",
            ]
        );
    }

    #[test]
    fn host_names_tls_and_extra_flags() {
        let s = eval(
            "etcd-0.env",
            &[
                ("ETCD0_HOST", "boot0.etcd.local"),
                ("ETCD_TLS", "files"),
                ("ETCD_SCHEME", "https"),
                ("ETCD_CERT_FILE", "/c/m.pem"),
                ("ETCD_KEY_FILE", "/c/m.key"),
                ("ETCD_TRUSTED_CA_FILE", "/c/ca.pem"),
                ("ETCD_EXTRA_FLAGS", "--max-txn-ops 256 --log-level 'warn'"),
            ],
            Runtime::default(),
        )
        .unwrap();
        let a = s.argv.join(" ");
        assert!(
            a.contains("--listen-peer-urls https://10.0.0.1:2080 --initial-advertise-peer-urls https://boot0.etcd.local:2080"),
            "{a}"
        );
        assert!(
            a.contains("--listen-client-urls https://10.0.0.1:2079,https://127.0.0.1:2079"),
            "{a}"
        );
        assert!(
            a.contains("--cert-file /c/m.pem --key-file /c/m.key --trusted-ca-file /c/ca.pem --client-cert-auth --peer-cert-file /c/m.pem --peer-key-file /c/m.key --peer-trusted-ca-file /c/ca.pem --peer-client-cert-auth"),
            "{a}"
        );
        assert!(a.ends_with("--max-txn-ops 256 --log-level warn"), "{a}");
    }

    #[test]
    fn contradictions_name_file_line_and_key() {
        let e = eval(
            "etcd-1.env",
            &[("ETCD_SCHEME", "https")],
            Runtime::default(),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/prj/apps/etcd/etcd-1.env:"), "{s}");
        assert!(s.contains(": tls: tls=off, but"), "{s}");
        let e = eval(
            "etcd-1.env",
            &[("ETCD1_CLIENT_PORT", "99999")],
            Runtime::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(": client_url: ") && e.contains("1 to 65535"),
            "{e}"
        );
        let e = eval(
            "etcd-1.env",
            &[("ETCD_DATA_ROOT", "rel")],
            Runtime::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(": data_dir: "), "{e}");
    }

    fn learned(value: &str, over: &str) -> runtime::Learned {
        runtime::Learned {
            value: value.into(),
            over: vec![over.into()],
            by: "test".into(),
            at: "now".into(),
        }
    }

    #[test]
    fn the_runtime_layer_applies_until_the_line_is_edited() {
        let mut rt = Runtime::default();
        rt.learned
            .insert("cluster_state".into(), learned("existing", "new"));
        rt.learned.insert(
            "peer_url".into(),
            learned(
                "http://127.0.0.9:2080",
                "${peer_scheme}://${ETCD0_HOST:-127.0.0.1}:${ETCD0_PEER_PORT:-2080}",
            ),
        );
        rt.learned.insert(
            "extra_flags".into(),
            learned("--max-txn-ops 9", "${ETCD_EXTRA_FLAGS:-}"),
        );
        // A key the file does not set applies over "" (absent).
        rt.learned.insert("learned_only".into(), learned("yes", ""));
        let s = eval("etcd-0.env", &[], rt.clone()).unwrap();
        assert_eq!(s.get("cluster_state"), "existing");
        // A later line that refers to the learned key sees the learned value.
        assert_eq!(s.get("listen_peer_urls"), "http://127.0.0.9:2080");
        assert!(s.argv.ends_with(&["--max-txn-ops".into(), "9".into()]));
        assert_eq!(s.get("learned_only"), "yes");
        assert!(s.overridden.is_empty());

        // The operator edits cluster_state by hand: the file wins.
        let text = kit("etcd-0.env").replace("cluster_state=new", "cluster_state='new'");
        let s = from_text(
            &text,
            Path::new("/prj/apps/etcd/etcd-0.env"),
            Path::new("/prj"),
            PathBuf::from("/r"),
            rt,
            &BTreeMap::new(),
            &Fake,
        )
        .unwrap();
        assert_eq!(s.get("cluster_state"), "new");
        assert_eq!(s.overridden, vec!["cluster_state".to_string()]);
    }

    #[test]
    fn once_flags_are_separate_from_the_argv() {
        let rt = Runtime {
            once: Some(runtime::Once {
                flags: vec!["--force-new-cluster".into()],
                by: "rescue".into(),
                at: "now".into(),
            }),
            ..Default::default()
        };
        let s = eval("etcd-2.env", &[], rt).unwrap();
        assert!(!s.argv.contains(&"--force-new-cluster".to_string()));
        assert_eq!(s.launch_argv().last().unwrap(), "--force-new-cluster");
    }

    /// A PRJ_ROOT with the kit's etcd-1.env and a stand-in etcd binary printing `version`
    /// and (for `--help`) `help`.
    fn kit_with_stand_in(version: &str, help: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("apps/etcd/etcd-1.env");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, kit("etcd-1.env")).unwrap();
        let bin = dir.path().join("bin/etcd");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --help ]; then printf '%s\\n' '{help}'; else echo 'etcd Version: {version}'; fi\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, file, bin)
    }

    /// Point etcd-1's etcd_bin at `bin` in its runtime layer (as an operation would).
    fn set_bin_in_runtime(dir: &Path, file: &Path, bin: &Path) {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = envfile::raw_lines(&text);
        let rt = runtime::path_for(dir, file);
        runtime::learn(
            &rt,
            file,
            &lines,
            &[("etcd_bin", bin.to_str().unwrap())],
            "test",
        )
        .unwrap();
    }

    #[test]
    fn the_binary_from_the_runtime_layer_its_version_and_the_corruption_checks() {
        let help = "  --experimental-initial-corrupt-check 'false'\n  --experimental-corrupt-check-time '0s'";
        let (dir, file, bin) = kit_with_stand_in("3.5.1", help);
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[("PRJ_ROOT", dir.path().to_str().unwrap())]);
        let s = evaluate(&file, &e).unwrap();
        assert_eq!(s.argv[0], bin.display().to_string());
        assert_eq!(s.version, Some(releases::Version::new(3, 5, 1)));
        assert!(s.version_problem.is_none());
        assert!(
            s.argv.ends_with(&[
                "--experimental-initial-corrupt-check=true".to_string(),
                "--experimental-corrupt-check-time=5m".to_string()
            ]),
            "{:?}",
            s.argv
        );
        // A good version: no corruption flags.
        let (dir, file, bin) = kit_with_stand_in("3.5.3", help);
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[("PRJ_ROOT", dir.path().to_str().unwrap())]);
        let s = evaluate(&file, &e).unwrap();
        assert_eq!(s.version, Some(releases::Version::new(3, 5, 3)));
        assert!(
            !s.argv.iter().any(|a| a.contains("corrupt")),
            "{:?}",
            s.argv
        );
    }

    #[test]
    fn a_3_6_binary_gets_the_kits_flags_under_their_new_names() {
        let help = "  --feature-gates\n    InitialCorruptCheck=true|false (ALPHA - default=false)\n  --corrupt-check-time 0s\n  --experimental-corrupt-check-time 0s";
        let extra = "--experimental-initial-corrupt-check --experimental-corrupt-check-time 7m --experimental-memory-mlock --max-txn-ops 9";
        let (dir, file, bin) = kit_with_stand_in("3.6.0", help);
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[
            ("PRJ_ROOT", dir.path().to_str().unwrap()),
            ("ETCD_EXTRA_FLAGS", extra),
        ]);
        let s = evaluate(&file, &e).unwrap();
        assert_eq!(s.version, Some(releases::Version::new(3, 6, 0)));
        assert!(
            s.argv.ends_with(&[
                "--feature-gates=InitialCorruptCheck=true".to_string(),
                "--corrupt-check-time".to_string(),
                "7m".to_string(),
                "--experimental-memory-mlock".to_string(),
                "--max-txn-ops".to_string(),
                "9".to_string(),
            ]),
            "{:?}",
            s.argv
        );
        // This binary's help lists neither name of the mlock flag: kept, and noted.
        assert_eq!(s.flag_notes.len(), 1, "{:?}", s.flag_notes);
        assert!(
            s.flag_notes[0].contains("--memory-mlock"),
            "{:?}",
            s.flag_notes
        );
        // The same kit on 3.5.3: as written.
        let (dir, file, bin) = kit_with_stand_in("3.5.3", help);
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[
            ("PRJ_ROOT", dir.path().to_str().unwrap()),
            ("ETCD_EXTRA_FLAGS", extra),
        ]);
        let s = evaluate(&file, &e).unwrap();
        let want: Vec<String> = extra.split(' ').map(String::from).collect();
        assert!(s.argv.ends_with(&want), "{:?}", s.argv);
        assert!(s.flag_notes.is_empty());
    }

    #[test]
    fn a_binary_that_is_not_executable_names_file_line_and_key() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, file, bin) = kit_with_stand_in("3.5.1", "");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[("PRJ_ROOT", dir.path().to_str().unwrap())]);
        let err = evaluate(&file, &e).unwrap_err().to_string();
        let line = kit("etcd-1.env")
            .lines()
            .position(|l| l.starts_with("etcd_bin="))
            .unwrap()
            + 1;
        assert!(
            err.starts_with(&format!("{}:{line}: etcd_bin: ", file.display())),
            "{err}"
        );
        assert!(err.contains("not executable (mode 644)"), "{err}");
        assert!(err.contains("set in the runtime layer"), "{err}");
        // Missing, named in the environment (no runtime layer).
        let (dir, file, _) = kit_with_stand_in("3.5.1", "");
        let e = env(&[
            ("PRJ_ROOT", dir.path().to_str().unwrap()),
            ("ETCD_BIN", "/nonexistent/etcd"),
        ]);
        let err = evaluate(&file, &e).unwrap_err().to_string();
        assert!(
            err.contains(": etcd_bin: /nonexistent/etcd: No such file"),
            "{err}"
        );
        assert!(!err.contains("runtime layer"), "{err}");
    }

    /// Write an executable stand-in at `path`.
    fn stand_in_at(path: &Path, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The 1-based line of `key=` in the kit's etcd-1.env.
    fn kit_line(key: &str) -> usize {
        kit("etcd-1.env")
            .lines()
            .position(|l| l.starts_with(&format!("{key}=")))
            .unwrap()
            + 1
    }

    #[test]
    fn a_members_tools_beside_its_etcd_else_on_path_and_from_the_runtime_layer() {
        let (dir, file, bin) = kit_with_stand_in("3.5.1", "");
        set_bin_in_runtime(dir.path(), &file, &bin);
        let path_dir = dir.path().join("path");
        stand_in_at(&path_dir.join("etcdctl"), "echo 'etcdctl version: 3.4.23'");
        let e = env(&[
            ("PRJ_ROOT", dir.path().to_str().unwrap()),
            ("PATH", path_dir.to_str().unwrap()),
        ]);
        // Nothing beside etcd: etcdctl from PATH, no etcdutl anywhere (as with etcd 3.4).
        let s = evaluate(&file, &e).unwrap();
        assert_eq!(s.etcdctl, Some(path_dir.join("etcdctl")));
        assert_eq!(s.etcdutl, None);
        // Beside etcd (executable ones only): they come first.
        let beside = bin.parent().unwrap();
        stand_in_at(&beside.join("etcdctl"), "echo 'etcdctl version: 3.5.1'");
        stand_in_at(&beside.join("etcdutl"), "echo 'etcdutl version: 3.5.1'");
        let s = evaluate(&file, &e).unwrap();
        assert_eq!(s.etcdctl, Some(beside.join("etcdctl")));
        assert_eq!(s.etcdutl, Some(beside.join("etcdutl")));
        {
            use std::os::unix::fs::PermissionsExt;
            let p = beside.join("etcdutl");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert_eq!(evaluate(&file, &e).unwrap().etcdutl, None);
        // The environment's ETCDCTL_BIN (the kit's line reads it) and a name on PATH.
        let other = dir.path().join("other/etcdctl");
        stand_in_at(&other, "echo 'etcdctl version: 3.5.1'");
        let mut e2 = e.clone();
        e2.insert("ETCDCTL_BIN".into(), other.display().to_string());
        assert_eq!(evaluate(&file, &e2).unwrap().etcdctl, Some(other.clone()));
        e2.insert("ETCDCTL_BIN".into(), "etcdctl".into());
        assert_eq!(
            evaluate(&file, &e2).unwrap().etcdctl,
            Some(path_dir.join("etcdctl"))
        );
        // An operation switches the member's tools in the runtime layer.
        let utl = dir.path().join("v36/etcdutl");
        stand_in_at(&utl, "echo 'etcdutl version: 3.6.0'");
        let text = std::fs::read_to_string(&file).unwrap();
        runtime::learn(
            &runtime::path_for(dir.path(), &file),
            &file,
            &envfile::raw_lines(&text),
            &[("etcdutl_bin", utl.to_str().unwrap())],
            "test",
        )
        .unwrap();
        assert_eq!(evaluate(&file, &e).unwrap().etcdutl, Some(utl));
        // The pure evaluator finds none.
        assert_eq!(
            eval("etcd-1.env", &[], Runtime::default()).unwrap().etcdctl,
            None
        );
    }

    #[test]
    fn a_bad_tool_names_file_line_and_key() {
        let (dir, file, bin) = kit_with_stand_in("3.5.1", "");
        set_bin_in_runtime(dir.path(), &file, &bin);
        let root = dir.path().to_str().unwrap();
        let fails = |e: &[(&str, &str)]| evaluate(&file, &env(e)).unwrap_err().to_string();
        let at = |key: &str| format!("{}:{}: {key}: ", file.display(), kit_line(key));
        // Missing, from the environment through the kit's line.
        let err = fails(&[("PRJ_ROOT", root), ("ETCDUTL_BIN", "/nonexistent/etcdutl")]);
        assert!(err.starts_with(&at("etcdutl_bin")), "{err}");
        assert!(err.contains("/nonexistent/etcdutl: No such file"), "{err}");
        // A name that is not on PATH.
        let err = fails(&[
            ("PRJ_ROOT", root),
            ("PATH", "/nonexistent"),
            ("ETCDCTL_BIN", "etcdctl-9"),
        ]);
        assert!(err.starts_with(&at("etcdctl_bin")), "{err}");
        assert!(err.contains("no etcdctl-9 on PATH"), "{err}");
        // Not executable, set in the runtime layer.
        let plain = dir.path().join("plain/etcdctl");
        stand_in_at(&plain, "true");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = std::fs::read_to_string(&file).unwrap();
        runtime::learn(
            &runtime::path_for(dir.path(), &file),
            &file,
            &envfile::raw_lines(&text),
            &[("etcdctl_bin", plain.to_str().unwrap())],
            "test",
        )
        .unwrap();
        let err = fails(&[("PRJ_ROOT", root)]);
        assert!(err.starts_with(&at("etcdctl_bin")), "{err}");
        assert!(err.contains("not executable (mode 600)"), "{err}");
        assert!(err.contains("set in the runtime layer"), "{err}");
        // A directory is no tool.
        let (dir, file, bin) = kit_with_stand_in("3.5.1", "");
        set_bin_in_runtime(dir.path(), &file, &bin);
        let e = env(&[
            ("PRJ_ROOT", dir.path().to_str().unwrap()),
            ("ETCDUTL_BIN", "/tmp"),
        ]);
        let err = evaluate(&file, &e).unwrap_err().to_string();
        assert!(
            err.contains(": etcdutl_bin: /tmp: not a regular file"),
            "{err}"
        );
        // A settings file without the keys (an older kit): the environment's value still
        // counts, named as such.
        let old = kit("etcd-1.env")
            .lines()
            .filter(|l| !l.starts_with("etcdutl_bin="))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&file, old).unwrap();
        let err = evaluate(&file, &e).unwrap_err().to_string();
        assert!(
            err.contains(
                "etcdutl_bin: /tmp: not a regular file (from ETCDUTL_BIN in the environment)"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_gateway() {
        let s = eval("etcd-gw.env", &[], Runtime::default()).unwrap();
        assert_eq!(s.kind, Kind::Gateway);
        assert_eq!(
            s.argv,
            [
                "/usr/bin/etcd",
                "gateway",
                "start",
                "--listen-addr",
                "127.0.0.1:2379",
                "--endpoints",
                "127.0.0.1:2079,127.0.0.1:2179,127.0.0.1:2279",
                "--retry-delay",
                "1s"
            ]
        );
    }
}
