//! What the tests check of snapshot files: their modes and owner, and the revision a name
//! carries against the one `etcdctl snapshot status` reads from the file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file's or folder's permission bits.
pub fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// The `*.db` files in `dir`.
pub fn db_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "db"));
    v.sort();
    v
}

/// The folder is 0700 and every snapshot in it 0600, owned by this (the test's) user, which
/// is also fild's and filc's.
pub fn assert_private(dir: &Path) {
    assert_eq!(mode_of(dir), 0o700, "{} is not 0700", dir.display());
    let files = db_files(dir);
    assert!(!files.is_empty(), "no snapshot in {}", dir.display());
    let me = unsafe { libc::geteuid() };
    for f in files {
        assert_eq!(mode_of(&f), 0o600, "{} is not 0600", f.display());
        assert_eq!(std::fs::metadata(&f).unwrap().uid(), me, "{}", f.display());
    }
}

/// The revision `etcdctl snapshot status -w json` (ETCDCTL_API=3) reports for a file.
pub fn status_revision(file: &Path) -> i64 {
    let o = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .expect("run etcdctl snapshot status");
    assert!(
        o.status.success(),
        "etcdctl snapshot status {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {v}"))
}

/// The revision a snapshot's name carries (`etcd-<member>-<time>-r<revision>.db`).
pub fn name_revision(file: &Path) -> i64 {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    name.strip_suffix(".db")
        .and_then(|s| s.rsplit_once("-r"))
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or_else(|| panic!("{name} carries no revision"))
}

/// The name's revision is the file's own; returns it.
pub fn assert_named_by_revision(file: &Path) -> i64 {
    let held = status_revision(file);
    assert_eq!(
        name_revision(file),
        held,
        "{} holds revision {held}",
        file.display()
    );
    held
}
