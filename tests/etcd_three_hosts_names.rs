//! Names as in the seeds: three hosts (network namespaces) whose members are
//! `bootN.etcd.local`, resolved through each host's own `/etc/hosts`
//! (`/etc/netns/<namespace>/hosts`, which `ip netns exec` puts over `/etc/hosts`). The
//! deployment works unchanged, and fild warns when a host's names disagree with the
//! cluster's.
mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::etcd::*;
use common::hosts::{Host, etcdctl_in, start_host_env, start_members};
use common::netns::Net;
use common::*;

const UP: Duration = Duration::from_secs(60);

/// `/etc/netns/<ns>/hosts` for each host, removed on drop.
struct HostsFiles(Vec<PathBuf>);

impl HostsFiles {
    fn write(&self, n: usize, text: &str) {
        // In place (same inode): a running process's bind mount of the file sees it too.
        std::fs::write(&self.0[n], text).unwrap();
    }
}

impl Drop for HostsFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(dir) = f.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn hosts_text(net: &Net, names: &[usize]) -> String {
    let mut t = "127.0.0.1 localhost\n".to_string();
    for &m in names {
        t.push_str(&format!("{} boot{m}.etcd.local\n", net.addr(m)));
    }
    t
}

#[test]
fn members_named_through_etc_hosts_work_and_disagreeing_names_are_warned() {
    require_etcd();
    assert!(
        std::path::Path::new("/etc/hosts").is_file(),
        "this test needs /etc/hosts: ip netns exec binds each host's /etc/netns/<ns>/hosts over it (run bash scripts/setup.sh --tests)"
    );
    let _slot = Slot::acquire();
    let net = Net::new("n");
    let files = HostsFiles(
        net.hosts
            .iter()
            .map(|ns| PathBuf::from(format!("/etc/netns/{ns}/hosts")))
            .collect(),
    );
    for (n, f) in files.0.iter().enumerate() {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        files.write(n, &hosts_text(&net, &[0, 1, 2]));
    }
    let token = format!("names-{}", net.id);
    let named: Vec<(String, String)> = (0..3)
        .map(|m| (format!("ETCD{m}_HOST"), format!("boot{m}.etcd.local")))
        .collect();
    let mut hosts: Vec<Host> = (0..3)
        .map(|n| start_host_env(&net, n, "names", &token, &named))
        .collect();
    let all = (0..3)
        .map(|m| format!("http://boot{m}.etcd.local:{}", 2079 + 100 * m))
        .collect::<Vec<_>>()
        .join(",");
    start_members(&net, &hosts, &all);

    // Every host sees the three members by name, with nothing to warn about.
    for (n, h) in hosts.iter().enumerate() {
        let mut o = h.filc_in(&net, n, &["etcd", "status"]);
        assert!(
            wait_until(UP, || {
                o = h.filc_in(&net, n, &["etcd", "status"]);
                code(&o) == 0
            }),
            "host {n}:\n{}",
            text(&o)
        );
        let t = text(&o);
        for m in 0..3 {
            let url = format!("http://boot{m}.etcd.local:{}", 2079 + 100 * m);
            assert!(t.contains(&url), "host {n} lacks {url}:\n{t}");
        }
        // (The versions' own notices, such as 3.4's end of life, are not the names'.)
        assert!(warnings_but_versions(&t).is_empty(), "host {n} warns:\n{t}");
    }

    // A replace keeps the names: boot2 joins again at its named peer URL.
    assert!(
        etcdctl_in(&net, 0, &all, &["put", "named/k", "v"])
            .status
            .success()
    );
    let o = hosts[2].filc_in(&net, 2, &["etcd", "replace", "etcd-2", "--yes"]);
    assert_eq!(code(&o), 0, "replace on host 2:\n{}", text(&o));
    let list = etcdctl_in(&net, 0, &all, &["member", "list"]);
    let l = text(&list);
    assert!(
        l.contains("boot2, http://boot2.etcd.local:2280, http://boot2.etcd.local:2279, false"),
        "boot2 after the replace:\n{l}"
    );
    assert!(
        wait_until(UP, || {
            let o = etcdctl_in(
                &net,
                2,
                "http://boot2.etcd.local:2279",
                &["get", "--consistency=s", "--print-value-only", "named/k"],
            );
            text(&o).trim() == "v"
        }),
        "the replaced member lacks the key written before"
    );

    // Host 1's /etc/hosts lacks boot2: its status says so.
    files.write(1, &hosts_text(&net, &[0, 1]));
    let t = text(&hosts[1].filc_in(&net, 1, &["etcd", "status"]));
    assert!(
        t.contains("warning: boot2.etcd.local (advertised by boot2) does not resolve on this host"),
        "{t}"
    );
    files.write(1, &hosts_text(&net, &[0, 1, 2]));

    // Host 0's fild names boot2 by its address instead: status and fild's log say that
    // this host's name disagrees with the cluster's.
    let ip = net.addr(2);
    hosts[0].restart_fild_env(&net, 0, &[("ETCD2_HOST".into(), ip.clone())]);
    hosts[0].fild.filc_ok(&["start", "etcd-0"]);
    let want = format!("this host names boot2 http://{ip}:2280");
    let mut t = String::new();
    assert!(
        wait_until(UP, || {
            t = text(&hosts[0].filc_in(&net, 0, &["etcd", "status"]));
            t.contains(&want)
        }),
        "no warning on host 0:\n{t}"
    );
    assert!(t.contains("advertises http://boot2.etcd.local:2280"), "{t}");
    let log = hosts[0].root.join("var/log/fild.log");
    assert!(
        wait_until(UP, || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("etcd names: ") && l.contains(&want))),
        "fild's log on host 0 has no names warning"
    );
    for h in &hosts {
        assert_kit_clean(h.root.path(), "the names case");
    }
}
