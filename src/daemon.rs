//! fild's life around the supervisor loop: refuse to start beside a live fild, bind the
//! control socket, write the pidfile, start the guard, run the loop, clean up.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{self, Config, Env, LogSink};
use crate::control::server;
use crate::supervisor::{Supervisor, guard, logs};

/// The process environment as a map (entries that are not UTF-8 are skipped).
pub fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// fild's load environment: the process environment plus a random key for `AUTO` log
/// names, made once per fild (so every reload names the same files, and nobody else can
/// predict them). Not exported to programs.
pub fn daemon_env() -> Env {
    let mut env = process_env();
    let mut key = [0u8; 16];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut key);
    }
    env.insert(config::AUTO_LOG_KEY.to_string(), hex::encode(key));
    env
}

/// The socket fild serves: `[unix_http_server] file`, else `fild.sock` beside the config.
pub fn socket_path(config: &Config) -> PathBuf {
    match &config.unix_http_server {
        Some(u) => u.file.clone(),
        None => default_socket(&config.path),
    }
}

/// Where the socket is when the config has no `[unix_http_server]`.
pub fn default_socket(config_path: &Path) -> PathBuf {
    config::default_socket(config_path)
}

/// Is a fild answering on `path`? A socket nobody answers on is stale and removed; anything
/// that is not a socket is left alone and refused.
fn claim_socket(path: &Path) -> anyhow::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it (check [unix_http_server] file)",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!(
            "another fild is running and answering on {}; refusing to start (stop it with `filc shutdown`)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(socket = %path.display(), "Removing a stale socket.");
            fs::remove_file(path).with_context(|| format!("cannot remove stale {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot check {}", path.display())),
    }
}

/// Take the pidfile for this fild's whole life: an exclusive `flock` on it, held by the
/// returned value (the descriptor is close-on-exec: no program inherits it). A second fild
/// naming the same pidfile (and so the same groups record) is refused here, before it binds
/// a socket, starts a guard or reads the record, whatever its socket path: it touches
/// nothing of the first one's.
fn lock_pidfile(pidfile: &Path) -> anyhow::Result<nix::fcntl::Flock<fs::File>> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = pidfile.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(pidfile)
        .with_context(|| format!("cannot open pidfile {}", pidfile.display()))?;
    let mut held = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    {
        Ok(held) => held,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let pid = fs::read_to_string(pidfile).unwrap_or_default();
            let pid = pid.trim();
            bail!(
                "another fild{} holds the pidfile {}; refusing to start, nothing was touched (stop it with `filc shutdown`, or give this one another [supervisord] pidfile)",
                if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
                pidfile.display()
            );
        }
        Err((_, e)) => bail!("cannot lock pidfile {}: {e}", pidfile.display()),
    };
    held.set_len(0)
        .and_then(|()| held.rewind())
        .and_then(|()| writeln!(held, "{}", std::process::id()))
        .with_context(|| format!("cannot write pidfile {}", pidfile.display()))?;
    Ok(held)
}

/// Bind the control socket with mode 0600 (or `chmod`) from the first instant.
fn bind_socket(config: &Config, path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    claim_socket(path)?;
    // Nothing else runs yet, so the process-wide umask can be narrowed around bind.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    let (mode, chown) = match &config.unix_http_server {
        Some(u) => (u.chmod, u.chown.clone()),
        None => (0o600, None),
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    if let Some((user, group)) = chown {
        let uid = nix::unistd::User::from_name(&user)
            .ok()
            .flatten()
            .map(|u| u.uid)
            .with_context(|| format!("[unix_http_server] chown: no such user {user}"))?;
        let gid = match group {
            Some(g) => Some(
                nix::unistd::Group::from_name(&g)
                    .ok()
                    .flatten()
                    .map(|g| g.gid)
                    .with_context(|| format!("[unix_http_server] chown: no such group {g}"))?,
            ),
            None => None,
        };
        nix::unistd::chown(path, Some(uid), gid)
            .with_context(|| format!("cannot chown {}", path.display()))?;
    }
    Ok(listener)
}

/// Raise the open-files soft limit to `minfds` (bounded by the hard limit).
fn raise_nofile(minfds: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = minfds.min(hard);
        if soft < want
            && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard)
        {
            tracing::warn!(error = %e, "Cannot raise the open-files limit to minfds.");
        }
        if minfds > hard {
            tracing::warn!(
                minfds,
                hard,
                "minfds is above the open-files hard limit; using the hard limit."
            );
        }
    }
}

/// Set up tracing to the configured sinks.
pub fn init_logging(config: &Config) {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::EnvFilter;

    let level = match config.daemon.loglevel.as_str() {
        "critical" | "error" => "error",
        "warn" => "warn",
        "debug" => "debug",
        "trace" | "blather" => "trace",
        _ => "info",
    };
    let filter = EnvFilter::try_from_env("FILD_LOG").unwrap_or_else(|_| EnvFilter::new(level));

    let mut files = Vec::new();
    let mut stdout = false;
    let mut stderr = false;
    for sink in &config.daemon.logfile {
        match sink {
            LogSink::Stdout => stdout = true,
            LogSink::Stderr => stderr = true,
            LogSink::Null => {}
            LogSink::Syslog => eprintln!("fild: logfile sink syslog is not supported; ignored"),
            LogSink::File(p) => files.push(Arc::new(Mutex::new(logs::RotatingFile::new(
                p,
                config.daemon.logfile_maxbytes,
                config.daemon.logfile_backups,
            )))),
        }
    }
    let make = move || Tee {
        files: files.clone(),
        stdout,
        stderr,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(make)
        .try_init();
}

/// A writer that copies each log line to every sink.
struct Tee {
    files: Vec<std::sync::Arc<std::sync::Mutex<logs::RotatingFile>>>,
    stdout: bool,
    stderr: bool,
}

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.stdout {
            let _ = std::io::stdout().write_all(buf);
        }
        if self.stderr {
            let _ = std::io::stderr().write_all(buf);
        }
        for f in &self.files {
            if let Ok(mut f) = f.lock() {
                f.write(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Tell systemd (or whatever listens on `$NOTIFY_SOCKET`) something, e.g. `READY=1`.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&path))
    };
    if let Err(e) = res {
        tracing::warn!(error = %e, "Cannot notify $NOTIFY_SOCKET.");
    }
}

/// Who may connect: derived from the socket as bound, chmod-ed and chown-ed.
/// `chown_group`: whether `[unix_http_server] chown` names a group.
fn peer_policy(meta: &Option<fs::Metadata>, chown_group: bool) -> server::PeerPolicy {
    use std::os::unix::fs::MetadataExt;
    let own_uid = nix::unistd::geteuid().as_raw();
    let own_gid = nix::unistd::getegid().as_raw();
    match meta {
        Some(m) => server::PeerPolicy {
            own_uid,
            owner_uid: m.uid(),
            // The group counts only when it was set on purpose (chown names it, fild's own
            // group included) and may use the socket.
            group: ((chown_group || m.gid() != own_gid) && m.mode() & 0o060 != 0)
                .then_some(m.gid()),
        },
        None => server::PeerPolicy {
            own_uid,
            owner_uid: own_uid,
            group: None,
        },
    }
}

/// Run fild with `config` (already loaded from `path`) until it shuts down.
/// Where the etcd operations' journals go: `<pidfile>.etcd-ops/` (under `var/` in the kit),
/// which only the fild holding that pidfile uses, as `<pidfile>.groups`.
fn ops_dir(pidfile: &Path) -> PathBuf {
    let mut dir = pidfile.as_os_str().to_owned();
    dir.push(".etcd-ops");
    PathBuf::from(dir)
}

pub fn run(path: PathBuf, env: Env, config: Config) -> anyhow::Result<()> {
    if let Some(dir) = &config.daemon.directory {
        std::env::set_current_dir(dir)
            .with_context(|| format!("[supervisord] directory: cannot enter {}", dir.display()))?;
    }
    raise_nofile(config.daemon.minfds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(serve(path, env, config))
}

async fn serve(path: PathBuf, env: Env, config: Config) -> anyhow::Result<()> {
    let pidfile = config.daemon.pidfile.clone();
    // First of all: nothing below may run beside another fild of the same pidfile.
    let _pidfile_lock = lock_pidfile(&pidfile)?;
    let socket = socket_path(&config);
    let listener = bind_socket(&config, &socket)?;
    let mut record = pidfile.clone().into_os_string();
    record.push(".groups");
    let cgroups = match crate::supervisor::cgroup::Cgroups::detect() {
        Ok(c) => {
            tracing::info!(cgroup = %c.base().display(), "Containment: each program in a cgroup of its own (cgroup v2).");
            Some(c)
        }
        Err(why) => {
            tracing::warn!(
                "Containment: process groups and the child subreaper only ({why}); a process that leaves its program's process group can outlive a stop."
            );
            None
        }
    };
    let guard = guard::Guard::start(
        PathBuf::from(record),
        cgroups.as_ref().map(|c| c.base().to_path_buf()),
    );

    let inet = config.inet_http_server.clone();
    let unix_auth = config
        .unix_http_server
        .as_ref()
        .and_then(|u| u.auth.clone());
    let chown_group = config
        .unix_http_server
        .as_ref()
        .and_then(|u| u.chown.as_ref())
        .is_some_and(|(_, group)| group.is_some());
    let server_url = format!("unix://{}", socket.display());
    // Settings files an older fild rewrote: their values move to the runtime layer before
    // any member starts.
    crate::etcd::adopt::at_start(&config.programs, &env);
    let mut sup = Supervisor::new(path, env, config, guard, cgroups.clone(), server_url);
    let handle = sup.handle();
    let ops = crate::etcd::ops::Ops::start(handle.clone(), ops_dir(&pidfile));
    sup.set_reload_guard(crate::etcd::reload_guard(ops.clone()));
    sup.set_stop_order(crate::etcd::stop_order());
    let policy = peer_policy(&fs::metadata(&socket).ok(), chown_group);
    let served = server::Served {
        handle: handle.clone(),
        etcd: crate::etcd::hooks(ops),
        slots: Default::default(),
        brake: Default::default(),
    };
    tokio::spawn(server::serve_unix(
        listener,
        served.clone(),
        unix_auth,
        policy,
    ));
    tokio::spawn(crate::etcd::backup::scheduler(handle.clone()));
    tokio::spawn(crate::etcd::liveness::liveness(handle.clone()));
    tokio::spawn(crate::etcd::metrics::refresher(handle.clone()));
    if let Some(inet) = inet {
        match inet.auth {
            Some(auth) => {
                let addr = inet.port.replacen('*', "0.0.0.0", 1);
                let addr = if addr.starts_with(':') {
                    format!("0.0.0.0{addr}")
                } else {
                    addr
                };
                let tls = match &inet.tls {
                    Some(t) => Some(crate::control::tls::acceptor(t).with_context(|| {
                        format!(
                            "[inet_http_server] TLS with {} and {}",
                            t.cert_file.display(),
                            t.key_file.display()
                        )
                    })?),
                    None => None,
                };
                let tcp = tokio::net::TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("[inet_http_server] cannot listen on {addr}"))?;
                match &inet.tls {
                    Some(t) => tracing::info!(
                        addr,
                        cert = %t.cert_file.display(),
                        "Serving the control API on TCP over TLS only (authentication required)."
                    ),
                    None => tracing::info!(
                        addr,
                        "Serving the control API on TCP (plain http, authentication required)."
                    ),
                }
                tokio::spawn(server::serve_tcp(tcp, served.clone(), auth, tls));
            }
            None => tracing::warn!(
                "[inet_http_server] has no username and password: not served (fild never opens an unauthenticated TCP port)."
            ),
        }
    }
    tracing::info!(socket = %socket.display(), pid = std::process::id(), "fild is up.");

    if let Some(usec) = std::env::var("WATCHDOG_USEC")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let every = std::time::Duration::from_micros(usec / 2);
        tokio::spawn(async move {
            loop {
                sd_notify("WATCHDOG=1");
                tokio::time::sleep(every).await;
            }
        });
    }

    let result = sup
        .run(|| sd_notify(&format!("READY=1\nMAINPID={}", std::process::id())))
        .await;
    // Let replies already handed to connection tasks (`filc shutdown`'s) reach their clients.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    sd_notify("STOPPING=1");
    if let Some(c) = &cgroups {
        // Every program is stopped: its cgroups are empty (anything left is killed).
        crate::supervisor::cgroup::kill_tree(c.base(), std::time::Duration::from_secs(2));
    }
    let _ = fs::remove_file(&socket);
    let _ = fs::remove_file(&pidfile);
    tracing::info!("fild stopped.");
    result
}
