mod common;
use common::*;
use fild::api::ProcessState;
use std::time::Duration;

#[test]
fn autostart_runs_and_status_reports_it() {
    let dir = TestDir::new("autostart");
    let f = Fild::start(
        &dir,
        "[program:a]\ncommand=sleep 1000\nstartsecs=0\n\n[program:b]\ncommand=sleep 1000\nautostart=false\n",
    );
    let a = f.wait_state("a", ProcessState::Running, Duration::from_secs(5));
    assert!(alive(a.pid as i32));
    assert_eq!(f.state("b"), ProcessState::Stopped);
}
