//! The keys each section knows, and what an unknown key is: a near miss of a known key (an
//! error that names the key meant) or a key fild has no use for (a warning).
//!
//! The rule: a key is a near miss when its Damerau-Levenshtein distance (insertions,
//! deletions, substitutions and swaps of two neighbours each count one) to a known key of its
//! section is at most [`max_edits`] of that known key's length: none below 4 characters, one
//! up to 7 (a missing or extra trailing `s` among them), two from 8 on. Every other unknown
//! key only warns.

use super::error::{ConfigError, Warning};
use super::ini::Section;

pub(crate) const PROGRAM: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "directory",
    "environment",
    "user",
    "umask",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "restart_when_binary_changed",
    "restart_directory_monitor",
    "restart_file_pattern",
    // Accepted and ignored supervisord (and supd) keys.
    "stdout_capture_maxbytes",
    "stderr_capture_maxbytes",
    "stdout_events_enabled",
    "stderr_events_enabled",
    "stdout_syslog",
    "stderr_syslog",
    "serverurl",
    "depends_on",
    "restartpause",
];
pub(crate) const GROUP: &[&str] = &["programs", "priority"];
pub(crate) const UNIX: &[&str] = &["file", "chmod", "chown", "username", "password"];
pub(crate) const INET: &[&str] = &[
    "port",
    "username",
    "password",
    // fild keys: TLS on the TCP listener.
    "tls_cert_file",
    "tls_key_file",
];
pub(crate) const CTL: &[&str] = &[
    "serverurl",
    "username",
    "password",
    "prompt",
    "history_file",
    // fild key: the CA of an https:// serverurl.
    "ca_file",
];
pub(crate) const INCLUDE: &[&str] = &["files"];
pub(crate) const ETCD: &[&str] = &[
    "backup_dir",
    "backup_interval",
    "backup_keep",
    "backup_max_age",
    "backup_command",
    "liveness_window",
];
pub(crate) const CLUSTER: &[&str] = &["hosts", "username", "password", "ca_file"];
pub(crate) const DAEMON: &[&str] = &[
    "logfile",
    "logfile_maxbytes",
    "logfile_backups",
    "loglevel",
    "pidfile",
    "directory",
    "environment",
    "childlogdir",
    "minfds",
    "umask",
    "strict",
    // fild keys: the alert hook.
    "on_change",
    "on_change_timeout",
    "on_change_queue",
    // Accepted and ignored supervisord keys.
    "nodaemon",
    "silent",
    "minprocs",
    "nocleanup",
    "strip_ansi",
    "identifier",
    "user",
];

/// Every section whose keys are checked, with its known keys.
#[cfg(test)]
pub(crate) const SECTIONS: &[(&str, &[&str])] = &[
    ("program:x", PROGRAM),
    ("group:x", GROUP),
    ("unix_http_server", UNIX),
    ("inet_http_server", INET),
    ("supervisorctl", CTL),
    ("include", INCLUDE),
    ("etcd", ETCD),
    ("cluster", CLUSTER),
    ("supervisord", DAEMON),
];

/// How far a typed key may be from a known key of `len` characters and still be taken for a
/// typo of it. Short keys get no slack: one edit turns a 3-letter word into another word.
pub(crate) fn max_edits(len: usize) -> usize {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The known keys `key` is a near miss of: those at the smallest distance within their
/// [`max_edits`], in `known`'s order; empty when `key` is known or far from every key.
pub(crate) fn near_misses<'k>(key: &str, known: &[&'k str]) -> Vec<&'k str> {
    if known.contains(&key) {
        return Vec::new();
    }
    let close: Vec<(usize, &str)> = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= max_edits(k.chars().count()))
        .collect();
    let best = close.iter().map(|(d, _)| *d).min();
    close
        .into_iter()
        .filter(|(d, _)| Some(*d) == best)
        .map(|(_, k)| k)
        .collect()
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
fn alternatives(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// Check every key of `section` against `known`: a near miss is an error, any other unknown
/// key a warning. The one place this is decided, for every section the loader reads.
pub(crate) fn check(
    section: &Section,
    known: &[&str],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<Warning>,
) {
    for entry in &section.entries {
        if known.contains(&entry.key.as_str()) {
            continue;
        }
        let meant = near_misses(&entry.key, known);
        let message = if meant.is_empty() {
            "unknown key".to_string()
        } else {
            format!("unknown key; did you mean {}?", alternatives(&meant))
        };
        let finding = ConfigError {
            file: section.file.clone(),
            line: entry.line,
            section: Some(section.name.clone()),
            key: Some(entry.key.clone()),
            message,
            hint: None,
        };
        if meant.is_empty() {
            warnings.push(Warning(finding));
        } else {
            errors.push(finding);
        }
    }
}
