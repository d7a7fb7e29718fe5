//! Snapshots: streamed from one member, written to a temporary name, fsynced, verified
//! against the SHA-256 etcd appends to the stream, then renamed into place. A file with the
//! final name is therefore always complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::etcd::conn;

/// Length of the checksum etcd appends to a snapshot stream.
const SHA_LEN: usize = 32;

/// Check a snapshot file's trailing SHA-256; returns its size.
pub fn verify(path: &Path) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() <= SHA_LEN {
        return Err(format!("{}: too short to be a snapshot", path.display()));
    }
    let (body, sum) = data.split_at(data.len() - SHA_LEN);
    if Sha256::digest(body).as_slice() != sum {
        return Err(format!(
            "{}: checksum mismatch (truncated or corrupt)",
            path.display()
        ));
    }
    Ok(data.len() as u64)
}

/// `etcd-<member>-<UTC time>-r<revision>.db`
fn file_name(member: &str, revision: i64) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    format!("etcd-{member}-{now}-r{revision}.db")
}

/// Take a snapshot from the member at `client_url` into `dir`; returns the new file.
pub async fn take(
    client_url: &str,
    tls: &conn::Tls,
    member: &str,
    dir: &Path,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut c = conn::connect(client_url, tls).await?;
    let revision = c
        .get("fild-snapshot-probe", None)
        .await
        .ok()
        .and_then(|r| r.header().map(|h| h.revision()))
        .unwrap_or(0);
    let name = file_name(member, revision);
    let tmp = dir.join(format!(".{name}.part"));
    let result = async {
        let mut stream = c
            .snapshot()
            .await
            .map_err(|e| format!("snapshot from {client_url}: {e}"))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        while let Some(resp) = stream
            .message()
            .await
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
        Ok(dest)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
