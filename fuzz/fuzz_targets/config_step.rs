//! Past the parser: two arbitrary configs (`A \0 B \0 events`) loaded by the daemon's path,
//! the reload diff from A's programs to B's, then each of B's programs (up to 8) driven
//! through `state::step` by the events on a simulated clock, the way the loop drives it
//! (a spawn is answered, exits come only from a running pid, a timer fires only when armed
//! and at its deadline). Nothing is spawned or opened.
//! Invariants: nothing panics; the diff names each program once; every timer a config can
//! arm is within the configuration's bound (`MAX_SECS`), so the loop's time arithmetic holds.
#![no_main]

use std::time::{Duration, Instant};

use fild::config::{Env, MAX_SECS, ProgramSpec};
use fild::supervisor::reload;
use fild::supervisor::state::{self, Action, Exit, Input, Proc, TimerKind};
use libfuzzer_sys::fuzz_target;

fn programs(dir: &std::path::Path, name: &str, text: &[u8], env: &Env) -> Vec<ProgramSpec> {
    let main = dir.join(name);
    std::fs::write(&main, text).unwrap();
    fild::config::load(&main, env)
        .map(|c| c.programs)
        .unwrap_or_default()
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (a, b) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let events = parts.next().unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let env: Env = [("PRJ_ROOT", dir.path().to_str().unwrap()), ("HOME", "/root")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let old = programs(dir.path(), "a.ini", a, &env);
    let new = programs(dir.path(), "b.ini", b, &env);

    let plan = reload::diff(old.iter().map(|s| (s.name.as_str(), s)), &new);
    let mut named: Vec<&str> = plan
        .added
        .iter()
        .chain(&plan.changed)
        .map(|s| s.name.as_str())
        .chain(plan.removed.iter().map(String::as_str))
        .collect();
    let n = named.len();
    named.sort_unstable();
    named.dedup();
    assert_eq!(named.len(), n, "a program named twice in {plan:?}");
    let tiers = reload::tiers(&new);
    assert_eq!(tiers.iter().map(Vec::len).sum::<usize>(), new.len());

    let t0 = Instant::now();
    for spec in new.iter().take(8) {
        let mut p = Proc::default();
        let mut now = t0;
        let mut timer: Option<(Instant, TimerKind)> = None;
        let mut spawn_due = false;
        for &e in events.iter().take(512) {
            let input = if spawn_due {
                spawn_due = false;
                if e & 1 == 0 {
                    Input::Spawned { pid: 4242 }
                } else {
                    Input::SpawnFailed
                }
            } else {
                match e % 8 {
                    0 => Input::Start,
                    1 => Input::Stop,
                    2 | 3 if p.pid.is_some() => Input::Exited {
                        exit: if e % 8 == 2 {
                            Exit::Code(i32::from(e >> 4))
                        } else {
                            Exit::Signal(9)
                        },
                        group_empty: e & 0x40 == 0,
                    },
                    4 if p.leftovers => Input::GroupEmpty,
                    5 | 6 if timer.is_some() => {
                        let (at, kind) = timer.take().unwrap();
                        now = now.max(at);
                        Input::Timer(kind)
                    }
                    7 if e & 0x80 != 0 => Input::Shutdown,
                    _ => {
                        now = state::deadline(now, Duration::from_millis(u64::from(e) * 37));
                        continue;
                    }
                }
            };
            for action in state::step(&mut p, spec, input, now) {
                match action {
                    Action::Spawn => spawn_due = true,
                    Action::Arm { kind, after } => {
                        assert!(
                            after <= Duration::from_secs(MAX_SECS),
                            "{}: a {kind:?} timer of {after:?} passed the configuration's bound",
                            spec.name
                        );
                        timer = Some((state::deadline(now, after), kind));
                    }
                    Action::Disarm => timer = None,
                    Action::Signal { .. } => {}
                }
            }
        }
    }
});
