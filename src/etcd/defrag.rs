//! `filc etcd defrag`: compact to the current revision, defragment member by member
//! (followers first, leader last), disarm NOSPACE, verify a put.

use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, CompactionOptions};

use super::Say;
use super::cluster::{self, ClusterStatus, MemberStatus};
use super::conn;
use super::errors;
use super::guard::up_count;
use crate::etcd::programs::Programs;

/// How long one member's defragmentation may take (it blocks that member meanwhile).
const DEFRAG_TIMEOUT: Duration = Duration::from_secs(300);

async fn connect_long(url: &str, tls: &conn::Tls) -> anyhow::Result<etcd_client::Client> {
    conn::connect_with(url, tls, conn::TIMEOUT, DEFRAG_TIMEOUT)
        .await
        .map_err(anyhow::Error::msg)
}

fn alarm_list(st: &ClusterStatus) -> String {
    let mut v: Vec<String> = st
        .members
        .iter()
        .flat_map(|m| m.alarms.iter().map(move |a| format!("{a} on {}", m.name)))
        .collect();
    v.dedup();
    v.join(", ")
}

/// (db size, db size in use) of one member.
async fn sizes(c: &mut etcd_client::Client) -> anyhow::Result<(i64, i64)> {
    let s = c.status().await?;
    Ok((s.db_size(), s.raft_used_db_size()))
}

/// `filc etcd defrag`: compact to the current revision, defragment each member through its
/// own endpoint (followers first, leader last), disarm NOSPACE, verify a put works.
pub async fn defrag(ctl: &impl Programs, say: Say<'_>) -> anyhow::Result<()> {
    let local = super::programs::local_members(ctl)
        .await
        .map_err(|e| anyhow::anyhow!("filc etcd defrag: {e:#}"))?;
    let st = cluster::status(&local).await;
    say(&format!("cluster: {}", st.summary()));
    if st.members.iter().any(|m| !m.alarms.is_empty()) {
        say(&format!(
            "an alarm is raised ({}): /health is false on every member while it lasts; {} of {} voting members answer with a leader",
            alarm_list(&st),
            up_count(&st),
            st.voters
        ));
    }
    // Not st.verdict: under a NOSPACE alarm `/health` is false everywhere, so the verdict
    // says no quorum while the members are up and a leader is known.
    if st.voters == 0 || up_count(&st) < st.quorum {
        anyhow::bail!(
            "filc etcd defrag: the cluster has no quorum; compaction and alarm disarm need one (see `filc etcd status`)"
        );
    }
    let tls = conn::Tls::of(&local);
    let (mut c, via) = conn::connect_any(&conn::endpoints(&local), &tls)
        .await
        .map_err(|e| anyhow::anyhow!("filc etcd defrag: no member answers: {e}"))?;

    // 1. Compact to the current revision (physical: wait until it is applied).
    let rev = c
        .get("fild/defrag", None)
        .await?
        .header()
        .map(|h| h.revision())
        .unwrap_or(0);
    say(&format!("current revision {rev} (asked {via})"));
    if rev > 1 {
        match c
            .compact(rev, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => say(&format!("compacted to revision {rev}")),
            Err(e) if errors::classify(&e) == errors::Class::Compacted => {
                say(&format!("already compacted to revision {rev}"))
            }
            Err(e) => anyhow::bail!("filc etcd defrag: compaction to {rev} failed: {e}"),
        }
    }

    // 2. Defragment member by member: down ones are skipped, followers first, leader last.
    let mut rows: Vec<&MemberStatus> = st
        .members
        .iter()
        .filter(|r| r.id.is_some() && !r.client_url.is_empty())
        .collect();
    rows.sort_by_key(|r| r.leader);
    let mut skipped = Vec::new();
    for r in rows {
        let who = format!(
            "{}{} ({})",
            r.name,
            if r.leader { ", leader" } else { "" },
            r.client_url
        );
        let mut m = match connect_long(&r.client_url, &tls).await {
            Ok(m) => m,
            Err(e) => {
                say(&format!("skipping {who}: cannot connect: {e}"));
                skipped.push(r.name.clone());
                continue;
            }
        };
        let before = match sizes(&mut m).await {
            Ok(s) => s,
            Err(e) => {
                say(&format!("skipping {who}: it does not answer: {e}"));
                skipped.push(r.name.clone());
                continue;
            }
        };
        say(&format!(
            "defragmenting {who}: db size {} ({} in use)",
            crate::render::size(before.0.max(0) as u64),
            crate::render::size(before.1.max(0) as u64)
        ));
        let t = Instant::now();
        if let Err(e) = m.defragment().await {
            anyhow::bail!("filc etcd defrag: defragmenting {who} failed: {e}");
        }
        let after = sizes(&mut m).await.unwrap_or((0, 0));
        say(&format!(
            "defragmented {who} in {:.1} s: db size {} -> {} ({} in use)",
            t.elapsed().as_secs_f64(),
            crate::render::size(before.0.max(0) as u64),
            crate::render::size(after.0.max(0) as u64),
            crate::render::size(after.1.max(0) as u64)
        ));
    }

    // 3. Disarm NOSPACE (it never clears by itself).
    let alarms = c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await?
        .alarms()
        .iter()
        .map(|a| (a.member_id(), a.alarm()))
        .collect::<Vec<_>>();
    if alarms.is_empty() {
        say("no alarm raised");
    }
    for (member, kind) in alarms {
        if kind == AlarmType::Nospace {
            let mut opts = AlarmOptions::new();
            opts.with_member(member);
            c.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(opts))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("filc etcd defrag: disarming NOSPACE of {member:x} failed: {e}")
                })?;
            say(&format!("disarmed the NOSPACE alarm of member {member:x}"));
        } else {
            say(&format!(
                "alarm {kind:?} on member {member:x} left alone (not a space alarm)"
            ));
        }
    }

    // 4. Verify a write works.
    let key = "fild/defrag-check";
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    match c.put(key, stamp, None).await {
        Ok(_) => {
            let _ = c.delete(key, None).await;
            say("a test write succeeded");
        }
        Err(e) => anyhow::bail!(
            "filc etcd defrag: a test write still fails: {e}{}",
            if errors::classify(&e) == errors::Class::NoSpace {
                " (the live data exceeds the quota: delete keys, or raise --quota-backend-bytes, then run defrag again)"
            } else {
                ""
            }
        ),
    }
    let st = cluster::status(&local).await;
    say(&format!("cluster: {}", st.summary()));
    if !skipped.is_empty() {
        anyhow::bail!(
            "filc etcd defrag: {} not defragmented (not reachable); run again once it is up",
            skipped.join(", ")
        );
    }
    Ok(())
}
