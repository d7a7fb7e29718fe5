//! The control API's request decoding on arbitrary bytes: request bodies (an etcd
//! operation's too, with the names it is shown under), percent-encoded names, server URLs.
//! Invariant: never panics.
#![no_main]

use fild::api::{EtcdOpRequest, NamesRequest, SignalRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<NamesRequest>(data);
    let _ = serde_json::from_slice::<SignalRequest>(data);
    if let Ok(op) = serde_json::from_slice::<EtcdOpRequest>(data) {
        let _ = (op.kind.title(), op.kind.command());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = fild::control::server::percent_decode(s);
        let _ = fild::control::client::Target::parse(s);
        let _ = fild::config::parse_signal(s);
    }
});
