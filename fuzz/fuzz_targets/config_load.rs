//! The config parser and expander on arbitrary bytes: a main file (the input) that may
//! include a second file (the input again), loaded by the daemon's and the client's paths.
//! Invariant: never panics; errors name a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("fild.ini");
    std::fs::write(&main, data).unwrap();
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    std::fs::write(dir.path().join("apps/x.ini"), data).unwrap();
    let env: fild::config::Env = [
        ("PRJ_ROOT", dir.path().to_str().unwrap()),
        ("HOME", "/root"),
        ("EMPTY", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Err(errors) = fild::config::load(&main, &env) {
        for e in &errors.0 {
            assert!(!e.file.as_os_str().is_empty());
            let _ = e.to_string();
        }
    }
    let _ = fild::config::load_client(&main, &env);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = fild::config::parse_size(s);
        let _ = fild::config::parse_signal(s);
    }
});
