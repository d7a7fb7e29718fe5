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
    /// The IDs of the members the cluster lists (when a member answers).
    pub(super) ids: Vec<u64>,
}

/// The member ID etcd gives a member with `peer_urls` in a cluster bootstrapped (or restored
/// from a snapshot) with cluster token `token`: the first 8 bytes of SHA-1 over the sorted
/// peer URLs and the token (etcd's `membership.NewMember`, with no time added), in 3.4 and
/// 3.5 alike.
pub(super) fn member_id(peer_urls: &[&str], token: &str) -> u64 {
    use sha1::Digest;
    let mut urls = peer_urls.to_vec();
    urls.sort_unstable();
    let mut h = sha1::Sha1::new();
    for u in urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("SHA-1 is 20 bytes"))
}

/// Whether the cluster that answers is the one this restore makes: every member it lists has
/// the ID a restore of the same file into the same cluster gives (`expected`). Then the
/// restores on the other hosts ran first, and this host's member is to join them, not to
/// replace a live cluster's data.
pub(super) fn is_this_restore(live: &Live, expected: &[u64]) -> bool {
    live.quorum && !live.ids.is_empty() && live.ids.iter().all(|id| expected.contains(id))
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
    let ids = st
        .members
        .iter()
        .filter_map(|r| r.id.as_deref())
        .filter_map(|id| u64::from_str_radix(id, 16).ok())
        .collect();
    Live {
        answers,
        answers_url,
        quorum,
        revision,
        ids,
    }
}

/// The restore's plan as said, and what in it is destructive, from what the cluster says.
pub(super) fn plan_lines(
    local: &EtcdMembers,
    file: &Path,
    snap_rev: i64,
    live: &Live,
    initial_cluster: &str,
    tools: &str,
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
            "restore {} (revision {snap_rev}) offline beside each data dir with {tools}, as a new cluster {initial_cluster}",
            file.display()
        ),
        format!("stop {}", stop.join(", ")),
        "move each member's data dir aside (renamed, kept) and the restored one in".to_string(),
        "record the new cluster token and cluster_state=new in each member's runtime layer"
            .to_string(),
        format!(
            "start {}{}; wait until each member is healthy and serves reads",
            local
                .members
                .iter()
                .map(|m| m.program.clone())
                .collect::<Vec<_>>()
                .join(", "),
            local
                .gateway
                .as_ref()
                .map_or(String::new(), |g| format!(", then {}", g.program))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_etcds() {
        // The ID every etcd prints for its default one-member cluster.
        assert_eq!(
            format!(
                "{:x}",
                member_id(&["http://localhost:2380"], "etcd-cluster")
            ),
            "8e9e05c52164694d"
        );
        // Sorted URLs: their order does not matter; the token does.
        let a = member_id(&["http://b:2", "http://a:1"], "t");
        assert_eq!(a, member_id(&["http://a:1", "http://b:2"], "t"));
        assert_ne!(a, member_id(&["http://a:1", "http://b:2"], "u"));
    }

    #[test]
    fn only_a_cluster_of_this_restores_ids_is_joined() {
        let live = |quorum, ids: Vec<u64>| Live {
            answers: Some("boot0".into()),
            answers_url: None,
            quorum,
            revision: 9,
            ids,
        };
        let expected = [1, 2, 3];
        assert!(is_this_restore(&live(true, vec![1, 2, 3]), &expected));
        assert!(
            !is_this_restore(&live(true, vec![1, 2, 7]), &expected),
            "an old member: the old cluster"
        );
        assert!(!is_this_restore(&live(false, vec![1, 2, 3]), &expected));
        assert!(!is_this_restore(&live(true, vec![]), &expected));
    }
}
