//! Configurations that must load, and the values they must give.

use std::path::PathBuf;

use super::*;
use crate::config::*;

/// fil-miner's etc/supd/supd.ini as its repository has it (its comments, its ` = ` in the
/// last two sections), the password made up.
const MAIN: &str = r#"## Not need root auth
#[inet_http_server]
#port=127.0.0.1:9002
#username="supd"
#password="3bb0a1c2d9e8f7"
#
#[supervisorctl]
#serverurl=http://127.0.0.1:9002
#username="supd"
#password="3bb0a1c2d9e8f7"

# Need root auth when deploy in root
[unix_http_server]
file=$PRJ_ROOT/var/supd/supd.sock
username="supd"
password="3bb0a1c2d9e8f7"

[supervisorctl]
serverurl=unix://$PRJ_ROOT/var/supd/supd.sock
username="supd"
password="3bb0a1c2d9e8f7"

# for supd
[supervisord]
pidfile = $PRJ_ROOT/var/supd.pid
logfile = /dev/stdout,$PRJ_ROOT/var/log/supd.log
logfile_maxbytes = 50MB
logfile_backups = 10
loglevel = info

[include]
files = $PRJ_ROOT/etc/supd/bin/*.ini $PRJ_ROOT/etc/supd/apps/*.ini
"#;

/// A program template of fil-miner's etc/supd/apps/tpl/ (etcd-N.ini; every template there,
/// lotus-* and ipfs-* too, uses these keys and no others).
fn etcd_program(n: u32, comment: bool) -> String {
    let comment = if comment { "# restart policy\n" } else { "" };
    format!(
        r#"[program:etcd-{n}]
environment=GIN_MODE="release"
directory=$PRJ_ROOT/apps/lotus
command=./etcd-{n}.sh
autostart=false
startsecs=3
startretries=3
{comment}autorestart=true
exitcodes=0,2
stopsignal=TERM
stopwaitsecs=10
stopasgroup=true
killasgroup=true
stdout_logfile=$PRJ_ROOT/var/log/etcd-{n}.logfile.stdout
stdout_logfile_maxbytes=500MB
stdout_logfile_backups=10
stderr_logfile=$PRJ_ROOT/var/log/etcd-{n}.logfile.stderr
stderr_logfile_maxbytes=500MB
stderr_logfile_backups=10

"#
    )
}

fn load_ok(path: &std::path::Path, env: &Env) -> Config {
    match load(path, env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// fil-miner's main file with two program files, one in each directory it includes.
pub(super) fn fil_miner() -> (Fixture, PathBuf, Env) {
    let fx = Fixture::new();
    let main = fx.write("etc/supd/supd.ini", MAIN);
    fx.write("etc/supd/bin/etcd-0.ini", &etcd_program(0, false));
    fx.write("etc/supd/apps/etcd-1.ini", &etcd_program(1, true));
    let prj = fx.root().display().to_string();
    let env = env(&[("PRJ_ROOT", &prj)]);
    (fx, main, env)
}

#[test]
fn fil_miner_main_sections() {
    let (fx, main, env) = fil_miner();
    let root = fx.root();
    let c = load_ok(&main, &env);
    assert_eq!(c.path, main);
    let unix = c.unix_http_server.expect("unix server");
    assert_eq!(unix.file, root.join("var/supd/supd.sock"));
    assert_eq!(unix.chmod, 0o600);
    let auth = unix.auth.expect("auth");
    assert_eq!(auth.username, "supd");
    assert_eq!(auth.password, Password::Plain("3bb0a1c2d9e8f7".into()));
    assert_eq!(c.inet_http_server, None);
    let url = format!("unix://{}/var/supd/supd.sock", root.display());
    assert_eq!(c.ctl.serverurl.as_deref(), Some(url.as_str()));
    assert_eq!(c.ctl.username.as_deref(), Some("supd"));
    assert_eq!(c.ctl.password.as_deref(), Some("3bb0a1c2d9e8f7"));
    let d = &c.daemon;
    assert_eq!(d.pidfile, root.join("var/supd.pid"));
    let log = LogSink::File(root.join("var/log/supd.log"));
    assert_eq!(d.logfile, vec![LogSink::Stdout, log]);
    assert_eq!((d.logfile_maxbytes, d.logfile_backups), (50 << 20, 10));
    assert_eq!(d.loglevel, "info");
    assert_eq!(d.childlogdir, PathBuf::from("/tmp"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn fil_miner_programs() {
    let (fx, main, env) = fil_miner();
    let root = fx.root();
    let c = load_ok(&main, &env);
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["etcd-0", "etcd-1"], "bin/*.ini before apps/*.ini");
    for (n, p) in c.programs.iter().enumerate() {
        let lotus = root.join("apps/lotus");
        assert_eq!(p.program, format!("etcd-{n}"));
        assert_eq!(p.group, p.program);
        let argv0 = lotus.join(format!("etcd-{n}.sh")).display().to_string();
        assert_eq!(p.command, vec![argv0]);
        assert_eq!(p.directory.as_ref(), Some(&lotus));
        assert_eq!(p.environment, vec![("GIN_MODE".into(), "release".into())]);
        assert!(!p.autostart);
        assert_eq!(p.startsecs, 3);
        assert_eq!(p.startretries, StartRetries::Count(3));
        assert_eq!(p.autorestart, AutoRestart::Always);
        assert_eq!(p.exitcodes, vec![0, 2]);
        assert_eq!(p.stopsignals, vec![libc::SIGTERM]);
        assert_eq!(p.stopwaitsecs, 10);
        assert!(p.stopasgroup && p.killasgroup && !p.redirect_stderr);
        let out = root.join(format!("var/log/etcd-{n}.logfile.stdout"));
        let expected = LogSpec {
            target: LogTarget::File(out),
            maxbytes: 500 << 20,
            backups: 10,
        };
        assert_eq!(p.stdout, expected);
        assert_eq!(p.stderr.maxbytes, 500 << 20);
        assert_eq!(p.priority, 999);
    }
}

#[test]
fn fil_miner_client() {
    let (fx, main, env) = fil_miner();
    let client = load_client(&main, &env).expect("client");
    let unix = client.unix_http_server.expect("unix");
    assert_eq!(unix.file, fx.root().join("var/supd/supd.sock"));
    assert_eq!(client.ctl.username.as_deref(), Some("supd"));
}

#[test]
fn program_defaults() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[program:web]\ncommand=server --port 80\n");
    let c = load_ok(&main, &Env::new());
    let p = &c.programs[0];
    assert_eq!(p.command, vec!["server", "--port", "80"]);
    assert_eq!(p.name, "web");
    assert_eq!(p.group, "web");
    assert!(p.autostart);
    assert_eq!(p.autorestart, AutoRestart::Unexpected);
    assert_eq!(p.startsecs, 1);
    assert_eq!(p.startretries, StartRetries::Count(3));
    assert_eq!(p.exitcodes, vec![0]);
    assert_eq!(p.stopsignals, vec![libc::SIGTERM]);
    assert!(!p.stopasgroup && !p.killasgroup);
    let auto = LogTarget::File(auto_log_path(&c.daemon, "web", "stdout"));
    assert_eq!(p.stdout.target, auto);
    assert_eq!((p.stdout.maxbytes, p.stdout.backups), (50 << 20, 10));
    let auto = LogTarget::File(auto_log_path(&c.daemon, "web", "stderr"));
    assert_eq!(p.stderr.target, auto);
    let LogTarget::File(path) = &p.stdout.target else {
        unreachable!()
    };
    let shown = path.display().to_string();
    assert!(
        shown.starts_with("/tmp/web-stdout---fild-") && shown.ends_with(".log"),
        "{shown}"
    );
    assert_eq!(c.daemon.pidfile, fx.path("fild.pid"));
    assert_eq!(c.daemon.logfile, vec![LogSink::File(fx.path("fild.log"))]);
    assert_eq!(c.daemon.minfds, 1024);
    assert_eq!(c.unix_http_server, None);
}

#[test]
fn expansion_forms() {
    let fx = Fixture::new();
    let text = "[supervisord]\nenvironment=BASE=\"$ROOT/base\",LOGS=${BASE}/logs\n\
                childlogdir=%(ENV_LOGS)s\n\
                [program:app]\ncommand=/bin/echo $$HOME %%d %(program_name)s\n\
                directory=%(here)s/work\nstdout_logfile=$LOGS/%(group_name)s.log\n\
                stderr_logfile=NONE\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &env(&[("ROOT", "/r")]));
    assert_eq!(c.daemon.childlogdir, PathBuf::from("/r/base/logs"));
    let env_items = vec![
        ("BASE".to_string(), "/r/base".to_string()),
        ("LOGS".to_string(), "/r/base/logs".to_string()),
    ];
    assert_eq!(c.daemon.environment, env_items);
    let p = &c.programs[0];
    assert_eq!(p.command, vec!["/bin/echo", "$HOME", "%d", "app"]);
    assert_eq!(p.directory, Some(fx.path("work")));
    assert_eq!(p.environment, env_items);
    assert_eq!(
        p.stdout.target,
        LogTarget::File("/r/base/logs/app.log".into())
    );
    assert_eq!(p.stderr.target, LogTarget::Discard);
}

#[test]
fn here_is_the_including_files_directory() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=conf.d/*.ini\n");
    fx.write("conf.d/a.ini", "[program:a]\ncommand=%(here)s/run.sh\n");
    let c = load_ok(&main, &Env::new());
    let expected = fx.path("conf.d/run.sh").display().to_string();
    assert_eq!(c.programs[0].command, vec![expected]);
}

#[test]
fn relative_command_without_directory_uses_file_directory() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[program:a]\ncommand=bin/../run.sh -x\n");
    let c = load_ok(&main, &Env::new());
    let expected = fx.path("run.sh").display().to_string();
    assert_eq!(c.programs[0].command, vec![expected, "-x".to_string()]);
}

#[test]
fn numprocs_make_one_spec_each() {
    let fx = Fixture::new();
    let text = "[program:w]\ncommand=/bin/w --id %(process_num)d\nnumprocs=3\nnumprocs_start=1\n\
                process_name=%(program_name)s-%(process_num)02d\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["w-01", "w-02", "w-03"]);
    assert_eq!(c.programs[2].command, vec!["/bin/w", "--id", "3"]);
    assert!(
        c.programs
            .iter()
            .all(|p| p.program == "w" && p.group == "w")
    );
}

#[test]
fn groups_set_group_names() {
    let fx = Fixture::new();
    let text = "[program:a]\ncommand=a\n[program:b]\ncommand=b --group %(group_name)s\n\
                [program:c]\ncommand=c\n[group:etcd]\nprograms=a, b,\npriority=5\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    let groups: Vec<&str> = c.programs.iter().map(|p| p.group.as_str()).collect();
    assert_eq!(groups, ["etcd", "etcd", "c"]);
    assert_eq!(c.programs[1].command, vec!["b", "--group", "etcd"]);
}

#[test]
fn comments_and_continuations() {
    let fx = Fixture::new();
    let text = "; header comment\n# another\n[program:a] ; inline on header\n\
                command=/bin/sh -c 'echo a;b' ; inline comment\n\
                environment=\n    A=1,\n    ; comment inside\n    B=\"x, y\",\n    C='z'\n\
                stopsignal=INT\n  TERM\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    let p = &c.programs[0];
    assert_eq!(p.command, vec!["/bin/sh", "-c", "echo a;b"]);
    let expected: Vec<(String, String)> = [("A", "1"), ("B", "x, y"), ("C", "z")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(p.environment, expected);
    assert_eq!(p.stopsignals, vec![libc::SIGINT, libc::SIGTERM]);
}

#[test]
fn environment_quoting_with_commas() {
    let fx = Fixture::new();
    let text = "[supervisord]\nenvironment=GLOBAL=1\n[program:a]\ncommand=a\n\
                environment= K=\"a, b\" , L='c,d',M=plain ,GLOBAL=2\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    let got: Vec<String> = c.programs[0]
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(got, ["GLOBAL=1", "K=a, b", "L=c,d", "M=plain", "GLOBAL=2"]);
}

#[test]
fn sizes_and_numbers() {
    let fx = Fixture::new();
    let text = "[supervisord]\nlogfile_maxbytes=1M\nminfds=4096\numask=022\n\
                [program:a]\ncommand=a\nstdout_logfile_maxbytes=500mb\n\
                stderr_logfile_maxbytes=10k\nstdout_logfile_backups=0\nstartretries=Forever\n\
                autorestart=unexpected\nexitcodes=0\numask=002\npriority=-5\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    assert_eq!(c.daemon.logfile_maxbytes, 1 << 20);
    assert_eq!(c.daemon.minfds, 4096);
    assert_eq!(c.daemon.umask, Some(0o22));
    let p = &c.programs[0];
    assert_eq!(p.stdout.maxbytes, 500 << 20);
    assert_eq!(p.stderr.maxbytes, 10 << 10);
    assert_eq!(p.stdout.backups, 0);
    assert_eq!(p.startretries, StartRetries::Forever);
    assert_eq!(p.umask, Some(0o2));
    assert_eq!(p.priority, -5);
    assert_eq!(parse_size("0"), Ok(0));
    assert!(parse_size("1.5MB").unwrap_err().contains("50MB"));
    assert_eq!(parse_signal("SIGKILL"), Ok(9));
}

#[test]
fn sha_password_and_quotes() {
    let fx = Fixture::new();
    let sha = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
    let text = format!(
        "[unix_http_server]\nfile=\"/tmp/f.sock\"\nchmod=0700\nchown=fild:adm\n\
         username=\"admin\"\npassword={{SHA}}{sha}\n\
         [inet_http_server]\nport=127.0.0.1:9002\nusername=u\n"
    );
    let main = fx.write("fild.ini", &text);
    let c = load_ok(&main, &Env::new());
    let unix = c.unix_http_server.expect("unix");
    assert_eq!(unix.file, PathBuf::from("/tmp/f.sock"));
    assert_eq!(unix.chmod, 0o700);
    assert_eq!(unix.chown, Some(("fild".into(), Some("adm".into()))));
    let auth = unix.auth.expect("auth");
    assert_eq!(auth.username, "admin");
    assert_eq!(auth.password, Password::Sha1Hex(sha.to_ascii_lowercase()));
    let inet = c.inet_http_server.expect("inet");
    assert_eq!(inet.port, "127.0.0.1:9002");
    assert_eq!(inet.auth, None, "auth needs both username and password");
}

#[test]
fn find_config_order() {
    let fx = Fixture::new();
    let cwd = fx.path("cwd");
    std::fs::create_dir_all(&cwd).expect("mkdir");
    let prj = fx.root().display().to_string();
    let explicit = fx.write("explicit.ini", "");
    let env_all = env(&[
        ("FILD_CONFIG", &explicit.display().to_string()),
        ("PRJ_ROOT", &prj),
    ]);
    let env_prj = env(&[("PRJ_ROOT", &prj)]);
    if !std::path::Path::new("/etc/fild/fild.ini").exists() {
        assert_eq!(find_config(&env_prj, &cwd), None);
    }
    let local = fx.write("cwd/fild.ini", "");
    assert_eq!(find_config(&env_prj, &cwd), Some(local.clone()));
    let supd = fx.write("etc/supd/supd.ini", "");
    assert_eq!(find_config(&env_prj, &cwd), Some(supd));
    let fild = fx.write("etc/fild/fild.ini", "");
    assert_eq!(find_config(&env_prj, &cwd), Some(fild));
    assert_eq!(find_config(&env_all, &cwd), Some(explicit));
    assert_eq!(find_config(&Env::new(), &cwd), Some(local));
}

#[test]
fn load_client_ignores_broken_programs() {
    let fx = Fixture::new();
    let text = "[supervisorctl]\nserverurl=unix:///tmp/x.sock\n\
                [program:broken]\ncommand=$NOT_SET\nautostart=maybe\ngarbage line\n\
                [include]\nfiles=missing/*.ini\n";
    let main = fx.write("fild.ini", text);
    let client = load_client(&main, &Env::new()).expect("client loads");
    assert_eq!(client.ctl.serverurl.as_deref(), Some("unix:///tmp/x.sock"));
    assert!(load(&main, &Env::new()).is_err());
}

#[test]
fn load_client_reports_its_own_sections() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[supervisorctl]\nserverurl=$NOT_SET\n");
    let errors = load_client(&main, &Env::new()).expect_err("unset var").0;
    assert_error_at(&errors, &main, 2, "serverurl");
}

#[test]
fn unknown_keys_and_sections_warn() {
    let fx = Fixture::new();
    let text = "[supervisord]\nnodaemon=true\nfrobnicate=1\n[program:a]\ncommand=a\nwibble=2\n\
                depends_on=b\n[eventlistener:x]\ncommand=y\n[mystery]\nk=v\n";
    let main = fx.write("fild.ini", text);
    let c = load_ok(&main, &Env::new());
    let file = main.display();
    let expected = [
        format!("{file}:8: [eventlistener:x] not supported (ignored)"),
        format!("{file}:10: [mystery] unknown section (ignored)"),
        format!("{file}:3: [supervisord] frobnicate: unknown key (ignored)"),
        format!("{file}:6: [program:a] wibble: unknown key (ignored)"),
    ];
    let shown: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(shown, expected);
}

#[test]
fn include_glob_matching_nothing_is_fine() {
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[include]\nfiles=none/*.ini other.ini\n[program:a]\ncommand=a\n",
    );
    let c = load_ok(&main, &Env::new());
    assert_eq!(c.programs.len(), 1);
}

#[test]
fn includes_sorted_within_each_glob() {
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[program:m]\ncommand=m\n[include]\nfiles=d/*.ini\n",
    );
    fx.write("d/b.ini", "[program:b]\ncommand=b\n");
    fx.write("d/a.ini", "[program:a]\ncommand=a\n[include]\nfiles=x\n");
    let c = load_ok(&main, &Env::new());
    let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["m", "a", "b"]);
    assert_eq!(
        c.warnings.len(),
        1,
        "nested [include] warns: {:?}",
        c.warnings
    );
}

#[test]
fn group_sections_in_several_files_merge() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=apps/*.ini\n");
    for n in 0..3 {
        fx.write(
            &format!("apps/m{n}.ini"),
            &format!("[program:m{n}]\ncommand=sleep 1\n\n[group:g]\nprograms=m{n}\n"),
        );
    }
    let cfg = load(&main, &Env::new()).expect("loads");
    let groups: Vec<&str> = cfg.programs.iter().map(|p| p.group.as_str()).collect();
    assert_eq!(groups, vec!["g", "g", "g"]);
}

#[test]
fn etcd_section_defaults_and_values() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[supervisord]\npidfile=/run/x/fild.pid\n");
    let cfg = load(&main, &Env::new()).expect("loads");
    assert_eq!(cfg.etcd.backup_dir, PathBuf::from("/run/x/backups/etcd"));
    assert_eq!(cfg.etcd.backup_interval.as_secs(), 86400);
    assert_eq!(cfg.etcd.backup_keep, 7);
    assert_eq!(cfg.etcd.backup_max_age.as_secs(), 7 * 86400);
    let main = fx.write(
        "b.ini",
        "[etcd]\nbackup_dir=/b\nbackup_interval=90m\nbackup_keep=3\nbackup_max_age=2d\nbackup_command=cp $$1 /x\nliveness_window=0\n",
    );
    let cfg = load(&main, &Env::new()).expect("loads");
    assert_eq!(cfg.etcd.backup_dir, PathBuf::from("/b"));
    assert_eq!(cfg.etcd.backup_interval.as_secs(), 5400);
    assert_eq!(cfg.etcd.backup_keep, 3);
    assert_eq!(cfg.etcd.backup_max_age.as_secs(), 2 * 86400);
    assert_eq!(cfg.etcd.backup_command.as_deref(), Some("cp $1 /x"));
    assert!(cfg.etcd.liveness_window.is_zero());
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn on_change_defaults_and_values() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[supervisord]\n");
    let cfg = load(&main, &Env::new()).expect("loads");
    assert_eq!(cfg.daemon.on_change, OnChange::default());
    assert_eq!(cfg.daemon.on_change.timeout.as_secs(), 30);
    assert_eq!(cfg.daemon.on_change.queue, 64);
    let main = fx.write(
        "b.ini",
        "[supervisord]\non_change=curl -s --data-binary @- http://127.0.0.1:1/$${HOSTNAME}\n\
         on_change_timeout=2m\non_change_queue=10000\n",
    );
    let cfg = load(&main, &Env::new()).expect("loads");
    let hook = &cfg.daemon.on_change;
    assert_eq!(
        hook.command.as_deref(),
        Some("curl -s --data-binary @- http://127.0.0.1:1/${HOSTNAME}")
    );
    assert_eq!((hook.timeout.as_secs(), hook.queue), (120, 10_000));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn the_largest_times_and_counts_are_accepted() {
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[program:p]\ncommand=/bin/true\nstartsecs=315360000\nstopwaitsecs=0\nstdout_logfile_backups=1000\n\
         [etcd]\nbackup_interval=3650d\nbackup_max_age=87600h\n",
    );
    let c = load_ok(&main, &Env::new());
    assert_eq!(c.programs[0].startsecs, 315_360_000);
    assert_eq!(c.etcd.backup_interval.as_secs(), 315_360_000);
}

#[test]
fn cluster_lists_the_hosts_and_takes_the_inet_credentials_by_default() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[supervisord]\npidfile=/run/x/fild.pid\n");
    assert_eq!(load_ok(&main, &Env::new()).cluster, None);
    let main = fx.write(
        "c.ini",
        "[inet_http_server]\nport=10.0.0.2:9001\nusername=fild\npassword=pw\n\
         [cluster]\nhosts=h0=http://10.0.0.1:9001, h1=http://10.0.0.2:9001\n  http://10.0.0.3:9001/\n",
    );
    let c = load_ok(&main, &Env::new()).cluster.unwrap();
    let hosts: Vec<(&str, &str, bool)> = c
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.url.as_str(), h.own))
        .collect();
    assert_eq!(
        hosts,
        [
            ("h0", "http://10.0.0.1:9001", false),
            ("h1", "http://10.0.0.2:9001", true),
            ("10.0.0.3:9001", "http://10.0.0.3:9001", false),
        ]
    );
    assert_eq!((c.username.as_str(), c.password.as_str()), ("fild", "pw"));
    let main = fx.write(
        "d.ini",
        "[cluster]\nhosts=http://a:1\nusername=peer\npassword=secret\n",
    );
    let c = load_ok(&main, &Env::new()).cluster.unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("peer", "secret")
    );
}
