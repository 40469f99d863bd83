//! The server's log: engine events and runtime lines, in order, through the [`Logger`];
//! with `-l`, lines about a source wait (briefly, and in order) for its host name.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use knockd_engine::{Event, Now};

use super::lookup::{Name, Resolver};
use crate::log::{Kind, Logger};

/// How long a line waits for its source's name before it is written with the number.
const NAME_WAIT: Duration = Duration::from_secs(2);
/// Lines held at most; beyond this the oldest goes out with its number.
const MAX_HELD: usize = 1024;

/// The log kind of an engine event: stage lines are what floods produce. A stage line that
/// completes a sequence is logged with its `OPEN SESAME` instead ([`Journal::completion`]).
pub(crate) fn kind_of(event: &Event) -> Kind {
    match event {
        e if e.is_first_stage() => Kind::FirstStage,
        Event::Stage { .. } => Kind::LaterStage,
        Event::SequenceTimeout { stage: 1, .. } => Kind::FirstStageTimeout,
        Event::SequenceTimeout { .. } => Kind::LaterStageTimeout,
        Event::HmacReplay { .. } => Kind::Error,
        _ => Kind::Event,
    }
}

/// The source address an event's line starts with.
pub(crate) fn source_of(event: &Event) -> Option<IpAddr> {
    match event {
        Event::Stage { src, .. }
        | Event::OpenSesame { src, .. }
        | Event::SequenceTimeout { src, .. }
        | Event::CommandTimeout { src, .. }
        | Event::StopAtShutdown { src, .. }
        | Event::HmacReplay { src, .. }
        | Event::NoSetForFamily { src, .. } => Some(*src),
        Event::OneTimeNext { .. } | Event::OneTimeExhausted { .. } => None,
    }
}

/// `body` (which starts with `src`) with the name after the number, as knockd's `-l`
/// writes it: `192.0.2.1 (client.example): door: Stage 1`.
fn with_name(body: &str, src: IpAddr, name: Option<&str>) -> String {
    let number = src.to_string();
    match (name, body.strip_prefix(&number)) {
        (Some(name), Some(rest)) => format!("{number} ({name}){rest}"),
        _ => body.to_string(),
    }
}

/// A line waiting to be written.
#[derive(Debug)]
struct Held {
    now: Now,
    body: String,
    kind: Kind,
    /// The source whose name it waits for, and since when.
    src: Option<(IpAddr, Instant)>,
}

/// The log as the server writes it.
#[derive(Debug)]
pub(crate) struct Journal {
    logger: Logger,
    resolver: Option<Resolver>,
    /// Lines waiting for a name, and every line after them (to keep the order).
    held: VecDeque<Held>,
}

impl Journal {
    /// A journal; with a resolver, lines about a source carry its host name.
    pub(crate) fn new(logger: Logger, resolver: Option<Resolver>) -> Journal {
        Journal {
            logger,
            resolver,
            held: VecDeque::new(),
        }
    }

    pub(crate) fn logger_mut(&mut self) -> &mut Logger {
        &mut self.logger
    }

    pub(crate) fn set_logger(&mut self, logger: Logger) {
        self.logger = logger;
    }

    /// Logs an engine event at `now`.
    pub(crate) fn event(&mut self, now: Now, event: &Event) {
        self.event_as(now, event, kind_of(event));
    }

    /// Logs a line of a completion whose command runs (its last `Stage` line and `OPEN
    /// SESAME`): never folded, as knockd writes them and log watchers read them.
    pub(crate) fn completion(&mut self, now: Now, event: &Event) {
        self.event_as(now, event, Kind::Event);
    }

    fn event_as(&mut self, now: Now, event: &Event, kind: Kind) {
        match (source_of(event), &mut self.resolver) {
            (Some(src), Some(resolver)) => {
                let body = event.to_string();
                match resolver.name(src) {
                    Name::Known(name) if self.held.is_empty() => {
                        self.logger
                            .event(now, &with_name(&body, src, name.as_deref()), kind);
                    }
                    Name::Known(_) | Name::Pending => {
                        self.hold(now, body, kind, Some((src, Instant::now())));
                    }
                    Name::Unavailable => self.line(now, &body, kind),
                }
            }
            // The hot case in a flood: the line is formatted only if it is not folded.
            _ if self.held.is_empty() => self.logger.event_with(now, kind, || event.to_string()),
            _ => self.hold(now, event.to_string(), kind, None),
        }
    }

    /// Logs a line that names no source (commands, start-up, errors).
    pub(crate) fn line(&mut self, now: Now, body: &str, kind: Kind) {
        if self.held.is_empty() {
            self.logger.event(now, body, kind);
        } else {
            self.hold(now, body.to_string(), kind, None);
        }
    }

    /// A `-D` line (not ordered with the others: it is about capture, not the log).
    pub(crate) fn debug(&mut self, now: Now, body: &str) {
        self.logger.debug(now, body);
    }

    pub(crate) fn debug_enabled(&self) -> bool {
        self.logger.debug_enabled()
    }

    fn hold(&mut self, now: Now, body: String, kind: Kind, src: Option<(IpAddr, Instant)>) {
        self.held.push_back(Held {
            now,
            body,
            kind,
            src,
        });
        if self.held.len() > MAX_HELD {
            self.release(true, true);
        }
        self.release(false, false);
    }

    /// Whether lines are waiting for names (the loop then wakes up often to release them).
    pub(crate) fn waiting(&self) -> bool {
        !self.held.is_empty()
    }

    /// Writes the held lines whose names have come (or waited long enough), in order.
    /// `force` writes them all; `one` stops after the first forced line.
    fn release(&mut self, force: bool, one: bool) {
        while let Some(front) = self.held.front() {
            let name = match (&front.src, &mut self.resolver) {
                (None, _) | (_, None) => None,
                (Some((ip, since)), Some(resolver)) => match resolver.known(*ip) {
                    Some(name) => name,
                    None if force || since.elapsed() >= NAME_WAIT => None,
                    None => return,
                },
            };
            let Some(line) = self.held.pop_front() else {
                return;
            };
            let body = match line.src {
                Some((ip, _)) => with_name(&line.body, ip, name.as_deref()),
                None => line.body,
            };
            self.logger.event(line.now, &body, line.kind);
            if one {
                return;
            }
        }
    }

    /// Releases what can be released; call it on every loop turn while [`waiting`].
    ///
    /// [`waiting`]: Journal::waiting
    pub(crate) fn poll(&mut self) {
        self.release(false, false);
    }

    /// The once-a-second duties: the summaries of folded stage lines, held lines.
    pub(crate) fn tick(&mut self, now: Now) {
        self.poll();
        self.logger.tick(now);
    }

    /// Writes everything still held (at shutdown), with numbers where names are missing,
    /// and the summary of folded lines.
    pub(crate) fn flush(&mut self, now: Now) {
        self.release(true, false);
        // A second that has not ended yet is summarised too: nothing comes after it.
        self.logger.tick(Now::new(now.mono.plus(1000), now.wall));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::testutil::Scratch;
    use std::sync::Arc;

    const T: Now = Now::new(
        knockd_engine::Mono::from_millis(1_000_000),
        knockd_engine::Timestamp::from_millis(1_000_000),
    );

    fn bodies(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once("] ").unwrap().1.to_string())
            .collect()
    }

    fn logger(path: &std::path::Path) -> Logger {
        Logger::open(LogConfig {
            file: Some(path.to_path_buf()),
            ..LogConfig::default()
        })
    }

    fn stage(src: &str, stage: u32) -> Event {
        Event::Stage {
            src: src.parse().unwrap(),
            door: Arc::from("door"),
            stage,
        }
    }

    #[test]
    fn kinds_and_sources() {
        assert_eq!(kind_of(&stage("192.0.2.1", 1)), Kind::FirstStage);
        assert_eq!(kind_of(&stage("192.0.2.1", 2)), Kind::LaterStage);
        let timeout = |stage| Event::SequenceTimeout {
            src: "192.0.2.1".parse().unwrap(),
            door: Arc::from("d"),
            stage,
        };
        assert_eq!(kind_of(&timeout(1)), Kind::FirstStageTimeout);
        assert_eq!(kind_of(&timeout(2)), Kind::LaterStageTimeout);
        let exhausted = Event::OneTimeExhausted {
            door: Arc::from("d"),
        };
        assert_eq!(source_of(&exhausted), None);
        assert_eq!(
            source_of(&stage("2001:db8::1", 1)),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            with_name(
                "2001:db8::1: door: Stage 1",
                "2001:db8::1".parse().unwrap(),
                Some("c.test")
            ),
            "2001:db8::1 (c.test): door: Stage 1"
        );
    }

    #[test]
    fn without_lookups_lines_go_straight_out() {
        let scratch = Scratch::new("journal-plain");
        let path = scratch.path().join("log");
        let mut j = Journal::new(logger(&path), None);
        j.event(T, &stage("192.0.2.1", 2));
        j.line(T, "door: running command: x 192.0.2.1", Kind::Event);
        assert!(!j.waiting());
        assert_eq!(
            bodies(&path),
            [
                "192.0.2.1: door: Stage 2",
                "door: running command: x 192.0.2.1"
            ]
        );
    }

    #[test]
    fn names_replace_numbers_and_the_order_holds() {
        let scratch = Scratch::new("journal-names");
        let path = scratch.path().join("log");
        let resolver = Resolver::start(|ip| {
            std::thread::sleep(Duration::from_millis(50));
            (ip.to_string() == "192.0.2.1").then(|| "client.test".to_string())
        })
        .unwrap();
        let mut j = Journal::new(logger(&path), Some(resolver));
        j.event(T, &stage("192.0.2.1", 2));
        j.line(T, "door: running command: open 192.0.2.1", Kind::Event);
        j.event(T, &stage("192.0.2.9", 2));
        assert!(j.waiting());
        let deadline = Instant::now() + Duration::from_secs(5);
        while j.waiting() {
            assert!(Instant::now() < deadline);
            j.poll();
            std::thread::sleep(Duration::from_millis(5));
        }
        // Cached now: written at once.
        j.event(T, &stage("192.0.2.1", 3));
        assert!(!j.waiting());
        assert_eq!(
            bodies(&path),
            [
                "192.0.2.1 (client.test): door: Stage 2",
                "door: running command: open 192.0.2.1",
                "192.0.2.9: door: Stage 2",
                "192.0.2.1 (client.test): door: Stage 3",
            ]
        );
    }

    #[test]
    fn flush_writes_held_lines_with_numbers() {
        let scratch = Scratch::new("journal-flush");
        let path = scratch.path().join("log");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        let resolver = Resolver::start(move |_| {
            let _ = rx.lock().unwrap().recv();
            Some("late.test".into())
        })
        .unwrap();
        let mut j = Journal::new(logger(&path), Some(resolver));
        j.event(T, &stage("192.0.2.1", 2));
        j.line(T, "shutting down", Kind::Event);
        assert!(bodies(&path).is_empty());
        j.flush(T);
        assert_eq!(bodies(&path), ["192.0.2.1: door: Stage 2", "shutting down"]);
        drop(tx);
    }
}
