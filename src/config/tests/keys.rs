//! Unknown keys: a near miss of a known key is an error naming the key meant, any other
//! unknown key a warning (an error when the load is strict).

use std::path::Path;

use super::*;
use crate::config::ini::{Entry, Section};
use crate::config::keys::{self, SECTIONS, max_edits, near_misses};
use crate::config::{Warning, load, load_client, load_strict};

/// A section of `name` holding `keys`, one a line from line 2.
fn section(name: &str, keys: &[&str]) -> Section {
    Section {
        name: name.to_string(),
        file: "/x/fild.ini".into(),
        line: 1,
        entries: (keys.iter().enumerate())
            .map(|(i, k)| Entry {
                key: k.to_string(),
                value: "1".into(),
                line: i + 2,
            })
            .collect(),
    }
}

/// The errors and warnings `keys::check` gives for `keys` in a section of `name`.
fn check(name: &str, known: &[&str], keys: &[&str]) -> (Vec<ConfigError>, Vec<Warning>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    keys::check(&section(name, keys), known, &mut errors, &mut warnings);
    (errors, warnings)
}

/// The error about `key`, which must say it is unknown and suggest `meant`.
fn assert_suggests(errors: &[ConfigError], main: &Path, line: usize, key: &str, meant: &str) {
    assert_error_at(errors, main, line, key);
    let message = format!("unknown key; did you mean `{meant}`?");
    assert!(
        errors
            .iter()
            .any(|e| e.key.as_deref() == Some(key) && e.message == message),
        "no error '{message}' for {key}: {errors:#?}"
    );
}

#[test]
fn edits_allowed_grow_with_the_key() {
    let allowed: Vec<usize> = (1..=10).map(max_edits).collect();
    assert_eq!(allowed, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
}

#[test]
fn near_misses_of_every_kind_of_edit() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        // The one seen: a dropped trailing s.
        (
            "stdout_logfile_maxbyte",
            keys::PROGRAM,
            &["stdout_logfile_maxbytes"],
        ),
        (
            "stdout_logfile_maxbytess",
            keys::PROGRAM,
            &["stdout_logfile_maxbytes"],
        ),
        (
            "stdout_logfile_max_bytes",
            keys::PROGRAM,
            &["stdout_logfile_maxbytes"],
        ),
        (
            "stderr_logfile_backup",
            keys::PROGRAM,
            &["stderr_logfile_backups"],
        ),
        ("stopsignals", keys::PROGRAM, &["stopsignal"]),
        ("exitcode", keys::PROGRAM, &["exitcodes"]),
        ("comand", keys::PROGRAM, &["command"]),
        ("envirnoment", keys::PROGRAM, &["environment"]),
        ("stopwiatsecs", keys::PROGRAM, &["stopwaitsecs"]),
        ("killasgrop", keys::PROGRAM, &["killasgroup"]),
        ("autostar", keys::PROGRAM, &["autostart"]),
        // Equally near two keys: both are named.
        ("autorstart", keys::PROGRAM, &["autostart", "autorestart"]),
        ("program", keys::GROUP, &["programs"]),
        ("prority", keys::GROUP, &["priority"]),
        ("fil", keys::UNIX, &["file"]),
        ("chmode", keys::UNIX, &["chmod"]),
        ("prot", keys::INET, &["port"]),
        ("passwd", keys::INET, &["password"]),
        ("server_url", keys::CTL, &["serverurl"]),
        ("file", keys::INCLUDE, &["files"]),
        ("backup_keeps", keys::ETCD, &["backup_keep"]),
        ("backup_maxage", keys::ETCD, &["backup_max_age"]),
        ("logfile_maxbyte", keys::DAEMON, &["logfile_maxbytes"]),
        ("loglvl", keys::DAEMON, &["loglevel"]),
        ("strikt", keys::DAEMON, &["strict"]),
    ];
    for (key, known, meant) in cases {
        assert_eq!(near_misses(key, known), *meant, "{key}");
    }
}

#[test]
fn far_and_short_keys_are_no_near_miss() {
    let cases: &[(&str, &[&str])] = &[
        ("bogus_key", keys::PROGRAM),
        ("wibble", keys::PROGRAM),
        // Three edits or more.
        ("stdout_log_maxbytes", keys::PROGRAM),
        ("logfile_maxbytes", keys::PROGRAM),
        // Keys other supervisors know, that fild does not.
        ("restart_signal_when_binary_changed", keys::PROGRAM),
        ("restart_cmd_when_file_changed", keys::PROGRAM),
        ("envfiles", keys::PROGRAM),
        ("buffer_size", keys::PROGRAM),
        ("events", keys::PROGRAM),
        ("socket_owner", keys::PROGRAM),
        // Short words two edits from a 4-letter key; short keys allow one.
        ("host", keys::INET),
        ("mode", keys::UNIX),
        ("uid", keys::DAEMON),
        ("url", keys::CTL),
        ("ab", &["abc"]),
        ("abcd", &["abc"]),
    ];
    for (key, known) in cases {
        assert_eq!(near_misses(key, known), Vec::<&str>::new(), "{key}");
    }
}

#[test]
fn every_known_key_of_every_section_is_accepted() {
    for (name, known) in SECTIONS {
        let (errors, warnings) = check(name, known, known);
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "[{name}]: {errors:?} {warnings:?}"
        );
        for key in *known {
            assert!(near_misses(key, known).is_empty(), "[{name}] {key}");
        }
    }
}

/// A key right in one section and put in another warns, except `file` and `files` (of
/// `[unix_http_server]` and `[include]`), which are a near miss of each other.
#[test]
fn a_key_of_another_section_only_warns() {
    let mut near = Vec::new();
    for (name, known) in SECTIONS {
        for (other, theirs) in SECTIONS {
            let strangers: Vec<&str> = theirs
                .iter()
                .copied()
                .filter(|k| !known.contains(k))
                .collect();
            let (errors, warnings) = check(name, known, &strangers);
            assert_eq!(errors.len() + warnings.len(), strangers.len());
            for e in errors {
                near.push(format!("[{other}] {} in [{name}]", e.key.unwrap()));
            }
        }
    }
    assert_eq!(
        near,
        [
            "[include] files in [unix_http_server]",
            "[unix_http_server] file in [include]"
        ]
    );
}

#[test]
fn a_near_miss_is_an_error_in_every_section() {
    let cases = [
        (
            "[program:a]\ncommand=a\nstdout_logfile_maxbyte=10MB\n",
            3,
            "stdout_logfile_maxbytes",
        ),
        (
            "[program:a]\ncommand=a\n[group:g]\nprograms=a\nprority=1\n",
            5,
            "priority",
        ),
        (
            "[unix_http_server]\nfile=/tmp/x.sock\nchmode=0600\n",
            3,
            "chmod",
        ),
        (
            "[inet_http_server]\nport=127.0.0.1:9001\nusernme=u\n",
            3,
            "username",
        ),
        (
            "[supervisorctl]\nserverurl=unix:///tmp/x.sock\nhistory_files=h\n",
            3,
            "history_file",
        ),
        ("[include]\nfiles=none/*.ini\nfile=x.ini\n", 3, "files"),
        ("[etcd]\nbackup_keeps=3\n", 2, "backup_keep"),
        (
            "[supervisord]\nloglevel=info\nlogfile_backup=3\n",
            3,
            "logfile_backups",
        ),
    ];
    for (text, line, meant) in cases {
        let fx = Fixture::new();
        let main = fx.write("fild.ini", text);
        let errors = errors_of(&main, &Env::new());
        let key = text
            .lines()
            .nth(line - 1)
            .unwrap()
            .split('=')
            .next()
            .unwrap();
        assert_suggests(&errors, &main, line, key, meant);
        // Nothing but the near miss.
        assert_eq!(errors.len(), 1, "{errors:#?}");
    }
}

#[test]
fn a_near_miss_in_an_included_file_names_that_file() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=apps/*.ini\n");
    let app = fx.write("apps/a.ini", "[program:a]\ncommand=a\nstartsec=3\n");
    let errors = errors_of(&main, &Env::new());
    assert_suggests(&errors, &app, 3, "startsec", "startsecs");
}

#[test]
fn a_far_key_warns_and_strict_makes_it_an_error() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[program:a]\ncommand=a\nbogus_key=1\n");
    let c = load(&main, &Env::new()).expect("a far key only warns");
    let shown: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    let place = main.display();
    assert_eq!(
        shown,
        [format!(
            "{place}:3: [program:a] bogus_key: unknown key (ignored)"
        )]
    );
    let errors = load_strict(&main, &Env::new()).expect_err("strict").0;
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [format!("{place}:3: [program:a] bogus_key: unknown key")]
    );
}

#[test]
fn strict_turns_every_warning_into_an_error() {
    let fx = Fixture::new();
    let text = "[supervisord]\nfrobnicate=1\n[program:a]\ncommand=a\n[eventlistener:x]\n\
                command=y\n[mystery]\nk=v\n";
    let main = fx.write("fild.ini", text);
    let c = load(&main, &Env::new()).expect("warnings only");
    let errors = load_strict(&main, &Env::new()).expect_err("strict").0;
    assert_eq!(errors.len(), 3);
    assert_eq!(errors.len(), c.warnings.len());
    for line in [2, 5, 7] {
        assert!(errors.iter().any(|e| e.line == line), "{line}: {errors:#?}");
    }
}

#[test]
fn strict_in_the_config_makes_every_load_strict() {
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[supervisord]\nstrict=true\n[program:a]\ncommand=a\nbogus_key=1\n",
    );
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 5, "bogus_key");
    let hint = errors[0].hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("strict=true"),
        "the error says why: {errors:#?}"
    );
    fx.write(
        "fild.ini",
        "[supervisord]\nstrict=true\n[program:a]\ncommand=a\n",
    );
    let c = load(&main, &Env::new()).expect("nothing unknown");
    assert!(c.daemon.strict);
}

#[test]
fn filc_refuses_a_near_miss_in_its_own_sections() {
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[supervisorctl]\nserverurll=unix:///tmp/x.sock\n[program:a]\nbogus=1\n",
    );
    let errors = load_client(&main, &Env::new()).expect_err("near miss").0;
    assert_suggests(&errors, &main, 2, "serverurll", "serverurl");
    assert_eq!(
        errors.len(),
        1,
        "program sections are not filc's: {errors:#?}"
    );
}

#[test]
fn fil_miner_files_pass_strict() {
    let (_fx, main, env) = super::valid::fil_miner();
    let c = load_strict(&main, &env).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.programs.len(), 2);
}
