//! Backups: on demand (`filc etcd snapshot`), scheduled by fild itself, listed, and restored
//! into a new cluster (recovery mode three).

use std::path::{Path, PathBuf};

use super::membership::Say;
use crate::control::client::Client;
use crate::supervisor::Handle;

pub async fn snapshot(
    _ctl: &Client,
    _dir: Option<PathBuf>,
    _say: Say<'_>,
) -> anyhow::Result<PathBuf> {
    anyhow::bail!("filc etcd snapshot: not implemented yet")
}

/// One snapshot file in the backup folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupFile {
    pub path: PathBuf,
    pub size: u64,
    pub modified_unix: u64,
}

pub async fn backups(_ctl: &Client) -> anyhow::Result<Vec<BackupFile>> {
    anyhow::bail!("filc etcd backups: not implemented yet")
}

pub async fn restore(_ctl: &Client, file: &Path, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd restore {}: not implemented yet", file.display())
}

/// fild's own backup schedule (`[etcd] backup_*`); runs for fild's whole life.
pub async fn scheduler(_handle: Handle) {}
