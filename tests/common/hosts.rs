//! Mode-two hosts: each a network namespace of [`super::netns::Net`] with its own PRJ_ROOT
//! (the kit committed in git, one member's template active), its data on /dev/shm and its own
//! fild. Used by the mode-two test and the fault suite's partition case.

use std::path::PathBuf;

use super::etcd::{activate, lay_out_kit};
use super::netns::Net;
use super::{Fild, TestDir, start_fild_in};

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
    start_host_with(net, n, name, token, "")
}

/// The fild control port each cluster host serves on its own address.
pub const CONTROL_PORT: u16 = 9001;

/// [`start_host`], its fild also serving the TCP control API on its host's address (with
/// credentials) and knowing every host's fild (`[cluster]`), from an included file that git
/// ignores (etc/fild/apps/cluster.ini).
pub fn start_cluster_host(net: &Net, n: usize, name: &str, token: &str) -> Host {
    let hosts: Vec<String> = (0..3)
        .map(|m| format!("h{m}=http://{}:{CONTROL_PORT}", net.addr(m)))
        .collect();
    let ini = format!(
        "[inet_http_server]\nport={}:{CONTROL_PORT}\nusername=fild\npassword=peer-secret\n\n[cluster]\nhosts={}\n",
        net.addr(n),
        hosts.join(" ")
    );
    start_host_with(net, n, name, token, &ini)
}

fn start_host_with(net: &Net, n: usize, name: &str, token: &str, extra_ini: &str) -> Host {
    let root = TestDir::new(&format!("{name}{n}"));
    lay_out_kit(root.path());
    activate(root.path(), &format!("etcd-{n}"));
    if !extra_ini.is_empty() {
        std::fs::write(root.join("etc/fild/apps/cluster.ini"), extra_ini).unwrap();
    }
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
    let fild = start_fild_in(Some(&net.hosts[n]), root.path(), &config, &env);
    Host { root, data, fild }
}
