//! One test per rule a configuration can break; each checks the error names `file:line` and key.

use super::*;

const P: &str = "[program:p]\ncommand=/bin/true\n";

fn check(text: &str, line: usize, key: &str) {
    assert_single_file_error(text, &Env::new(), line, key);
}

#[test]
fn unset_variable() {
    check("[program:p]\ncommand=$NOPE/run\n", 2, "command");
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[program:p]\ncommand=${NOPE}/run\n");
    let errors = errors_of(&main, &Env::new());
    assert!(errors[0].to_string().contains("export NOPE"), "{errors:?}");
}

#[test]
fn unset_variable_in_env_form() {
    check("[supervisord]\npidfile=%(ENV_NOPE)s/x.pid\n", 2, "pidfile");
}

#[test]
fn fractional_size() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", &format!("{P}stdout_logfile_maxbytes=1.5MB\n"));
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 3, "stdout_logfile_maxbytes");
    assert!(errors[0].to_string().contains("e.g. 50MB"), "{errors:?}");
}

#[test]
fn unknown_size_suffix() {
    check(
        "[supervisord]\nlogfile_maxbytes=10TB\n",
        2,
        "logfile_maxbytes",
    );
}

#[test]
fn size_with_space() {
    check(
        &format!("{P}stderr_logfile_maxbytes=10 MB\n"),
        3,
        "stderr_logfile_maxbytes",
    );
}

#[test]
fn bad_bool() {
    check(&format!("{P}autostart=maybe\n"), 3, "autostart");
}

#[test]
fn bad_autorestart() {
    check(&format!("{P}autorestart=sometimes\n"), 3, "autorestart");
}

#[test]
fn bad_startretries() {
    check(&format!("{P}startretries=-1\n"), 3, "startretries");
}

#[test]
fn bad_signal() {
    check(&format!("{P}stopsignal=INT TERMINATE\n"), 3, "stopsignal");
}

#[test]
fn bad_exitcodes() {
    check(&format!("{P}exitcodes=0,x\n"), 3, "exitcodes");
}

#[test]
fn missing_command() {
    check("[program:p]\nautostart=true\n", 1, "command");
}

#[test]
fn empty_command() {
    check("[program:p]\ncommand=\n", 2, "command");
    check("[program:p]\ncommand=\"\"\n", 2, "command");
}

#[test]
fn unbalanced_command_quotes() {
    check("[program:p]\ncommand=/bin/echo \"oops\n", 2, "command");
}

#[test]
fn numprocs_without_process_num() {
    check(&format!("{P}numprocs=2\n"), 3, "numprocs");
    check(
        &format!("{P}numprocs=2\nprocess_name=x\n"),
        4,
        "process_name",
    );
}

#[test]
fn bad_numprocs() {
    check(&format!("{P}numprocs=0\n"), 3, "numprocs");
}

#[test]
fn duplicate_key() {
    check(
        &format!("{P}autostart=true\nautostart=false\n"),
        4,
        "autostart",
    );
}

#[test]
fn duplicate_section_in_one_file() {
    check(&format!("{P}{P}"), 3, "program:p");
}

#[test]
fn duplicate_section_across_files() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=conf.d/*.ini\n");
    let a = fx.write("conf.d/a.ini", P);
    let b = fx.write("conf.d/b.ini", &format!("; b\n{P}"));
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &b, 2, "program:p");
    let first = format!("{}:1", a.display());
    assert!(errors[0].to_string().contains(&first), "{errors:?}");
}

#[test]
fn duplicate_process_name() {
    check(
        "[program:a]\ncommand=x\nprocess_name=same\n[program:b]\ncommand=y\nprocess_name=same\n",
        6,
        "process_name",
    );
}

#[test]
fn invalid_process_name() {
    check(&format!("{P}process_name=a:b\n"), 3, "process_name");
}

#[test]
fn unparsable_include_file() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=*.conf\n");
    let inc = fx.write("x.conf", "[program:p]\ncommand=x\nthis is not ini\n");
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &inc, 3, "cannot parse line");
}

#[test]
fn unreadable_include_file() {
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[include]\nfiles=conf.d/*.ini\n");
    std::fs::create_dir_all(fx.path("conf.d/dir.ini")).expect("mkdir");
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 2, "files");
}

#[test]
fn invalid_utf8_line() {
    let fx = Fixture::new();
    let main = fx.write_bytes("fild.ini", b"[program:p]\ncommand=/bin/\xff\xfe\n");
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 2, "UTF-8");
}

#[test]
fn garbage_line() {
    check(&format!("{P}what is this\n"), 3, "cannot parse line");
}

#[test]
fn key_outside_section() {
    check("command=x\n", 1, "outside any section");
}

#[test]
fn unterminated_brace() {
    check("[program:p]\ncommand=${HOME/x\n", 2, "command");
}

#[test]
fn unterminated_percent() {
    check(&format!("{P}directory=%(here\n"), 3, "directory");
}

#[test]
fn stopasgroup_without_killasgroup() {
    check(
        &format!("{P}stopasgroup=true\nkillasgroup=false\n"),
        4,
        "killasgroup",
    );
}

#[test]
fn huge_format_width() {
    check(&format!("{P}directory=%(here)999999999s\n"), 3, "directory");
}

#[test]
fn bad_umask() {
    check(&format!("{P}umask=0999\n"), 3, "umask");
}

#[test]
fn bad_chmod() {
    check(
        "[unix_http_server]\nfile=/tmp/x.sock\nchmod=rw\n",
        3,
        "chmod",
    );
}

#[test]
fn group_names_unknown_program() {
    check(&format!("{P}[group:g]\nprograms=p,ghost\n"), 4, "programs");
}

#[test]
fn program_in_two_groups() {
    check(
        &format!("{P}[group:g1]\nprograms=p\n[group:g2]\nprograms=p\n"),
        6,
        "programs",
    );
}

#[test]
fn bad_loglevel() {
    check("[supervisord]\nloglevel=loud\n", 2, "loglevel");
}

#[test]
fn unknown_percent_name() {
    check(&format!("{P}directory=/x/%(nope)s\n"), 3, "directory");
}

#[test]
fn program_name_outside_program() {
    check(
        "[supervisord]\npidfile=/run/%(program_name)s.pid\n",
        2,
        "pidfile",
    );
}

#[test]
fn bad_environment_item() {
    check(&format!("{P}environment=A=1,JUNK\n"), 3, "environment");
    check("[supervisord]\nenvironment=A=\"open\n", 2, "environment");
}

#[test]
fn bad_sha_password() {
    check(
        "[unix_http_server]\nfile=/tmp/x.sock\nusername=u\npassword={SHA}nothex\n",
        4,
        "password",
    );
}

#[test]
fn bad_port() {
    check("[inet_http_server]\nport=9001\n", 2, "port");
}

#[test]
fn missing_socket_file() {
    check("[unix_http_server]\nchmod=0700\n", 1, "file");
}

#[test]
fn bad_integer() {
    check("[supervisord]\nminfds=lots\n", 2, "minfds");
    check(&format!("{P}priority=high\n"), 3, "priority");
}

#[test]
fn missing_main_file() {
    let fx = Fixture::new();
    let main = fx.path("absent.ini");
    let errors = errors_of(&main, &Env::new());
    assert!(errors[0].to_string().contains(&main.display().to_string()));
}

#[test]
fn three_errors_reported_together() {
    let fx = Fixture::new();
    let text = "[program:p]\ncommand=/bin/true\nautostart=perhaps\nstartsecs=soon\n\
                stdout_logfile_maxbytes=1.5MB\n";
    let main = fx.write("fild.ini", text);
    let errors = errors_of(&main, &Env::new());
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_error_at(&errors, &main, 3, "autostart");
    assert_error_at(&errors, &main, 4, "startsecs");
    assert_error_at(&errors, &main, 5, "stdout_logfile_maxbytes");
}

#[test]
fn numprocs_errors_reported_once() {
    let text = "[program:p]\ncommand=/bin/true\nnumprocs=3\nprocess_name=p%(process_num)d\n\
                autostart=perhaps\n";
    let fx = Fixture::new();
    let main = fx.write("fild.ini", text);
    assert_eq!(errors_of(&main, &Env::new()).len(), 1);
}

#[test]
fn never_panics_on_odd_input() {
    let inputs: &[&[u8]] = &[
        b"",
        b"[",
        b"]",
        b"=",
        b":",
        b"[program:]\ncommand=x\n",
        b"[program:p]\ncommand=%(",
        b"[program:p]\ncommand=$",
        b"[program:p]\ncommand=${",
        b"[program:p]\ncommand=%(process_num)99999999999999999999d\n",
        b"[program:p]\n  \xff\n\t\tcontinued\n",
        b"\xef\xbb\xbf[supervisord]\nenvironment=\"\n",
        b"[group:]\nprograms=,,,\n",
        b"[include]\nfiles=[\n",
        b"\r\n\r\n[a]\r\nk=v\r\n",
    ];
    for bytes in inputs {
        let fx = Fixture::new();
        let main = fx.write_bytes("fild.ini", bytes);
        let _ = super::super::load(&main, &Env::new());
        let _ = super::super::load_client(&main, &Env::new());
    }
}

#[test]
fn on_change_bounds() {
    check(
        "[supervisord]\non_change=x\non_change_timeout=0\n",
        3,
        "on_change_timeout",
    );
    check(
        "[supervisord]\non_change_timeout=2h\n",
        2,
        "on_change_timeout",
    );
    check(
        "[supervisord]\non_change_timeout=soon\n",
        2,
        "on_change_timeout",
    );
    check("[supervisord]\non_change_queue=0\n", 2, "on_change_queue");
    check(
        "[supervisord]\non_change_queue=10001\n",
        2,
        "on_change_queue",
    );
    check("[supervisord]\non_change_queue=-1\n", 2, "on_change_queue");
}

#[test]
fn bad_etcd_duration() {
    check("[etcd]\nbackup_interval=daily\n", 2, "backup_interval");
}

#[test]
fn times_and_counts_past_their_bounds() {
    // Each once crashed fild at reload (an Instant overflow) or stalled it (a rotation loop).
    check(
        &format!("{P}startsecs=18446744073709551615\n"),
        3,
        "startsecs",
    );
    check(&format!("{P}stopwaitsecs=315360001\n"), 3, "stopwaitsecs");
    check(
        &format!("{P}stdout_logfile_backups=4294967295\n"),
        3,
        "stdout_logfile_backups",
    );
    check(
        "[supervisord]\nlogfile_backups=1001\n",
        2,
        "logfile_backups",
    );
    check(
        "[etcd]\nbackup_interval=213503982334601d\n",
        2,
        "backup_interval",
    );
    check(
        "[etcd]\nbackup_max_age=18446744073709551615s\n",
        2,
        "backup_max_age",
    );
    check("[etcd]\nliveness_window=3651d\n", 2, "liveness_window");
    let fx = Fixture::new();
    let main = fx.write("fild.ini", &format!("{P}startsecs=315360001\n"));
    let errors = errors_of(&main, &Env::new());
    assert!(
        errors[0].to_string().contains("at most 315360000 seconds"),
        "{errors:?}"
    );
}

#[test]
fn cluster_hosts_must_be_http_urls_and_credentials_must_exist() {
    let creds = "username=u\npassword=p\n";
    for bad in [
        "hosts=10.0.0.1:9001\n",
        // https without a ca_file.
        "hosts=https://10.0.0.1:9001\n",
        "hosts=http://10.0.0.1\n",
        "hosts=http://10.0.0.1:0\n",
        "hosts=http://u@10.0.0.1:9001\n",
        "hosts=a=http://x:1 a=http://y:1\n",
        "hosts=http://x:1 http://x:1\n",
        "hosts=b@d=http://x:1\n",
        "hosts=\n",
    ] {
        check(&format!("[cluster]\n{bad}{creds}"), 2, "hosts");
    }
    check("[cluster]\nusername=u\npassword=p\n", 1, "hosts");
    // No credentials: none given, and [inet_http_server]'s password is only a hash.
    check("[cluster]\nhosts=http://x:1\n", 1, "password");
    check(
        "[inet_http_server]\nport=:9001\nusername=u\npassword={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n[cluster]\nhosts=http://x:1\n",
        5,
        "password",
    );
    let fx = Fixture::new();
    let main = fx.write("fild.ini", "[cluster]\nhots=http://x:1\n");
    let errors = errors_of(&main, &Env::new());
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("did you mean `hosts`")),
        "{errors:?}"
    );
}

#[test]
fn inet_tls_files_come_in_pairs_and_must_be_pem() {
    let inet = "[inet_http_server]\nport=127.0.0.1:9001\nusername=u\npassword=p\n";
    let fx = Fixture::new();
    fx.write("garbage.pem", "not a certificate\n");
    fx.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    for (extra, line, key, says) in [
        (
            "tls_cert_file=garbage.pem\n",
            5,
            "tls_cert_file",
            "without tls_key_file",
        ),
        (
            "tls_key_file=garbage.pem\n",
            5,
            "tls_key_file",
            "without tls_cert_file",
        ),
        (
            "tls_cert_file=missing.pem\ntls_key_file=garbage.pem\n",
            5,
            "tls_cert_file",
            "cannot read",
        ),
        (
            "tls_cert_file=garbage.pem\ntls_key_file=garbage.pem\n",
            5,
            "tls_cert_file",
            "no certificate",
        ),
        (
            "tls_cert_file=broken.pem\ntls_key_file=garbage.pem\n",
            5,
            "tls_cert_file",
            "not valid base64",
        ),
    ] {
        let main = fx.write("fild.ini", &format!("{inet}{extra}"));
        let errors = errors_of(&main, &Env::new());
        assert_error_at(&errors, &main, line, key);
        assert!(errors[0].to_string().contains(says), "{says}: {errors:?}");
    }
}

#[test]
fn an_https_host_needs_the_cluster_ca_file() {
    let fx = Fixture::new();
    fx.write("garbage.pem", "no CA here\n");
    let main = fx.write(
        "fild.ini",
        "[cluster]\nhosts=a=https://10.0.0.1:9001 b=http://10.0.0.2:9001\nusername=u\npassword=p\n",
    );
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 2, "hosts");
    assert!(errors[0].to_string().contains("ca_file"), "{errors:?}");
    let main = fx.write(
        "fild.ini",
        "[cluster]\nhosts=https://10.0.0.1:9001\nusername=u\npassword=p\nca_file=garbage.pem\n",
    );
    let errors = errors_of(&main, &Env::new());
    assert_error_at(&errors, &main, 5, "ca_file");
    check(
        "[cluster]\nhosts=https://x:1 http://x:1\nusername=u\npassword=p\n",
        2,
        "hosts",
    );
}

#[test]
fn filc_never_reads_the_listeners_tls_files() {
    // The key may be readable by fild alone; the client's load does not touch either file.
    let fx = Fixture::new();
    let main = fx.write(
        "fild.ini",
        "[inet_http_server]\nport=127.0.0.1:9001\nusername=u\npassword=p\ntls_cert_file=/nonexistent/c.pem\ntls_key_file=/nonexistent/k.pem\n[supervisorctl]\nserverurl=https://127.0.0.1:9001\nca_file=ca.pem\n",
    );
    let c = super::super::load_client(&main, &Env::new()).unwrap();
    assert_eq!(c.inet_http_server.unwrap().tls, None);
    assert_eq!(c.ctl.ca_file, Some(fx.path("ca.pem")));
    assert_error_at(&errors_of(&main, &Env::new()), &main, 5, "tls_cert_file");
}
