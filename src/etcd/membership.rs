//! Membership changes, one member at a time, each behind the same guards: replace (recovery
//! mode two), add, remove, move (recovery mode one), rescue (quorum lost for good).
//!
//! Every operation runs in filc: it reads the members' configuration from fild
//! (`GET /v1/etcd/members`), asks the cluster itself (member list, `/health` of each voting
//! member), drives the programs through the control API (with `force`, so the quorum guard
//! does not refuse these internal steps), and records what it learns about a member
//! (`cluster_state=existing`, the cluster it joined, a new peer URL, the gateway's endpoints,
//! a rescue's one-time flag) in the runtime layer ([`super::runtime`]): the settings files
//! that ship with the kit are never written.
//!
//! Rules they all follow:
//! - Guards first: a refusal changes nothing (no snapshot, no stop, no membership change).
//! - A snapshot is taken from a healthy member before the first change.
//! - Data is never deleted: a data dir that must go is renamed `<data_dir>.<UTC timestamp>`.
//! - Every step is idempotent: an interrupted operation run again looks at the cluster and
//!   the data dir, skips what is done, and finishes the job.
//! - New members join as learners and are promoted once etcd says they caught up.
//!
//! After `remove`, the member's runtime state keeps `cluster_state=existing`; bringing it back goes
//! through `filc etcd add`, which moves any data dir aside and joins it afresh.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use etcd_client::{Client as Etcd, ConnectOptions, MemberAddOptions};

use super::{cluster, runtime, snapshot};
use crate::api::{ActionReply, EtcdMember, EtcdMembers, NamesRequest, ProcessState};
use crate::control::client::Client;

/// Where an operation reports each step as it runs.
pub type Say<'a> = &'a dyn Fn(&str);

/// How long `member add` / `remove` / `update` are retried while etcd says "not ready".
const CHANGE_BUDGET: Duration = Duration::from_secs(60);
/// How long a learner may take to catch up before it is promoted.
const PROMOTE_BUDGET: Duration = Duration::from_secs(120);
/// How long a (re)started member may take to show up healthy.
const VERIFY_BUDGET: Duration = Duration::from_secs(60);
/// Timeout of one membership request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const FORCE_NEW_CLUSTER: &str = "--force-new-cluster";

// ---------------------------------------------------------------------------------------
// Public operations
// ---------------------------------------------------------------------------------------

/// Recovery mode two: give `program`'s member a fresh data dir and a new member ID.
pub async fn replace(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd replace {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;
    say(&format!(
        "replace {program}: member {}, peer URL {}, data dir {}",
        me.name, me.peer_url, me.data_dir
    ));
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let mine = list.iter().find(|m| m.is(&me)).cloned();
    refuse_other_change(&list, &me).within(&what)?;
    // The others must hold quorum of the cluster the member belongs (or will belong) to.
    let others: Vec<&Mem> = list.iter().filter(|m| m.voter() && !m.is(&me)).collect();
    if others.is_empty() {
        bail!(
            "{what}: refused: {} is the only voting member; there is nothing to copy its data from (use filc etcd restore or rescue). Nothing changed.",
            me.name
        );
    }
    let health = settled_health(&others, quorum_of(others.len() + 1)).await;
    let healthy: Vec<&Mem> = others
        .iter()
        .zip(&health)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| *m)
        .collect();
    let size = others.len() + 1;
    let quorum = size / 2 + 1;
    say(&format!(
        "check quorum: {} of {} other voting members healthy, quorum of {size} is {quorum}",
        healthy.len(),
        others.len()
    ));
    if healthy.len() < quorum {
        bail!(
            "{what}: refused: the other members do not hold quorum on their own ({} of {} healthy, quorum {quorum}: {}). Nothing changed.",
            healthy.len(),
            others.len(),
            describe_unhealthy(&others, &health)
        );
    }
    let urls = client_urls(&healthy);
    take_snapshot(say, &local, &healthy).await.within(&what)?;
    let mut conn = Conn::new(urls);
    rejoin(ctl, say, &mut conn, &me, mine, true, &what)
        .await
        .within(&what)?;
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("replace {program}: done"));
    Ok(())
}

/// Add a configured member that is not in the cluster yet (learner, then promote).
pub async fn add(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd add {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;
    if !Path::new(&me.env_file).is_file() {
        bail!(
            "{what}: {program} is not configured: its env file {} does not exist. Nothing changed.",
            me.env_file
        );
    }
    check_ports(&local, &me).within(&what)?;
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let mine = list.iter().find(|m| m.is(&me)).cloned();
    if let Some(m) = &mine
        && m.voter()
        && m.started()
    {
        bail!(
            "{what}: refused: {} is already a member (ID {:x}); use filc etcd replace {program} to rebuild it. Nothing changed.",
            me.name,
            m.id
        );
    }
    refuse_other_change(&list, &me).within(&what)?;
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter() && !m.is(&me)).collect();
    let health = settled_health(&voters, quorum_of(voters.len() + 1)).await;
    let healthy: Vec<&Mem> = voters
        .iter()
        .zip(&health)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| *m)
        .collect();
    let size = voters.len() + 1;
    let quorum = size / 2 + 1;
    say(&format!(
        "check quorum: {} of {} voting members healthy; after the add, {size} members need {quorum}",
        healthy.len(),
        voters.len()
    ));
    if healthy.is_empty() || healthy.len() < quorum {
        bail!(
            "{what}: refused: a cluster of {size} would not hold quorum ({} of {} voting members healthy, quorum {quorum}: {}). Nothing changed.",
            healthy.len(),
            voters.len(),
            describe_unhealthy(&voters, &health)
        );
    }
    if size.is_multiple_of(2) {
        say(&format!(
            "warning: the cluster will have {size} voting members, an even number: it tolerates no more failures than {} members",
            size - 1
        ));
    }
    take_snapshot(say, &local, &healthy).await.within(&what)?;
    let mut conn = Conn::new(client_urls(&healthy));
    rejoin(ctl, say, &mut conn, &me, mine, false, &what)
        .await
        .within(&what)?;
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("add {program}: done"));
    Ok(())
}

/// Remove a member from the cluster, stop it, move its data dir aside.
pub async fn remove(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd remove {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;
    let list = cluster_list(&local, None).await.within(&what)?;
    let mine = list.iter().find(|m| m.is(&me)).cloned();
    let others: Vec<&Mem> = list.iter().filter(|m| m.voter() && !m.is(&me)).collect();
    let health = settled_health(&others, quorum_of(others.len())).await;
    let healthy: Vec<&Mem> = others
        .iter()
        .zip(&health)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| *m)
        .collect();
    if let Some(m) = &mine {
        if m.voter() {
            let voters = others.len() + 1;
            let size = others.len();
            let quorum = size / 2 + 1;
            say(&format!(
                "check quorum: {voters} voting members; after the removal {} of the remaining {size} are healthy, quorum of {size} is {quorum}",
                healthy.len()
            ));
            if voters <= 2 {
                bail!(
                    "{what}: refused: removing a member from a {voters}-member cluster is unsafe (quorum would hang on a single member). Nothing changed."
                );
            }
            if healthy.len() < quorum {
                bail!(
                    "{what}: refused: the remaining members would not hold quorum ({} of {size} healthy, quorum {quorum}: {}). Nothing changed.",
                    healthy.len(),
                    describe_unhealthy(&others, &health)
                );
            }
            if size.is_multiple_of(2) {
                say(&format!(
                    "warning: the cluster will have {size} voting members, an even number: it tolerates no more failures than {} members",
                    size - 1
                ));
            }
        } else {
            say(&format!(
                "{} is a learner (ID {:x}): removing it does not change quorum",
                me.name, m.id
            ));
        }
    }
    if healthy.is_empty() {
        bail!("{what}: refused: no other healthy member to ask. Nothing changed.");
    }
    take_snapshot(say, &local, &healthy).await.within(&what)?;
    let mut conn = Conn::new(client_urls(&healthy));
    match &mine {
        Some(m) => member_remove(say, &mut conn, m).await.within(&what)?,
        None => say(&format!(
            "member remove {}: not in the member list (already removed), skipped",
            me.name
        )),
    }
    stop(ctl, say, &me.program).await.within(&what)?;
    move_aside(say, &me.data_dir).within(&what)?;
    if me.cluster_state != "existing" {
        learn(
            say,
            &me.env_file,
            &me.runtime_file,
            &[("cluster_state", "existing")],
            &what,
        )
        .within(&what)?;
    }
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!(
        "remove {program}: done (to bring it back: filc etcd add {program})"
    ));
    Ok(())
}

/// Recovery mode one: the member's data moved to a new address; tell the cluster its new
/// peer URL, rewrite its env file, (re)start it.
pub async fn move_peer(
    ctl: &Client,
    program: &str,
    peer_url: &str,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let what = format!("filc etcd move {program} --peer-url {peer_url}");
    let port = url_port(peer_url).ok_or_else(|| {
        anyhow!(
            "{what}: {peer_url:?} is not a peer URL like http://10.0.20.4:2080. Nothing changed."
        )
    })?;
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;
    if let Some(gw) = &local.gateway
        && gw_port(gw) == Some(port)
    {
        bail!(
            "{what}: refused: port {port} is the gateway's listen port ({}). Nothing changed.",
            gw.listen_addr
        );
    }
    if url_port(&me.client_url) == Some(port)
        && cluster::host_port(&me.client_url) == cluster::host_port(peer_url)
    {
        bail!("{what}: refused: {peer_url} is the member's own client URL. Nothing changed.");
    }
    let list = cluster_list(&local, Some(&me)).await.within(&what)?;
    let Some(mine) = list
        .iter()
        .find(|m| m.is(&me) || m.peer_urls.iter().any(|u| u == peer_url))
        .cloned()
    else {
        bail!(
            "{what}: {} is not in the cluster's member list; use filc etcd add {program}. Nothing changed.",
            me.name
        );
    };
    for m in list.iter().filter(|m| m.id != mine.id) {
        if m.peer_urls
            .iter()
            .chain(&m.client_urls)
            .any(|u| cluster::host_port(u) == cluster::host_port(peer_url))
        {
            bail!(
                "{what}: refused: {peer_url} is already used by member {} ({:x}). Nothing changed.",
                m.label(),
                m.id
            );
        }
    }
    let others: Vec<&Mem> = list
        .iter()
        .filter(|m| m.voter() && m.id != mine.id)
        .collect();
    let health = settled_health(&others, quorum_of(others.len() + usize::from(mine.voter()))).await;
    let healthy: Vec<&Mem> = others
        .iter()
        .zip(&health)
        .filter(|(_, ok)| **ok)
        .map(|(m, _)| *m)
        .collect();
    let size = others.len() + usize::from(mine.voter());
    let quorum = size / 2 + 1;
    say(&format!(
        "check quorum: {} of {} other voting members healthy, quorum of {size} is {quorum}",
        healthy.len(),
        others.len()
    ));
    if healthy.is_empty() || healthy.len() < quorum {
        bail!(
            "{what}: refused: the other members do not hold quorum on their own ({} of {} healthy, quorum {quorum}: {}). Nothing changed.",
            healthy.len(),
            others.len(),
            describe_unhealthy(&others, &health)
        );
    }
    take_snapshot(say, &local, &healthy).await.within(&what)?;
    let mut conn = Conn::new(client_urls(&healthy));
    if mine.peer_urls == [peer_url.to_string()] {
        say(&format!(
            "member update {:x}: peer URL already {peer_url}, skipped",
            mine.id
        ));
    } else {
        say(&format!(
            "member update {} ({:x}): peer URLs {} -> {peer_url}",
            me.name,
            mine.id,
            mine.peer_urls.join(",")
        ));
        let id = mine.id;
        let urls = vec![peer_url.to_string()];
        retry(say, "member update", CHANGE_BUDGET, &mut conn, |mut c| {
            let urls = urls.clone();
            async move { c.member_update(id, urls).await.map(|_| ()) }
        })
        .await
        .within(&what)?;
    }
    rewrite_peer_url(say, &local, &me, peer_url).within(&what)?;
    restart(ctl, say, &me.program).await.within(&what)?;
    // Wait until the cluster sees it at its new address and it serves.
    say(&format!("verify {}: healthy at {peer_url}", me.name));
    let deadline = Instant::now() + VERIFY_BUDGET;
    let client_url = me.client_url.clone();
    loop {
        let listed = conn
            .list()
            .await
            .ok()
            .and_then(|l| l.into_iter().find(|m| m.id == mine.id));
        let ok_list = listed
            .as_ref()
            .is_some_and(|m| m.peer_urls == [peer_url.to_string()] && m.started());
        if ok_list && cluster::healthy(&client_url).await && read_works(&client_url).await {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: {} did not come up healthy at {peer_url} within {VERIFY_BUDGET:?} (see its log: filc tail {program} stderr)",
                me.name
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("move {program}: done"));
    Ok(())
}

/// Quorum lost for good: restart `program` (whose data is good) alone with
/// `--force-new-cluster` once, then without, then re-add the other local members one at a
/// time as in replace.
pub async fn rescue(ctl: &Client, program: &str, say: Say<'_>) -> anyhow::Result<()> {
    let what = format!("filc etcd rescue {program}");
    let local = members(ctl).await.within(&what)?;
    let me = find_local(&local, program).within(&what)?;

    // A next-start flag an interrupted rescue left (its start never came) must never stay.
    if !me.next_start_flags.is_empty() {
        say(&format!(
            "found next-start flags {} left in {} by an interrupted rescue: removing them",
            me.next_start_flags.join(" "),
            me.runtime_file
        ));
        clear_once(&me).within(&what)?;
    }

    // The survivor must run to be asked (member list is served locally, without quorum).
    let started_here = !is_up(me.state);
    if started_here {
        start(ctl, say, &me.program).await.within(&what)?;
    }
    let mut own = Conn::new(vec![me.client_url.clone()]);
    let list = match wait_list(&mut own, Duration::from_secs(30)).await {
        Ok(l) => l,
        Err(e) => {
            if started_here {
                let _ = stop(ctl, say, &me.program).await;
            }
            bail!(
                "{what}: {} does not answer at {} ({e:#}); its data may be damaged too: use filc etcd restore",
                me.name,
                me.client_url
            );
        }
    };
    let Some(mine) = list.iter().find(|m| m.is(&me)).cloned() else {
        bail!(
            "{what}: {} is not in its own member list. Nothing changed.",
            me.name
        );
    };
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
    let health = settled_health(&voters, quorum_of(voters.len())).await;
    let healthy = health.iter().filter(|h| **h).count();
    let quorum = voters.len() / 2 + 1;
    say(&format!(
        "check quorum: {healthy} of {} voting members healthy, quorum {quorum}",
        voters.len()
    ));
    if healthy >= quorum {
        let me_ok = voters
            .iter()
            .zip(&health)
            .any(|(m, ok)| m.id == mine.id && *ok);
        if !me_ok {
            bail!(
                "{what}: refused: the cluster holds quorum without {}; rescue is for a lost quorum (use filc etcd replace {program}). Nothing changed.",
                me.name
            );
        }
        say("quorum holds: no forced restart needed; re-adding the members that are missing");
    } else {
        // Snapshot from the survivor (served from its local store, no quorum needed).
        take_snapshot_from(say, &local, &me.client_url, &me.name)
            .await
            .within(&what)?;
        for m in &local.members {
            stop(ctl, say, &m.program).await.within(&what)?;
        }
        let remote: Vec<&Mem> = list
            .iter()
            .filter(|m| m.id != mine.id && !local.members.iter().any(|l| m.is(l)))
            .collect();
        if !remote.is_empty() {
            say(&format!(
                "warning: members on other hosts must be stopped before the forced restart: {}",
                remote
                    .iter()
                    .map(|m| m.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        copy_aside(say, &me.data_dir).within(&what)?;
        say(&format!(
            "runtime {}: {FORCE_NEW_CLUSTER} for the next start only (the launcher uses it up)",
            me.runtime_file
        ));
        runtime::set_once(
            Path::new(&me.runtime_file),
            Path::new(&me.env_file),
            &[FORCE_NEW_CLUSTER],
            &what,
        )
        .map_err(|e| anyhow!("{what}: {e}"))?;
        let forced = async {
            start(ctl, say, &me.program).await?;
            say(&format!(
                "wait for {} to serve as a one-member cluster",
                me.name
            ));
            wait_alone(&mut own, mine.id, &me.client_url).await
        }
        .await;
        // Used up by the start; cleared here too in case that start never reached etcd.
        clear_once(&me).within(&what)?;
        if let Err(e) = forced {
            let _ = stop(ctl, say, &me.program).await;
            return Err(anyhow!("{what}: {e:#}"));
        }
        restart(ctl, say, &me.program).await.within(&what)?;
        wait_healthy(say, &me.name, &me.client_url)
            .await
            .within(&what)?;
    }

    // Re-add the other local members, one at a time.
    let mut conn = Conn::new(vec![me.client_url.clone()]);
    for other in local.members.iter().filter(|m| m.program != me.program) {
        let list = conn.list().await.map_err(|e| anyhow!("{what}: {e}"))?;
        let theirs = list.iter().find(|m| m.is(other)).cloned();
        if let Some(t) = &theirs
            && t.voter()
            && t.started()
        {
            say(&format!(
                "{}: {} is a voting member already ({:x}), skipped",
                other.program, other.name, t.id
            ));
            continue;
        }
        let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
        let health = settled_health(&voters, voters.len()).await;
        if health.iter().any(|h| !h) {
            bail!(
                "{what}: stopped before re-adding {}: not every voting member is healthy ({}). Run the command again once they are.",
                other.program,
                describe_unhealthy(&voters, &health)
            );
        }
        say(&format!("re-add {} ({})", other.program, other.name));
        conn = Conn::new(client_urls(&voters));
        rejoin(ctl, say, &mut conn, other, theirs, true, &what)
            .await
            .within(&what)?;
    }
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("rescue {program}: done"));
    Ok(())
}

/// Prefix an error with the request, keeping its whole chain (filc prints only the top).
trait Within<T> {
    fn within(self, what: &str) -> anyhow::Result<T>;
}

impl<T> Within<T> for anyhow::Result<T> {
    fn within(self, what: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("{what}: {e:#}"))
    }
}

// ---------------------------------------------------------------------------------------
// The shared procedure: (re)join a member with a fresh data dir
// ---------------------------------------------------------------------------------------

/// Stop the program, remove the old member (when `remove_old` and it is a started voter),
/// move the data dir aside, add a learner (or reuse one left by an interrupted run), rewrite
/// the env file, start, promote, verify. Each step looks at the state first.
async fn rejoin(
    ctl: &Client,
    say: Say<'_>,
    conn: &mut Conn,
    me: &EtcdMember,
    mine: Option<Mem>,
    remove_old: bool,
    by: &str,
) -> anyhow::Result<()> {
    stop(ctl, say, &me.program).await?;
    // What is there now decides what is left to do.
    let mut mine = mine;
    let mut removed_now = false;
    if let Some(m) = &mine
        && m.voter()
        && m.started()
    {
        if !remove_old {
            bail!("{} is a started voting member; not removing it", me.name);
        }
        member_remove(say, conn, m).await?;
        mine = None;
        removed_now = true;
    }
    match &mine {
        None => {
            if remove_old && !removed_now {
                say(&format!(
                    "member remove {}: not in the member list (already removed), skipped",
                    me.name
                ));
            }
            move_aside(say, &me.data_dir)?;
        }
        Some(m) if !m.started() => {
            say(&format!(
                "member add {}: an unstarted {} with peer URL {} exists ({:x}), reused",
                me.name,
                if m.learner { "learner" } else { "member" },
                me.peer_url,
                m.id
            ));
            move_aside(say, &me.data_dir)?;
        }
        Some(m) => say(&format!(
            "member add {}: it is a started learner already ({:x}), reused with its data dir",
            me.name, m.id
        )),
    }
    let (id, list) = match mine {
        Some(m) => (m.id, conn.list().await.map_err(|e| anyhow!(e))?),
        None => member_add(say, conn, me).await?,
    };
    let learner = list.iter().any(|m| m.id == id && m.learner);
    let initial = initial_cluster(&list, id, &me.name);
    learn(
        say,
        &me.env_file,
        &me.runtime_file,
        &[("cluster_state", "existing"), ("initial_cluster", &initial)],
        by,
    )?;
    if !me.next_start_flags.is_empty() {
        clear_once(me)?;
    }
    start(ctl, say, &me.program).await?;
    if learner {
        promote(say, conn, id, &me.name).await?;
    }
    verify(say, conn, id, me).await
}

async fn member_remove(say: Say<'_>, conn: &mut Conn, m: &Mem) -> anyhow::Result<()> {
    say(&format!("member remove {} ({:x})", m.label(), m.id));
    let id = m.id;
    let r = retry(
        say,
        "member remove",
        CHANGE_BUDGET,
        conn,
        |mut c| async move { c.member_remove(id).await.map(|_| ()) },
    )
    .await;
    match r {
        Err(e) if e.to_string().contains("member not found") => {
            say("member remove: already removed");
            Ok(())
        }
        other => other,
    }
}

/// `member add --learner` with the member's peer URL; returns its ID and the member list.
async fn member_add(
    say: Say<'_>,
    conn: &mut Conn,
    me: &EtcdMember,
) -> anyhow::Result<(u64, Vec<Mem>)> {
    say(&format!(
        "member add {} as a learner, peer URL {}",
        me.name, me.peer_url
    ));
    let url = me.peer_url.clone();
    let r = retry(say, "member add", CHANGE_BUDGET, conn, |mut c| {
        let url = url.clone();
        async move {
            c.member_add([url], Some(MemberAddOptions::new().with_is_learner()))
                .await
                .map(|r| {
                    let id = r.member().map(|m| m.id()).unwrap_or(0);
                    (
                        id,
                        r.member_list().iter().map(Mem::from).collect::<Vec<_>>(),
                    )
                })
        }
    })
    .await;
    match r {
        Ok((id, list)) if id != 0 => {
            say(&format!("member add: new member ID {id:x}"));
            Ok((id, list))
        }
        Ok(_) => bail!("member add {}: etcd answered without a member", me.name),
        Err(e) if e.to_string().contains("already exists") => {
            // An earlier attempt went through after all.
            let list = conn.list().await.map_err(|e| anyhow!(e))?;
            let m = list
                .iter()
                .find(|m| m.peer_urls.contains(&me.peer_url))
                .ok_or_else(|| anyhow!("member add {}: {e}", me.name))?;
            say(&format!(
                "member add: peer URL already added ({:x}), reused",
                m.id
            ));
            Ok((m.id, list))
        }
        Err(e) => Err(e),
    }
}

/// Retry `member promote` until the learner has caught up.
async fn promote(say: Say<'_>, conn: &mut Conn, id: u64, name: &str) -> anyhow::Result<()> {
    say(&format!(
        "wait for learner {name} ({id:x}) to catch up, then promote it"
    ));
    let deadline = Instant::now() + PROMOTE_BUDGET;
    let mut last;
    loop {
        let r = match conn.client().await {
            Ok(c) => c.member_promote(id).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match r {
            Ok(_) => {
                say(&format!(
                    "member promote {name} ({id:x}): voting member now"
                ));
                return Ok(());
            }
            Err(e) if e.contains("in sync") => last = e,
            Err(e) if e.contains("can only promote a learner member") => {
                say(&format!("member promote {name}: already a voting member"));
                return Ok(());
            }
            Err(e) => {
                conn.failed();
                last = e;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "member promote {name} ({id:x}): not promoted within {PROMOTE_BUDGET:?}: {last} (run the command again to continue)"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The member is listed started and voting, answers `/health` and a linearizable read.
async fn verify(say: Say<'_>, conn: &mut Conn, id: u64, me: &EtcdMember) -> anyhow::Result<()> {
    say(&format!(
        "verify {}: started voting member, healthy, serves reads at {}",
        me.name, me.client_url
    ));
    let deadline = Instant::now() + VERIFY_BUDGET;
    let mut why;
    loop {
        let listed = match conn.list().await {
            Ok(l) => Ok(l.into_iter().find(|m| m.id == id)),
            Err(e) => {
                conn.failed();
                Err(e)
            }
        };
        match listed {
            Err(e) => why = e,
            Ok(listed) => match listed {
                Some(m) if m.started() && !m.learner => {
                    if !cluster::healthy(&me.client_url).await {
                        why = format!("{} is not healthy yet", me.client_url);
                    } else if !read_works(&me.client_url).await {
                        why = format!("a read through {} fails", me.client_url);
                    } else {
                        say(&format!(
                            "verified: {} ({id:x}) is a healthy voting member",
                            me.name
                        ));
                        return Ok(());
                    }
                }
                Some(m) => {
                    why = format!(
                        "{} is {}",
                        me.name,
                        if m.learner {
                            "still a learner"
                        } else {
                            "not started"
                        }
                    )
                }
                None => why = format!("{id:x} is not in the member list"),
            },
        }
        if Instant::now() > deadline {
            bail!("verify {}: {why} after {VERIFY_BUDGET:?}", me.name);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------

/// A member as the cluster lists it.
#[derive(Debug, Clone)]
struct Mem {
    id: u64,
    name: String,
    peer_urls: Vec<String>,
    client_urls: Vec<String>,
    learner: bool,
}

impl From<&etcd_client::Member> for Mem {
    fn from(m: &etcd_client::Member) -> Mem {
        Mem {
            id: m.id(),
            name: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            learner: m.is_learner(),
        }
    }
}

impl Mem {
    /// This member is the configured `me` (by name, or by peer URL when not started).
    fn is(&self, me: &EtcdMember) -> bool {
        (!self.name.is_empty() && self.name == me.name) || self.peer_urls.contains(&me.peer_url)
    }
    fn voter(&self) -> bool {
        !self.learner
    }
    fn started(&self) -> bool {
        !self.name.is_empty()
    }
    fn label(&self) -> String {
        if self.name.is_empty() {
            format!("unstarted {}", self.peer_urls.join(","))
        } else {
            self.name.clone()
        }
    }
}

/// One connection at a time to one of `urls`, moving on to the next after a failure.
struct Conn {
    urls: Vec<String>,
    at: usize,
    client: Option<Etcd>,
}

impl Conn {
    fn new(urls: Vec<String>) -> Conn {
        Conn {
            urls,
            at: 0,
            client: None,
        }
    }

    async fn client(&mut self) -> Result<&mut Etcd, String> {
        if self.urls.is_empty() {
            return Err("no endpoint to ask".into());
        }
        if self.client.is_none() {
            let url = &self.urls[self.at % self.urls.len()];
            let opts = ConnectOptions::new()
                .with_connect_timeout(cluster::TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT);
            let c = match cluster::tls(url, opts) {
                Ok(opts) => Etcd::connect([url.as_str()], Some(opts))
                    .await
                    .map_err(|e| format!("{url}: {e}")),
                Err(e) => Err(e),
            };
            match c {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.at += 1;
                    return Err(e);
                }
            }
        }
        Ok(self.client.as_mut().expect("connected"))
    }

    /// Drop the connection; the next request goes to the next endpoint.
    fn failed(&mut self) {
        self.client = None;
        self.at += 1;
    }

    async fn list(&mut self) -> Result<Vec<Mem>, String> {
        let mut last = String::new();
        for _ in 0..self.urls.len().max(1) {
            let r = match self.client().await {
                Ok(c) => c.member_list().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match r {
                Ok(l) => return Ok(l.members().iter().map(Mem::from).collect()),
                Err(e) => {
                    self.failed();
                    last = format!("member list: {e}");
                }
            }
        }
        Err(last)
    }
}

/// Whether an etcd error is worth retrying (the cluster is settling, not refusing).
fn transient(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    [
        "unhealthy cluster",
        "not enough started members",
        "not ready",
        "timed out",
        "timeout",
        "leader changed",
        "no leader",
        "too many requests",
        "transport",
        "unavailable",
        "connect",
        "deadline",
        "broken pipe",
        "reset",
        "stopped",
    ]
    .iter()
    .any(|p| e.contains(p))
}

/// Run `op` until it succeeds, retrying transient errors with backoff for `budget`.
async fn retry<T, F, Fut>(
    say: Say<'_>,
    what: &str,
    budget: Duration,
    conn: &mut Conn,
    mut op: F,
) -> anyhow::Result<T>
where
    F: FnMut(Etcd) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + budget;
    let mut delay = Duration::from_millis(500);
    let mut told = false;
    loop {
        let e = match conn.client().await {
            Ok(c) => match op(c.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => e.to_string(),
            },
            Err(e) => e,
        };
        if !transient(&e) {
            bail!("{what}: {e}");
        }
        conn.failed();
        if Instant::now() + delay > deadline {
            bail!("{what}: still refused after {budget:?}: {e}");
        }
        if !told {
            say(&format!("{what}: {e}; retrying for up to {budget:?}"));
            told = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

/// The member list, asked from any reachable member (not `exclude`'s own endpoint first).
async fn cluster_list(
    local: &EtcdMembers,
    exclude: Option<&EtcdMember>,
) -> anyhow::Result<Vec<Mem>> {
    let mut urls: Vec<String> = cluster::endpoints(local)
        .into_iter()
        .filter(|u| exclude.is_none_or(|m| *u != m.client_url))
        .collect();
    if let Some(m) = exclude {
        urls.push(m.client_url.clone());
    }
    let mut conn = Conn::new(urls);
    conn.list()
        .await
        .map_err(|e| anyhow!("no member answers a member list: {e}"))
}

async fn wait_list(conn: &mut Conn, budget: Duration) -> anyhow::Result<Vec<Mem>> {
    let deadline = Instant::now() + budget;
    loop {
        match conn.list().await {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() > deadline => bail!(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Quorum of a cluster of `size` voting members.
fn quorum_of(size: usize) -> usize {
    size / 2 + 1
}

/// How long a guard keeps asking while fewer members than it needs are healthy: right after
/// a membership change or a leader loss, `/health` fails for a few seconds.
const SETTLE: Duration = Duration::from_secs(10);

/// `/health` of each member, asked again (for up to [`SETTLE`]) until `need` are healthy.
async fn settled_health(ms: &[&Mem], need: usize) -> Vec<bool> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let h = health_of(ms).await;
        if h.iter().filter(|ok| **ok).count() >= need || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `/health` of each member, all at once (an unstarted member is not healthy).
async fn health_of(ms: &[&Mem]) -> Vec<bool> {
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in ms.iter().enumerate() {
        let url = m.client_urls.first().cloned();
        set.spawn(async move {
            let ok = match url {
                Some(u) => cluster::healthy(&u).await,
                None => false,
            };
            (i, ok)
        });
    }
    let mut out = vec![false; ms.len()];
    while let Some(Ok((i, ok))) = set.join_next().await {
        out[i] = ok;
    }
    out
}

fn describe_unhealthy(ms: &[&Mem], health: &[bool]) -> String {
    let bad: Vec<String> = ms
        .iter()
        .zip(health)
        .filter(|(_, ok)| !**ok)
        .map(|(m, _)| format!("{} unhealthy", m.label()))
        .collect();
    if bad.is_empty() {
        "all healthy".into()
    } else {
        bad.join(", ")
    }
}

fn client_urls(ms: &[&Mem]) -> Vec<String> {
    ms.iter()
        .filter_map(|m| m.client_urls.first().cloned())
        .collect()
}

/// etcd 3.4 allows one learner at a time; never start a change while another is half done.
fn refuse_other_change(list: &[Mem], me: &EtcdMember) -> anyhow::Result<()> {
    if let Some(m) = list
        .iter()
        .find(|m| !m.is(me) && (m.learner || !m.started()))
    {
        bail!(
            "refused: another membership change is in progress: {} ({:x}) is {}; finish it first (filc etcd add/replace of that member). Nothing changed.",
            m.label(),
            m.id,
            if m.learner {
                "a learner"
            } else {
                "not started"
            }
        );
    }
    Ok(())
}

/// `--initial-cluster` for a member joining now: every member's name=peerURL, the joining
/// one (`id`) under `name`.
fn initial_cluster(list: &[Mem], id: u64, name: &str) -> String {
    let mut parts = Vec::new();
    for m in list {
        let n = if m.id == id { name } else { m.name.as_str() };
        for u in &m.peer_urls {
            parts.push(format!("{n}={u}"));
        }
    }
    parts.join(",")
}

/// A linearizable read through this member's own endpoint.
async fn read_works(client_url: &str) -> bool {
    match cluster::connect(client_url).await {
        Ok(mut c) => c.get("fild-membership-probe", None).await.is_ok(),
        Err(_) => false,
    }
}

async fn wait_healthy(say: Say<'_>, name: &str, client_url: &str) -> anyhow::Result<()> {
    say(&format!("wait for {name} to be healthy at {client_url}"));
    let deadline = Instant::now() + VERIFY_BUDGET;
    while !(cluster::healthy(client_url).await && read_works(client_url).await) {
        if Instant::now() > deadline {
            bail!("{name} is not healthy at {client_url} after {VERIFY_BUDGET:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// After `--force-new-cluster`: the member serves and is the only voting member.
async fn wait_alone(conn: &mut Conn, id: u64, client_url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + VERIFY_BUDGET;
    loop {
        let alone = conn
            .list()
            .await
            .is_ok_and(|l| l.len() == 1 && l[0].id == id);
        if alone && cluster::healthy(client_url).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{client_url} did not come up as a one-member cluster within {VERIFY_BUDGET:?}");
        }
        conn.failed();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------
// fild, env files, data dirs
// ---------------------------------------------------------------------------------------

async fn members(ctl: &Client) -> anyhow::Result<EtcdMembers> {
    let local: EtcdMembers = ctl.get("/v1/etcd/members").await?;
    cluster::use_tls(&local);
    Ok(local)
}

fn find_local(local: &EtcdMembers, program: &str) -> anyhow::Result<EtcdMember> {
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

fn is_up(s: ProcessState) -> bool {
    matches!(
        s,
        ProcessState::Running | ProcessState::Starting | ProcessState::Backoff
    )
}

async fn action(ctl: &Client, op: &str, program: &str) -> anyhow::Result<(bool, String)> {
    let r: ActionReply = ctl
        .post(
            &format!("/v1/processes/{op}"),
            &NamesRequest {
                names: vec![program.to_string()],
                force: true,
            },
        )
        .await
        .with_context(|| format!("{op} {program}"))?;
    let res = r
        .results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{op} {program}: fild answered nothing"))?;
    Ok((res.ok, res.message))
}

async fn stop(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
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
async fn start(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    launch(ctl, say, "start", program).await
}

/// Restart, reported like [`start`].
async fn restart(ctl: &Client, say: Say<'_>, program: &str) -> anyhow::Result<()> {
    launch(ctl, say, "restart", program).await
}

async fn launch(ctl: &Client, say: Say<'_>, verb: &str, program: &str) -> anyhow::Result<()> {
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

async fn take_snapshot(say: Say<'_>, local: &EtcdMembers, from: &[&Mem]) -> anyhow::Result<()> {
    let mut last = String::from("no healthy member to take it from");
    for m in from {
        let Some(url) = m.client_urls.first() else {
            continue;
        };
        match take_snapshot_from(say, local, url, &m.name).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("snapshot: {last}. Nothing changed.")
}

async fn take_snapshot_from(
    say: Say<'_>,
    local: &EtcdMembers,
    url: &str,
    name: &str,
) -> anyhow::Result<()> {
    if local.backup_dir.is_empty() {
        bail!("snapshot: fild has no [etcd] backup_dir");
    }
    say(&format!(
        "snapshot from {name} ({url}) into {}",
        local.backup_dir
    ));
    let path = snapshot::take(url, name, Path::new(&local.backup_dir))
        .await
        .map_err(|e| anyhow!("snapshot: {e}"))?;
    say(&format!("snapshot: {}", path.display()));
    Ok(())
}

/// `20261123T101500Z`
fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
}

fn free_name(base: &str, suffix: &str) -> PathBuf {
    let first = PathBuf::from(format!("{base}.{}{suffix}", stamp()));
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|i| PathBuf::from(format!("{base}.{}-{i}{suffix}", stamp())))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// Rename a non-empty data dir to `<data_dir>.<UTC timestamp>`; nothing is deleted.
fn move_aside(say: Say<'_>, data_dir: &str) -> anyhow::Result<()> {
    let p = Path::new(data_dir);
    let empty = match std::fs::read_dir(p) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            say(&format!("data dir {data_dir}: absent, nothing to move"));
            return Ok(());
        }
        Err(e) => bail!("data dir {data_dir}: {e}"),
    };
    if empty {
        say(&format!("data dir {data_dir}: empty, nothing to move"));
        return Ok(());
    }
    let to = free_name(data_dir, "");
    std::fs::rename(p, &to)
        .with_context(|| format!("move {data_dir} aside to {}", to.display()))?;
    say(&format!("moved old data dir aside: {}", to.display()));
    Ok(())
}

/// Keep a copy of a data dir (`<data_dir>.<UTC timestamp>.copy`) before it is rewritten.
fn copy_aside(say: Say<'_>, data_dir: &str) -> anyhow::Result<()> {
    let p = Path::new(data_dir);
    if !p.is_dir() {
        return Ok(());
    }
    let to = free_name(data_dir, ".copy");
    copy_tree(p, &to).with_context(|| format!("copy {data_dir} to {}", to.display()))?;
    say(&format!("kept a copy of {data_dir}: {}", to.display()));
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// Record learned settings in a member's (or the gateway's) runtime layer, and say so.
fn learn(
    say: Say<'_>,
    settings_file: &str,
    runtime_file: &str,
    changes: &[(&str, &str)],
    by: &str,
) -> anyhow::Result<()> {
    let desc: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(&format!("runtime {runtime_file}: {}", desc.join(", ")));
    runtime::learn_in(settings_file, runtime_file, changes, by)
        .map(|_| ())
        .map_err(|e| anyhow!(e))
}

/// Drop a member's next-start flags unused.
fn clear_once(me: &EtcdMember) -> anyhow::Result<()> {
    runtime::clear_once(Path::new(&me.runtime_file), Path::new(&me.env_file))
        .map(|_| ())
        .map_err(|e| anyhow!(e))
}

fn url_port(url: &str) -> Option<u16> {
    let (scheme, _) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let hp = cluster::host_port(url);
    let (host, port) = hp.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    port.parse().ok().filter(|p| *p != 0)
}

fn gw_port(gw: &crate::api::EtcdGateway) -> Option<u16> {
    gw.listen_addr.rsplit_once(':')?.1.parse().ok()
}

/// The kit's defaults never use the gateway's port; a hand-edited env file might.
fn check_ports(local: &EtcdMembers, me: &EtcdMember) -> anyhow::Result<()> {
    let Some(gw) = &local.gateway else {
        return Ok(());
    };
    let Some(gp) = gw_port(gw) else {
        return Ok(());
    };
    for (what, url) in [("client", &me.client_url), ("peer", &me.peer_url)] {
        if url_port(url) == Some(gp) {
            bail!(
                "refused: {}'s {what} URL {url} uses the gateway's listen port {gp} ({}); change the port in {}. Nothing changed.",
                me.program,
                gw.listen_addr,
                me.env_file
            );
        }
    }
    Ok(())
}

/// Record the new peer URL in the member's runtime layer (and the listen URL unless the
/// settings file derives it from `$peer_url`), and its entry in every local member's initial
/// cluster.
fn rewrite_peer_url(
    say: Say<'_>,
    local: &EtcdMembers,
    me: &EtcdMember,
    peer_url: &str,
) -> anyhow::Result<()> {
    let what = format!("filc etcd move {}", me.program);
    let text =
        std::fs::read_to_string(&me.env_file).with_context(|| format!("read {}", me.env_file))?;
    let raw = super::envfile::raw_lines(&text);
    let mut changes: Vec<(&str, String)> = Vec::new();
    if me.peer_url != peer_url {
        changes.push(("peer_url", peer_url.to_string()));
    }
    // listen_peer_urls follows peer_url when it is written as `$peer_url`; else set it.
    if !raw
        .get("listen_peer_urls")
        .is_some_and(|v| v.contains("$peer_url") || v.contains("${peer_url}"))
    {
        changes.push(("listen_peer_urls", peer_url.to_string()));
    }
    let old_entry = format!("{}={}", me.name, me.peer_url);
    let new_entry = format!("{}={peer_url}", me.name);
    for m in &local.members {
        let ic: Vec<String> = m
            .initial_cluster
            .split(',')
            .map(|e| {
                if e.trim() == old_entry {
                    new_entry.clone()
                } else {
                    e.to_string()
                }
            })
            .collect();
        let ic = ic.join(",");
        if ic == m.initial_cluster {
            continue;
        }
        if m.program == me.program {
            changes.push(("initial_cluster", ic));
        } else {
            learn(
                say,
                &m.env_file,
                &m.runtime_file,
                &[("initial_cluster", &ic)],
                &what,
            )?;
        }
    }
    if changes.is_empty() {
        say(&format!("{}: already says {peer_url}", me.program));
        return Ok(());
    }
    let refs: Vec<(&str, &str)> = changes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    learn(say, &me.env_file, &me.runtime_file, &refs, &what)
}

/// Point the gateway at the voting members' client URLs; restart it when they changed.
async fn sync_gateway(ctl: &Client, say: Say<'_>, conn: &mut Conn) -> anyhow::Result<()> {
    let local = members(ctl).await?;
    let Some(gw) = &local.gateway else {
        return Ok(());
    };
    let list = match conn.list().await {
        Ok(l) => l,
        Err(e) => {
            say(&format!(
                "warning: gateway endpoints not checked ({e}); check {}",
                gw.env_file
            ));
            return Ok(());
        }
    };
    let mut want: Vec<String> = list
        .iter()
        .filter(|m| m.voter())
        .filter_map(|m| m.client_urls.first())
        .map(|u| cluster::host_port(u).to_string())
        .collect();
    // Keep the configured order for endpoints that stay.
    want.sort_by_key(|e| {
        gw.endpoints
            .iter()
            .position(|g| g == e)
            .unwrap_or(usize::MAX)
    });
    if want.is_empty() {
        return Ok(());
    }
    let mut have = gw.endpoints.clone();
    have.sort();
    let mut sorted = want.clone();
    sorted.sort();
    if have == sorted {
        say(&format!(
            "gateway {}: endpoints unchanged ({})",
            gw.program,
            gw.endpoints.join(",")
        ));
        return Ok(());
    }
    let endpoints = want.join(",");
    learn(
        say,
        &gw.env_file,
        &gw.runtime_file,
        &[("endpoints", &endpoints)],
        "gateway sync",
    )?;
    if is_up(gw.state) {
        restart(ctl, say, &gw.program).await?;
    } else {
        say(&format!(
            "gateway {} is not running; it uses the new endpoints when started",
            gw.program
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(id: u64, name: &str, peer: &str, learner: bool) -> Mem {
        Mem {
            id,
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: vec![],
            learner,
        }
    }

    #[test]
    fn initial_cluster_names_the_joining_member() {
        let l = vec![
            mem(1, "boot0", "http://a:1", false),
            mem(2, "", "http://c:3", true),
            mem(3, "boot1", "http://b:2", false),
        ];
        assert_eq!(
            initial_cluster(&l, 2, "boot2"),
            "boot0=http://a:1,boot2=http://c:3,boot1=http://b:2"
        );
    }

    #[test]
    fn url_ports() {
        assert_eq!(url_port("http://127.0.0.1:2080"), Some(2080));
        assert_eq!(url_port("https://h.example:1"), Some(1));
        assert_eq!(url_port("127.0.0.1:2080"), None);
        assert_eq!(url_port("http://:2080"), None);
        assert_eq!(url_port("http://h:x"), None);
        assert_eq!(url_port("ftp://h:1"), None);
    }

    #[test]
    fn transient_errors() {
        assert!(transient(
            "status: Unavailable, message: \"etcdserver: unhealthy cluster\""
        ));
        assert!(!transient("etcdserver: Peer URLs already exists"));
        assert!(!transient("etcdserver: member not found"));
    }
}
