//! Which programs are etcd members (or the gateway), and where they listen: a program whose
//! `directory` holds `<program>.env` with `name`, `client_url` and `peer_url` is a member; one
//! whose env file has `listen_addr` and `endpoints` is the gateway. The env files are the kit's
//! single source of truth, read by the launch scripts and by fild alike.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::envfile;
use crate::api::{EtcdGateway, EtcdMember, EtcdMembers};
use crate::config::ProgramSpec;
use crate::supervisor::ProgramsView;

/// A member as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberConfig {
    pub program: String,
    pub env_file: PathBuf,
    pub values: BTreeMap<String, String>,
}

impl MemberConfig {
    pub fn get(&self, key: &str) -> String {
        self.values.get(key).cloned().unwrap_or_default()
    }
}

/// What one program is, as far as etcd goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Member(MemberConfig),
    Gateway(MemberConfig),
}

/// The env file a program's launch script would read, if it has one.
pub fn env_file(spec: &ProgramSpec) -> Option<PathBuf> {
    let dir = spec.directory.as_ref()?;
    let path = dir.join(format!("{}.env", spec.name));
    path.is_file().then_some(path)
}

/// Classify a program. `env` is fild's environment; the program's own `environment=`
/// entries are layered on top, as its launch script would see them.
pub fn role(spec: &ProgramSpec, env: &BTreeMap<String, String>) -> Option<Result<Role, String>> {
    let path = env_file(spec)?;
    let mut env = env.clone();
    env.extend(spec.environment.iter().cloned());
    let values = match envfile::read(&path, &env) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let cfg = MemberConfig {
        program: spec.name.clone(),
        env_file: path,
        values,
    };
    let has = |k: &str| cfg.values.contains_key(k);
    if has("name") && has("client_url") && has("peer_url") {
        Some(Ok(Role::Member(cfg)))
    } else if has("listen_addr") && has("endpoints") {
        Some(Ok(Role::Gateway(cfg)))
    } else {
        None
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
        let cfg = match role(&p.spec, &view.env) {
            None => continue,
            Some(Err(problem)) => {
                out.problems.push(format!("{name}: {problem}"));
                continue;
            }
            Some(Ok(r)) => r,
        };
        match cfg {
            Role::Member(m) => out.members.push(EtcdMember {
                program: name.clone(),
                state: p.state,
                pid: p.pid.unwrap_or(0) as u32,
                env_file: m.env_file.display().to_string(),
                name: m.get("name"),
                client_url: m.get("client_url"),
                peer_url: m.get("peer_url"),
                data_dir: m.get("data_dir"),
                initial_cluster: m.get("initial_cluster"),
                cluster_token: m.get("cluster_token"),
                cluster_state: m.get("cluster_state"),
                client_tls: crate::api::EtcdClientTls {
                    trusted_ca_file: m.get("client_trusted_ca_file"),
                    cert_file: m.get("client_cert_file"),
                    key_file: m.get("client_key_file"),
                },
            }),
            Role::Gateway(g) => {
                out.gateway = Some(EtcdGateway {
                    program: name.clone(),
                    state: p.state,
                    env_file: g.env_file.display().to_string(),
                    listen_addr: g.get("listen_addr"),
                    endpoints: g
                        .get("endpoints")
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                })
            }
        }
    }
    super::cluster::use_tls(&out);
    out
}
