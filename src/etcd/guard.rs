//! Guards and care: the quorum guard on stop/restart, rolling restarts, liveness restarts
//! of hung members, and defragmentation with NOSPACE recovery.

use super::membership::Say;
use crate::control::client::Client;
use crate::supervisor::Handle;

/// fild's liveness check of its members (`[etcd] liveness_window`); runs for fild's life.
pub async fn liveness(_handle: Handle) {}

pub async fn defrag(_ctl: &Client, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd defrag: not implemented yet")
}
