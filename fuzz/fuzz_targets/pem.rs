//! The PEM readers behind `tls_cert_file`, `tls_key_file` and `ca_file` (rustls-pki-types'
//! parsing, fild's errors) on arbitrary bytes. Invariants: never panics; a success holds at
//! least one certificate; a failure names the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match fild::config::pem_certs(data) {
        Ok(n) => assert!(n >= 1),
        Err(e) => assert!(e.starts_with("input: "), "{e}"),
    }
    if let Err(e) = fild::config::pem_key(data) {
        assert!(e.starts_with("input: "), "{e}");
    }
});
