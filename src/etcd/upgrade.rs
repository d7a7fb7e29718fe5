//! `filc etcd upgrade --to BINARY`: a rolling upgrade, one member at a time, followers first
//! and the leader last, a snapshot first ([`super::upgrade_plan`] decides the order and the
//! refusals). A member's turn: check that BINARY on its host reports the target version,
//! switch the member's `etcd_bin` in the runtime layer (never the shipped settings file),
//! restart it, wait until every voting member is healthy and it caught up, check the version
//! it reports. A member of another host is that host's fild's turn: this fild starts the
//! step there (`EtcdOpKind::Upgrade` with a `step`, under this operation's cluster-wide lock)
//! and relays its lines.
//!
//! A turn that fails stops the upgrade with the cluster healthy: a member whose new binary
//! does not come up goes back at once (its settings file's binary, on fresh data from the
//! cluster: a replace, its data moved aside), never an old binary on data a newer one
//! wrote. `filc etcd upgrade --back NAME` is that way back on request. etcd 3.4 and 3.5
//! have no downgrade of a cluster: once every member runs the new minor version the cluster
//! version follows, and an older member can no longer join.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

use super::Say;
use super::binary_probe;
use super::cluster::{self, ClusterStatus};
use super::cluster_lock::{self, Holder};
use super::conn::{Tls, endpoints};
use super::gate::Gate;
use super::guard;
use super::membership;
use super::peers;
use super::programs::{self, Programs};
use super::releases::{self, Version};
use super::runtime;
use super::steps;
use super::upgrade_plan::{self, Member, Where};
use crate::api::{EtcdMembers, EtcdOpKind, EtcdOpRequest, EtcdOpState, UpgradeStep};
use crate::config::ClusterSettings;

/// How long the cluster version may take to follow once every member runs the target (the
/// leader decides it on its own schedule, every few seconds).
const CLUSTER_VERSION_WAIT: Duration = Duration::from_secs(60);

/// What BINARY reports on this host, asked off the async thread (it runs the binary).
async fn version_here(to: &str) -> Result<Version, String> {
    let p = to.to_string();
    tokio::task::spawn_blocking(move || {
        let path = Path::new(&p);
        if !path.is_absolute() {
            return Err(format!("{p}: not an absolute path"));
        }
        let md = std::fs::metadata(path).map_err(|e| format!("{p}: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
            return Err(format!("{p}: not an executable file"));
        }
        binary_probe::version(path)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The operation: `step` None drives the whole upgrade from here; Some is one member's turn
/// that another host's fild drives.
pub async fn upgrade(
    ctl: &impl Programs,
    id: u64,
    to: &str,
    allow_known_bad: bool,
    step: Option<&UpgradeStep>,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    match step {
        Some(s) => peer_turn(ctl, to, s, say).await,
        None => drive(ctl, id, to, allow_known_bad, gate, say).await,
    }
}

async fn drive(
    ctl: &impl Programs,
    id: u64,
    to: &str,
    allow_known_bad: bool,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = "filc etcd upgrade";
    let local = programs::local_members(ctl)
        .await
        .map_err(|e| anyhow!("{what}: {e:#}"))?;
    let target = version_here(to).await.map_err(|e| {
        anyhow!("{what}: {e} (install the new etcd on this host first); nothing changed")
    })?;
    say(&format!("{to} reports etcd {target}"));
    let st = cluster::status(&local).await;
    say(&format!(
        "cluster: {}{}",
        st.summary(),
        st.cluster_version
            .as_ref()
            .map(|v| format!(", cluster version {v}"))
            .unwrap_or_default()
    ));
    let cluster_settings = ctl.cluster().await;
    let members = observe(&st, cluster_settings.as_ref(), say).await;
    let plan = upgrade_plan::plan(&members, target, allow_known_bad)
        .map_err(|e| anyhow!("{what}: {e}"))?;
    if plan.moves.is_empty() {
        if st.cluster_version.as_deref() != Some(plan.cluster_version.as_str()) {
            say(&format!(
                "every member runs etcd {target}; waiting for the cluster version to follow"
            ));
            wait_cluster_version(&local, &plan.cluster_version, target, say).await?;
        }
        say(&format!(
            "already done: every member runs etcd {target} (cluster version {})",
            plan.cluster_version
        ));
        return Ok(());
    }
    if !plan.already.is_empty() {
        say(&format!(
            "already on {target}, left as they are: {}",
            plan.already.join(", ")
        ));
    }
    if releases::is_known_bad(target) {
        say(&format!(
            "etcd {target} is a known-bad release, upgraded to with --allow-known-bad: fild starts its members with the corruption checks it offers, and `filc etcd status` warns until they run a fixed release"
        ));
    }
    let lines = upgrade_plan::lines(&plan, to, target, &local.backup_dir);
    gate.pass(say, &lines, None)?;
    let of = lines.len();

    // 1. The snapshot: the last way back.
    say(&steps::begin(1, of, &lines[0]));
    let from = st
        .members
        .iter()
        .find(|r| r.healthy && !r.client_url.is_empty())
        .ok_or_else(|| anyhow!("{what}: no healthy member to take the snapshot from"))?;
    membership::take_snapshot_from(say, &local, &from.client_url, &from.name).await?;
    say(&steps::done(1, of));

    // 2. Member by member.
    let lock = Holder::here(id, String::new()).tag();
    let mut upgraded: Vec<String> = plan.already.clone();
    for (i, m) in plan.moves.iter().enumerate() {
        say(&steps::begin(i + 2, of, &lines[i + 1]));
        let turn = match &m.at {
            Where::Here(program) => turn(ctl, &local, program, to, target, say).await,
            Where::Peer(host) => {
                let req = EtcdOpRequest {
                    kind: EtcdOpKind::Upgrade {
                        to: to.to_string(),
                        allow_known_bad,
                        step: Some(UpgradeStep {
                            member: m.name.clone(),
                            version: target.to_string(),
                            lock: lock.clone(),
                        }),
                    },
                    dry_run: false,
                    yes: false,
                    confirm: None,
                    force: false,
                };
                match cluster_settings.as_ref() {
                    Some(c) => on_peer(c, host, &req, say).await,
                    None => Err(anyhow!("no [cluster] settings to reach host {host}")),
                }
            }
            Where::Unknown => Err(anyhow!("no fild runs {}", m.name)),
        };
        if let Err(e) = turn {
            let now = cluster::status(&local).await;
            let left: Vec<&str> = plan.moves[i..].iter().map(|m| m.name.as_str()).collect();
            let back = if upgraded.iter().any(|u| !plan.already.contains(u)) {
                format!(
                    " To go back instead, while the cluster version is still {}: `filc etcd upgrade --back NAME` for each upgraded member (its name or its program, on its host), which runs its settings file's etcd again on fresh data from the cluster",
                    now.cluster_version.as_deref().unwrap_or("the old one")
                )
            } else {
                String::new()
            };
            bail!(
                "{what}: stopped at {}: {e:#}. The cluster: {}. Upgraded: {}; not upgraded: {}. To continue: fix what stopped it, then run `filc etcd upgrade --to {to}{}` again (it skips the members already on {target}).{back}",
                m.name,
                now.summary(),
                if upgraded.is_empty() {
                    "none".to_string()
                } else {
                    upgraded.join(", ")
                },
                left.join(", "),
                if allow_known_bad {
                    " --allow-known-bad"
                } else {
                    ""
                },
            );
        }
        upgraded.push(m.name.clone());
        say(&steps::done(i + 2, of));
    }

    // 3. The cluster version follows once every member runs the new minor version.
    say(&steps::begin(of, of, &lines[of - 1]));
    wait_cluster_version(&local, &plan.cluster_version, target, say).await?;
    say(&steps::done(of, of));
    say(&format!(
        "upgraded: every member runs etcd {target}; there is no downgrade of the cluster now (its version is {})",
        plan.cluster_version
    ));
    Ok(())
}

/// Wait (bounded) until the cluster version is `line`, which etcd's leader moves to on its
/// own schedule once every member runs the new minor version.
async fn wait_cluster_version(
    local: &EtcdMembers,
    line: &str,
    target: Version,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let end = Instant::now() + CLUSTER_VERSION_WAIT;
    loop {
        let now = cluster::status(local).await;
        if now.cluster_version.as_deref() == Some(line) {
            say(&format!("cluster version {line}: {}", now.summary()));
            return Ok(());
        }
        if Instant::now() >= end {
            bail!(
                "filc etcd upgrade: every member runs etcd {target}, but the cluster version is still {} after {} s ({}); it follows on the leader's schedule: run this again in a minute",
                now.cluster_version.as_deref().unwrap_or("unknown"),
                CLUSTER_VERSION_WAIT.as_secs(),
                now.summary()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The members as the plan sees them: each status row, and where it runs (here, or the host
/// of `[cluster]` whose fild reports a member of that name).
async fn observe(
    st: &ClusterStatus,
    cluster: Option<&ClusterSettings>,
    say: Say<'_>,
) -> Vec<Member> {
    let mut theirs: Vec<(String, String)> = Vec::new();
    if let Some(c) = cluster
        && st.members.iter().any(|r| r.program.is_none())
    {
        for r in peers::ask_others(c, |cl| async move { peers::bounded(cl.members()).await }).await
        {
            match r.answer {
                Ok(ms) => theirs.extend(ms.members.into_iter().map(|m| (m.name, r.host.clone()))),
                Err(e) => say(&format!("host {} ({}) does not answer: {e}", r.host, r.url)),
            }
        }
    }
    st.members
        .iter()
        .filter(|r| r.id.is_some())
        .map(|r| Member {
            name: r.name.clone(),
            version: releases::parse(&r.version).ok(),
            leader: r.leader,
            learner: r.learner,
            healthy: r.healthy,
            at: match &r.program {
                Some(p) => Where::Here(p.clone()),
                None => theirs
                    .iter()
                    .find(|(n, _)| *n == r.name)
                    .map(|(_, h)| Where::Peer(h.clone()))
                    .unwrap_or(Where::Unknown),
            },
        })
        .collect()
}

/// One member's turn on this host: check the binary, switch, restart, wait, check. A member
/// that does not come back on the new binary goes back ([`back_after_failure`]).
async fn turn(
    ctl: &impl Programs,
    local: &EtcdMembers,
    program: &str,
    to: &str,
    target: Version,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let m = programs::find_local(local, program, "filc etcd upgrade")?;
    match version_here(to).await {
        Ok(v) if v == target => {}
        Ok(v) => bail!(
            "{to} on this host reports etcd {v}, not {target}: install the same release on every host; {program} was not changed"
        ),
        Err(e) => bail!(
            "the new binary is missing here: {e}: install it on this host; {program} was not changed"
        ),
    }
    let st = cluster::status(local).await;
    if st.verdict != cluster::Verdict::Healthy {
        bail!(
            "the cluster is not healthy ({}); {program} was not changed",
            st.summary()
        );
    }
    guard::check(&st, &[program.to_string()], "upgrading")
        .map_err(|e| anyhow!("{e}; {program} was not changed"))?;
    let old = m.argv.first().cloned().unwrap_or_default();
    let from = if m.etcd_version.is_empty() {
        "?".to_string()
    } else {
        m.etcd_version.clone()
    };
    runtime::learn_in(
        &m.env_file,
        &m.runtime_file,
        &[("etcd_bin", to)],
        &format!("filc etcd upgrade --to {to} (from etcd {from}, {old})"),
    )
    .map_err(|e| anyhow!("{e}; {program} was not changed"))?;
    say(&format!(
        "{program}: etcd binary {old} -> {to} (in {}; {} is unchanged)",
        m.runtime_file, m.env_file
    ));
    programs::restart(ctl, say, program).await?;
    let waited = guard::wait_ready(local, program, Instant::now() + guard::ROLLING_WAIT, say).await;
    let reported = cluster::status(local)
        .await
        .members
        .iter()
        .find(|r| r.program.as_deref() == Some(program))
        .map(|r| r.version.clone())
        .unwrap_or_default();
    match waited {
        Ok(()) if reported == target.to_string() => {
            say(&format!(
                "{program} runs etcd {target}, healthy and caught up"
            ));
            Ok(())
        }
        Ok(()) => bail!("{program} is healthy but reports etcd {reported:?}, not {target}"),
        Err(summary) => {
            let why = format!(
                "{program} was not healthy and caught up on etcd {target} within {} s ({summary}; its log: filc tail {program} stderr)",
                guard::ROLLING_WAIT.as_secs()
            );
            say(&format!("{why}: it goes back"));
            back_after_failure(ctl, program, say)
                .await
                .map_err(|e| anyhow!("{why}; going back failed too: {e:#}"))?;
            Err(anyhow!("{why}; it went back to its settings file's etcd"))
        }
    }
}

/// Forget the member's upgraded binary and replace it: its settings file's etcd on fresh
/// data from the cluster (its data dir moved aside). The member is down, so removing it
/// costs nothing the cluster has: no confirmation is asked.
async fn back_after_failure(
    ctl: &impl Programs,
    program: &str,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let local = programs::local_members(ctl).await?;
    let m = programs::find_local(&local, program, "filc etcd upgrade --back")?;
    runtime::forget_in(&m.env_file, &m.runtime_file, &["etcd_bin"]).map_err(|e| anyhow!(e))?;
    programs::stop(ctl, say, program).await?;
    let yes = Gate {
        yes: true,
        ..Gate::default()
    };
    membership::replace(ctl, program, &yes, say).await
}

/// `filc etcd upgrade --back NAME`: refused unless an upgrade switched the member's binary
/// and the cluster version still admits its settings file's etcd; then a replace (which asks
/// before it removes the healthy member).
pub async fn back(
    ctl: &impl Programs,
    program: &str,
    gate: &Gate,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd upgrade --back {program}");
    let local = programs::local_members(ctl)
        .await
        .map_err(|e| anyhow!("{what}: {e:#}"))?;
    // The member's etcd name works too (the upgrade's messages name members).
    let program = local
        .members
        .iter()
        .find(|m| m.program != program && m.name == program)
        .map(|m| m.program.clone())
        .unwrap_or_else(|| program.to_string());
    let program = program.as_str();
    let m = programs::find_local(&local, program, &what)?;
    let switched = m
        .learned
        .iter()
        .find(|l| l.key == "etcd_bin" && l.applies)
        .ok_or_else(|| {
            anyhow!("{what}: {program} runs its settings file's etcd binary (no upgrade switched it); nothing changed")
        })?
        .clone();
    let st = cluster::status(&local).await;
    // What the settings file's binary is, asked without the switch.
    runtime::forget_in(&m.env_file, &m.runtime_file, &["etcd_bin"]).map_err(|e| anyhow!(e))?;
    // Put the switch back (a refusal, or a replace that changed nothing).
    let relearn = || {
        let _ = runtime::learn_in(
            &m.env_file,
            &m.runtime_file,
            &[("etcd_bin", switched.value.as_str())],
            &switched.by,
        );
    };
    let undo = |why: String| -> anyhow::Error {
        relearn();
        anyhow!("{what}: {why}; nothing changed")
    };
    let fresh = programs::local_members(ctl)
        .await
        .map_err(|e| undo(e.to_string()))?;
    let old = programs::find_local(&fresh, program, &what).map_err(|e| undo(e.to_string()))?;
    let Ok(old_v) = releases::parse(&old.etcd_version) else {
        return Err(undo(format!(
            "the settings file's etcd binary ({}) reports no version: {}",
            old.argv.first().cloned().unwrap_or_default(),
            old.etcd_version_problem
        )));
    };
    if let Some(cv) = st
        .cluster_version
        .as_deref()
        .and_then(|v| releases::parse(v).ok())
        && (old_v.major, old_v.minor) < (cv.major, cv.minor)
    {
        return Err(undo(format!(
            "the cluster version is {}.{} (every member ran it), and an etcd {old_v} member cannot join it: etcd {}.{} has no downgrade. The way back from here is a restore of the snapshot taken before the upgrade onto the old etcd: on every host, remove `etcd_bin` from each member's runtime file ({}, where the upgrade recorded the new binary) so its settings file's etcd applies again, then `filc etcd restore FILE`",
            cv.major, cv.minor, cv.major, cv.minor, m.runtime_file
        )));
    }
    say(&format!(
        "{program} goes back to etcd {old_v} ({}), on fresh data from the cluster",
        old.argv.first().cloned().unwrap_or_default()
    ));
    match membership::replace(ctl, program, gate, say).await {
        Ok(()) => Ok(()),
        Err(e) => {
            // Unconfirmed or refused before any change: the member keeps its upgraded binary.
            let running = ctl
                .members()
                .await
                .ok()
                .and_then(|l| l.members.into_iter().find(|x| x.program == program))
                .is_some_and(|x| programs::is_up(x.state));
            if running {
                relearn();
            }
            Err(e)
        }
    }
}

/// A turn another host drives: under its lock, this host's member of that name.
async fn peer_turn(
    ctl: &impl Programs,
    to: &str,
    s: &UpgradeStep,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd upgrade (member {})", s.member);
    let local = programs::local_members(ctl)
        .await
        .map_err(|e| anyhow!("{what}: {e:#}"))?;
    let held = cluster_lock::current(&endpoints(&local), &Tls::of(&local))
        .await
        .map_err(|e| anyhow!("{what}: cannot read the cluster-wide lock: {e}"))?;
    match held {
        Some(h) if h.tag() == s.lock => {}
        Some(h) => bail!(
            "{what}: the cluster-wide lock is held by {} ({}), not by the upgrade that asked ({}); nothing changed",
            h.tag(),
            h.op,
            s.lock
        ),
        None => bail!(
            "{what}: the upgrade that asked ({}) does not hold the cluster-wide lock; nothing changed",
            s.lock
        ),
    }
    let target = releases::parse(&s.version).map_err(|e| anyhow!("{what}: {e}"))?;
    let program = local
        .members
        .iter()
        .find(|m| m.name == s.member)
        .map(|m| m.program.clone())
        .ok_or_else(|| anyhow!("{what}: this fild runs no member named {}", s.member))?;
    turn(ctl, &local, &program, to, target, say).await
}

/// Start `req` on host `host`'s fild and relay its lines (prefixed with the host) until it
/// ends.
async fn on_peer(
    c: &ClusterSettings,
    host: &str,
    req: &EtcdOpRequest,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let h = c
        .hosts
        .iter()
        .find(|h| h.name == host)
        .ok_or_else(|| anyhow!("host {host} is not in [cluster] hosts"))?;
    let cl = peers::client(c, h);
    let mut op = peers::bounded(cl.start_op(req))
        .await
        .map_err(|e| anyhow!("host {host}'s fild did not start the step: {e}"))?;
    let mut misses = 0;
    loop {
        for l in &op.lines {
            say(&format!("{host}: {}", l.text));
        }
        let from = op.from + op.lines.len();
        if op.state != EtcdOpState::Running && from >= op.total_lines {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(15), cl.op(op.id, from, 10)).await {
            Ok(Ok(next)) => {
                misses = 0;
                op = next;
            }
            Ok(Err(e)) if misses < 5 => {
                misses += 1;
                tracing::warn!(host, error = %e, "Following an upgrade step.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) if misses < 5 => misses += 1,
            Ok(Err(e)) => bail!(
                "lost host {host}'s fild while it ran operation {}: {e} (`filc etcd ops` there says how it ended)",
                op.id
            ),
            Err(_) => bail!(
                "host {host}'s fild stopped answering while it ran operation {} (`filc etcd ops` there says how it ended)",
                op.id
            ),
        }
    }
    match op.state {
        EtcdOpState::Succeeded => Ok(()),
        _ => bail!(
            "on host {host}: {}",
            op.error.unwrap_or_else(|| op.state.as_str().to_string())
        ),
    }
}
