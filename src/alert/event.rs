//! What the alert hook is told, and when (pure).
//!
//! The command gets one JSON object on its standard input, one line, its `event` field
//! naming the kind:
//!
//! - `program`: a program entered FATAL or BACKOFF: `name`, `group`, `from`, `to` (states as
//!   `filc status` shows them), `last_exit` (`exit N` or `signal N`, when it had one) and
//!   `error` (why it is FATAL or could not start, when fild knows).
//! - `cluster`: the etcd cluster's verdict changed (`healthy`, `degraded`, `no_quorum`):
//!   `from` (null at fild's first view), `to`, `healthy_voters`, `voters`, `quorum`.
//! - `overflow`: `dropped` events did not fit in the queue while the command was busy; they
//!   came between the event before and the event after this one.
//!
//! Every event also has `host` (this machine's name), `time` (RFC 3339, UTC) and
//! `time_unix` (seconds), the time it happened, not the time the command ran.

use std::time::SystemTime;

use serde::Serialize;

use crate::api::ProcessState;

/// One change worth telling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Program {
        name: String,
        group: String,
        from: ProcessState,
        to: ProcessState,
        last_exit: Option<String>,
        error: Option<String>,
    },
    Cluster {
        from: Option<String>,
        to: String,
        healthy_voters: u64,
        voters: u64,
        quorum: u64,
    },
    Overflow {
        dropped: u64,
    },
}

impl Event {
    /// `program`, `cluster` or `overflow`: the `event` field, also in `$FILD_EVENT`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Program { .. } => "program",
            Event::Cluster { .. } => "cluster",
            Event::Overflow { .. } => "overflow",
        }
    }
}

/// An event with when it happened, as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub event: Event,
    pub at: SystemTime,
}

/// The JSON line the command reads: the event's fields and `host`, `time`, `time_unix`.
pub fn json(e: &Stamped, host: &str) -> String {
    let mut v = serde_json::to_value(&e.event).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("host".into(), host.into());
        o.insert(
            "time".into(),
            humantime::format_rfc3339_seconds(e.at).to_string().into(),
        );
        let unix =
            e.at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
        o.insert("time_unix".into(), unix.into());
    }
    let mut line = v.to_string();
    line.push('\n');
    line
}

/// Whether a program's state change is told: entering FATAL or BACKOFF.
pub fn program_alerts(from: ProcessState, to: ProcessState) -> bool {
    from != to && matches!(to, ProcessState::Fatal | ProcessState::Backoff)
}

/// Whether a verdict is told, given the last one fild saw (None: this is its first view):
/// any change, and a first view that is not healthy.
pub fn verdict_alerts(last: Option<&str>, now: &str) -> bool {
    match last {
        None => now != "healthy",
        Some(l) => l != now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProcessState::*;

    #[test]
    fn programs_alert_on_entering_fatal_or_backoff_only() {
        assert!(program_alerts(Starting, Backoff));
        assert!(program_alerts(Backoff, Fatal));
        assert!(program_alerts(Running, Backoff));
        for (from, to) in [
            (Backoff, Backoff),
            (Running, Exited),
            (Starting, Running),
            (Backoff, Starting),
            (Stopping, Stopped),
            (Fatal, Fatal),
        ] {
            assert!(!program_alerts(from, to), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn verdicts_alert_on_change_and_on_a_bad_first_view() {
        assert!(!verdict_alerts(None, "healthy"));
        assert!(verdict_alerts(None, "degraded"));
        assert!(verdict_alerts(Some("healthy"), "no_quorum"));
        assert!(verdict_alerts(Some("degraded"), "healthy"));
        assert!(!verdict_alerts(Some("degraded"), "degraded"));
    }

    #[test]
    fn the_json_names_the_event_and_carries_host_and_time() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let e = Stamped {
            event: Event::Program {
                name: "etcd-1".into(),
                group: "etcd".into(),
                from: Running,
                to: Backoff,
                last_exit: Some("exit 1".into()),
                error: None,
            },
            at,
        };
        let line = json(&e, "miner-a");
        assert!(line.ends_with("}\n") && line.lines().count() == 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "program");
        assert_eq!(v["to"], "BACKOFF");
        assert_eq!(v["from"], "RUNNING");
        assert_eq!(v["last_exit"], "exit 1");
        assert_eq!(v["host"], "miner-a");
        assert_eq!(v["time"], "2027-01-15T08:00:00Z");
        assert_eq!(v["time_unix"], 1_800_000_000u64);
        let o = Stamped {
            event: Event::Overflow { dropped: 7 },
            at,
        };
        let v: serde_json::Value = serde_json::from_str(&json(&o, "h")).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["dropped"].as_u64()),
            (Some("overflow"), Some(7))
        );
        assert_eq!(o.event.kind(), "overflow");
    }
}
