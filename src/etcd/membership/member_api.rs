//! etcd's membership calls as the operations make them: remove and add (each idempotent: an
//! earlier attempt that went through counts as done), and the waits for a learner to be
//! promoted and for a joined member to serve.

use std::time::Duration;

use anyhow::{anyhow, bail};
use etcd_client::MemberAddOptions;

use super::*;
use crate::api::EtcdMember;
use crate::etcd::Say;
use crate::etcd::conn::{self, Conn, Mem, VERIFY_BUDGET, read_works, retry};
use crate::etcd::errors::{self, Class};
use crate::etcd::poll::poll_until;

pub(crate) async fn member_remove(say: Say<'_>, conn: &mut Conn, m: &Mem) -> anyhow::Result<()> {
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
        Err(e) if e.class == Class::MemberNotFound => {
            say("member remove: already removed");
            Ok(())
        }
        other => other.map_err(anyhow::Error::from),
    }
}

/// `member add --learner` with the member's peer URL; returns its ID and the member list.
pub(crate) async fn member_add(
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
        Err(e) if e.class == Class::AlreadyExists => {
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
        Err(e) => Err(e.into()),
    }
}

/// Retry `member promote` until the learner has caught up.
pub(crate) async fn promote(
    say: Say<'_>,
    conn: &mut Conn,
    id: u64,
    name: &str,
) -> anyhow::Result<()> {
    say(&format!(
        "wait for learner {name} ({id:x}) to catch up, then promote it"
    ));
    let promoted = async || {
        let r = match conn.client().await {
            Ok(c) => c
                .member_promote(id)
                .await
                .map_err(|e| (errors::classify(&e), e.to_string())),
            Err(e) => Err((Class::Transient, e)),
        };
        match r {
            Ok(_) => Ok(format!("member promote {name} ({id:x}): voting member now")),
            Err((Class::LearnerNotInSync, e)) => Err(e),
            Err((Class::NotALearner, _)) => {
                Ok(format!("member promote {name}: already a voting member"))
            }
            Err((_, e)) => {
                conn.failed();
                Err(e)
            }
        }
    };
    match poll_until(PROMOTE_BUDGET, Duration::from_secs(1), promoted).await {
        Ok(done) => {
            say(&done);
            Ok(())
        }
        Err(last) => bail!(
            "member promote {name} ({id:x}): not promoted within {PROMOTE_BUDGET:?}: {last} (run the command again to continue)"
        ),
    }
}

/// The member is listed started and voting, answers `/health` and a linearizable read.
pub(crate) async fn verify(
    say: Say<'_>,
    conn: &mut Conn,
    id: u64,
    me: &EtcdMember,
) -> anyhow::Result<()> {
    say(&format!(
        "verify {}: started voting member, healthy, serves reads at {}",
        me.name, me.client_url
    ));
    let tls = conn.tls().clone();
    let verified = async || {
        let listed = match conn.list().await {
            Ok(l) => l.into_iter().find(|m| m.id == id),
            Err(e) => {
                conn.failed();
                return Err(e);
            }
        };
        match listed {
            Some(m) if m.started() && !m.learner => {
                if !conn::healthy(&me.client_url, &tls).await {
                    Err(format!("{} is not healthy yet", me.client_url))
                } else if !read_works(&me.client_url, &tls).await {
                    Err(format!("a read through {} fails", me.client_url))
                } else {
                    Ok(())
                }
            }
            Some(m) => Err(format!(
                "{} is {}",
                me.name,
                if m.learner {
                    "still a learner"
                } else {
                    "not started"
                }
            )),
            None => Err(format!("{id:x} is not in the member list")),
        }
    };
    match poll_until(VERIFY_BUDGET, Duration::from_millis(500), verified).await {
        Ok(()) => {
            say(&format!(
                "verified: {} ({id:x}) is a healthy voting member",
                me.name
            ));
            Ok(())
        }
        Err(why) => bail!("verify {}: {why} after {VERIFY_BUDGET:?}", me.name),
    }
}

/// `--initial-cluster` for a member joining now: every member's name=peerURL, the joining
/// one (`id`) under `name`.
pub(crate) fn initial_cluster(list: &[Mem], id: u64, name: &str) -> String {
    let mut parts = Vec::new();
    for m in list {
        let n = if m.id == id { name } else { m.name.as_str() };
        for u in &m.peer_urls {
            parts.push(format!("{n}={u}"));
        }
    }
    parts.join(",")
}

/// Whether two `--initial-cluster` values name the same members at the same peer URLs (in
/// any order). A member that joins with what its settings already say needs no learned
/// `initial_cluster`: one learned would pin the other members' URLs of the day of the join
/// over this host's settings, so a later move of another member (and the `ETCDn_HOST` change
/// the runbook asks on every host) would never reach this host's names check or a restore.
pub(crate) fn same_cluster(a: &str, b: &str) -> bool {
    let set = |s: &str| -> std::collections::BTreeSet<String> {
        s.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect()
    };
    set(a) == set(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_cluster_ignores_order_but_not_urls_or_members() {
        let a = "boot0=http://a:1,boot1=http://b:2,boot2=http://c:3";
        assert!(same_cluster(
            a,
            "boot2=http://c:3, boot0=http://a:1,boot1=http://b:2"
        ));
        assert!(!same_cluster(
            a,
            "boot0=http://d:1,boot1=http://b:2,boot2=http://c:3"
        ));
        assert!(!same_cluster(a, "boot0=http://a:1,boot1=http://b:2"));
        assert!(!same_cluster(a, ""));
    }

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
}
