//! Who gets a connection, and how fast a wrong password is answered.
//!
//! - [`Slots`]: a fixed number of connections at a time, with slots kept for local root (uid 0
//!   or fild's own user on the Unix socket), so `filc status` as root is answered while others
//!   hold every general slot. A connection that finds no slot is closed at once.
//! - [`Brake`]: failed logins counted per source (a TCP peer's address, a Unix peer's uid);
//!   after [`FREE_FAILURES`] the reply to each further failure is held back, doubling up to
//!   [`MAX_DELAY`]. A success from that source clears its count.
//! - [`credentials_match`]: constant-time comparison of the credentials a request carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Credentials, Password};

/// Connections anyone allowed may hold at once.
pub const GENERAL_SLOTS: usize = 240;
/// Further connections only local root may use.
pub const ROOT_SLOTS: usize = 16;

/// Failed logins from one source answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// The first held-back reply waits this long; each further failure doubles it.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest a reply is held back.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// A source's count is forgotten after this long without a failure.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most sources remembered at once (the oldest is forgotten first).
pub const MAX_SOURCES: usize = 1024;

/// The connection slots, shared by every listener.
#[derive(Clone)]
pub struct Slots {
    general: Arc<Semaphore>,
    root: Arc<Semaphore>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots::new(GENERAL_SLOTS, ROOT_SLOTS)
    }
}

impl Slots {
    pub fn new(general: usize, root: usize) -> Slots {
        Slots {
            general: Arc::new(Semaphore::new(general)),
            root: Arc::new(Semaphore::new(root)),
        }
    }

    /// A slot for one connection, held until the returned permit is dropped: a general one,
    /// else (for local root) a reserved one; `None` when the connection must be closed.
    pub fn admit(&self, local_root: bool) -> Option<OwnedSemaphorePermit> {
        self.general.clone().try_acquire_owned().ok().or_else(|| {
            local_root
                .then(|| self.root.clone().try_acquire_owned().ok())
                .flatten()
        })
    }
}

/// How long to hold the reply to a source's `failures`-th failed login in a row.
pub fn delay_after(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// The failed-login brake, shared by every listener.
#[derive(Clone, Default)]
pub struct Brake {
    sources: Arc<Mutex<HashMap<String, (u32, Instant)>>>,
}

impl Brake {
    /// A failed login from `source` at `now`: its count in a row, and how long to hold the
    /// reply.
    pub fn failed(&self, source: &str, now: Instant) -> (u32, Duration) {
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, last)| now.saturating_duration_since(*last) < FORGET_AFTER);
        if map.len() >= MAX_SOURCES && !map.contains_key(source) {
            let oldest = map
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let entry = map.entry(source.to_string()).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        (entry.0, delay_after(entry.0))
    }

    /// A good login from `source`: its failures are forgiven.
    pub fn succeeded(&self, source: &str) {
        let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(source);
    }
}

/// Whether `user`/`pass` are the configured credentials, compared in constant time (over
/// SHA-256 digests, so neither the length nor the first differing byte shows in the time).
pub fn credentials_match(creds: &Credentials, user: &str, pass: &str) -> bool {
    use sha2::{Digest, Sha256};
    let digest = |s: &[u8]| Sha256::digest(s);
    let user_ok = digest(user.as_bytes()).ct_eq(&digest(creds.username.as_bytes()));
    let pass_ok = match &creds.password {
        Password::Plain(p) => digest(pass.as_bytes()).ct_eq(&digest(p.as_bytes())),
        Password::Sha1Hex(h) => {
            use sha1::Digest as _;
            let given = hex::encode(sha1::Sha1::digest(pass.as_bytes()));
            digest(given.as_bytes()).ct_eq(&digest(h.to_ascii_lowercase().as_bytes()))
        }
    };
    bool::from(user_ok & pass_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keeps_its_slots_when_the_general_ones_are_taken() {
        let slots = Slots::new(2, 1);
        let held: Vec<_> = (0..2).map(|_| slots.admit(false).unwrap()).collect();
        assert!(slots.admit(false).is_none(), "a third stranger got in");
        let root = slots.admit(true).expect("root's reserved slot");
        assert!(slots.admit(true).is_none(), "only one reserved slot");
        drop(root);
        drop(held);
        assert!(
            slots.admit(false).is_some(),
            "slots come back when connections end"
        );
    }

    #[test]
    fn the_brake_holds_replies_after_three_failures_and_forgives_a_success() {
        let delays: Vec<u64> = (1..=8).map(|n| delay_after(n).as_millis() as u64).collect();
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 4000]);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
        let b = Brake::default();
        let t = Instant::now();
        for n in 1..=4 {
            assert_eq!(b.failed("10.0.0.1", t).0, n);
        }
        assert_eq!(b.failed("10.0.0.2", t), (1, Duration::ZERO), "per source");
        b.succeeded("10.0.0.1");
        assert_eq!(b.failed("10.0.0.1", t).0, 1);
        let later = t + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(
            b.failed("10.0.0.2", later).0,
            1,
            "forgotten after a quiet spell"
        );
    }

    #[test]
    fn the_brake_remembers_a_bounded_number_of_sources() {
        let b = Brake::default();
        let t = Instant::now();
        for i in 0..(MAX_SOURCES + 10) {
            b.failed(&format!("s{i}"), t + Duration::from_millis(i as u64));
        }
        assert!(b.sources.lock().unwrap().len() <= MAX_SOURCES);
    }

    #[test]
    fn credentials_compare_plain_and_sha() {
        let plain = Credentials {
            username: "bob".into(),
            password: Password::Plain("pw".into()),
        };
        assert!(credentials_match(&plain, "bob", "pw"));
        assert!(!credentials_match(&plain, "bob", "pw2"));
        assert!(!credentials_match(&plain, "bo", "pw"));
        let sha = Credentials {
            username: "bob".into(),
            password: Password::Sha1Hex(hex::encode(<sha1::Sha1 as sha1::Digest>::digest(b"pw"))),
        };
        assert!(credentials_match(&sha, "bob", "pw"));
        assert!(!credentials_match(&sha, "bob", "nope"));
    }
}
