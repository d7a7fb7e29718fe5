//! Asking the cluster itself: membership, each member's status and health, alarms, and a
//! verdict. Membership comes from the cluster (any reachable member), not from the local
//! fild, so on one host of three (mode two) the answer still covers the whole cluster.

use std::time::Duration;

use serde::Serialize;

use crate::api::{EtcdMembers, ProcessState};

/// How long one request to one member may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` of a URL like `http://127.0.0.1:2079`.
pub fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// `GET /health` on a member: true when it answers `"health":"true"` within the timeout.
/// An `https://` member is asked what `/health` checks over its gRPC API instead: no alarm
/// raised, and a linearizable read answered.
pub async fn healthy(client_url: &str) -> bool {
    if client_url.starts_with("https://") {
        return tokio::time::timeout(TIMEOUT, healthy_grpc(client_url))
            .await
            .unwrap_or(false);
    }
    let addr = host_port(client_url).to_string();
    let fut = async move {
        use http_body_util::{BodyExt, Empty};
        let s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/health")
            .header(hyper::header::HOST, addr)
            .body(Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        Some(v.get("health").and_then(|h| h.as_str()) == Some("true"))
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// etcd 3.4's `/health`: false while any alarm is raised or without a leader, else whether a
/// quorum read answers.
async fn healthy_grpc(client_url: &str) -> bool {
    let Ok(mut c) = super::conn::connect(client_url).await else {
        return false;
    };
    match c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await
    {
        Ok(a) if a.alarms().is_empty() => {}
        _ => return false,
    }
    c.get("health", None).await.is_ok()
}

/// One member as the cluster and fild see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberStatus {
    /// The program that runs it here, if this fild supervises it.
    pub program: Option<String>,
    pub program_state: Option<ProcessState>,
    pub name: String,
    /// Member ID in hex, as etcdctl prints it (None: not in the member list).
    pub id: Option<String>,
    pub client_url: String,
    pub peer_url: String,
    pub leader: bool,
    pub raft_term: u64,
    pub raft_index: u64,
    pub db_size: i64,
    pub learner: bool,
    pub healthy: bool,
    pub alarms: Vec<String>,
    /// Why the status could not be read.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    /// Quorum holds, but a member is down, unhealthy, a learner lags, or an alarm is raised.
    Degraded,
    NoQuorum,
}

impl Verdict {
    /// `filc etcd status`'s exit code: 0, 1, 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Degraded => 1,
            Verdict::NoQuorum => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub members: Vec<MemberStatus>,
    pub voters: usize,
    pub healthy_voters: usize,
    pub quorum: usize,
    pub leader: Option<String>,
    pub verdict: Verdict,
    /// Where the member list came from (None: no member answered).
    pub asked: Option<String>,
}

impl ClusterStatus {
    /// One line for people: `healthy: 3 of 3 voting members healthy (quorum 2), leader boot2`.
    pub fn summary(&self) -> String {
        let v = match self.verdict {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded (quorum held)",
            Verdict::NoQuorum => "NO QUORUM",
        };
        format!(
            "{v}: {} of {} voting members healthy (quorum {}), leader {}",
            self.healthy_voters,
            self.voters,
            self.quorum,
            self.leader.as_deref().unwrap_or("none")
        )
    }
}

/// The endpoints worth asking: the local members' client URLs, then the gateway.
/// The gateway only forwards TCP, so it speaks whatever the members speak.
pub fn endpoints(local: &EtcdMembers) -> Vec<String> {
    super::conn::use_tls(local);
    let mut urls: Vec<String> = local.members.iter().map(|m| m.client_url.clone()).collect();
    if let Some(gw) = &local.gateway {
        let https = local
            .members
            .iter()
            .any(|m| m.client_url.starts_with("https://"));
        let scheme = if https { "https" } else { "http" };
        urls.push(format!("{scheme}://{}", gw.listen_addr));
    }
    urls
}

fn alarm_name(a: i32) -> String {
    match a {
        1 => "NOSPACE".into(),
        2 => "CORRUPT".into(),
        n => format!("ALARM{n}"),
    }
}

/// Ask the cluster about every member; `local` says which programs run which member here.
pub async fn status(local: &EtcdMembers) -> ClusterStatus {
    super::conn::use_tls(local);
    let mut rows: Vec<MemberStatus> = Vec::new();
    let mut asked = None;
    let mut alarms: Vec<(u64, i32)> = Vec::new();
    if let Ok((mut c, url)) = super::conn::connect_any(&endpoints(local)).await {
        asked = Some(url);
        if let Ok(list) = c.member_list().await {
            for m in list.members() {
                rows.push(MemberStatus {
                    name: m.name().to_string(),
                    id: Some(format!("{:x}", m.id())),
                    client_url: m.client_urls().first().cloned().unwrap_or_default(),
                    peer_url: m.peer_urls().first().cloned().unwrap_or_default(),
                    learner: m.is_learner(),
                    ..Default::default()
                });
            }
        }
        if let Ok(resp) = c
            .alarm(
                etcd_client::AlarmAction::Get,
                etcd_client::AlarmType::None,
                None,
            )
            .await
        {
            alarms = resp
                .alarms()
                .iter()
                .map(|a| (a.member_id(), a.alarm() as i32))
                .collect();
        }
    }
    // Local members the cluster does not list (or no member answered at all).
    for m in &local.members {
        let known = rows
            .iter()
            .any(|r| r.name == m.name || (!r.peer_url.is_empty() && r.peer_url == m.peer_url));
        if !known {
            rows.push(MemberStatus {
                name: m.name.clone(),
                client_url: m.client_url.clone(),
                peer_url: m.peer_url.clone(),
                error: Some(if asked.is_some() {
                    "not in the cluster's member list".into()
                } else {
                    "no member answered".into()
                }),
                ..Default::default()
            });
        }
    }
    for r in &mut rows {
        if let Some(m) = local
            .members
            .iter()
            .find(|m| m.name == r.name || m.peer_url == r.peer_url)
        {
            r.program = Some(m.program.clone());
            r.program_state = Some(m.state);
            if r.client_url.is_empty() {
                r.client_url = m.client_url.clone();
            }
        }
        if let Some(id) = &r.id {
            r.alarms = alarms
                .iter()
                .filter(|(mid, _)| format!("{mid:x}") == *id)
                .map(|(_, a)| alarm_name(*a))
                .collect();
        }
    }
    // Per-member status and health, all at once.
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in rows.iter().enumerate() {
        let url = r.client_url.clone();
        let listed = r.id.is_some();
        set.spawn(async move {
            if url.is_empty() {
                return (i, Err("not started yet (no client URL)".to_string()), false);
            }
            let st = match super::conn::connect(&url).await {
                Ok(mut c) => c.status().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            let ok = listed && healthy(&url).await;
            (i, st, ok)
        });
    }
    let mut leader_id = None;
    // Members that answered a status call and know a leader: they serve, even when an alarm
    // makes etcd 3.4 report /health false on every member.
    let mut serving = vec![false; rows.len()];
    while let Some(Ok((i, st, ok))) = set.join_next().await {
        let r = &mut rows[i];
        r.healthy = ok;
        match st {
            Ok(s) => {
                // Raised alarms come back as errors too; they are shown as alarms.
                let errors: Vec<&String> = s
                    .errors()
                    .iter()
                    .filter(|e| !e.contains("alarm:"))
                    .collect();
                serving[i] = ok || (s.leader() != 0 && errors.is_empty());
                r.raft_term = s.raft_term();
                r.raft_index = s.raft_index();
                r.db_size = s.db_size();
                if let Some(h) = s.header() {
                    r.leader = h.member_id() == s.leader() && s.leader() != 0;
                }
                if s.leader() != 0 {
                    leader_id = Some(format!("{:x}", s.leader()));
                }
                if !errors.is_empty() {
                    r.error = Some(
                        errors
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                }
            }
            Err(e) => {
                if r.error.is_none() {
                    r.error = Some(e);
                }
            }
        }
    }
    let voters = rows.iter().filter(|r| r.id.is_some() && !r.learner).count();
    let any_alarm = rows.iter().any(|r| !r.alarms.is_empty());
    let healthy_voters = rows
        .iter()
        .zip(&serving)
        .filter(|(r, s)| r.id.is_some() && !r.learner && (r.healthy || (any_alarm && **s)))
        .count();
    let quorum = voters / 2 + 1;
    let all_fine = rows
        .iter()
        .all(|r| r.healthy && r.error.is_none() && !r.learner);
    let verdict = if voters == 0 || healthy_voters < quorum {
        Verdict::NoQuorum
    } else if healthy_voters == voters && all_fine && !any_alarm {
        Verdict::Healthy
    } else {
        Verdict::Degraded
    };
    let leader = leader_id.and_then(|id| {
        rows.iter()
            .find(|r| r.id.as_deref() == Some(id.as_str()))
            .map(|r| r.name.clone())
    });
    ClusterStatus {
        members: rows,
        voters,
        healthy_voters,
        quorum,
        leader,
        verdict,
        asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn kit(file: &str, env: &[(&str, &str)]) -> BTreeMap<String, String> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        crate::etcd::envfile::read(&path, &env).unwrap()
    }

    #[test]
    fn kit_env_files_are_plain_http_by_default() {
        let v = kit("apps/etcd/etcd-0.env", &[("ETCD_DATA_ROOT", "/d")]);
        assert_eq!(v["tls"], "off");
        assert_eq!(v["client_url"], "http://127.0.0.1:2079");
        assert_eq!(v["peer_url"], "http://127.0.0.1:2080");
        assert!(v["initial_cluster"].starts_with("boot0=http://127.0.0.1:2080,"));
        for k in [
            "cert_file",
            "key_file",
            "trusted_ca_file",
            "client_cert_file",
        ] {
            assert_eq!(v[k], "", "{k}");
        }
        let g = kit("apps/etcd/etcd-gw.env", &[]);
        assert_eq!(g["scheme"], "http");
        assert_eq!(g["cacert"], "");
    }

    #[test]
    fn kit_env_files_with_tls_files() {
        let env = [
            ("ETCD_DATA_ROOT", "/d"),
            ("ETCD_TLS", "files"),
            ("ETCD_SCHEME", "https"),
            ("ETCD_CERT_FILE", "/pki/m.crt"),
            ("ETCD_KEY_FILE", "/pki/m.key"),
            ("ETCD_TRUSTED_CA_FILE", "/pki/ca.crt"),
            ("ETCD2_CERT_FILE", "/pki/m2.crt"),
        ];
        let v = kit("apps/etcd/etcd-2.env", &env);
        assert_eq!(v["tls"], "files");
        assert_eq!(v["client_url"], "https://127.0.0.1:2279");
        assert_eq!(v["peer_url"], "https://127.0.0.1:2280");
        assert!(
            v["initial_cluster"]
                .split(',')
                .all(|m| m.contains("=https://"))
        );
        assert_eq!(v["cert_file"], "/pki/m2.crt");
        assert_eq!(v["peer_cert_file"], "/pki/m2.crt");
        assert_eq!(v["peer_key_file"], "/pki/m.key");
        assert_eq!(v["peer_trusted_ca_file"], "/pki/ca.crt");
        assert_eq!(v["client_trusted_ca_file"], "/pki/ca.crt");
        assert_eq!(v["client_cert_file"], "/pki/m2.crt");
        assert_eq!(v["client_key_file"], "/pki/m.key");
        let g = kit("apps/etcd/etcd-gw.env", &env);
        assert_eq!(g["scheme"], "https");
        assert_eq!(g["cacert"], "/pki/ca.crt");
        assert_eq!(g["cert"], "/pki/m.crt");
        // Peer-only TLS (tls=auto): clients stay on http.
        let v = kit(
            "apps/etcd/etcd-0.env",
            &[("ETCD_TLS", "auto"), ("ETCD_PEER_SCHEME", "https")],
        );
        assert_eq!(v["client_url"], "http://127.0.0.1:2079");
        assert_eq!(v["peer_url"], "https://127.0.0.1:2080");
    }

    #[test]
    fn the_gateway_speaks_the_members_scheme() {
        let m = |url: &str| crate::api::EtcdMember {
            program: "etcd-0".into(),
            state: ProcessState::Running,
            pid: 1,
            env_file: String::new(),
            name: "boot0".into(),
            client_url: url.into(),
            peer_url: String::new(),
            data_dir: String::new(),
            initial_cluster: String::new(),
            cluster_token: String::new(),
            cluster_state: String::new(),
            runtime_file: String::new(),
            argv: vec![],
            next_start_flags: vec![],
            learned: vec![],
            client_tls: Default::default(),
        };
        let gw = Some(crate::api::EtcdGateway {
            program: "etcd-gw".into(),
            state: ProcessState::Running,
            env_file: String::new(),
            listen_addr: "127.0.0.1:2379".into(),
            endpoints: vec![],
            runtime_file: String::new(),
            argv: vec![],
            learned: vec![],
        });
        let mut local = EtcdMembers {
            members: vec![m("https://127.0.0.1:2079")],
            gateway: gw,
            ..Default::default()
        };
        assert_eq!(endpoints(&local)[1], "https://127.0.0.1:2379");
        local.members = vec![m("http://127.0.0.1:2079")];
        assert_eq!(endpoints(&local)[1], "http://127.0.0.1:2379");
    }
}
