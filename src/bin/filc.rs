//! filc: the command-line client of fild.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fild::api::{ActionReply, EtcdOpKind, EtcdOpRequest, ProcessState};
use fild::config;
use fild::control::client::{self, Client, ClientError};
use fild::control::follow;
use fild::daemon;

#[derive(Parser)]
#[command(
    name = "filc",
    version,
    about = "Control fild",
    disable_help_subcommand = true
)]
struct Args {
    /// The main config file (default: $FILD_CONFIG, $PRJ_ROOT/etc/fild/fild.ini,
    /// $PRJ_ROOT/etc/supd/supd.ini, ./fild.ini, /etc/fild/fild.ini).
    #[arg(short = 'c', long = "configuration", global = true)]
    config: Option<PathBuf>,
    /// The daemon's socket: PATH or unix://PATH (or http://HOST:PORT, https://HOST:PORT).
    #[arg(short = 's', long = "serverurl", global = true)]
    server: Option<String>,
    /// The PEM CA that signed an https:// fild's certificate (default: [supervisorctl]
    /// ca_file).
    #[arg(
        long = "ca-file",
        env = "FILC_CA_FILE",
        global = true,
        value_name = "FILE"
    )]
    ca_file: Option<PathBuf>,
    #[arg(short = 'u', long = "username", global = true)]
    username: Option<String>,
    #[arg(short = 'p', long = "password", global = true)]
    password: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show processes (all, or the named ones). Exit 3 if a named one is not RUNNING.
    Status {
        #[arg(long)]
        json: bool,
        names: Vec<String>,
    },
    /// Start processes (NAME, group:*, all) and wait until each runs or fails.
    Start { names: Vec<String> },
    /// Stop processes and wait until nothing of them is left.
    Stop {
        /// Skip safety guards.
        #[arg(long)]
        force: bool,
        names: Vec<String>,
    },
    /// Stop, then start.
    Restart {
        #[arg(long)]
        force: bool,
        names: Vec<String>,
    },
    /// Reread the config and apply it program by program; changed etcd members restart one
    /// at a time (a rolling reload), followed until the last is healthy and caught up.
    Reload {
        /// Even when it stops or restarts etcd members below quorum (at once, no roll).
        #[arg(long)]
        force: bool,
        /// Return once the rolling reload has started (print its ID; follow it with
        /// `filc etcd ops --follow ID`).
        #[arg(long)]
        no_wait: bool,
    },
    /// Print the end of a process's log.
    Tail {
        /// Keep printing as the log grows.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Print the last N lines.
        #[arg(short = 'n', long)]
        lines: Option<usize>,
        name: String,
        #[arg(default_value = "stdout")]
        stream: String,
    },
    /// Print a process's pid (0 when not running), or fild's own without a name.
    Pid { name: Option<String> },
    /// Send a signal to processes.
    Signal {
        /// Even to etcd members below quorum (a signal is guarded like a stop).
        #[arg(long)]
        force: bool,
        signal: String,
        names: Vec<String>,
    },
    /// Stop every program and fild itself.
    Shutdown,
    /// Print filc's and fild's versions.
    Version,
    /// etcd cluster operations.
    Etcd {
        #[command(subcommand)]
        cmd: EtcdCmd,
    },
}

#[derive(Subcommand)]
enum EtcdCmd {
    /// One row per member and a verdict; exit 0 healthy, 1 degraded (quorum held), 2 no quorum.
    Status {
        #[arg(long)]
        json: bool,
        /// Under the table, each member's full error.
        #[arg(short = 'v', long)]
        verbose: bool,
    },
    /// One member's (or the gateway's) settings: the shipped settings file, what operations
    /// learned (the runtime layer under var/etcd/runtime/), and the argv etcd starts with.
    Show {
        program: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a failed member (recovery mode two): snapshot, remove, move its data aside,
    /// re-add as a learner, start, promote. Safe to re-run.
    Replace {
        program: String,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Update a member's peer URL after its data moved to a new host (recovery mode one).
    Move {
        program: String,
        #[arg(long)]
        peer_url: String,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Add a configured member to the cluster (one at a time, snapshot first).
    Add {
        program: String,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Remove a member from the cluster (never below quorum, snapshot first).
    Remove {
        program: String,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Take a snapshot now (into DIR, default the [etcd] backup_dir).
    Snapshot {
        dir: Option<PathBuf>,
        #[command(flatten)]
        op: OpFlags,
    },
    /// List the snapshots in the backup folder, and on three hosts ([cluster]) every host's.
    Backups {
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the cluster from a snapshot (recovery mode three).
    Restore {
        snapshot: PathBuf,
        /// Over a cluster that still has quorum too (its writes after the snapshot are lost).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Quorum lost for good: restart one survivor with --force-new-cluster, re-add the others.
    Rescue {
        program: String,
        /// A member that answers nothing, taken as down (repeat for each; needs --yes):
        /// not answering is no proof, this host may be the one cut off.
        #[arg(long, value_name = "NAME")]
        assume_down: Vec<String>,
        /// Keep this survivor although another member's data goes further (its newer
        /// revisions are lost).
        #[arg(long)]
        allow_behind: bool,
        #[command(flatten)]
        op: OpFlags,
    },
    /// Compact, defragment member by member (leader last), disarm NOSPACE.
    Defrag {
        #[command(flatten)]
        op: OpFlags,
    },
    /// Rolling upgrade onto the etcd binary BINARY (the same path on every host): a
    /// snapshot, then one member at a time, followers first, the leader last.
    Upgrade {
        /// The new etcd binary.
        #[arg(
            long,
            value_name = "BINARY",
            required_unless_present = "back",
            conflicts_with = "back"
        )]
        to: Option<PathBuf>,
        /// Upgrade to a release of the known-bad table (`filc etcd status` says why it is).
        #[arg(long)]
        allow_known_bad: bool,
        /// Go back: member NAME runs its settings file's etcd again, on fresh data from the
        /// cluster (a replace); only while the cluster version admits it.
        #[arg(long, value_name = "NAME")]
        back: Option<String>,
        #[command(flatten)]
        op: OpFlags,
    },
    /// The operations fild ran or runs (newest last); --follow ID re-attaches to one.
    Ops {
        #[arg(long, value_name = "ID")]
        follow: Option<u64>,
        #[arg(long)]
        json: bool,
    },
}

/// What every operation takes: fild runs it, filc follows it.
#[derive(clap::Args)]
struct OpFlags {
    /// Print the plan and stop: nothing changes.
    #[arg(long)]
    dry_run: bool,
    /// Carry out destructive steps without asking (removing a healthy member, restoring over
    /// a cluster that answers, forcing a new cluster).
    #[arg(long, short = 'y')]
    yes: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("filc: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("filc: {e:#}");
            if let Some(ClientError::Api { body, .. }) = e.downcast_ref::<ClientError>() {
                for d in &body.details {
                    eprintln!("  {d}");
                }
            }
            ExitCode::from(1)
        }
    }
}

/// Build a client from flags and the config's `[supervisorctl]`/`[unix_http_server]`.
fn client(args: &Args) -> anyhow::Result<Client> {
    let env = daemon::process_env();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = args
        .config
        .clone()
        .or_else(|| config::find_config(&env, &cwd));
    let settings = match &path {
        Some(p) => Some(config::load_client(p, &env).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let flags = client::Flags {
        server: args.server.clone(),
        username: args.username.clone(),
        password: args.password.clone(),
        ca_file: args.ca_file.clone(),
    };
    client::from_settings(&flags, settings.as_ref()).map_err(anyhow::Error::msg)
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = client(&args)?;
    match args.command {
        Cmd::Status { json, names } => status(&c, json, &names).await,
        Cmd::Start { names } => action(&c, "start", names, false).await,
        Cmd::Stop { force, names } => action(&c, "stop", names, force).await,
        Cmd::Restart { force, names } => action(&c, "restart", names, force).await,
        Cmd::Reload { force, no_wait } => reload(&c, force, no_wait).await,
        Cmd::Tail {
            follow,
            lines,
            name,
            stream,
        } => tail(&c, &name, &stream, follow, lines).await,
        Cmd::Pid { name } => pid(&c, name).await,
        Cmd::Signal {
            force,
            signal,
            names,
        } => {
            let reply = c.signal(signal, names, force).await?;
            Ok(print_results(&reply))
        }
        Cmd::Shutdown => shutdown(&c).await,
        Cmd::Etcd { cmd } => etcd(&c, cmd).await,
        Cmd::Version => {
            println!("filc {}", env!("CARGO_PKG_VERSION"));
            let v = c.version().await?;
            println!("fild {} (api {}, pid {})", v.version, v.api, v.pid);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(c: &Client, json: bool, names: &[String]) -> anyhow::Result<ExitCode> {
    // The table shows no CPU or RSS: spare fild the /proc reads.
    let procs = c.processes(names, json).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&procs)?);
    } else {
        let color = std::io::stdout().is_terminal();
        let _ = std::io::stdout()
            .lock()
            .write_all(fild::render::processes(&procs, color).as_bytes());
    }
    let all_running = procs.iter().all(|p| p.state == ProcessState::Running);
    Ok(if !names.is_empty() && !all_running {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_results(reply: &ActionReply) -> ExitCode {
    let mut failed = false;
    for r in &reply.results {
        if r.ok {
            println!("{}: {}", r.name, r.message);
        } else {
            failed = true;
            println!("{}: ERROR ({})", r.name, r.message);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn action(
    c: &Client,
    verb: &str,
    names: Vec<String>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    if names.is_empty() {
        anyhow::bail!("name a process to {verb} (NAME, group:*, or all)");
    }
    let reply = c.action(verb, names, force).await?;
    if let Some(id) = reply.op {
        // Two or more etcd members: fild rolls through them; say each step as it happens.
        println!(
            "rolling restart of the etcd members as operation {id}, one at a time, leader last (interrupting filc does not stop it: filc etcd ops --follow {id})"
        );
        return Ok(ExitCode::from(follow::reattach(c, id).await?));
    }
    Ok(print_results(&reply))
}

async fn reload(c: &Client, force: bool, no_wait: bool) -> anyhow::Result<ExitCode> {
    let r = c.reload(force).await?;
    for w in &r.warnings {
        println!("warning: {w}");
    }
    if r.added.is_empty() && r.changed.is_empty() && r.removed.is_empty() {
        println!("No changes.");
    }
    for (label, list) in [
        ("Added", &r.added),
        ("Changed", &r.changed),
        ("Removed", &r.removed),
    ] {
        if !list.is_empty() {
            println!("{label}: {}", list.join(", "));
        }
    }
    if r.rolling.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let members = r.rolling.join(", ");
    let Some(id) = r.op else {
        eprintln!(
            "filc: {members} keep their old settings: the rolling reload did not start: {}",
            r.op_error.as_deref().unwrap_or("no reason given")
        );
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "Rolling: {members}, one at a time (each healthy and caught up before the next, the leader last), as operation {id}"
    );
    if no_wait {
        println!("follow it: filc etcd ops --follow {id}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("(interrupting filc does not stop it: filc etcd ops --follow {id})");
    Ok(ExitCode::from(follow::reattach(c, id).await?))
}

async fn pid(c: &Client, name: Option<String>) -> anyhow::Result<ExitCode> {
    match name {
        None => {
            let v = c.version().await?;
            println!("{}", v.pid);
        }
        Some(n) => {
            let procs = c.processes(std::slice::from_ref(&n), false).await?;
            if procs.len() != 1 {
                anyhow::bail!("{n} names {} processes; name one", procs.len());
            }
            println!("{}", procs[0].pid);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn tail(
    c: &Client,
    name: &str,
    stream: &str,
    follow: bool,
    lines: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let max = match lines {
        Some(n) => (n as u64 * 1024).clamp(1600, 1 << 20),
        None => 1600,
    };
    let chunk = c.logs(name, stream, None, max).await?;
    let mut text = chunk.data.as_str();
    if let Some(n) = lines {
        let trimmed = text.strip_suffix('\n').unwrap_or(text);
        let start = trimmed
            .rmatch_indices('\n')
            .nth(n.saturating_sub(1))
            .map(|(i, _)| i + 1)
            .unwrap_or(0);
        text = if n == 0 { "" } else { &text[start..] };
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut offset = chunk.offset + chunk.read;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let chunk = c.logs(name, stream, Some(offset), 1 << 20).await?;
        // After a rotation the server answers from the new file's start; its offset says so.
        offset = chunk.offset + chunk.read;
        let mut out = std::io::stdout().lock();
        if out.write_all(chunk.data.as_bytes()).is_err() || out.flush().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

async fn shutdown(c: &Client) -> anyhow::Result<ExitCode> {
    match c.shutdown().await {
        // fild went away while answering: it is shutting down, which is what was asked.
        Ok(_) | Err(ClientError::Protocol(_)) => {}
        Err(e) => return Err(e.into()),
    }
    // Wait (bounded) until fild has stopped everything and its socket is gone.
    for _ in 0..1200 {
        if c.version().await.is_err() {
            println!("Shut Down");
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("fild accepted the shutdown but is still answering after 120 s")
}

async fn etcd(c: &Client, cmd: EtcdCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        EtcdCmd::Status { json, verbose } => {
            let local = c.members().await?;
            for p in &local.problems {
                eprintln!("warning: {p}");
            }
            // A host that runs only the gateway sees the cluster through its endpoints.
            if local.gateway.is_none() {
                fild::etcd::programs::require_members(&local)?;
            }
            let mut st = fild::etcd::cluster::status(&local).await;
            let names = fild::etcd::names::check(&local, &st).await;
            st.warnings.extend(names);
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", fild::render::etcd_status(&st, verbose));
            }
            Ok(ExitCode::from(st.verdict.exit_code()))
        }
        EtcdCmd::Show { program, json } => {
            let local = c.members().await?;
            for p in &local.problems {
                eprintln!("warning: {p}");
            }
            if let Some(m) = local.members.iter().find(|m| m.program == program) {
                if json {
                    println!("{}", serde_json::to_string_pretty(m)?);
                } else {
                    print!("{}", fild::etcd::show::member(m));
                }
            } else if let Some(g) = local.gateway.as_ref().filter(|g| g.program == program) {
                if json {
                    println!("{}", serde_json::to_string_pretty(g)?);
                } else {
                    print!("{}", fild::etcd::show::gateway(g));
                }
            } else {
                let prefix = format!("{program}: ");
                if let Some(p) = local.problems.iter().find_map(|p| p.strip_prefix(&prefix)) {
                    anyhow::bail!("{program}'s settings cannot be evaluated: {p}");
                }
                let mut known: Vec<&str> =
                    local.members.iter().map(|m| m.program.as_str()).collect();
                known.extend(local.gateway.iter().map(|g| g.program.as_str()));
                let what = format!(
                    "filc etcd show {program}{}",
                    if json { " --json" } else { "" }
                );
                let hint = fild::etcd::programs::name_hint(&local, &program, true, &what)
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "{program} is not an etcd member or gateway among fild's programs (known: {}){hint}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EtcdCmd::Replace { program, op } => run_op(c, EtcdOpKind::Replace { program }, op).await,
        EtcdCmd::Move {
            program,
            peer_url,
            op,
        } => run_op(c, EtcdOpKind::Move { program, peer_url }, op).await,
        EtcdCmd::Add { program, op } => run_op(c, EtcdOpKind::Add { program }, op).await,
        EtcdCmd::Remove { program, op } => run_op(c, EtcdOpKind::Remove { program }, op).await,
        EtcdCmd::Rescue {
            program,
            assume_down,
            allow_behind,
            op,
        } => {
            let kind = EtcdOpKind::Rescue {
                program,
                assume_down,
                allow_behind,
            };
            run_op(c, kind, op).await
        }
        EtcdCmd::Snapshot { dir, op } => {
            let dir = dir.map(|d| absolute(&d)).transpose()?;
            run_op(c, EtcdOpKind::Snapshot { dir }, op).await
        }
        EtcdCmd::Backups { json } => {
            // fild lists its folder and, on three hosts ([cluster]), every other host's.
            let hosts = c.backups(false).await?;
            if json && hosts.len() == 1 {
                // One host: the list of its files, as before there were hosts.
                println!("{}", serde_json::to_string_pretty(&hosts[0].files)?);
            } else if json {
                println!("{}", serde_json::to_string_pretty(&hosts)?);
            } else {
                print!("{}", fild::render::backups(&hosts));
            }
            let failed = hosts.iter().any(|h| h.error.is_some());
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        EtcdCmd::Restore {
            snapshot,
            force,
            op,
        } => {
            let snapshot = absolute(&snapshot)?;
            let req = EtcdOpRequest {
                kind: EtcdOpKind::Restore { snapshot },
                dry_run: op.dry_run,
                yes: op.yes,
                confirm: None,
                force,
            };
            Ok(ExitCode::from(follow::run(c, req).await?))
        }
        EtcdCmd::Defrag { op } => run_op(c, EtcdOpKind::Defrag, op).await,
        EtcdCmd::Upgrade {
            back: Some(program),
            op,
            ..
        } => run_op(c, EtcdOpKind::UpgradeBack { program }, op).await,
        EtcdCmd::Upgrade {
            to,
            allow_known_bad,
            back: None,
            op,
        } => {
            let to = absolute(&to.ok_or_else(|| anyhow::anyhow!("--to BINARY is required"))?)?;
            let kind = EtcdOpKind::Upgrade {
                to,
                allow_known_bad,
                step: None,
            };
            run_op(c, kind, op).await
        }
        EtcdCmd::Ops {
            follow: Some(id), ..
        } => Ok(ExitCode::from(follow::reattach(c, id).await?)),
        EtcdCmd::Ops { follow: None, json } => {
            let ops = c.ops().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&ops)?);
            } else {
                print!("{}", follow::table(&ops));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ask fild to run an operation and follow it until it ends.
async fn run_op(c: &Client, kind: EtcdOpKind, op: OpFlags) -> anyhow::Result<ExitCode> {
    let req = EtcdOpRequest {
        kind,
        dry_run: op.dry_run,
        yes: op.yes,
        confirm: None,
        force: false,
    };
    Ok(ExitCode::from(follow::run(c, req).await?))
}

/// A path as fild must read it: fild's working directory is not filc's.
fn absolute(p: &std::path::Path) -> anyhow::Result<String> {
    Ok(std::path::absolute(p)
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        .display()
        .to_string())
}
