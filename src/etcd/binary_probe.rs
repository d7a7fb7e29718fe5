//! What an etcd binary says about itself: its version (`BIN --version`) and its flags
//! (`BIN --help`), and what etcd's tools say of theirs (`etcdctl version`, `etcdutl
//! version`), each run at most once per binary file: the answers are cached by the
//! file's canonical path, modification time and size, so a reload or the next members view
//! does not run it again, and a replaced binary is asked again.
//!
//! Blocking (it runs the binary, through [`super::child`], so fild's reaping loop cannot
//! steal its status), bounded by [`TIMEOUT`]: call it from the blocking pool or the
//! launcher, never from the loop.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::releases::{self, Version};

/// How long a binary may take to answer `--version` or `--help`.
pub const TIMEOUT_SECS: u32 = 2;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    path: PathBuf,
    mtime: Option<SystemTime>,
    len: u64,
    what: &'static str,
}

/// The cache of answers, process-wide: (binary, question) to the answer.
static CACHE: Mutex<Option<HashMap<Key, Result<String, String>>>> = Mutex::new(None);

fn key(bin: &Path, what: &'static str) -> Result<Key, String> {
    let md = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    Ok(Key {
        path: std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf()),
        mtime: md.modified().ok(),
        len: md.len(),
        what,
    })
}

/// `bin ARG`'s standard output (and error: etcd 3.4 prints its help there), bounded in time.
fn run(bin: &Path, arg: &str) -> Result<String, String> {
    let secs = TIMEOUT_SECS.to_string();
    let args = [
        "-k",
        "1",
        secs.as_str(),
        bin.to_str().unwrap_or_default(),
        arg,
    ];
    // coreutils' timeout, where Debian puts it (a unit's PATH may be minimal), else on PATH.
    let timeout = ["/usr/bin/timeout", "/bin/timeout"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("timeout");
    let f = super::child::output(OsStr::new(timeout), &args, &[], "ETCD_")
        .map_err(|e| format!("{} {arg}: {e}", bin.display()))?;
    match f.code {
        Some(124) | Some(137) => {
            return Err(format!(
                "{} {arg} did not answer within {TIMEOUT_SECS} s",
                bin.display()
            ));
        }
        Some(0) => {}
        // etcd prints its help and exits 0; some builds exit 2 after --help: the text counts.
        _ if arg == "--help" && (!f.stdout.is_empty() || !f.stderr.is_empty()) => {}
        _ => {
            return Err(format!(
                "{} {arg}: {}: {}",
                bin.display(),
                f.status(),
                String::from_utf8_lossy(&f.stderr).trim()
            ));
        }
    }
    let mut out = String::from_utf8_lossy(&f.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&f.stderr));
    Ok(out)
}

fn cached(bin: &Path, what: &'static str, arg: &str) -> Result<String, String> {
    let k = key(bin, what)?;
    if let Some(hit) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&k).cloned()))
    {
        return hit;
    }
    let answer = run(bin, arg);
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(k, answer.clone());
    }
    answer
}

/// The version of the etcd binary at `bin`.
pub fn version(bin: &Path) -> Result<Version, String> {
    let out = cached(bin, "version", "--version")?;
    releases::parse_version_output(&out).map_err(|e| format!("{}: {e}", bin.display()))
}

/// The version of etcd's tool `name` (`etcdctl` or `etcdutl`) at `bin`: `bin version` prints
/// `etcdctl version: 3.5.1` (or `etcdutl version: …`) first, then the API version.
pub fn tool_version(bin: &Path, name: &str) -> Result<Version, String> {
    let out = cached(bin, "tool-version", "version")?;
    let prefix = format!("{name} version:");
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .ok_or_else(|| {
            let head: String = out.chars().take(120).collect();
            format!(
                "{}: no \"{prefix} X.Y.Z\" line in its `version` output: {head:?}",
                bin.display()
            )
        })?;
    releases::parse(line).map_err(|e| format!("{}: {e}", bin.display()))
}

/// The `--help` text of the etcd binary at `bin`.
pub fn help(bin: &Path) -> Result<String, String> {
    cached(bin, "help", "--help")
}

/// How many answers are cached (for tests).
pub fn cached_answers() -> usize {
    CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().map(HashMap::len))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn stand_in(dir: &Path, name: &str, script: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn a_stand_in_binary_is_asked_once_per_file_version() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let bin = stand_in(
            dir.path(),
            "etcd",
            &format!("echo x >> {}; echo 'etcd Version: 3.6.0'", count.display()),
        );
        assert_eq!(version(&bin).unwrap(), Version::new(3, 6, 0));
        assert_eq!(version(&bin).unwrap(), Version::new(3, 6, 0));
        let runs = || std::fs::read_to_string(&count).unwrap().lines().count();
        assert_eq!(runs(), 1, "cached by path and mtime");
        // The binary replaced (another size): asked again.
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\necho x >> {}; echo 'etcd Version: 3.7.1'; echo more\n",
                count.display()
            ),
        )
        .unwrap();
        assert_eq!(version(&bin).unwrap(), Version::new(3, 7, 1));
        assert_eq!(runs(), 2);
        assert!(cached_answers() >= 2);
    }

    #[test]
    fn a_tools_version_follows_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let utl = stand_in(
            dir.path(),
            "etcdutl",
            "[ \"$1\" = version ] && printf 'etcdutl version: 3.5.1\\nAPI version: 3.5\\n'",
        );
        assert_eq!(
            tool_version(&utl, "etcdutl").unwrap(),
            Version::new(3, 5, 1)
        );
        // etcdctl's answer is not etcdutl's.
        let e = tool_version(&utl, "etcdctl").unwrap_err();
        assert!(e.contains("no \"etcdctl version: X.Y.Z\" line"), "{e}");
        let odd = stand_in(dir.path(), "etcdctl", "echo 'etcdctl version: three'");
        let e = tool_version(&odd, "etcdctl").unwrap_err();
        assert!(e.contains("is not an etcd version"), "{e}");
    }

    #[test]
    fn a_binary_that_hangs_or_lies_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let slow = stand_in(dir.path(), "slow", "sleep 30");
        let t = std::time::Instant::now();
        let e = version(&slow).unwrap_err();
        assert!(e.contains("did not answer within 2 s"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(6));
        let other = stand_in(dir.path(), "other", "echo 'hello'");
        let e = version(&other).unwrap_err();
        assert!(e.contains("no \"etcd Version"), "{e}");
        let fails = stand_in(dir.path(), "fails", "echo boom >&2; exit 3");
        let e = version(&fails).unwrap_err();
        assert!(e.contains("exit status 3") && e.contains("boom"), "{e}");
        assert!(version(&dir.path().join("missing")).is_err());
    }
}
