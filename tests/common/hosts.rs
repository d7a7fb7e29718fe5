//! Mode-two hosts: each a network namespace of [`super::netns::Net`] with its own PRJ_ROOT
//! (the kit committed in git, one member's template active), its data on /dev/shm and its own
//! fild. Used by the mode-two test and the fault suite's partition case.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

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
    start_member_host(net, n, n, name, token, &[])
}

/// [`start_host`] with `extra` environment over the usual (`ETCDn_HOST` names, say).
pub fn start_host_env(
    net: &Net,
    n: usize,
    name: &str,
    token: &str,
    extra: &[(String, String)],
) -> Host {
    start_member_host(net, n, n, name, token, extra)
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
    start_host_with(net, n, n, name, token, &ini, &[])
}

/// A host in namespace `ns` of `net` whose fild runs member `etcd-member` (a new host a member
/// moves to: `ETCDm_HOST` in `extra` names its address).
pub fn start_member_host(
    net: &Net,
    ns: usize,
    member: usize,
    name: &str,
    token: &str,
    extra: &[(String, String)],
) -> Host {
    start_host_with(net, ns, member, name, token, "", extra)
}

fn start_host_with(
    net: &Net,
    ns: usize,
    member: usize,
    name: &str,
    token: &str,
    extra_ini: &str,
    extra: &[(String, String)],
) -> Host {
    let root = TestDir::new(&format!("{name}{ns}"));
    lay_out_kit(root.path());
    activate(root.path(), &format!("etcd-{member}"));
    if !extra_ini.is_empty() {
        std::fs::write(root.join("etc/fild/apps/cluster.ini"), extra_ini).unwrap();
    }
    let data = tempfile::Builder::new()
        .prefix(&format!("fild-etcd-{name}{ns}-"))
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
    set_env(&mut env, extra);
    let config = root.join("etc/fild/fild.ini");
    let fild = start_fild_in(Some(&net.hosts[ns]), root.path(), &config, &env);
    Host { root, data, fild }
}

impl Host {
    /// filc run inside host `n`'s namespace (where its fild's etcd addresses are reachable).
    pub fn filc_in(&self, net: &Net, n: usize, args: &[&str]) -> Output {
        self.filc_cmd(net, n, args)
            .output()
            .expect("run filc in the host's namespace")
    }

    /// The command [`Host::filc_in`] runs, to spawn it in the background.
    pub fn filc_cmd(&self, net: &Net, n: usize, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &net.hosts[n], super::FILC, "-c"])
            .arg(&self.fild.config)
            .args(args)
            .envs(self.fild.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// Start this host's fild again (after a SIGKILL), with the same settings.
    pub fn restart_fild(&mut self, net: &Net, n: usize) {
        self.restart_fild_env(net, n, &[]);
    }

    /// Stop this host's fild (SIGTERM if it still runs) and start it again with `extra`
    /// environment over what it had.
    pub fn restart_fild_env(&mut self, net: &Net, n: usize, extra: &[(String, String)]) {
        let (config, mut env) = (self.fild.config.clone(), self.fild.env.clone());
        set_env(&mut env, extra);
        let _ = self.fild.terminate();
        self.fild = start_fild_in(Some(&net.hosts[n]), self.root.path(), &config, &env);
    }
}

/// etcdctl (API 3) run inside host `n`'s namespace against `endpoints`.
pub fn etcdctl_in(net: &Net, n: usize, endpoints: &str, args: &[&str]) -> Output {
    etcdctl_in_tls(net, n, endpoints, &[], args)
}

/// [`etcdctl_in`] with TLS flags (`--cacert=…`, `--cert=…`, `--key=…`) before `args`.
pub fn etcdctl_in_tls(
    net: &Net,
    n: usize,
    endpoints: &str,
    tls: &[String],
    args: &[&str],
) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &net.hosts[n], "etcdctl"])
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg("--command-timeout=5s")
        .arg("--dial-timeout=3s")
        .args(tls)
        .args(args)
        .output()
        .expect("run etcdctl")
}

/// `extra` over `env`: a key already there gets the new value.
fn set_env(env: &mut Vec<(String, String)>, extra: &[(String, String)]) {
    for (k, v) in extra {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
}

/// Every host's endpoint, `http://ADDR:PORT,…`, as etcdctl takes them.
pub fn all_endpoints(net: &Net) -> String {
    (0..3)
        .map(|n| format!("http://{}", net.endpoint(n)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Start member `etcd-n` on each host `n` (the seeds' workflow: active, autostart=false) and
/// wait until etcdctl, from host 0, finds `endpoints` healthy.
pub fn start_members(net: &Net, hosts: &[Host], endpoints: &str) {
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    assert!(
        super::wait_until(std::time::Duration::from_secs(60), || etcdctl_in(
            net,
            0,
            endpoints,
            &["endpoint", "health"]
        )
        .status
        .success()),
        "the three-host cluster did not become healthy ({endpoints})"
    );
}
