//! Opening a program's log file as root without being led astray: no path component is
//! resolved through a symbolic link that a less privileged user could have placed, the open
//! never blocks (a FIFO at the path is refused, not waited on), and what is opened must be a
//! regular file. The walk keeps the final directory's descriptor, so rotation renames happen
//! in that directory, never through the path again.
//!
//! A directory is *trusted* when only root or fild's own user can change it: owned by one of
//! them and not writable by group or others. A symlink is followed only inside a trusted
//! directory, or inside a sticky one when the link belongs to root or fild's user (the kernel's
//! `protected_symlinks` rule). A file with more than one hard link is refused in an untrusted
//! directory.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path};

/// Symlinks followed in one open, at most (the kernel's own limit).
const MAX_HOPS: usize = 40;

/// Why a log path was refused or could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("refused: {0}")]
    Unsafe(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// An open log file and the directory it is in.
pub struct Opened {
    /// The directory holding the file (`O_PATH`), for renames during rotation.
    pub dir: OwnedFd,
    /// The file's name in `dir`.
    pub name: OsString,
    pub file: File,
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn open_at(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: openat on a descriptor we hold and a NUL-terminated name; the new descriptor is
    // ours alone.
    let fd = check(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_fd(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: fstat into a zeroed struct we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstat(fd, &mut st))?;
        Ok(st)
    }
}

fn stat_at(dir: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: fstatat (not following a final symlink) into a zeroed struct we own.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstatat(
            dir,
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ))?;
        Ok(st)
    }
}

fn read_link_at(dir: RawFd, name: &CString) -> io::Result<OsString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: readlinkat into our buffer, bounded by its length.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

fn is(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Whose changes fild accepts: root's and its own user's.
fn privileged(uid: libc::uid_t) -> bool {
    // SAFETY: geteuid cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Only root or fild's user can change this directory.
pub fn trusted(dir: &libc::stat) -> bool {
    privileged(dir.st_uid) && dir.st_mode & 0o022 == 0
}

/// May a symlink `link` in directory `dir` be followed?
pub fn may_follow(dir: &libc::stat, link: &libc::stat) -> bool {
    trusted(dir) || (dir.st_mode & libc::S_ISVTX != 0 && privileged(link.st_uid))
}

fn components(path: &Path) -> (bool, VecDeque<OsString>) {
    let mut out = VecDeque::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push_back(n.to_os_string()),
            Component::ParentDir => out.push_back(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (path.is_absolute(), out)
}

fn start(absolute: bool) -> io::Result<OwnedFd> {
    let from = CString::new(if absolute { "/" } else { "." }).expect("no NUL");
    open_at(libc::AT_FDCWD, &from, libc::O_PATH | libc::O_DIRECTORY, 0)
}

/// Open (creating it 0644, and missing directories 0755) the log file at `path` for writing
/// at its end, under the rules above. `O_APPEND` is set; the caller may clear it for splice.
pub fn open_log(path: &Path) -> Result<Opened, OpenError> {
    let shown = path.display().to_string();
    let (absolute, mut rest) = components(path);
    let Some(_) = rest.back() else {
        return Err(OpenError::Unsafe(format!("{shown} names no file")));
    };
    let mut dir = start(absolute)?;
    let mut hops = 0;
    while let Some(name) = rest.pop_front() {
        let last = rest.is_empty();
        let c = cstr(&name)?;
        let dir_st = stat_fd(dir.as_raw_fd())?;
        let st = match stat_at(dir.as_raw_fd(), &c) {
            Ok(st) => Some(st),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        match st {
            Some(st) if is(&st, libc::S_IFLNK) => {
                if !may_follow(&dir_st, &st) {
                    return Err(OpenError::Unsafe(format!(
                        "{shown}: {} is a symbolic link in a directory that user {} can change",
                        name.to_string_lossy(),
                        dir_st.st_uid
                    )));
                }
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(OpenError::Unsafe(format!(
                        "{shown}: too many symbolic links"
                    )));
                }
                let target = read_link_at(dir.as_raw_fd(), &c)?;
                let (abs, comps) = components(Path::new(&target));
                for comp in comps.into_iter().rev() {
                    rest.push_front(comp);
                }
                if abs {
                    dir = start(true)?;
                }
            }
            _ if last => {
                return open_file(dir, name, &dir_st, &shown);
            }
            Some(st) if is(&st, libc::S_IFDIR) => {
                dir = open_at(
                    dir.as_raw_fd(),
                    &c,
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )?;
            }
            Some(_) => {
                return Err(OpenError::Unsafe(format!(
                    "{shown}: {} is not a directory",
                    name.to_string_lossy()
                )));
            }
            None => {
                // SAFETY: mkdirat on a directory we hold.
                let made = check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) });
                match made {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e.into()),
                }
                // Looked at again: someone may have raced a symlink in.
                rest.push_front(name);
            }
        }
    }
    Err(OpenError::Unsafe(format!("{shown} names no file")))
}

/// Create or open `name` again in `dir` (the live file after a rotation).
pub fn reopen_in(dir: OwnedFd, name: OsString, shown: &str) -> Result<Opened, OpenError> {
    let dir_st = stat_fd(dir.as_raw_fd())?;
    open_file(dir, name, &dir_st, shown)
}

fn open_file(
    dir: OwnedFd,
    name: OsString,
    dir_st: &libc::stat,
    shown: &str,
) -> Result<Opened, OpenError> {
    let c = cstr(&name)?;
    // Never blocks (a FIFO), never follows a final symlink (raced in after the check).
    let fd = open_at(
        dir.as_raw_fd(),
        &c,
        libc::O_WRONLY
            | libc::O_APPEND
            | libc::O_CREAT
            | libc::O_NOFOLLOW
            | libc::O_NONBLOCK
            | libc::O_NOCTTY,
        0o644,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => OpenError::Unsafe(format!("{shown} became a symbolic link")),
        Some(libc::ENXIO) => OpenError::Unsafe(format!("{shown} is a FIFO nobody reads")),
        _ => OpenError::Io(e),
    })?;
    let st = stat_fd(fd.as_raw_fd())?;
    if !is(&st, libc::S_IFREG) {
        return Err(OpenError::Unsafe(format!(
            "{shown} is not a regular file (a FIFO, socket or device?)"
        )));
    }
    if !trusted(dir_st) && st.st_nlink > 1 {
        return Err(OpenError::Unsafe(format!(
            "{shown} has another hard link, in a directory that user {} can change",
            dir_st.st_uid
        )));
    }
    // Regular files ignore O_NONBLOCK; cleared anyway so nothing depends on it.
    // SAFETY: fcntl on the descriptor we just opened.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    Ok(Opened {
        dir,
        name,
        file: File::from(fd),
    })
}

/// Rename `from` to `to`, both in `dir`.
pub fn rename_in(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: renameat within one directory we hold, with NUL-terminated names.
    check(unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) })
        .map(|_| ())
}

/// Whether `name` exists in `dir` (as anything, links not followed).
pub fn exists_in(dir: &OwnedFd, name: &OsStr) -> bool {
    cstr(name).is_ok_and(|c| stat_at(dir.as_raw_fd(), &c).is_ok())
}

/// Set or clear `O_APPEND` on an open file.
pub fn set_append(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = check(libc::fcntl(fd, libc::F_GETFL))?;
        let want = if on {
            fl | libc::O_APPEND
        } else {
            fl & !libc::O_APPEND
        };
        if want != fl {
            check(libc::fcntl(fd, libc::F_SETFL, want))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn opens_creates_and_follows_trusted_links() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/out.log");
        let o = open_log(&p).unwrap();
        assert_eq!(o.name, "out.log");
        assert!(p.is_file());
        // A link in a directory only we can change is followed.
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(d.path().join("a"), d.path().join("link")).unwrap();
        open_log(&d.path().join("link/b/out.log")).unwrap();
    }

    #[test]
    fn refuses_links_in_directories_others_can_change_fifos_and_non_files() {
        let d = tempfile::tempdir().unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let target = d.path().join("secret");
        std::fs::write(&target, "root's\n").unwrap();
        symlink(&target, open.join("out.log")).unwrap();
        let e = open_log(&open.join("out.log")).err().unwrap();
        assert!(matches!(e, OpenError::Unsafe(_)), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's\n");
        // A symlinked directory there, too.
        symlink(d.path(), open.join("dir")).unwrap();
        assert!(matches!(
            open_log(&open.join("dir/x.log")),
            Err(OpenError::Unsafe(_))
        ));
        // A FIFO: refused at once, not waited on.
        let fifo = d.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = open_log(&fifo).err().unwrap();
        assert!(e.to_string().contains("FIFO"), "{e}");
        // A directory where the file should be.
        std::fs::create_dir(d.path().join("isdir.log")).unwrap();
        assert!(open_log(&d.path().join("isdir.log")).is_err());
    }
}
