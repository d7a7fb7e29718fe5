//! Data dirs are never deleted: moved aside (`<data_dir>.<UTC time>`) or copied first.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Say;

/// `20261123T101500Z`
pub(crate) fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "")
}

pub(crate) fn free_name(base: &str, suffix: &str) -> PathBuf {
    let first = PathBuf::from(format!("{base}.{}{suffix}", stamp()));
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|i| PathBuf::from(format!("{base}.{}-{i}{suffix}", stamp())))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// [`free_name`] for a path: `<path>.<UTC time>` (with `-N` if taken).
pub(crate) fn free_name_for(path: &Path) -> PathBuf {
    free_name(&path.display().to_string(), "")
}

/// Rename a non-empty data dir to `<data_dir>.<UTC timestamp>`; nothing is deleted.
pub(crate) fn move_aside(say: Say<'_>, data_dir: &str) -> anyhow::Result<()> {
    let p = Path::new(data_dir);
    let empty = match std::fs::read_dir(p) {
        Ok(mut d) => d.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            say(&format!("data dir {data_dir}: absent, nothing to move"));
            return Ok(());
        }
        Err(e) => bail!("data dir {data_dir}: {e}"),
    };
    if empty {
        say(&format!("data dir {data_dir}: empty, nothing to move"));
        return Ok(());
    }
    let to = free_name(data_dir, "");
    std::fs::rename(p, &to)
        .with_context(|| format!("move {data_dir} aside to {}", to.display()))?;
    say(&format!("moved old data dir aside: {}", to.display()));
    Ok(())
}

/// Keep a copy of a data dir (`<data_dir>.<UTC timestamp>.copy`) before it is rewritten.
pub(crate) fn copy_aside(say: Say<'_>, data_dir: &str) -> anyhow::Result<()> {
    let p = Path::new(data_dir);
    if !p.is_dir() {
        return Ok(());
    }
    let to = free_name(data_dir, ".copy");
    copy_tree(p, &to).with_context(|| format!("copy {data_dir} to {}", to.display()))?;
    say(&format!("kept a copy of {data_dir}: {}", to.display()));
    Ok(())
}

pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}
