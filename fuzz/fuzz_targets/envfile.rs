//! The member env-file reader and rewriter on arbitrary text. Invariants: never panics, and
//! a key written with `set` reads back as the literal value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = [("ETCD_DATA_ROOT".to_string(), "/d".to_string())]
        .into_iter()
        .collect();
    let _ = fild::etcd::envfile::evaluate(text, &env);
    let value = text.lines().next().unwrap_or("").replace(['$', '`', '\\', '"', '\''], "");
    let rewritten = fild::etcd::envfile::set(text, "fuzz_key", &value);
    if let Ok(vars) = fild::etcd::envfile::evaluate(&rewritten, &env) {
        assert_eq!(vars.get("fuzz_key").map(String::as_str), Some(value.as_str()));
    }
});
