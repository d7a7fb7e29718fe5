//! The runtime layer (`var/etcd/runtime/`): a next-start flag is used up by the start that
//! uses it, even when fild dies right after; settings files an older fild rewrote keep
//! working, are adopted into the runtime layer without being edited, and fild says how to
//! restore them. The kit stays as committed throughout.
mod common;

use std::path::Path;
use std::time::Duration;

use common::etcd::*;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(60);

fn cmdline(pid: i32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ")
}

fn member_count(c: &Cluster, n: usize) -> usize {
    let o = c.etcdctl(&c.endpoint(n), &["member", "list"]);
    if !o.status.success() {
        return 0;
    }
    String::from_utf8_lossy(&o.stdout).lines().count()
}

#[test]
fn force_new_cluster_is_used_up_by_one_start_even_if_fild_dies() {
    let mut c = Cluster::new("rtonce");
    c.start_all();
    c.wait_healthy(UP);
    // Quorum lost for good, as before a rescue: etcd-0 is the survivor.
    for p in ["etcd-1", "etcd-2", "etcd-0"] {
        c.fild().filc_ok(&["stop", "--force", p]);
    }
    let s = c.settings("etcd-0");
    // What `filc etcd rescue` records before the forced start.
    fild::etcd::runtime::set_once(
        Path::new(&s.runtime_file),
        Path::new(&s.env_file),
        &["--force-new-cluster"],
        "test",
    )
    .unwrap();
    assert_eq!(
        c.settings("etcd-0").next_start_flags,
        ["--force-new-cluster"]
    );

    c.fild().filc_ok(&["start", "etcd-0"]);
    let pid = c.pid("etcd-0");
    assert!(
        cmdline(pid).contains("--force-new-cluster"),
        "{}",
        cmdline(pid)
    );
    // Used up before etcd ran: the runtime state no longer has it.
    let rt = std::fs::read_to_string(&s.runtime_file).unwrap();
    assert!(!rt.contains("force-new-cluster"), "{rt}");
    assert!(c.settings("etcd-0").next_start_flags.is_empty());
    assert!(
        wait_until(UP, || c.healthy(0) && member_count(&c, 0) == 1),
        "the forced start did not make etcd-0 a one-member cluster"
    );

    // fild dies (its guard takes etcd-0 with it); a new fild starts etcd-0 normally.
    let fild_pid = c.fild().pid();
    signal(fild_pid, libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "etcd-0 outlived fild"
    );
    let _ = c.fild_mut().child.as_mut().unwrap().wait();
    c.fild = None;
    c.start_fild();
    c.fild().filc_ok(&["start", "etcd-0"]);
    let pid2 = c.pid("etcd-0");
    assert_ne!(pid2, pid);
    assert!(
        !cmdline(pid2).contains("--force-new-cluster"),
        "the flag applied twice: {}",
        cmdline(pid2)
    );
    assert!(wait_until(UP, || c.healthy(0)));
    assert_eq!(member_count(&c, 0), 1);
    c.assert_kit_clean("a forced start and a fild crash");
}

#[test]
fn env_files_an_older_fild_rewrote_are_adopted_not_edited() {
    let mut c = Cluster::new("rtadopt");
    c.start_all();
    c.wait_healthy(UP);
    drop(c.fild.take());

    // What an older fild left after `filc etcd replace etcd-1` and an interrupted rescue:
    // literal values written into the shipped files.
    let env1 = c.root.join("apps/etcd/etcd-1.env");
    let text = std::fs::read_to_string(&env1).unwrap();
    let rewritten = text
        .replace("cluster_state=new", "cluster_state=existing")
        .replace(
            "extra_flags=${ETCD_EXTRA_FLAGS:-}",
            "extra_flags=--force-new-cluster",
        )
        + "cluster_token=legacy-token\n";
    std::fs::write(&env1, &rewritten).unwrap();
    let gw = c.root.join("apps/etcd/etcd-gw.env");
    let gw_text = std::fs::read_to_string(&gw).unwrap();
    let endpoints = format!("127.0.0.1:{},127.0.0.1:{}", c.client[0], c.client[1]);
    let gw_rewritten = format!("{gw_text}endpoints={endpoints}\n");
    std::fs::write(&gw, &gw_rewritten).unwrap();

    c.start_fild();
    let stderr = std::fs::read_to_string(c.root.join("fild.stderr")).unwrap();
    let restore = format!(
        "git -C {} checkout -- apps/etcd/etcd-1.env",
        std::fs::canonicalize(c.root.path()).unwrap().display()
    );
    assert!(stderr.contains(&restore), "{stderr}");
    assert!(stderr.contains("apps/etcd/etcd-gw.env"), "{stderr}");
    // Not edited.
    assert_eq!(std::fs::read_to_string(&env1).unwrap(), rewritten);
    assert_eq!(std::fs::read_to_string(&gw).unwrap(), gw_rewritten);
    // Adopted: the values hold, the interrupted rescue's flag does not.
    let s = c.settings("etcd-1");
    assert_eq!(s.cluster_state, "existing");
    assert_eq!(s.cluster_token, "legacy-token");
    assert!(
        !s.argv.contains(&"--force-new-cluster".to_string()),
        "{:?}",
        s.argv
    );
    assert_eq!(
        c.learned("etcd-1", "cluster_token").as_deref(),
        Some("legacy-token")
    );

    // The deployment keeps working.
    c.start_all();
    c.wait_healthy(UP);
    assert!(!cmdline(c.pid("etcd-1")).contains("--force-new-cluster"));

    // The operator restores the shipped files as told: the learned values still hold.
    git(
        c.root.path(),
        &[
            "checkout",
            "--",
            "apps/etcd/etcd-1.env",
            "apps/etcd/etcd-gw.env",
        ],
    );
    c.assert_kit_clean("git checkout of the rewritten files");
    let s = c.settings("etcd-1");
    assert_eq!(s.cluster_state, "existing");
    assert_eq!(s.cluster_token, "legacy-token");
    let local: fild::api::EtcdMembers = {
        let o = c.fild().filc(&["etcd", "show", "etcd-gw", "--json"]);
        assert!(o.status.success());
        let g: fild::api::EtcdGateway = serde_json::from_slice(&o.stdout).unwrap();
        fild::api::EtcdMembers {
            gateway: Some(g),
            ..Default::default()
        }
    };
    assert_eq!(local.gateway.unwrap().endpoints.join(","), endpoints);

    // A hand edit of the shipped line is newer than the learned value: the file wins.
    let text = std::fs::read_to_string(&env1).unwrap();
    std::fs::write(
        &env1,
        text.replace("cluster_state=new", "cluster_state='new'"),
    )
    .unwrap();
    let s = c.settings("etcd-1");
    assert_eq!(s.cluster_state, "new");
    assert!(
        s.learned
            .iter()
            .any(|l| l.key == "cluster_state" && !l.applies),
        "{:?}",
        s.learned
    );
    assert_eq!(c.fild().state("etcd-1"), ProcessState::Running);
}

#[test]
fn members_restart_after_fild_s_binary_is_replaced_on_disk() {
    let mut c = Cluster::new("rtupgrade");
    drop(c.fild.take());
    // fild runs from a copy that an "upgrade" then deletes.
    let bin = c.root.join("old-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("fild");
    std::fs::copy(FILD, &exe).unwrap();
    let child = std::process::Command::new(&exe)
        .arg("-c")
        .arg(c.config())
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.fild = Some(Fild {
        child: Some(child),
        dir: c.root.path().to_path_buf(),
        config: c.config(),
        env: c.env.clone(),
        left: Vec::new(),
    });
    assert!(wait_until(Duration::from_secs(10), || c
        .fild()
        .filc(&["version"])
        .status
        .success()));
    c.start_all();
    c.wait_healthy(UP);
    std::fs::remove_dir_all(&bin).unwrap();
    let old = c.pid("etcd-1");
    signal(old, libc::SIGKILL);
    let info = c.fild().wait_new_pid("etcd-1", old, UP);
    assert!(cmdline(info.pid as i32).contains("--name boot1"));
    c.wait_healthy(UP);
}
