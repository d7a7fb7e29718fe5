//! Membership changes, one member at a time, each behind the same guards: replace (recovery
//! mode two), add, remove, move (recovery mode one), rescue (quorum lost for good).
//!
//! Every operation runs inside fild (see [`super::ops`]): it reads the members' configuration
//! (fild's members view), asks the cluster itself (member list, `/health` of each voting
//! member), drives the programs through [`super::programs::Programs`] (past the quorum
//! guard: these steps do their own quorum checks), and records what it learns about a member
//! (`cluster_state=existing`, the cluster it joined, a new peer URL, the gateway's endpoints,
//! a rescue's one-time flag) in the runtime layer ([`super::runtime`]): the settings files
//! that ship with the kit are never written.
//!
//! Rules they all follow:
//! - Guards first: a refusal changes nothing (no snapshot, no stop, no membership change).
//! - The plan is said before the first change, each step with its quorum arithmetic; a dry
//!   run stops there, and so does a destructive plan without a confirmation ([`super::gate`]).
//! - A snapshot is taken from a healthy member before the first change.
//! - Data is never deleted: a data dir that must go is renamed `<data_dir>.<UTC timestamp>`.
//! - Every step is idempotent: an interrupted operation run again looks at the cluster and
//!   the data dir, skips what is done, and finishes the job.
//! - New members join as learners and are promoted once etcd says they caught up.
//!
//! Each operation has its file, and each runs the same way: observe (fild's members view,
//! the cluster's member list, the other voters' health), plan ([`plan`]: a pure function that
//! returns a refusal or the ordered steps, with a unit test per decision), execute ([`exec`]:
//! the steps one by one, each said as it runs). Under them: etcd's membership calls
//! ([`member_api`]), the connection ([`super::conn`]), the quorum arithmetic
//! ([`super::quorum`]), data-dir moves ([`super::datadir`]) and the programs interface
//! ([`super::programs`]), which the control client and the supervisor's `Handle` both serve.
//!
//! After `remove`, the member's runtime state keeps `cluster_state=existing`; bringing it back goes
//! through `filc etcd add`, which moves any data dir aside and joins it afresh.

mod add_remove;
mod describe;
mod exec;
mod gateway;
mod member_api;
mod move_peer;
mod plan;
mod replace;
mod rescue;

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::conn::{Mem, Tls};
use super::private::Folder;
use super::{Say, runtime, snapshot};
use crate::api::{EtcdMember, EtcdMembers};

pub use add_remove::{add, remove};
pub use gateway::add_missing as add_missing_gateway_endpoints;
pub use move_peer::move_peer;
pub use replace::replace;
pub use rescue::{Allow, rescue};

/// How long `member add` / `remove` / `update` are retried while etcd says "not ready".
const CHANGE_BUDGET: Duration = Duration::from_secs(60);
/// How long a learner may take to catch up before it is promoted.
const PROMOTE_BUDGET: Duration = Duration::from_secs(120);
const FORCE_NEW_CLUSTER: &str = "--force-new-cluster";

/// Prefix an error with the request, keeping its whole chain (filc prints only the top).
pub(crate) trait Within<T> {
    fn within(self, what: &str) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> Within<T> for Result<T, E> {
    /// A halt at the gate stays what it is: the caller tells it from a failure.
    fn within(self, what: &str) -> anyhow::Result<T> {
        self.map_err(|e| {
            let e = e.into();
            if e.is::<crate::etcd::gate::Halt>() {
                e
            } else {
                anyhow!("{what}: {e:#}")
            }
        })
    }
}

pub(crate) async fn take_snapshot(
    say: Say<'_>,
    local: &EtcdMembers,
    from: &[&Mem],
) -> anyhow::Result<()> {
    let mut last = String::from("no healthy member to take it from");
    for m in from {
        let Some(url) = m.client_urls.first() else {
            continue;
        };
        match take_snapshot_from(say, local, url, &m.name).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("snapshot: {last}. Nothing changed.")
}

pub(crate) async fn take_snapshot_from(
    say: Say<'_>,
    local: &EtcdMembers,
    url: &str,
    name: &str,
) -> anyhow::Result<()> {
    if local.backup_dir.is_empty() {
        bail!("snapshot: fild has no [etcd] backup_dir");
    }
    say(&format!(
        "snapshot from {name} ({url}) into {}",
        local.backup_dir
    ));
    let dir = Path::new(&local.backup_dir);
    let taken = snapshot::take(url, &Tls::of(local), name, dir, Folder::Backup)
        .await
        .map_err(|e| anyhow!("snapshot: {e}"))?;
    if let Some(n) = &taken.notice {
        say(n);
    }
    say(&format!("snapshot: {}", taken.path.display()));
    Ok(())
}

/// Record learned settings in a member's (or the gateway's) runtime layer, and say so.
pub(crate) fn learn(
    say: Say<'_>,
    settings_file: &str,
    runtime_file: &str,
    changes: &[(&str, &str)],
    by: &str,
) -> anyhow::Result<()> {
    let desc: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(&format!("runtime {runtime_file}: {}", desc.join(", ")));
    runtime::learn_in(settings_file, runtime_file, changes, by)
        .map(|_| ())
        .map_err(|e| anyhow!(e))
}

/// Drop a member's next-start flags unused.
pub(crate) fn clear_once(me: &EtcdMember) -> anyhow::Result<()> {
    runtime::clear_once(Path::new(&me.runtime_file), Path::new(&me.env_file))
        .map(|_| ())
        .map_err(|e| anyhow!(e))
}
