//! Do this host's names for the members agree with the cluster's?
//!
//! The seeds name members `boot0.etcd.local` … and point the names at hosts through
//! `/etc/hosts` on every host. A host whose settings name a member by another URL than the
//! one the cluster advertises, or whose `/etc/hosts` lacks a name the cluster advertises,
//! works until the day it matters (a replace joins with the wrong peer URL, a gateway or an
//! operation cannot reach a member). [`warnings`] says so, from what this host's settings
//! say and what the cluster's member list says (pure); [`unresolved`] finds the advertised
//! host names this host cannot resolve.

use std::collections::BTreeSet;
use std::time::Duration;

use super::cluster::ClusterStatus;
use super::conn::host_port;
use crate::api::EtcdMembers;

/// How long one name lookup may take.
const LOOKUP: Duration = Duration::from_secs(1);

/// The host part of a URL (`boot1.etcd.local` of `http://boot1.etcd.local:2180`).
fn host_of(url: &str) -> &str {
    let hp = host_port(url);
    match hp.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => hp,
    }
}

/// Mismatches between this host's settings (each local member's `initial_cluster`, with the
/// file it comes from) and the member list, and advertised names this host cannot resolve
/// (`unresolved`, from [`unresolved`]). A member is named right when either the effective
/// list or the settings file's own agrees with the cluster: a list learned at a join may
/// lag behind a later `ETCDn_HOST` change (only a fresh data dir would start from it), and
/// a move on this host is learned over a file that still says the old URL.
pub fn warnings(local: &EtcdMembers, st: &ClusterStatus, unresolved: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in &local.members {
        let configured: Vec<(&str, &str)> = m
            .configured_cluster()
            .split(',')
            .filter_map(|e| e.split_once('='))
            .collect();
        for entry in m.initial_cluster.split(',') {
            let Some((name, url)) = entry.split_once('=') else {
                continue;
            };
            let Some(row) = st
                .members
                .iter()
                .find(|r| r.name == name && r.id.is_some() && !r.peer_url.is_empty())
            else {
                continue;
            };
            let agrees = |u: &str| u == row.peer_url;
            if !agrees(url) && !configured.iter().any(|(n, u)| *n == name && agrees(u)) {
                out.push(format!(
                    "this host names {name} {url} (initial_cluster of {}, {}), but the cluster advertises {}: set this host's address settings (ETCDn_HOST) or /etc/hosts so every host uses the cluster's names",
                    m.program, m.env_file, row.peer_url
                ));
            }
        }
    }
    if let Some(gw) = &local.gateway {
        let lacks: Vec<String> = st
            .members
            .iter()
            .filter(|r| r.id.is_some() && !r.learner && !r.name.is_empty())
            .filter(|r| !r.client_url.is_empty())
            .filter(|r| !gw.endpoints.iter().any(|e| e == host_port(&r.client_url)))
            .map(|r| format!("{} ({})", host_port(&r.client_url), r.name))
            .collect();
        if !lacks.is_empty() {
            out.push(format!(
                "this host's gateway {} lists {} but not {}: fild adds the members it lacks within a liveness window ([etcd] liveness_window), and any operation on this host syncs it",
                gw.program,
                gw.endpoints.join(","),
                lacks.join(", ")
            ));
        }
    }
    for host in unresolved {
        let who: Vec<&str> = st
            .members
            .iter()
            .filter(|r| host_of(&r.peer_url) == host || host_of(&r.client_url) == host)
            .map(|r| r.name.as_str())
            .collect();
        out.push(format!(
            "{host} (advertised by {}) does not resolve on this host: add it to /etc/hosts here, as on the other hosts",
            who.join(", ")
        ));
    }
    out
}

/// The host names (not addresses) the cluster advertises in its members' URLs.
pub fn advertised_names(st: &ClusterStatus) -> BTreeSet<String> {
    st.members
        .iter()
        .filter(|r| r.id.is_some())
        .flat_map(|r| [host_of(&r.peer_url), host_of(&r.client_url)])
        .filter(|h| !h.is_empty() && h.parse::<std::net::IpAddr>().is_err())
        .map(String::from)
        .collect()
}

/// The advertised names this host cannot resolve (each looked up at most [`LOOKUP`]).
pub async fn unresolved(st: &ClusterStatus) -> Vec<String> {
    let mut out = Vec::new();
    for name in advertised_names(st) {
        let found = tokio::time::timeout(LOOKUP, tokio::net::lookup_host((name.as_str(), 0)))
            .await
            .is_ok_and(|r| r.is_ok_and(|mut a| a.next().is_some()));
        if !found {
            out.push(name);
        }
    }
    out
}

/// [`warnings`] with the lookups done.
pub async fn check(local: &EtcdMembers, st: &ClusterStatus) -> Vec<String> {
    warnings(local, st, &unresolved(st).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::cluster::fixtures::{cluster, row};
    use crate::etcd::members::fixtures::member;

    fn listed(name: &str, peer: &str) -> crate::etcd::cluster::MemberStatus {
        crate::etcd::cluster::MemberStatus {
            name: name.into(),
            peer_url: peer.into(),
            client_url: peer.replace(":2180", ":2179"),
            ..row(name, true, false)
        }
    }

    #[test]
    fn settings_that_name_a_member_otherwise_are_named() {
        let st = cluster(vec![
            listed("boot0", "http://boot0.etcd.local:2080"),
            listed("boot1", "http://boot1.etcd.local:2180"),
        ]);
        let mut m = member(0);
        m.initial_cluster = "boot0=http://boot0.etcd.local:2080,boot1=http://10.0.20.2:2180".into();
        let local = EtcdMembers {
            members: vec![m],
            ..Default::default()
        };
        let w = warnings(&local, &st, &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        for part in [
            "this host names boot1 http://10.0.20.2:2180",
            "etcd-0, apps/etcd/etcd-0.env",
            "advertises http://boot1.etcd.local:2180",
        ] {
            assert!(w[0].contains(part), "{part} not in {}", w[0]);
        }
        // Agreeing names: nothing to say.
        let mut agree = local.clone();
        agree.members[0].initial_cluster =
            "boot0=http://boot0.etcd.local:2080,boot1=http://boot1.etcd.local:2180".into();
        assert!(warnings(&agree, &st, &[]).is_empty());
        // A list learned at a join that lags behind the settings (ETCDn_HOST changed since):
        // the settings agree, nothing to say; both disagreeing, warned.
        let mut lagging = local.clone();
        lagging.members[0].configured_initial_cluster =
            "boot0=http://boot0.etcd.local:2080,boot1=http://boot1.etcd.local:2180".into();
        assert!(warnings(&lagging, &st, &[]).is_empty());
        lagging.members[0].configured_initial_cluster =
            "boot0=http://boot0.etcd.local:2080,boot1=http://10.0.20.9:2180".into();
        assert_eq!(warnings(&lagging, &st, &[]).len(), 1);
    }

    #[test]
    fn a_gateway_that_lacks_a_voting_member_is_named() {
        let st = cluster(vec![
            listed("boot0", "http://10.0.20.1:2180"),
            listed("boot1", "http://10.0.20.2:2180"),
        ]);
        let gw = |endpoints: &[&str]| EtcdMembers {
            gateway: Some(crate::api::EtcdGateway {
                program: "etcd-gw".into(),
                state: crate::api::ProcessState::Running,
                env_file: String::new(),
                runtime_file: String::new(),
                listen_addr: "127.0.0.1:2379".into(),
                endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
                argv: vec![],
                learned: vec![],
            }),
            ..Default::default()
        };
        let w = warnings(&gw(&["10.0.20.1:2179"]), &st, &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("etcd-gw lists 10.0.20.1:2179 but not 10.0.20.2:2179 (boot1)"),
            "{}",
            w[0]
        );
        assert!(warnings(&gw(&["10.0.20.1:2179", "10.0.20.2:2179"]), &st, &[]).is_empty());
    }

    #[test]
    fn names_not_addresses_are_looked_up_and_the_missing_ones_named() {
        let st = cluster(vec![
            listed("boot0", "http://10.0.20.1:2080"),
            listed("boot1", "http://boot1.etcd.local:2180"),
            listed("boot2", "http://[fd00::3]:2280"),
        ]);
        assert_eq!(
            advertised_names(&st).into_iter().collect::<Vec<_>>(),
            ["boot1.etcd.local"]
        );
        let w = warnings(&EtcdMembers::default(), &st, &["boot1.etcd.local".into()]);
        assert_eq!(
            w,
            [
                "boot1.etcd.local (advertised by boot1) does not resolve on this host: add it to /etc/hosts here, as on the other hosts"
            ]
        );
    }
}
