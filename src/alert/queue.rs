//! The hook's bounded queue (pure): what waits while the command runs, and what was dropped.

use std::collections::VecDeque;
use std::time::SystemTime;

use super::event::{Event, Stamped};

/// Events waiting for the command, at most `cap`; beyond that each is counted, and the count
/// becomes one `overflow` event at the place the drops happened: before the next event that
/// fits, or last when none comes. That marker may take the queue to `cap + 1`.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Stamped>,
    cap: usize,
    dropped: u64,
    /// When the first of the current run of drops happened.
    dropped_at: Option<SystemTime>,
}

impl Queue {
    pub fn new(cap: usize) -> Queue {
        Queue {
            items: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
            dropped_at: None,
        }
    }

    /// A new bound (a reload); what already waits stays.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Queue `e`, or count it dropped when the queue is full. True when it was queued.
    pub fn push(&mut self, e: Stamped) -> bool {
        if self.items.len() >= self.cap {
            self.dropped += 1;
            self.dropped_at.get_or_insert(e.at);
            return false;
        }
        if let Some(o) = self.take_overflow() {
            self.items.push_back(o);
        }
        self.items.push_back(e);
        true
    }

    /// The next event for the command.
    pub fn pop(&mut self) -> Option<Stamped> {
        self.items.pop_front().or_else(|| self.take_overflow())
    }

    /// Forget everything (the hook was removed).
    pub fn clear(&mut self) {
        self.items.clear();
        self.dropped = 0;
        self.dropped_at = None;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.dropped == 0
    }

    fn take_overflow(&mut self) -> Option<Stamped> {
        let at = self.dropped_at.take()?;
        let dropped = std::mem::take(&mut self.dropped);
        Some(Stamped {
            event: Event::Overflow { dropped },
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: u64) -> Stamped {
        Stamped {
            event: Event::Cluster {
                from: None,
                to: format!("v{n}"),
                healthy_voters: n,
                voters: 3,
                quorum: 2,
            },
            at: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(n),
        }
    }

    fn label(e: &Stamped) -> String {
        match &e.event {
            Event::Cluster { to, .. } => to.clone(),
            Event::Overflow { dropped } => format!("overflow {dropped}"),
            Event::Program { name, .. } => name.clone(),
        }
    }

    fn drain(q: &mut Queue) -> Vec<String> {
        std::iter::from_fn(|| q.pop()).map(|e| label(&e)).collect()
    }

    #[test]
    fn under_the_bound_events_come_out_in_order() {
        let mut q = Queue::new(3);
        assert!(q.is_empty());
        for n in 1..=3 {
            assert!(q.push(cluster(n)));
        }
        assert_eq!(drain(&mut q), ["v1", "v2", "v3"]);
        assert!(q.is_empty());
    }

    #[test]
    fn drops_become_one_overflow_event_where_they_happened() {
        let mut q = Queue::new(2);
        for n in 1..=5 {
            q.push(cluster(n));
        }
        assert_eq!(q.len(), 2);
        // The command takes one; the next event fits, after the overflow marker.
        assert_eq!(label(&q.pop().unwrap()), "v1");
        assert!(q.push(cluster(6)));
        assert_eq!(q.len(), 3, "the marker may exceed the bound by one");
        let o = drain(&mut q);
        assert_eq!(o, ["v2", "overflow 3", "v6"]);
        // Dropped last, nothing after: the overflow comes out last, stamped at the first drop.
        let mut q = Queue::new(1);
        q.push(cluster(1));
        q.push(cluster(2));
        q.push(cluster(3));
        assert_eq!(label(&q.pop().unwrap()), "v1");
        let o = q.pop().unwrap();
        assert_eq!(label(&o), "overflow 2");
        assert_eq!(o.at, cluster(2).at);
        assert!(q.pop().is_none() && q.is_empty());
    }

    #[test]
    fn clear_forgets_drops_and_a_new_bound_keeps_what_waits() {
        let mut q = Queue::new(1);
        q.push(cluster(1));
        q.push(cluster(2));
        q.set_cap(3);
        assert!(q.push(cluster(3)));
        assert_eq!(drain(&mut q), ["v1", "overflow 1", "v3"]);
        q.push(cluster(4));
        q.set_cap(0);
        q.push(cluster(5));
        q.clear();
        assert!(q.is_empty() && q.pop().is_none());
    }
}
