//! Snapshots are a full copy of the keyspace, so they are as private as the data dirs: the
//! folder they are written into is 0700 and every snapshot file is 0600 from its creation
//! (the temporary `.part` file included: it is created with that mode, never chmod-ed after).
//! The files belong to the user that writes them (fild's user for the scheduled backups).
//!
//! The backup folder (`[etcd] backup_dir`, where scheduled backups and the snapshots before a
//! membership change go) is created 0700, and an existing one that group or others may enter
//! is made 0700, once, with a notice the caller prints or logs. A folder a person names for
//! one snapshot (`filc etcd snapshot DIR`) is created 0700 when missing, but an existing one is
//! left as it is (it may be `/tmp` or a home directory): the notice says how open it is.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of the backup folder and of folders created for snapshots.
pub const DIR_MODE: u32 = 0o700;
/// The mode every snapshot file is created with.
pub const FILE_MODE: u32 = 0o600;

/// Whose folder a snapshot goes into, which decides whether fild may change its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// fild's own backup folder: made private when it is not.
    Backup,
    /// A folder a person named: created private, never changed when it exists.
    Chosen,
}

/// What an existing folder's mode calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Only its owner may enter it.
    Private,
    /// Group or others may enter or list it: make it [`DIR_MODE`].
    Tighten,
    /// Group or others may enter or list it, and it is not fild's to change.
    Leave,
}

/// The pure decision for a folder of this mode (permission bits and the rest).
pub fn verdict(mode: u32, folder: Folder) -> Verdict {
    if mode & 0o077 == 0 {
        Verdict::Private
    } else if folder == Folder::Backup {
        Verdict::Tighten
    } else {
        Verdict::Leave
    }
}

/// Make sure `dir` exists and, for the backup folder, is private. Missing folders (and missing
/// parents) are created [`DIR_MODE`]. Returns a notice for a person when the folder's mode was
/// changed, or is open and left so.
pub fn prepare(dir: &Path, folder: Folder) -> Result<Option<String>, String> {
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(err)?;
    let mode = std::fs::metadata(dir).map_err(err)?.permissions().mode() & 0o7777;
    Ok(match verdict(mode, folder) {
        Verdict::Private => None,
        Verdict::Tighten => Some(
            match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE)) {
                Ok(()) => format!(
                    "backup folder {} was mode {mode:04o} (other users could list and read it); made it {DIR_MODE:04o}",
                    dir.display()
                ),
                Err(e) => format!(
                    "warning: backup folder {} is mode {mode:04o} and cannot be made {DIR_MODE:04o} ({e}); each snapshot in it is {FILE_MODE:04o}",
                    dir.display()
                ),
            },
        ),
        Verdict::Leave => Some(format!(
            "note: {} is mode {mode:04o}: other users can list it; the snapshot itself is {FILE_MODE:04o} (fild does not change a folder you name)",
            dir.display()
        )),
    })
}

/// Create a new file (never an existing one) readable and writable by its owner only, from
/// the first byte on.
pub fn create_file(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn only_the_backup_folder_is_tightened() {
        assert_eq!(verdict(0o700, Folder::Backup), Verdict::Private);
        assert_eq!(verdict(0o500, Folder::Chosen), Verdict::Private);
        assert_eq!(verdict(0o755, Folder::Backup), Verdict::Tighten);
        assert_eq!(verdict(0o710, Folder::Backup), Verdict::Tighten);
        assert_eq!(verdict(0o701, Folder::Backup), Verdict::Tighten);
        assert_eq!(verdict(0o1777, Folder::Chosen), Verdict::Leave);
        assert_eq!(verdict(0o755, Folder::Chosen), Verdict::Leave);
    }

    #[test]
    fn folders_are_created_private_and_the_backup_folder_is_tightened_once() {
        let t = tempfile::tempdir().unwrap();
        let new = t.path().join("a/b");
        assert_eq!(prepare(&new, Folder::Chosen), Ok(None));
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);

        let wide = t.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o755)).unwrap();
        let n = prepare(&wide, Folder::Chosen).unwrap().unwrap();
        assert!(n.contains("0755") && n.contains("does not change"), "{n}");
        assert_eq!(mode(&wide), 0o755);
        let n = prepare(&wide, Folder::Backup).unwrap().unwrap();
        assert!(
            n.contains("was mode 0755") && n.contains("made it 0700"),
            "{n}"
        );
        assert_eq!(mode(&wide), 0o700);
        assert_eq!(prepare(&wide, Folder::Backup), Ok(None));

        let f = wide.join("x.part");
        create_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(create_file(&f).is_err(), "an existing file is never reused");
    }
}
