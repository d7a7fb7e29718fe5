//! The fault suite's quick cases (CI): a member SIGKILLed every few seconds for ~20 s, the
//! gateway SIGKILLed under load, a SIGSTOPped member restarted by the liveness check, and 200
//! concurrent mixed requests. Each ends with every acknowledged write read back from every
//! member through its own endpoint and the members' hash_kv equal at one revision. The full
//! suite (longer runs, fild killed, log disk full, three-host partition) is
//! `scripts/fault-suite.sh`; see RELIABILITY.md.
mod common;
mod common_fault;

use common_fault::cases;

#[test]
fn fault_member_sigkills_20s() {
    cases::member_kills("ci-member-kills", 20);
}

#[test]
fn fault_gateway_sigkills() {
    cases::gateway_kills("ci-gateway-kills", 2);
}

#[test]
fn fault_member_sigstop_liveness() {
    cases::member_stops("ci-member-sigstop", 1);
}

#[test]
fn fault_concurrent_requests() {
    cases::concurrent_requests("ci-requests", 10, 20);
}
