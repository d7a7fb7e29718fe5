//! Which tool restores a snapshot for a member, decided before anything changes: `etcdutl`
//! where the member's etcd version has it (3.5+), else `etcdctl` (etcd 3.6 removed `etcdctl
//! snapshot restore`), and never a tool older than the snapshot's writer.
//!
//! The writer's version is what the snapshot records of itself ([`super::bolt::Recorded`]):
//! the cluster version etcd keeps in the file (`3.4.0`, `3.5.0`: the `major.minor` the
//! cluster ran at; 3.4 and 3.5 both write it; `etcdutl snapshot status` of 3.5.1 reports no
//! version) and, from 3.6 on, its storage version. A file that records neither is taken as
//! written by the newest etcd among the members being restored, as said in the reason.
//! Versions compare by `major.minor`: the cluster version has no patch.
//!
//! A member whose own etcd is older than the writer is refused too: an older etcd cannot
//! open data a newer one wrote. Everything here is pure; finding the tools is
//! [`super::settings`]' job (`etcdctl_bin`, `etcdutl_bin`), asking their versions
//! [`super::binary_probe::tool_version`]'s.

use std::fmt;
use std::path::PathBuf;

use super::releases::{self, Version};

/// etcd's two tools that restore a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Etcdutl,
    Etcdctl,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Etcdutl => "etcdutl",
            Kind::Etcdctl => "etcdctl",
        }
    }

    /// The member setting that names it.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Etcdutl => "etcdutl_bin",
            Kind::Etcdctl => "etcdctl_bin",
        }
    }
}

/// A tool a member has: where, and what its `version` said (or why it said nothing usable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub kind: Kind,
    pub path: PathBuf,
    pub version: Result<Version, String>,
}

/// What a restore knows of one member: its name, its etcd version, its tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub version: Option<Version>,
    pub etcdutl: Option<Tool>,
    pub etcdctl: Option<Tool>,
}

/// The version that wrote a snapshot, and how it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub version: Version,
    pub source: String,
}

/// The tool chosen for a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub kind: Kind,
    pub path: PathBuf,
    pub version: Version,
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.kind.name(),
            self.version,
            self.path.display()
        )
    }
}

/// `major.minor`, the granularity versions are compared at here.
fn line(v: Version) -> (u32, u32) {
    (v.major, v.minor)
}

/// The snapshot's writer: the newer of the cluster and storage versions the file records;
/// when it records neither, the newest of the members' versions (`None`: nothing known).
pub fn writer(
    cluster_version: Option<&str>,
    storage_version: Option<&str>,
    members: &[Option<Version>],
) -> Option<Writer> {
    let recorded = [
        (cluster_version, "the cluster version the snapshot records"),
        (storage_version, "the storage version the snapshot records"),
    ]
    .into_iter()
    .filter_map(|(v, what)| Some((releases::parse(v?).ok()?, what)))
    .max_by_key(|(v, _)| line(*v));
    if let Some((v, what)) = recorded {
        return Some(Writer {
            version: v,
            source: what.to_string(),
        });
    }
    let newest = members.iter().flatten().copied().max()?;
    Some(Writer {
        version: newest,
        source: "the snapshot records no version: the newest etcd among the members restored"
            .to_string(),
    })
}

/// How to name another tool for `member`.
fn way_forward(member: &str, kind: Kind, at_least: &str) -> String {
    let var = match kind {
        Kind::Etcdutl => "ETCDUTL_BIN",
        Kind::Etcdctl => "ETCDCTL_BIN",
    };
    format!(
        "name {member}'s {} of etcd {at_least} or newer: {}= in its settings file (or its runtime layer), or {var} in fild's environment, then run the restore again",
        kind.name(),
        kind.key()
    )
}

/// The tool that restores the snapshot for `m`, or why none may (with the way forward).
pub fn choose(m: &Member, writer: Option<&Writer>) -> Result<Chosen, String> {
    let name = &m.name;
    let has_etcdutl = m.version.is_none_or(|v| line(v) >= (3, 5));
    let tool = match (&m.etcdutl, &m.etcdctl) {
        (Some(u), _) if has_etcdutl => u,
        (_, _) if m.version.is_some_and(|v| line(v) >= (3, 6)) => {
            return Err(format!(
                "{name} runs etcd {}, whose etcdctl has no snapshot restore, and no etcdutl was found; {}",
                m.version.map(|v| v.to_string()).unwrap_or_default(),
                way_forward(
                    name,
                    Kind::Etcdutl,
                    &m.version.map(|v| v.minor_line()).unwrap_or_default()
                )
            ));
        }
        (_, Some(c)) => c,
        (_, None) => {
            let which = if has_etcdutl {
                "neither etcdutl nor etcdctl"
            } else {
                "no etcdctl (etcd 3.4 has no etcdutl)"
            };
            return Err(format!(
                "{name}: {which} was found (beside its etcd binary, or on PATH); install etcd-client, or {}",
                way_forward(
                    name,
                    if has_etcdutl {
                        Kind::Etcdutl
                    } else {
                        Kind::Etcdctl
                    },
                    &m.version
                        .map(|v| v.minor_line())
                        .unwrap_or_else(|| "3.4".into())
                )
            ));
        }
    };
    let version = tool.version.clone().map_err(|e| {
        format!(
            "{name}: cannot tell the version of {} {} ({e}), and a restore uses a tool no older than the snapshot's writer; {}",
            tool.kind.name(),
            tool.path.display(),
            way_forward(
                name,
                tool.kind,
                &writer.map_or("3.4".to_string(), |w| w.version.minor_line())
            )
        )
    })?;
    if let Some(w) = writer {
        let wl = w.version.minor_line();
        let written = format!("the snapshot was written by etcd {wl} ({})", w.source);
        // An older etcd cannot run the restored data, whatever tool restores it: the member
        // moves to the writer's version first (its tools beside the new etcd come with it).
        let older_member = m.version.filter(|v| line(*v) < line(w.version)).map(|v| {
            format!(
                "{name} runs etcd {v}, which cannot open data a newer etcd wrote: switch its etcd_bin to etcd {wl} or newer (the etcdutl beside it is then used, or name one in etcdutl_bin=), then run the restore again"
            )
        });
        if line(version) < line(w.version) {
            return Err(format!(
                "{name}: {written}, and {} {version} ({}) is older: a tool older than the snapshot's writer may misread its data; {}",
                tool.kind.name(),
                tool.path.display(),
                older_member.unwrap_or_else(|| way_forward(name, tool.kind, &wl))
            ));
        }
        if let Some(o) = older_member {
            return Err(format!("{written}; {o}"));
        }
    }
    Ok(Chosen {
        kind: tool.kind,
        path: tool.path.clone(),
        version,
    })
}

/// How the plan names the tools: one for every member, or each member's.
pub fn describe(chosen: &[(String, Chosen)]) -> String {
    match chosen {
        [] => String::new(),
        [(_, first), rest @ ..] if rest.iter().all(|(_, c)| c == first) => first.to_string(),
        all => all
            .iter()
            .map(|(n, c)| format!("{n}: {c}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V3423: Version = Version::new(3, 4, 23);
    const V351: Version = Version::new(3, 5, 1);

    fn tool(kind: Kind, v: Version) -> Option<Tool> {
        Some(Tool {
            kind,
            path: PathBuf::from(format!("/opt/etcd-{v}/{}", kind.name())),
            version: Ok(v),
        })
    }

    fn member(v: Option<Version>, utl: Option<Tool>, ctl: Option<Tool>) -> Member {
        Member {
            name: "boot0".into(),
            version: v,
            etcdutl: utl,
            etcdctl: ctl,
        }
    }

    fn written_by(s: &str) -> Option<Writer> {
        writer(Some(s), None, &[])
    }

    #[test]
    fn the_writer_is_what_the_file_records_else_the_members() {
        let w = written_by("3.5.0").unwrap();
        assert_eq!(w.version, Version::new(3, 5, 0));
        assert!(w.source.contains("cluster version the snapshot records"));
        // 3.6 records its storage version too: the newer counts.
        let w = writer(Some("3.5.0"), Some("3.6.0"), &[]).unwrap();
        assert_eq!(w.version, Version::new(3, 6, 0));
        assert!(w.source.contains("storage version"));
        // Nothing recorded (or junk): the newest member.
        let w = writer(None, Some("junk"), &[Some(V3423), None, Some(V351)]).unwrap();
        assert_eq!(w.version, V351);
        assert!(w.source.contains("records no version"), "{}", w.source);
        assert_eq!(writer(None, None, &[None]), None);
    }

    #[test]
    fn etcdutl_where_the_members_version_has_it_else_etcdctl() {
        let w = written_by("3.4.0");
        // 3.5 with both: etcdutl.
        let m = member(
            Some(V351),
            tool(Kind::Etcdutl, V351),
            tool(Kind::Etcdctl, V351),
        );
        let c = choose(&m, w.as_ref()).unwrap();
        assert_eq!(c.kind, Kind::Etcdutl);
        assert_eq!(c.to_string(), "etcdutl 3.5.1 (/opt/etcd-3.5.1/etcdutl)");
        // 3.5 without etcdutl: its etcdctl still restores.
        let m = member(Some(V351), None, tool(Kind::Etcdctl, V351));
        assert_eq!(choose(&m, w.as_ref()).unwrap().kind, Kind::Etcdctl);
        // 3.4: etcdctl, even with a newer etcdutl about.
        let m = member(
            Some(V3423),
            tool(Kind::Etcdutl, V351),
            tool(Kind::Etcdctl, V3423),
        );
        let c = choose(&m, w.as_ref()).unwrap();
        assert_eq!((c.kind, c.version), (Kind::Etcdctl, V3423));
        // A version not known: etcdutl when there is one.
        let m = member(None, tool(Kind::Etcdutl, V351), tool(Kind::Etcdctl, V351));
        assert_eq!(choose(&m, w.as_ref()).unwrap().kind, Kind::Etcdutl);
        // 3.6 without etcdutl: its etcdctl cannot restore.
        let v36 = Version::new(3, 6, 0);
        let e = choose(
            &member(Some(v36), None, tool(Kind::Etcdctl, v36)),
            w.as_ref(),
        )
        .unwrap_err();
        assert!(e.contains("whose etcdctl has no snapshot restore"), "{e}");
        assert!(e.contains("etcdutl_bin="), "{e}");
        // None at all.
        let e = choose(
            &member(Some(V3423), tool(Kind::Etcdutl, V351), None),
            w.as_ref(),
        )
        .unwrap_err();
        assert!(
            e.contains("no etcdctl (etcd 3.4 has no etcdutl) was found"),
            "{e}"
        );
        assert!(e.contains("etcdctl_bin="), "{e}");
        let e = choose(&member(None, None, None), None).unwrap_err();
        assert!(e.contains("neither etcdutl nor etcdctl was found"), "{e}");
    }

    #[test]
    fn a_tool_older_than_the_snapshots_writer_is_refused_with_the_way_forward() {
        // A 3.5 snapshot and 3.4's etcdctl, on a 3.4 member: the member moves first.
        let m = member(Some(V3423), None, tool(Kind::Etcdctl, V3423));
        let e = choose(&m, written_by("3.5.0").as_ref()).unwrap_err();
        assert!(
            e.starts_with("boot0: the snapshot was written by etcd 3.5 (the cluster version the snapshot records), and etcdctl 3.4.23 (/opt/etcd-3.4.23/etcdctl) is older"),
            "{e}"
        );
        assert!(
            e.ends_with("is older: a tool older than the snapshot's writer may misread its data; boot0 runs etcd 3.4.23, which cannot open data a newer etcd wrote: switch its etcd_bin to etcd 3.5 or newer (the etcdutl beside it is then used, or name one in etcdutl_bin=), then run the restore again"),
            "{e}"
        );
        // A 3.5 member given 3.4's etcdctl (its etcdutl missing): name a newer tool.
        let m = member(Some(V351), None, tool(Kind::Etcdctl, V3423));
        let e = choose(&m, written_by("3.5.0").as_ref()).unwrap_err();
        assert!(
            e.contains("and etcdctl 3.4.23 (/opt/etcd-3.4.23/etcdctl) is older"),
            "{e}"
        );
        assert!(
            e.contains(
                "name boot0's etcdctl of etcd 3.5 or newer: etcdctl_bin= in its settings file"
            ),
            "{e}"
        );
        assert!(e.contains("ETCDCTL_BIN in fild's environment"), "{e}");
        assert!(!e.contains("cannot open data"), "{e}");
        // The tool is new enough, the member is not.
        let m = member(Some(V3423), None, tool(Kind::Etcdctl, V351));
        let e = choose(&m, written_by("3.5.0").as_ref()).unwrap_err();
        assert!(
            e.starts_with("the snapshot was written by etcd 3.5 (the cluster version the snapshot records); boot0 runs etcd 3.4.23, which cannot open"),
            "{e}"
        );
        // Same line, any patch: fine (the cluster version has no patch).
        let m = member(Some(V351), tool(Kind::Etcdutl, V351), None);
        assert!(choose(&m, written_by("3.5.0").as_ref()).is_ok());
        // Newer tools read older snapshots.
        assert!(choose(&m, written_by("3.4.0").as_ref()).is_ok());
        // No writer known: only the tool's own rules.
        assert!(choose(&m, None).is_ok());
        // A tool whose version cannot be told.
        let m = member(
            Some(V351),
            Some(Tool {
                kind: Kind::Etcdutl,
                path: "/x/etcdutl".into(),
                version: Err("did not answer within 2 s".into()),
            }),
            None,
        );
        let e = choose(&m, written_by("3.5.0").as_ref()).unwrap_err();
        assert!(
            e.contains("cannot tell the version of etcdutl /x/etcdutl (did not answer within 2 s)"),
            "{e}"
        );
    }

    #[test]
    fn the_plan_names_one_tool_or_each_members() {
        let c = |v| Chosen {
            kind: Kind::Etcdutl,
            path: "/b/etcdutl".into(),
            version: v,
        };
        let same = [("a".to_string(), c(V351)), ("b".to_string(), c(V351))];
        assert_eq!(describe(&same), "etcdutl 3.5.1 (/b/etcdutl)");
        let mixed = [("a".to_string(), c(V351)), ("b".to_string(), c(V3423))];
        assert_eq!(
            describe(&mixed),
            "a: etcdutl 3.5.1 (/b/etcdutl), b: etcdutl 3.4.23 (/b/etcdutl)"
        );
    }
}
