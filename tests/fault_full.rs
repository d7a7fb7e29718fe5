//! The full fault suite: `scripts/fault-suite.sh` (runs these with --ignored, one at a time).
//! Figures of the last full run are in RELIABILITY.md.
mod common;
mod common_fault;

use common_fault::cases;

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault1_member_sigkills_2min() {
    cases::member_kills("member-kills", 120);
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault2_fild_sigkill() {
    cases::fild_kills("fild-kills", 2);
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault3_gateway_sigkills() {
    cases::gateway_kills("gateway-kills", 5);
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault4_member_sigstop_liveness() {
    cases::member_stops("member-sigstop", 3);
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault5_log_disk_full() {
    cases::log_disk_full("log-disk-full");
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault6_concurrent_requests() {
    cases::concurrent_requests("requests", 10, 20);
}

#[test]
#[ignore = "long: scripts/fault-suite.sh"]
fn fault7_three_host_partition() {
    cases::partition("partition", 20);
}
