//! What a keeper knows: the stops its daemon has pending, from the messages it was sent.
//! Pure: no I/O, time passed in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::msg::Message;
use crate::stops::Pending;

/// One pending stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The daemon's key for it (the engine's id of its start command).
    pub(crate) id: u64,
    /// Due on the monotonic clock, ms since boot.
    pub(crate) due_ms: u64,
    /// As in the stop journal.
    pub(crate) stop: Pending,
}

/// The keeper's state, built from the daemon's messages.
#[derive(Debug, Default)]
pub(crate) struct Book {
    stops: BTreeMap<u64, Entry>,
    pub(crate) daemon_pid: Option<u32>,
    pub(crate) limit: Option<Duration>,
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) syslog: Option<PathBuf>,
    /// The daemon said goodbye: it ran its stops itself.
    pub(crate) bye: bool,
}

impl Book {
    pub(crate) fn apply(&mut self, message: Message) {
        match message {
            Message::Hello {
                daemon_pid,
                limit_ms,
            } => {
                self.daemon_pid = Some(daemon_pid);
                self.limit = Some(Duration::from_millis(limit_ms));
            }
            Message::Log { file, syslog } => {
                self.log_file = file;
                self.syslog = syslog;
            }
            Message::Schedule { id, due_ms, stop } => {
                self.stops.insert(id, Entry { id, due_ms, stop });
            }
            Message::Done { id } => {
                self.stops.remove(&id);
            }
            Message::Bye => self.bye = true,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.stops.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// When the next stop is due.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.stops.values().map(|e| e.due_ms).min()
    }

    /// Takes the stops due at `now_ms`, earliest first.
    pub(crate) fn take_due(&mut self, now_ms: u64) -> Vec<Entry> {
        let ids: Vec<u64> = self
            .stops
            .values()
            .filter(|e| e.due_ms <= now_ms)
            .map(|e| e.id)
            .collect();
        let mut due: Vec<Entry> = ids
            .into_iter()
            .filter_map(|id| self.stops.remove(&id))
            .collect();
        due.sort_by_key(|e| (e.due_ms, e.id));
        due
    }

    /// Takes every stop, earliest first.
    pub(crate) fn take_all(&mut self) -> Vec<Entry> {
        self.take_due(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(id: u64, due_ms: u64) -> Message {
        Message::Schedule {
            id,
            due_ms,
            stop: Pending {
                door: "d".into(),
                src: "192.0.2.1".parse().unwrap(),
                template: format!("close {id}"),
                due_ms: 0,
                delay_ms: 0,
            },
        }
    }

    #[test]
    fn schedules_replace_done_removes_and_due_ones_come_in_order() {
        let mut b = Book::default();
        b.apply(Message::Hello {
            daemon_pid: 9,
            limit_ms: 2000,
        });
        for m in [
            schedule(1, 500),
            schedule(2, 300),
            schedule(3, 900),
            schedule(1, 400),
        ] {
            b.apply(m);
        }
        b.apply(Message::Done { id: 3 });
        b.apply(Message::Done { id: 42 });
        assert_eq!((b.len(), b.next_due()), (2, Some(300)));
        assert!(b.take_due(299).is_empty());
        let due: Vec<(u64, u64)> = b.take_due(400).iter().map(|e| (e.id, e.due_ms)).collect();
        assert_eq!(due, [(2, 300), (1, 400)]);
        assert!(b.is_empty() && b.next_due().is_none());
        b.apply(schedule(5, 10));
        assert_eq!(b.take_all().len(), 1);
        assert_eq!(b.limit, Some(Duration::from_secs(2)));
        assert!(!b.bye);
        b.apply(Message::Bye);
        assert!(b.bye);
    }
}
