//! The runtime layer: what etcd operations learn about a member or the gateway, kept apart
//! from the shipped settings file (which fild and filc never write).
//!
//! One JSON file per settings file, `$PRJ_ROOT/var/etcd/runtime/<stem>.json` (0600 in a 0700
//! dir), written atomically under an flock. It holds:
//! - `learned`: key = value pairs layered over the settings file (`cluster_state=existing`
//!   after a replace, the `initial_cluster` a member joined, a restore's new `cluster_token`,
//!   the gateway's `endpoints`, a moved member's `peer_url`). Each remembers the settings
//!   file's line it was learned over (`over`). **The rule:** a learned value applies while the
//!   settings file still says what it said then; once an operator edits that key by hand the
//!   file wins, until an operation learns the key again (the newer value wins).
//! - `once`: flags for the next start only (a rescue's `--force-new-cluster`). The launcher
//!   removes them from this file, durably, *before* it execs etcd, so they never apply twice,
//!   whatever dies in between.
//!
//! `filc etcd show NAME` prints it with the settings; it is plain JSON for a person too.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The runtime state of one settings file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// The settings file this layers over.
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub learned: BTreeMap<String, Learned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<Once>,
}

/// One learned value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    pub value: String,
    /// The settings file's line(s) for this key, as written, that this value applies over
    /// ("" for a key the file does not set). Usually one; an adopted rewrite of an older
    /// fild lists the rewritten line and the shipped one.
    pub over: Vec<String>,
    /// The operation that learned it.
    pub by: String,
    /// When (UTC, RFC 3339).
    pub at: String,
}

/// Flags for the next start only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Once {
    pub flags: Vec<String>,
    pub by: String,
    pub at: String,
}

/// Now, as the `at` of a record (UTC, RFC 3339).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Where the runtime state of `settings_file` lives under `prj_root`.
pub fn path_for(prj_root: &Path, settings_file: &Path) -> PathBuf {
    let stem = settings_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings".into());
    prj_root
        .join("var/etcd/runtime")
        .join(format!("{stem}.json"))
}

/// Whether a learned value applies over the settings file's current line (`None`: the file
/// does not set the key).
pub fn applies(l: &Learned, current: Option<&str>) -> bool {
    let cur = current.unwrap_or("");
    l.over.iter().any(|o| o == cur)
}

/// Read the runtime state (empty when there is none yet).
pub fn load(path: &Path) -> Result<Runtime, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: {e} (fix or move the file aside; it holds what etcd operations learned)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Runtime::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Read, change and write back the runtime state under an exclusive lock (temp file, fsync,
/// rename, fsync of the dir). Returns the state as written.
pub fn update(
    path: &Path,
    settings_file: &Path,
    change: impl FnOnce(&mut Runtime),
) -> Result<Runtime, String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = path
        .parent()
        .ok_or_else(|| format!("{}: no dir", path.display()))?;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join(".lock"))
        .map_err(err)?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("{}: lock: {e}", dir.display()))?;
    let mut rt = load(path)?;
    rt.file = settings_file.display().to_string();
    change(&mut rt);
    let text = serde_json::to_string_pretty(&rt).map_err(|e| e.to_string())? + "\n";
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)?;
    Ok(rt)
}

/// Record `changes` as learned by `by`, each over the settings file's current line for its
/// key (`lines`: key to the line as written). A value equal to what the file already gives
/// is still recorded: the operation's knowledge outlives a later edit of a default.
pub fn learn(
    path: &Path,
    settings_file: &Path,
    lines: &BTreeMap<String, String>,
    changes: &[(&str, &str)],
    by: &str,
) -> Result<Runtime, String> {
    let at = now();
    update(path, settings_file, |rt| {
        for (k, v) in changes {
            rt.learned.insert(
                k.to_string(),
                Learned {
                    value: v.to_string(),
                    over: vec![lines.get(*k).cloned().unwrap_or_default()],
                    by: by.to_string(),
                    at: at.clone(),
                },
            );
        }
    })
}

/// [`learn`] for a settings file and runtime file named as fild reports them (an
/// [`crate::api::EtcdMember`]'s `env_file` and `runtime_file`): the file's lines are read here.
pub fn learn_in(
    settings_file: &str,
    runtime_file: &str,
    changes: &[(&str, &str)],
    by: &str,
) -> Result<Runtime, String> {
    if runtime_file.is_empty() {
        return Err(format!(
            "fild reports no runtime file for {settings_file} (an older fild?): restart fild"
        ));
    }
    let text =
        std::fs::read_to_string(settings_file).map_err(|e| format!("{settings_file}: {e}"))?;
    let lines = crate::etcd::envfile::raw_lines(&text);
    learn(
        Path::new(runtime_file),
        Path::new(settings_file),
        &lines,
        changes,
        by,
    )
}

/// Drop what was learned for `keys` (the settings file's lines apply again); the keys that
/// were dropped.
pub fn forget_in(
    settings_file: &str,
    runtime_file: &str,
    keys: &[&str],
) -> Result<Vec<String>, String> {
    if runtime_file.is_empty() {
        return Err(format!(
            "fild reports no runtime file for {settings_file} (an older fild?): restart fild"
        ));
    }
    let before = load(Path::new(runtime_file))?;
    if !keys.iter().any(|k| before.learned.contains_key(*k)) {
        return Ok(vec![]);
    }
    let mut dropped = Vec::new();
    update(Path::new(runtime_file), Path::new(settings_file), |rt| {
        for k in keys {
            if rt.learned.remove(*k).is_some() {
                dropped.push(k.to_string());
            }
        }
    })?;
    Ok(dropped)
}

/// Set flags for the next start only.
pub fn set_once(
    path: &Path,
    settings_file: &Path,
    flags: &[&str],
    by: &str,
) -> Result<Runtime, String> {
    let at = now();
    update(path, settings_file, |rt| {
        rt.once = Some(Once {
            flags: flags.iter().map(|f| f.to_string()).collect(),
            by: by.to_string(),
            at,
        });
    })
}

/// Clear the next-start flags without using them.
pub fn clear_once(path: &Path, settings_file: &Path) -> Result<Option<Once>, String> {
    let mut taken = None;
    update(path, settings_file, |rt| taken = rt.once.take())?;
    Ok(taken)
}

/// Take the next-start flags for the start about to happen: they are gone from the file
/// (durably) when this returns. Nothing is written when there are none.
pub fn take_once(path: &Path, settings_file: &Path) -> Result<Vec<String>, String> {
    if load(path)?.once.is_none() {
        return Ok(Vec::new());
    }
    Ok(clear_once(path, settings_file)?
        .map(|o| o.flags)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(over: &[&str]) -> Learned {
        Learned {
            value: "existing".into(),
            over: over.iter().map(|s| s.to_string()).collect(),
            by: "t".into(),
            at: "t".into(),
        }
    }

    #[test]
    fn a_learned_value_applies_until_the_line_is_edited() {
        let l = learned(&["new"]);
        assert!(applies(&l, Some("new")));
        assert!(!applies(&l, Some("existing-by-hand")));
        assert!(!applies(&l, None));
        let absent = learned(&[""]);
        assert!(applies(&absent, None));
        let adopted = learned(&["existing", "new"]);
        assert!(applies(&adopted, Some("existing")) && applies(&adopted, Some("new")));
    }

    #[test]
    fn learn_and_once_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("apps/etcd/etcd-0.env");
        let path = path_for(dir.path(), &settings);
        assert_eq!(path, dir.path().join("var/etcd/runtime/etcd-0.json"));
        assert_eq!(load(&path).unwrap(), Runtime::default());
        let lines: BTreeMap<String, String> = [("cluster_state".to_string(), "new".to_string())]
            .into_iter()
            .collect();
        let rt = learn(
            &path,
            &settings,
            &lines,
            &[("cluster_state", "existing"), ("initial_cluster", "a=b")],
            "filc etcd replace etcd-0",
        )
        .unwrap();
        assert_eq!(rt.learned["cluster_state"].over, vec!["new".to_string()]);
        assert_eq!(rt.learned["initial_cluster"].over, vec![String::new()]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(load(&path).unwrap(), rt);

        set_once(&path, &settings, &["--force-new-cluster"], "rescue").unwrap();
        assert_eq!(
            take_once(&path, &settings).unwrap(),
            vec!["--force-new-cluster"]
        );
        assert!(load(&path).unwrap().once.is_none(), "used up");
        assert!(take_once(&path, &settings).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.contains("x.json"), "{e}");
    }
}
