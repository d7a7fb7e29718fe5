//! One operation at a time, cluster-wide: a lock held in etcd itself.
//!
//! fild runs one operation at a time ([`super::ops`]), but that is per fild: on three hosts,
//! `filc etcd replace etcd-1` on host 1 and `filc etcd replace etcd-2` on host 2 would both
//! pass their quorum checks and together take the cluster below quorum. So every operation
//! that changes a cluster with quorum also holds [`KEY`] in etcd while it runs: the key is
//! created in one transaction only if it does not exist, attached to a lease of [`TTL`] that
//! the holder keeps alive. A second operation anywhere finds the key and is refused, naming
//! the holder; a holder whose fild dies (SIGKILL, power loss) stops renewing, and etcd deletes
//! the key when the lease runs out.
//!
//! Operations that run without quorum (rescue, restore of a dead cluster) cannot take it
//! (nothing commits); they rely on the local rule and on asking the other hosts' filds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use super::Say;
use super::conn::{self, Tls};
use crate::api::EtcdOpKind;

/// The key the lock lives at (outside any key an application is likely to use).
pub const KEY: &str = "/fild/lock/operation";
/// The lease: how long the lock outlives a holder that stopped renewing it.
pub const TTL: Duration = Duration::from_secs(10);
/// How often the holder renews it.
const RENEW: Duration = Duration::from_secs(3);

/// Who holds the lock: the value stored at [`KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// As typed after `filc etcd` (`replace etcd-1`).
    pub op: String,
    /// The operation's id in its fild (`filc etcd ops` there).
    pub id: u64,
    /// The host's name.
    pub host: String,
    /// Its fild's pid (hosts made of namespaces share one name).
    pub pid: u32,
    /// When it took the lock, seconds since the epoch.
    pub since_unix: u64,
    /// The machine's boot id and network namespace ([`machine`]): with `pid`, tells a holder
    /// that died on this host (its lease not yet run out) from one elsewhere.
    #[serde(default)]
    pub boot_id: String,
}

impl Holder {
    /// This fild, running operation `id` (`op`), now.
    pub fn here(id: u64, op: String) -> Holder {
        Holder {
            op,
            id,
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into()),
            pid: std::process::id(),
            since_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            boot_id: machine(),
        }
    }

    /// Whether `me` may take this holder's lock over at once, without waiting out its lease:
    /// the holder was a fild on this machine (same boot id and network namespace) that is
    /// gone (killed before its lease ran out), or it is `me`'s own fild with an earlier
    /// operation (a fild runs one at a time, so that one ended without giving the lock back:
    /// the member it was connected to had stopped). A live pid (even reused) is not gone.
    pub fn stale_for(&self, me: &Holder) -> bool {
        if self.boot_id.is_empty() || self.boot_id != me.boot_id || self.pid == 0 {
            return false;
        }
        if self.pid == me.pid {
            return self.id != me.id;
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), None)
            == Err(nix::errno::Errno::ESRCH)
    }

    /// How an upgrade step names the operation that drives it: `HOST pid PID id ID`.
    pub fn tag(&self) -> String {
        format!("{} pid {} id {}", self.host, self.pid, self.id)
    }

    fn since(&self) -> String {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.since_unix))
            .to_string()
    }
}

/// This host, as far as a pid means anything: the boot id, and the network namespace (hosts
/// made of namespaces on one machine share the boot id and the pids, not the namespace).
pub fn machine() -> String {
    let ns = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!("{}/{ns}", crate::supervisor::guard::boot_id())
}

/// How much an operation needs the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It changes a cluster with quorum: it takes the lock, or is refused. Where the cluster
    /// commits nothing (no quorum from here) it goes on without, and its own quorum checks
    /// decide (they refuse every change such a cluster cannot make).
    Required,
    /// It runs without quorum or changes nothing (rescue, restore of a dead cluster, a
    /// snapshot, a dry run): no lock.
    None,
}

/// What `kind` needs. `force` is the request's: a forced restore may land on a live cluster.
pub fn need(kind: &EtcdOpKind, dry_run: bool, force: bool) -> Need {
    if dry_run {
        return Need::None;
    }
    match kind {
        EtcdOpKind::Replace { .. }
        | EtcdOpKind::Add { .. }
        | EtcdOpKind::Remove { .. }
        | EtcdOpKind::Move { .. }
        | EtcdOpKind::Defrag
        | EtcdOpKind::Rolling { .. }
        | EtcdOpKind::UpgradeBack { .. }
        | EtcdOpKind::Upgrade { step: None, .. } => Need::Required,
        // A step of an upgrade another host drives: that host holds the lock (the step
        // checks it does, `Holder::tag`).
        EtcdOpKind::Upgrade { step: Some(_), .. } => Need::None,
        EtcdOpKind::Restore { .. } if force => Need::Required,
        EtcdOpKind::Restore { .. } | EtcdOpKind::Rescue { .. } | EtcdOpKind::Snapshot { .. } => {
            Need::None
        }
    }
}

/// The refusal a second operation gets.
pub fn refusal(holder: &Holder, wanted: &str) -> String {
    format!(
        "{wanted} refused: operation `{}` (id {}) from host {} (fild pid {}) since {} holds the cluster-wide lock ({KEY} in etcd); one operation at a time keeps the cluster within quorum. Wait for it to end (`filc etcd ops` on {}), then run this again; if that fild died, its lock ends with its lease within {} s",
        holder.op,
        holder.id,
        holder.host,
        holder.pid,
        holder.since(),
        holder.host,
        TTL.as_secs()
    )
}

/// What the value at [`KEY`] says, for the refusal (a value fild did not write still names
/// the key, so the person can look).
fn read_holder(bytes: &[u8]) -> Holder {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Holder {
        op: format!("unknown ({})", String::from_utf8_lossy(bytes)),
        id: 0,
        host: "?".into(),
        pid: 0,
        since_unix: 0,
        boot_id: String::new(),
    })
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another operation holds it.
    #[error("held by operation `{}` from host {}", .0.op, .0.host)]
    Held(Holder),
    /// The cluster committed nothing (no quorum from here, or no member answered).
    #[error("{0}")]
    Unreachable(String),
}

/// The lock, held. Dropping it stops the renewals (the lease then runs out); [`Held::release`]
/// deletes it at once.
pub struct Held {
    client: etcd_client::Client,
    lease: i64,
    /// Where to give it back if `client`'s member has stopped meanwhile (the operation may
    /// have restarted it).
    urls: Vec<String>,
    tls: Tls,
    /// Dropped (or sent) to end the renewing thread.
    _stop: std::sync::mpsc::Sender<()>,
}

impl Held {
    /// Give the lock back (revoking the lease deletes the key), through the member it was
    /// taken on or, when that one has stopped meanwhile, any other that answers.
    pub async fn release(mut self) {
        let Err(first) = self.client.lease_revoke(self.lease).await else {
            return;
        };
        let again = match conn::connect_any(&self.urls, &self.tls).await {
            Ok((mut c, _)) => c.lease_revoke(self.lease).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = again {
            tracing::warn!(
                "Cannot give back the cluster-wide lock ({first}; {e}); it ends with its lease within {} s.",
                TTL.as_secs()
            );
        }
    }
}

/// Take the lock for `holder` through the first of `urls` that answers.
/// A lock whose holder died on this machine is taken over at once (deleted only if it is
/// still the value read), so a re-run after fild was killed need not wait out the lease.
pub async fn acquire(urls: &[String], tls: &Tls, holder: &Holder) -> Result<Held, LockError> {
    let value = serde_json::to_vec(holder).expect("a Holder serializes");
    for attempt in 0..2 {
        match hold(KEY, value.clone(), urls, tls).await {
            Ok(held) => return Ok(held),
            Err(HoldError::Held(v, rev)) => {
                let h = read_holder(&v);
                if attempt == 0 && h.stale_for(holder) {
                    tracing::warn!(
                        "The cluster-wide lock's holder, operation {} ({}) of fild pid {} on this machine, has ended; taking the lock over.",
                        h.id,
                        h.op,
                        h.pid
                    );
                    delete_if(KEY, rev, urls, tls)
                        .await
                        .map_err(LockError::Unreachable)?;
                    continue;
                }
                return Err(LockError::Held(h));
            }
            Err(HoldError::Unreachable(why)) => return Err(LockError::Unreachable(why)),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// Who holds the lock now (None: nobody), asked through the first of `urls` that answers.
pub async fn current(urls: &[String], tls: &Tls) -> Result<Option<Holder>, String> {
    let (mut c, _) = conn::connect_any(urls, tls).await?;
    let r = c
        .get(KEY, None)
        .await
        .map_err(|e| format!("get {KEY}: {e}"))?;
    Ok(r.kvs().first().map(|kv| read_holder(kv.value())))
}

/// Delete `key` if it is still at modification revision `rev`.
async fn delete_if(key: &str, rev: i64, urls: &[String], tls: &Tls) -> Result<(), String> {
    let (mut c, _) = conn::connect_any(urls, tls).await?;
    let txn = Txn::new()
        .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::delete(key, None)]);
    c.txn(txn)
        .await
        .map(|_| ())
        .map_err(|e| format!("delete {key}: {e}"))
}

/// Why [`hold`] did not create its key.
#[derive(Debug)]
pub(crate) enum HoldError {
    /// The key exists: its value and modification revision.
    Held(Vec<u8>, i64),
    /// The cluster committed nothing.
    Unreachable(String),
}

/// Create `key` with `value` only if it is absent, on a lease of [`TTL`] renewed until the
/// [`Held`] is released or dropped: the one way fild holds a key in etcd for as long as it
/// lives (this lock, the scheduled backup's turn).
pub(crate) async fn hold(
    key: &str,
    value: Vec<u8>,
    urls: &[String],
    tls: &Tls,
) -> Result<Held, HoldError> {
    let (mut client, _) = conn::connect_any(urls, tls)
        .await
        .map_err(HoldError::Unreachable)?;
    let lease = client
        .lease_grant(TTL.as_secs() as i64, None)
        .await
        .map_err(|e| HoldError::Unreachable(format!("lease grant: {e}")))?
        .id();
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key, None)]);
    let resp = match client.txn(txn).await {
        Ok(r) => r,
        Err(e) => {
            let _ = client.lease_revoke(lease).await;
            return Err(HoldError::Unreachable(format!("transaction on {key}: {e}")));
        }
    };
    if !resp.succeeded() {
        let _ = client.lease_revoke(lease).await;
        let held = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .first()
                .map(|kv| (kv.value().to_vec(), kv.mod_revision())),
            _ => None,
        });
        let (v, rev) = held.unwrap_or_default();
        return Err(HoldError::Held(v, rev));
    }
    let (stop, stopped) = std::sync::mpsc::channel();
    let (urls, tls) = (urls.to_vec(), tls.clone());
    let (renew_urls, renew_tls) = (urls.clone(), tls.clone());
    // Its own thread and runtime: an operation may hold the operations' thread for seconds
    // (a data-dir copy), which must not let the lease run out.
    let spawned = std::thread::Builder::new()
        .name("etcd-lock".into())
        .spawn(move || renew(&renew_urls, &renew_tls, lease, &stopped));
    if let Err(e) = spawned {
        let _ = client.lease_revoke(lease).await;
        return Err(HoldError::Unreachable(format!(
            "cannot start the thread that renews the lease: {e}"
        )));
    }
    Ok(Held {
        client,
        lease,
        urls,
        tls,
        _stop: stop,
    })
}

/// Keep the lease alive until `stopped` says so (or its sender is dropped). A lease that
/// cannot be renewed is logged and tried again; the operation goes on (stopping it halfway
/// would leave more to repair than finishing it).
fn renew(urls: &[String], tls: &Tls, lease: i64, stopped: &std::sync::mpsc::Receiver<()>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::warn!(
            "Cannot renew the cluster-wide lock (no runtime); it ends within {} s.",
            TTL.as_secs()
        );
        return;
    };
    let mut keeper = None;
    loop {
        match stopped.recv_timeout(RENEW) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let ok = rt.block_on(async {
            if keeper.is_none() {
                let (mut c, _) = conn::connect_any(urls, tls).await.ok()?;
                keeper = Some(c.lease_keep_alive(lease).await.ok()?);
            }
            let (k, s) = keeper.as_mut()?;
            k.keep_alive().await.ok()?;
            let r = tokio::time::timeout(conn::TIMEOUT, s.message())
                .await
                .ok()?
                .ok()??;
            (r.ttl() > 0).then_some(())
        });
        if ok.is_none() {
            keeper = None;
            tracing::warn!(
                "The cluster-wide lock's lease was not renewed; trying again (another operation may start once it ends)."
            );
        }
    }
}

/// Take the lock as `need` says, saying what happened: `Ok(Some)` held, `Ok(None)` not
/// needed or not to be had (said), `Err` the refusal.
pub async fn take(
    need: Need,
    urls: &[String],
    tls: &Tls,
    holder: &Holder,
    say: Say<'_>,
) -> anyhow::Result<Option<Held>> {
    if need == Need::None {
        return Ok(None);
    }
    match acquire(urls, tls, holder).await {
        Ok(held) => {
            say(&format!(
                "took the cluster-wide lock ({KEY}, lease {} s)",
                TTL.as_secs()
            ));
            Ok(Some(held))
        }
        Err(LockError::Held(h)) => Err(anyhow::anyhow!(refusal(&h, &holder.op))),
        Err(LockError::Unreachable(why)) => {
            say(&format!(
                "no cluster-wide lock: the cluster commits nothing from here ({why}); going on, the operation's own quorum checks decide"
            ));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_quorum_need_the_lock() {
        let p = || "etcd-1".to_string();
        for kind in [
            EtcdOpKind::Replace { program: p() },
            EtcdOpKind::Add { program: p() },
            EtcdOpKind::Remove { program: p() },
            EtcdOpKind::Move {
                program: p(),
                peer_url: "http://x:1".into(),
            },
            EtcdOpKind::Defrag,
            EtcdOpKind::Rolling {
                names: vec![p()],
                force: false,
                reload: true,
            },
        ] {
            assert_eq!(need(&kind, false, false), Need::Required, "{kind:?}");
            assert_eq!(need(&kind, true, false), Need::None, "dry run {kind:?}");
        }
    }

    #[test]
    fn work_without_quorum_takes_no_lock() {
        let restore = EtcdOpKind::Restore {
            snapshot: "s.db".into(),
        };
        assert_eq!(need(&restore, false, false), Need::None);
        assert_eq!(need(&restore, false, true), Need::Required);
        let rescue = EtcdOpKind::Rescue {
            program: "etcd-0".into(),
            assume_down: vec!["boot1".into()],
            allow_behind: false,
        };
        assert_eq!(need(&rescue, false, true), Need::None);
        assert_eq!(
            need(&EtcdOpKind::Snapshot { dir: None }, false, false),
            Need::None
        );
    }

    #[test]
    fn the_refusal_names_the_holder_and_the_way_forward() {
        let h = Holder {
            op: "replace etcd-1".into(),
            id: 7,
            host: "h1".into(),
            pid: 42,
            since_unix: 1_800_000_000,
            boot_id: "b".into(),
        };
        let m = refusal(&h, "replace etcd-2");
        for part in [
            "replace etcd-2 refused",
            "`replace etcd-1` (id 7) from host h1 (fild pid 42) since 2027-01-15T08:00:00Z",
            KEY,
            "filc etcd ops` on h1",
            "within 10 s",
        ] {
            assert!(m.contains(part), "{part} not in {m}");
        }
        let v = serde_json::to_vec(&h).unwrap();
        assert_eq!(read_holder(&v), h);
        assert!(read_holder(b"by hand").op.contains("by hand"));
    }

    #[test]
    fn only_an_ended_holder_on_this_machine_is_taken_over() {
        let me = Holder::here(2, "replace etcd-2".into());
        let mut h = Holder::here(1, "replace etcd-1".into());
        assert!(
            h.stale_for(&me),
            "this fild's earlier operation has ended: take it over"
        );
        h.id = 2;
        assert!(!h.stale_for(&me), "the very operation asking is not stale");
        h.id = 1;
        // A pid that cannot exist (above pid_max's ceiling).
        h.pid = 4_194_305;
        assert!(h.stale_for(&me));
        let elsewhere = Holder {
            boot_id: "another machine".into(),
            ..me.clone()
        };
        assert!(!h.stale_for(&elsewhere), "elsewhere: wait for the lease");
        let boot = std::mem::take(&mut h.boot_id);
        assert!(!h.stale_for(&me), "an older record without a boot id: wait");
        // A live pid other than ours: our parent's.
        h.boot_id = boot;
        h.pid = std::os::unix::process::parent_id();
        assert!(!h.stale_for(&me));
    }
}
