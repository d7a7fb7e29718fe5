//! The operations' way to fild's programs: one small interface, [`Programs`] (the members view
//! and start/stop/restart of one program, past the quorum guard: the operations do their own
//! quorum checks). filc serves it with the control client; inside fild the supervisor's
//! [`Handle`] serves it, so an operation runs the same code wherever it runs.

use std::future::Future;

use anyhow::{Context, anyhow, bail};

use super::Say;
use crate::api::{ActionReply, EtcdMember, EtcdMembers, ProcessState};
use crate::control::client::Client;
use crate::supervisor::{Handle, Request, UserOp};

/// What an operation needs of fild.
pub trait Programs: Sync {
    /// The etcd members and gateway as fild evaluates them.
    fn members(&self) -> impl Future<Output = anyhow::Result<EtcdMembers>> + Send;
    /// `op` on `names`, never refused by the quorum guard: fild's answer for each.
    fn act(
        &self,
        op: UserOp,
        names: Vec<String>,
    ) -> impl Future<Output = anyhow::Result<ActionReply>> + Send;
}

impl Programs for Client {
    async fn members(&self) -> anyhow::Result<EtcdMembers> {
        Ok(Client::members(self).await?)
    }

    async fn act(&self, op: UserOp, names: Vec<String>) -> anyhow::Result<ActionReply> {
        Ok(self.action(op.as_str(), names, true).await?)
    }
}

impl Programs for Handle {
    async fn members(&self) -> anyhow::Result<EtcdMembers> {
        let view = self
            .call(|reply| Request::Programs { reply })
            .await
            .map_err(|e| anyhow!(e.error))?;
        Ok(super::members::collect_off_loop(view).await)
    }

    async fn act(&self, op: UserOp, names: Vec<String>) -> anyhow::Result<ActionReply> {
        self.call(|reply| Request::Action { op, names, reply })
            .await
            .map_err(|e| anyhow!(e.error))
    }
}

pub(crate) async fn members(ctl: &impl Programs) -> anyhow::Result<EtcdMembers> {
    ctl.members().await
}

/// The members fild runs, or a clear error when there are none.
pub(crate) async fn local_members(ctl: &impl Programs) -> anyhow::Result<EtcdMembers> {
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
    ctl: &impl Programs,
    op: UserOp,
    program: &str,
) -> anyhow::Result<(bool, String)> {
    let r = ctl
        .act(op, vec![program.to_string()])
        .await
        .with_context(|| format!("{} {program}", op.as_str()))?;
    let res = r
        .results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{} {program}: fild answered nothing", op.as_str()))?;
    Ok((res.ok, res.message))
}

pub(crate) async fn stop(ctl: &impl Programs, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    say(&format!("stop {program}"));
    let (ok, msg) = action(ctl, UserOp::Stop, program).await?;
    if !ok {
        bail!("stop {program}: {msg}");
    }
    say(&format!("stop {program}: {msg}"));
    Ok(())
}

/// Start; a start that does not settle in RUNNING is reported, not fatal: fild keeps
/// retrying, and the steps after it wait for the member with their own deadlines.
pub(crate) async fn start(ctl: &impl Programs, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    launch(ctl, say, UserOp::Start, program).await
}

/// Restart, reported like [`start`].
pub(crate) async fn restart(
    ctl: &impl Programs,
    say: Say<'_>,
    program: &str,
) -> anyhow::Result<()> {
    launch(ctl, say, UserOp::Restart, program).await
}

pub(crate) async fn launch(
    ctl: &impl Programs,
    say: Say<'_>,
    op: UserOp,
    program: &str,
) -> anyhow::Result<()> {
    let verb = op.as_str();
    say(&format!("{verb} {program}"));
    let (ok, msg) = action(ctl, op, program).await?;
    if ok {
        say(&format!("{verb} {program}: {msg}"));
    } else {
        say(&format!(
            "{verb} {program}: {msg}; fild keeps retrying, waiting for it"
        ));
    }
    Ok(())
}
