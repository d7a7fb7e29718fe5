//! Snapshots: streamed from one member, written to a temporary name of their own, fsynced,
//! verified against the SHA-256 etcd appends to the stream, then renamed into place. A file
//! with the final name is therefore always complete, and its name carries the revision it
//! holds, read from the file ([`super::bolt`]): what `etcdctl snapshot status` says (a file
//! whose bbolt pages cannot be read that far is no snapshot to keep: the snapshot fails).
//! Memory stays bounded whatever the database's size: the stream is written as it comes,
//! and verification reads the file in [`CHUNK`]-sized pieces. A stream that stops sending
//! for [`STALL`] is abandoned, so a hung member cannot hold every later scheduled backup. The
//! folder and the files are private ([`super::private`]): the folder 0700, every file 0600
//! from its creation.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::bolt;
use super::private::{self, Folder};
use crate::etcd::conn;

/// Length of the checksum etcd appends to a snapshot stream.
const SHA_LEN: u64 = 32;
/// How much of a snapshot file verification holds in memory at once.
pub const CHUNK: usize = 1 << 20;
/// How long a snapshot stream may send nothing before it is abandoned.
pub const STALL: Duration = Duration::from_secs(60);

/// Snapshots this process has started: part of each temporary name, so two snapshots of one
/// member in the same second never share one.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Check a snapshot file's trailing SHA-256 (read in [`CHUNK`]s); returns its size.
pub fn verify(path: &Path) -> Result<u64, String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    if len <= SHA_LEN {
        return Err(format!("{}: too short to be a snapshot", path.display()));
    }
    let mut hasher = Sha256::new();
    let mut body = (&mut f).take(len - SHA_LEN);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = body.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let mut sum = [0u8; SHA_LEN as usize];
    f.seek(SeekFrom::Start(len - SHA_LEN)).map_err(err)?;
    f.read_exact(&mut sum).map_err(err)?;
    if hasher.finalize().as_slice() != sum {
        return Err(format!(
            "{}: checksum mismatch (truncated or corrupt)",
            path.display()
        ));
    }
    Ok(len)
}

/// The temporary name of a snapshot being written: hidden, unique to this process and this
/// snapshot, and one that [`is_part_name`] knows (`.<stem>.<pid>-<n>.db.part`).
fn part_name(stem: &str) -> String {
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    format!(".{stem}.{}-{n}.db.part", std::process::id())
}

/// Whether a file name is a snapshot's temporary (written, or left by a crash).
pub fn is_part_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".db.part")
}

/// A snapshot written: its file, the revision it holds, and a notice about its folder's mode
/// for a person (see [`private::prepare`]).
#[derive(Debug, Clone)]
pub struct Taken {
    pub path: PathBuf,
    pub revision: i64,
    pub notice: Option<String>,
}

/// `etcd-<member>-<UTC time>`: a snapshot's name before its revision is known.
fn stem(member: &str, at: std::time::SystemTime) -> String {
    let at = humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace(':', "");
    format!("etcd-{member}-{at}")
}

/// `etcd-<member>-<UTC time>-r<revision>.db`: the revision is the one the file holds.
fn file_name(stem: &str, revision: i64) -> String {
    format!("{stem}-r{revision}.db")
}

/// Take a snapshot from the member at `client_url` into `dir` (created 0700 if missing; see
/// [`Folder`] for an existing one); returns the new file, named with the time the snapshot
/// was asked for and the revision read from the file itself ([`bolt::revision`]).
pub async fn take(
    client_url: &str,
    tls: &conn::Tls,
    member: &str,
    dir: &Path,
    folder: Folder,
) -> Result<Taken, String> {
    let notice = private::prepare(dir, folder)?;
    let mut c = conn::connect(client_url, tls).await?;
    let stem = stem(member, std::time::SystemTime::now());
    let tmp = dir.join(part_name(&stem));
    let result = async {
        let mut stream = c
            .snapshot()
            .await
            .map_err(|e| format!("snapshot from {client_url}: {e}"))?;
        let mut f = private::create_file(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        while let Some(resp) = tokio::time::timeout(STALL, stream.message())
            .await
            .map_err(|_| {
                format!(
                    "snapshot from {client_url}: the stream sent nothing for {} s (stalled); abandoned",
                    STALL.as_secs()
                )
            })?
            .map_err(|e| format!("snapshot from {client_url}: {e}"))?
        {
            f.write_all(resp.blob())
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        f.sync_all()
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        drop(f);
        verify(&tmp)?;
        let revision = bolt::revision(&tmp)?;
        let dest = dir.join(file_name(&stem, revision));
        std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(Taken {
            path: dest,
            revision,
            notice,
        })
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_streams_and_names_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // Several chunks, and a body whose length is not a multiple of one.
        let body: Vec<u8> = (0..(3 * CHUNK + 1234)).map(|i| (i % 251) as u8).collect();
        let mut data = body.clone();
        data.extend_from_slice(&Sha256::digest(&body));
        std::fs::write(&path, &data).unwrap();
        assert_eq!(verify(&path), Ok(data.len() as u64));
        data[CHUNK + 7] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert!(verify(&path).unwrap_err().contains("checksum mismatch"));
        std::fs::write(&path, [0u8; 32]).unwrap();
        assert!(verify(&path).unwrap_err().contains("too short"));
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let s = stem("boot0", at);
        assert_eq!(s, "etcd-boot0-2027-01-15T080000Z");
        assert_eq!(
            file_name(&s, 2051),
            "etcd-boot0-2027-01-15T080000Z-r2051.db"
        );
        assert_ne!(part_name(&s), part_name(&s));
        // Retention's clean-up of a crash's leftovers knows the temporaries by name.
        assert!(is_part_name(&part_name(&s)));
        assert!(!is_part_name(&file_name(&s, 1)));
    }
}
