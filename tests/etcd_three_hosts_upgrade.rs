//! `filc etcd upgrade` on three hosts (mode two: one member per host, each host's fild on its
//! TCP control API, `[cluster]` naming them all): one command on one host upgrades every
//! member, this host's itself and the others' through their filds, under the cluster-wide
//! lock. Host 2 lacks the new binary (a tmpfs over its folder, in host 2's fild's own mount
//! namespace), so the upgrade stops there with the cluster healthy and says how to continue
//! or go back; `--back` takes an upgraded member back to 3.4.23 on fresh data; once the
//! binary is installed on host 2, a re-run from another host finishes the upgrade. A write
//! load runs through every member the whole time; the real etcdctl judges.
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::etcd::*;
use common::hosts::{Host, start_cluster_host};
use common::load::Judge;
use common::netns::Net;
use common::*;

const UP: Duration = Duration::from_secs(60);

/// Run `args` inside the mount namespace and root of process `pid` (host 2's fild): `-r`, so a
/// chrooted test machine resolves the paths in the chroot, as fild does.
fn in_mounts_of(pid: i32, args: &[&str]) {
    let o = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-r", "--"])
        .args(args)
        .output()
        .expect("run nsenter");
    assert!(o.status.success(), "nsenter {args:?}: {}", text(&o));
}

/// The server version the member on host `n` reports, asked from host 0.
fn server_version(judge: &Judge, n: usize) -> String {
    let ep = judge.endpoints[n].clone();
    let o = judge.etcdctl(&ep, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v[0]["Status"]["version"].as_str().unwrap_or("").to_string()
}

/// The cluster version, as `filc etcd status --json` on host `n` reports it.
fn cluster_version(net: &Net, h: &Host, n: usize) -> String {
    let o = h.filc_in(net, n, &["etcd", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["cluster_version"].as_str().unwrap_or("").to_string()
}

fn learned_bin(h: &Host, n: usize) -> Option<String> {
    let rt = h.root.join(&format!("var/etcd/runtime/etcd-{n}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rt).unwrap_or_default()).unwrap_or_default();
    v["learned"]["etcd_bin"]["value"].as_str().map(String::from)
}

#[test]
fn one_command_upgrades_every_host_and_a_host_without_the_binary_stops_it_healthy() {
    require_etcd();
    require_etcd_version(TestEtcd::V35);
    let _slot = Slot::acquire();
    let net = Arc::new(Net::new("u"));
    let token = format!("upgrade-{}", net.id);
    let hosts: Vec<Host> = (0..3)
        .map(|n| start_cluster_host(&net, n, "upg", &token))
        .collect();
    for (n, h) in hosts.iter().enumerate() {
        h.fild.filc_ok(&["start", &format!("etcd-{n}")]);
    }
    let judge = Judge::of_hosts(&net, 0, "http");
    judge.wait_three_voters(UP, "the three-host cluster");
    let want = TestEtcd::V35.server_version();

    // The new etcd, at one path on every host; host 2 has nothing there.
    let dir = tempfile::Builder::new()
        .prefix("fild-upgrade-bin-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let real = TestEtcd::V35.tool("etcd");
    std::os::unix::fs::symlink(&real, bin_dir.join("etcd")).unwrap();
    let bin = bin_dir.join("etcd").display().to_string();
    let fild2 = hosts[2].fild.pid();
    in_mounts_of(
        fild2,
        &["mount", "-t", "tmpfs", "tmpfs", bin_dir.to_str().unwrap()],
    );

    let load = judge.load("u");
    let o = hosts[0].filc_in(
        &net,
        0,
        &["etcd", "upgrade", "--to", &bin, "--allow-known-bad"],
    );
    let t = text(&o);
    eprintln!("--- the upgrade from host 0:\n{t}");
    assert_ne!(code(&o), 0, "the upgrade did not stop at host 2:\n{t}");
    for w in [
        "stopped at boot2",
        "the new binary is missing here",
        "To continue: fix what stopped it, then run `filc etcd upgrade --to",
        "filc etcd upgrade --back NAME",
        "h2: ",
    ] {
        assert!(t.contains(w), "no {w:?} in:\n{t}");
    }
    // Stopped with the cluster healthy: three voters, boot2 untouched on 3.4.23, the others
    // on 3.5.1, the cluster version still 3.4.
    judge.wait_three_voters(UP, "after the stopped upgrade");
    let o = hosts[1].filc_in(&net, 1, &["etcd", "status"]);
    assert_eq!(code(&o), 0, "status after the stop:\n{}", text(&o));
    assert_eq!(server_version(&judge, 2), "3.4.23");
    assert_eq!(cluster_version(&net, &hosts[1], 1), "3.4");
    assert_eq!(
        learned_bin(&hosts[2], 2),
        None,
        "host 2's member was switched"
    );
    let upgraded: Vec<usize> = (0..2)
        .filter(|&n| server_version(&judge, n) == want)
        .collect();
    assert!(
        !upgraded.is_empty(),
        "no member upgraded before the stop:\n{t}"
    );
    for &n in &upgraded {
        assert_eq!(learned_bin(&hosts[n], n).as_deref(), Some(bin.as_str()));
    }

    // The way back for one upgraded member, on its host: 3.4.23 again, on fresh data.
    let n = upgraded[0];
    let o = hosts[n].filc_in(
        &net,
        n,
        &["etcd", "upgrade", "--back", &format!("boot{n}"), "--yes"],
    );
    let t = text(&o);
    assert_eq!(code(&o), 0, "--back on host {n}:\n{t}");
    assert!(t.contains("goes back to etcd 3.4.23"), "{t}");
    judge.wait_three_voters(UP, "after going back");
    assert_eq!(server_version(&judge, n), "3.4.23");
    assert_eq!(learned_bin(&hosts[n], n), None);

    // Installed on host 2, a re-run from host 1 finishes the upgrade.
    in_mounts_of(fild2, &["ln", "-s", &real, &bin]);
    let o = hosts[1].filc_in(
        &net,
        1,
        &["etcd", "upgrade", "--to", &bin, "--allow-known-bad"],
    );
    let t = text(&o);
    eprintln!("--- the re-run from host 1:\n{t}");
    assert_eq!(code(&o), 0, "the re-run:\n{t}");
    assert!(t.contains("upgraded: every member runs etcd 3.5.1"), "{t}");
    judge.wait_three_voters(UP, "after the upgrade");
    for n in 0..3 {
        assert_eq!(server_version(&judge, n), want, "host {n}");
    }
    assert!(
        wait_until(UP, || cluster_version(&net, &hosts[2], 2) == "3.5"),
        "the cluster version never reached 3.5"
    );

    let written = load.finish();
    written.assert_sound("the three-host upgrade", 50);
    judge.check_every_key("u", &written.keys());
    for (n, h) in hosts.iter().enumerate() {
        assert_kit_clean(h.root.path(), &format!("the upgrade (host {n})"));
    }
    in_mounts_of(fild2, &["umount", bin_dir.to_str().unwrap()]);
}
