//! What fild reports about each member is what etcd really runs: the full argv in
//! `/proc/<pid>/cmdline` of every running member (and the gateway) equals the argv in
//! `GET /v1/etcd/members`, in three environments fild may start in:
//! - exactly the systemd unit's: `env -i` with only its `Environment=` lines, a minimal PATH,
//!   and its `ExecStart=`;
//! - a shell after `. env.sh`;
//! - TLS files, host names and extra flags set.
//!
//! Each runs inside a network namespace the test creates, with PRJ_ROOT (and so the data,
//! at the kit's default place) on /dev/shm, so the default ports and paths touch nothing else.
//! The kit is committed in the test's own git repository first; after the run, nothing it
//! ships has changed.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::etcd::*;
use common::netns::Ns;
use common::pki::make_pki;
use common::*;
use fild::api::{EtcdMembers, ProcessState};

const UP: Duration = Duration::from_secs(60);
const PROGRAMS: [&str; 4] = ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"];
/// systemd's default PATH, as a unit without Environment=PATH gets it.
const UNIT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A deployment root on /dev/shm with the kit committed, bin/ holding the binaries under test
/// (as the Quick start installs them), and the members and gateway activated.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(name: &str) -> Root {
        let dir = tempfile::Builder::new()
            .prefix(&format!("fild-argv-{name}-"))
            .tempdir_in("/dev/shm")
            .unwrap();
        lay_out_kit(dir.path());
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        for (name, path) in [("fild", FILD), ("filc", FILC)] {
            std::os::unix::fs::symlink(path, dir.path().join("bin").join(name)).unwrap();
        }
        for p in PROGRAMS {
            activate(dir.path(), p);
        }
        Root { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("etc/fild/fild.ini")
    }
}

/// The unit's `Environment=` pairs and `ExecStart=` argv, rendered for `root`.
fn unit(root: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let text = std::fs::read_to_string(Path::new(REPO).join("systemd/fild.service"))
        .unwrap()
        .replace("@PRJ_ROOT@", &root.display().to_string());
    let mut env = Vec::new();
    let mut exec = Vec::new();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("Environment=") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
        } else if let Some(cmd) = line.strip_prefix("ExecStart=") {
            exec = cmd.split_whitespace().map(String::from).collect();
        }
    }
    assert!(!env.is_empty() && !exec.is_empty(), "{text}");
    (env, exec)
}

/// fild started by `argv` in the namespace, in a mount namespace of its own: with `hosts`,
/// its /etc is an overlay (upper layer in the test's root) whose `hosts` gains those lines,
/// as an operator's /etc/hosts names the members; nothing outside sees it. Stopped by pid
/// (SIGTERM, then SIGKILL) on drop.
struct Running {
    child: Child,
    root: PathBuf,
}

impl Running {
    fn start(ns: &Ns, root: &Root, argv: &[String], hosts: Option<&str>) -> Running {
        let stderr = std::fs::File::create(root.path().join("fild.stderr")).unwrap();
        let mut script = String::from("set -e\n");
        if let Some(lines) = hosts {
            let w = root.path().join("var/etc-overlay");
            script.push_str(&format!(
                "mkdir -p {w}/upper {w}/work\nmount -t overlay overlay -o lowerdir=/etc,upperdir={w}/upper,workdir={w}/work /etc\nprintf '%s\\n' '{lines}' >> /etc/hosts\n",
                w = w.display()
            ));
        }
        script.push_str("exec \"$@\"\n");
        let mut cmd = ns.command("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args(argv);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start fild in the namespace");
        let r = Running {
            child,
            root: root.path().to_path_buf(),
        };
        assert!(
            wait_until(Duration::from_secs(10), || r
                .filc(&["version"])
                .status
                .success()),
            "fild did not answer: {}",
            std::fs::read_to_string(root.path().join("fild.stderr")).unwrap_or_default()
        );
        r
    }

    /// filc in fild's network and mount namespaces (its etcd checks reach the members there,
    /// by the names fild's /etc/hosts gives), under fild's root directory (entering a mount
    /// namespace would otherwise leave a chroot), with only PRJ_ROOT (the config refers to
    /// it) from the outside.
    fn filc(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--target={}", self.child.id()))
            .args(["--mount", "--net", "--root", "--"])
            .arg(FILC)
            .arg("-c")
            .arg(self.root.join("etc/fild/fild.ini"))
            .args(args)
            .env_clear()
            .env("PATH", UNIT_PATH)
            .env("PRJ_ROOT", &self.root)
            .stdin(Stdio::null())
            .output()
            .expect("run filc")
    }

    fn filc_ok(&self, args: &[&str]) -> String {
        let o = self.filc(args);
        assert!(
            o.status.success(),
            "filc {args:?}: {}{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The last lines of each program's stderr log, for a failure's message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for p in PROGRAMS {
            let text = std::fs::read_to_string(self.root.join(format!("var/log/{p}.stderr.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            out.push_str(&format!("\n----- {p} stderr (last lines) -----\n"));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn members(&self) -> EtcdMembers {
        let (code, body) = raw(
            &self.root.join("var/fild/fild.sock"),
            b"GET /v1/etcd/members HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(code, Some(200), "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        signal(pid, libc::SIGTERM);
        if !wait_until(Duration::from_secs(40), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            signal(pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Start everything, wait for a healthy cluster as fild sees it, and compare every running
/// member's and the gateway's argv with what fild reports. Returns the report.
fn up_and_compare(f: &Running) -> EtcdMembers {
    f.filc_ok(&["start", "etcd:*"]);
    f.filc_ok(&["start", "etcd-gw"]);
    let mut last = String::new();
    let healthy = wait_until(UP, || {
        let o = f.filc(&["etcd", "status"]);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o.status.success()
    });
    assert!(
        healthy,
        "cluster not healthy as fild sees it:\n{last}{}",
        f.logs()
    );
    let m = f.members();
    assert!(m.problems.is_empty(), "{:?}", m.problems);
    assert_eq!(m.members.len(), 3, "{m:?}");
    for member in &m.members {
        assert_eq!(member.state, ProcessState::Running, "{member:?}");
        assert_eq!(
            argv_of(member.pid),
            member.argv,
            "{}: /proc/{}/cmdline differs from what fild reports",
            member.program,
            member.pid
        );
        assert!(
            Path::new(&member.data_dir).join("member").is_dir(),
            "{}: etcd's data is not in the reported data dir {}",
            member.program,
            member.data_dir
        );
    }
    let gw = m.gateway.clone().expect("the gateway");
    let procs: Vec<fild::api::ProcessInfo> =
        serde_json::from_str(&f.filc_ok(&["status", "--json"])).unwrap();
    let gw_pid = procs.iter().find(|p| p.name == "etcd-gw").unwrap().pid;
    assert_eq!(argv_of(gw_pid), gw.argv, "the gateway's argv");
    m
}

#[test]
fn under_exactly_the_units_environment() {
    require_etcd();
    let _slot = Slot::acquire();
    let ns = Ns::new("av");
    let root = Root::new("unit");
    let (env, exec) = unit(root.path());
    let mut argv = vec!["env".to_string(), "-i".into(), format!("PATH={UNIT_PATH}")];
    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend(exec);
    let f = Running::start(&ns, &root, &argv, None);
    let m = up_and_compare(&f);
    // No ETCD_DATA_ROOT anywhere: the kit's default, under PRJ_ROOT.
    for (n, member) in m.members.iter().enumerate() {
        assert_eq!(
            member.data_dir,
            root.path()
                .join(format!("var/etcd/boot{n}.etcd"))
                .display()
                .to_string()
        );
    }
    drop(f);
    assert_kit_clean(root.path(), "a run under the unit's environment");
}

#[test]
fn in_a_shell_after_env_sh() {
    require_etcd();
    let _slot = Slot::acquire();
    let ns = Ns::new("as");
    let root = Root::new("envsh");
    let argv: Vec<String> = vec![
        "env".into(),
        "-i".into(),
        format!("PATH={UNIT_PATH}"),
        "HOME=/root".into(),
        "bash".into(),
        "-c".into(),
        format!(
            ". {}/env.sh && exec fild -c \"$FILD_CONFIG\"",
            root.path().display()
        ),
    ];
    let f = Running::start(&ns, &root, &argv, None);
    let m = up_and_compare(&f);
    assert!(
        m.members[0]
            .data_dir
            .starts_with(&root.path().display().to_string())
    );
    drop(f);
    assert_kit_clean(root.path(), "a run after . env.sh");
}

#[test]
fn with_tls_files_host_names_and_extra_flags() {
    require_etcd();
    let _slot = Slot::acquire();
    let ns = Ns::new("at");
    let root = Root::new("tls");
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = make_pki(pki_dir.path());
    let root_s = root.path().display().to_string();
    let mut env = vec![
        ("PRJ_ROOT".to_string(), root_s.clone()),
        ("ETCD_TLS".into(), "files".into()),
        ("ETCD_SCHEME".into(), "https".into()),
        ("ETCD_CERT_FILE".into(), pki.cert.display().to_string()),
        ("ETCD_KEY_FILE".into(), pki.key.display().to_string()),
        ("ETCD_TRUSTED_CA_FILE".into(), pki.ca.display().to_string()),
        (
            "ETCD_EXTRA_FLAGS".into(),
            "--max-txn-ops 256 --log-level 'warn'".into(),
        ),
    ];
    // Host names, as the seeds' /etc/hosts gives them (here: fild's own mount namespace).
    for n in 0..3 {
        env.push((format!("ETCD{n}_HOST"), format!("boot{n}.etcd.test")));
    }
    let mut argv = vec!["env".to_string(), "-i".into(), format!("PATH={UNIT_PATH}")];
    argv.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend([
        FILD.to_string(),
        "-c".into(),
        root.config().display().to_string(),
    ]);
    let hosts = "127.0.0.1 boot0.etcd.test boot1.etcd.test boot2.etcd.test";
    let f = Running::start(&ns, &root, &argv, Some(hosts));
    let m = up_and_compare(&f);
    let a = &m.members[1].argv;
    let has = |pair: &[&str]| a.windows(pair.len()).any(|w| w == pair);
    assert!(
        has(&["--advertise-client-urls", "https://boot1.etcd.test:2179"]),
        "{a:?}"
    );
    assert!(
        has(&["--listen-client-urls", "https://127.0.0.1:2179"]),
        "{a:?}"
    );
    assert!(has(&["--client-cert-auth"]), "{a:?}");
    assert!(
        has(&["--max-txn-ops", "256", "--log-level", "warn"]),
        "{a:?}"
    );
    drop(f);
    assert_kit_clean(root.path(), "a TLS run");
}
