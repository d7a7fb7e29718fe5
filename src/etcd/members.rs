//! Which programs are etcd members (or the gateway), and where they listen. A program's own
//! configuration says so: its `environment=` names its settings file in `FILD_ETCD_MEMBER` (or
//! `FILD_ETCD_GATEWAY`). The file is evaluated by [`settings::evaluate`], the same evaluator
//! the launcher uses, in the environment the program runs with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::settings::{self, Kind, Settings};
use crate::api::{EtcdClientTls, EtcdGateway, EtcdLearned, EtcdMember, EtcdMembers};
use crate::config::ProgramSpec;
use crate::supervisor::{ProgramsView, spawn};

/// The settings file a program's configuration names, and what it names it as.
pub fn settings_file(spec: &ProgramSpec) -> Option<(Kind, PathBuf)> {
    let (k, v) = spec
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == settings::MEMBER_ENV || k == settings::GATEWAY_ENV)?;
    let kind = if k == settings::MEMBER_ENV {
        Kind::Member
    } else {
        Kind::Gateway
    };
    let p = PathBuf::from(v);
    let p = match (&spec.directory, p.is_absolute()) {
        (Some(dir), false) => dir.join(p),
        _ => p,
    };
    Some((kind, p))
}

/// Evaluate a program's settings, if its configuration names a settings file. `env` is
/// fild's environment; the program's own additions are layered on top, as it will see them.
pub fn role(
    spec: &ProgramSpec,
    env: &BTreeMap<String, String>,
) -> Option<Result<Settings, String>> {
    let (kind, path) = settings_file(spec)?;
    let mut env = env.clone();
    env.extend(spawn::program_env(spec));
    Some(match settings::evaluate(&path, &env) {
        Ok(s) if s.kind == kind => Ok(s),
        Ok(_) => Err(format!(
            "{}: named by {} but describes {}",
            path.display(),
            if kind == Kind::Member {
                settings::MEMBER_ENV
            } else {
                settings::GATEWAY_ENV
            },
            if kind == Kind::Member {
                "a gateway"
            } else {
                "a member"
            }
        )),
        Err(e) => Err(e.to_string()),
    })
}

fn learned(s: &Settings) -> Vec<EtcdLearned> {
    s.runtime
        .learned
        .iter()
        .map(|(k, l)| EtcdLearned {
            key: k.clone(),
            value: l.value.clone(),
            by: l.by.clone(),
            at: l.at.clone(),
            applies: !s.overridden.contains(k),
        })
        .collect()
}

fn path_text(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// [`collect`] on the blocking pool: it reads files and may resolve host names, which must
/// never stall fild's one event-loop thread (a slow resolver would hold up the supervisor,
/// the control API and the watchdog). Every caller inside fild uses this.
pub async fn collect_off_loop(view: ProgramsView) -> EtcdMembers {
    match tokio::task::spawn_blocking(move || collect(&view)).await {
        Ok(m) => m,
        Err(e) => EtcdMembers {
            problems: vec![format!("reading the etcd members failed: {e}")],
            ..Default::default()
        },
    }
}

/// The members and gateway among `view`'s programs.
pub fn collect(view: &ProgramsView) -> EtcdMembers {
    let mut out = EtcdMembers {
        backup_dir: view.etcd.backup_dir.display().to_string(),
        ..Default::default()
    };
    for p in &view.programs {
        let name = &p.spec.name;
        let s = match role(&p.spec, &view.env) {
            None => continue,
            Some(Err(problem)) => {
                out.problems.push(format!("{name}: {problem}"));
                continue;
            }
            Some(Ok(s)) => s,
        };
        let get = |k: &str| s.get(k).to_string();
        match s.kind {
            Kind::Member => out.members.push(EtcdMember {
                program: name.clone(),
                state: p.state,
                pid: p.pid.unwrap_or(0) as u32,
                env_file: s.file.display().to_string(),
                runtime_file: s.runtime_file.display().to_string(),
                name: get("name"),
                client_url: get("client_url"),
                peer_url: get("peer_url"),
                data_dir: get("data_dir"),
                initial_cluster: get("initial_cluster"),
                configured_initial_cluster: s
                    .configured
                    .get("initial_cluster")
                    .cloned()
                    .unwrap_or_default(),
                cluster_token: get("cluster_token"),
                cluster_state: get("cluster_state"),
                cluster_client_urls: get("cluster_client_urls")
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from)
                    .collect(),
                client_tls: EtcdClientTls {
                    trusted_ca_file: get("client_trusted_ca_file"),
                    cert_file: get("client_cert_file"),
                    key_file: get("client_key_file"),
                },
                argv: s.argv.clone(),
                next_start_flags: s.once.clone(),
                learned: learned(&s),
                etcd_version: s.version.map(|v| v.to_string()).unwrap_or_default(),
                etcd_version_problem: s.version_problem.clone().unwrap_or_default(),
                etcdctl_bin: path_text(&s.etcdctl),
                etcdutl_bin: path_text(&s.etcdutl),
            }),
            Kind::Gateway => {
                out.gateway = Some(EtcdGateway {
                    program: name.clone(),
                    state: p.state,
                    env_file: s.file.display().to_string(),
                    runtime_file: s.runtime_file.display().to_string(),
                    listen_addr: get("listen_addr"),
                    endpoints: s
                        .get("endpoints")
                        .split(',')
                        .map(|e| e.trim().to_string())
                        .filter(|e| !e.is_empty())
                        .collect(),
                    argv: s.argv.clone(),
                    learned: learned(&s),
                })
            }
        }
    }
    out
}

/// Members for the unit tests of the modules that decide on them (plan, programs).
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::api::{EtcdMember, ProcessState};

    /// Program `etcd-<i>` running member `boot<i>`, as the kit's settings make it.
    pub(crate) fn member(i: u64) -> EtcdMember {
        EtcdMember {
            program: format!("etcd-{i}"),
            state: ProcessState::Running,
            pid: 1,
            env_file: format!("apps/etcd/etcd-{i}.env"),
            name: format!("boot{i}"),
            client_url: format!("http://127.0.0.1:{}", 2070 + i),
            peer_url: format!("http://127.0.0.1:{}", 2080 + i),
            data_dir: format!("/dev/shm/etcd-{i}"),
            initial_cluster: String::new(),
            configured_initial_cluster: String::new(),
            cluster_token: String::new(),
            cluster_state: "new".into(),
            cluster_client_urls: vec![],
            runtime_file: String::new(),
            argv: vec![],
            next_start_flags: vec![],
            learned: vec![],
            etcd_version: String::new(),
            etcd_version_problem: String::new(),
            etcdctl_bin: String::new(),
            etcdutl_bin: String::new(),
            client_tls: Default::default(),
        }
    }
}
