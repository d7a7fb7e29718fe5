//! Backups: on demand (`filc etcd snapshot`), scheduled by fild itself, listed, and restored
//! into a new cluster (recovery mode three, in [`super::backup_restore`]).
//!
//! # Files
//!
//! Snapshots are `etcd-<member>-<UTC time>-r<revision>.db` files (see [`snapshot::take`]),
//! written as a hidden `.….db.part`, fsynced, verified and renamed: a `*.db` file is always
//! complete. [`backups`] lists `*.db` files newest first and never shows the `.part`
//! temporaries. The backup folder is 0700 and every file in it 0600 from its creation
//! ([`super::private`]); `backup_command` gets the file as it is, never a wider copy.
//!
//! # The schedule (`[etcd]` in fild.ini)
//!
//! [`scheduler`] runs inside fild for its whole life. Each round it asks the supervisor loop
//! for the current settings (`Request::Programs`), so a `filc reload` that changes them takes
//! effect at the next wake-up, without polling in between:
//!
//! - `backup_interval` (default `24h`; `0` turns the schedule off): the time from the end of
//!   one round to the start of the next. The first snapshot is taken one interval after fild
//!   starts, not at start. One sleep per interval, cut short when a reload applies a new
//!   configuration (a snapshot is taken at once if the new interval is already overdue).
//!   While the schedule is off, nothing runs until a reload.
//! - Each round, when the configuration has etcd members: pick a healthy member, take a
//!   snapshot into `backup_dir`, run `backup_command`, apply retention. Every step is logged;
//!   no failure stops the schedule.
//! - `backup_command`: run as `sh -c "$backup_command" sh FILE`, so the new file is `$1`
//!   (write `$1`, or `$$1`, in fild.ini; `$NAME` would be expanded by fild), through
//!   [`crate::command`], which never waits on the child. Its stdin is `/dev/null`; its output
//!   goes to fild's log when it fails. It is bounded by
//!   [`COMMAND_TIMEOUT`] (then its process group is sent SIGTERM, and SIGKILL 10 s later); its
//!   failure is logged and never fatal.
//! - Retention (`backup_keep`, default 7; `backup_max_age`, default 7 days): the newest
//!   `backup_keep` snapshots (at least one) are always kept; beyond those, files older than
//!   `backup_max_age` are deleted. A long outage therefore never deletes the last good
//!   backups. Only fild's own file names (`etcd-*.db`) are ever deleted, plus `.part`
//!   temporaries left by a crash that nobody has written to for an hour. Retention runs only
//!   after a successful snapshot.
//!
//! The snapshot itself (network stream, file writes, fsync, checksum) runs on a thread of its
//! own with its own small runtime, so a large database never stalls the supervisor loop,
//! which shares fild's single-threaded runtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::Say;
use super::private::Folder;
use super::{members, snapshot};
use crate::api::{EtcdMember, EtcdMembers};
use crate::command::{self, Outcome, Shell};
use crate::config::EtcdSettings;
use crate::etcd::conn;
use crate::etcd::programs::Programs;
use crate::supervisor::{Handle, Request};

/// How long `backup_command` may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);
/// A `.part` file nobody wrote to for this long is a crash's leftover.
const STALE_PART: Duration = Duration::from_secs(3600);

/// The first member (in configuration order) whose `/health` says true; all are asked at once.
pub async fn pick_healthy(members: &[EtcdMember], tls: &conn::Tls) -> Option<EtcdMember> {
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in members.iter().enumerate() {
        let url = m.client_url.clone();
        let tls = tls.clone();
        set.spawn(async move { (i, !url.is_empty() && conn::healthy(&url, &tls).await) });
    }
    let mut ok = vec![false; members.len()];
    while let Some(Ok((i, h))) = set.join_next().await {
        ok[i] = h;
    }
    members
        .iter()
        .zip(ok)
        .find(|(_, h)| *h)
        .map(|(m, _)| m.clone())
}

fn no_healthy_member(members: &[EtcdMember]) -> String {
    let names: Vec<String> = members
        .iter()
        .map(|m| format!("{} ({}, {})", m.name, m.program, m.client_url))
        .collect();
    format!(
        "no healthy etcd member to take a snapshot from (asked {}); see `filc etcd status`",
        names.join(", ")
    )
}

/// Whose folder `dir` is: the backup folder when it is `[etcd] backup_dir` (or nothing was
/// named), else one a person chose.
fn folder_of(dir: Option<&Path>, backup_dir: &Path) -> Folder {
    let same = |d: &Path| {
        d == backup_dir
            || matches!((d.canonicalize(), backup_dir.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    match dir {
        Some(d) if !same(d) => Folder::Chosen,
        _ => Folder::Backup,
    }
}

/// `filc etcd snapshot [DIR]`: a verified snapshot from a healthy member into DIR (default
/// the `[etcd] backup_dir`).
pub async fn snapshot(
    ctl: &impl Programs,
    dir: Option<PathBuf>,
    gate: &super::gate::Gate,
    say: Say<'_>,
) -> anyhow::Result<PathBuf> {
    let local = super::programs::local_members(ctl).await?;
    let backup_dir = PathBuf::from(&local.backup_dir);
    let folder = folder_of(dir.as_deref(), &backup_dir);
    let dir = dir.unwrap_or(backup_dir);
    say("checking member health");
    let tls = conn::Tls::of(&local);
    let Some(m) = pick_healthy(&local.members, &tls).await else {
        anyhow::bail!(no_healthy_member(&local.members));
    };
    gate.pass(
        say,
        &[format!(
            "snapshot from {} ({}) into {}, verified",
            m.name,
            m.program,
            dir.display()
        )],
        None,
    )?;
    say(&format!(
        "taking a snapshot from {} ({}, {}) into {}",
        m.name,
        m.program,
        m.client_url,
        dir.display()
    ));
    let taken = snapshot::take(&m.client_url, &tls, &m.name, &dir, folder)
        .await
        .map_err(|e| anyhow::anyhow!("snapshot from {} failed: {e}", m.name))?;
    if let Some(n) = &taken.notice {
        say(n);
    }
    let path = taken.path;
    let size = std::fs::metadata(&path).map(|md| md.len()).unwrap_or(0);
    say(&format!(
        "snapshot verified ({size} bytes, revision {})",
        taken.revision
    ));
    Ok(path)
}

pub use crate::api::BackupFile;

/// A listed file with its full modification time (for ordering and ages).
#[derive(Debug, Clone)]
struct Listed {
    file: BackupFile,
    modified: SystemTime,
}

/// `*.db` files in `dir` (not the hidden `.part` temporaries), newest first. A missing
/// folder is an empty list.
fn list(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".db") {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        let modified = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(Listed {
            file: BackupFile {
                path: e.path(),
                size: md.len(),
                modified_unix: modified
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            },
            modified,
        });
    }
    out.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.file.path.cmp(&a.file.path))
    });
    Ok(out)
}

/// The snapshot files in `dir`, newest first.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<BackupFile>> {
    Ok(list(dir)?.into_iter().map(|l| l.file).collect())
}

/// Whether fild itself named this file (only those are ever deleted by retention).
fn ours(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("etcd-") && n.ends_with(".db"))
}

/// Which files retention deletes: only files of fild's own naming, never the newest `keep`
/// of those (at least one), and beyond those only ones older than `max_age`. Other files in
/// the folder count for nothing. `files` is newest first.
fn doomed(files: &[Listed], keep: u32, max_age: Duration, now: SystemTime) -> Vec<PathBuf> {
    let keep = keep.max(1) as usize;
    files
        .iter()
        .filter(|l| ours(&l.file.path))
        .skip(keep)
        .filter(|l| now.duration_since(l.modified).unwrap_or_default() > max_age)
        .map(|l| l.file.path.clone())
        .collect()
}

/// Apply retention to `dir`; returns the files deleted.
pub fn apply_retention(dir: &Path, keep: u32, max_age: Duration) -> Vec<PathBuf> {
    let files = match list(dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "Backup retention: cannot list the folder.");
            return Vec::new();
        }
    };
    let now = SystemTime::now();
    let mut deleted = Vec::new();
    for path in doomed(&files, keep, max_age, now) {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "Backup retention: deleted an old snapshot.");
                deleted.push(path);
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "Backup retention: cannot delete.")
            }
        }
    }
    // `.part` leftovers of a crash: hidden, and untouched for an hour.
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !snapshot::is_part_name(&name) {
                continue;
            }
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_PART);
            if stale && std::fs::remove_file(e.path()).is_ok() {
                tracing::info!(file = %e.path().display(), "Backup retention: deleted a stale partial snapshot.");
            }
        }
    }
    deleted
}

// ----- the schedule --------------------------------------------------------------------------

/// How the scheduled rounds went since fild started, for `/metrics`: Unix seconds of the last
/// snapshot written here (taken or copied from another host) and of the last round that
/// wrote none, and the last snapshot's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub last_success_unix: u64,
    pub last_failure_unix: u64,
    pub last_size_bytes: u64,
}

static RECORD: std::sync::Mutex<Record> = std::sync::Mutex::new(Record {
    last_success_unix: 0,
    last_failure_unix: 0,
    last_size_bytes: 0,
});

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The schedule's record so far.
pub fn record() -> Record {
    *RECORD.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scheduled round wrote a snapshot of `size` bytes here.
pub(super) fn round_succeeded(size: u64) {
    let mut r = RECORD.lock().unwrap_or_else(|e| e.into_inner());
    r.last_success_unix = unix_now();
    r.last_size_bytes = size;
}

/// A scheduled round ended without a snapshot here.
pub(super) fn round_failed() {
    RECORD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_failure_unix = unix_now();
}

/// fild's own backup schedule (`[etcd] backup_*`); runs for fild's whole life.
pub async fn scheduler(handle: Handle) {
    use tokio::time::Instant;
    // The first scheduled snapshot is one interval after start.
    let mut last = Instant::now();
    let mut applied = handle.config_applied();
    loop {
        let Ok(view) = handle.call(|reply| Request::Programs { reply }).await else {
            return; // fild is shutting down
        };
        let settings = view.etcd.clone();
        if settings.backup_interval.is_zero() {
            tracing::debug!("Scheduled etcd backups are off (backup_interval=0).");
            // Nothing to do until a reload changes the configuration.
            if applied.changed().await.is_err() {
                return;
            }
            last = Instant::now();
            continue;
        }
        let due: Instant =
            crate::supervisor::state::deadline(last.into_std(), settings.backup_interval).into();
        if Instant::now() < due {
            // Wake when due, or when a reload may have changed the interval.
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                r = applied.changed() => if r.is_err() { return },
            }
            continue;
        }
        let local = members::collect_off_loop(view.clone()).await;
        let cluster = view
            .cluster
            .clone()
            .filter(|c| c.hosts.iter().any(|h| !h.own));
        if local.members.is_empty() {
            tracing::debug!("Scheduled etcd backup: no etcd member configured; nothing to do.");
        } else {
            // Off the loop's thread: file writes and the checksum of a large DB would stall it.
            let job = tokio::task::spawn_blocking(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async move {
                        // On three hosts ([cluster]), one takes it and the others copy it.
                        match cluster {
                            Some(c) => super::backup_copies::round(local, settings, c).await,
                            None => round(local, settings).await,
                        }
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "Scheduled etcd backup: cannot start a runtime.")
                    }
                }
            });
            if let Err(e) = job.await {
                tracing::error!(error = %e, "Scheduled etcd backup: the backup task failed.");
            }
        }
        last = Instant::now();
    }
}

/// How much of a snapshot one request of a copy between hosts carries.
pub const COPY_CHUNK: u64 = 4 << 20;

/// One scheduled round: snapshot, command, retention.
pub(super) async fn round(local: EtcdMembers, s: EtcdSettings) {
    if let Some(t) = round_snapshot(&local, &s).await {
        round_finish(&s, &t.path).await;
    }
}

/// A scheduled round's snapshot, from a healthy local member (None: said why not).
pub(super) async fn round_snapshot(
    local: &EtcdMembers,
    s: &EtcdSettings,
) -> Option<snapshot::Taken> {
    let dir = s.backup_dir.clone();
    tracing::info!(dir = %dir.display(), "Scheduled etcd backup: starting.");
    let tls = conn::Tls::of(local);
    let Some(m) = pick_healthy(&local.members, &tls).await else {
        tracing::warn!(
            "Scheduled etcd backup skipped: {}.",
            no_healthy_member(&local.members)
        );
        round_failed();
        return None;
    };
    tracing::info!(member = %m.name, program = %m.program, url = %m.client_url, "Scheduled etcd backup: taking a snapshot.");
    match snapshot::take(&m.client_url, &tls, &m.name, &dir, Folder::Backup).await {
        Ok(t) => {
            if let Some(n) = &t.notice {
                tracing::warn!(dir = %dir.display(), "Scheduled etcd backup: {n}.");
            }
            let size = std::fs::metadata(&t.path).map(|md| md.len()).unwrap_or(0);
            tracing::info!(file = %t.path.display(), size, "Scheduled etcd backup: snapshot written and verified.");
            round_succeeded(size);
            Some(t)
        }
        Err(e) => {
            tracing::warn!(member = %m.name, error = %e, "Scheduled etcd backup failed: no snapshot taken.");
            round_failed();
            None
        }
    }
}

/// After a scheduled snapshot: `backup_command`, then retention.
pub(super) async fn round_finish(s: &EtcdSettings, file: &Path) {
    let dir = s.backup_dir.clone();
    if let Some(cmd) = &s.backup_command {
        run_command(cmd, file, COMMAND_TIMEOUT).await;
    }
    let deleted = apply_retention(&dir, s.backup_keep, s.backup_max_age);
    tracing::info!(
        deleted = deleted.len(),
        keep = s.backup_keep,
        max_age = %humantime::format_duration(s.backup_max_age),
        "Scheduled etcd backup: done."
    );
}

/// Run `backup_command` for `file` (as `$1`) and log how it went; never waits on the child
/// (see [`crate::command`]). Returns the outcome for tests and callers that care.
pub async fn run_command(cmd: &str, file: &Path, timeout: Duration) -> Outcome {
    tracing::info!(command = cmd, file = %file.display(), "Running backup_command.");
    let outcome = command::run(&Shell {
        command: cmd,
        name: "fild-backup-command",
        args: &[file.as_os_str()],
        stdin: None,
        env: &[],
        timeout,
        grace: command::GRACE,
    })
    .await;
    match outcome.failure() {
        None => tracing::info!(command = cmd, "backup_command succeeded."),
        Some(why) => tracing::warn!(
            command = cmd,
            timeout = %humantime::format_duration(timeout),
            output = %outcome.output(),
            "backup_command {why} (the snapshot is kept)."
        ),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, age_secs: u64, now: SystemTime) -> Listed {
        Listed {
            file: BackupFile {
                path: PathBuf::from(format!("/b/{name}")),
                size: 1,
                modified_unix: 0,
            },
            modified: now - Duration::from_secs(age_secs),
        }
    }

    #[test]
    fn retention_keeps_the_newest_and_deletes_only_old_ones_beyond() {
        let now = SystemTime::now();
        let day = 86400;
        // Newest first.
        let files = vec![
            listed("etcd-a.db", 10, now),
            listed("etcd-b.db", 2 * day, now),
            listed("etcd-c.db", 9 * day, now),
            listed("etcd-d.db", 10 * day, now),
            listed("etcd-e.db", 3 * day, now),
        ];
        let d = doomed(&files, 2, Duration::from_secs(7 * day), now);
        assert_eq!(
            d,
            vec![PathBuf::from("/b/etcd-c.db"), PathBuf::from("/b/etcd-d.db")]
        );
        // A long outage: every file is old, the newest `keep` survive.
        let d = doomed(&files[2..4], 2, Duration::from_secs(day), now);
        assert_eq!(d, Vec::<PathBuf>::new());
        // keep=0 still keeps the newest one.
        let d = doomed(&files, 0, Duration::from_secs(1), now);
        assert_eq!(d.len(), 4);
        assert!(!d.contains(&PathBuf::from("/b/etcd-a.db")));
        // Files not named by fild are never deleted.
        let files = vec![
            listed("etcd-a.db", 10, now),
            listed("mine.db", 10 * day, now),
        ];
        assert!(doomed(&files, 1, Duration::from_secs(1), now).is_empty());
        // ... and never take one of the `keep` places: with keep=2, two newer files of
        // someone else's do not doom fild's second newest.
        let files = vec![
            listed("manual-1.db", 10, now),
            listed("manual-2.db", 20, now),
            listed("etcd-a.db", 2 * day, now),
            listed("etcd-b.db", 3 * day, now),
            listed("etcd-c.db", 4 * day, now),
        ];
        let d = doomed(&files, 2, Duration::from_secs(day), now);
        assert_eq!(d, vec![PathBuf::from("/b/etcd-c.db")]);
    }

    #[test]
    fn listing_is_newest_first_and_skips_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("etcd-old.db"), b"x").unwrap();
        std::fs::write(p.join(".etcd-new.db.part"), b"x").unwrap();
        std::fs::write(p.join("notes.txt"), b"x").unwrap();
        let old = SystemTime::now() - Duration::from_secs(100);
        std::fs::File::options()
            .write(true)
            .open(p.join("etcd-old.db"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(p.join("etcd-new.db"), b"xyz").unwrap();
        let l = list_dir(p).unwrap();
        let names: Vec<String> = l
            .iter()
            .map(|b| b.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["etcd-new.db", "etcd-old.db"]);
        assert_eq!(l[0].size, 3);
        assert!(list_dir(&p.join("missing")).unwrap().is_empty());
    }
}
