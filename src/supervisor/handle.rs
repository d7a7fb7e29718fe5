//! The way into the loop: the [`Request`]s it serves, their errors ([`ApiError`]), the
//! [`Handle`] everything outside the loop holds, the read-only [`ProgramsView`], and the types
//! of the two hooks the daemon sets ([`ReloadGuard`], [`StopOrder`]).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::spawn;
use crate::api::{ActionReply, ProcessInfo, ProcessState, ReloadReply, SignalRequest};
use crate::config::{self, Config, Env, ProgramSpec};

/// What kind of failure a request met; the control server maps each to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (a bad signal, an invalid configuration, a bad stream).
    BadRequest,
    /// It names something that does not exist.
    NotFound,
    /// It is refused as it stands (the quorum guard); `force` may override.
    Refused,
    /// fild cannot take it now (shutting down).
    Unavailable,
    /// Something failed inside fild (a log file could not be read).
    Internal,
}

/// An error answer to a request: its kind and a message for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub error: String,
    pub details: Vec<String>,
}

impl ApiError {
    /// The answer to a request that comes while fild shuts down.
    pub fn shutting_down() -> ApiError {
        ApiError::new(ErrorKind::Unavailable, "fild is shutting down")
    }

    pub fn new(kind: ErrorKind, error: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            error: error.into(),
            details: Vec::new(),
        }
    }
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// The operations a person can ask for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOp {
    Start,
    Stop,
    Restart,
}

impl UserOp {
    /// The verb as the API's routes and the messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            UserOp::Start => "start",
            UserOp::Stop => "stop",
            UserOp::Restart => "restart",
        }
    }
}

/// A request to the loop.
pub enum Request {
    Status {
        names: Vec<String>,
        /// Read CPU and RSS from /proc (one file per process); false leaves them 0.
        stats: bool,
        reply: Reply<Vec<ProcessInfo>>,
    },
    Action {
        op: UserOp,
        names: Vec<String>,
        reply: Reply<ActionReply>,
    },
    Signal {
        req: SignalRequest,
        reply: Reply<ActionReply>,
    },
    Reload {
        /// Past the reload guard (quorum): `filc reload --force`.
        force: bool,
        reply: Reply<ReloadReply>,
    },
    Shutdown {
        reply: Reply<()>,
    },
    /// Where a process's stdout or stderr log is.
    LogFile {
        name: String,
        stream: String,
        reply: Reply<PathBuf>,
    },
    /// A watched file of a program changed (from the notify watcher's thread).
    FileChanged {
        name: String,
    },
    /// A configuration read off the loop (for a reload request, or SIGHUP when `reply` is
    /// `None`), to apply now.
    Loaded {
        result: Box<Result<Config, crate::config::ConfigErrors>>,
        /// Its `user=` names, looked up on the blocking pool too.
        users: spawn::Users,
        reply: Option<Reply<ReloadReply>>,
        force: bool,
    },
    /// The reload guard's answer about a loaded configuration, checked against the table as
    /// it was after the `applied`-th apply.
    Guarded {
        config: Box<Config>,
        users: spawn::Users,
        reply: Option<Reply<ReloadReply>>,
        verdict: Result<ReloadVerdict, String>,
        applied: u64,
    },
    /// Let each of `names` take the applied configuration's settings (those a reload held
    /// back, [`ReloadVerdict::hold`]) and restart it: one step of a rolling reload.
    Apply {
        names: Vec<String>,
        reply: Reply<ActionReply>,
    },
    /// A read-only view of the programs, for modules that reason about them (etcd).
    Programs {
        reply: Reply<ProgramsView>,
    },
    /// The programs a shutdown stops after the others (the stop-order hook's answer).
    ShutdownOrder {
        last: Vec<String>,
    },
}

/// What a reload would stop or restart among the running programs: those it removes and
/// those it changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStops {
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Called once a reload is applied: starts what brings the held programs over, and gives
/// its ID (an etcd operation), or why it could not start.
pub type ThenStart = Box<dyn FnOnce() -> Result<u64, String> + Send>;

/// The reload guard's yes: the reload goes on, except that the changed programs in `hold`
/// keep running on their old settings (as if unchanged) until `then`'s operation restarts
/// them one at a time through [`Request::Apply`].
#[derive(Default)]
pub struct ReloadVerdict {
    pub hold: Vec<String>,
    pub then: Option<ThenStart>,
}

/// The reload guard: given the running programs a reload would stop or restart, refuse (with
/// the reason) or let it go on, perhaps holding some back (see [`ReloadVerdict`]). The
/// daemon sets the etcd quorum guard here ([`Supervisor::set_reload_guard`]); the
/// supervisor knows nothing of etcd.
pub type ReloadGuard = Arc<
    dyn Fn(
            Handle,
            ReloadStops,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<ReloadVerdict, String>> + Send>,
        > + Send
        + Sync,
>;

/// The stop-order hook: at shutdown, the programs to stop after the others. The daemon sets
/// it to the etcd leader (stopping it last spares the leader a leadership transfer to
/// members that are exiting, which stalls each for seconds).
pub type StopOrder = Arc<
    dyn Fn(Handle) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<String>> + Send>>
        + Send
        + Sync,
>;

/// One program as [`Request::Programs`] shows it.
#[derive(Debug, Clone)]
pub struct ProgramView {
    pub spec: Arc<ProgramSpec>,
    pub state: ProcessState,
    pub pid: Option<i32>,
}

/// Every program, fild's environment and the `[etcd]` settings, as of one moment.
#[derive(Debug, Clone)]
pub struct ProgramsView {
    pub programs: Vec<ProgramView>,
    pub env: Env,
    pub etcd: config::EtcdSettings,
    /// `[cluster]`: the other hosts' filds.
    pub cluster: Option<config::ClusterSettings>,
}

/// The way into the loop, for the control server (and anything else that is not the loop).
#[derive(Clone)]
pub struct Handle {
    pub(super) tx: mpsc::UnboundedSender<Request>,
    pub(super) applied: tokio::sync::watch::Receiver<u64>,
}

impl Handle {
    /// Changes each time a configuration is applied (start-up, reload, SIGHUP): tasks that
    /// have nothing to do under the current configuration wait on it instead of polling.
    pub fn config_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Send a request built around a reply channel and wait for the answer.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .map_err(|_| ApiError::shutting_down())?;
        rx.await.map_err(|_| ApiError::shutting_down())?
    }
}
