//! Recovery mode one: a member keeps its data and ID under a new peer URL.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use super::add_remove::{gw_port, url_port};
use super::gateway::sync_gateway;
use super::*;
use crate::api::{EtcdMember, EtcdMembers};
use crate::control::client::Client;
use crate::etcd::Say;
use crate::etcd::conn::{
    self, Conn, Mem, VERIFY_BUDGET, client_urls, cluster_list, read_works, retry, settled_health,
};
use crate::etcd::poll::poll_until;
use crate::etcd::programs::{find_local, members, restart};
use crate::etcd::quorum::{self, Change, Verdict, describe_unhealthy};

/// Recovery mode one: the member's data moved to a new address; tell the cluster its new
/// peer URL, record it in the runtime layer, (re)start it.
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
        && conn::host_port(&me.client_url) == conn::host_port(peer_url)
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
            .any(|u| conn::host_port(u) == conn::host_port(peer_url))
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
    let change = Change::Move {
        voter: mine.voter(),
    };
    let f = quorum::figures(change, others.len());
    let health = settled_health(&others, f.quorum).await;
    let healthy = quorum::healthy(&others, &health);
    let (size, quorum) = (f.size, f.quorum);
    say(&format!(
        "check quorum: {} of {} other voting members healthy, quorum of {size} is {quorum}",
        healthy.len(),
        others.len()
    ));
    if quorum::verdict(change, f, healthy.len()) == Verdict::NoQuorum {
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
    let client_url = me.client_url.clone();
    let moved = async || {
        let listed = conn
            .list()
            .await
            .ok()
            .and_then(|l| l.into_iter().find(|m| m.id == mine.id));
        let ok_list = listed
            .as_ref()
            .is_some_and(|m| m.peer_urls == [peer_url.to_string()] && m.started());
        (ok_list && conn::healthy(&client_url).await && read_works(&client_url).await)
            .then_some(())
            .ok_or(())
    };
    if poll_until(VERIFY_BUDGET, Duration::from_millis(500), moved)
        .await
        .is_err()
    {
        bail!(
            "{what}: {} did not come up healthy at {peer_url} within {VERIFY_BUDGET:?} (see its log: filc tail {program} stderr)",
            me.name
        );
    }
    sync_gateway(ctl, say, &mut conn).await.within(&what)?;
    say(&format!("move {program}: done"));
    Ok(())
}

/// Record the new peer URL in the member's runtime layer (and the listen URL unless the
/// settings file derives it from `$peer_url`), and its entry in every local member's initial
/// cluster.
pub(crate) fn rewrite_peer_url(
    say: Say<'_>,
    local: &EtcdMembers,
    me: &EtcdMember,
    peer_url: &str,
) -> anyhow::Result<()> {
    let what = format!("filc etcd move {}", me.program);
    let text =
        std::fs::read_to_string(&me.env_file).with_context(|| format!("read {}", me.env_file))?;
    let raw = crate::etcd::envfile::raw_lines(&text);
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
