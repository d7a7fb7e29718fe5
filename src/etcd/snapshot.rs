//! Snapshots: streamed from one member, written to a temporary name of their own, fsynced,
//! verified against the SHA-256 etcd appends to the stream, then renamed into place. A file
//! with the final name is therefore always complete. Memory stays bounded whatever the
//! database's size: the stream is written as it comes, and verification reads the file in
//! [`CHUNK`]-sized pieces. A stream that stops sending for [`STALL`] is abandoned, so a hung
//! member cannot hold every later scheduled backup. The folder and the files are private
//! ([`super::private`]): the folder 0700, every file 0600 from its creation.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

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
/// snapshot, and one that [`is_part_name`] knows (`.<name without .db>.<pid>-<n>.db.part`).
fn part_name(name: &str) -> String {
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    let stem = name.strip_suffix(".db").unwrap_or(name);
    format!(".{stem}.{}-{n}.db.part", std::process::id())
}

/// Whether a file name is a snapshot's temporary (written, or left by a crash).
pub fn is_part_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".db.part")
}

/// A snapshot written: its file, and a notice about its folder's mode for a person (see
/// [`private::prepare`]).
#[derive(Debug, Clone)]
pub struct Taken {
    pub path: PathBuf,
    pub notice: Option<String>,
}

/// `etcd-<member>-<UTC time>-r<revision>.db`
fn file_name(member: &str, revision: i64) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    format!("etcd-{member}-{now}-r{revision}.db")
}

/// Take a snapshot from the member at `client_url` into `dir` (created 0700 if missing; see
/// [`Folder`] for an existing one); returns the new file.
pub async fn take(
    client_url: &str,
    tls: &conn::Tls,
    member: &str,
    dir: &Path,
    folder: Folder,
) -> Result<Taken, String> {
    let notice = private::prepare(dir, folder)?;
    let mut c = conn::connect(client_url, tls).await?;
    let revision = c
        .get("fild-snapshot-probe", None)
        .await
        .ok()
        .and_then(|r| r.header().map(|h| h.revision()))
        .unwrap_or(0);
    let name = file_name(member, revision);
    let tmp = dir.join(part_name(&name));
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
        let dest = dir.join(&name);
        std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(Taken { path: dest, notice })
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
        assert_ne!(part_name("etcd-a-x-r1.db"), part_name("etcd-a-x-r1.db"));
        // Retention's clean-up of a crash's leftovers knows the temporaries by name.
        assert!(is_part_name(&part_name("etcd-a-x-r1.db")));
        assert!(!is_part_name("etcd-a-x-r1.db"));
    }
}
