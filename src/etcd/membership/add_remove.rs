//! Adding and removing one member at a time, never below quorum.

use std::path::Path;

use anyhow::bail;

use super::gateway::sync_gateway;
use super::rejoin::{member_remove, rejoin};
use super::*;
use crate::api::{EtcdMember, EtcdMembers};
use crate::control::client::Client;
use crate::etcd::Say;
use crate::etcd::conn::{self, Conn, Mem, client_urls, cluster_list, settled_health};
use crate::etcd::datadir::move_aside;
use crate::etcd::programs::{find_local, members, stop};
use crate::etcd::quorum::{self, Change, Verdict, describe_unhealthy, refuse_other_change};

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
    let f = quorum::figures(Change::Add, voters.len());
    let health = settled_health(&voters, f.quorum).await;
    let healthy = quorum::healthy(&voters, &health);
    let (size, quorum) = (f.size, f.quorum);
    say(&format!(
        "check quorum: {} of {} voting members healthy; after the add, {size} members need {quorum}",
        healthy.len(),
        voters.len()
    ));
    let verdict = quorum::verdict(Change::Add, f, healthy.len());
    if verdict == Verdict::NoQuorum {
        bail!(
            "{what}: refused: a cluster of {size} would not hold quorum ({} of {} voting members healthy, quorum {quorum}: {}). Nothing changed.",
            healthy.len(),
            voters.len(),
            describe_unhealthy(&voters, &health)
        );
    }
    if verdict == (Verdict::Go { even: true }) {
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
    let f = quorum::figures(Change::Remove, others.len());
    let health = settled_health(&others, f.quorum).await;
    let healthy = quorum::healthy(&others, &health);
    if let Some(m) = &mine {
        if m.voter() {
            let voters = others.len() + 1;
            let (size, quorum) = (f.size, f.quorum);
            say(&format!(
                "check quorum: {voters} voting members; after the removal {} of the remaining {size} are healthy, quorum of {size} is {quorum}",
                healthy.len()
            ));
            let verdict = quorum::verdict(Change::Remove, f, healthy.len());
            if verdict == Verdict::TooSmall {
                bail!(
                    "{what}: refused: removing a member from a {voters}-member cluster is unsafe (quorum would hang on a single member). Nothing changed."
                );
            }
            if verdict == Verdict::NoQuorum {
                bail!(
                    "{what}: refused: the remaining members would not hold quorum ({} of {size} healthy, quorum {quorum}: {}). Nothing changed.",
                    healthy.len(),
                    describe_unhealthy(&others, &health)
                );
            }
            if verdict == (Verdict::Go { even: true }) {
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

pub(crate) fn url_port(url: &str) -> Option<u16> {
    let (scheme, _) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let hp = conn::host_port(url);
    let (host, port) = hp.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    port.parse().ok().filter(|p| *p != 0)
}

pub(crate) fn gw_port(gw: &crate::api::EtcdGateway) -> Option<u16> {
    gw.listen_addr.rsplit_once(':')?.1.parse().ok()
}

/// The kit's defaults never use the gateway's port; a hand-edited env file might.
pub(crate) fn check_ports(local: &EtcdMembers, me: &EtcdMember) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ports() {
        assert_eq!(url_port("http://127.0.0.1:2080"), Some(2080));
        assert_eq!(url_port("https://h.example:1"), Some(1));
        assert_eq!(url_port("127.0.0.1:2080"), None);
        assert_eq!(url_port("http://:2080"), None);
        assert_eq!(url_port("http://h:x"), None);
        assert_eq!(url_port("ftp://h:1"), None);
    }
}
