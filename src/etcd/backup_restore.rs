//! `filc etcd restore FILE`: rebuild the cluster from one snapshot (recovery mode three).
//!
//! Everything that can fail without touching the running cluster is done first, so bad input
//! changes nothing:
//!
//! 1. Check the file (it exists, its trailing SHA-256 matches) and every member's settings
//!    (name, peer URL, data dir, env file). A choice that is no snapshot is refused with the
//!    way forward ([`unfit_reason`]): the snapshots a directory holds, or `filc etcd backups`.
//!    Each member's restore tool is chosen before anything changes ([`restore_tool`]):
//!    `etcdutl` where the member's etcd version has it (3.5+), else `etcdctl`, each the
//!    member's own (its settings' `etcdutl_bin` / `etcdctl_bin`, which an empty value fills
//!    from `ETCDUTL_BIN` / `ETCDCTL_BIN` in the environment, then the tool beside the member's
//!    etcd binary, then PATH), and none older than the etcd that wrote the snapshot (the
//!    version the file records, [`bolt::recorded_versions`]); nor may a member's etcd be
//!    older than it. A refusal says which tool to name.
//! 2. Restore the snapshot offline into `<data_dir>.restoring` beside each member's data dir,
//!    with that tool's `snapshot restore` (`ETCDCTL_API=3`). Each member gets its own name
//!    and peer URL, the same initial cluster and a **new** cluster token, so the result is a
//!    new cluster (new member and cluster IDs) that no old member can join by mistake.
//! 3. Stop the gateway and every member (`force`: the quorum guard must not refuse).
//! 4. Move each member's data dir aside to `<data_dir>.<UTC time>` (never deleted), and
//!    move the restored dir into its place.
//! 5. Record in each member's runtime layer: `cluster_token=<new token>`, `cluster_state=new`,
//!    and `initial_cluster` when it differs from the list the data was restored with.
//! 6. Start every member, then the gateway; wait until every member is healthy and answers a
//!    linearizable read through its own endpoint.
//!
//! The new token is `<old token without an earlier -restored-…>-restored-<12 hex>`, the hex
//! taken from a SHA-256 of the old token and the snapshot's own checksum. It is therefore new
//! on every restore (the old token differs each time) yet the same on every host that
//! restores the same file into the same old cluster, which is what mode two needs: copy the
//! file to each host and run `filc etcd restore` there; each fild restores the members it runs.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};

use super::Say;
use super::child;
use super::gate::Gate;
use super::programs::local_members;
use super::restore_plan::{is_this_restore, live, member_id, plan_lines};
use super::steps;
use super::{backup, binary_probe, bolt, restore_tool, snapshot};
use crate::api::{ActionReply, EtcdMember, EtcdMembers};
use crate::etcd::conn;
use crate::etcd::programs::Programs;
use crate::supervisor::UserOp;

/// How long the restored cluster may take to become healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(120);
/// How many of a directory's snapshots a refusal names.
const NAMED: usize = 5;
/// The way forward when a member's own data cannot be used.
pub const RESTORE_INSTEAD: &str =
    "restore a snapshot instead: `filc etcd backups` lists them, then `filc etcd restore FILE`";

/// Why the path given to restore is not a snapshot to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unfit {
    Missing,
    /// A directory, with the snapshots it holds, newest first.
    Directory(Vec<PathBuf>),
    /// Something else that is no regular file (a FIFO, a device).
    NotAFile,
    /// A file that is no good snapshot (unreadable, truncated, corrupt).
    Bad(String),
}

/// The refusal of a snapshot choice, with the way forward: the snapshots a directory holds,
/// else `filc etcd backups`, which lists the backup folder.
fn unfit_reason(unfit: &Unfit, backup_dir: &str) -> String {
    let listing = if backup_dir.is_empty() {
        "`filc etcd backups` lists the snapshots fild keeps".to_string()
    } else {
        format!("`filc etcd backups` lists the snapshots in {backup_dir}")
    };
    match unfit {
        Unfit::Missing => format!("no such file; {listing}"),
        Unfit::NotAFile => format!("not a regular file; {listing}"),
        Unfit::Bad(e) => format!("not a good snapshot: {e}; choose another: {listing}"),
        Unfit::Directory(found) if found.is_empty() => {
            format!("a directory, not a snapshot, and it holds no snapshot (*.db); {listing}")
        }
        Unfit::Directory(found) => {
            let names: Vec<String> = found
                .iter()
                .take(NAMED)
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            let more = match found.len().saturating_sub(NAMED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!(
                "a directory, not a snapshot; it holds {} snapshot{}, newest first: {}{more}. To restore the newest: `filc etcd restore {}`; {listing}",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                names.join(", "),
                found[0].display()
            )
        }
    }
}

/// Whether `file` is a snapshot to restore: its size when it is.
fn check_choice(file: &Path) -> Result<u64, Unfit> {
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Unfit::Missing),
        Err(e) => Err(Unfit::Bad(e.to_string())),
        Ok(md) if md.is_dir() => Err(Unfit::Directory(
            backup::list_dir(file)
                .unwrap_or_default()
                .into_iter()
                .map(|b| b.path)
                .collect(),
        )),
        Ok(md) if !md.is_file() => Err(Unfit::NotAFile),
        Ok(_) => snapshot::verify(file).map_err(Unfit::Bad),
    }
}

/// `name=url` pairs of an `initial_cluster` value.
fn parse_cluster(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.split_once('=')
                .map(|(n, u)| (n.trim().to_string(), u.trim().to_string()))
                .filter(|(n, u)| !n.is_empty() && !u.is_empty())
                .ok_or_else(|| format!("{e:?} is not name=peer_url"))
        })
        .collect()
}

fn format_cluster(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(n, u)| format!("{n}={u}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The cluster to restore: every member named in the members' configured `initial_cluster`
/// values (members other hosts run, in mode two), each local member with its own peer URL.
/// Configured, not learned: a member re-added after a rescue learned the list of its day
/// (short of the members re-added after it), and every host must rebuild the same cluster.
fn restored_cluster(members: &[EtcdMember]) -> Result<Vec<(String, String)>, String> {
    let mut list: Vec<(String, String)> = Vec::new();
    for m in members {
        let parsed = parse_cluster(m.configured_cluster())
            .map_err(|e| format!("{}: initial_cluster: {e}", m.program))?;
        for (n, u) in parsed {
            if members.iter().any(|l| l.name == n) {
                continue; // a local member: its own peer URL below
            }
            if !list.contains(&(n.clone(), u.clone())) {
                list.push((n, u));
            }
        }
    }
    for m in members {
        list.push((m.name.clone(), m.peer_url.clone()));
    }
    // Keep the configured order when the first member's list names everyone.
    let order: Vec<String> = parse_cluster(members[0].configured_cluster())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    list.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    Ok(list)
}

/// `<base>-restored-<hex>`: new for every restore, equal on every host restoring the same
/// file into the same cluster.
fn new_token(old: &str, snapshot_sum: &[u8]) -> String {
    let base = old.find("-restored-").map_or(old, |i| &old[..i]);
    let base = if base.is_empty() {
        "etcd-cluster"
    } else {
        base
    };
    let mut h = Sha256::new();
    h.update(old.as_bytes());
    h.update(b"\n");
    h.update(snapshot_sum);
    let d = h.finalize();
    format!("{base}-restored-{}", hex::encode(&d[..6]))
}

/// The snapshot's own trailing SHA-256.
fn snapshot_sum(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::End(-32))?;
    let mut sum = vec![0u8; 32];
    f.read_exact(&mut sum)?;
    Ok(sum)
}

/// What the restore knows of a member's tools: the paths the members view reports, each
/// asked its version (blocking, bounded: [`binary_probe::tool_version`]).
fn member_tools(m: &EtcdMember) -> restore_tool::Member {
    let tool = |kind: restore_tool::Kind, path: &str| {
        (!path.is_empty()).then(|| restore_tool::Tool {
            kind,
            path: PathBuf::from(path),
            version: binary_probe::tool_version(Path::new(path), kind.name()),
        })
    };
    restore_tool::Member {
        name: m.name.clone(),
        version: crate::etcd::releases::parse(&m.etcd_version).ok(),
        etcdutl: tool(restore_tool::Kind::Etcdutl, &m.etcdutl_bin),
        etcdctl: tool(restore_tool::Kind::Etcdctl, &m.etcdctl_bin),
    }
}

fn restoring_dir(m: &EtcdMember) -> PathBuf {
    PathBuf::from(format!("{}.restoring", m.data_dir))
}

/// Run the offline restore for one member into `into`.
fn offline_restore(
    tool: &Path,
    file: &Path,
    m: &EtcdMember,
    initial_cluster: &str,
    token: &str,
    into: &Path,
) -> anyhow::Result<()> {
    let args: Vec<&std::ffi::OsStr> = vec![
        "snapshot".as_ref(),
        "restore".as_ref(),
        file.as_os_str(),
        "--name".as_ref(),
        m.name.as_ref(),
        "--initial-cluster".as_ref(),
        initial_cluster.as_ref(),
        "--initial-cluster-token".as_ref(),
        token.as_ref(),
        "--initial-advertise-peer-urls".as_ref(),
        m.peer_url.as_ref(),
        "--data-dir".as_ref(),
        into.as_os_str(),
    ];
    let out = child::output(tool.as_os_str(), &args, &[("ETCDCTL_API", "3")], "ETCD_")
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.success() {
        bail!(
            "{} snapshot restore for {} failed ({}): {}{}",
            tool.display(),
            m.name,
            out.status(),
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

async fn action(
    ctl: &impl Programs,
    op: UserOp,
    names: &[String],
    say: Say<'_>,
) -> anyhow::Result<ActionReply> {
    let reply = ctl
        .act(op, names.to_vec())
        .await
        .with_context(|| format!("{} {}", op.as_str(), names.join(" ")))?;
    for r in &reply.results {
        say(&format!(
            "  {}: {} ({})",
            r.name,
            r.message,
            r.state.as_str()
        ));
    }
    Ok(reply)
}

fn program_names(local: &EtcdMembers) -> Vec<String> {
    local.members.iter().map(|m| m.program.clone()).collect()
}

/// Before a restore replaces anything: a snapshot of whatever member still answers (the
/// one furthest along; a lone member without quorum serves one too) into the backup folder,
/// said either way; a restore goes on without one when no member answers.
async fn safety_snapshot(local: &EtcdMembers, now: &super::restore_plan::Live, say: Say<'_>) {
    let (Some(name), Some(url)) = (&now.answers, &now.answers_url) else {
        say("safety snapshot: no member answered; going on without one");
        return;
    };
    if local.backup_dir.is_empty() {
        say("safety snapshot: fild has no [etcd] backup_dir; going on without one");
        return;
    }
    say(&format!(
        "safety snapshot of the data being replaced, from {name} ({url}) into {}",
        local.backup_dir
    ));
    let dir = Path::new(&local.backup_dir);
    // A member's name, or the endpoint it answered at (the gateway): fit for a file name.
    let label: String = name
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    match snapshot::take(
        url,
        &conn::Tls::of(local),
        &label,
        dir,
        super::private::Folder::Backup,
    )
    .await
    {
        Ok(t) => {
            if let Some(n) = &t.notice {
                say(n);
            }
            say(&format!(
                "safety snapshot: {} (revision {})",
                t.path.display(),
                t.revision
            ));
        }
        Err(e) => say(&format!(
            "safety snapshot from {name} failed ({e}); going on without one"
        )),
    }
}

/// Recovery mode three: see the module docs. Over a cluster that still has quorum only with
/// `force`; over one that answers only when confirmed.
pub async fn restore(
    ctl: &impl Programs,
    file: &Path,
    gate: &Gate,
    force: bool,
    say: Say<'_>,
) -> anyhow::Result<()> {
    let refuse = |why: String| {
        anyhow!(
            "filc etcd restore {}: {why}; nothing was changed",
            file.display()
        )
    };
    let local = local_members(ctl).await?;
    if !local.problems.is_empty() {
        return Err(refuse(format!(
            "member env files have problems: {}",
            local.problems.join("; ")
        )));
    }

    // 1. The file and the members' settings.
    say(&format!("verifying {}", file.display()));
    let unfit = |u: Unfit| refuse(unfit_reason(&u, &local.backup_dir));
    let size = check_choice(file).map_err(unfit)?;
    let file = file
        .canonicalize()
        .map_err(|e| unfit(Unfit::Bad(e.to_string())))?;
    // The revision the file holds, read from the file itself: what the plan says is lost.
    let snap_rev = bolt::revision(&file).map_err(|e| unfit(Unfit::Bad(e)))?;
    say(&format!(
        "snapshot checksum ok ({size} bytes, revision {snap_rev})"
    ));
    for m in &local.members {
        for (key, v) in [
            ("name", &m.name),
            ("peer_url", &m.peer_url),
            ("client_url", &m.client_url),
            ("data_dir", &m.data_dir),
        ] {
            if v.is_empty() {
                return Err(refuse(format!(
                    "{}: {key} is not set in {}",
                    m.program, m.env_file
                )));
            }
        }
    }
    for (i, m) in local.members.iter().enumerate() {
        if local.members[..i]
            .iter()
            .any(|o| o.name == m.name || o.data_dir == m.data_dir)
        {
            return Err(refuse(format!(
                "{} shares its name or data dir with another member",
                m.program
            )));
        }
    }
    let list = restored_cluster(&local.members).map_err(refuse)?;
    let initial_cluster = format_cluster(&list);
    let old_token = local.members[0].cluster_token.clone();
    let sum = snapshot_sum(&file).map_err(|e| unfit(Unfit::Bad(e.to_string())))?;
    // What the runtime layer records the token as learned by: names this very file, so a
    // re-run (or a host whose restore stopped after recording it) keeps the token its
    // earlier run chose instead of deriving yet another from it. (So restoring the same file
    // again over the cluster it made finds that cluster's member IDs: it says it is done,
    // with --force too, rather than making members that share IDs with live ones.)
    let by = format!("filc etcd restore (snapshot {})", hex::encode(&sum[..6]));
    let rerun = local.members.iter().all(|m| {
        m.learned
            .iter()
            .any(|l| l.key == "cluster_token" && l.applies && l.by == by && l.value == old_token)
    });
    let token = if rerun {
        old_token.clone()
    } else {
        new_token(&old_token, &sum)
    };
    // The tool per member, never older than the snapshot's writer: decided before anything.
    let recorded = bolt::recorded_versions(&file).map_err(|e| unfit(Unfit::Bad(e)))?;
    let known: Vec<restore_tool::Member> = local.members.iter().map(member_tools).collect();
    let versions: Vec<_> = known.iter().map(|m| m.version).collect();
    let writer = restore_tool::writer(
        recorded.cluster_version.as_deref(),
        recorded.storage_version.as_deref(),
        &versions,
    );
    match &writer {
        Some(w) => say(&format!(
            "snapshot written by etcd {} ({})",
            w.version.minor_line(),
            w.source
        )),
        None => say("snapshot: neither it nor the members say which etcd wrote it"),
    }
    let mut tools: Vec<(String, restore_tool::Chosen)> = Vec::new();
    for m in &known {
        let chosen = restore_tool::choose(m, writer.as_ref()).map_err(refuse)?;
        tools.push((m.name.clone(), chosen));
    }
    say(&format!("new cluster: {initial_cluster}"));
    if rerun {
        say(&format!(
            "cluster token: {token}, as this host's earlier restore of this file chose"
        ));
    } else {
        say(&format!("new cluster token: {token} (was {old_token})"));
    }
    let now = live(&local).await;
    let (lines, mut destructive) = plan_lines(
        &local,
        &file,
        snap_rev,
        &now,
        &initial_cluster,
        &restore_tool::describe(&tools),
    );
    // Restores on the other hosts ran first and their members already form the restored
    // cluster: this host's members join it (or did, on a re-run).
    let expected: Vec<u64> = list.iter().map(|(_, u)| member_id(&[u], &token)).collect();
    let joining = is_this_restore(&now, &expected);
    if joining {
        let tls = crate::etcd::conn::Tls::of(&local);
        let mut done_here = true;
        for m in &local.members {
            let id = member_id(&[&m.peer_url], &token);
            done_here &= m.state == crate::api::ProcessState::Running
                && now.ids.contains(&id)
                && crate::etcd::conn::healthy(&m.client_url, &tls).await;
        }
        if done_here {
            say(&format!(
                "already done: {} run as members of the cluster restored from this file",
                program_names(&local).join(", ")
            ));
            return Ok(());
        }
        say(&format!(
            "the cluster restored from this file already has quorum on the other hosts ({} answers at revision {}): this host's members ({}) join it",
            now.answers.as_deref().unwrap_or("a member"),
            now.revision,
            program_names(&local).join(", ")
        ));
        destructive = None;
    }
    if now.quorum && !force && !joining {
        let why = format!(
            "the cluster has quorum (at revision {}, the snapshot holds {snap_rev}); restore is for a cluster whose data is lost. To replace its data anyway: --force --yes",
            now.revision
        );
        if !gate.dry_run {
            return Err(refuse(why));
        }
        say(&format!("note: without --force this is refused: {why}"));
    }
    // Without quorum this runs like a rescue: never beside another host's operation (a
    // restore on another host of the same cluster is its other half, and goes on).
    if !now.quorum && !gate.dry_run {
        let cluster = ctl.cluster().await;
        super::peers::refuse_if_busy(cluster.as_ref(), say, |op| {
            !matches!(op.request.kind, crate::api::EtcdOpKind::Restore { .. })
        })
        .await
        .map_err(|e| refuse(format!("{e:#}")))?;
    }
    gate.pass(say, &lines, destructive.as_deref())?;
    if !joining {
        safety_snapshot(&local, &now, say).await;
    }
    let others: Vec<&str> = list
        .iter()
        .filter(|(n, _)| !local.members.iter().any(|m| &m.name == n))
        .map(|(n, _)| n.as_str())
        .collect();
    if !others.is_empty() {
        say(&format!(
            "members run elsewhere ({}): restore the same file on their hosts too",
            others.join(", ")
        ));
    }

    let of = lines.len();
    let step = |i: usize| say(&steps::begin(i, of, &lines[i - 1]));
    let done = |i: usize| say(&steps::done(i, of));

    // 2. Offline restore beside each data dir, while the cluster still runs.
    step(1);
    let mut prepared: Vec<PathBuf> = Vec::new();
    let cleanup = |dirs: &[PathBuf]| {
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    };
    for (m, (_, tool)) in local.members.iter().zip(&tools) {
        let into = restoring_dir(m);
        if into.exists() {
            say(&format!(
                "removing {} (left by an earlier restore that did not finish)",
                into.display()
            ));
            std::fs::remove_dir_all(&into)
                .map_err(|e| refuse(format!("{}: {e}", into.display())))?;
        }
        if let Some(parent) = into.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| refuse(format!("{}: {e}", parent.display())))?;
        }
        say(&format!(
            "restoring {} into {} ({} {} snapshot restore, {})",
            m.name,
            into.display(),
            tool.kind.name(),
            tool.version,
            tool.path.display()
        ));
        if let Err(e) = offline_restore(&tool.path, &file, m, &initial_cluster, &token, &into) {
            prepared.push(into);
            cleanup(&prepared);
            return Err(refuse(e.to_string()));
        }
        prepared.push(into);
    }

    done(1);

    // 3. Stop the gateway and the members.
    step(2);
    let mut stop: Vec<String> = Vec::new();
    if let Some(gw) = &local.gateway {
        stop.push(gw.program.clone());
    }
    stop.extend(program_names(&local));
    say(&format!("stopping {}", stop.join(" ")));
    if let Err(e) = action(ctl, UserOp::Stop, &stop, say).await {
        cleanup(&prepared);
        return Err(e.context("cannot stop the members; the restored data was discarded"));
    }
    let now = ctl.members().await?;
    let running: Vec<String> = now
        .members
        .iter()
        .filter(|m| local.members.iter().any(|l| l.program == m.program) && m.pid != 0)
        .map(|m| format!("{} (pid {})", m.program, m.pid))
        .collect();
    if !running.is_empty() {
        cleanup(&prepared);
        say("starting the stopped programs again");
        let _ = action(ctl, UserOp::Start, &stop, say).await;
        bail!(
            "filc etcd restore: {} still running after stop; no data dir was touched",
            running.join(", ")
        );
    }

    done(2);

    // 4. Old data aside, restored data in.
    step(3);
    for (m, into) in local.members.iter().zip(&prepared) {
        let data = PathBuf::from(&m.data_dir);
        if data.exists() {
            let aside = super::datadir::free_name_for(&data);
            std::fs::rename(&data, &aside).with_context(|| {
                format!(
                    "cannot move {} aside to {}; members are stopped, restored data is in {}",
                    data.display(),
                    aside.display(),
                    into.display()
                )
            })?;
            say(&format!(
                "{}: old data moved aside to {}",
                m.name,
                aside.display()
            ));
        } else {
            say(&format!(
                "{}: no old data dir at {}",
                m.name,
                data.display()
            ));
        }
        std::fs::rename(into, &data).with_context(|| {
            format!(
                "cannot move {} to {}; members are stopped",
                into.display(),
                data.display()
            )
        })?;
        say(&format!("{}: restored data in {}", m.name, data.display()));
    }

    done(3);

    // 5. The runtime layer matches the restored data (the settings files stay as shipped).
    step(4);
    for m in &local.members {
        let mut changes: Vec<(&str, &str)> =
            vec![("cluster_token", token.as_str()), ("cluster_state", "new")];
        // The settings' own list, when it is the restored one, applies again (a list learned
        // earlier, by a join after a rescue, is dropped); else the restored list is learned.
        let same = parse_cluster(m.configured_cluster()).is_ok_and(|l| l == list);
        if !same {
            changes.push(("initial_cluster", initial_cluster.as_str()));
        }
        crate::etcd::runtime::learn_in(&m.env_file, &m.runtime_file, &changes, &by)
            .map_err(|e| anyhow::anyhow!("{e}; members are stopped"))?;
        let dropped = if same {
            crate::etcd::runtime::forget_in(&m.env_file, &m.runtime_file, &["initial_cluster"])
                .map_err(|e| anyhow::anyhow!("{e}; members are stopped"))?
        } else {
            vec![]
        };
        say(&format!(
            "{}: runtime {}: cluster_token={token}, cluster_state=new{}",
            m.program,
            m.runtime_file,
            if !same {
                ", initial_cluster=<new list>"
            } else if !dropped.is_empty() {
                ", initial_cluster as the settings say (the learned list dropped)"
            } else {
                ""
            }
        ));
    }

    done(4);

    // 6. Start, wait, verify.
    step(5);
    let members = program_names(&local);
    say(&format!("starting {}", members.join(" ")));
    action(ctl, UserOp::Start, &members, say).await?;
    if let Some(gw) = &local.gateway {
        say(&format!("starting {}", gw.program));
        action(ctl, UserOp::Start, std::slice::from_ref(&gw.program), say).await?;
    }
    say("waiting for every member to be healthy");
    let tls = conn::Tls::of(&local);
    let start = Instant::now();
    loop {
        let mut all = true;
        for m in &local.members {
            if !conn::healthy(&m.client_url, &tls).await {
                all = false;
                break;
            }
        }
        if all {
            break;
        }
        if start.elapsed() > HEALTHY_WITHIN {
            bail!(
                "the restored members are not all healthy after {} s; see `filc etcd status` and the members' logs",
                HEALTHY_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for m in &local.members {
        let mut c = conn::connect(&m.client_url, &tls)
            .await
            .map_err(|e| anyhow!("{}: {e}", m.name))?;
        let r = c
            .get("fild-restore-check", None)
            .await
            .map_err(|e| anyhow!("read through {} ({}) failed: {e}", m.name, m.client_url))?;
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        say(&format!("{}: healthy, read ok at revision {rev}", m.name));
    }
    let (mut c, _) = conn::connect_any(&conn::endpoints(&local), &tls)
        .await
        .map_err(|e| anyhow!("member list: {e}"))?;
    let ml = c.member_list().await?;
    for m in ml.members() {
        say(&format!(
            "member {:x} {} {}",
            m.id(),
            m.name(),
            m.peer_urls().join(",")
        ));
    }
    done(5);
    say(&format!(
        "restored from {}: new cluster with {} members",
        file.display(),
        ml.members().len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, peer: &str, ic: &str) -> EtcdMember {
        EtcdMember {
            program: format!("p-{name}"),
            name: name.into(),
            client_url: "http://c".into(),
            peer_url: peer.into(),
            data_dir: format!("/d/{name}"),
            initial_cluster: ic.into(),
            cluster_token: "t".into(),
            ..crate::etcd::members::fixtures::member(0)
        }
    }

    #[test]
    fn cluster_list_covers_local_and_remote_members() {
        let ic = "a=http://h:1,b=http://h:2,c=http://h:3";
        let all = [
            member("b", "http://h:2", ic),
            member("a", "http://h:1", ic),
            member("c", "http://h:3", ic),
        ];
        assert_eq!(format_cluster(&restored_cluster(&all).unwrap()), ic);
        // Mode two: one local member, the others from its initial_cluster; its own URL wins.
        let one = [member("b", "http://x:2", ic)];
        assert_eq!(
            format_cluster(&restored_cluster(&one).unwrap()),
            "a=http://h:1,b=http://x:2,c=http://h:3"
        );
        assert!(restored_cluster(&[member("a", "http://h:1", "junk")]).is_err());
        // Re-added after a rescue, b learned the list of its day (a and b): the settings'
        // own list, naming c too, is what every host rebuilds.
        let regrown = [EtcdMember {
            configured_initial_cluster: ic.into(),
            ..member("b", "http://h:2", "a=http://h:1,b=http://h:2")
        }];
        assert_eq!(format_cluster(&restored_cluster(&regrown).unwrap()), ic);
    }

    #[test]
    fn every_refused_choice_names_the_way_forward() {
        let r = |u: Unfit| unfit_reason(&u, "/b");
        let backups = "`filc etcd backups` lists the snapshots in /b";
        assert_eq!(r(Unfit::Missing), format!("no such file; {backups}"));
        assert_eq!(r(Unfit::NotAFile), format!("not a regular file; {backups}"));
        let bad = r(Unfit::Bad("/srv/x.db: checksum mismatch".into()));
        assert!(
            bad.starts_with("not a good snapshot: /srv/x.db: checksum mismatch; choose another")
        );
        assert!(bad.ends_with(backups), "{bad}");
        let none = r(Unfit::Directory(vec![]));
        assert!(none.starts_with("a directory, not a snapshot, and it holds no snapshot (*.db); "));
        assert!(none.ends_with(backups), "{none}");
        let one = r(Unfit::Directory(vec![PathBuf::from(
            "/srv/snaps/etcd-a-r5.db",
        )]));
        assert!(
            one.contains("it holds 1 snapshot, newest first: etcd-a-r5.db."),
            "{one}"
        );
        assert!(
            one.contains("`filc etcd restore /srv/snaps/etcd-a-r5.db`"),
            "{one}"
        );
        let many: Vec<PathBuf> = (0..7)
            .map(|i| PathBuf::from(format!("/srv/snaps/etcd-a-r{}.db", 9 - i)))
            .collect();
        let seven = r(Unfit::Directory(many));
        assert!(
            seven.contains("7 snapshots, newest first: etcd-a-r9.db, etcd-a-r8.db, etcd-a-r7.db, etcd-a-r6.db, etcd-a-r5.db and 2 more."),
            "{seven}"
        );
        assert!(seven.contains("`filc etcd restore /srv/snaps/etcd-a-r9.db`"));
        assert!(unfit_reason(&Unfit::Missing, "").contains("`filc etcd backups` lists"));
    }

    #[test]
    fn choices_are_told_apart() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(check_choice(&d.path().join("nope.db")), Err(Unfit::Missing));
        assert_eq!(check_choice(d.path()), Err(Unfit::Directory(vec![])));
        std::fs::write(d.path().join("etcd-a.db"), b"x").unwrap();
        assert_eq!(
            check_choice(d.path()),
            Err(Unfit::Directory(vec![d.path().join("etcd-a.db")]))
        );
        assert!(
            matches!(check_choice(&d.path().join("etcd-a.db")), Err(Unfit::Bad(e)) if e.contains("too short"))
        );
        assert_eq!(check_choice(Path::new("/dev/null")), Err(Unfit::NotAFile));
    }

    #[test]
    fn tokens_are_new_and_deterministic() {
        let t1 = new_token("etcd-cluster-1", b"sum");
        assert!(t1.starts_with("etcd-cluster-1-restored-"), "{t1}");
        assert_eq!(t1, new_token("etcd-cluster-1", b"sum"));
        let t2 = new_token(&t1, b"sum");
        assert!(t2.starts_with("etcd-cluster-1-restored-"), "{t2}");
        assert_ne!(t1, t2);
        assert_ne!(t1, new_token("etcd-cluster-1", b"other"));
    }
}
