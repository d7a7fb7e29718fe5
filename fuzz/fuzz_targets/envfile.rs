//! The settings evaluator on arbitrary settings text and runtime state. Invariants: never
//! panics; a learned value applies exactly while the line it was learned over is unchanged;
//! a member's argv always starts with the binary and names its data dir.
#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fild::etcd::runtime::{Learned, Runtime};
use fild::etcd::settings::{self, Kind, Offline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The last line, if `key=value`, becomes a learned value over the file's line for it.
    let mut rt = Runtime::default();
    let raw = fild::etcd::envfile::raw_lines(text);
    if let Some((k, v)) = text.lines().last().and_then(|l| l.split_once('=')) {
        rt.learned.insert(
            k.to_string(),
            Learned {
                value: v.chars().rev().collect(),
                over: vec![raw.get(k).cloned().unwrap_or_default()],
                by: "fuzz".into(),
                at: "now".into(),
            },
        );
    }
    let env: BTreeMap<String, String> = [("ETCD0_HOST".to_string(), "127.0.0.1".to_string())]
        .into_iter()
        .collect();
    let Ok(s) = settings::from_text(
        text,
        Path::new("/p/apps/etcd/x.env"),
        Path::new("/p"),
        PathBuf::from("/p/var/etcd/runtime/x.json"),
        rt,
        &env,
        &Offline,
    ) else {
        return;
    };
    assert!(s.argv[0].starts_with('/'));
    if s.kind == Kind::Member {
        let i = s.argv.iter().position(|a| a == "--data-dir").unwrap();
        assert_eq!(s.argv[i + 1], s.get("data_dir"));
    }
});
