//! Timers: attempt deadlines and scheduled stop commands.
//!
//! Attempts sharing a `Seq_Timeout` start in time order, so their deadlines come in order
//! too: one FIFO per distinct timeout is a priority queue that never needs scanning. An
//! attempt recalled from the first-step filter keeps its first step's (earlier) deadline, so
//! it goes to a small heap instead. Removed attempts leave stale entries that are skipped
//! when they reach the front.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::action::CommandId;
use super::attempt::{Handle, Table};

#[derive(Default)]
pub(super) struct Deadlines {
    /// (timeout in ms, attempts in deadline order). The deadline itself is in the attempt.
    queues: Vec<(u64, VecDeque<Handle>)>,
    /// Timeout in ms -> its queue (a config may give each door its own timeout).
    by_timeout: HashMap<u64, usize>,
    /// Attempts whose deadline is earlier than their queue's last one, earliest first.
    late: BinaryHeap<Reverse<(u64, Handle)>>,
    entries: usize,
}

impl Deadlines {
    /// The queue for attempts with this timeout, created on first use.
    pub(super) fn queue_for(&mut self, timeout_ms: u64) -> usize {
        *self.by_timeout.entry(timeout_ms).or_insert_with(|| {
            self.queues.push((timeout_ms, VecDeque::new()));
            self.queues.len() - 1
        })
    }

    /// Files attempt `h`, due at `deadline`, under `queue`.
    pub(super) fn push(&mut self, queue: usize, h: Handle, deadline: u64, table: &Table) {
        let q = &mut self.queues[queue].1;
        let in_order = q
            .back()
            .and_then(|&last| table.resolve(last))
            .is_none_or(|last| last.deadline <= deadline);
        if in_order {
            q.push_back(h);
        } else {
            self.late.push(Reverse((deadline, h)));
        }
        self.entries += 1;
    }

    pub(super) fn entries(&self) -> usize {
        self.entries
    }

    /// Pops one live attempt whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: u64, table: &Table) -> Option<Handle> {
        while let Some(&Reverse((deadline, h))) = self.late.peek() {
            if deadline > now && table.resolve(h).is_some() {
                break;
            }
            self.late.pop();
            self.entries -= 1;
            if table.resolve(h).is_some() {
                return Some(h);
            }
        }
        for (_, q) in &mut self.queues {
            while let Some(&h) = q.front() {
                let deadline = table.resolve(h).map(|a| a.deadline);
                if deadline.is_some_and(|d| d > now) {
                    break;
                }
                q.pop_front();
                self.entries -= 1;
                if deadline.is_some() {
                    return Some(h);
                }
            }
        }
        None
    }

    /// Drops stale entries at the fronts, so `earliest` is exact.
    pub(super) fn prune(&mut self, table: &Table) {
        while let Some(&Reverse((_, h))) = self.late.peek() {
            if table.resolve(h).is_some() {
                break;
            }
            self.late.pop();
            self.entries -= 1;
        }
        for (_, q) in &mut self.queues {
            while let Some(&h) = q.front() {
                if table.resolve(h).is_some() {
                    break;
                }
                q.pop_front();
                self.entries -= 1;
            }
        }
    }

    /// After `prune`: the next attempt to expire and its deadline.
    pub(super) fn earliest(&self, table: &Table) -> Option<(u64, Handle)> {
        self.queues
            .iter()
            .filter_map(|(_, q)| q.front().copied())
            .chain(self.late.peek().map(|&Reverse((_, h))| h))
            .filter_map(|h| table.resolve(h).map(|a| (a.deadline, h)))
            .min_by_key(|&(deadline, _)| deadline)
    }

    /// Drops every stale entry, so memory stays proportional to live attempts.
    pub(super) fn compact(&mut self, table: &Table) {
        self.entries = 0;
        for (_, q) in &mut self.queues {
            q.retain(|&h| table.resolve(h).is_some());
            self.entries += q.len();
        }
        self.late
            .retain(|&Reverse((_, h))| table.resolve(h).is_some());
        self.entries += self.late.len();
    }
}

/// A stop command waiting for its start to finish, or for its time.
#[derive(Clone, Debug)]
pub(super) struct PendingStop {
    pub(super) start: CommandId,
    pub(super) door: Arc<str>,
    pub(super) src: IpAddr,
    pub(super) template: String,
    pub(super) delay: Duration,
}

#[derive(Default)]
pub(super) struct Stops {
    /// Keyed by the start command, until it finishes.
    waiting: HashMap<CommandId, PendingStop>,
    /// (due ms, start id) ordered earliest first.
    due: BinaryHeap<Reverse<(u64, CommandId)>>,
    scheduled: HashMap<CommandId, PendingStop>,
}

impl Stops {
    pub(super) fn wait_for(&mut self, stop: PendingStop) {
        self.waiting.insert(stop.start, stop);
    }

    /// The start command `start` finished at `now`: its stop is due after its delay.
    /// Returns the stop and when it is due, if there is one.
    pub(super) fn start_finished(
        &mut self,
        start: CommandId,
        now: u64,
    ) -> Option<(&PendingStop, u64)> {
        let stop = self.waiting.remove(&start)?;
        let due = now.saturating_add(super::time::millis(stop.delay));
        Some((self.schedule(stop, due), due))
    }

    /// Schedules `stop` at `due` (a stop restored from before a restart has no start).
    pub(super) fn schedule(&mut self, stop: PendingStop, due: u64) -> &PendingStop {
        let start = stop.start;
        self.due.push(Reverse((due, start)));
        self.scheduled.entry(start).insert_entry(stop).into_mut()
    }

    /// Forgets the stop of a start command that never ran; true if there was one.
    pub(super) fn cancel(&mut self, start: CommandId) -> bool {
        // A scheduled entry left in `due` is skipped by `pop_due` once it is gone here.
        self.waiting.remove(&start).is_some() || self.scheduled.remove(&start).is_some()
    }

    pub(super) fn pop_due(&mut self, now: u64) -> Option<PendingStop> {
        while let Some(&Reverse((due, start))) = self.due.peek() {
            if due > now {
                return None;
            }
            self.due.pop();
            if let Some(stop) = self.scheduled.remove(&start) {
                return Some(stop);
            }
        }
        None
    }

    pub(super) fn earliest(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((due, _))| *due)
    }

    /// Every pending stop, waiting or scheduled, in the order their starts ran.
    pub(super) fn drain(&mut self) -> Vec<PendingStop> {
        let mut all: Vec<PendingStop> = self
            .waiting
            .drain()
            .chain(self.scheduled.drain())
            .map(|(_, s)| s)
            .collect();
        self.due.clear();
        all.sort_by_key(|s| s.start);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(id: u64, delay_ms: u64) -> PendingStop {
        PendingStop {
            start: CommandId(id),
            door: Arc::from("d"),
            src: "192.0.2.1".parse().unwrap(),
            template: "stop".into(),
            delay: Duration::from_millis(delay_ms),
        }
    }

    #[test]
    fn stops_wait_for_their_start() {
        let mut s = Stops::default();
        s.wait_for(stop(1, 1000));
        s.wait_for(stop(2, 10));
        assert_eq!(s.earliest(), None);
        s.start_finished(CommandId(1), 5000);
        s.start_finished(CommandId(2), 5500);
        s.start_finished(CommandId(9), 5500);
        assert_eq!(s.earliest(), Some(5510));
        assert!(s.pop_due(5509).is_none());
        assert_eq!(s.pop_due(5510).unwrap().start, CommandId(2));
        assert_eq!(s.pop_due(7000).unwrap().start, CommandId(1));
        assert!(s.pop_due(9000).is_none());
        s.wait_for(stop(3, 1));
        s.wait_for(stop(4, 1));
        s.start_finished(CommandId(4), 0);
        s.wait_for(stop(5, 1));
        assert!(s.cancel(CommandId(5)));
        assert!(!s.cancel(CommandId(5)));
        let drained: Vec<_> = s.drain().into_iter().map(|s| s.start.0).collect();
        assert_eq!(drained, [3, 4]);
        assert!(s.pop_due(u64::MAX).is_none());
    }
}
