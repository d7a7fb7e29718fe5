//! `filc etcd defrag`: compact to the current revision, defragment member by member
//! (followers first, leader last), disarm NOSPACE, verify a put.

use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmOptions, AlarmType, CompactionOptions};

use super::Say;
use super::cluster::{self, ClusterStatus, MemberStatus};
use super::conn;
use super::errors;
use super::gate::Gate;
use super::guard::up_count;
use super::steps;
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

/// How long to wait for a member to finish applying the compaction before defragmenting it.
const SETTLE: Duration = Duration::from_secs(10);
/// Time between two readings of a settling member.
const SETTLE_POLL: Duration = Duration::from_millis(300);

/// One `Status` reading of a member.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Reading {
    /// The raft index the member has applied.
    applied: u64,
    /// Its db file size.
    db: i64,
    /// How much of it is in use.
    in_use: i64,
}

async fn reading(c: &mut etcd_client::Client) -> anyhow::Result<Reading> {
    let s = c.status().await?;
    Ok(Reading {
        applied: s.raft_applied_index(),
        db: s.db_size(),
        in_use: s.raft_used_db_size(),
    })
}

/// Has a member finished the compaction? Each member compacts its own file after it applies
/// the compaction, in the background; defragmenting before that reclaims nothing, and NOSPACE
/// comes back on the next write. Settled: it has applied the index the compaction committed
/// at, and its in-use size held still (within writes' noise) across two readings.
fn compaction_settled(prev: Option<Reading>, now: Reading, target: u64) -> bool {
    let Some(p) = prev else { return false };
    let noise = (64 * 1024).max(now.db / 100);
    p.applied >= target && now.applied >= target && (p.in_use - now.in_use).abs() <= noise
}

/// After a defragmentation, is enough space free again (a compaction finished late) that
/// another pass is worth it?
fn worth_another_pass(r: Reading) -> bool {
    let free = r.db - r.in_use;
    free > 512 * 1024 && free * 10 > r.db
}

/// Wait (bounded by SETTLE) until `m` has finished the compaction; false if it never settled.
async fn settle(m: &mut etcd_client::Client, target: u64) -> bool {
    let until = Instant::now() + SETTLE;
    let mut prev = None;
    while Instant::now() < until {
        if let Ok(now) = reading(m).await {
            if compaction_settled(prev, now, target) {
                return true;
            }
            prev = Some(now);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
    false
}

/// The NOSPACE alarms raised now, by member id.
async fn nospace_alarms(c: &mut etcd_client::Client) -> anyhow::Result<Vec<u64>> {
    Ok(c.alarm(AlarmAction::Get, AlarmType::None, None)
        .await?
        .alarms()
        .iter()
        .filter(|a| a.alarm() == AlarmType::Nospace)
        .map(|a| a.member_id())
        .collect())
}

/// `filc etcd defrag`: compact to the current revision, defragment each member through its
/// own endpoint (followers first, leader last), disarm NOSPACE, verify a put works.
pub async fn defrag(ctl: &impl Programs, gate: &Gate, say: Say<'_>) -> anyhow::Result<()> {
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
    let mut order: Vec<&MemberStatus> = st
        .members
        .iter()
        .filter(|r| r.id.is_some() && !r.client_url.is_empty())
        .collect();
    order.sort_by_key(|r| r.leader);
    let names: Vec<String> = order
        .iter()
        .map(|r| format!("{}{}", r.name, if r.leader { " (leader)" } else { "" }))
        .collect();
    let plan = [
        "compact to the current revision".to_string(),
        format!(
            "defragment {}, one at a time (each blocks while it runs)",
            names.join(", ")
        ),
        "disarm the NOSPACE alarms".to_string(),
        "check a write goes through".to_string(),
    ];
    gate.pass(say, &plan, None)?;
    let step = |i: usize| say(&steps::begin(i, plan.len(), &plan[i - 1]));
    let done = |i: usize| say(&steps::done(i, plan.len()));
    let tls = conn::Tls::of(&local);
    let (mut c, via) = conn::connect_any(&conn::endpoints(&local), &tls)
        .await
        .map_err(|e| anyhow::anyhow!("filc etcd defrag: no member answers: {e}"))?;

    // 1. Compact to the current revision (physical: wait until it is applied).
    step(1);
    let rev = c
        .get("fild/defrag", None)
        .await?
        .header()
        .map(|h| h.revision())
        .unwrap_or(0);
    say(&format!("current revision {rev} (asked {via})"));
    // The raft index every member must apply before it compacts (read after the compaction).
    let mut target = 0;
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
        target = c.status().await?.raft_applied_index();
    }

    done(1);

    // 2. Defragment member by member: down ones are skipped, followers first, leader last.
    step(2);
    let mut skipped = Vec::new();
    for r in order {
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
        if !settle(&mut m, target).await {
            say(&format!(
                "{who} has not finished the compaction after {} s; defragmenting anyway",
                SETTLE.as_secs()
            ));
        }
        // A second pass only when space came free after the first (a late compaction).
        for pass in 1..=2 {
            let before = match reading(&mut m).await {
                Ok(s) => s,
                Err(e) => {
                    say(&format!("skipping {who}: it does not answer: {e}"));
                    skipped.push(r.name.clone());
                    break;
                }
            };
            say(&format!(
                "defragmenting {who}{}: db size {} ({} in use)",
                if pass > 1 { " again" } else { "" },
                crate::render::size(before.db.max(0) as u64),
                crate::render::size(before.in_use.max(0) as u64)
            ));
            let t = Instant::now();
            if let Err(e) = m.defragment().await {
                anyhow::bail!("filc etcd defrag: defragmenting {who} failed: {e}");
            }
            let after = reading(&mut m).await.unwrap_or(Reading {
                applied: 0,
                db: 0,
                in_use: 0,
            });
            say(&format!(
                "defragmented {who} in {:.1} s: db size {} -> {} ({} in use)",
                t.elapsed().as_secs_f64(),
                crate::render::size(before.db.max(0) as u64),
                crate::render::size(after.db.max(0) as u64),
                crate::render::size(after.in_use.max(0) as u64)
            ));
            tokio::time::sleep(SETTLE_POLL).await;
            match reading(&mut m).await {
                Ok(later) if worth_another_pass(later) => {}
                _ => break,
            }
        }
    }

    done(2);

    // 3. Disarm NOSPACE (it never clears by itself).
    step(3);
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

    done(3);

    // 4. Verify a write works.
    step(4);
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
    // A member still above its quota raises NOSPACE again when it applies that write.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = nospace_alarms(&mut c).await?;
    if !again.is_empty() {
        let ids: Vec<String> = again.iter().map(|m| format!("{m:x}")).collect();
        anyhow::bail!(
            "filc etcd defrag: NOSPACE was raised again by member {} after the test write: its db is still above the quota (delete keys, or raise --quota-backend-bytes, then run defrag again)",
            ids.join(", ")
        );
    }
    done(4);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(applied: u64, db: i64, in_use: i64) -> Reading {
        Reading {
            applied,
            db,
            in_use,
        }
    }

    #[test]
    fn settled_needs_the_index_and_two_still_readings() {
        const MB: i64 = 1024 * 1024;
        // One reading is never enough.
        assert!(!compaction_settled(None, r(10, 3 * MB, MB), 10));
        // Not yet applied the compaction's index.
        assert!(!compaction_settled(
            Some(r(9, 3 * MB, 2 * MB)),
            r(9, 3 * MB, 2 * MB),
            10
        ));
        // The previous reading predates the compaction: it might not have started.
        assert!(!compaction_settled(
            Some(r(9, 3 * MB, 2 * MB)),
            r(10, 3 * MB, 2 * MB),
            10
        ));
        // Still shrinking.
        assert!(!compaction_settled(
            Some(r(10, 3 * MB, 2 * MB)),
            r(11, 3 * MB, MB),
            10
        ));
        // Still, or moving only by writes' noise.
        assert!(compaction_settled(
            Some(r(10, 3 * MB, MB)),
            r(11, 3 * MB, MB),
            10
        ));
        assert!(compaction_settled(
            Some(r(10, 3 * MB, MB)),
            r(12, 3 * MB, MB + 4096),
            10
        ));
    }

    #[test]
    fn another_pass_only_when_much_came_free() {
        const MB: i64 = 1024 * 1024;
        assert!(worth_another_pass(r(1, 3 * MB, MB)));
        assert!(!worth_another_pass(r(1, 3 * MB, 3 * MB - 100 * 1024)));
        // Half a MB of a 100 MB file is not worth blocking the member again.
        assert!(!worth_another_pass(r(1, 100 * MB, 99 * MB)));
        assert!(!worth_another_pass(r(1, 20 * 1024, 12 * 1024)));
    }
}
