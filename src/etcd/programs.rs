//! The operations' way to fild's programs: the members view and start/stop/restart through
//! the control API (with `force`: the operations do their own quorum checks).

use anyhow::{Context, anyhow, bail};

use super::Say;
use crate::api::{EtcdMember, EtcdMembers, ProcessState};
use crate::control::client::Client;
use crate::etcd::conn;

pub(crate) async fn members(ctl: &Client) -> anyhow::Result<EtcdMembers> {
    let local = ctl.members().await?;
    conn::use_tls(&local);
    Ok(local)
}

/// The members fild runs, or a clear error when there are none.
pub(crate) async fn local_members(ctl: &Client) -> anyhow::Result<EtcdMembers> {
    let local = members(ctl).await?;
    require_members(&local)?;
    Ok(local)
}

/// The error for a fild that runs no etcd member, saying what makes a program one.
pub fn require_members(local: &EtcdMembers) -> anyhow::Result<()> {
    if local.members.is_empty() {
        anyhow::bail!(
            "no etcd member among fild's programs (a member is a program whose environment= names its settings file in FILD_ETCD_MEMBER; see tpl/etcd-0.ini)"
        );
    }
    Ok(())
}

pub(crate) fn find_local(local: &EtcdMembers, program: &str) -> anyhow::Result<EtcdMember> {
    if let Some(m) = local.members.iter().find(|m| m.program == program) {
        return Ok(m.clone());
    }
    let known: Vec<&str> = local.members.iter().map(|m| m.program.as_str()).collect();
    if let Some(p) = local.problems.iter().find(|p| p.starts_with(program)) {
        bail!("{program} is not a usable etcd member: {p}. Nothing changed.");
    }
    bail!(
        "{program} is not an etcd member fild runs here (members: {}). Nothing changed.",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

pub(crate) fn is_up(s: ProcessState) -> bool {
    matches!(
        s,
        ProcessState::Running | ProcessState::Starting | ProcessState::Backoff
    )
}

pub(crate) async fn action(
    ctl: &Client,
    op: &str,
    program: &str,
) -> anyhow::Result<(bool, String)> {
    let r = ctl
        .action(op, vec![program.to_string()], true)
        .await
        .with_context(|| format!("{op} {program}"))?;
    let res = r
        .results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{op} {program}: fild answered nothing"))?;
    Ok((res.ok, res.message))
}

pub(crate) async fn stop(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    say(&format!("stop {program}"));
    let (ok, msg) = action(ctl, "stop", program).await?;
    if !ok {
        bail!("stop {program}: {msg}");
    }
    say(&format!("stop {program}: {msg}"));
    Ok(())
}

/// Start; a start that does not settle in RUNNING is reported, not fatal: fild keeps
/// retrying, and the steps after it wait for the member with their own deadlines.
pub(crate) async fn start(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    launch(ctl, say, "start", program).await
}

/// Restart, reported like [`start`].
pub(crate) async fn restart(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    launch(ctl, say, "restart", program).await
}

pub(crate) async fn launch(
    ctl: &Client,
    say: Say<'_>,
    verb: &str,
    program: &str,
) -> anyhow::Result<()> {
    say(&format!("{verb} {program}"));
    let (ok, msg) = action(ctl, verb, program).await?;
    if ok {
        say(&format!("{verb} {program}: {msg}"));
    } else {
        say(&format!(
            "{verb} {program}: {msg}; fild keeps retrying, waiting for it"
        ));
    }
    Ok(())
}
