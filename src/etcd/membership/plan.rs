//! The membership operations' decisions, as pure functions: from what the cluster lists, how
//! healthy the other voting members are and what fild's configuration says, each operation's
//! plan is either a refusal (nothing changes) or the ordered steps its executor
//! ([`super::exec`]) carries out. An interrupted operation run again observes the new state and
//! plans only what is left: that is what makes every operation safe to re-run.

use crate::api::{EtcdMember, EtcdMembers};
use crate::etcd::backup_restore::RESTORE_INSTEAD;
use crate::etcd::conn::{Mem, host_port};
use crate::etcd::quorum::{self, Change, Verdict, describe_unhealthy};

/// One step of a membership operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A snapshot from a healthy other member, before the first change.
    Snapshot,
    /// A snapshot from the member itself (rescue: it serves its data without quorum).
    SnapshotOwn,
    /// Stop the member's program.
    Stop,
    /// Stop these programs (rescue: every local member).
    StopPrograms(Vec<String>),
    /// `member remove` of this entry.
    Remove(Mem),
    /// The member is not listed: its removal is done already.
    AlreadyRemoved,
    /// Rename the data dir to `<data_dir>.<UTC timestamp>`.
    MoveAside,
    /// Copy the data dir to `<data_dir>.<UTC timestamp>` (rescue keeps using the original).
    CopyAside,
    /// `member add --learner` with the member's peer URL.
    AddLearner,
    /// An entry an interrupted run left (unstarted, or a started learner) is used as it is.
    Reuse(Mem),
    /// Record in the runtime layer that the member joins an existing cluster, and which.
    RecordJoin,
    /// Record `cluster_state=existing` alone (after a removal).
    RecordExisting,
    /// Drop next-start flags an interrupted rescue left unused.
    ClearOnce,
    /// Start the member's program.
    Start,
    /// Restart the member's program.
    Restart,
    /// Promote the member once it caught up (when it is a learner).
    Promote,
    /// Wait until it is a started, healthy voting member that serves reads.
    Verify,
    /// `member update` to this peer URL.
    UpdatePeer {
        id: u64,
        from: Vec<String>,
        to: String,
    },
    /// The cluster lists this peer URL already.
    PeerAlready { id: u64, to: String },
    /// Record the new peer URL (and the local members' initial clusters) in the runtime layer.
    RecordPeer { to: String },
    /// Wait until the cluster lists it at this peer URL and it serves.
    VerifyMoved { id: u64, to: String },
    /// Restart the member once with `--force-new-cluster` and wait until it serves alone.
    ForceNewCluster { id: u64 },
    /// Wait until the member serves reads.
    WaitHealthy,
    /// After the forced start of member `id`: remove the other members its list still names
    /// ([`zombies`]), and check none is left.
    RemoveZombies { id: u64 },
    /// Point the gateway at the voting members' client URLs.
    SyncGateway,
    /// Say this (a warning that belongs between two steps).
    Note(String),
}

/// An operation's plan: what its checks found (said first), then its steps or its refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) notes: Vec<String>,
    pub(crate) steps: Result<Vec<Step>, String>,
}

impl Planned {
    fn refuse(notes: Vec<String>, why: String) -> Planned {
        Planned {
            notes,
            steps: Err(why),
        }
    }
}

/// The port of an `http://` or `https://` URL with a host.
pub(crate) fn url_port(url: &str) -> Option<u16> {
    let (scheme, _) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let hp = host_port(url);
    let (host, port) = hp.rsplit_once(':')?;
    if host.is_empty() {
        return None;
    }
    port.parse().ok().filter(|p| *p != 0)
}

/// The port the gateway listens on.
pub(crate) fn gw_port(gw: &crate::api::EtcdGateway) -> Option<u16> {
    gw.listen_addr.rsplit_once(':')?.1.parse().ok()
}

/// The member's entry in the cluster's list.
pub(crate) fn mine(list: &[Mem], me: &EtcdMember) -> Option<Mem> {
    list.iter().find(|m| m.is(me)).cloned()
}

/// After a forced new cluster of member `id` alone: the other members its list still names
/// ("zombie members", which etcd before 3.5.22, and 3.4, can leave behind).
pub(crate) fn zombies(list: &[Mem], id: u64) -> Vec<&Mem> {
    list.iter().filter(|m| m.id != id).collect()
}

/// The voting members other than `me`: the ones whose health the plans weigh.
pub(crate) fn other_voters<'a>(list: &'a [Mem], me: &EtcdMember) -> Vec<&'a Mem> {
    list.iter().filter(|m| m.voter() && !m.is(me)).collect()
}

/// The voting members other than the entry `id`.
pub(crate) fn voters_except(list: &[Mem], id: u64) -> Vec<&Mem> {
    list.iter().filter(|m| m.voter() && m.id != id).collect()
}

fn even_warning(size: usize) -> String {
    format!(
        "warning: the cluster will have {size} voting members, an even number: it tolerates no more failures than a cluster of {}",
        size - 1
    )
}

/// Rejoin with a fresh data dir: stop, remove the old entry (`remove_old`, when it is a
/// started voter), move the data dir aside, add a learner (or reuse what an interrupted run
/// left), record the join, start, promote, verify.
pub(crate) fn rejoin(
    me: &EtcdMember,
    mine: Option<&Mem>,
    remove_old: bool,
) -> Result<Vec<Step>, String> {
    let mut steps = vec![Step::Stop];
    match mine {
        Some(m) if m.voter() && m.started() => {
            if !remove_old {
                return Err(format!(
                    "{} is a started voting member; not removing it",
                    me.name
                ));
            }
            steps.extend([Step::Remove(m.clone()), Step::MoveAside, Step::AddLearner]);
        }
        None => {
            if remove_old {
                steps.push(Step::AlreadyRemoved);
            }
            steps.extend([Step::MoveAside, Step::AddLearner]);
        }
        Some(m) if !m.started() => steps.extend([Step::Reuse(m.clone()), Step::MoveAside]),
        Some(m) => steps.push(Step::Reuse(m.clone())),
    }
    steps.push(Step::RecordJoin);
    if !me.next_start_flags.is_empty() {
        steps.push(Step::ClearOnce);
    }
    steps.extend([Step::Start, Step::Promote, Step::Verify]);
    Ok(steps)
}

/// Replace's and add's steps once their checks passed: a snapshot, the [`rejoin`], the
/// gateway.
fn rejoin_after_snapshot(
    notes: Vec<String>,
    me: &EtcdMember,
    mine: Option<&Mem>,
    remove_old: bool,
) -> Planned {
    let mut steps = vec![Step::Snapshot];
    match rejoin(me, mine, remove_old) {
        Ok(s) => steps.extend(s),
        Err(why) => return Planned::refuse(notes, why),
    }
    steps.push(Step::SyncGateway);
    Planned {
        notes,
        steps: Ok(steps),
    }
}

/// etcd 3.4 allows one learner at a time; never start a change while another is half done.
fn other_change(list: &[Mem], me: &EtcdMember) -> Option<String> {
    quorum::refuse_other_change(list, me)
        .err()
        .map(|e| e.to_string())
}

/// For a member that leaves and comes back (replace, move): the others must hold quorum of
/// the cluster on their own. The check's note, or the refusal.
fn others_hold_quorum(
    change: Change,
    others: &[&Mem],
    health: &[bool],
) -> Result<Vec<String>, Planned> {
    let f = quorum::figures(change, others.len());
    let healthy = quorum::healthy(others, health).len();
    // Joining afresh (not listed as a voter): the cluster as it is must hold quorum.
    let need = if change == Change::Add {
        quorum::quorum_of(others.len())
    } else {
        f.quorum
    };
    let notes = vec![if change == Change::Add {
        format!(
            "check quorum: {healthy} of {} voting members healthy, quorum {need}; the member joins as a learner and counts once promoted ({} voting members, quorum {})",
            others.len(),
            f.size,
            f.quorum
        )
    } else {
        format!(
            "check quorum: {healthy} of {} other voting members healthy, quorum of {} is {}",
            others.len(),
            f.size,
            f.quorum
        )
    }];
    if quorum::verdict(change, f, healthy) == Verdict::NoQuorum {
        return Err(Planned::refuse(
            notes,
            format!(
                "refused: the other members do not hold quorum on their own ({healthy} of {} healthy, quorum {need}: {}). Nothing changed.",
                others.len(),
                describe_unhealthy(others, health)
            ),
        ));
    }
    Ok(notes)
}

/// Recovery mode two. `health`: of [`other_voters`], in order.
pub(crate) fn replace(me: &EtcdMember, list: &[Mem], health: &[bool]) -> Planned {
    if let Some(why) = other_change(list, me) {
        return Planned::refuse(vec![], why);
    }
    let others = other_voters(list, me);
    // Listed as a started voter, it must be removed first, which takes quorum of the full
    // cluster; not listed (a rescue left it out), it only joins, as an add does.
    let listed = mine(list, me).is_some_and(|m| m.voter() && m.started());
    let change = if listed { Change::Replace } else { Change::Add };
    let f = quorum::figures(Change::Replace, others.len());
    if listed && quorum::verdict(Change::Replace, f, 0) == Verdict::OnlyVoter {
        return Planned::refuse(
            vec![],
            format!(
                "refused: {} is the only voting member; there is nothing to copy its data from: {RESTORE_INSTEAD}. Nothing changed.",
                me.name
            ),
        );
    }
    let notes = match others_hold_quorum(change, &others, health) {
        Ok(notes) => notes,
        Err(refused) => return refused,
    };
    rejoin_after_snapshot(notes, me, mine(list, me).as_ref(), true)
}

/// The kit's defaults never use the gateway's port; a hand-edited env file might.
pub(crate) fn gateway_port_clash(local: &EtcdMembers, me: &EtcdMember) -> Option<String> {
    let gw = local.gateway.as_ref()?;
    let gp = gw_port(gw)?;
    [("client", &me.client_url), ("peer", &me.peer_url)]
        .into_iter()
        .find(|(_, url)| url_port(url) == Some(gp))
        .map(|(what, url)| {
            format!(
                "refused: {}'s {what} URL {url} uses the gateway's listen port {gp} ({}); change the port in {}. Nothing changed.",
                me.program, gw.listen_addr, me.env_file
            )
        })
}

/// Add a configured member that is not in the cluster yet (its ports checked first, by
/// [`gateway_port_clash`]). `health`: of [`other_voters`].
pub(crate) fn add(me: &EtcdMember, list: &[Mem], health: &[bool]) -> Planned {
    let mine = mine(list, me);
    if let Some(m) = &mine
        && m.voter()
        && m.started()
    {
        return Planned::refuse(
            vec![],
            format!(
                "refused: {} is already a member (ID {:x}); use filc etcd replace {} to rebuild it. Nothing changed.",
                me.name, m.id, me.program
            ),
        );
    }
    if let Some(why) = other_change(list, me) {
        return Planned::refuse(vec![], why);
    }
    let voters = other_voters(list, me);
    let f = quorum::figures(Change::Add, voters.len());
    let healthy = quorum::healthy(&voters, health).len();
    let (size, quorum) = (f.size, f.quorum);
    let mut notes = vec![format!(
        "check quorum: {healthy} of {} voting members healthy; after the add, {size} members need {quorum}",
        voters.len()
    )];
    let verdict = quorum::verdict(Change::Add, f, healthy);
    if verdict == Verdict::NoQuorum {
        return Planned::refuse(
            notes,
            format!(
                "refused: a cluster of {size} would not hold quorum ({healthy} of {} voting members healthy, quorum {quorum}: {}). Nothing changed.",
                voters.len(),
                describe_unhealthy(&voters, health)
            ),
        );
    }
    if verdict == (Verdict::Go { even: true }) {
        notes.push(even_warning(size));
    }
    rejoin_after_snapshot(notes, me, mine.as_ref(), false)
}

/// Remove a member, stop it, move its data dir aside. `health`: of [`other_voters`].
pub(crate) fn remove(me: &EtcdMember, list: &[Mem], health: &[bool]) -> Planned {
    let mine = mine(list, me);
    let others = other_voters(list, me);
    let f = quorum::figures(Change::Remove, others.len());
    let healthy = quorum::healthy(&others, health).len();
    let mut notes = Vec::new();
    match &mine {
        Some(m) if m.voter() => {
            let voters = others.len() + 1;
            let (size, quorum) = (f.size, f.quorum);
            notes.push(format!(
                "check quorum: {voters} voting members; after the removal {healthy} of the remaining {size} are healthy, quorum of {size} is {quorum}"
            ));
            match quorum::verdict(Change::Remove, f, healthy) {
                Verdict::TooSmall => {
                    return Planned::refuse(
                        notes,
                        format!(
                            "refused: removing a member from a {voters}-member cluster is unsafe (quorum would hang on a single member). Nothing changed."
                        ),
                    );
                }
                Verdict::NoQuorum => {
                    return Planned::refuse(
                        notes,
                        format!(
                            "refused: the remaining members would not hold quorum ({healthy} of {size} healthy, quorum {quorum}: {}). Nothing changed.",
                            describe_unhealthy(&others, health)
                        ),
                    );
                }
                Verdict::Go { even: true } => notes.push(even_warning(size)),
                _ => {}
            }
        }
        Some(m) => notes.push(format!(
            "{} is a learner (ID {:x}): removing it does not change quorum",
            me.name, m.id
        )),
        None => {}
    }
    if healthy == 0 {
        return Planned::refuse(
            notes,
            "refused: no other healthy member to ask. Nothing changed.".into(),
        );
    }
    let mut steps = vec![
        Step::Snapshot,
        mine.map_or(Step::AlreadyRemoved, Step::Remove),
        Step::Stop,
        Step::MoveAside,
    ];
    if me.cluster_state != "existing" {
        steps.push(Step::RecordExisting);
    }
    steps.push(Step::SyncGateway);
    Planned {
        notes,
        steps: Ok(steps),
    }
}

/// A move's new peer URL must be one, with a port.
pub(crate) fn peer_url_port(peer_url: &str) -> Result<u16, String> {
    url_port(peer_url).ok_or_else(|| {
        format!("{peer_url:?} is not a peer URL like http://10.0.20.4:2080. Nothing changed.")
    })
}

/// Recovery mode one, before the cluster is asked: refusals from the request and the
/// configuration alone.
pub(crate) fn move_request(
    local: &EtcdMembers,
    me: &EtcdMember,
    peer_url: &str,
) -> Result<(), String> {
    let port = peer_url_port(peer_url)?;
    if let Some(gw) = &local.gateway
        && gw_port(gw) == Some(port)
    {
        return Err(format!(
            "refused: port {port} is the gateway's listen port ({}). Nothing changed.",
            gw.listen_addr
        ));
    }
    if url_port(&me.client_url) == Some(port) && host_port(&me.client_url) == host_port(peer_url) {
        return Err(format!(
            "refused: {peer_url} is the member's own client URL. Nothing changed."
        ));
    }
    Ok(())
}

/// The entry a move acts on: the member's own, or the one already at the new peer URL.
pub(crate) fn moving(list: &[Mem], me: &EtcdMember, peer_url: &str) -> Option<Mem> {
    list.iter()
        .find(|m| m.is(me) || m.peer_urls.iter().any(|u| u == peer_url))
        .cloned()
}

/// Recovery mode one: the member keeps its data and ID under `peer_url`. `mine` is
/// [`moving`]'s entry; `health`: of [`voters_except`] it.
pub(crate) fn move_peer(list: &[Mem], mine: &Mem, peer_url: &str, health: &[bool]) -> Planned {
    if let Some(m) = list.iter().filter(|m| m.id != mine.id).find(|m| {
        m.peer_urls
            .iter()
            .chain(&m.client_urls)
            .any(|u| host_port(u) == host_port(peer_url))
    }) {
        return Planned::refuse(
            vec![],
            format!(
                "refused: {peer_url} is already used by member {} ({:x}). Nothing changed.",
                m.label(),
                m.id
            ),
        );
    }
    let others = voters_except(list, mine.id);
    let change = Change::Move {
        voter: mine.voter(),
    };
    let notes = match others_hold_quorum(change, &others, health) {
        Ok(notes) => notes,
        Err(refused) => return refused,
    };
    let to = peer_url.to_string();
    let update = if mine.peer_urls == [to.clone()] {
        Step::PeerAlready {
            id: mine.id,
            to: to.clone(),
        }
    } else {
        Step::UpdatePeer {
            id: mine.id,
            from: mine.peer_urls.clone(),
            to: to.clone(),
        }
    };
    Planned {
        notes,
        steps: Ok(vec![
            Step::Snapshot,
            update,
            Step::RecordPeer { to: to.clone() },
            Step::Restart,
            Step::VerifyMoved { id: mine.id, to },
            Step::SyncGateway,
        ]),
    }
}

/// Rescue's first part, from the survivor's own member list and the voters' health (in
/// `list` order of its voting members): force a new cluster when quorum is lost, go straight
/// to re-adding when it holds with the survivor, refuse when it holds without it.
/// How another member of the survivor's list answered, asked directly before a forced
/// restart: on its client URL (a status call: the leader it knows) and its peer URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Its status names this leader: it is part of a cluster with a leader.
    Leader(u64),
    /// It answers, without a leader: alive, no quorum.
    NoLeader,
    /// Its client URL answers nothing (the error), its peer listener does: the process is
    /// alive, whether it has a leader cannot be told.
    PeerOnly(String),
    /// Neither URL answers (the client URL's error): not proof that it is down.
    Nothing(String),
}

/// One other member of the survivor's list, as rescue found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Other {
    pub(crate) name: String,
    pub(crate) client_url: String,
    pub(crate) answer: Answer,
    /// The revision its data holds, from its host's fild (or this one), if it was read.
    pub(crate) revision: Option<i64>,
    /// Where the revision came from, or why it is unknown.
    pub(crate) from: String,
    /// Where rescue from it would be run: `filc etcd rescue PROGRAM` on host HOST.
    pub(crate) program: Option<String>,
    pub(crate) host: Option<String>,
    /// This fild runs it and its program is not running: down for certain (why).
    pub(crate) down_here: Option<String>,
}

/// What rescue asked before it forces: every other member, the survivor's own data
/// position, and what the request allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Checks {
    pub(crate) others: Vec<Other>,
    pub(crate) my_revision: Option<i64>,
    /// `--assume-down NAME`, each.
    pub(crate) assume_down: Vec<String>,
    /// `--allow-behind`.
    pub(crate) allow_behind: bool,
    /// `--yes` (assumed-down members need it, a terminal's confirmation is not enough) and
    /// `--dry-run` (which says the plan and the refusals it would meet).
    pub(crate) yes: bool,
    pub(crate) dry_run: bool,
    /// The command as run, for the refusals' way forward.
    pub(crate) command: String,
}

/// Before a forced restart: refuse when another member is part of a cluster with a leader,
/// is alive but cannot be asked, answers nothing without `--assume-down`, or holds data
/// further than the survivor's (without `--allow-behind`). The notes it said either way.
fn before_forcing(me: &EtcdMember, c: &Checks, notes: &mut Vec<String>) -> Result<(), String> {
    for n in &c.assume_down {
        let Some(o) = c.others.iter().find(|o| &o.name == n) else {
            let names: Vec<&str> = c.others.iter().map(|o| o.name.as_str()).collect();
            return Err(format!(
                "refused: --assume-down {n}: no other member of {}'s member list is named {n} (members: {}). Nothing changed.",
                me.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        };
        if !matches!(o.answer, Answer::Nothing(_)) {
            return Err(format!(
                "refused: --assume-down {n}, but {n} answers (at {} or its peer URL): it is not down. Stop it first. Nothing changed.",
                o.client_url
            ));
        }
    }
    let led: Vec<String> = c
        .others
        .iter()
        .filter_map(|o| match o.answer {
            Answer::Leader(id) => Some(format!(
                "{} answers at {} as part of a cluster with leader {id:x}",
                o.name, o.client_url
            )),
            _ => None,
        })
        .collect();
    if !led.is_empty() {
        return Err(format!(
            "refused: {}: the cluster has quorum without {}, and forcing a new cluster here would make two clusters. Rescue is for a lost quorum; to rebuild {} run `filc etcd replace {}` on this host. Nothing changed.",
            led.join("; "),
            me.name,
            me.name,
            me.program
        ));
    }
    let alive: Vec<String> = c
        .others
        .iter()
        .filter_map(|o| match &o.answer {
            Answer::PeerOnly(e) => Some(format!(
                "{} (its peer URL answers, its client URL {} does not: {e})",
                o.name, o.client_url
            )),
            _ => None,
        })
        .collect();
    if !alive.is_empty() {
        return Err(format!(
            "refused: {}: its etcd process is alive, and whether it is part of a cluster with a leader cannot be told. Stop it (or let its client URL be reached), then run the rescue again. Nothing changed.",
            alive.join("; ")
        ));
    }
    for o in &c.others {
        if o.answer == Answer::NoLeader {
            notes.push(format!(
                "{} answers at {} without a leader (no quorum); it is left out of the new cluster: stop it, and rebuild it afterwards with `filc etcd replace` on its host",
                o.name, o.client_url
            ));
        }
    }
    let known: Vec<String> = c
        .others
        .iter()
        .filter(|o| matches!(o.answer, Answer::Nothing(_)))
        .filter_map(|o| o.down_here.as_ref().map(|w| format!("{} ({w})", o.name)))
        .collect();
    if !known.is_empty() {
        notes.push(format!("down, run here and stopped: {}", known.join(", ")));
    }
    let silent: Vec<&Other> = c
        .others
        .iter()
        .filter(|o| matches!(o.answer, Answer::Nothing(_)) && o.down_here.is_none())
        .collect();
    let unnamed: Vec<String> = silent
        .iter()
        .filter(|o| !c.assume_down.contains(&o.name))
        .map(|o| match &o.answer {
            Answer::Nothing(e) => format!("{} ({e})", o.name),
            _ => o.name.clone(),
        })
        .collect();
    if !unnamed.is_empty() {
        let flags: String = silent
            .iter()
            .map(|o| format!(" --assume-down {}", o.name))
            .collect();
        return Err(format!(
            "refused: {} answer on neither their client nor their peer URL. That is no proof they are down: this host may be the one cut off, and they may hold quorum among themselves. If you know they are down (stopped, or their hosts dead), run `{}{flags} --yes`. Nothing changed.",
            unnamed.join("; "),
            c.command
        ));
    }
    if !silent.is_empty() {
        let names: Vec<&str> = silent.iter().map(|o| o.name.as_str()).collect();
        if !c.yes && !c.dry_run {
            return Err(format!(
                "refused: members assumed down ({}) need --yes as well: `{} --yes`. Nothing changed.",
                names.join(", "),
                c.command
            ));
        }
        notes.push(format!(
            "assumed down (--assume-down): {}",
            names.join(", ")
        ));
    }
    // How far each member's data goes.
    let mut said = vec![format!(
        "{} revision {} (this survivor)",
        me.name,
        c.my_revision
            .map_or("unknown".to_string(), |r| r.to_string())
    )];
    for o in &c.others {
        said.push(match o.revision {
            Some(r) => format!("{} revision {r} ({})", o.name, o.from),
            None => format!("{} unknown ({})", o.name, o.from),
        });
    }
    notes.push(format!("data positions: {}", said.join("; ")));
    let furthest = c
        .others
        .iter()
        .filter_map(|o| o.revision.map(|r| (r, o)))
        .max_by_key(|(r, _)| *r);
    let mine = c.my_revision.unwrap_or(0);
    match furthest {
        Some((r, o)) if r > mine => {
            let lost = r - mine;
            let from = match (&o.program, &o.host) {
                (Some(p), Some(h)) => format!("`filc etcd rescue {p}` on host {h}"),
                (Some(p), None) => format!("`filc etcd rescue {p}` on this host"),
                _ => format!("rescue on {}'s host", o.name),
            };
            if !c.allow_behind {
                return Err(format!(
                    "refused: {} is behind: {} holds revision {r}, {} only {mine}; the {lost} revisions after it would be lost. Rescue from the furthest member instead ({from}), or run again with --allow-behind to accept the loss. Nothing changed.",
                    me.name, o.name, me.name
                ));
            }
            notes.push(format!(
                "warning: --allow-behind: {} (revision {mine}) is kept although {} holds revision {r}: the {lost} revisions after {mine} are lost",
                me.name, o.name
            ));
        }
        _ => notes.push(format!(
            "furthest: {} at revision {mine}{}: it is the survivor to keep",
            me.name,
            if c.others.iter().any(|o| o.revision.is_none()) {
                "; the members whose position is unknown could be further (their filds did not answer)"
            } else {
                ", no other member holds more"
            }
        )),
    }
    Ok(())
}

pub(crate) fn rescue(
    local: &EtcdMembers,
    me: &EtcdMember,
    list: &[Mem],
    mine: &Mem,
    health: &[bool],
    checks: &Checks,
) -> Planned {
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
    let healthy = health.iter().filter(|h| **h).count();
    let quorum = quorum::quorum_of(voters.len());
    let mut notes = vec![format!(
        "check quorum: {healthy} of {} voting members healthy, quorum {quorum}",
        voters.len()
    )];
    if healthy >= quorum {
        let me_ok = voters
            .iter()
            .zip(health)
            .any(|(m, ok)| m.id == mine.id && *ok);
        if !me_ok {
            return Planned::refuse(
                notes,
                format!(
                    "refused: the cluster holds quorum without {}; rescue is for a lost quorum (use filc etcd replace {}). Nothing changed.",
                    me.name, me.program
                ),
            );
        }
        let others: Vec<String> = voters
            .iter()
            .zip(health)
            .filter(|(m, ok)| **ok && m.id != mine.id && !local.members.iter().any(|l| m.is(l)))
            .map(|(m, _)| m.label())
            .collect();
        if !others.is_empty() {
            return Planned::refuse(
                notes,
                format!(
                    "refused: the cluster holds quorum ({} healthy on other hosts); rescue is for a lost quorum. To rebuild a member, run `filc etcd replace` with its program (the kit's `etcd-N` for `bootN`) on its host. Nothing changed.",
                    others.join(", ")
                ),
            );
        }
        notes.push(
            "quorum holds: no forced restart needed; re-adding the members that are missing".into(),
        );
        return Planned {
            notes,
            steps: Ok(vec![]),
        };
    }
    if let Err(why) = before_forcing(me, checks, &mut notes) {
        return Planned::refuse(notes, why);
    }
    let remote: Vec<String> = list
        .iter()
        .filter(|m| m.id != mine.id && !local.members.iter().any(|l| m.is(l)))
        .map(Mem::label)
        .collect();
    let mut steps = vec![
        Step::SnapshotOwn,
        Step::StopPrograms(local.members.iter().map(|m| m.program.clone()).collect()),
    ];
    if !remote.is_empty() {
        steps.push(Step::Note(format!(
            "warning: members on other hosts must be stopped before the forced restart: {}",
            remote.join(", ")
        )));
    }
    steps.extend([
        Step::CopyAside,
        Step::ForceNewCluster { id: mine.id },
        Step::Restart,
        Step::WaitHealthy,
        Step::RemoveZombies { id: mine.id },
    ]);
    let rest: Vec<&str> = local
        .members
        .iter()
        .filter(|m| m.program != me.program)
        .map(|m| m.program.as_str())
        .collect();
    if !rest.is_empty() {
        steps.push(Step::Note(format!(
            "then re-add {} one at a time, each with a fresh data dir (its old one moved aside)",
            rest.join(", ")
        )));
    }
    if !remote.is_empty() {
        steps.push(Step::Note(format!(
            "then, on each other host, one at a time: `filc etcd replace` with that host's member program (the kit's `etcd-N` for `bootN`) re-adds {} with a fresh data dir (its old one moved aside)",
            remote.join(", ")
        )));
    }
    Planned {
        notes,
        steps: Ok(steps),
    }
}

/// What rescue does about one other local member, from the current list and the voters'
/// health (in `list` order of its voting members).
pub(crate) fn readd(other: &EtcdMember, list: &[Mem], health: &[bool]) -> Planned {
    let theirs = mine(list, other);
    if let Some(t) = &theirs
        && t.voter()
        && t.started()
    {
        return Planned {
            notes: vec![format!(
                "{}: {} is a voting member already ({:x}), skipped",
                other.program, other.name, t.id
            )],
            steps: Ok(vec![]),
        };
    }
    let voters: Vec<&Mem> = list.iter().filter(|m| m.voter()).collect();
    if health.iter().any(|h| !h) {
        return Planned::refuse(
            vec![],
            format!(
                "stopped before re-adding {}: not every voting member is healthy ({}). Run the command again once they are.",
                other.program,
                describe_unhealthy(&voters, health)
            ),
        );
    }
    let notes = vec![format!("re-add {} ({})", other.program, other.name)];
    match rejoin(other, theirs.as_ref(), true) {
        Ok(steps) => Planned {
            notes,
            steps: Ok(steps),
        },
        Err(why) => Planned::refuse(notes, why),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::api::ProcessState;
    use crate::etcd::members::fixtures::member;

    pub(crate) fn mem(id: u64, name: &str, learner: bool) -> Mem {
        Mem {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://127.0.0.1:{}", 2080 + id)],
            client_urls: vec![format!("http://127.0.0.1:{}", 2070 + id)],
            learner,
        }
    }

    fn three() -> Vec<Mem> {
        vec![
            mem(0, "boot0", false),
            mem(1, "boot1", false),
            mem(2, "boot2", false),
        ]
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
    fn replace_of_a_healthy_member_rebuilds_it_as_a_learner() {
        let p = replace(&member(1), &three(), &[true, true]);
        assert_eq!(
            p.notes,
            ["check quorum: 2 of 2 other voting members healthy, quorum of 3 is 2"]
        );
        assert_eq!(
            p.steps.unwrap(),
            [
                Step::Snapshot,
                Step::Stop,
                Step::Remove(mem(1, "boot1", false)),
                Step::MoveAside,
                Step::AddLearner,
                Step::RecordJoin,
                Step::Start,
                Step::Promote,
                Step::Verify,
                Step::SyncGateway
            ]
        );
    }

    #[test]
    fn replace_refusals() {
        let e = replace(&member(1), &three(), &[true, false]);
        assert!(
            e.steps.unwrap_err().contains("do not hold quorum"),
            "2 of 3 need 2 others... one is down"
        );
        let alone = vec![mem(0, "boot0", false)];
        let e = replace(&member(0), &alone, &[]).steps.unwrap_err();
        assert!(e.contains("only voting member"), "{e}");
        let mut half = three();
        half[2] = mem(2, "", true);
        let e = replace(&member(1), &half, &[true]).steps.unwrap_err();
        assert!(
            e.contains("another membership change is in progress"),
            "{e}"
        );
    }

    #[test]
    fn a_rerun_after_the_removal_skips_it_and_one_after_the_add_reuses_the_learner() {
        // Removed, not yet added.
        let two = vec![mem(0, "boot0", false), mem(2, "boot2", false)];
        let s = replace(&member(1), &two, &[true, true]).steps.unwrap();
        assert_eq!(
            &s[1..5],
            [
                Step::Stop,
                Step::AlreadyRemoved,
                Step::MoveAside,
                Step::AddLearner
            ]
        );
        // Added as a learner, never started: reused, its (empty) data dir moved aside.
        let mut l = two.clone();
        let unstarted = Mem {
            name: String::new(),
            ..mem(1, "", true)
        };
        l.push(unstarted.clone());
        let s = replace(&member(1), &l, &[true, true]).steps.unwrap();
        assert_eq!(
            &s[1..4],
            [Step::Stop, Step::Reuse(unstarted), Step::MoveAside]
        );
        // A started learner keeps its data dir.
        let mut l = two;
        l.push(mem(1, "boot1", true));
        let s = replace(&member(1), &l, &[true, true]).steps.unwrap();
        assert_eq!(
            &s[1..4],
            [
                Step::Stop,
                Step::Reuse(mem(1, "boot1", true)),
                Step::RecordJoin
            ]
        );
    }

    #[test]
    fn rejoin_clears_next_start_flags_an_interrupted_rescue_left() {
        let mut me = member(1);
        me.next_start_flags = vec!["--force-new-cluster".into()];
        let s = rejoin(&me, None, false).unwrap();
        assert!(s.contains(&Step::ClearOnce));
        assert!(
            !rejoin(&member(1), None, false)
                .unwrap()
                .contains(&Step::ClearOnce)
        );
        let e = rejoin(&me, Some(&mem(1, "boot1", false)), false).unwrap_err();
        assert!(e.contains("not removing it"), "{e}");
    }

    #[test]
    fn add_refuses_a_member_and_warns_of_an_even_cluster() {
        let e = add(&member(1), &three(), &[true, true]).steps.unwrap_err();
        assert!(e.contains("already a member (ID 1)"), "{e}");
        let two = vec![mem(0, "boot0", false), mem(2, "boot2", false)];
        let p = add(&member(1), &two, &[true, true]);
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert_eq!(
            p.steps.unwrap()[..3],
            [Step::Snapshot, Step::Stop, Step::MoveAside]
        );
        let four = vec![
            mem(0, "boot0", false),
            mem(2, "boot2", false),
            mem(3, "boot3", false),
        ];
        let p = add(&member(1), &four, &[true, true, true]);
        assert!(p.notes[1].contains("an even number"), "{:?}", p.notes);
        // 3 voters, 2 healthy: quorum holds, and once promoted the new one makes 3 of 4.
        let p = add(&member(1), &four, &[true, true, false]);
        assert!(p.steps.is_ok(), "{:?}", p.steps);
        let p = add(&member(1), &four, &[true, false, false]);
        assert!(p.steps.unwrap_err().contains("would not hold quorum"));
    }

    #[test]
    fn one_voter_grows_to_two_by_replace_or_add() {
        // A rescue left boot0 alone; boot1 is not listed any more.
        let alone = vec![mem(0, "boot0", false)];
        for p in [
            replace(&member(1), &alone, &[true]),
            add(&member(1), &alone, &[true]),
        ] {
            let steps = p.steps.unwrap();
            assert!(steps.contains(&Step::AddLearner), "{steps:?}");
            assert!(steps.contains(&Step::Promote), "{steps:?}");
        }
        let p = replace(&member(1), &alone, &[true]);
        assert!(p.notes[0].contains("joins as a learner"), "{:?}", p.notes);
        // The survivor down: no quorum to add with.
        let e = replace(&member(1), &alone, &[false]).steps.unwrap_err();
        assert!(e.contains("do not hold quorum"), "{e}");
        // Still listed as a started voter: removing it first needs 2 of 2, refused.
        let two = vec![mem(0, "boot0", false), mem(1, "boot1", false)];
        let e = replace(&member(1), &two, &[true]).steps.unwrap_err();
        assert!(e.contains("do not hold quorum"), "{e}");
    }

    #[test]
    fn add_refuses_the_gateways_port() {
        let local = EtcdMembers {
            gateway: Some(crate::api::EtcdGateway {
                program: "etcd-gw".into(),
                state: ProcessState::Running,
                env_file: String::new(),
                listen_addr: "127.0.0.1:2071".into(),
                endpoints: vec![],
                runtime_file: String::new(),
                argv: vec![],
                learned: vec![],
            }),
            ..Default::default()
        };
        let e = gateway_port_clash(&local, &member(1)).unwrap();
        assert!(e.contains("uses the gateway's listen port 2071"), "{e}");
    }

    #[test]
    fn remove_plans() {
        let p = remove(&member(2), &three(), &[true, true]);
        assert_eq!(
            p.steps.unwrap(),
            [
                Step::Snapshot,
                Step::Remove(mem(2, "boot2", false)),
                Step::Stop,
                Step::MoveAside,
                Step::RecordExisting,
                Step::SyncGateway
            ]
        );
        assert!(p.notes[1].contains("an even number"), "{:?}", p.notes);
        let two = vec![mem(0, "boot0", false), mem(1, "boot1", false)];
        let e = remove(&member(1), &two, &[true]).steps.unwrap_err();
        assert!(e.contains("2-member cluster is unsafe"), "{e}");
        let e = remove(&member(2), &three(), &[true, false])
            .steps
            .unwrap_err();
        assert!(e.contains("would not hold quorum"), "{e}");
        // Run again after the removal: nothing to remove, the rest is done again (idempotent).
        let mut me = member(2);
        me.cluster_state = "existing".into();
        let s = remove(&me, &two, &[true, true]).steps.unwrap();
        assert_eq!(s[1], Step::AlreadyRemoved);
        assert!(!s.contains(&Step::RecordExisting));
        let e = remove(&me, &two, &[false, false]).steps.unwrap_err();
        assert!(e.contains("no other healthy member"), "{e}");
    }

    #[test]
    fn move_plans() {
        let local = EtcdMembers::default();
        let me = member(1);
        assert!(
            move_request(&local, &me, "10.0.0.1:2080")
                .unwrap_err()
                .contains("not a peer URL")
        );
        assert!(
            move_request(&local, &me, &me.client_url)
                .unwrap_err()
                .contains("own client URL")
        );
        let list = three();
        let to = "http://127.0.0.1:3081";
        let mine = moving(&list, &me, to).unwrap();
        let p = move_peer(&list, &mine, to, &[true, true]);
        let s = p.steps.unwrap();
        assert!(matches!(&s[1], Step::UpdatePeer { id: 1, to: t, .. } if t == to));
        // Run again after the update: the cluster already lists the new URL.
        let mut moved = list.clone();
        moved[1].peer_urls = vec![to.into()];
        let mine = moving(&moved, &me, to).unwrap();
        let s = move_peer(&moved, &mine, to, &[true, true]).steps.unwrap();
        assert_eq!(
            s[1],
            Step::PeerAlready {
                id: 1,
                to: to.into()
            }
        );
        let taken = move_peer(&list, &list[1], "http://127.0.0.1:2082", &[true, true]);
        assert!(
            taken
                .steps
                .unwrap_err()
                .contains("already used by member boot2")
        );
        let e = move_peer(&list, &list[1], to, &[false, true])
            .steps
            .unwrap_err();
        assert!(e.contains("do not hold quorum"), "{e}");
    }

    #[test]
    fn rescue_forces_only_without_quorum_and_never_past_a_quorum_without_it() {
        let local = EtcdMembers {
            members: vec![member(0), member(1), member(2)],
            ..Default::default()
        };
        let list = three();
        let p = rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[true, false, false],
            &Checks::default(),
        );
        let s = p.steps.unwrap();
        assert!(s.contains(&Step::ForceNewCluster { id: 0 }), "{s:?}");
        assert!(s.contains(&Step::RemoveZombies { id: 0 }), "{s:?}");
        assert!(
            s.iter().position(|x| *x == Step::SnapshotOwn)
                < s.iter().position(|x| *x == Step::CopyAside)
        );
        let p = rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[true, true, false],
            &Checks::default(),
        );
        assert_eq!(p.steps.unwrap(), []);
        let e = rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[false, true, true],
            &Checks::default(),
        );
        assert!(e.steps.unwrap_err().contains("holds quorum without boot0"));
    }

    #[test]
    fn readd_skips_voters_and_waits_for_a_healthy_cluster() {
        let list = vec![mem(0, "boot0", false), mem(1, "boot1", false)];
        let p = readd(&member(1), &list, &[true, true]);
        assert_eq!(p.steps.unwrap(), []);
        assert!(p.notes[0].contains("skipped"));
        let p = readd(&member(2), &list, &[true, false]);
        assert!(
            p.steps
                .unwrap_err()
                .contains("not every voting member is healthy")
        );
        let s = readd(&member(2), &list, &[true, true]).steps.unwrap();
        assert_eq!(s[..3], [Step::Stop, Step::AlreadyRemoved, Step::MoveAside]);
    }

    fn other(name: &str, answer: Answer, revision: Option<i64>) -> Other {
        Other {
            name: name.into(),
            client_url: format!("http://{name}:2379"),
            answer,
            revision,
            from: "host h's fild: database".into(),
            program: Some(format!("etcd-{}", &name[4..])),
            host: Some(format!("h{}", &name[4..])),
            down_here: None,
        }
    }

    /// Mode two: boot0 here, boot1 and boot2 on other hosts; quorum lost (only boot0 up).
    fn mode_two(others: Vec<Other>, assume: &[&str], yes: bool) -> Planned {
        let local = EtcdMembers {
            members: vec![member(0)],
            ..Default::default()
        };
        let list = three();
        let checks = Checks {
            others,
            my_revision: Some(40),
            assume_down: assume.iter().map(|s| s.to_string()).collect(),
            allow_behind: false,
            yes,
            dry_run: false,
            command: "filc etcd rescue etcd-0".into(),
        };
        rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[false, false, false],
            &checks,
        )
    }

    fn silent(name: &str, rev: Option<i64>) -> Other {
        other(name, Answer::Nothing("connection refused".into()), rev)
    }

    #[test]
    fn after_a_forced_start_every_other_listed_member_is_a_zombie() {
        let list = three();
        let z: Vec<u64> = zombies(&list, 1).iter().map(|m| m.id).collect();
        assert_eq!(z, [0, 2]);
        assert!(zombies(&list[1..2], 1).is_empty(), "alone: none");
    }

    #[test]
    fn rescue_refuses_while_the_other_hosts_hold_quorum() {
        let local = EtcdMembers {
            members: vec![member(0)],
            ..Default::default()
        };
        let list = three();
        let e = rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[true, true, true],
            &Checks::default(),
        );
        let e = e.steps.unwrap_err();
        assert!(e.contains("holds quorum (boot1, boot2 healthy"), "{e}");
        assert!(e.contains("filc etcd replace"), "{e}");
    }

    #[test]
    fn rescue_refuses_a_member_with_a_leader() {
        let p = mode_two(
            vec![
                other("boot1", Answer::Leader(2), Some(50)),
                silent("boot2", None),
            ],
            &["boot2"],
            true,
        );
        let e = p.steps.unwrap_err();
        assert!(
            e.contains("boot1 answers at http://boot1:2379 as part of a cluster with leader 2"),
            "{e}"
        );
        assert!(
            e.contains("two clusters") && e.contains("filc etcd replace etcd-0"),
            "{e}"
        );
    }

    #[test]
    fn rescue_refuses_an_alive_member_it_cannot_ask() {
        let p = mode_two(
            vec![
                other("boot1", Answer::PeerOnly("timeout".into()), None),
                silent("boot2", None),
            ],
            &["boot2"],
            true,
        );
        assert!(p.steps.unwrap_err().contains("boot1 (its peer URL answers"));
    }

    #[test]
    fn a_silent_member_needs_assume_down_and_yes() {
        let both = || vec![silent("boot1", Some(40)), silent("boot2", Some(30))];
        let e = mode_two(both(), &[], true).steps.unwrap_err();
        assert!(
            e.contains("boot1 (connection refused); boot2 (connection refused) answer on neither"),
            "{e}"
        );
        assert!(e.contains("this host may be the one cut off"), "{e}");
        assert!(
            e.contains("filc etcd rescue etcd-0 --assume-down boot1 --assume-down boot2 --yes"),
            "{e}"
        );
        let e = mode_two(both(), &["boot1"], true).steps.unwrap_err();
        assert!(
            e.contains("boot2 (connection refused) answer on neither"),
            "{e}"
        );
        let e = mode_two(both(), &["boot1", "boot2"], false)
            .steps
            .unwrap_err();
        assert!(e.contains("need --yes as well"), "{e}");
        let p = mode_two(both(), &["boot1", "boot2"], true);
        let s = p.steps.unwrap();
        assert!(s.contains(&Step::ForceNewCluster { id: 0 }), "{s:?}");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("assumed down (--assume-down): boot1, boot2"))
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("furthest: boot0 at revision 40")),
            "{:?}",
            p.notes
        );
        assert!(
            s.iter()
                .any(|x| matches!(x, Step::Note(n) if n.contains("`filc etcd replace` with that host's member program")))
        );
        // A name that is no member, or one that answers.
        let e = mode_two(both(), &["boot1", "boot2", "boot9"], true)
            .steps
            .unwrap_err();
        assert!(e.contains("no other member"), "{e}");
        let e = mode_two(
            vec![
                silent("boot1", None),
                other("boot2", Answer::NoLeader, None),
            ],
            &["boot1", "boot2"],
            true,
        )
        .steps
        .unwrap_err();
        assert!(e.contains("--assume-down boot2, but boot2 answers"), "{e}");
    }

    #[test]
    fn a_member_this_fild_runs_stopped_is_down_for_certain() {
        let mut down = silent("boot1", Some(30));
        down.down_here = Some("its program etcd-1 is STOPPED here".into());
        let p = mode_two(vec![down, silent("boot2", None)], &["boot2"], true);
        assert!(p.steps.is_ok(), "{p:?}");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("down, run here and stopped: boot1"))
        );
        let e = mode_two(
            vec![silent("boot1", None), silent("boot2", None)],
            &["boot2"],
            true,
        );
        assert!(
            e.steps
                .unwrap_err()
                .contains("boot1 (connection refused) answer on neither")
        );
    }

    #[test]
    fn a_member_without_a_leader_is_left_out_and_said() {
        let p = mode_two(
            vec![
                silent("boot1", None),
                other("boot2", Answer::NoLeader, Some(10)),
            ],
            &["boot1"],
            true,
        );
        assert!(p.steps.is_ok());
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("boot2 answers at http://boot2:2379 without a leader"))
        );
        assert!(
            p.notes.iter().any(|n| n.contains("could be further")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn a_survivor_behind_is_refused_and_the_furthest_named() {
        let behind = || vec![silent("boot1", Some(57)), silent("boot2", Some(50))];
        let p = mode_two(behind(), &["boot1", "boot2"], true);
        let e = p.steps.unwrap_err();
        assert!(
            e.contains("boot0 is behind: boot1 holds revision 57, boot0 only 40"),
            "{e}"
        );
        assert!(e.contains("`filc etcd rescue etcd-1` on host h1"), "{e}");
        assert!(e.contains("--allow-behind"), "{e}");
        assert!(
            p.notes.iter().any(|n| n.starts_with(
                "data positions: boot0 revision 40 (this survivor); boot1 revision 57"
            )),
            "{:?}",
            p.notes
        );
        let local = EtcdMembers {
            members: vec![member(0)],
            ..Default::default()
        };
        let list = three();
        let checks = Checks {
            others: behind(),
            my_revision: Some(40),
            assume_down: vec!["boot1".into(), "boot2".into()],
            allow_behind: true,
            yes: true,
            dry_run: false,
            command: String::new(),
        };
        let p = rescue(
            &local,
            &member(0),
            &list,
            &list[0],
            &[false, false, false],
            &checks,
        );
        assert!(p.steps.is_ok());
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("the 17 revisions after 40 are lost"))
        );
    }
}
