//! Loading: read the main file and its includes, check for duplicate sections, build the
//! non-program sections, and hand program and group sections to [`super::program`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Env;
use super::error::{ConfigError, ConfigErrors, Warning};
use super::expand::Scope;
use super::ini::{self, Section};
use super::keys;
use super::model::*;
use super::program;
use super::reader::{Reader, located};
use super::values::{self, Problem};

/// Sections of supervisord features fild does not implement.
const UNSUPPORTED_PREFIXES: &[&str] = &["eventlistener:", "rpcinterface:", "fcgi-program:"];

const DEFAULT_LOG_MAXBYTES: u64 = 50 << 20;

/// The main file as an absolute path, and its directory.
fn main_paths(path: &Path) -> (PathBuf, PathBuf) {
    let main = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = main
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    (main, dir)
}

fn file_error(file: &Path, err: &std::io::Error) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line: 0,
        section: None,
        key: None,
        message: format!("cannot read configuration file: {err}"),
        hint: None,
    }
}

/// Read and parse one file.
fn read_file(path: &Path) -> Result<ini::Parsed, std::io::Error> {
    std::fs::read(path).map(|bytes| ini::parse(path, &bytes))
}

fn directory_of(section: &Section) -> PathBuf {
    section
        .file
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// The first section called `name`.
fn find<'a>(sections: &'a [Section], name: &str) -> Option<&'a Section> {
    sections.iter().find(|s| s.name == name)
}

/// `[supervisord] environment`, expanded from `env`, and `env` with those items added.
fn daemon_environment(
    section: Option<&Section>,
    env: &Env,
    errors: &mut Vec<ConfigError>,
) -> (Vec<(String, String)>, Env) {
    let Some(section) = section else {
        return (Vec::new(), env.clone());
    };
    let here = directory_of(section);
    let mut reader = Reader {
        section,
        scope: Scope::plain(env, &here),
        errors,
    };
    let items = reader.environment(true);
    let mut vars = env.clone();
    vars.extend(items.iter().cloned());
    (items, vars)
}

/// Paths named by the main file's `[include] files=`, each glob's matches in sorted order.
fn include_paths(
    section: &Section,
    main: &Path,
    vars: &Env,
    errors: &mut Vec<ConfigError>,
) -> Vec<PathBuf> {
    let here = directory_of(section);
    let mut reader = Reader {
        section,
        scope: Scope::plain(vars, &here),
        errors,
    };
    let Some(files) = reader.string("files") else {
        reader.missing("files", "list include globs, e.g. files=conf.d/*.ini");
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for pattern in files.split_whitespace() {
        let full = here.join(pattern);
        let matches = match glob::glob(&full.to_string_lossy()) {
            Ok(m) => m,
            Err(e) => {
                let p = Problem::new(format!("invalid glob '{pattern}': {e}"));
                reader.error("files", p);
                continue;
            }
        };
        let mut found = Vec::new();
        for m in matches {
            match m {
                Ok(path) => found.push(path),
                Err(e) => reader.error("files", Problem::new(format!("cannot read {e}"))),
            }
        }
        found.sort();
        for path in found {
            if path != main && !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// Read the included files; their sections are appended to `sections`.
fn read_includes(
    include: &Section,
    main: &Path,
    vars: &Env,
    sections: &mut Vec<Section>,
    errors: &mut Vec<ConfigError>,
) {
    for path in include_paths(include, main, vars, errors) {
        match read_file(&path) {
            Ok(parsed) => {
                sections.extend(parsed.sections);
                errors.extend(parsed.errors);
            }
            Err(e) => {
                let problem =
                    Problem::new(format!("cannot read included file {}: {e}", path.display()));
                errors.push(located(include, include.get("files"), problem));
            }
        }
    }
}

/// Drop later sections of a name already seen; report those from another file (a repeat
/// within one file was already reported by the ini reader). `[group:x]` sections merge.
fn dedupe_sections(sections: Vec<Section>, errors: &mut Vec<ConfigError>) -> Vec<Section> {
    let mut kept: Vec<Section> = Vec::new();
    for section in sections {
        if section.name == "include" {
            // Only the main file's (the first) is honored; others just warn.
            kept.push(section);
            continue;
        }
        if section.name.starts_with("group:") {
            // fild extension: a group may be declared in several files (one per member
            // template, say); their program lists add up. Listing a program twice is
            // still an error, reported by the group check.
            kept.push(section);
            continue;
        }
        match kept.iter().find(|k| k.name == section.name) {
            Some(first) if first.file != section.file => {
                let problem = Problem::new(format!(
                    "duplicate section [{}]; first defined at {}",
                    section.name,
                    first.place()
                ))
                .hint("each section may appear only once across the main file and its includes");
                errors.push(located(&section, None, problem));
            }
            Some(_) => {}
            None => kept.push(section),
        }
    }
    kept
}

/// Everything the main file and its includes hold, before typing.
struct Files {
    main: PathBuf,
    dir: PathBuf,
    sections: Vec<Section>,
}

fn read_all(path: &Path, env: &Env, errors: &mut Vec<ConfigError>) -> Option<Files> {
    let (main, dir) = main_paths(path);
    let parsed = match read_file(&main) {
        Ok(p) => p,
        Err(e) => {
            errors.push(file_error(&main, &e));
            return None;
        }
    };
    errors.extend(parsed.errors);
    let mut sections = parsed.sections;
    let main_daemon = find(&sections, "supervisord").cloned();
    let (_, vars) = daemon_environment(main_daemon.as_ref(), env, errors);
    if let Some(include) = find(&sections, "include").cloned() {
        read_includes(&include, &main, &vars, &mut sections, errors);
    }
    let sections = dedupe_sections(sections, errors);
    Some(Files {
        main,
        dir,
        sections,
    })
}

/// Remove duplicate errors (a numprocs program reports each problem once per process).
fn unique(errors: Vec<ConfigError>) -> Vec<ConfigError> {
    let mut out: Vec<ConfigError> = Vec::new();
    for e in errors {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// The environment variable holding the key of `AUTO` log names.
pub const AUTO_LOG_KEY: &str = "FILD_AUTO_LOG_KEY";

/// Whether warnings are errors: always, or only when the config says `strict=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strict {
    Always,
    AsConfigured,
}

/// See [`super::load`] and [`super::load_strict`].
pub(crate) fn load(path: &Path, env: &Env, strict: Strict) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let Some(files) = read_all(path, env, &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let mut warnings = Vec::new();
    check_sections(&files, &mut errors, &mut warnings);
    let sections = &files.sections;
    let (env_items, vars) = daemon_environment(find(sections, "supervisord"), env, &mut errors);
    let daemon = daemon_settings(&files, env_items, &vars, &mut errors, &mut warnings);
    let unix_http_server = unix_server(sections, &vars, &mut errors, &mut warnings);
    let inet_http_server = inet_server(sections, &vars, Tls::Read, &mut errors, &mut warnings);
    let ctl = ctl_settings(sections, &vars, &mut errors, &mut warnings);
    let programs = program::build(sections, &vars, &daemon, &mut errors, &mut warnings);
    let etcd = etcd_settings(sections, &daemon, &vars, &mut errors, &mut warnings);
    let cluster = cluster_settings(
        sections,
        inet_http_server.as_ref(),
        &vars,
        &mut errors,
        &mut warnings,
    );
    if strict == Strict::Always || daemon.strict {
        // `--strict` says so itself; a file's own strict=true is named in each error.
        let hint = (strict != Strict::Always)
            .then(|| "fix or remove it: [supervisord] strict=true makes it an error".to_string());
        errors.extend(warnings.drain(..).map(|w| ConfigError {
            hint: hint.clone(),
            ..w.0
        }));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(unique(errors)));
    }
    Ok(Config {
        path: files.main,
        unix_http_server,
        inet_http_server,
        daemon,
        ctl,
        programs,
        etcd,
        cluster,
        warnings,
    })
}

/// See [`super::load_client`].
pub(crate) fn load_client(path: &Path, env: &Env) -> Result<ClientSettings, ConfigErrors> {
    let (main, _) = main_paths(path);
    let parsed = match read_file(&main) {
        Ok(p) => p,
        Err(e) => return Err(ConfigErrors(vec![file_error(&main, &e)])),
    };
    let client_sections = ["unix_http_server", "inet_http_server", "supervisorctl"];
    let mut errors: Vec<ConfigError> = parsed
        .errors
        .into_iter()
        .filter(|e| {
            e.section
                .as_deref()
                .is_none_or(|s| client_sections.contains(&s))
        })
        .collect();
    let sections = parsed.sections;
    // Best effort: a broken [supervisord] environment is the daemon's business, not filc's.
    let (_, vars) = daemon_environment(find(&sections, "supervisord"), env, &mut Vec::new());
    let mut ignored = Vec::new();
    let unix_http_server = unix_server(&sections, &vars, &mut errors, &mut ignored);
    // The listener's certificate and key are fild's (the key may be readable by fild alone).
    let inet_http_server = inet_server(&sections, &vars, Tls::Skip, &mut errors, &mut ignored);
    let ctl = ctl_settings(&sections, &vars, &mut errors, &mut ignored);
    if !errors.is_empty() {
        return Err(ConfigErrors(unique(errors)));
    }
    Ok(ClientSettings {
        path: main,
        unix_http_server,
        inet_http_server,
        ctl,
    })
}

/// Warnings for unknown and unsupported sections and for `[include]` outside the main file;
/// the main `[include]`'s keys.
fn check_sections(files: &Files, errors: &mut Vec<ConfigError>, warnings: &mut Vec<Warning>) {
    const KNOWN: &[&str] = &[
        "unix_http_server",
        "inet_http_server",
        "supervisord",
        "supervisorctl",
        "include",
        "etcd",
        "cluster",
    ];
    for s in &files.sections {
        let name = s.name.as_str();
        let note = if name == "include" && s.file != files.main {
            "only the main file's [include] is honored"
        } else if KNOWN.contains(&name)
            || name.starts_with("program:")
            || name.starts_with("group:")
        {
            continue;
        } else if UNSUPPORTED_PREFIXES.iter().any(|p| name.starts_with(p)) {
            "not supported"
        } else {
            "unknown section"
        };
        warnings.push(Warning(located(s, None, Problem::new(note))));
    }
    if let Some(include) = files.sections.iter().find(|s| s.name == "include") {
        keys::check(include, keys::INCLUDE, errors, warnings);
    }
}

/// A section reader in a plain (non-program) scope.
fn reader<'a, 'e>(
    section: &'a Section,
    here: &'a Path,
    vars: &'a Env,
    errors: &'e mut Vec<ConfigError>,
) -> Reader<'a, 'e> {
    Reader {
        section,
        scope: Scope::plain(vars, here),
        errors,
    }
}

/// Credentials when both username and password are set.
fn credentials(r: &mut Reader) -> Option<Credentials> {
    let username = r.string("username");
    let password = r.typed("password", values::password);
    Some(Credentials {
        username: username?,
        password: password?,
    })
}

fn unix_server(
    sections: &[Section],
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> Option<UnixHttpServer> {
    let section = find(sections, "unix_http_server")?;
    keys::check(section, keys::UNIX, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    let file = r.path("file");
    let hint = "set the socket path, e.g. file=/run/fild.sock";
    match r.entry("file") {
        None => r.missing("file", hint),
        Some(e) if e.value.is_empty() => r.error("file", Problem::new("empty path").hint(hint)),
        Some(_) => {}
    }
    let chmod = r.or("chmod", 0o600, |s| values::octal(s, 0o7777));
    let chown = r.typed("chown", values::chown);
    let auth = credentials(&mut r);
    Some(UnixHttpServer {
        file: file?,
        chmod,
        chown,
        auth,
    })
}

/// Whether `[inet_http_server]`'s TLS files are read: by fild, never by filc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Read,
    Skip,
}

fn inet_server(
    sections: &[Section],
    vars: &Env,
    tls: Tls,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> Option<InetHttpServer> {
    let section = find(sections, "inet_http_server")?;
    keys::check(section, keys::INET, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    let port = r.typed("port", values::host_port);
    if r.entry("port").is_none() {
        r.missing("port", "set host:port, e.g. port=127.0.0.1:9001");
    }
    let auth = credentials(&mut r);
    let tls = match tls {
        Tls::Read => server_tls(&mut r, &here),
        Tls::Skip => Some(None),
    };
    Some(InetHttpServer {
        port: port?,
        auth,
        tls: tls?,
    })
}

/// A path key, relative to the directory of the file that sets it.
fn file_key(r: &mut Reader, here: &Path, key: &str) -> Option<PathBuf> {
    r.path(key).map(|p| here.join(p))
}

/// `tls_cert_file` and `tls_key_file`: both or neither, each read and parsed now. `None`
/// when either is wrong (the error is recorded); `Some(None)` without them.
fn server_tls(r: &mut Reader, here: &Path) -> Option<Option<ServerTls>> {
    let cert = file_key(r, here, "tls_cert_file");
    let key = file_key(r, here, "tls_key_file");
    let hint = "set both tls_cert_file and tls_key_file (PEM), or neither for plain http";
    match (cert, key) {
        (None, None) => Some(None),
        (Some(_), None) => {
            r.error(
                "tls_cert_file",
                Problem::new("tls_cert_file without tls_key_file").hint(hint),
            );
            None
        }
        (None, Some(_)) => {
            r.error(
                "tls_key_file",
                Problem::new("tls_key_file without tls_cert_file").hint(hint),
            );
            None
        }
        (Some(cert), Some(key)) => match super::tls::server(&cert, &key) {
            Ok(t) => Some(Some(t)),
            Err((which, problem)) => {
                r.error(which, problem);
                None
            }
        },
    }
}

fn etcd_settings(
    sections: &[Section],
    daemon: &DaemonSettings,
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> EtcdSettings {
    let day = std::time::Duration::from_secs(86400);
    let mut s = EtcdSettings {
        backup_dir: daemon
            .pidfile
            .parent()
            .unwrap_or(Path::new("."))
            .join("backups/etcd"),
        backup_interval: day,
        backup_keep: 7,
        backup_max_age: 7 * day,
        backup_command: None,
        liveness_window: std::time::Duration::from_secs(30),
    };
    let Some(section) = find(sections, "etcd") else {
        return s;
    };
    keys::check(section, keys::ETCD, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    s.backup_dir = r.path("backup_dir").unwrap_or(s.backup_dir);
    s.backup_interval = r.or("backup_interval", s.backup_interval, values::duration);
    s.backup_keep = r.or("backup_keep", s.backup_keep, values::integer);
    s.backup_max_age = r.or("backup_max_age", s.backup_max_age, values::duration);
    s.backup_command = r.non_empty("backup_command");
    s.liveness_window = r.or("liveness_window", s.liveness_window, values::duration);
    s
}

/// `[cluster]`: `hosts` (URLs or `name=URL` pairs, whitespace or commas between them) and
/// the credentials to present to the other filds (default: `[inet_http_server]`'s).
fn cluster_settings(
    sections: &[Section],
    inet: Option<&InetHttpServer>,
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> Option<ClusterSettings> {
    let section = find(sections, "cluster")?;
    keys::check(section, keys::CLUSTER, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    let own = inet.map(|i| i.port.as_str());
    let hosts = match r.entry("hosts") {
        None => {
            r.missing(
                "hosts",
                "list every host's fild, e.g. hosts=h0=http://10.0.0.1:9001 h1=http://10.0.0.2:9001 (or https:// with ca_file)",
            );
            None
        }
        Some(_) => r.typed("hosts", |v| values::cluster_hosts(v, own)),
    };
    let from_inet = inet.and_then(|i| i.auth.as_ref());
    let username = r
        .string("username")
        .or_else(|| from_inet.map(|a| a.username.clone()));
    let password = r.string("password").or_else(|| match from_inet {
        Some(Credentials {
            password: Password::Plain(p),
            ..
        }) => Some(p.clone()),
        _ => None,
    });
    let ca = match file_key(&mut r, &here, "ca_file") {
        None => Some(None),
        Some(path) => match super::tls::ca(&path) {
            Ok(ca) => Some(Some(ca)),
            Err(p) => {
                r.error("ca_file", p);
                None
            }
        },
    };
    let https = hosts
        .iter()
        .flatten()
        .find(|h| h.url.starts_with("https://"));
    if let (Some(h), Some(None)) = (https, &ca) {
        let p = Problem::new(format!(
            "'{}' is https, and [cluster] names no ca_file to verify it with",
            h.url
        ))
        .hint("set [cluster] ca_file= to the PEM CA that signed the hosts' control certificates");
        r.error("hosts", p);
        return None;
    }
    let (Some(username), Some(password)) = (username, password) else {
        r.error(
            "password",
            Problem::new(
                "no credentials for the other hosts' filds (they serve the TCP control API only with a username and password)",
            )
            .hint("set [cluster] username and password, or a plain-text [inet_http_server] username and password"),
        );
        return None;
    };
    Some(ClusterSettings {
        hosts: hosts?,
        username,
        password,
        ca: ca?,
    })
}

fn ctl_settings(
    sections: &[Section],
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> CtlSettings {
    let Some(section) = find(sections, "supervisorctl") else {
        return CtlSettings::default();
    };
    keys::check(section, keys::CTL, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    CtlSettings {
        serverurl: r.non_empty("serverurl"),
        username: r.string("username"),
        password: r.string("password"),
        ca_file: file_key(&mut r, &here, "ca_file"),
    }
}

/// `logfile=` sinks: `/dev/stdout`, `/dev/stderr`, `/dev/null`, `syslog` or a file.
fn log_sinks(s: &str) -> Result<Vec<LogSink>, Problem> {
    let sinks: Vec<LogSink> = s
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item {
            "/dev/stdout" => LogSink::Stdout,
            "/dev/stderr" => LogSink::Stderr,
            "/dev/null" => LogSink::Null,
            "syslog" => LogSink::Syslog,
            path => LogSink::File(PathBuf::from(path)),
        })
        .collect();
    if sinks.is_empty() {
        return Err(Problem::new("no log destination given")
            .hint("use a path, /dev/stdout, /dev/stderr, /dev/null or syslog"));
    }
    Ok(sinks)
}

fn daemon_settings(
    files: &Files,
    environment: Vec<(String, String)>,
    vars: &Env,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) -> DaemonSettings {
    let mut settings = DaemonSettings {
        logfile: vec![LogSink::File(files.dir.join("fild.log"))],
        logfile_maxbytes: DEFAULT_LOG_MAXBYTES,
        logfile_backups: 10,
        loglevel: "info".into(),
        pidfile: files.dir.join("fild.pid"),
        directory: None,
        environment,
        childlogdir: PathBuf::from("/tmp"),
        auto_log_key: vars.get(AUTO_LOG_KEY).cloned().unwrap_or_default(),
        minfds: 1024,
        umask: None,
        strict: false,
        on_change: OnChange::default(),
    };
    let Some(section) = find(&files.sections, "supervisord") else {
        return settings;
    };
    keys::check(section, keys::DAEMON, errors, warnings);
    let here = directory_of(section);
    let mut r = reader(section, &here, vars, errors);
    let s = &mut settings;
    s.logfile = r.or("logfile", std::mem::take(&mut s.logfile), log_sinks);
    s.logfile_maxbytes = r.or("logfile_maxbytes", s.logfile_maxbytes, values::size);
    s.logfile_backups = r.or("logfile_backups", s.logfile_backups, values::backups);
    s.loglevel = r.or(
        "loglevel",
        std::mem::take(&mut s.loglevel),
        values::loglevel,
    );
    s.pidfile = r.path("pidfile").unwrap_or(std::mem::take(&mut s.pidfile));
    s.directory = r.path("directory");
    s.childlogdir = r
        .path("childlogdir")
        .unwrap_or(std::mem::take(&mut s.childlogdir));
    s.minfds = r.or("minfds", s.minfds, values::integer);
    s.umask = r.typed("umask", |v| values::octal(v, 0o777));
    s.strict = r.bool_or("strict", false);
    let hook = &mut s.on_change;
    hook.command = r.non_empty("on_change");
    hook.timeout = r.or("on_change_timeout", hook.timeout, |v| {
        values::duration_within(v, Duration::from_secs(1), Duration::from_secs(3600))
    });
    hook.queue = r.or("on_change_queue", hook.queue, |v| {
        values::within(v, 1, 10_000).map(|n| n as usize)
    });
    settings
}
