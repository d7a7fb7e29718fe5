//! Backups against real three-member clusters: `filc etcd snapshot`, `filc etcd backups`,
//! fild's scheduled backups with `backup_command` and retention, and `filc etcd restore`.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::backups::{assert_named_by_revision, assert_private, db_files, mode_of, name_revision};
use common::etcd::*;
use common::*;

const UP: Duration = Duration::from_secs(60);

/// Put through a member's own endpoint, retrying while the cluster settles.
fn put(c: &Cluster, key: &str, value: &str) {
    let ok = wait_until(UP, || c.put(&c.endpoint(0), key, value));
    assert!(ok, "put {key} failed");
}

/// The last line of filc's stdout: the snapshot path `filc etcd snapshot` prints.
fn last_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn snapshot_into(c: &Cluster, dir: Option<&Path>) -> PathBuf {
    snapshot_saying(c, dir).0
}

/// `filc etcd snapshot [DIR]`, retried while a member settles: the file and what filc said.
fn snapshot_saying(c: &Cluster, dir: Option<&Path>) -> (PathBuf, String) {
    let mut args = vec!["etcd".to_string(), "snapshot".to_string()];
    if let Some(d) = dir {
        args.push(d.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut o = c.fild().filc(&args);
    // A member may still be settling: retry.
    let ok = wait_until(UP, || {
        if code(&o) == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
        o = c.fild().filc(&args);
        false
    });
    assert!(ok, "filc etcd snapshot failed: {}", text(&o));
    let path = PathBuf::from(last_line(&o));
    assert!(
        path.is_file(),
        "{} is not a file: {}",
        path.display(),
        text(&o)
    );
    (path, text(&o))
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `f` with an etcd client of `endpoint`, on a runtime of its own.
fn with_client<T>(endpoint: &str, f: impl AsyncFnOnce(&mut etcd_client::Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = etcd_client::Client::connect([endpoint], None)
            .await
            .unwrap();
        f(&mut client).await
    })
}

/// Write `n` values of 1 MB through member 0.
fn put_megabytes(c: &Cluster, n: usize) {
    with_client(&c.endpoint(0), async |client| {
        let value = vec![b'x'; 1_000_000];
        for i in 0..n {
            let mut tries = 0;
            while let Err(e) = client.put(format!("big-{i:04}"), value.clone(), None).await {
                tries += 1;
                assert!(tries < 20, "put big-{i}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

/// Member IDs as the cluster lists them (asked through member `n`).
fn member_ids(c: &Cluster, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    let ok = wait_until(UP, || {
        let o = c.etcdctl(&c.endpoint(n), &["member", "list", "-w", "json"]);
        if !o.status.success() {
            return false;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
            return false;
        };
        ids = v["members"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["ID"].as_u64()).collect())
            .unwrap_or_default();
        ids.len() == 3
    });
    assert!(ok, "member list through member {n}");
    ids.sort();
    ids
}

/// Every entry of the data root (data dirs, dirs moved aside, restore scratch dirs).
fn data_listing(c: &Cluster) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&c.data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn pids(c: &Cluster) -> Vec<i32> {
    ["etcd-0", "etcd-1", "etcd-2", "etcd-gw"]
        .iter()
        .map(|p| c.pid(p))
        .collect()
}

fn backup_dir(c: &Cluster) -> PathBuf {
    c.root.join("var/backups/etcd")
}

#[test]
fn snapshot_writes_a_verified_file_and_backups_lists_it() {
    let c = Cluster::up("bksnap");
    put(&c, "snap-key", "v1");
    let f = c.fild();

    // Into a directory of our choice.
    let dir = c.root.join("elsewhere");
    let file = snapshot_into(&c, Some(&dir));
    assert_eq!(file.parent(), Some(dir.as_path()));
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 0);
    assert_eq!(fild::etcd::snapshot::verify(&file), Ok(size));
    assert!(file.extension().is_some_and(|e| e == "db"));
    assert!(part_files(&dir).is_empty(), "{:?}", part_files(&dir));

    // Into the [etcd] backup_dir, listed by `filc etcd backups` (newest first).
    let first = snapshot_into(&c, None);
    assert_eq!(first.parent(), Some(backup_dir(&c).as_path()));
    std::thread::sleep(Duration::from_millis(1100)); // distinct names (second resolution)
    put(&c, "snap-key", "v2");
    let second = snapshot_into(&c, None);
    assert!(fild::etcd::snapshot::verify(&second).is_ok());
    // A leftover temporary is never listed.
    std::fs::write(backup_dir(&c).join(".etcd-x.db.part"), b"partial").unwrap();

    let out = f.filc_ok(&["etcd", "backups"]);
    assert!(out.contains(&second.display().to_string()), "{out}");
    assert!(out.contains(&first.display().to_string()), "{out}");
    assert!(!out.contains(".part"), "{out}");
    assert!(!out.contains(&file.display().to_string()), "{out}");

    let o = f.filc(&["etcd", "backups", "--json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["path"], second.display().to_string());
    assert_eq!(rows[1]["path"], first.display().to_string());
    for r in rows {
        assert!(r["size"].as_u64().unwrap() > 0);
        assert!(r["modified_unix"].as_u64().unwrap() > 0);
    }

    // No healthy member: a clear error, nothing written.
    f.filc_ok(&["stop", "--force", "etcd:*"]);
    let before = db_files(&backup_dir(&c));
    let o = f.filc(&["etcd", "snapshot"]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("no healthy etcd member"), "{}", text(&o));
    assert_eq!(db_files(&backup_dir(&c)), before);
}

#[test]
fn snapshots_are_private_from_the_first_byte() {
    let c = Cluster::up("bkpriv");
    put(&c, "k", "v");

    // The backup folder an older fild made: 0755. fild makes it 0700 and says so, once.
    let dir = backup_dir(&c);
    std::fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o755);
    let (file, out) = snapshot_saying(&c, None);
    assert_eq!(file.parent(), Some(dir.as_path()));
    assert!(
        out.contains(&format!("backup folder {} was mode 0755", dir.display()))
            && out.contains("made it 0700"),
        "{out}"
    );
    assert_private(&dir);
    let (_, out) = snapshot_saying(&c, None);
    assert!(!out.contains("mode 0"), "said again: {out}");
    assert_private(&dir);

    // A folder named for one snapshot is created 0700 (its missing parent too)...
    let new = c.root.join("mine/new");
    snapshot_saying(&c, Some(&new));
    assert_private(&new);
    assert_eq!(mode_of(&c.root.join("mine")), 0o700);
    // ... but an existing one is the person's: left as it is, with a note; the file is 0600.
    let open = c.root.join("open");
    std::fs::create_dir_all(&open).unwrap();
    set_mode(&open, 0o755);
    let (file, out) = snapshot_saying(&c, Some(&open));
    assert!(
        out.contains(&format!("{} is mode 0755", open.display())),
        "{out}"
    );
    assert_eq!(mode_of(&open), 0o755);
    assert_eq!(mode_of(&file), 0o600);

    // The temporary file is 0600 while it is being written, not chmod-ed after: with 30 MB
    // of data the stream and its verification last long enough to stat it.
    put_megabytes(&c, 30);
    let watch = c.root.join("watch");
    let watch_arg = watch.display().to_string();
    let mut seen = Vec::new();
    let o = std::thread::scope(|s| {
        let writer = s.spawn(|| c.fild().filc(&["etcd", "snapshot", &watch_arg]));
        while !writer.is_finished() {
            for p in part_files(&watch) {
                if let Ok(md) = std::fs::metadata(&p) {
                    use std::os::unix::fs::MetadataExt;
                    seen.push((md.mode() & 0o7777, md.len()));
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        writer.join().unwrap()
    });
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(!seen.is_empty(), "never saw the .part file: {}", text(&o));
    assert!(seen.iter().all(|(m, _)| *m == 0o600), "{seen:?}");
    assert!(seen.iter().any(|(_, len)| *len > 0), "{seen:?}");
    assert_private(&watch);
}

/// The cluster's current revision, as member 0 reports it.
fn current_revision(c: &Cluster) -> i64 {
    let o = c.etcdctl(&c.endpoint(0), &["endpoint", "status", "-w", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v[0]["Status"]["header"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {v}"))
}

#[test]
fn a_snapshot_is_named_by_the_revision_it_holds() {
    let c = Cluster::up("bkrev");
    for i in 0..20 {
        put(&c, &format!("rev-{i}"), "v");
    }
    // Quiet: the name is the cluster's revision, and what etcdctl reads from the file.
    let file = snapshot_into(&c, Some(&c.root.join("quiet")));
    assert_named_by_revision(&file);
    assert_eq!(name_revision(&file), current_revision(&c));

    // Writes racing the snapshot: whatever the stream caught, the name says what the file
    // holds. (A revision read before the stream began would be behind it.)
    put_megabytes(&c, 10);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let endpoint = c.endpoint(1);
    let file = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            with_client(&endpoint, async |client| {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = client
                        .put(format!("race-{}", n % 100), n.to_string(), None)
                        .await;
                    n += 1;
                }
                n
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        let file = snapshot_into(&c, Some(&c.root.join("racing")));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 10, "only {writes} writes raced the snapshot");
        file
    });
    assert_named_by_revision(&file);
    assert!(name_revision(&file) <= current_revision(&c));
}

#[test]
fn scheduled_backups_run_the_command_and_apply_retention() {
    let mut c = Cluster::new("bksched");
    let copies = c.root.join("copies");
    let modes = c.root.join("modes-seen-by-backup-command");
    std::fs::create_dir_all(&copies).unwrap();
    // Short interval, keep two, everything beyond those is "old".
    let ini = std::fs::read_to_string(c.config()).unwrap();
    assert!(
        ini.contains("[etcd]\n"),
        "the kit's fild.ini has an [etcd] section"
    );
    let ini = ini.replacen(
        "[etcd]\n",
        &format!(
            "[etcd]\nbackup_interval=3s\nbackup_keep=2\nbackup_max_age=1s\nbackup_command=stat -c %a \"$1\" >> {} && cp \"$1\" {}/ && echo copied\n",
            modes.display(),
            copies.display()
        ),
        1,
    );
    std::fs::write(c.config(), ini).unwrap();
    c.fild_mut().terminate();
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);
    put(&c, "sched-key", "v");

    let dir = backup_dir(&c);
    let ok = wait_until(Duration::from_secs(90), || {
        let n = db_files(&copies).len();
        let kept = db_files(&dir).len();
        n >= 3 && (1..=2).contains(&kept)
    });
    assert!(
        ok,
        "copies: {:?}, backup dir: {:?}",
        db_files(&copies),
        db_files(&dir)
    );
    // Retention deleted the older ones: every remaining file is also among the copies, and
    // the copies are whole snapshots.
    let copied: Vec<_> = db_files(&copies)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    for f in db_files(&dir) {
        assert!(copied.contains(&f.file_name().unwrap().to_owned()), "{f:?}");
    }
    for f in db_files(&copies) {
        assert!(fild::etcd::snapshot::verify(&f).is_ok(), "{f:?}");
        assert_named_by_revision(&f);
    }
    assert!(part_files(&dir).is_empty(), "{:?}", part_files(&dir));
    // The folder and its files are private, and backup_command got each file as it is: 0600.
    assert_private(&dir);
    let seen = std::fs::read_to_string(&modes).unwrap();
    assert!(seen.lines().count() >= 3, "{seen}");
    assert!(seen.lines().all(|m| m == "600"), "{seen}");
    // Retention logs each deletion just after making it: wait for the line.
    let log = || std::fs::read_to_string(c.root.join("var/log/fild.log")).unwrap_or_default();
    let logged = wait_until(Duration::from_secs(10), || {
        let l = log();
        l.contains("Scheduled etcd backup") && l.contains("deleted an old snapshot")
    });
    assert!(logged, "{}", log());
}

#[test]
fn restore_rebuilds_a_new_cluster_from_the_snapshot() {
    let c = Cluster::up("bkrestore");
    for i in 0..3 {
        put(&c, &format!("a{i}"), &format!("A{i}"));
    }
    let file = snapshot_into(&c, Some(&c.root.join("snaps")));
    assert_named_by_revision(&file);
    for i in 0..3 {
        put(&c, &format!("b{i}"), &format!("B{i}"));
    }
    let ids_before = member_ids(&c, 0);
    assert!(!c.settings("etcd-0").cluster_token.contains("-restored-"));

    // The cluster still has quorum: restoring over it takes --force, and --yes for its loss.
    let o = c.fild().filc(&[
        "etcd",
        "restore",
        &file.display().to_string(),
        "--force",
        "--yes",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    eprintln!("{out}");
    assert!(out.contains("revisions after it are lost"), "{out}");
    // The tool is the members' own: etcdutl on 3.5, etcdctl on 3.4 (no etcdutl), of the
    // members' version, beside their etcd binary; the snapshot says which etcd wrote it.
    let (tool, version) = restore_tool_of(&c);
    let line = c.etcd.line();
    assert_eq!(
        fild::etcd::bolt::recorded_versions(&file)
            .unwrap()
            .cluster_version,
        Some(format!("{line}.0"))
    );
    assert!(
        out.contains(&format!(
            "snapshot written by etcd {line} (the cluster version the snapshot records)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "offline beside each data dir with {tool} {version} ("
        )),
        "the plan does not name {tool} {version}:\n{out}"
    );
    for n in 0..3 {
        assert!(
            out.contains(&format!(
                "restoring boot{n} into {}.restoring ({tool} {version} snapshot restore, ",
                c.data.join(format!("boot{n}.etcd")).display()
            )),
            "the step does not name {tool} {version} for boot{n}:\n{out}"
        );
    }
    // The data being replaced is kept first: a safety snapshot from a member that answers,
    // in the backup folder, at the revision the b-keys reached.
    let safety = out
        .lines()
        .find_map(|l| l.strip_prefix("safety snapshot: "))
        .unwrap_or_else(|| panic!("no safety snapshot in:\n{out}"));
    let safety = std::path::Path::new(safety.split(" (revision").next().unwrap());
    assert!(safety.is_file(), "{}", safety.display());
    for step in [
        "verifying",
        "stopping",
        "moved aside",
        "starting",
        "healthy",
    ] {
        assert!(out.contains(step), "no {step:?} step in:\n{out}");
    }

    c.wait_healthy(UP);
    for n in 0..3 {
        for i in 0..3 {
            c.wait_value(n, &format!("a{i}"), &format!("A{i}"), UP);
        }
        for i in 0..3 {
            let o = c.etcdctl(
                &c.endpoint(n),
                &[
                    "get",
                    "--consistency=s",
                    "--print-value-only",
                    &format!("b{i}"),
                ],
            );
            assert!(o.status.success(), "{}", text(&o));
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "", "b{i} on {n}");
        }
    }
    // A new cluster: every member ID changed, and every member agrees on the list.
    let ids_after = member_ids(&c, 0);
    for n in 1..3 {
        assert_eq!(member_ids(&c, n), ids_after);
    }
    for id in &ids_after {
        assert!(!ids_before.contains(id), "{ids_before:?} vs {ids_after:?}");
    }
    // The old data dirs are kept aside; no scratch dir is left.
    let listing = data_listing(&c);
    for n in 0..3 {
        let live = format!("boot{n}.etcd");
        assert!(listing.contains(&live), "{listing:?}");
        let aside: Vec<&String> = listing
            .iter()
            .filter(|e| e.starts_with(&format!("{live}.")) && !e.ends_with(".restoring"))
            .collect();
        assert_eq!(aside.len(), 1, "{listing:?}");
        assert!(c.data.join(aside[0]).join("member").is_dir());
    }
    assert!(
        !listing.iter().any(|e| e.ends_with(".restoring")),
        "{listing:?}"
    );
    // The members' settings match the restored data, in the runtime layer only.
    c.assert_kit_clean("filc etcd restore");
    for n in 0..3 {
        let s = c.settings(&format!("etcd-{n}"));
        assert!(s.cluster_token.starts_with("test-bkrestore-"), "{s:?}");
        assert!(s.cluster_token.contains("-restored-"), "{s:?}");
        assert_eq!(s.cluster_state, "new", "{s:?}");
        assert!(s.argv.contains(&s.cluster_token), "{:?}", s.argv);
    }
    // The gateway serves the restored data, and the cluster takes writes again.
    let ok = wait_until(UP, || {
        let o = c.etcdctl(&c.gateway(), &["get", "--print-value-only", "a1"]);
        String::from_utf8_lossy(&o.stdout).trim() == "A1"
    });
    assert!(ok, "gateway does not serve the restored data");
    put(&c, "after", "restore");
    for n in 0..3 {
        c.wait_value(n, "after", "restore", UP);
    }
    let mut o = c.fild().filc(&["etcd", "status"]);
    let ok = wait_until(UP, || {
        o = c.fild().filc(&["etcd", "status"]);
        code(&o) == 0
    });
    assert!(ok, "{}", text(&o));
}

#[test]
fn restore_refuses_bad_input_before_touching_anything() {
    let c = Cluster::up("bkbad");
    put(&c, "keep", "me");
    let good = snapshot_into(&c, Some(&c.root.join("snaps")));
    let data = std::fs::read(&good).unwrap();
    let truncated = c.root.join("snaps/truncated.db");
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();
    let flipped = c.root.join("snaps/flipped.db");
    let mut bad = data.clone();
    bad[data.len() / 3] ^= 0xff;
    std::fs::write(&flipped, &bad).unwrap();

    let pids_before = pids(&c);
    let ids_before = member_ids(&c, 0);
    let listing_before = data_listing(&c);
    let settings_before = c.settings("etcd-0");

    let missing = c.root.join("snaps/missing.db");
    let snaps = c.root.join("snaps");
    let empty = c.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let listing = format!(
        "`filc etcd backups` lists the snapshots in {}",
        backup_dir(&c).display()
    );
    // Every refusal of the choice names the way forward.
    for (file, why) in [
        (&missing, "no such file".to_string()),
        (&truncated, "checksum".to_string()),
        (&flipped, "checksum".to_string()),
        (
            &snaps,
            format!(
                "{}: a directory, not a snapshot; it holds 3 snapshots",
                snaps.display()
            ),
        ),
        (
            &empty,
            format!(
                "{}: a directory, not a snapshot, and it holds no snapshot",
                empty.display()
            ),
        ),
    ] {
        let o = c
            .fild()
            .filc(&["etcd", "restore", &file.display().to_string()]);
        assert_ne!(code(&o), 0, "{}", text(&o));
        let t = text(&o);
        assert!(t.contains(&why), "{t}");
        assert!(t.contains(&listing), "{t}");
        assert!(t.contains("nothing was changed"), "{t}");
        assert!(t.contains(&file.display().to_string()), "{t}");
        assert!(!t.contains("stopping"), "{t}");
    }
    // The directory's snapshots are named, and a command that restores one.
    let o = c
        .fild()
        .filc(&["etcd", "restore", &snaps.display().to_string()]);
    let t = text(&o);
    for f in [&good, &truncated, &flipped] {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(t.contains(&name), "{t}");
    }
    assert!(t.contains("`filc etcd restore "), "{t}");

    assert_eq!(pids(&c), pids_before);
    assert_eq!(member_ids(&c, 0), ids_before);
    assert_eq!(data_listing(&c), listing_before);
    assert_eq!(c.settings("etcd-0"), settings_before);
    c.assert_kit_clean("refused restores");
    c.wait_healthy(UP);
    for n in 0..3 {
        c.wait_value(n, "keep", "me", UP);
    }
}

/// The tool a restore on `c` uses (etcdutl on 3.5, etcdctl on 3.4) and its version (the
/// members' own), checked against what `filc etcd show` reports of etcd-0's tools.
fn restore_tool_of(c: &Cluster) -> (&'static str, String) {
    let version = c.etcd.server_version();
    let m = c.settings("etcd-0");
    let show = c.fild().filc_ok(&["etcd", "show", "etcd-0"]);
    let beside = |tool: &str| {
        let etcd = std::path::Path::new(&m.argv[0]);
        etcd.parent().unwrap().join(tool).display().to_string()
    };
    assert_eq!(m.etcdctl_bin, beside("etcdctl"), "{m:?}");
    assert!(
        show.contains(&format!("etcdctl:        {} (etcdctl_bin)", m.etcdctl_bin)),
        "{show}"
    );
    match c.etcd {
        TestEtcd::V35 => {
            assert_eq!(m.etcdutl_bin, beside("etcdutl"), "{m:?}");
            assert!(
                show.contains(&format!("etcdutl:        {} (etcdutl_bin)", m.etcdutl_bin)),
                "{show}"
            );
            ("etcdutl", version)
        }
        TestEtcd::V34 => ("etcdctl", version),
    }
}

/// A one-member etcd 3.5.1 of the test's own (127.0.0.1, a free port, data on /dev/shm),
/// stopped by its pid when dropped.
struct Lone {
    child: std::process::Child,
    data: PathBuf,
    url: String,
}

impl Lone {
    fn start(name: &str) -> Lone {
        let v = TestEtcd::V35;
        require_etcd_version(v);
        let ports = free_ports(2);
        let data = tempfile::Builder::new()
            .prefix(&format!("fild-etcd-{name}-"))
            .tempdir_in("/dev/shm")
            .unwrap()
            .keep();
        let url = format!("http://127.0.0.1:{}", ports[0]);
        let peer = format!("http://127.0.0.1:{}", ports[1]);
        let log = std::fs::File::create(data.join("etcd.log")).unwrap();
        let child = std::process::Command::new(v.tool("etcd"))
            .args(["--name", "lone", "--data-dir"])
            .arg(data.join("lone.etcd"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .arg(format!("--initial-cluster=lone={peer}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd 3.5");
        Lone { child, data, url }
    }

    fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(TestEtcd::V35.tool("etcdctl"))
            .arg(format!("--endpoints={}", self.url))
            .arg("--command-timeout=5s")
            .args(args)
            .output()
            .expect("run etcdctl 3.5")
    }
}

impl Drop for Lone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A snapshot written by etcd 3.5 cannot be restored with etcd 3.4's etcdctl (nor run by a
/// 3.4 member): the restore is refused, saying why and which tool to name, and changes
/// nothing. On 3.4 members whatever `FILD_TEST_ETCD` says: the installable versions give no
/// tool older than a 3.5 member's own.
#[test]
fn restore_refuses_a_tool_older_than_the_snapshots_writer() {
    let c = Cluster::new_on("bkold", TestEtcd::V34);
    c.start_all();
    c.wait_healthy(UP);
    put(&c, "keep", "me");

    // The snapshot: from a 3.5.1 etcd of the test's own.
    let lone = Lone::start("bkold-35");
    let ok = wait_until(UP, || {
        lone.etcdctl(&["put", "from", "3.5"]).status.success()
    });
    assert!(ok, "etcd 3.5 did not take a write");
    let file = c.root.join("snaps/from-3.5.db");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let o = lone.etcdctl(&["snapshot", "save", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    drop(lone);
    assert_eq!(
        fild::etcd::bolt::recorded_versions(&file)
            .unwrap()
            .cluster_version,
        Some("3.5.0".to_string())
    );

    // Each member's etcdctl named in its runtime layer: Debian's 3.4.23.
    let ctl = which("etcdctl");
    for n in 0..3 {
        let settings = c.root.path().join(format!("apps/etcd/etcd-{n}.env"));
        let rt = fild::etcd::runtime::path_for(c.root.path(), &settings);
        fild::etcd::runtime::learn_in(
            settings.to_str().unwrap(),
            rt.to_str().unwrap(),
            &[("etcdctl_bin", ctl.as_str())],
            "test",
        )
        .unwrap();
    }
    assert_eq!(c.settings("etcd-0").etcdctl_bin, ctl);

    let pids_before = pids(&c);
    let ids_before = member_ids(&c, 0);
    let listing_before = data_listing(&c);
    let settings_before = c.settings("etcd-0");
    let o = c.fild().filc(&[
        "etcd",
        "restore",
        &file.display().to_string(),
        "--force",
        "--yes",
    ]);
    let t = text(&o);
    eprintln!("{t}");
    assert_ne!(code(&o), 0, "{t}");
    assert!(
        t.contains(&format!(
            "boot0: the snapshot was written by etcd 3.5 (the cluster version the snapshot records), and etcdctl 3.4.23 ({ctl}) is older"
        )),
        "{t}"
    );
    assert!(
        t.contains("boot0 runs etcd 3.4.23, which cannot open data a newer etcd wrote: switch its etcd_bin to etcd 3.5 or newer"),
        "{t}"
    );
    assert!(t.contains("nothing was changed"), "{t}");
    assert!(!t.contains("stopping"), "{t}");
    assert!(!t.contains("safety snapshot"), "{t}");

    assert_eq!(pids(&c), pids_before);
    assert_eq!(member_ids(&c, 0), ids_before);
    assert_eq!(data_listing(&c), listing_before);
    assert_eq!(c.settings("etcd-0"), settings_before);
    c.assert_kit_clean("a refused restore");
    for n in 0..3 {
        c.wait_value(n, "keep", "me", UP);
    }
}

/// `name`'s path on PATH.
fn which(name: &str) -> String {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {name} on PATH"))
        .display()
        .to_string()
}

/// fild's peak resident memory (VmHWM), in bytes.
fn vm_hwm(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/<pid>/status")
        * 1024
}

/// A scheduled backup of a member database over 512 MiB once loaded the whole snapshot into
/// fild's memory to verify it (an 8 GiB member meant 8 GiB in the supervisor, and an OOM
/// kill of fild takes every member down). Verification streams now: fild's peak RSS grows by
/// less than 64 MiB.
#[test]
fn a_scheduled_backup_of_a_large_database_keeps_fild_small() {
    const MIB: u64 = 1 << 20;
    let mut c = Cluster::new("bkbig");
    let backups = c.data.join("backups");
    let ini = std::fs::read_to_string(c.config()).unwrap();
    assert!(ini.contains("\nbackup_dir=$PRJ_ROOT/var/backups/etcd\n"));
    let with = |interval: &str| {
        ini.replacen(
            "\nbackup_dir=$PRJ_ROOT/var/backups/etcd\n",
            &format!(
                "\nbackup_dir={}\nbackup_interval={interval}\nbackup_keep=1\n",
                backups.display()
            ),
            1,
        )
    };
    std::fs::write(c.config(), with("0")).unwrap();
    c.fild_mut().terminate();
    c.start_fild();
    c.start_all();
    c.wait_healthy(UP);

    // 540 values of 1,000,000 bytes: a database of more than 512 MiB.
    put_megabytes(&c, 540);
    let pid = c.fild().pid();
    let before = vm_hwm(pid);

    std::fs::write(c.config(), with("1s")).unwrap();
    c.fild().filc_ok(&["reload"]);
    let made = wait_until(Duration::from_secs(180), || !db_files(&backups).is_empty());
    assert!(made, "no scheduled backup in {}", backups.display());
    let file = db_files(&backups).remove(0);
    let size = fild::etcd::snapshot::verify(&file).unwrap();
    assert!(size > 512 * MIB, "the snapshot is only {size} bytes");
    let after = vm_hwm(pid);
    assert!(
        after.saturating_sub(before) < 64 * MIB,
        "fild's peak RSS grew from {} MiB to {} MiB during a backup of {} MiB",
        before / MIB,
        after / MIB,
        size / MIB
    );
}
