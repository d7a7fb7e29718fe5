//! One short word for a member's health, the HEALTH cell of `filc etcd status`: a small fixed
//! set, so an error of 300 characters never widens the table. The word comes from what the
//! member answered and, when a call to it failed, from the error's class ([`super::errors`])
//! refined by what the transport said (refused, timed out, TLS). The full error stays in the
//! status's `error` (shown by `--json` and `filc etcd status -v`).

use serde::Serialize;

use super::errors::{self, Class};

/// A member's health in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// `/health` says true.
    Ok,
    /// It answers, but `/health` says false.
    #[default]
    Unhealthy,
    /// `/health` says false while an alarm (NOSPACE, CORRUPT) is raised.
    Alarm,
    /// It answers without a leader.
    NoLeader,
    /// Nothing listens at its client URL (stopped, crashed, not started).
    Refused,
    /// It did not answer in time (hung, overloaded, a partition).
    Timeout,
    /// The TLS handshake or a certificate failed.
    Tls,
    /// Unreachable otherwise (connection reset, no route, name lookup).
    Down,
    /// Not in the cluster's member list.
    Unlisted,
    /// A member with no client URL yet (a learner never started).
    Unstarted,
    /// Any other error.
    Error,
}

impl Health {
    /// Every word, in the order above.
    pub const ALL: [Health; 11] = [
        Health::Ok,
        Health::Unhealthy,
        Health::Alarm,
        Health::NoLeader,
        Health::Refused,
        Health::Timeout,
        Health::Tls,
        Health::Down,
        Health::Unlisted,
        Health::Unstarted,
        Health::Error,
    ];
    /// The longest word's length: the HEALTH column is never wider.
    pub const WIDTH: usize = 9;

    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unhealthy => "unhealthy",
            Health::Alarm => "alarm",
            Health::NoLeader => "no-leader",
            Health::Refused => "refused",
            Health::Timeout => "timeout",
            Health::Tls => "tls",
            Health::Down => "down",
            Health::Unlisted => "unlisted",
            Health::Unstarted => "unstarted",
            Health::Error => "error",
        }
    }
}

/// What the transport says, most specific first (lower case).
const TRANSPORT: &[(&str, Health)] = &[
    ("connection refused", Health::Refused),
    ("deadline", Health::Timeout),
    ("timed out", Health::Timeout),
    ("timeout", Health::Timeout),
    ("certificate", Health::Tls),
    ("tls", Health::Tls),
    ("handshake", Health::Tls),
    ("a ca to verify", Health::Tls),
    ("no leader", Health::NoLeader),
    ("connection reset", Health::Down),
    ("broken pipe", Health::Down),
    ("no route to host", Health::Down),
    ("network is unreachable", Health::Down),
    ("dns error", Health::Down),
    ("failed to lookup", Health::Down),
    ("transport error", Health::Down),
    ("error trying to connect", Health::Down),
];

fn transport(msg: &str) -> Option<Health> {
    let m = msg.to_ascii_lowercase();
    TRANSPORT
        .iter()
        .find(|(s, _)| m.contains(s))
        .map(|(_, h)| *h)
}

/// The word for an error message a call to a member came to (one the connection code made,
/// or an error etcd's status listed).
pub fn of_text(msg: &str) -> Health {
    match errors::classify_text(msg) {
        Some(Class::NoSpace) => Health::Alarm,
        _ => transport(msg).unwrap_or(Health::Error),
    }
}

/// The word for an error from etcd's client: its class, refined by what the transport said.
pub fn of_error(e: &etcd_client::Error) -> Health {
    use tonic::Code;
    match errors::classify(e) {
        Class::NoSpace => Health::Alarm,
        Class::Transient => transport(&e.to_string()).unwrap_or(match e {
            etcd_client::Error::GRpcStatus(s) if s.code() == Code::DeadlineExceeded => {
                Health::Timeout
            }
            _ => Health::Down,
        }),
        _ => transport(&e.to_string()).unwrap_or(Health::Error),
    }
}

/// A member's word: `healthy` (its `/health`), `unlisted` (the cluster answered without it
/// in its member list), the `fault` its own status call or connection came to, and whether
/// any alarm is raised.
pub fn health(healthy: bool, unlisted: bool, fault: Option<Health>, alarmed: bool) -> Health {
    match fault {
        _ if healthy => Health::Ok,
        _ if unlisted => Health::Unlisted,
        Some(f) => f,
        None if alarmed => Health::Alarm,
        None => Health::Unhealthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::errors::status;

    #[test]
    fn words_are_short_and_distinct() {
        let words: Vec<&str> = Health::ALL.iter().map(|h| h.word()).collect();
        assert_eq!(words.iter().map(|w| w.len()).max(), Some(Health::WIDTH));
        let mut unique = words.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), words.len());
        for h in Health::ALL {
            assert_eq!(
                serde_json::to_value(h).unwrap(),
                serde_json::json!(h.word())
            );
        }
    }

    #[test]
    fn an_error_comes_to_its_word() {
        use tonic::Code;
        for (code, msg, word) in [
            // What etcd-client says of a stopped member: a long gRPC error, one word.
            (
                Code::Unavailable,
                "error trying to connect: tcp connect error: Connection refused (os error 111)",
                Health::Refused,
            ),
            (
                Code::DeadlineExceeded,
                "context deadline exceeded",
                Health::Timeout,
            ),
            (Code::Cancelled, "Timeout expired", Health::Timeout),
            (Code::Unavailable, "etcdserver: no leader", Health::NoLeader),
            (Code::Unavailable, "", Health::Down),
            (Code::Unavailable, "connection reset by peer", Health::Down),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
                Health::Alarm,
            ),
            (
                Code::Unknown,
                "invalid peer certificate: UnknownIssuer",
                Health::Tls,
            ),
            (
                Code::PermissionDenied,
                "etcdserver: permission denied",
                Health::Error,
            ),
        ] {
            assert_eq!(of_error(&status(code, msg)), word, "{code:?} {msg}");
        }
        for (msg, word) in [
            (
                "https://h:2379: an https member needs a CA to verify it: set client_trusted_ca_file",
                Health::Tls,
            ),
            (
                "https://h:2379: cannot read the client certificate /x: No such file",
                Health::Tls,
            ),
            ("etcdserver: no leader", Health::NoLeader),
            ("request timed out", Health::Timeout),
            ("etcdserver: corrupt cluster", Health::Error),
        ] {
            assert_eq!(of_text(msg), word, "{msg}");
        }
    }

    #[test]
    fn health_is_ok_then_unlisted_then_the_fault_then_the_alarm() {
        use Health::*;
        assert_eq!(health(true, true, Some(Refused), true), Ok);
        assert_eq!(health(false, true, Some(Refused), true), Unlisted);
        assert_eq!(health(false, false, Some(Refused), true), Refused);
        assert_eq!(health(false, false, None, true), Alarm);
        assert_eq!(health(false, false, None, false), Unhealthy);
    }
}
