//! The control protocol: every type that crosses the socket, in one place.
//!
//! fild serves HTTP/1.1 + JSON on its Unix socket (and on `[inet_http_server]` when configured);
//! `filc` is one client, `curl --unix-socket` another. This module is a leaf: it holds types
//! and route names, no logic, and imports nothing else from the crate.
//!
//! | method | path                                 | body              | reply              |
//! |--------|--------------------------------------|-------------------|--------------------|
//! | GET    | `/v1/version`                        |                   | [`VersionInfo`]    |
//! | GET    | `/v1/processes[?names=a,b][&stats=0]`|                   | `[ProcessInfo]`    |
//! | POST   | `/v1/processes/start`                | [`NamesRequest`]  | [`ActionReply`]    |
//! | POST   | `/v1/processes/stop`                 | [`NamesRequest`]  | [`ActionReply`]    |
//! | POST   | `/v1/processes/restart`              | [`NamesRequest`]  | [`ActionReply`]    |
//! | POST   | `/v1/processes/signal`               | [`SignalRequest`] | [`ActionReply`]    |
//! | POST   | `/v1/reload[?force=1]`               |                   | [`ReloadReply`]    |
//! | GET    | `/v1/etcd/members`                   |                   | [`EtcdMembers`]    |
//! | POST   | `/v1/etcd/ops`                       | [`EtcdOpRequest`] | [`EtcdOp`]         |
//! | GET    | `/v1/etcd/ops`                       |                   | `[EtcdOp]`         |
//! | GET    | `/v1/etcd/ops/{id}?from=N&wait=S`    |                   | [`EtcdOp`]         |
//! | GET    | `/v1/etcd/positions`                 |                   | [`EtcdPositions`]  |
//! | GET    | `/v1/etcd/backups[?here=1]`          |                   | `[HostBackups]`    |
//! | GET    | `/v1/etcd/backups/{file}?offset=N&max=M` |               | the file's bytes   |
//! | POST   | `/v1/shutdown`                       |                   | [`Ack`]            |
//! | GET    | `/v1/logs/{name}/{stdout|stderr}?offset=N&max=M` |       | [`LogChunk`]       |
//! | GET    | `/v1/etcd/view`                      |                   | `EtcdFigures|null` |
//! | GET    | `/metrics`                           |                   | Prometheus text    |
//! | GET    | `/`                                  |                   | the status page    |
//!
//! `GET /metrics` (outside `/v1`, where Prometheus looks) answers in the Prometheus text
//! exposition format 0.0.4 (`text/plain; version=0.0.4`): the programs as `/v1/processes`
//! sees them, fild itself, and the etcd figures of [`EtcdFigures`], fild's own periodic view
//! of the cluster (never asked while the scrape waits).
//!
//! `GET /v1/etcd/view` is the same periodic view as JSON (`null` without etcd members), and
//! `GET /` the status page (`control::page`), which reads and acts through these routes.
//!
//! `POST /v1/etcd/ops` starts an operation inside fild (409 while another runs) and answers
//! at once; `GET /v1/etcd/ops/{id}` returns its lines from `from` on, waiting up to `wait`
//! seconds (at most 30) for a new one or its end: that is how `filc` streams an operation
//! and re-attaches to it. The list carries no lines, only their count.
//!
//! `GET /v1/etcd/backups` lists this host's snapshots, then every other `[cluster]` host's
//! (asked with `here=1`, which lists only the answering host's). `GET /v1/etcd/backups/{file}`
//! returns up to `max` bytes (at most 4 MiB) of one of them from `offset`, as
//! `application/octet-stream` with the file's size in `x-fild-size`: how another host's fild
//! copies a scheduled snapshot.
//!
//! `stats=0` skips reading CPU and RSS from /proc (they are then 0): the plain status table
//! does not show them. Errors are 4xx/5xx with an [`ErrorReply`] body.

use serde::{Deserialize, Serialize};

/// The path prefix of this protocol version.
pub const PREFIX: &str = "/v1";

/// The routes, as clients write them (the table above). The server matches the same paths.
pub mod routes {
    pub const VERSION: &str = "/v1/version";
    pub const PROCESSES: &str = "/v1/processes";
    pub const SIGNAL: &str = "/v1/processes/signal";
    pub const RELOAD: &str = "/v1/reload";
    pub const ETCD_MEMBERS: &str = "/v1/etcd/members";
    pub const ETCD_OPS: &str = "/v1/etcd/ops";
    pub const ETCD_POSITIONS: &str = "/v1/etcd/positions";
    pub const ETCD_BACKUPS: &str = "/v1/etcd/backups";
    pub const ETCD_VIEW: &str = "/v1/etcd/view";
    pub const SHUTDOWN: &str = "/v1/shutdown";
    pub const LOGS: &str = "/v1/logs";
    /// Outside the versioned prefix: where Prometheus scrapes by default.
    pub const METRICS: &str = "/metrics";
    /// The status page, for a browser.
    pub const PAGE: &str = "/";

    /// `start`, `stop` or `restart`.
    pub fn action(op: &str) -> String {
        format!("{PROCESSES}/{op}")
    }
}

/// Largest request body the server reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// supervisord's process states (same names, same meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProcessState {
    Stopped,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
}

impl ProcessState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Stopped => "STOPPED",
            ProcessState::Starting => "STARTING",
            ProcessState::Running => "RUNNING",
            ProcessState::Backoff => "BACKOFF",
            ProcessState::Stopping => "STOPPING",
            ProcessState::Exited => "EXITED",
            ProcessState::Fatal => "FATAL",
        }
    }
}

/// One row of `filc status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub name: String,
    pub group: String,
    pub state: ProcessState,
    /// 0 when not running.
    pub pid: u32,
    pub uptime_secs: u64,
    /// Automatic restarts since fild started managing it.
    pub restarts: u64,
    /// Exit code of the last exit, if it exited normally.
    pub exit_status: Option<i32>,
    /// Signal that ended the last run, if it was killed.
    pub exit_signal: Option<i32>,
    /// CPU time over the process's lifetime, as a percentage of one core.
    pub cpu_percent: f64,
    /// CPU time (user and system) the running process has used, in seconds.
    #[serde(default)]
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    /// Unix time of the last start and stop (0 if never).
    pub start_unix: u64,
    pub stop_unix: u64,
    /// supd's human description: `pid N, uptime H:MM:SS`, or why it is not running.
    pub description: String,
    pub stdout_logfile: Option<String>,
    pub stderr_logfile: Option<String>,
    /// The program's cgroup (its directory), when fild contains programs by cgroup v2;
    /// `None` under the process-group fallback.
    #[serde(default)]
    pub cgroup: Option<String>,
}

/// Names as typed by the user: `name`, `group:name`, `group:*` or `all`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamesRequest {
    pub names: Vec<String>,
    /// Skip guards (reserved for the etcd quorum guard).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// `HUP`, `SIGHUP` or a number.
    pub signal: String,
    pub names: Vec<String>,
    /// Past the quorum guard: a signal to etcd members is guarded like a stop (etcd ends on
    /// most signals it does not handle).
    #[serde(default)]
    pub force: bool,
}

/// The outcome for one process of a start/stop/restart/signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    pub name: String,
    pub ok: bool,
    pub state: ProcessState,
    /// `started`, `stopped`, `already started`, `abnormal termination (BACKOFF)`, ...
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReply {
    pub results: Vec<ActionResult>,
    /// A restart of two or more etcd members rolls through them as an etcd operation: its
    /// ID (follow it at `/v1/etcd/ops/{id}`); `results` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadReply {
    pub added: Vec<String>,
    /// Every changed program, the rolled ones too.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub warnings: Vec<String>,
    /// Changed programs left on their old settings for now and brought over one at a time by
    /// operation `op` (running etcd members: a rolling reload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolling: Vec<String>,
    /// The rolling reload's operation (follow it at `/v1/etcd/ops/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<u64>,
    /// Why the rolling reload could not start (`rolling` then keep their old settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: String,
    pub api: String,
    pub pid: u32,
    /// Random, new each time fild starts: how a fild tells its own entry among `[cluster]
    /// hosts` from another host's.
    #[serde(default)]
    pub instance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

/// A piece of a log file. `data` is the bytes read, decoded lossily as UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogChunk {
    pub file: String,
    /// Where `data` starts in the live file.
    pub offset: u64,
    /// The live file's size when read.
    pub size: u64,
    /// How many bytes of the file `data` holds (it is decoded lossily, so its own length
    /// can differ): poll again from `offset + read`.
    #[serde(default)]
    pub read: u64,
    pub data: String,
}

/// Body of every error reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    /// Further lines: one per configuration error, for instance.
    #[serde(default)]
    pub details: Vec<String>,
}

/// An etcd member fild supervises: its program and its evaluated settings (the settings
/// file named by the program's `FILD_ETCD_MEMBER`, with the runtime layer over it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtcdMember {
    pub program: String,
    pub state: ProcessState,
    pub pid: u32,
    /// The settings file (the kit's `apps/etcd/etcd-N.env`); never written by fild or filc.
    pub env_file: String,
    /// The runtime layer over it: what operations learned (`var/etcd/runtime/etcd-N.json`).
    #[serde(default)]
    pub runtime_file: String,
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: String,
    pub initial_cluster: String,
    /// The settings file's own `initial_cluster`, without the runtime layer: the cluster
    /// the operator configured. A value learned when the member joined (the list of the day,
    /// perhaps short of a member re-added later) only starts it; a restore rebuilds, and
    /// the names check compares, what this says.
    #[serde(default)]
    pub configured_initial_cluster: String,
    pub cluster_token: String,
    pub cluster_state: String,
    /// The client URLs of the cluster's members, as the settings file's
    /// `cluster_client_urls` names them: where operations and status look for the cluster
    /// when this member does not answer (its host may run no gateway).
    #[serde(default)]
    pub cluster_client_urls: Vec<String>,
    /// The files fild's own client uses when the member's client URL is `https://` (the env
    /// file's `client_trusted_ca_file`, `client_cert_file`, `client_key_file`); empty: none.
    #[serde(default)]
    pub client_tls: EtcdClientTls,
    /// The full argv the member starts with (what `fild --exec-etcd` execs), without
    /// `next_start_flags`.
    #[serde(default)]
    pub argv: Vec<String>,
    /// Flags for the next start only (a rescue's `--force-new-cluster`), used up by it.
    #[serde(default)]
    pub next_start_flags: Vec<String>,
    /// The runtime layer's values.
    #[serde(default)]
    pub learned: Vec<EtcdLearned>,
    /// The version of the member's etcd binary (`argv[0]`, the settings' `etcd_bin`), as its
    /// `--version` says; empty: unknown (see `etcd_version_problem`).
    #[serde(default)]
    pub etcd_version: String,
    /// Why the binary's version is unknown.
    #[serde(default)]
    pub etcd_version_problem: String,
    /// The member's etcdctl and etcdutl (the settings' `etcdctl_bin` / `etcdutl_bin`, else
    /// beside its etcd binary, else on PATH); empty: none found (etcd 3.4 has no etcdutl).
    #[serde(default)]
    pub etcdctl_bin: String,
    #[serde(default)]
    pub etcdutl_bin: String,
}

impl EtcdMember {
    /// The cluster the settings file configures ([`Self::configured_initial_cluster`]), or
    /// the effective `initial_cluster` where an older fild reported none.
    pub fn configured_cluster(&self) -> &str {
        if self.configured_initial_cluster.is_empty() {
            &self.initial_cluster
        } else {
            &self.configured_initial_cluster
        }
    }
}

/// A value an etcd operation learned, layered over the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdLearned {
    pub key: String,
    pub value: String,
    /// The operation that learned it, and when (UTC).
    pub by: String,
    pub at: String,
    /// False once the settings file's line for the key was edited by hand since: the file wins.
    pub applies: bool,
}

/// The CA that signed the members' certificates, and the client certificate and key fild's
/// etcd client presents (members started with a CA require one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdClientTls {
    #[serde(default)]
    pub trusted_ca_file: String,
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

impl EtcdClientTls {
    pub fn is_empty(&self) -> bool {
        self.trusted_ca_file.is_empty() && self.cert_file.is_empty() && self.key_file.is_empty()
    }
}

/// The etcd gateway fild supervises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtcdGateway {
    pub program: String,
    pub state: ProcessState,
    pub env_file: String,
    #[serde(default)]
    pub runtime_file: String,
    pub listen_addr: String,
    /// `host:port` of each member's client URL.
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub learned: Vec<EtcdLearned>,
}

/// `GET /v1/etcd/members`: the members and gateway found in the configuration, and env
/// files that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EtcdMembers {
    pub members: Vec<EtcdMember>,
    pub gateway: Option<EtcdGateway>,
    pub problems: Vec<String>,
    /// `[etcd] backup_dir`: where snapshots go by default.
    pub backup_dir: String,
}

/// An etcd operation fild runs for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum EtcdOpKind {
    Replace {
        program: String,
    },
    Add {
        program: String,
    },
    Remove {
        program: String,
    },
    Move {
        program: String,
        peer_url: String,
    },
    Rescue {
        program: String,
        /// Members that answer nothing, taken as down (`--assume-down NAME`, repeatable).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        assume_down: Vec<String>,
        /// Go on with a survivor whose data is behind another member's (`--allow-behind`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_behind: bool,
    },
    Snapshot {
        #[serde(default)]
        dir: Option<String>,
    },
    Restore {
        snapshot: String,
    },
    Defrag,
    /// `filc restart NAMES` naming two or more members: one member at a time, leader last.
    /// With `reload`, a reload's changed members: each takes its new settings as it restarts.
    Rolling {
        names: Vec<String>,
        #[serde(default)]
        force: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
    /// `filc etcd upgrade --to BINARY`: every member onto the etcd binary `to` (an absolute
    /// path, the same on every host), one at a time, followers first, the leader last.
    Upgrade {
        to: String,
        /// Upgrading to a release of the known-bad table is consented to.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_known_bad: bool,
        /// A step of an upgrade another host's fild drives: only this host's member of that
        /// etcd name, under the cluster-wide lock that fild holds (`step.lock`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<UpgradeStep>,
    },
    /// `filc etcd upgrade --back NAME`: the member runs its settings file's etcd binary again,
    /// on fresh data from the cluster (a replace), never on data a newer binary wrote.
    UpgradeBack {
        program: String,
    },
}

/// One member's step of an upgrade driven from another host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeStep {
    /// The member's etcd name.
    pub member: String,
    /// The version `to` must report on this host too.
    pub version: String,
    /// The driving operation, as the cluster-wide lock names it: `HOST pid PID id ID`.
    pub lock: String,
}

impl EtcdOpKind {
    /// As typed after `filc etcd`: `replace etcd-2`, `move etcd-1 --peer-url URL`.
    pub fn title(&self) -> String {
        match self {
            EtcdOpKind::Replace { program } => format!("replace {program}"),
            EtcdOpKind::Add { program } => format!("add {program}"),
            EtcdOpKind::Remove { program } => format!("remove {program}"),
            EtcdOpKind::Move { program, peer_url } => {
                format!("move {program} --peer-url {peer_url}")
            }
            EtcdOpKind::Rescue {
                program,
                assume_down,
                allow_behind,
            } => {
                let mut t = format!("rescue {program}");
                for n in assume_down {
                    t.push_str(&format!(" --assume-down {n}"));
                }
                if *allow_behind {
                    t.push_str(" --allow-behind");
                }
                t
            }
            EtcdOpKind::Snapshot { dir: None } => "snapshot".to_string(),
            EtcdOpKind::Snapshot { dir: Some(d) } => format!("snapshot {d}"),
            EtcdOpKind::Restore { snapshot } => format!("restore {snapshot}"),
            EtcdOpKind::Defrag => "defrag".to_string(),
            EtcdOpKind::Rolling {
                names,
                reload: true,
                ..
            } => format!("rolling reload of {}", names.join(" ")),
            EtcdOpKind::Rolling { names, .. } => format!("rolling restart of {}", names.join(" ")),
            EtcdOpKind::Upgrade {
                to,
                allow_known_bad,
                step,
            } => {
                let mut t = format!("upgrade --to {to}");
                if *allow_known_bad {
                    t.push_str(" --allow-known-bad");
                }
                if let Some(s) = step {
                    t.push_str(&format!(" (member {}, a step of {})", s.member, s.lock));
                }
                t
            }
            EtcdOpKind::UpgradeBack { program } => format!("upgrade --back {program}"),
        }
    }

    /// The command that runs it again.
    pub fn command(&self) -> String {
        match self {
            EtcdOpKind::Rolling { reload: true, .. } => "filc reload".to_string(),
            EtcdOpKind::Rolling { names, force, .. } => format!(
                "filc restart{} {}",
                if *force { " --force" } else { "" },
                names.join(" ")
            ),
            other => format!("filc etcd {}", other.title()),
        }
    }
}

/// `POST /v1/etcd/ops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdOpRequest {
    pub kind: EtcdOpKind,
    /// Say the plan and stop before the first change.
    #[serde(default)]
    pub dry_run: bool,
    /// The destructive steps of the plan are confirmed (`--yes`).
    #[serde(default)]
    pub yes: bool,
    /// Confirmed at a terminal: go on only if the plan is still the one with this digest.
    #[serde(default)]
    pub confirm: Option<String>,
    /// Over the refusals `--force` may override (restore over a cluster with quorum).
    #[serde(default)]
    pub force: bool,
}

impl EtcdOpRequest {
    /// The command that runs it again, with the flags that change what it may do.
    pub fn command(&self) -> String {
        let mut c = self.kind.command();
        if self.force && !matches!(self.kind, EtcdOpKind::Rolling { .. }) {
            c.push_str(" --force");
        }
        if self.yes && !matches!(self.kind, EtcdOpKind::Rolling { .. }) {
            c.push_str(" --yes");
        }
        c
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtcdOpState {
    Running,
    /// Done: every step carried out.
    Succeeded,
    /// Ended by an error or a refusal (the cluster is as the last step left it).
    Failed,
    /// A dry run: the plan was said, nothing changed.
    Planned,
    /// The plan has a destructive step that was not confirmed: nothing changed.
    Unconfirmed,
    /// fild stopped (or was killed) while it ran; a re-run finishes it.
    Interrupted,
}

impl EtcdOpState {
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdOpState::Running => "running",
            EtcdOpState::Succeeded => "succeeded",
            EtcdOpState::Failed => "failed",
            EtcdOpState::Planned => "planned",
            EtcdOpState::Unconfirmed => "unconfirmed",
            EtcdOpState::Interrupted => "interrupted",
        }
    }
}

/// One line an operation said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdOpLine {
    pub unix_ms: u64,
    pub text: String,
}

/// An operation fild runs or ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdOp {
    pub id: u64,
    /// As typed after `filc etcd`.
    pub title: String,
    pub request: EtcdOpRequest,
    pub state: EtcdOpState,
    pub started_unix: u64,
    #[serde(default)]
    pub ended_unix: Option<u64>,
    /// How many lines it has said in all.
    pub total_lines: usize,
    /// The lines from `from` on (none in the list).
    pub from: usize,
    pub lines: Vec<EtcdOpLine>,
    /// Why it failed, or what confirmation it needs.
    #[serde(default)]
    pub error: Option<String>,
    /// What it produced (a snapshot's path).
    #[serde(default)]
    pub output: Option<String>,
    /// Unconfirmed: the digest of the plan a confirmation must name.
    #[serde(default)]
    pub digest: Option<String>,
    /// Its journal file.
    pub journal: String,
}

/// How far one local member's data goes: `GET /v1/etcd/positions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdPosition {
    pub program: String,
    /// The member's etcd name.
    pub name: String,
    pub state: ProcessState,
    /// The newest revision its data holds (None: it could not be read, see `error`).
    #[serde(default)]
    pub revision: Option<i64>,
    /// Where the revision was read: `status` (the running member) or the stopped member's
    /// database file (`<data_dir>/member/snap/db`).
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /v1/etcd/positions`: this host's members' data positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdPositions {
    /// The answering fild's [`VersionInfo::instance`].
    pub instance: String,
    pub members: Vec<EtcdPosition>,
}

/// One snapshot file in a backup folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: std::path::PathBuf,
    pub size: u64,
    pub modified_unix: u64,
}

/// One host's snapshots (`GET /v1/etcd/backups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBackups {
    /// Its name in `[cluster] hosts` (`this host` without `[cluster]`).
    pub host: String,
    /// The fild that answered: `here` for this one, else its control URL.
    pub url: String,
    pub dir: String,
    #[serde(default)]
    pub files: Vec<BackupFile>,
    /// Why it could not be listed (the folder, or the host did not answer).
    #[serde(default)]
    pub error: Option<String>,
}

/// fild's own periodic view of the etcd cluster, as `GET /metrics` reports it: refreshed by a
/// task beside the loop while etcd members are configured, read by the scrape as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EtcdFigures {
    /// When the cluster was last asked (Unix seconds); 0: not yet.
    pub refreshed_unix: u64,
    pub members: Vec<EtcdMemberFigures>,
    /// `healthy`, `degraded` or `no_quorum` (`filc etcd status`'s verdict); empty: not yet.
    pub verdict: String,
    pub voters: u64,
    pub healthy_voters: u64,
    pub quorum: u64,
    pub backup: BackupFigures,
}

/// One member in [`EtcdFigures`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EtcdMemberFigures {
    /// Its etcd name.
    pub name: String,
    /// The program that runs it on this host, if one does.
    pub program: Option<String>,
    pub healthy: bool,
    pub leader: bool,
    pub learner: bool,
    pub raft_term: u64,
    pub raft_index: u64,
    pub db_size_bytes: u64,
    pub db_in_use_bytes: u64,
    /// Its space quota: what it reports (etcd 3.6), else this host's `--quota-backend-bytes`
    /// for a local member (etcd's 2 GiB default without one); None: unknown.
    pub db_quota_bytes: Option<u64>,
    /// Raised alarms (`NOSPACE`, `CORRUPT`).
    pub alarms: Vec<String>,
    /// The server version it answered; empty: it did not answer.
    pub version: String,
}

/// The backup schedule in [`EtcdFigures`] (`[etcd] backup_*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupFigures {
    /// `[etcd] backup_interval` in seconds (0: scheduled backups are off).
    pub interval_secs: u64,
    /// The last scheduled snapshot written and verified (Unix seconds; 0: none since fild
    /// started).
    pub last_success_unix: u64,
    /// The last scheduled round that took no snapshot (0: none since fild started).
    pub last_failure_unix: u64,
    /// The size of the last scheduled snapshot written.
    pub last_size_bytes: u64,
    /// Snapshot files in the backup folder.
    pub files: u64,
}
