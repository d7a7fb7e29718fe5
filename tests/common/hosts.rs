//! Mode-two hosts: each a network namespace of [`super::netns::Net`] with its own PRJ_ROOT
//! (the kit committed in git, one member's template active), its data on /dev/shm and its own
//! fild. Used by the mode-two test and the fault suite's partition case.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::etcd::{activate, lay_out_kit};
use super::netns::Net;
use super::{FILD, Fild, TestDir, wait_until};

/// One host; dropping it stops its fild (by pid) and removes its data.
pub struct Host {
    pub root: TestDir,
    pub data: PathBuf,
    pub fild: Fild,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.fild.terminate();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Host `n` of `net`, running member `etcd-n`'s fild (not the member yet). `name` keeps the
/// dirs of different suites apart; `token` is the cluster token.
pub fn start_host(net: &Net, n: usize, name: &str, token: &str) -> Host {
    let root = TestDir::new(&format!("{name}{n}"));
    lay_out_kit(root.path());
    activate(root.path(), &format!("etcd-{n}"));
    let data = tempfile::Builder::new()
        .prefix(&format!("fild-etcd-{name}{n}-"))
        .tempdir_in("/dev/shm")
        .unwrap()
        .keep();
    let mut env = vec![
        ("PRJ_ROOT".to_string(), root.path().display().to_string()),
        ("ETCD_DATA_ROOT".to_string(), data.display().to_string()),
        ("ETCD_TOKEN".to_string(), token.to_string()),
    ];
    for m in 0..3 {
        env.push((format!("ETCD{m}_HOST"), net.addr(m)));
    }
    let config = root.join("etc/fild/fild.ini");
    let child = Command::new("ip")
        .args(["netns", "exec", &net.hosts[n]])
        .arg(FILD)
        .arg("-c")
        .arg(&config)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("fild.stderr")).unwrap())
        .spawn()
        .expect("spawn fild in its namespace");
    let fild = Fild {
        child: Some(child),
        dir: root.path().to_path_buf(),
        config,
        env,
    };
    assert!(
        wait_until(Duration::from_secs(10), || fild
            .filc(&["version"])
            .status
            .success()),
        "host {n}'s fild did not come up"
    );
    Host { root, data, fild }
}
