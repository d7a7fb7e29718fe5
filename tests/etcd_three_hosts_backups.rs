//! Scheduled backups on three hosts (network namespaces, each fild knowing the others through
//! `[cluster]`): each interval's snapshot is taken by one host, chosen in etcd, and copied to
//! every other host's backup folder through its fild; `filc etcd backups` on any host lists
//! every host's; with the usual taker down, another host takes the next one.
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::etcd::*;
use common::hosts::{Host, all_endpoints, etcdctl_in, start_cluster_host, start_members};
use common::netns::Net;
use common::*;

const INTERVAL: u64 = 15;

fn folder(h: &Host) -> PathBuf {
    h.root.join("var/backups/etcd")
}

/// The snapshot files in a host's backup folder.
fn snapshots(h: &Host) -> BTreeSet<String> {
    std::fs::read_dir(folder(h))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("etcd-") && n.ends_with(".db"))
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds of the UTC time in a snapshot's name (`etcd-boot0-2026-12-02T080000Z-r21.db`).
fn taken_at(name: &str) -> u64 {
    let t = name
        .split('-')
        .find(|p| p.ends_with('Z') && p.contains('T'))
        .unwrap_or_else(|| panic!("no time in {name}"));
    let (_, hms) = t.split_once('T').unwrap();
    let n: u64 = hms.trim_end_matches('Z').parse().unwrap();
    (n / 10_000) * 3600 + (n / 100 % 100) * 60 + n % 100
}

#[test]
fn one_host_takes_each_scheduled_snapshot_and_every_host_holds_it() {
    require_etcd();
    let _slot = Slot::acquire();
    let net = Net::new("b");
    let token = format!("backups-{}", net.id);
    let mut hosts: Vec<Host> = (0..3)
        .map(|n| start_cluster_host(&net, n, "bk", &token))
        .collect();
    let all = all_endpoints(&net);
    start_members(&net, &hosts, &all);
    assert!(
        etcdctl_in(&net, 0, &all, &["put", "bk/k", "v"])
            .status
            .success()
    );
    // A short schedule on every host (the test's own copy of the kit).
    for (n, h) in hosts.iter().enumerate() {
        let ini = std::fs::read_to_string(&h.fild.config).unwrap();
        let ini = ini.replacen(
            "[etcd]\n",
            &format!("[etcd]\nbackup_interval={INTERVAL}s\n"),
            1,
        );
        std::fs::write(&h.fild.config, ini).unwrap();
        h.filc_in(&net, n, &["reload"]);
    }

    // The first scheduled snapshot appears in every host's folder, the same bytes.
    let mut first = None;
    assert!(
        wait_until(Duration::from_secs(90), || {
            let sets: Vec<_> = hosts.iter().map(snapshots).collect();
            first = sets[0]
                .iter()
                .find(|f| sets.iter().all(|s| s.contains(*f)))
                .cloned();
            first.is_some()
        }),
        "no snapshot reached all three hosts: {:?}",
        hosts.iter().map(snapshots).collect::<Vec<_>>()
    );
    let first = first.unwrap();
    let bytes: Vec<Vec<u8>> = hosts
        .iter()
        .map(|h| std::fs::read(folder(h).join(&first)).unwrap())
        .collect();
    assert!(bytes.iter().all(|b| b == &bytes[0]), "the copies differ");
    // Any host lists every host's.
    let o = hosts[1].filc_in(&net, 1, &["etcd", "backups"]);
    let t = text(&o);
    assert_eq!(code(&o), 0, "{t}");
    for h in ["h0", "h1", "h2"] {
        assert!(t.contains(&format!("host {h} (")), "{h} not listed:\n{t}");
    }
    assert_eq!(t.matches(&first).count(), 3, "{t}");

    // Its taker down, another host takes the next one, and the two left both hold it.
    let taker: usize = first["etcd-boot".len()..][..1].parse().unwrap();
    let _ = hosts[taker].fild.terminate();
    let left: Vec<usize> = (0..3).filter(|&n| n != taker).collect();
    let before = snapshots(&hosts[left[0]]);
    let mut next = None;
    assert!(
        wait_until(Duration::from_secs(120), || {
            let a = snapshots(&hosts[left[0]]);
            let b = snapshots(&hosts[left[1]]);
            next = a
                .iter()
                .find(|f| !before.contains(*f) && b.contains(*f))
                .cloned();
            next.is_some()
        }),
        "no new snapshot on both remaining hosts"
    );
    let next = next.unwrap();
    assert!(
        !next.starts_with(&format!("etcd-boot{taker}-")),
        "{next} was taken by the stopped host"
    );

    // Taken once per interval: no two snapshots anywhere within most of an interval.
    let union: BTreeSet<String> = left.iter().flat_map(|&n| snapshots(&hosts[n])).collect();
    let mut times: Vec<u64> = union.iter().map(|n| taken_at(n)).collect();
    times.sort();
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= INTERVAL * 9 / 10 - 2,
            "two scheduled snapshots {} s apart: {union:?}",
            w[1] - w[0]
        );
    }
    eprintln!(
        "first {first} on 3 hosts; with boot{taker}'s host down, {next} on the other two; {} snapshots in all",
        union.len()
    );
    // The host that is down is named as not answering.
    let o = hosts[left[0]].filc_in(&net, left[0], &["etcd", "backups"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("no answer"), "{}", text(&o));
    drop(hosts);
}
