//! Sending a plan: every hit checked before the first is sent, then all sent in order with
//! the delay between them.

use std::time::Duration;

use anyhow::Context;
use knock_core::hit::Hit;
use knock_core::send::{Refusal, SendError, Sender};

use crate::output::{Out, hitting};
use crate::plan::Plan;
use crate::progress::Progress;

/// An error about one hit of a sequence: `hit 2 of 3 (8000:udp): ...`.
#[derive(Debug, thiserror::Error)]
#[error("hit {index} of {total} ({hit})")]
pub(crate) struct AtHit<E: std::error::Error + 'static> {
    /// 1-based.
    pub index: usize,
    pub total: usize,
    pub hit: Hit,
    #[source]
    pub source: E,
}

/// Every hit the sender would refuse, found without sending anything.
pub(crate) fn refusals(plan: &Plan, sender: &dyn Sender) -> Vec<AtHit<Refusal>> {
    let total = plan.hits.len();
    plan.hits
        .iter()
        .enumerate()
        .filter_map(|(i, hit)| {
            sender.check(hit).err().map(|source| AtHit {
                index: i + 1,
                total,
                hit: *hit,
                source,
            })
        })
        .collect()
}

/// Sends the hits in order, pausing `plan.delay` between two hits (never after the last),
/// and printing the `-v` line before each. Stops at the first failed send. `progress`
/// hears of every hit sent and takes every pause.
pub(crate) fn send_all(
    plan: &Plan,
    sender: &mut dyn Sender,
    sleep: &mut dyn FnMut(Duration),
    out: &mut Out<'_>,
    progress: &mut dyn Progress,
) -> anyhow::Result<()> {
    let total = plan.hits.len();
    for (i, hit) in plan.hits.iter().enumerate() {
        if i > 0 && !plan.delay.is_zero() {
            progress.pause(plan.delay, sleep);
        }
        if plan.verbose {
            out.line(&hitting(hit, plan.addr)).context("write stdout")?;
        }
        sender
            .send(hit, plan.addr)
            .map_err(|source| AtHit::<SendError> {
                index: i + 1,
                total,
                hit: *hit,
                source,
            })?;
        progress.sent();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A sender and a sleeper that write one shared timeline, for tests of the send loop
    //! and of `run`.

    use std::cell::RefCell;
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::rc::Rc;
    use std::time::Duration;

    use knock_core::hit::Hit;
    use knock_core::send::{Op, Refusal, SendError, Sender};

    /// One thing that happened, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Event {
        Sent(Hit, IpAddr),
        Slept(Duration),
    }

    /// What the sender and the sleeper did, in order.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Timeline(Rc<RefCell<Vec<Event>>>);

    impl Timeline {
        pub(crate) fn events(&self) -> Vec<Event> {
            self.0.borrow().clone()
        }

        /// A sleeper that records the pause instead of taking it.
        pub(crate) fn sleeper(&self) -> impl FnMut(Duration) + use<> {
            let timeline = self.clone();
            move |d| timeline.0.borrow_mut().push(Event::Slept(d))
        }
    }

    /// Records sends; refuses hits with exact flags as the plain sender does; fails the
    /// send whose 0-based index is `fail_at`.
    #[derive(Debug, Default)]
    pub(crate) struct Recorder {
        pub timeline: Timeline,
        pub fail_at: Option<usize>,
        attempts: usize,
    }

    impl Recorder {
        pub(crate) fn failing_at(fail_at: usize) -> Recorder {
            Recorder {
                fail_at: Some(fail_at),
                ..Recorder::default()
            }
        }
    }

    impl Sender for Recorder {
        fn check(&self, hit: &Hit) -> Result<(), Refusal> {
            if hit.needs_raw() {
                return Err(Refusal::NeedsRaw);
            }
            Ok(())
        }

        fn send(&mut self, hit: &Hit, dst: IpAddr) -> Result<(), SendError> {
            let attempt = self.attempts;
            self.attempts += 1;
            if self.fail_at == Some(attempt) {
                return Err(SendError::Io {
                    op: Op::SendTo,
                    addr: SocketAddr::new(dst, hit.port),
                    source: io::ErrorKind::PermissionDenied.into(),
                });
            }
            self.timeline.0.borrow_mut().push(Event::Sent(*hit, dst));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Event, Recorder};
    use super::*;
    use crate::plan::Mode;
    use crate::progress::{Bar, Silent};
    use indicatif::ProgressDrawTarget;
    use knock_core::hit::{Proto, parse_sequence};

    fn plan(hits: &str, delay_ms: u64, verbose: bool) -> Plan {
        Plan {
            host: "h".into(),
            addr: "192.0.2.2".parse().unwrap(),
            hits: parse_sequence(hits, Proto::Tcp).unwrap(),
            delay: Duration::from_millis(delay_ms),
            verbose,
            mode: Mode::Send,
        }
    }

    /// Runs the loop; returns the timeline, stdout and the result.
    fn run(plan: &Plan, mut sender: Recorder) -> (Vec<Event>, String, anyhow::Result<()>) {
        let timeline = sender.timeline.clone();
        let mut sleep = timeline.sleeper();
        let mut text = Vec::new();
        let result = send_all(
            plan,
            &mut sender,
            &mut sleep,
            &mut Out::new(&mut text),
            &mut Silent,
        );
        (timeline.events(), String::from_utf8(text).unwrap(), result)
    }

    #[test]
    fn delay_goes_between_hits_not_after_the_last() {
        let p = plan("7000,8000:udp,9000", 150, false);
        let (events, _, result) = run(&p, Recorder::default());
        result.unwrap();
        let d = Duration::from_millis(150);
        let a = p.addr;
        assert_eq!(
            events,
            [
                Event::Sent(Hit::tcp(7000), a),
                Event::Slept(d),
                Event::Sent(Hit::udp(8000), a),
                Event::Slept(d),
                Event::Sent(Hit::tcp(9000), a),
            ]
        );
    }

    #[test]
    fn no_delay_means_no_sleep() {
        let p = plan("7000,8000", 0, false);
        let (events, _, result) = run(&p, Recorder::default());
        result.unwrap();
        assert_eq!(
            events,
            [
                Event::Sent(Hit::tcp(7000), p.addr),
                Event::Sent(Hit::tcp(8000), p.addr)
            ]
        );
    }

    #[test]
    fn verbose_prints_a_line_per_hit() {
        let (_, text, result) = run(&plan("7000,8000:udp", 0, true), Recorder::default());
        result.unwrap();
        assert_eq!(
            text,
            "hitting tcp 192.0.2.2:7000\nhitting udp 192.0.2.2:8000\n"
        );
        let (_, text, _) = run(&plan("7000", 0, false), Recorder::default());
        assert_eq!(text, "");
    }

    #[test]
    fn a_failed_send_names_the_hit_and_stops() {
        let p = plan("7000,8000:udp,9000", 10, true);
        let (events, text, result) = run(&p, Recorder::failing_at(1));
        assert_eq!(
            format!("{:#}", result.unwrap_err()),
            "hit 2 of 3 (8000:udp): sendto 192.0.2.2:8000: permission denied"
        );
        assert_eq!(
            events,
            [
                Event::Sent(Hit::tcp(7000), p.addr),
                Event::Slept(Duration::from_millis(10))
            ]
        );
        // The failed hit's line was printed before the attempt; none after it.
        assert_eq!(
            text,
            "hitting tcp 192.0.2.2:7000\nhitting udp 192.0.2.2:8000\n"
        );
    }

    #[test]
    fn with_a_bar_the_delay_is_slept_in_ticks_and_every_hit_counted() {
        let p = plan("7000,8000", 250, false);
        let mut sender = Recorder::default();
        let timeline = sender.timeline.clone();
        let mut sleep = timeline.sleeper();
        let mut bar = Bar::with_target(2, "192.0.2.2", ProgressDrawTarget::hidden());
        let mut text = Vec::new();
        send_all(
            &p,
            &mut sender,
            &mut sleep,
            &mut Out::new(&mut text),
            &mut bar,
        )
        .unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            timeline.events(),
            [
                Event::Sent(Hit::tcp(7000), p.addr),
                Event::Slept(ms(100)),
                Event::Slept(ms(100)),
                Event::Slept(ms(50)),
                Event::Sent(Hit::tcp(8000), p.addr),
            ]
        );
        assert_eq!(bar.position(), 2);
        assert!(text.is_empty(), "the bar never writes on stdout");
    }

    #[test]
    fn refusals_name_every_flagged_hit() {
        let p = plan("7000,8000:tcp:fin+psh,9000:udp,tcp:110:up", 0, false);
        let found: Vec<String> = refusals(&p, &Recorder::default())
            .into_iter()
            .map(|r| format!("{:#}", anyhow::Error::from(r)))
            .collect();
        let why = "raw flag knocks need the raw sender, which this version of knock does not have";
        assert_eq!(
            found,
            [
                format!("hit 2 of 4 (8000:tcp:fin+psh): {why}"),
                format!("hit 4 of 4 (110:tcp:psh+urg): {why}"),
            ]
        );
        let plain = plan("7000,8000:udp,tcp:1:i", 0, false);
        assert!(refusals(&plain, &Recorder::default()).is_empty());
    }
}
