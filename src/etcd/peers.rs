//! fild to fild: the other hosts' filds that `[cluster] hosts` names, asked over their TCP
//! control API (Basic auth, through [`crate::control::client`]) for their running operations
//! (`GET /v1/etcd/ops`) and their members' data positions (`GET /v1/etcd/positions`, served
//! here by [`local_positions`]). Every call is bounded by [`PEER_TIMEOUT`]: a host that does
//! not answer is unreachable, never a hang. A fild skips its own entry: by its
//! `[inet_http_server] port` when the entry names it, else because the entry answers with
//! this fild's own instance (`GET /v1/version`). Without `[cluster]` nothing here is asked.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::api::{EtcdMembers, EtcdOp, EtcdOpState, EtcdPosition, EtcdPositions, ProcessState};
use crate::config::{ClusterHost, ClusterSettings};
use crate::control::client::{Client, Target};
use crate::control::server::instance;
use crate::control::tls::Trust;
use crate::etcd::conn::{Tls, self_status};
use crate::supervisor::ProgramsView;

/// How long one call to another host's fild may take.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// Another host's fild, as it answered (or why it did not).
pub(crate) struct Reply<T> {
    pub(crate) host: String,
    pub(crate) url: String,
    pub(crate) answer: Result<T, String>,
}

/// The client of host `h`; an `https://` host's certificate is verified with `[cluster]
/// ca_file` (the config loader refuses an https host without one), for the URL's host.
pub(crate) fn client(c: &ClusterSettings, h: &ClusterHost) -> Client {
    let target = Target::parse(&h.url).unwrap_or(Target::Tcp(h.url.clone()));
    let cl = Client::new(target, Some(&c.username), Some(&c.password));
    match c.ca.as_ref().map(Trust::of) {
        Some(Ok(t)) => cl.with_trust(t),
        Some(Err(e)) => {
            // Checked at load; a call to an https host says there is no CA.
            tracing::warn!(error = %e, "[cluster] ca_file cannot be used.");
            cl
        }
        None => cl,
    }
}

pub(crate) async fn bounded<T, E: std::fmt::Display>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(PEER_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", PEER_TIMEOUT.as_secs())),
    }
}

/// Ask every other host's fild with `ask`, all at once; this fild's own entry is skipped.
pub(crate) async fn ask_others<T, F, Fut>(c: &ClusterSettings, ask: F) -> Vec<Reply<T>>
where
    T: Send + 'static,
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, h) in c.hosts.iter().enumerate().filter(|(_, h)| !h.own) {
        let cl = client(c, h);
        let then = ask(cl.clone());
        set.spawn(async move {
            let answer = match bounded(cl.version()).await {
                Ok(v) if v.instance == instance() => return (i, None),
                Ok(_) => then.await,
                Err(e) => Err(e),
            };
            (i, Some(answer))
        });
    }
    let mut out: Vec<(usize, Reply<T>)> = Vec::new();
    while let Some(Ok((i, answer))) = set.join_next().await {
        if let Some(answer) = answer {
            let h = &c.hosts[i];
            out.push((
                i,
                Reply {
                    host: h.name.clone(),
                    url: h.url.clone(),
                    answer,
                },
            ));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Every other host's running operations.
pub(crate) async fn running_ops(c: &ClusterSettings) -> Vec<Reply<Vec<EtcdOp>>> {
    ask_others(c, |cl| async move {
        bounded(cl.ops()).await.map(|ops| {
            ops.into_iter()
                .filter(|o| o.state == EtcdOpState::Running)
                .collect()
        })
    })
    .await
}

/// Every other host's members' data positions.
pub(crate) async fn positions(c: &ClusterSettings) -> Vec<Reply<EtcdPositions>> {
    ask_others(c, |cl| async move { bounded(cl.positions()).await }).await
}

/// "operation 3 (rescue etcd-1) on host h1 since 2026-12-02T07:20:23Z".
pub(crate) fn describe_op(host: &str, op: &EtcdOp) -> String {
    let since =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(op.started_unix));
    format!(
        "operation {} ({}) on host {host} since {since}",
        op.id, op.title
    )
}

/// Before an operation that runs without quorum (rescue, restore of a dead cluster): refuse
/// while another host's fild runs an operation that `conflicts`; say which hosts did not
/// answer. Nothing is asked without `[cluster]`.
pub(crate) async fn refuse_if_busy(
    cluster: Option<&ClusterSettings>,
    say: crate::etcd::Say<'_>,
    conflicts: impl Fn(&EtcdOp) -> bool,
) -> anyhow::Result<()> {
    let Some(c) = cluster else {
        return Ok(());
    };
    let replies = running_ops(c).await;
    let mut busy = Vec::new();
    let mut silent = Vec::new();
    let mut asked = Vec::new();
    for r in &replies {
        match &r.answer {
            Ok(ops) => {
                asked.push(r.host.clone());
                busy.extend(
                    ops.iter()
                        .filter(|o| conflicts(o))
                        .map(|o| describe_op(&r.host, o)),
                );
            }
            Err(e) => silent.push(format!("{} ({}: {e})", r.host, r.url)),
        }
    }
    say(&format!(
        "check the other hosts' filds for running operations: {}{}",
        if asked.is_empty() {
            "none answered".to_string()
        } else {
            format!("{} answered", asked.join(", "))
        },
        if silent.is_empty() {
            String::new()
        } else {
            format!("; no answer from {}", silent.join(", "))
        }
    ));
    if !busy.is_empty() {
        anyhow::bail!(
            "refused: {} runs; one operation without quorum at a time across the hosts: wait for it to end (or follow it on its host: filc etcd ops --follow ID). Nothing changed.",
            busy.join("; ")
        );
    }
    Ok(())
}

/// The revision the database of a stopped member holds (`<data_dir>/member/snap/db`).
fn db_revision(data_dir: &str) -> (Option<i64>, String, Option<String>) {
    let db = Path::new(data_dir).join("member/snap/db");
    let source = format!("database {}", db.display());
    if !db.exists() {
        return (None, source, Some("no database file (no data)".into()));
    }
    match crate::etcd::bolt::revision(&db) {
        Ok(r) => (Some(r), source, None),
        Err(e) => (None, source, Some(e)),
    }
}

/// This host's members' data positions: each running member's revision from its own status
/// call, else (stopped, or not answering) from its database file.
pub(crate) async fn positions_of(local: &EtcdMembers) -> EtcdPositions {
    let tls = Tls::of(local);
    let mut members = Vec::new();
    for m in &local.members {
        let mut pos = EtcdPosition {
            program: m.program.clone(),
            name: m.name.clone(),
            state: m.state,
            revision: None,
            source: String::new(),
            error: None,
        };
        let mut why_not = None;
        if m.state == ProcessState::Running {
            match self_status(&m.client_url, &tls).await {
                Ok(s) => {
                    pos.revision = Some(s.revision);
                    pos.source = format!("status of the running member at {}", m.client_url);
                }
                Err(e) => why_not = Some(e),
            }
        }
        if pos.revision.is_none() {
            let dir = m.data_dir.clone();
            let (rev, source, error) = tokio::task::spawn_blocking(move || db_revision(&dir))
                .await
                .unwrap_or((None, String::new(), Some("the read panicked".into())));
            pos.revision = rev;
            pos.source = match &why_not {
                Some(_) => format!("{source} (the running member did not answer)"),
                None => source,
            };
            pos.error = match (error, why_not) {
                (Some(e), Some(w)) => Some(format!("{e}; status: {w}")),
                (e, _) => e,
            };
        }
        members.push(pos);
    }
    EtcdPositions {
        instance: instance().to_string(),
        members,
    }
}

/// `GET /v1/etcd/positions`, the hook the control server runs.
pub async fn local_positions(view: ProgramsView) -> EtcdPositions {
    let local = crate::etcd::members::collect_off_loop(view).await;
    positions_of(&local).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EtcdOpKind, EtcdOpRequest};

    #[test]
    fn a_rescue_request_of_an_older_filc_still_decodes_and_says_its_flags() {
        let old = r#"{"kind":{"op":"rescue","program":"etcd-0"},"yes":true}"#;
        let r: EtcdOpRequest = serde_json::from_str(old).unwrap();
        assert_eq!(
            r.kind,
            EtcdOpKind::Rescue {
                program: "etcd-0".into(),
                assume_down: vec![],
                allow_behind: false
            }
        );
        assert_eq!(r.command(), "filc etcd rescue etcd-0 --yes");
        let new = EtcdOpKind::Rescue {
            program: "etcd-0".into(),
            assume_down: vec!["boot1".into(), "boot2".into()],
            allow_behind: true,
        };
        assert_eq!(
            new.title(),
            "rescue etcd-0 --assume-down boot1 --assume-down boot2 --allow-behind"
        );
        let back: EtcdOpKind = serde_json::from_str(&serde_json::to_string(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }

    #[test]
    fn a_stopped_member_without_data_has_no_position_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let (rev, source, error) = db_revision(&dir.path().display().to_string());
        assert_eq!(rev, None);
        assert!(source.ends_with("member/snap/db"), "{source}");
        assert!(error.unwrap().contains("no database file"));
        std::fs::create_dir_all(dir.path().join("member/snap")).unwrap();
        std::fs::write(dir.path().join("member/snap/db"), b"not bbolt").unwrap();
        let (rev, _, error) = db_revision(&dir.path().display().to_string());
        assert_eq!(rev, None);
        assert!(error.is_some());
    }

    #[tokio::test]
    async fn a_fild_that_does_not_answer_is_unreachable_within_the_timeout() {
        // A listener that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                kept.push(s);
            }
        });
        let c = ClusterSettings {
            hosts: vec![
                ClusterHost {
                    name: "me".into(),
                    url: "http://127.0.0.1:1".into(),
                    own: true,
                },
                ClusterHost {
                    name: "mute".into(),
                    url: format!("http://{addr}"),
                    own: false,
                },
            ],
            username: "u".into(),
            password: "p".into(),
            ca: None,
        };
        let t = std::time::Instant::now();
        let r = running_ops(&c).await;
        assert!(t.elapsed() < PEER_TIMEOUT + Duration::from_secs(2));
        assert_eq!(r.len(), 1, "its own entry is skipped");
        assert_eq!(r[0].host, "mute");
        assert!(
            r[0].answer
                .as_ref()
                .unwrap_err()
                .contains("no answer within 3 s")
        );
        let said = std::cell::RefCell::new(Vec::new());
        let say = |l: &str| said.borrow_mut().push(l.to_string());
        refuse_if_busy(Some(&c), &say, |_| true).await.unwrap();
        assert!(
            said.borrow()[0].contains("no answer from mute"),
            "{:?}",
            said.borrow()
        );
    }
}
