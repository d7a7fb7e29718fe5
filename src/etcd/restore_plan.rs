//! What a restore would do and what it would lose, said before it changes anything: what the
//! running cluster says (whether a member answers, quorum, its revision) and the plan's lines
//! with what in them is destructive, against the revision the snapshot holds
//! ([`super::bolt::revision`]).

use std::path::Path;

use crate::api::EtcdMembers;
use crate::etcd::conn;

/// What the running cluster says before a restore: whether a member answers, whether it has
/// quorum, and its revision (read serializably, so a member without quorum answers too).
pub(super) struct Live {
    pub(super) answers: Option<String>,
    /// The client URL of the member that answered (the one furthest along).
    pub(super) answers_url: Option<String>,
    pub(super) quorum: bool,
    pub(super) revision: i64,
}

pub(super) async fn live(local: &EtcdMembers) -> Live {
    let st = crate::etcd::cluster::status(local).await;
    let quorum = st.verdict != crate::etcd::cluster::Verdict::NoQuorum && st.asked.is_some();
    let tls = conn::Tls::of(local);
    let mut revision = 0;
    let mut answers = None;
    let mut answers_url = None;
    // Every member fild knows of, the other hosts' too (through the gateway's settings).
    let mut urls: Vec<String> = st
        .members
        .iter()
        .map(|r| r.client_url.clone())
        .filter(|u| !u.is_empty())
        .collect();
    for u in conn::endpoints(local) {
        if !urls.contains(&u) {
            urls.push(u);
        }
    }
    for url in urls {
        let who = st
            .members
            .iter()
            .find(|r| r.client_url == url)
            .map_or(url.clone(), |r| r.name.clone());
        if let Ok(mut c) = conn::connect(&url, &tls).await
            && let Ok(r) = c
                .get(
                    "fild-restore-check",
                    Some(etcd_client::GetOptions::new().with_serializable()),
                )
                .await
        {
            let rev = r.header().map(|h| h.revision()).unwrap_or(0);
            // Ties go to the first asked: a member's own URL before a gateway's.
            if answers.is_none() || rev > revision {
                revision = rev;
                answers = Some(who);
                answers_url = Some(url.clone());
            }
        }
    }
    Live {
        answers,
        answers_url,
        quorum,
        revision,
    }
}

/// The restore's plan as said, and what in it is destructive, from what the cluster says.
pub(super) fn plan_lines(
    local: &EtcdMembers,
    file: &Path,
    snap_rev: i64,
    live: &Live,
    initial_cluster: &str,
) -> (Vec<String>, Option<String>) {
    let mut stop: Vec<String> = local.gateway.iter().map(|g| g.program.clone()).collect();
    stop.extend(
        local
            .members
            .iter()
            .map(|m| m.program.clone())
            .collect::<Vec<_>>(),
    );
    let lines = vec![
        format!(
            "restore {} (revision {snap_rev}) offline beside each data dir, as a new cluster {initial_cluster}",
            file.display()
        ),
        format!("stop {}", stop.join(", ")),
        "move each member's data dir aside (renamed, kept) and the restored one in".to_string(),
        "record the new cluster token and cluster_state=new in each member's runtime layer"
            .to_string(),
        format!(
            "start {}, then {}; wait until each member is healthy and serves reads",
            local
                .members
                .iter()
                .map(|m| m.program.clone())
                .collect::<Vec<_>>()
                .join(", "),
            local
                .gateway
                .as_ref()
                .map_or("no gateway".to_string(), |g| g.program.clone())
        ),
    ];
    // A cluster with quorum answers, even if no member this host asked did.
    let answers = live
        .answers
        .clone()
        .or_else(|| live.quorum.then(|| "the cluster".to_string()));
    let destructive = answers.as_ref().map(|who| {
        let lost = live.revision - snap_rev;
        format!(
            "it replaces the data of a cluster that answers ({who} is at revision {}; the snapshot holds revision {snap_rev}: {})",
            live.revision,
            if lost > 0 {
                format!("the {lost} revisions after it are lost")
            } else {
                "no revision is lost".to_string()
            }
        )
    });
    (lines, destructive)
}
