//! The file watcher a spec asks for (`restart_when_binary_changed`, `restart_directory_monitor`).

use super::*;

/// Start the file watcher a spec asks for (`restart_when_binary_changed`,
/// `restart_directory_monitor` + `restart_file_pattern`); events go to the loop.
pub(super) fn watch(
    spec: &ProgramSpec,
    tx: &mpsc::UnboundedSender<Request>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let binary = if spec.restart_when_binary_changed {
        spec.command.first().and_then(|p| which(p, spec))
    } else {
        None
    };
    let dir = spec.restart_directory_monitor.clone();
    if binary.is_none() && dir.is_none() {
        return None;
    }
    let pattern = spec
        .restart_file_pattern
        .as_deref()
        .and_then(|p| glob::Pattern::new(p).ok());
    let name = spec.name.clone();
    let tx = tx.clone();
    let bin = binary.clone();
    let handler = move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if ev.kind.is_access() {
            return;
        }
        let relevant = ev.paths.iter().any(|p| {
            if bin.as_deref() == Some(p.as_path()) {
                return true;
            }
            match (&pattern, p.file_name().and_then(|f| f.to_str())) {
                (Some(pat), Some(f)) => pat.matches(f),
                (None, _) => bin.as_deref() != Some(p.as_path()),
                _ => false,
            }
        });
        if relevant {
            let _ = tx.send(Request::FileChanged { name: name.clone() });
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(program = %spec.name, error = %e, "Cannot watch files.");
            return None;
        }
    };
    if let Some(b) = &binary {
        // Watch the directory: replacing a binary (rename over it) must be seen too.
        if let Some(parent) = b.parent()
            && let Err(e) = w.watch(parent, RecursiveMode::NonRecursive)
        {
            tracing::warn!(program = %spec.name, error = %e, "Cannot watch the binary.");
        }
    }
    if let Some(d) = &dir
        && let Err(e) = w.watch(d, RecursiveMode::Recursive)
    {
        tracing::warn!(program = %spec.name, dir = %d.display(), error = %e, "Cannot watch the directory.");
    }
    Some(w)
}

/// The file `program` runs: a path as given, else looked up on PATH.
pub(super) fn which(program: &str, spec: &ProgramSpec) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = spec
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
