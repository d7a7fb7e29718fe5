//! `[supervisord] on_change`: the alert hook, run by a real fild with the event as JSON on
//! its standard input. Several programs failing at once give one event per change; a busy
//! command (held past its timeout) makes the queue overflow into one `overflow` event; a real
//! etcd cluster's verdict changes are told as `cluster` events.

mod common;

use std::path::Path;
use std::time::Duration;

use common::etcd::Cluster;
use common::*;
use fild::api::ProcessState;
use serde_json::Value;

/// A hook script in `dir` that records each run, appending `$FILD_EVENT` and the JSON it
/// read as one line to `dir/events`, then runs `then`.
fn hook_script(dir: &TestDir, then: &str) -> std::path::PathBuf {
    let d = dir.path().display();
    dir.script(
        "hook.sh",
        &format!("printf '%s ' \"$FILD_EVENT\" >> '{d}/events'\ncat >> '{d}/events'\n{then}\n"),
    )
}

/// Every run so far: (`$FILD_EVENT`, the event).
fn events(dir: &Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(dir.join("events")).unwrap_or_default();
    // A run may be mid-write: only whole lines count.
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|l| {
            let (kind, json) = l.split_once(' ').expect("`KIND JSON`");
            let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {l}"));
            (kind.to_string(), v)
        })
        .collect()
}

/// A fild whose `[supervisord]` has `hook` (keys and values), with five programs that fail
/// at once at start-up: each enters BACKOFF, then FATAL (startretries=1).
fn failing_five(dir: &TestDir, hook: &str) -> Fild {
    let programs: String = (1..=5)
        .map(|n| {
            format!(
                "[program:fail-{n}]\ncommand=sh -c 'echo boom >&2; exit 3'\nstartsecs=1\nstartretries=1\n\n"
            )
        })
        .collect();
    let ini =
        preamble(dir.path()).replacen("[supervisord]\n", &format!("[supervisord]\n{hook}\n"), 1);
    let config = dir.write("fild.ini", &(ini + &programs));
    Fild::start_with(dir.path(), &config)
}

fn wait_all_fatal(f: &Fild) {
    for n in 1..=5 {
        f.wait_state(
            &format!("fail-{n}"),
            ProcessState::Fatal,
            Duration::from_secs(30),
        );
    }
}

#[test]
fn programs_failing_at_once_give_one_event_per_change() {
    let dir = TestDir::new("alert-each");
    let hook = hook_script(&dir, "");
    let f = failing_five(&dir, &format!("on_change={}", hook.display()));
    wait_all_fatal(&f);
    assert!(
        wait_until(Duration::from_secs(20), || events(dir.path()).len() >= 10),
        "{:?}",
        events(dir.path())
    );
    // Nothing more comes: one event per change, none twice.
    std::thread::sleep(Duration::from_secs(1));
    let all = events(dir.path());
    assert_eq!(all.len(), 10, "{all:#?}");
    let host = nix::unistd::gethostname().unwrap();
    for n in 1..=5 {
        let name = format!("fail-{n}");
        let mine: Vec<&Value> = all
            .iter()
            .filter(|(_, v)| v["name"] == name.as_str())
            .map(|(kind, v)| {
                assert_eq!(kind, "program");
                v
            })
            .collect();
        let states: Vec<(&str, &str)> = mine
            .iter()
            .map(|v| (v["from"].as_str().unwrap(), v["to"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states,
            [("STARTING", "BACKOFF"), ("STARTING", "FATAL")],
            "{name}: {mine:#?}"
        );
        for v in &mine {
            assert_eq!(v["event"], "program");
            assert_eq!(v["group"], name.as_str());
            assert_eq!(v["last_exit"], "exit 3");
            assert_eq!(v["host"], host.to_str().unwrap());
            assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
            assert!(v["time_unix"].as_u64().unwrap() > 1_700_000_000, "{v}");
        }
        assert!(
            mine[1]["error"]
                .as_str()
                .unwrap()
                .contains("Exited too quickly"),
            "{:?}",
            mine[1]
        );
    }
}

#[test]
fn a_busy_hook_overflows_into_one_overflow_event_and_never_blocks_fild() {
    let dir = TestDir::new("alert-overflow");
    // The first run holds on past its timeout (its sleep's pid recorded); later runs are quick.
    let d = dir.path().display();
    let hook = hook_script(
        &dir,
        &format!(
            "if mkdir '{d}/held' 2>/dev/null; then sleep 60 & echo $! > '{d}/sleep.pid'; wait; fi"
        ),
    );
    let hook = format!(
        "on_change={}\non_change_timeout=4s\non_change_queue=2",
        hook.display()
    );
    let f = failing_five(&dir, &hook);
    wait_all_fatal(&f);
    // All ten changes happened while the first run is still held: fild answers meanwhile.
    let sleeper: i32 = std::fs::read_to_string(dir.join("sleep.pid"))
        .expect("the first run is holding")
        .trim()
        .parse()
        .unwrap();
    assert!(alive(sleeper), "the first run should still be held");
    assert_eq!(f.status().len(), 5);
    // Every change is accounted for: told, or counted in an overflow event where it was
    // dropped. The five FATALs came while the first run was held and the queue full, so the
    // last event is an overflow.
    let accounted = |all: &[(String, Value)]| {
        all.iter()
            .map(|(k, v)| match k.as_str() {
                "overflow" => v["dropped"].as_u64().unwrap(),
                _ => 1,
            })
            .sum::<u64>()
    };
    assert!(
        wait_until(Duration::from_secs(30), || accounted(&events(dir.path()))
            >= 10),
        "{:#?}",
        events(dir.path())
    );
    std::thread::sleep(Duration::from_secs(1));
    let all = events(dir.path());
    assert_eq!(accounted(&all), 10, "{all:#?}");
    let (last_kind, last) = all.last().unwrap();
    assert_eq!(
        (last_kind.as_str(), &last["event"]),
        ("overflow", &Value::from("overflow"))
    );
    assert!(last["dropped"].as_u64().unwrap() >= 4, "{last}");
    let told: Vec<(&str, &str)> = all
        .iter()
        .filter(|(k, _)| k == "program")
        .map(|(_, v)| (v["name"].as_str().unwrap(), v["to"].as_str().unwrap()))
        .collect();
    // At most the held run, the two that fit and one more after the first pop.
    assert!((1..=4).contains(&told.len()), "{all:#?}");
    let mut distinct = told.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), told.len(), "an event told twice: {all:#?}");
    for pair in all.windows(2) {
        assert!(
            pair[0].0 != "overflow" || pair[1].0 != "overflow",
            "{all:#?}"
        );
    }
    // The timeout stopped the held run's whole process group.
    assert!(wait_until(Duration::from_secs(15), || !alive(sleeper)));
    let log = std::fs::read_to_string(dir.join("fild.log")).unwrap();
    assert!(log.contains("on_change timed out and was stopped"), "{log}");
    assert!(log.contains("events were dropped"), "{log}");
    // `/metrics` counts the same: the drops, the held run timed out, the others ran.
    let (status, metrics) = raw(&f.socket(), &request("GET", "/metrics", "", ""));
    assert_eq!(status, Some(200), "{metrics}");
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .to_string()
    };
    let dropped: u64 = all
        .iter()
        .filter(|(k, _)| k == "overflow")
        .map(|(_, v)| v["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sample("fild_on_change_dropped_events_total"),
        dropped.to_string()
    );
    assert_eq!(
        sample("fild_on_change_runs_total{outcome=\"timed_out\"}"),
        "1"
    );
    assert_eq!(
        sample("fild_on_change_runs_total{outcome=\"ok\"}"),
        (all.len() - 1).to_string()
    );
    assert_eq!(sample("fild_on_change_runs_total{outcome=\"failed\"}"), "0");
}

#[test]
fn a_reload_adds_the_hook_and_verdict_changes_are_told() {
    let c = Cluster::new("alert-verdict");
    let dir = c.root.path().to_path_buf();
    let ini = std::fs::read_to_string(c.config()).unwrap();
    let hook = format!(
        "[supervisord]\non_change={}\n",
        hook_script(&c.root, "").display()
    );
    // Liveness off: the frozen members below must stay as they are, not be restarted.
    let ini = ini.replacen("[supervisord]\n", &hook, 1).replacen(
        "[etcd]\n",
        "[etcd]\nliveness_window=0\n",
        1,
    );
    std::fs::write(c.config(), ini).unwrap();
    c.fild().filc_ok(&["reload"]);
    c.start_all();
    c.wait_healthy(Duration::from_secs(60));
    // Whatever fild saw while the members came up ends in `healthy`.
    let told_healthy = |from: &str| {
        events(&dir)
            .iter()
            .any(|(_, v)| v["from"] == from && v["to"] == "healthy")
    };
    let first = events(&dir);
    assert!(
        first.is_empty()
            || wait_until(Duration::from_secs(40), || told_healthy("no_quorum")
                || told_healthy("degraded")),
        "{first:#?}"
    );
    c.fild().filc_ok(&["stop", "etcd:etcd-2"]);
    let degraded = |e: &[(String, Value)]| {
        e.iter()
            .any(|(_, v)| v["from"] == "healthy" && v["to"] == "degraded")
    };
    assert!(
        wait_until(Duration::from_secs(40), || degraded(&events(&dir))),
        "{:#?}",
        events(&dir)
    );
    c.fild().filc_ok(&["start", "etcd:etcd-2"]);
    assert!(
        wait_until(Duration::from_secs(60), || told_healthy("degraded")),
        "{:#?}",
        events(&dir)
    );
    // Every member frozen (SIGSTOP: connections accepted, nothing answered, as with hosts cut
    // off): fild's round gets no answer in time, or sees no quorum; either is told.
    let pids: Vec<i32> = (0..3)
        .map(|n| c.fild().info(&format!("etcd-{n}")).pid as i32)
        .collect();
    for &p in &pids {
        signal(p, libc::SIGSTOP);
    }
    let lost = |e: &[(String, Value)]| {
        e.iter().any(|(_, v)| {
            v["from"] == "healthy" && (v["to"] == "unanswered" || v["to"] == "no_quorum")
        })
    };
    let seen = wait_until(Duration::from_secs(60), || lost(&events(&dir)));
    for &p in &pids {
        signal(p, libc::SIGCONT);
    }
    assert!(seen, "{:#?}", events(&dir));
    let back = |e: &[(String, Value)]| {
        e.iter()
            .position(|(_, v)| {
                v["from"] == "healthy" && (v["to"] == "unanswered" || v["to"] == "no_quorum")
            })
            .is_some_and(|i| e[i + 1..].iter().any(|(_, v)| v["to"] == "healthy"))
    };
    assert!(
        wait_until(Duration::from_secs(60), || back(&events(&dir))),
        "{:#?}",
        events(&dir)
    );
    let all = events(&dir);
    // Each event starts where the one before ended; stopping a member is no program alert.
    let cluster: Vec<&Value> = all
        .iter()
        .map(|(k, v)| {
            assert_eq!(k, "cluster", "{v}");
            v
        })
        .collect();
    for pair in cluster.windows(2) {
        assert_eq!(pair[0]["to"], pair[1]["from"], "{cluster:#?}");
    }
    let d = cluster.iter().find(|v| v["to"] == "degraded").unwrap();
    assert_eq!(
        (
            d["healthy_voters"].as_u64(),
            d["voters"].as_u64(),
            d["quorum"].as_u64()
        ),
        (Some(2), Some(3), Some(2)),
        "{d}"
    );
    assert_eq!(cluster.last().unwrap()["to"], "healthy");
}
