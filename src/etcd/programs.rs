//! The operations' way to fild's programs: one small interface, [`Programs`] (the members view
//! and start/stop/restart of one program, past the quorum guard: the operations do their own
//! quorum checks). filc serves it with the control client; inside fild the supervisor's
//! [`Handle`] serves it, so an operation runs the same code wherever it runs.

use std::future::Future;

use anyhow::{Context, anyhow, bail};

use super::Say;
use crate::api::{ActionReply, EtcdMember, EtcdMembers, ProcessState};
use crate::config::ClusterSettings;
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
    /// `[cluster]`: the other hosts' filds (None: a single host, or filc, which asks no peer).
    fn cluster(&self) -> impl Future<Output = Option<ClusterSettings>> + Send;
}

impl Programs for Client {
    async fn members(&self) -> anyhow::Result<EtcdMembers> {
        Ok(Client::members(self).await?)
    }

    async fn act(&self, op: UserOp, names: Vec<String>) -> anyhow::Result<ActionReply> {
        Ok(self.action(op.as_str(), names, true).await?)
    }

    async fn cluster(&self) -> Option<ClusterSettings> {
        None
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

    async fn cluster(&self) -> Option<ClusterSettings> {
        self.call(|reply| Request::Programs { reply })
            .await
            .ok()
            .and_then(|v| v.cluster)
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

/// The member run by `program`; `what` is the command run (`filc etcd replace boot0`), which
/// the error for an unknown name rewrites into the command to run instead ([`name_hint`]).
pub(crate) fn find_local(
    local: &EtcdMembers,
    program: &str,
    what: &str,
) -> anyhow::Result<EtcdMember> {
    if let Some(m) = local.members.iter().find(|m| m.program == program) {
        return Ok(m.clone());
    }
    let known: Vec<&str> = local.members.iter().map(|m| m.program.as_str()).collect();
    if let Some(p) = local.problems.iter().find(|p| p.starts_with(program)) {
        bail!("{program} is not a usable etcd member: {p}. Nothing changed.");
    }
    let hint = name_hint(local, program, false, what)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    bail!(
        "{program} is not the program of an etcd member fild runs here (programs: {}){hint}. Nothing changed.",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Edits that turn `a` into `b` (Levenshtein distance).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `what` (a command such as `filc etcd move boot0 --peer-url URL`) with the name `given`
/// replaced by `program`.
fn retry_with(what: &str, given: &str, program: &str) -> String {
    let mut words: Vec<&str> = what.split(' ').collect();
    if let Some(w) = words.iter_mut().skip(3).find(|w| **w == given) {
        *w = program;
    }
    words.join(" ")
}

/// The way forward for a name that is no member's program (`what`: the command run with it):
/// when it is the etcd member name of one (any case), or close to exactly one program's
/// name (the gateway's too when `gateway`), that program and the command to run instead.
pub fn name_hint(local: &EtcdMembers, given: &str, gateway: bool, what: &str) -> Option<String> {
    let run = |program: &str| format!("run `{}`", retry_with(what, given, program));
    if let Some(m) = local
        .members
        .iter()
        .find(|m| !m.name.is_empty() && m.name.eq_ignore_ascii_case(given))
    {
        return Some(format!(
            "{given} is the etcd member name of program {}: {}",
            m.program,
            run(&m.program)
        ));
    }
    let mut programs: Vec<&str> = local.members.iter().map(|m| m.program.as_str()).collect();
    if gateway {
        programs.extend(local.gateway.iter().map(|g| g.program.as_str()));
    }
    let given_l = given.to_ascii_lowercase();
    let scored: Vec<(usize, &str)> = programs
        .iter()
        .map(|p| (distance(&given_l, &p.to_ascii_lowercase()), *p))
        .collect();
    let best = scored.iter().map(|(d, _)| *d).min()?;
    let limit = if given.chars().count() <= 4 { 1 } else { 2 };
    let mut closest = scored.iter().filter(|(d, _)| *d == best);
    match (closest.next(), closest.next()) {
        (Some((_, p)), None) if best <= limit => {
            Some(format!("did you mean program {p}? {}", run(p)))
        }
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::members::fixtures::member;

    fn local() -> EtcdMembers {
        EtcdMembers {
            members: vec![member(0), member(1), member(2)],
            gateway: None,
            problems: vec![],
            backup_dir: String::new(),
        }
    }

    #[test]
    fn a_member_name_or_a_close_name_gets_the_command_to_run() {
        let l = local();
        let hint = |given: &str, what: &str| name_hint(&l, given, false, what);
        assert_eq!(
            hint("boot0", "filc etcd replace boot0").as_deref(),
            Some("boot0 is the etcd member name of program etcd-0: run `filc etcd replace etcd-0`")
        );
        assert_eq!(
            hint("BOOT2", "filc etcd move BOOT2 --peer-url http://h:2280").as_deref(),
            Some(
                "BOOT2 is the etcd member name of program etcd-2: run `filc etcd move etcd-2 --peer-url http://h:2280`"
            )
        );
        for typo in ["etcd0", "etcd_1", "ETCD-1", "etc-1", "etcd-1x"] {
            let h = hint(typo, &format!("filc etcd rescue {typo}")).unwrap_or_default();
            assert!(h.starts_with("did you mean program etcd-"), "{typo}: {h}");
            assert!(h.contains("run `filc etcd rescue etcd-"), "{typo}: {h}");
        }
        assert_eq!(
            hint("etcd_1", "filc etcd add etcd_1").as_deref(),
            Some("did you mean program etcd-1? run `filc etcd add etcd-1`")
        );
        // As close to several programs as to one: no guess. Far from all: none either.
        assert_eq!(hint("etcd-7", "filc etcd remove etcd-7"), None);
        assert_eq!(hint("boot", "filc etcd remove boot"), None);
        assert_eq!(hint("postgres", "filc etcd remove postgres"), None);
        // The gateway only where it is an answer (show).
        let mut l = local();
        l.gateway = Some(crate::api::EtcdGateway {
            program: "etcd-gw".into(),
            state: ProcessState::Running,
            env_file: String::new(),
            runtime_file: String::new(),
            listen_addr: String::new(),
            endpoints: vec![],
            argv: vec![],
            learned: vec![],
        });
        assert_eq!(
            name_hint(&l, "etcdgw", true, "filc etcd show etcdgw --json").as_deref(),
            Some("did you mean program etcd-gw? run `filc etcd show etcd-gw --json`")
        );
        assert_eq!(
            name_hint(&l, "etcdgw", false, "filc etcd replace etcdgw"),
            None
        );
    }

    #[test]
    fn find_local_says_what_to_run_instead() {
        let e = find_local(&local(), "boot1", "filc etcd remove boot1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "boot1 is not the program of an etcd member fild runs here (programs: etcd-0, etcd-1, etcd-2); boot1 is the etcd member name of program etcd-1: run `filc etcd remove etcd-1`. Nothing changed."
        );
        assert_eq!(distance("etcd-0", "etcd0"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
