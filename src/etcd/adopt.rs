//! Settings files an older fild rewrote in place (`cluster_state`, a literal
//! `initial_cluster`, `cluster_token`, `extra_flags`, a moved `peer_url`, the gateway's
//! `endpoints`). fild now keeps such values in the runtime layer; at start-up it copies them
//! there from a file that differs from the one git ships, leaves the file as it is, and says
//! how to restore it. The values then hold either way: over the rewritten line and over the
//! shipped one.

use std::path::Path;
use std::process::Command;

use super::envfile;
use super::runtime::{self, Learned};
use super::settings::Settings;

/// Keys an older fild wrote into settings files.
pub const REWRITTEN_KEYS: &[&str] = &[
    "cluster_state",
    "initial_cluster",
    "cluster_token",
    "extra_flags",
    "peer_url",
    "listen_peer_urls",
    "endpoints",
];

const FORCE_NEW_CLUSTER: &str = "--force-new-cluster";

/// The shipped text of `file` (git's HEAD) and the command that restores it, when `file` is
/// tracked in a git checkout.
fn shipped(file: &Path) -> Option<(String, String)> {
    let dir = file.parent()?;
    let top = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let top = String::from_utf8(top.stdout).ok()?.trim().to_string();
    let abs = std::fs::canonicalize(file).ok()?;
    let rel = abs
        .strip_prefix(std::fs::canonicalize(&top).ok()?)
        .ok()?
        .display()
        .to_string();
    let text = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["show", &format!("HEAD:{rel}")])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some((
        String::from_utf8_lossy(&text.stdout).into_owned(),
        format!("git -C {top} checkout -- {rel}"),
    ))
}

/// Whether a line looks rewritten by an older fild: it differs from the shipped one and is a
/// literal (an older fild wrote values, never expansions; a line with `$` is the kit's own).
pub fn rewritten(line: &str, shipped: &str) -> bool {
    line != shipped && !line.contains('$')
}

/// The keys of `current` whose line an older fild rewrote, compared with the shipped text's.
fn rewritten_keys(current: &Settings, shipped_text: &str) -> Vec<&'static str> {
    let shipped = envfile::raw_lines(shipped_text);
    REWRITTEN_KEYS
        .iter()
        .copied()
        .filter(|k| {
            current
                .lines
                .get(*k)
                .is_some_and(|l| rewritten(&l.raw, shipped.get(*k).map_or("", String::as_str)))
        })
        .collect()
}

/// What to adopt from a rewritten file: for each rewritten key, its value and the lines
/// (rewritten, shipped) it applies over. Pure: `current` is the evaluated file.
pub fn plan(current: &Settings, shipped_text: &str) -> Vec<(String, Learned)> {
    let shipped = envfile::raw_lines(shipped_text);
    let mut out = Vec::new();
    for key in rewritten_keys(current, shipped_text) {
        let line = &current.lines[key];
        let was = shipped.get(key).cloned().unwrap_or_default();
        if current
            .runtime
            .learned
            .get(key)
            .is_some_and(|l| l.over.contains(&line.raw))
        {
            continue; // adopted already (or learned since)
        }
        let mut value = current.get(key).to_string();
        let mut over = vec![line.raw.clone(), was];
        if key == "extra_flags" {
            // An older fild wrote extra_flags only for a rescue's one start: once the file is
            // restored, the shipped line (and ETCD_EXTRA_FLAGS) applies again.
            over.truncate(1);
            // An interrupted rescue's flag must never apply again.
            value = shlex::split(&value)
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FORCE_NEW_CLUSTER)
                .collect::<Vec<_>>()
                .join(" ");
        }
        out.push((
            key.to_string(),
            Learned {
                value,
                over,
                by: format!(
                    "adopted from {} (rewritten by an older fild)",
                    current.file.display()
                ),
                at: runtime::now(),
            },
        ));
    }
    out
}

/// Adopt what an older fild wrote into `s.file`. Returns what to tell the operator, if the
/// file differs from the shipped one in a key fild once rewrote.
pub fn adopt(s: &Settings) -> Result<Option<String>, String> {
    let Some((text, restore)) = shipped(&s.file) else {
        return Ok(None);
    };
    let differs = rewritten_keys(s, &text);
    if differs.is_empty() {
        return Ok(None);
    }
    let todo = plan(s, &text);
    if !todo.is_empty() {
        runtime::update(&s.runtime_file, &s.file, |rt| {
            for (k, l) in todo {
                rt.learned.insert(k, l);
            }
        })?;
    }
    Ok(Some(format!(
        "{} differs from the shipped file in {} (rewritten by an older fild?): the values are kept in {}, and fild never edits the file. Restore the shipped file with: {restore}",
        s.file.display(),
        differs.join(", "),
        s.runtime_file.display()
    )))
}

/// At start-up, before any program starts: adopt every member's and the gateway's rewritten
/// settings file, and say so in fild's log and on its stderr.
pub fn at_start(programs: &[crate::config::ProgramSpec], env: &crate::config::Env) {
    for spec in programs {
        let Some(Ok(s)) = super::members::role(spec, env) else {
            continue;
        };
        match adopt(&s) {
            Ok(None) => {}
            Ok(Some(msg)) => {
                tracing::warn!("{}: {msg}", spec.name);
                eprintln!("fild: warning: {}: {msg}", spec.name);
            }
            Err(e) => {
                tracing::error!("{}: cannot adopt {}: {e}", spec.name, s.file.display());
                eprintln!(
                    "fild: error: {}: cannot adopt {}: {e}",
                    spec.name,
                    s.file.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::runtime::Runtime;
    use crate::etcd::settings::{Offline, from_text};
    use std::path::{Path, PathBuf};

    const SHIPPED: &str = "name=a\nclient_url=http://127.0.0.1:1\npeer_url=http://127.0.0.1:2\ninitial_cluster=a=$peer_url\ncluster_token=${ETCD_TOKEN:-t}\ncluster_state=new\nextra_flags=${ETCD_EXTRA_FLAGS:-}\ndata_dir=/d/a\n";

    fn settings(text: &str, rt: Runtime) -> Settings {
        from_text(
            text,
            Path::new("/p/apps/etcd/a.env"),
            Path::new("/p"),
            PathBuf::from("/p/var/etcd/runtime/a.json"),
            rt,
            &Default::default(),
            &Offline,
        )
        .unwrap()
    }

    #[test]
    fn literal_rewrites_are_adopted_over_both_lines_and_expansions_are_not() {
        let text = SHIPPED
            .replace("cluster_state=new", "cluster_state=existing")
            .replace("${ETCD_EXTRA_FLAGS:-}", "--force-new-cluster")
            .replace("${ETCD_TOKEN:-t}", "${ETCD_TOKEN:-other}");
        let todo = plan(&settings(&text, Runtime::default()), SHIPPED);
        let keys: Vec<&str> = todo.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["cluster_state", "extra_flags"],
            "an expansion is the kit's own"
        );
        let (_, state) = &todo[0];
        assert_eq!(state.value, "existing");
        assert_eq!(state.over, ["existing", "new"]);
        let (_, flags) = &todo[1];
        assert_eq!(flags.value, "", "the interrupted rescue's flag is dropped");
        assert_eq!(flags.over, ["--force-new-cluster"]);

        // Adopted once: nothing more to do.
        let mut rt = Runtime::default();
        rt.learned.extend(todo);
        assert!(plan(&settings(&text, rt), SHIPPED).is_empty());
        assert!(plan(&settings(SHIPPED, Runtime::default()), SHIPPED).is_empty());
    }
}
