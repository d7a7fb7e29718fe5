//! Membership changes, one member at a time, each behind the same guards: replace (recovery
//! mode two), add, remove, move (recovery mode one), rescue (quorum lost for good).

use crate::control::client::Client;

/// Where an operation reports each step as it runs.
pub type Say<'a> = &'a dyn Fn(&str);

pub async fn replace(_ctl: &Client, program: &str, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd replace {program}: not implemented yet")
}

pub async fn add(_ctl: &Client, program: &str, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd add {program}: not implemented yet")
}

pub async fn remove(_ctl: &Client, program: &str, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd remove {program}: not implemented yet")
}

pub async fn move_peer(
    _ctl: &Client,
    program: &str,
    _peer_url: &str,
    _say: Say<'_>,
) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd move {program}: not implemented yet")
}

pub async fn rescue(_ctl: &Client, program: &str, _say: Say<'_>) -> anyhow::Result<()> {
    anyhow::bail!("filc etcd rescue {program}: not implemented yet")
}
