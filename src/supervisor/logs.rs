//! Child output capture: a pump task per pipe writes into a size-rotated file.
//!
//! Rotation keeps `path` (live), `path.1` ... `path.N` (N = backups). When a write would take
//! the live file past `maxbytes`, the part up to the last newline that fits is written, the
//! files shift by one (the oldest is dropped) and the rest goes to a fresh live file. So after
//! any amount of output the files total at most `maxbytes * (backups + 1)` and the last line
//! written is in the live file. `backups = 0` truncates the live file instead; `maxbytes = 0`
//! never rotates.
//!
//! The file is opened by [`safe_open::open_log`] (no symlink a less privileged user could
//! have placed, no FIFO, a regular file only) and rotated by renames in the directory it was
//! opened in. Writes land at the file's current end: `write`s with `O_APPEND`, so two streams
//! or processes sharing one file never overwrite each other and `logrotate copytruncate`
//! works; splice(2), which refuses `O_APPEND` files, goes to the end `fstat` gives just
//! before it. A file two of fild's streams share is never spliced into (every write is an
//! `O_APPEND` write). The race left: a writer outside fild appending between that `fstat`
//! and a splice is overwritten by the splice.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::safe_open::{self, OpenError};

/// A log file with size-based rotation.
pub struct RotatingFile {
    path: PathBuf,
    maxbytes: u64,
    backups: u32,
    file: Option<File>,
    /// The directory the file was opened in, while it is open (renames go through it).
    dir: Option<OwnedFd>,
    name: OsString,
    /// Whether the open file has `O_APPEND` now (cleared for splice).
    append: bool,
    /// Another of fild's streams writes to this file too: no splice, only appends.
    shared: bool,
    size: u64,
    /// When the last write error was logged (errors are logged at most once a minute).
    last_error_log: Option<Instant>,
}

impl RotatingFile {
    fn unopened(path: &Path, maxbytes: u64, backups: u32) -> RotatingFile {
        RotatingFile {
            path: path.to_path_buf(),
            maxbytes,
            backups,
            file: None,
            dir: None,
            name: path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default(),
            append: true,
            shared: false,
            size: 0,
            last_error_log: None,
        }
    }

    /// A program's log: created now (as supervisord does), or refused with the reason (an
    /// unsafe path, say), in which case the program must not start. `shared`: another of
    /// fild's streams writes to the same file.
    pub fn create(
        path: &Path,
        maxbytes: u64,
        backups: u32,
        shared: bool,
    ) -> Result<RotatingFile, OpenError> {
        let mut f = Self::unopened(path, maxbytes, backups);
        f.shared = shared;
        f.open_safely()?;
        // Held only while output flows (see `pump`).
        f.park();
        Ok(f)
    }

    /// fild's own log: problems are reported, and writing is tried again later.
    pub fn new(path: &Path, maxbytes: u64, backups: u32) -> RotatingFile {
        let mut f = Self::unopened(path, maxbytes, backups);
        if let Err(e) = f.open() {
            f.report(&e);
        }
        f.park();
        f
    }

    fn open_safely(&mut self) -> Result<(), OpenError> {
        let o = safe_open::open_log(&self.path)?;
        self.size = o.file.metadata()?.len();
        self.file = Some(o.file);
        self.dir = Some(o.dir);
        self.name = o.name;
        self.append = true;
        Ok(())
    }

    fn open(&mut self) -> io::Result<()> {
        self.open_safely().map_err(|e| match e {
            OpenError::Io(e) => e,
            unsafe_path => io::Error::other(unsafe_path.to_string()),
        })
    }

    fn report(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
        {
            self.last_error_log = Some(now);
            tracing::warn!(file = %self.path.display(), error = %e, "Cannot write log; output is dropped until it can.");
        }
    }

    /// Write `buf`, rotating as needed. Errors (a full disk, say) drop the data and are
    /// logged; the next write tries again, so capture resumes when space returns.
    pub fn write(&mut self, buf: &[u8]) {
        if let Err(e) = self.try_write(buf) {
            self.report(&e);
            self.file = None;
        }
    }

    fn try_write(&mut self, mut buf: &[u8]) -> io::Result<()> {
        match &self.file {
            None => self.open()?,
            // The end as it is now: someone else may write to the file too.
            Some(f) => self.size = f.metadata()?.len(),
        }
        while !buf.is_empty() {
            let room = if self.maxbytes == 0 {
                u64::MAX
            } else {
                self.maxbytes.saturating_sub(self.size)
            };
            let take = if (buf.len() as u64) <= room {
                buf.len()
            } else {
                // Split after the last newline that fits; a line longer than the room is
                // split only when the live file is empty (it could never fit otherwise).
                let room = room as usize;
                match buf[..room].iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None if self.size == 0 => room.max(1),
                    None => 0,
                }
            };
            if take > 0 {
                let file = self.file.as_mut().expect("opened above");
                if !self.append {
                    safe_open::set_append(file, true)?;
                    self.append = true;
                }
                file.write_all(&buf[..take])?;
                self.size += take as u64;
                buf = &buf[take..];
            }
            if !buf.is_empty() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    /// Move up to `max` bytes from `pipe` straight into the file with splice(2), without
    /// copying them through fild. Only while the bytes cannot reach the rotation bound
    /// (rotation splits at a newline, which needs to see the bytes): `None` means "read
    /// instead". `Some(Ok(0))` is the end of the pipe.
    pub fn splice_from(
        &mut self,
        pipe: std::os::fd::RawFd,
        max: usize,
    ) -> Option<io::Result<usize>> {
        if self.shared
            || (self.maxbytes != 0 && self.maxbytes.saturating_sub(self.size) < max as u64)
        {
            return None;
        }
        if self.file.is_none()
            && let Err(e) = self.open()
        {
            // Fall back to the read path, which drops the data and reports the error.
            self.report(&e);
            return None;
        }
        let file = self.file.as_ref().expect("opened above");
        if self.append {
            if safe_open::set_append(file, false).is_err() {
                return None;
            }
            self.append = false;
        }
        // The current end (see the module docs for the race this leaves).
        match file.metadata() {
            Ok(m) => self.size = m.len(),
            Err(e) => return Some(Err(e)),
        }
        let mut off = self.size as libc::loff_t;
        // SAFETY: splice between two descriptors we own; `off` outlives the call.
        let n = unsafe {
            libc::splice(
                pipe,
                std::ptr::null_mut(),
                std::os::fd::AsRawFd::as_raw_fd(file),
                &mut off,
                max,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Some(Err(e)),
                // EINVAL and the like (a file system without splice): read instead.
                _ => None,
            };
        }
        self.size += n as u64;
        Some(Ok(n as usize))
    }

    /// Close the file until the next write. The pumps do this whenever their pipe is drained,
    /// so idle programs hold no log file open: every open descriptor of fild's would be
    /// copied into, and closed again by, each program it spawns.
    pub fn park(&mut self) {
        self.file = None;
        self.dir = None;
    }

    fn numbered(&self, n: u32) -> OsString {
        let mut s = self.name.clone();
        s.push(format!(".{n}"));
        s
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            let file = self.file.as_ref().expect("rotate runs on an open file");
            file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        self.file = None;
        let dir = self.dir.take().expect("rotate runs on an open file");
        for n in (1..self.backups).rev() {
            let from = self.numbered(n);
            if safe_open::exists_in(&dir, &from) {
                safe_open::rename_in(&dir, &from, &self.numbered(n + 1))?;
            }
        }
        safe_open::rename_in(&dir, &self.name, &self.numbered(1))?;
        let shown = self.path.display().to_string();
        let o = safe_open::reopen_in(dir, self.name.clone(), &shown).map_err(|e| match e {
            OpenError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })?;
        self.size = 0;
        self.file = Some(o.file);
        self.dir = Some(o.dir);
        self.append = true;
        Ok(())
    }
}

/// The read buffer's size: the most one read moves from a pipe to its file.
const READ_BUF_BYTES: usize = 1 << 20;
/// After a small read, wait this long before reading again: a program writing line by line
/// then costs fild one wake-up per millisecond, not one per line.
const GATHER: Duration = Duration::from_millis(1);
/// A read smaller than this is "small". Larger ones mean output is flowing fast: read again
/// at once.
const SMALL_READ: usize = 32 * 1024;
/// A read this large means the pipe was (nearly) full: the program is chatty, so its pipe
/// grows to [`BIG_PIPE_BYTES`] and it does not block while fild gathers.
const CHATTY_READ: usize = 48 * 1024;
const BIG_PIPE_BYTES: libc::c_int = 1 << 20;

thread_local! {
    /// One read buffer for every pump: they all run on the loop's thread and never hold it
    /// across an await, so a thousand programs cost one buffer, not a thousand.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; READ_BUF_BYTES]);
}

/// How long a pipe may stay quiet before its log file is closed. While output flows the file
/// stays open (no open and close per burst); idle programs hold no log file open, since every
/// descriptor fild holds is copied into, and closed again by, each program it spawns.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// Drain a pipe into a log file until every writer has closed it.
///
/// While the pipe is quiet it is registered with the event loop, and after [`PARK_AFTER`]
/// the file is closed.
/// Once output arrives the pipe is taken out of the event loop and read on a 1 ms rhythm
/// until it is empty again: the writer's `write`s then wake nobody, which is what keeps a
/// line-by-line writer almost as fast as writing to a file itself.
pub async fn pump(fd: OwnedFd, mut out: RotatingFile) {
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    let mut fd = fd;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: fcntl on the pipe we own.
    if unsafe { libc::fcntl(raw, libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        tracing::error!(error = %io::Error::last_os_error(), "Cannot make an output pipe non-blocking.");
        return;
    }
    let mut enlarged = false;
    loop {
        // Quiet: wait in the event loop for output.
        // SAFETY: the descriptor stays open (we own it) for as long as it is registered.
        let registered = match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "Cannot watch an output pipe.");
                return;
            }
        };
        let ready = match tokio::time::timeout(PARK_AFTER, registered.readable()).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => {
                // Quiet for a while: close the file, then wait as long as it takes.
                out.park();
                registered.readable().await.map(|_| ())
            }
        };
        if let Err(e) = ready {
            tracing::warn!(error = %e, "Output pipe wait failed.");
            return;
        }
        fd = registered.into_inner();
        // Flowing: read until the pipe is empty, gathering after small reads.
        loop {
            let res = match out.splice_from(raw, READ_BUF_BYTES) {
                Some(r) => r,
                None => READ_BUF.with_borrow_mut(|buf| {
                    // SAFETY: reading into our own buffer from the pipe we own.
                    let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
                    if n < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let n = n as usize;
                    out.write(&buf[..n]);
                    Ok(n)
                }),
            };
            match res {
                Ok(0) => return,
                Ok(n) => {
                    if n >= CHATTY_READ && !enlarged {
                        enlarged = true;
                        // SAFETY: fcntl on the pipe we own; failure (quota) is harmless.
                        unsafe {
                            libc::fcntl(raw, libc::F_SETPIPE_SZ, BIG_PIPE_BYTES);
                        }
                    }
                    if n < SMALL_READ {
                        tokio::time::sleep(GATHER).await;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Output pipe read failed.");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn rotation_bounds_total_size_and_keeps_last_line_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut f = RotatingFile::new(&path, 1000, 2);
        let mut last = String::new();
        for i in 0..300 {
            last = format!("line number {i:05}\n");
            f.write(last.as_bytes());
        }
        assert!(total(dir.path()) <= 3000, "total {}", total(dir.path()));
        let live = std::fs::read_to_string(&path).unwrap();
        assert!(live.ends_with(&last));
        assert!(path.with_extension("log.2").exists());
        assert!(!path.with_extension("log.3").exists());
        for n in ["out.log", "out.log.1", "out.log.2"] {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            assert!(len <= 1000, "{n} is {len} bytes");
        }
    }

    #[test]
    fn zero_backups_truncates_and_zero_maxbytes_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = RotatingFile::new(&path, 100, 0);
        for _ in 0..50 {
            f.write(b"0123456789\n");
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 100);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let path = dir.path().join("b.log");
        let mut f = RotatingFile::new(&path, 0, 3);
        for _ in 0..50 {
            f.write(b"0123456789\n");
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 550);
    }

    #[test]
    fn a_line_longer_than_the_bound_is_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut f = RotatingFile::new(&path, 10, 1);
        f.write(&[b'x'; 25]);
        assert!(total(dir.path()) <= 20);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5);
    }

    #[test]
    fn splice_moves_pipe_data_and_steps_aside_near_the_bound() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        w.write_all(b"one\ntwo\n").unwrap();
        let path = dir.path().join("s.log");
        let mut f = RotatingFile::new(&path, 0, 0);
        f.write(b"zero\n");
        let n = f.splice_from(r.as_raw_fd(), 1 << 20).unwrap().unwrap();
        assert_eq!(n, 8);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "zero\none\ntwo\n");
        // Near a rotation bound the bytes must be seen (newline split): no splice.
        let mut g = RotatingFile::new(&dir.path().join("t.log"), 100, 1);
        assert!(g.splice_from(r.as_raw_fd(), 1 << 20).is_none());
        drop(w);
        let end = f.splice_from(r.as_raw_fd(), 1 << 20).unwrap().unwrap();
        assert_eq!(end, 0, "end of the pipe");
    }
}
