//! Limits on door start commands, so a sequence replayed from many spoofed sources cannot
//! fork without bound: a rate per door (a token bucket), a cap on commands running at once
//! with a bounded queue behind it, and the counts of what was queued or dropped, for a log
//! line per door once a second. Stop commands are never limited: a stop whose start ran
//! always runs (the caller never asks the gate about stops).
//!
//! A completion whose start is dropped gets no `OPEN SESAME` line of its own (nor its last
//! `Stage` line): the door's line counts it and names the first [`NAMED`] sources, so a
//! replay from spoofed sources costs the log one line a second, not three per completion.
//!
//! The decision about a start comes before its stop is written to the stop journal, so a
//! dropped start costs no journal write. Pure: the caller passes the time and the number of
//! commands running.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use super::commands::Deferred;

/// Door commands running at once, at most, before start commands queue (`--max-commands`).
/// A door command normally runs for milliseconds; 16 at once is far more than people
/// knocking need, and bounds a replay flood to 16 shells (each with its thread).
pub(crate) const DEFAULT_MAX_COMMANDS: usize = 16;
/// Start commands a door may run per second, and in a burst after a quiet spell
/// (`--door-rate`). It bounds what a replayed plain sequence adds to the firewall to
/// `rate x Cmd_Timeout` rules per door, while a script knocking in a loop (the benchmark's
/// idle run knocks about 9 times a second) is never held back.
pub(crate) const DEFAULT_DOOR_RATE: u32 = 20;
/// Start commands waiting for a free slot, at most. Beyond it they are dropped.
pub(crate) const QUEUE_LEN: usize = 64;
/// Sources of dropped starts named in a door's line each second.
pub(crate) const NAMED: usize = 3;

/// The limits, from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// At least 1.
    pub(crate) max_running: usize,
    /// Starts per door per second; 0 means no limit.
    pub(crate) door_rate: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_running: DEFAULT_MAX_COMMANDS,
            door_rate: DEFAULT_DOOR_RATE,
        }
    }
}

/// What becomes of a start command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Run it now.
    Run,
    /// It waits in the queue for a free slot ([`Gate::enqueue`]).
    Queue,
    /// Not run: the door is over its rate, or the queue is full. Its stop must not run.
    Drop,
}

/// What was held back at one door since the last report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Held {
    queued: u64,
    over_rate: u64,
    queue_full: u64,
    /// The first sources whose start was dropped.
    dropped_from: Vec<IpAddr>,
}

impl Held {
    fn dropped(&mut self, src: IpAddr) {
        if self.dropped_from.len() < NAMED {
            self.dropped_from.push(src);
        }
    }
}

/// A door's token bucket, in thousandths of a start.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    last_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Gate {
    limits: Limits,
    buckets: HashMap<Arc<str>, Bucket>,
    queue: VecDeque<Deferred>,
    held: BTreeMap<Arc<str>, Held>,
}

impl Gate {
    pub(crate) fn new(limits: Limits) -> Gate {
        Gate {
            limits: Limits {
                max_running: limits.max_running.max(1),
                ..limits
            },
            buckets: HashMap::new(),
            queue: VecDeque::new(),
            held: BTreeMap::new(),
        }
    }

    /// Decides about a start command of `door` for `src` at `now_ms`, with `running`
    /// commands running, and counts it for the report. A [`Verdict::Queue`] start is to be
    /// handed to [`Gate::enqueue`] before the next decision.
    pub(crate) fn decide(
        &mut self,
        now_ms: u64,
        door: &Arc<str>,
        src: IpAddr,
        running: usize,
    ) -> Verdict {
        if !self.take_token(door, now_ms) {
            let held = self.held.entry(door.clone()).or_default();
            held.over_rate += 1;
            held.dropped(src);
            return Verdict::Drop;
        }
        if running < self.limits.max_running && self.queue.is_empty() {
            return Verdict::Run;
        }
        if self.queue.len() >= QUEUE_LEN {
            let held = self.held.entry(door.clone()).or_default();
            held.queue_full += 1;
            held.dropped(src);
            return Verdict::Drop;
        }
        self.held.entry(door.clone()).or_default().queued += 1;
        Verdict::Queue
    }

    /// Queues a start command [`Gate::decide`] said to queue.
    pub(crate) fn enqueue(&mut self, d: Deferred) {
        self.queue.push_back(d);
    }

    fn take_token(&mut self, door: &Arc<str>, now_ms: u64) -> bool {
        let rate = u64::from(self.limits.door_rate);
        if rate == 0 {
            return true;
        }
        let capacity = rate * 1000;
        let bucket = self.buckets.entry(door.clone()).or_insert(Bucket {
            tokens: capacity,
            last_ms: now_ms,
        });
        // ms x starts/s = thousandths of a start. A clock that steps back adds nothing.
        let gained = now_ms.saturating_sub(bucket.last_ms).saturating_mul(rate);
        bucket.tokens = bucket.tokens.saturating_add(gained).min(capacity);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.tokens >= 1000 {
            bucket.tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// The next queued start, if a slot is free with `running` commands running.
    pub(crate) fn next(&mut self, running: usize) -> Option<Deferred> {
        if running < self.limits.max_running {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// Every queued start (at shutdown: they never ran, so neither do their stops).
    pub(crate) fn take_queued(&mut self) -> Vec<Deferred> {
        self.queue.drain(..).collect()
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.len()
    }

    /// One line per door that held starts back since the last report, then the counts
    /// start again. Called once a second, so each line covers about a second.
    pub(crate) fn report(&mut self, running: usize) -> Vec<(String, bool)> {
        let held = std::mem::take(&mut self.held);
        held.into_iter()
            .map(|(door, h)| {
                let mut parts = Vec::new();
                if h.queued > 0 {
                    parts.push(format!("{} queued", h.queued));
                }
                if h.over_rate > 0 {
                    parts.push(format!(
                        "{} dropped over the door's rate of {}/s",
                        h.over_rate, self.limits.door_rate
                    ));
                }
                if h.queue_full > 0 {
                    parts.push(format!(
                        "{} dropped with the queue full ({QUEUE_LEN})",
                        h.queue_full
                    ));
                }
                let mut line = format!(
                    "{door}: start commands held back in the last second: {} \
                     ({running} running, at most {}; {} waiting)",
                    parts.join(", "),
                    self.limits.max_running,
                    self.queue.len()
                );
                let dropped = h.over_rate + h.queue_full;
                if dropped > 0 {
                    let named: Vec<String> =
                        h.dropped_from.iter().map(ToString::to_string).collect();
                    let more = dropped - h.dropped_from.len() as u64;
                    line.push_str(&format!(
                        "; their OPEN SESAME lines are left out: {}{}",
                        named.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    ));
                }
                (line, dropped > 0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knockd_engine::{CommandId, CommandKind};

    fn start(id: u64, door: &str) -> Deferred {
        Deferred {
            id: CommandId(id),
            door: Arc::from(door),
            src: format!("198.18.0.{id}").parse().unwrap(),
            template: "open %IP%".into(),
            kind: CommandKind::Start,
        }
    }

    /// Decides about `d` and queues it when told to, as the server does.
    fn admit(g: &mut Gate, now_ms: u64, d: Deferred, running: usize) -> Verdict {
        let v = g.decide(now_ms, &d.door, d.src, running);
        if v == Verdict::Queue {
            g.enqueue(d);
        }
        v
    }

    #[test]
    fn a_door_runs_its_rate_in_a_burst_then_its_rate_a_second() {
        let mut g = Gate::new(Limits {
            max_running: 100,
            door_rate: 3,
        });
        let verdicts: Vec<Verdict> = (0..10)
            .map(|i| admit(&mut g, 1000, start(i, "a"), 0))
            .collect();
        assert_eq!(verdicts[..3], [Verdict::Run; 3]);
        assert_eq!(verdicts[3..], [Verdict::Drop; 7]);
        // Another door has its own bucket.
        assert_eq!(admit(&mut g, 1000, start(20, "b"), 0), Verdict::Run);
        // A third of a second later: one more start.
        assert_eq!(admit(&mut g, 1333, start(30, "a"), 0), Verdict::Drop);
        assert_eq!(admit(&mut g, 1334, start(31, "a"), 0), Verdict::Run);
        assert_eq!(
            g.report(0),
            [(
                "a: start commands held back in the last second: 8 dropped over the door's \
                 rate of 3/s (0 running, at most 100; 0 waiting); their OPEN SESAME lines are \
                 left out: 198.18.0.3, 198.18.0.4, 198.18.0.5 and 5 more"
                    .to_string(),
                true
            )]
        );
        assert!(g.report(0).is_empty(), "counts start again");
    }

    #[test]
    fn beyond_the_cap_starts_queue_in_order_and_then_drop() {
        let mut g = Gate::new(Limits {
            max_running: 2,
            door_rate: 0,
        });
        assert_eq!(admit(&mut g, 0, start(0, "a"), 1), Verdict::Run);
        assert_eq!(admit(&mut g, 0, start(1, "a"), 2), Verdict::Queue);
        // Behind a queue, a start waits its turn even when a slot is free.
        assert_eq!(admit(&mut g, 0, start(2, "a"), 1), Verdict::Queue);
        for i in 3..QUEUE_LEN as u64 + 10 {
            let v = admit(&mut g, 0, start(i, "a"), 2);
            assert_eq!(v == Verdict::Queue, i < QUEUE_LEN as u64 + 1, "{i}");
        }
        assert_eq!(g.queued(), QUEUE_LEN);
        assert_eq!(g.next(2), None);
        assert_eq!(g.next(1).map(|d| d.id.0), Some(1));
        assert_eq!(g.next(0).map(|d| d.id.0), Some(2));
        let (line, dropped) = g.report(2).remove(0);
        assert_eq!(
            line,
            format!(
                "a: start commands held back in the last second: {} queued, 9 dropped with \
                 the queue full ({QUEUE_LEN}) (2 running, at most 2; {} waiting); their OPEN \
                 SESAME lines are left out: 198.18.0.{}, 198.18.0.{}, 198.18.0.{} and 6 more",
                QUEUE_LEN,
                QUEUE_LEN - 2,
                QUEUE_LEN + 1,
                QUEUE_LEN + 2,
                QUEUE_LEN + 3
            )
        );
        assert!(dropped);
        assert_eq!(g.take_queued().len(), QUEUE_LEN - 2);
        assert_eq!(g.queued(), 0);
    }

    #[test]
    fn only_queued_is_not_a_drop_and_the_clock_stepping_back_adds_no_tokens() {
        let mut g = Gate::new(Limits {
            max_running: 1,
            door_rate: 1,
        });
        assert_eq!(admit(&mut g, 10_000, start(0, "a"), 1), Verdict::Queue);
        assert!(!g.report(1)[0].1, "queued only: not an error");
        assert_eq!(admit(&mut g, 5_000, start(1, "a"), 0), Verdict::Drop);
        assert_eq!(admit(&mut g, 10_999, start(2, "a"), 0), Verdict::Drop);
        assert_eq!(admit(&mut g, 11_000, start(3, "a"), 1), Verdict::Queue);
    }
}
