//! What the alert hook is told, and when (pure).
//!
//! The command gets one JSON object on its standard input, one line, its `event` field
//! naming the kind:
//!
//! - `program`: a program entered FATAL or BACKOFF: `name`, `group`, `from`, `to` (states as
//!   `filc status` shows them), `last_exit` (`exit N` or `signal N`, when it had one) and
//!   `error` (why it is FATAL or could not start, when fild knows).
//! - `cluster`: the etcd cluster's verdict changed (`healthy`, `degraded`, `no_quorum`, or
//!   `unanswered`: fild's round of status calls got no answer within its bound, as when hosts
//!   are powered off or cut off): `from` (null at fild's first view), `to`, and the
//!   `healthy_voters`, `voters` and `quorum` of the view (the last answered one for
//!   `unanswered`).
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
        // Within what RFC 3339 can write (humantime panics outside 1970..=9999).
        let unix =
            e.at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .min(LAST_RFC3339_SECOND);
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(unix);
        o.insert("host".into(), host.into());
        o.insert(
            "time".into(),
            humantime::format_rfc3339_seconds(at).to_string().into(),
        );
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

/// 9999-12-31T23:59:59Z.
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

/// The verdicts fild has seen, for the hook (the etcd refresher keeps one; pure).
#[derive(Debug, Default)]
pub struct Verdicts {
    told: Option<String>,
    /// The first view was not healthy: told only if the next one agrees.
    first_bad: bool,
}

impl Verdicts {
    /// A new view's verdict: `Some((from, to))` when it is to be told. Every change is; the
    /// first view only when it is not healthy and the next view is not healthy either, so
    /// fild's own start (members still coming up) pages nobody.
    pub fn see(&mut self, now: &str) -> Option<(Option<String>, String)> {
        match self.told.as_deref() {
            Some(t) if t == now => None,
            Some(_) => Some((self.told.replace(now.to_string()), now.to_string())),
            None if now == "healthy" => {
                self.told = Some(now.to_string());
                None
            }
            None if !self.first_bad => {
                self.first_bad = true;
                None
            }
            None => {
                self.told = Some(now.to_string());
                Some((None, now.to_string()))
            }
        }
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

    fn seen(views: &[&str]) -> Vec<(Option<String>, String)> {
        let mut v = Verdicts::default();
        views.iter().filter_map(|now| v.see(now)).collect()
    }

    fn told(from: Option<&str>, to: &str) -> (Option<String>, String) {
        (from.map(str::to_string), to.to_string())
    }

    #[test]
    fn verdicts_are_told_on_change_and_a_bad_start_only_when_it_lasts() {
        // A healthy start is the baseline; each change after it is told once.
        assert_eq!(
            seen(&[
                "healthy",
                "healthy",
                "degraded",
                "degraded",
                "unanswered",
                "healthy"
            ]),
            [
                told(Some("healthy"), "degraded"),
                told(Some("degraded"), "unanswered"),
                told(Some("unanswered"), "healthy"),
            ]
        );
        // fild started while its members came up: nothing.
        assert!(seen(&["no_quorum", "healthy", "healthy"]).is_empty());
        // Started into a broken cluster: told at the second view, from null.
        assert_eq!(
            seen(&["no_quorum", "degraded", "healthy"]),
            [told(None, "degraded"), told(Some("degraded"), "healthy")]
        );
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
        // A clock past what RFC 3339 writes is clamped, never a panic.
        let far = Stamped {
            event: Event::Overflow { dropped: 1 },
            at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(u64::MAX / 4),
        };
        let v: serde_json::Value = serde_json::from_str(&json(&far, "h")).unwrap();
        assert_eq!(v["time"], "9999-12-31T23:59:59Z");
    }
}
