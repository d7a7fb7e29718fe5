//! Backups on three hosts: one host takes each scheduled snapshot ([`super::backup_turn`]
//! decides whose turn it is, in etcd), and every other host copies it from the taker's fild
//! (`GET /v1/etcd/backups/{file}`, in chunks, over the authenticated TCP control API), so
//! each host's backup folder holds every scheduled snapshot. `filc etcd backups` on any host
//! lists what every host holds (`GET /v1/etcd/backups`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::backup::{self, COPY_CHUNK};
use super::backup_turn::{self, Taken, Turn};
use super::conn::{self, Tls};
use super::peers;
use super::private::{self, Folder};
use crate::api::{EtcdMembers, HostBackups};
use crate::config::{ClusterSettings, EtcdSettings};
use crate::supervisor::{ApiError, ErrorKind, ProgramsView};

/// How long a host whose round found the turn taken waits for the taker's record.
const BUSY_WAIT: Duration = Duration::from_secs(600);

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// This host's name and control URL in `[cluster]` (its own entry).
fn me(c: &ClusterSettings) -> (String, String) {
    match c.hosts.iter().find(|h| h.own) {
        Some(h) => (h.name.clone(), h.url.clone()),
        None => (
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into()),
            String::new(),
        ),
    }
}

/// This host's snapshots.
fn here(view: &ProgramsView) -> HostBackups {
    let dir = &view.etcd.backup_dir;
    let (files, error) = match backup::list_dir(dir) {
        Ok(f) => (f, None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => (
            Vec::new(),
            Some(format!("cannot list {}: {e}", dir.display())),
        ),
    };
    HostBackups {
        host: view
            .cluster
            .as_ref()
            .map_or_else(|| "this host".to_string(), |c| me(c).0),
        url: "here".into(),
        dir: dir.display().to_string(),
        files,
        error,
    }
}

/// `GET /v1/etcd/backups`: this host's snapshots, then (unless `only_here`) every other
/// `[cluster]` host's, each asked for its own.
pub async fn host_backups(view: ProgramsView, only_here: bool) -> Vec<HostBackups> {
    let cluster = view.cluster.clone();
    let mine = match tokio::task::spawn_blocking(move || here(&view)).await {
        Ok(h) => h,
        Err(e) => HostBackups {
            host: "this host".into(),
            url: "here".into(),
            dir: String::new(),
            files: Vec::new(),
            error: Some(format!("the listing panicked: {e}")),
        },
    };
    let mut out = vec![mine];
    let Some(c) = cluster.filter(|_| !only_here) else {
        return out;
    };
    for r in peers::ask_others(
        &c,
        |cl| async move { peers::bounded(cl.backups(true)).await },
    )
    .await
    {
        let mut h = match r.answer {
            Ok(mut v) if !v.is_empty() => v.remove(0),
            Ok(_) => HostBackups {
                host: r.host.clone(),
                url: r.url.clone(),
                dir: String::new(),
                files: Vec::new(),
                error: Some("it listed nothing".into()),
            },
            Err(e) => HostBackups {
                host: r.host.clone(),
                url: r.url.clone(),
                dir: String::new(),
                files: Vec::new(),
                error: Some(format!("no answer: {e}")),
            },
        };
        h.host = r.host;
        h.url = r.url;
        out.push(h);
    }
    out
}

/// Whether `name` is a plain file name of fild's snapshot naming (no path in it).
pub fn servable(name: &str) -> bool {
    !name.contains('/')
        && !name.starts_with('.')
        && name.starts_with("etcd-")
        && name.ends_with(".db")
}

/// `GET /v1/etcd/backups/{name}`: the path of snapshot `name` in this host's backup folder.
pub async fn backup_file(view: ProgramsView, name: String) -> Result<PathBuf, ApiError> {
    if !servable(&name) {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            format!("{name:?} is not a snapshot fild names (etcd-….db, no path)"),
        ));
    }
    let path = view.etcd.backup_dir.join(&name);
    if !path.is_file() {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no snapshot {name} in {}", view.etcd.backup_dir.display()),
        ));
    }
    Ok(path)
}

/// Copy `taken` from its host's fild into `dir` (through a 0600 `.part` file, verified by its
/// trailing checksum before it gets its name). The copy's path.
pub async fn fetch(c: &ClusterSettings, taken: &Taken, dir: &Path) -> Result<PathBuf, String> {
    let Some(h) = c
        .hosts
        .iter()
        .find(|h| h.name == taken.host || h.url == taken.url)
    else {
        return Err(format!(
            "host {} ({}) is not in [cluster] hosts",
            taken.host, taken.url
        ));
    };
    if !servable(&taken.file) {
        return Err(format!("{:?} is not a snapshot name", taken.file));
    }
    private::prepare(dir, Folder::Backup)?;
    let dest = dir.join(&taken.file);
    let part = dir.join(format!("{}.part", taken.file));
    let cl = peers::client(c, h);
    let mut out = private::create_file(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    let mut offset = 0u64;
    loop {
        let (bytes, size) = peers::bounded(cl.backup_chunk(&taken.file, offset, COPY_CHUNK))
            .await
            .map_err(|e| format!("from {} ({}): {e}", h.name, h.url))?;
        if bytes.is_empty() && offset < size {
            return Err(format!("{} ended at {offset} of {size} bytes", taken.file));
        }
        std::io::Write::write_all(&mut out, &bytes)
            .map_err(|e| format!("{}: {e}", part.display()))?;
        offset += bytes.len() as u64;
        if offset >= size {
            break;
        }
    }
    out.sync_all()
        .map_err(|e| format!("{}: {e}", part.display()))?;
    drop(out);
    let verified = {
        let part = part.clone();
        tokio::task::spawn_blocking(move || super::snapshot::verify(&part))
            .await
            .map_err(|e| e.to_string())?
    };
    if let Err(e) = verified {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

/// One scheduled round on a host of a `[cluster]`: take this interval's snapshot, or copy
/// the one another host took. Where etcd cannot say whose turn it is, take one here.
pub(super) async fn round(local: EtcdMembers, s: EtcdSettings, c: ClusterSettings) {
    let tls = Tls::of(&local);
    let urls = conn::endpoints(&local);
    let (name, url) = me(&c);
    let end = tokio::time::Instant::now() + BUSY_WAIT;
    let taken = loop {
        match backup_turn::claim(&urls, &tls, &name, now_unix(), s.backup_interval).await {
            Err(e) => {
                tracing::warn!(
                    "Scheduled etcd backup: cannot ask the cluster whose turn it is ({e}); taking one here."
                );
                backup::round(local, s).await;
                return;
            }
            Ok(Turn::Take(held)) => return take(&local, &s, &urls, &tls, (name, url), *held).await,
            Ok(Turn::Copy(t)) => break t,
            Ok(Turn::Busy) => {
                if tokio::time::Instant::now() > end {
                    tracing::warn!(
                        "Scheduled etcd backup: another host held the turn for {} s and recorded nothing; the next round tries again.",
                        BUSY_WAIT.as_secs()
                    );
                    backup::round_failed();
                    return;
                }
                tracing::debug!(
                    "Scheduled etcd backup: another host is taking it; waiting for its record."
                );
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
    };
    if taken.host == name || s.backup_dir.join(&taken.file).is_file() {
        tracing::debug!(file = %taken.file, "Scheduled etcd backup: this interval's snapshot is here already.");
        return;
    }
    match fetch(&c, &taken, &s.backup_dir).await {
        Ok(p) => {
            tracing::info!(
                file = %p.display(),
                from = %taken.host,
                size = taken.size,
                "Scheduled etcd backup: copied the snapshot host {} took.", taken.host
            );
            backup::round_succeeded(taken.size);
            backup::apply_retention(&s.backup_dir, s.backup_keep, s.backup_max_age);
        }
        Err(e) => {
            tracing::warn!(
                "Scheduled etcd backup: cannot copy {} from host {}: {e}; the next round tries again.",
                taken.file,
                taken.host
            );
            backup::round_failed();
        }
    }
}

/// This host's turn: take the snapshot, record it for the others, give the turn back.
async fn take(
    local: &EtcdMembers,
    s: &EtcdSettings,
    urls: &[String],
    tls: &Tls,
    (name, url): (String, String),
    turn: super::cluster_lock::Held,
) {
    let Some(file) = backup::round_snapshot(local, s).await else {
        turn.release().await;
        return; // said
    };
    let taken = Taken {
        host: name,
        url,
        file: file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        revision: file.revision,
        size: std::fs::metadata(&file.path).map_or(0, |m| m.len()),
        unix: now_unix(),
    };
    match backup_turn::record(urls, tls, &taken, turn).await {
        Ok(()) => tracing::info!(
            file = %taken.file,
            "Scheduled etcd backup: this host took the snapshot; the other hosts copy it."
        ),
        Err(e) => tracing::warn!(
            "Scheduled etcd backup: cannot record the snapshot in etcd ({e}); the other hosts may take their own."
        ),
    }
    backup::round_finish(s, &file.path).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_snapshot_names_are_served() {
        assert!(servable("etcd-boot0-2026-12-02T080000Z-r21.db"));
        for bad in [
            "../etc/passwd",
            "etcd-x.db/../../y",
            ".etcd-a.db",
            "notes.txt",
            "etcd-a.db.part",
            "sub/etcd-a.db",
        ] {
            assert!(!servable(bad), "{bad}");
        }
    }
}
