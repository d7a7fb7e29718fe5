//! `filc etcd show NAME`: one member's (or the gateway's) settings as fild evaluates them:
//! the shipped settings file, the runtime layer over it, and the argv etcd starts with.

use std::fmt::Write;

use crate::api::{EtcdGateway, EtcdLearned, EtcdMember};

/// The shipped settings file, the runtime file over it, and what it holds.
fn layers(out: &mut String, settings_file: &str, runtime_file: &str, l: &[EtcdLearned]) {
    let _ = writeln!(
        out,
        "  settings file:  {settings_file} (as shipped; never written)"
    );
    let _ = writeln!(out, "  runtime state:  {runtime_file}");
    learned(out, l);
}

fn learned(out: &mut String, l: &[EtcdLearned]) {
    if l.is_empty() {
        out.push_str("  learned:        nothing (the settings file as shipped)\n");
        return;
    }
    out.push_str("  learned:\n");
    for e in l {
        let _ = writeln!(
            out,
            "    {}={}\n      by {} at {}{}",
            e.key,
            e.value,
            e.by,
            e.at,
            if e.applies {
                ""
            } else {
                "\n      not used: the settings file's line was edited since (the file wins)"
            }
        );
    }
}

fn argv(out: &mut String, argv: &[String]) {
    out.push_str("  argv:\n");
    let mut it = argv.iter().peekable();
    if let Some(bin) = it.next() {
        let _ = writeln!(out, "    {bin}");
    }
    while let Some(a) = it.next() {
        match it.peek() {
            Some(v) if a.starts_with("--") && !v.starts_with("--") => {
                let _ = writeln!(out, "      {a} {}", it.next().unwrap_or(a));
            }
            _ => {
                let _ = writeln!(out, "      {a}");
            }
        }
    }
}

/// A member, for a person.
pub fn member(m: &EtcdMember) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (etcd member {}, {})",
        m.program,
        m.name,
        m.state.as_str()
    );
    layers(&mut out, &m.env_file, &m.runtime_file, &m.learned);
    if !m.next_start_flags.is_empty() {
        let _ = writeln!(
            out,
            "  next start only: {} (used up by that start)",
            m.next_start_flags.join(" ")
        );
    }
    let _ = writeln!(out, "  data dir:       {}", m.data_dir);
    let _ = writeln!(out, "  client URL:     {}", m.client_url);
    let _ = writeln!(out, "  peer URL:       {}", m.peer_url);
    let _ = writeln!(out, "  cluster state:  {}", m.cluster_state);
    let _ = writeln!(out, "  cluster token:  {}", m.cluster_token);
    let _ = writeln!(out, "  initial cluster: {}", m.initial_cluster);
    let bin = m.argv.first().map(String::as_str).unwrap_or("-");
    let version = match (m.etcd_version.as_str(), m.etcd_version_problem.as_str()) {
        ("", "") => "unknown".to_string(),
        ("", why) => format!("unknown: {why}"),
        (v, _) => v.to_string(),
    };
    let _ = writeln!(out, "  etcd binary:    {bin} (etcd_bin; version {version})");
    for (tool, path) in [("etcdctl", &m.etcdctl_bin), ("etcdutl", &m.etcdutl_bin)] {
        let path = if path.is_empty() {
            "none found"
        } else {
            path.as_str()
        };
        let _ = writeln!(out, "  {tool}:        {path} ({tool}_bin)");
    }
    argv(&mut out, &m.argv);
    out
}

/// The gateway, for a person.
pub fn gateway(g: &EtcdGateway) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} (etcd gateway, {})", g.program, g.state.as_str());
    layers(&mut out, &g.env_file, &g.runtime_file, &g.learned);
    let _ = writeln!(out, "  listen address: {}", g.listen_addr);
    let _ = writeln!(out, "  endpoints:      {}", g.endpoints.join(","));
    argv(&mut out, &g.argv);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_tools_and_an_older_fild_that_reports_none() {
        let m = EtcdMember {
            argv: vec!["/opt/etcd-3.5/etcd".into()],
            etcdctl_bin: "/opt/etcd-3.5/etcdctl".into(),
            etcdutl_bin: "/opt/etcd-3.5/etcdutl".into(),
            ..crate::etcd::members::fixtures::member(0)
        };
        let out = member(&m);
        assert!(
            out.contains("  etcdctl:        /opt/etcd-3.5/etcdctl (etcdctl_bin)\n  etcdutl:        /opt/etcd-3.5/etcdutl (etcdutl_bin)\n"),
            "{out}"
        );
        // A reply without the fields (an older fild) still parses: none found.
        let mut v = serde_json::to_value(&m).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("etcdctl_bin");
        o.remove("etcdutl_bin");
        let old: EtcdMember = serde_json::from_value(v).unwrap();
        assert_eq!(
            (old.etcdctl_bin.as_str(), old.etcdutl_bin.as_str()),
            ("", "")
        );
        assert!(
            member(&old).contains("  etcdutl:        none found (etcdutl_bin)\n"),
            "{}",
            member(&old)
        );
    }

    #[test]
    fn flags_pair_with_their_values() {
        let mut out = String::new();
        argv(
            &mut out,
            &[
                "/usr/bin/etcd".into(),
                "--name".into(),
                "a".into(),
                "--client-cert-auth".into(),
                "--logger".into(),
                "zap".into(),
            ],
        );
        assert_eq!(
            out,
            "  argv:\n    /usr/bin/etcd\n      --name a\n      --client-cert-auth\n      --logger zap\n"
        );
    }
}
