//! Mode two: three hosts, one member each, from the same templates. The hosts are network
//! namespaces this test creates (veth pairs on a bridge in a fourth "switch" namespace, with
//! addresses from the benchmarking range 198.18.0.0/15); nothing touches the real network.
mod common;

use std::process::Command;
use std::time::Duration;

use common::etcd::*;
use common::hosts::{Host, start_host};
use common::netns::Net;
use common::*;
use fild::api::ProcessState;

const UP: Duration = Duration::from_secs(40);

/// etcdctl run inside host `n`'s namespace against that host's own member.
fn etcdctl(net: &Net, n: usize, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &net.hosts[n], "etcdctl"])
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}:{}", net.addr(n), 2079 + 100 * n))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .expect("run etcdctl")
}

/// filc run inside host `n`'s namespace (where its fild's etcd addresses are reachable).
fn filc_in(net: &Net, n: usize, host: &Host, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", &net.hosts[n], FILC, "-c"])
        .arg(&host.fild.config)
        .args(args)
        .envs(host.fild.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run filc in the host's namespace")
}

fn get_local(net: &Net, n: usize, key: &str) -> Option<String> {
    let out = etcdctl(
        net,
        n,
        &["get", "--consistency=s", "--print-value-only", key],
    );
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

#[test]
fn three_hosts_form_a_cluster_and_each_fild_repairs_its_member() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Net::new("m");
    let token = format!("mode-two-{}", net.id);
    let hosts: Vec<Host> = (0..3)
        .map(|n| start_host(&net, n, "host", &token))
        .collect();
    // The seeds' workflow on each host: the member is active but autostart=false.
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let healthy = |n: usize| etcdctl(&net, n, &["endpoint", "health"]).status.success();
    assert!(
        wait_until(UP, || (0..3).all(healthy)),
        "the three-host cluster did not become healthy"
    );

    // A put on host 0 is read on host 2 (from host 2's own member).
    assert!(wait_until(UP, || etcdctl(
        &net,
        0,
        &["put", "mode/two", "yes"]
    )
    .status
    .success()));
    assert!(
        wait_until(UP, || get_local(&net, 2, "mode/two").as_deref()
            == Some("yes")),
        "host 2 never saw host 0's write"
    );

    // SIGKILL of host 1's member: host 1's fild restarts it; it catches up.
    hosts[1]
        .fild
        .wait_state("etcd-1", ProcessState::Running, UP);
    std::thread::sleep(Duration::from_millis(2500));
    let old = hosts[1].fild.info("etcd-1").pid as i32;
    signal(old, libc::SIGKILL);
    assert!(wait_until(UP, || etcdctl(
        &net,
        0,
        &["put", "while/down", "1"]
    )
    .status
    .success()));
    hosts[1].fild.wait_new_pid("etcd-1", old, UP);
    assert!(
        wait_until(UP, || get_local(&net, 1, "while/down").as_deref()
            == Some("1")),
        "host 1's restarted member did not catch up"
    );

    // Cut host 2's link under writes: the majority keeps serving; healed, it catches up.
    net.link(2, false);
    for i in 0..10 {
        assert!(
            wait_until(UP, || etcdctl(&net, 0, &["put", &format!("cut/{i}"), "v"])
                .status
                .success()),
            "the majority stopped serving while host 2 was cut off"
        );
    }
    net.link(2, true);
    for i in 0..10 {
        let k = format!("cut/{i}");
        assert!(
            wait_until(UP, || get_local(&net, 2, &k).as_deref() == Some("v")),
            "host 2 did not catch up on {k} after the link healed"
        );
    }

    // Any host sees the whole cluster: host 0 with its member and gateway stopped asks the
    // members the gateway's settings name.
    activate(hosts[0].root.path(), "etcd-gw");
    hosts[0].fild.filc_ok(&["reload"]);
    hosts[0]
        .fild
        .filc_ok(&["stop", "--force", "etcd-0", "etcd-gw"]);
    let full = |o: &std::process::Output| {
        let t = text(o);
        code(o) == 1 && ["boot0", "boot1", "boot2"].iter().all(|m| t.contains(m))
    };
    let mut o = filc_in(&net, 0, &hosts[0], &["etcd", "status"]);
    assert!(
        wait_until(UP, || {
            o = filc_in(&net, 0, &hosts[0], &["etcd", "status"]);
            full(&o)
        }),
        "host 0 without its member and gateway:\n{}",
        text(&o)
    );
    assert!(
        text(&o).contains("2 of 3 voting members healthy"),
        "{}",
        text(&o)
    );
    // A host that runs only the gateway gets the full status too.
    std::fs::remove_file(hosts[0].root.join("etc/fild/apps/etcd-0.ini")).unwrap();
    hosts[0].fild.filc_ok(&["reload"]);
    let o = filc_in(&net, 0, &hosts[0], &["etcd", "status"]);
    assert!(full(&o), "a gateway-only host:\n{}", text(&o));
    drop(hosts);
}
