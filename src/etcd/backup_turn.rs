//! Whose turn is the scheduled backup? On three hosts each fild runs the backup schedule;
//! one snapshot per interval is enough, and every host should hold a copy of it.
//!
//! etcd itself decides. [`LAST`] says which host took the newest scheduled snapshot, when,
//! and its file; a host whose round comes while that is recent ([`recent`]) copies it from
//! that host's fild instead of taking one. Otherwise it takes the turn: [`TURN`], created
//! only if absent on a lease (so a taker that dies frees it), then re-reads [`LAST`] (another
//! host may have just finished), takes the snapshot and records it in [`LAST`]. A host that
//! is down takes no turn, so another one takes the next snapshot. Without `[cluster]` (one
//! host) none of this is asked.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cluster_lock::{self, Held, HoldError};
use super::conn::{self, Tls};

/// The newest scheduled snapshot's record.
pub const LAST: &str = "/fild/backup/last";
/// The turn being taken now.
pub const TURN: &str = "/fild/backup/turn";

/// A scheduled snapshot, as [`LAST`] records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// The taker's name in `[cluster] hosts`.
    pub host: String,
    /// Its fild's control URL, where the others fetch the file.
    pub url: String,
    /// The file's name in the taker's backup folder.
    pub file: String,
    pub revision: i64,
    pub size: u64,
    /// When it was taken, seconds since the epoch.
    pub unix: u64,
}

/// Whether `last` is this interval's snapshot: younger than nine tenths of `interval`, so
/// one snapshot is taken per interval however the hosts' schedules are spread.
pub fn recent(last: Option<&Taken>, now_unix: u64, interval: Duration) -> bool {
    last.is_some_and(|t| now_unix.saturating_sub(t.unix) < interval.as_secs() * 9 / 10)
}

/// What this host's round does.
pub enum Turn {
    /// Take the snapshot (the turn is held until dropped) and record it.
    Take(Box<Held>),
    /// Another host took this interval's snapshot: copy it.
    Copy(Taken),
    /// Another host is taking it now.
    Busy,
}

/// The record in [`LAST`], if any.
pub async fn last(urls: &[String], tls: &Tls) -> Result<Option<Taken>, String> {
    let (mut c, _) = conn::connect_any(urls, tls).await?;
    let r = c
        .get(LAST, None)
        .await
        .map_err(|e| format!("get {LAST}: {e}"))?;
    Ok(r.kvs()
        .first()
        .and_then(|kv| serde_json::from_slice(kv.value()).ok()))
}

/// Decide this round, for host `me`.
pub async fn claim(
    urls: &[String],
    tls: &Tls,
    me: &str,
    now_unix: u64,
    interval: Duration,
) -> Result<Turn, String> {
    let seen = last(urls, tls).await?;
    if recent(seen.as_ref(), now_unix, interval) {
        return Ok(Turn::Copy(seen.expect("recent implies some")));
    }
    match cluster_lock::hold(TURN, me.as_bytes().to_vec(), urls, tls).await {
        Ok(held) => {
            // Another host may have finished between the read and the turn.
            let seen = last(urls, tls).await?;
            if recent(seen.as_ref(), now_unix, interval) {
                held.release().await;
                return Ok(Turn::Copy(seen.expect("recent implies some")));
            }
            Ok(Turn::Take(Box::new(held)))
        }
        Err(HoldError::Held(..)) => Ok(Turn::Busy),
        Err(HoldError::Unreachable(e)) => Err(e),
    }
}

/// Record `taken` in [`LAST`], then give the turn back.
pub async fn record(urls: &[String], tls: &Tls, taken: &Taken, turn: Held) -> Result<(), String> {
    let (mut c, _) = conn::connect_any(urls, tls).await?;
    let v = serde_json::to_vec(taken).expect("Taken serializes");
    let put = c
        .put(LAST, v, None)
        .await
        .map(|_| ())
        .map_err(|e| format!("put {LAST}: {e}"));
    turn.release().await;
    put
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(unix: u64) -> Taken {
        Taken {
            host: "h1".into(),
            url: "http://10.0.0.1:9001".into(),
            file: "etcd-boot0-2026-12-02T080000Z-r21.db".into(),
            revision: 21,
            size: 1,
            unix,
        }
    }

    #[test]
    fn one_snapshot_per_interval_whoever_takes_it() {
        let day = Duration::from_secs(86_400);
        let t0 = 1_800_000_000;
        assert!(!recent(None, t0, day), "no record: take it");
        // Another host took it an hour ago: copy.
        assert!(recent(Some(&taken(t0 - 3_600)), t0, day));
        // Taken 21 h ago (the taker's round comes 21 h before ours): this interval's.
        assert!(recent(Some(&taken(t0 - 21 * 3_600)), t0, day));
        // 23 h ago: nearly an interval old, so this host takes the next one (and the other
        // host copies it at its round).
        assert!(!recent(Some(&taken(t0 - 23 * 3_600)), t0, day));
        // The taker is down: a record older than the interval is taken over.
        assert!(!recent(Some(&taken(t0 - 86_400 - 60)), t0, day));
        // A clock behind the taker's does not make a record from the future stale.
        assert!(recent(Some(&taken(t0 + 30)), t0, day));
    }
}
