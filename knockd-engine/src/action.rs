//! What the engine asks the runtime to do: log events, commands to run, files to update.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use knock_core::conf::NftSet;
use knock_core::otp::OtpLine;

use crate::Mono;

/// Identifies one command the engine asked for, so the runtime can report its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Whether a command opens or closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Start,
    /// The stop that belongs to the start command `start`. At shutdown a stop can be asked
    /// for while its start is still running: the runtime should let that start finish first.
    Stop {
        start: CommandId,
    },
}

/// One thing for the runtime to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A log line.
    Log(Event),
    /// Run `template` through `/bin/sh -c` after replacing `%IP%` with the numeric `src`.
    /// Report completion with `Engine::on_command_done(now, id)`.
    RunCommand {
        id: CommandId,
        door: Arc<str>,
        src: IpAddr,
        template: String,
        kind: CommandKind,
    },
    /// Mark the one-time `line` of `path` used ([`knock_core::otp::file::mark_used`]).
    /// Always comes before the start command of the knock that used the line.
    ConsumeOneTime {
        door: Arc<str>,
        path: PathBuf,
        line: OtpLine,
    },
    /// Persist that the HMAC counter `counter` of `door` has been used. Comes before the
    /// start command.
    HmacCounterUsed { door: Arc<str>, counter: u64 },
    /// The candidate packets changed: rebuild the capture filter from `Engine::capture_rules`.
    CaptureRulesChanged,
    /// Put `src` in the nftables `set` for `timeout` (the door's `Cmd_Timeout`), restarting
    /// the timeout if it is there already: the kernel closes the door. Comes after the
    /// knock's one-time line or HMAC counter, which must be recorded first.
    AddToSet {
        door: Arc<str>,
        src: IpAddr,
        set: NftSet,
        timeout: Duration,
    },
    /// The stop command of the start command `start` is pending, due at `due` (`delay`
    /// after the start finishes; until it has, `due` counts from when it began). Comes
    /// before the start command, and again with the exact time once the start finished,
    /// so the runtime can keep pending stops where a crash cannot lose them. The stop is
    /// done when `RunCommand` with `CommandKind::Stop { start }` has finished.
    StopScheduled {
        start: CommandId,
        door: Arc<str>,
        src: IpAddr,
        template: String,
        delay: Duration,
        /// On the engine's monotonic clock.
        due: Mono,
    },
}

/// A structured log event. `Display` writes knockd's wording with the numeric address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `src` matched step `stage` (1-based) of `door`.
    Stage {
        src: IpAddr,
        door: Arc<str>,
        stage: u32,
    },
    /// `src` completed `door`'s sequence.
    OpenSesame { src: IpAddr, door: Arc<str> },
    /// `src`'s attempt at `door` expired after `stage` steps.
    SequenceTimeout {
        src: IpAddr,
        door: Arc<str>,
        stage: u32,
    },
    /// `Cmd_Timeout` has passed since the start command finished; the stop command follows.
    CommandTimeout { src: IpAddr, door: Arc<str> },
    /// Shutting down: the stop command for `src` at `door` runs now instead of later.
    StopAtShutdown { src: IpAddr, door: Arc<str> },
    /// A one-time door moved on to the sequence on `line_no` of its list.
    OneTimeNext { door: Arc<str>, line_no: usize },
    /// A one-time door used its last sequence and is disabled.
    OneTimeExhausted { door: Arc<str> },
    /// `src` completed an HMAC sequence whose counter was already used: no command runs.
    HmacReplay {
        src: IpAddr,
        door: Arc<str>,
        counter: u64,
    },
    /// `src` opened a door that has an nftables set for the other address family only.
    NoSetForFamily { src: IpAddr, door: Arc<str> },
}

impl Event {
    /// A first-stage line: the kind a spoofed flood produces, which the runtime folds.
    pub fn is_first_stage(&self) -> bool {
        matches!(self, Event::Stage { stage: 1, .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Stage { src, door, stage } => write!(f, "{src}: {door}: Stage {stage}"),
            Event::OpenSesame { src, door } => write!(f, "{src}: {door}: OPEN SESAME"),
            Event::SequenceTimeout { src, door, stage } => {
                write!(f, "{src}: {door}: sequence timeout (stage {stage})")
            }
            Event::CommandTimeout { src, door } => write!(f, "{src}: {door}: command timeout"),
            Event::StopAtShutdown { src, door } => {
                write!(
                    f,
                    "{src}: {door}: shutting down, running the stop command now"
                )
            }
            Event::OneTimeNext { door, line_no } => {
                write!(f, "{door}: next one-time sequence is on line {line_no}")
            }
            Event::OneTimeExhausted { door } => {
                write!(f, "{door}: no one-time sequences left, door disabled")
            }
            Event::HmacReplay { src, door, counter } => write!(
                f,
                "{src}: {door}: replayed HMAC sequence (counter {counter}), no command run"
            ),
            Event::NoSetForFamily { src, door } => {
                let (directive, family) = if src.is_ipv6() {
                    ("Nft_Set_6", "an IPv6")
                } else {
                    ("Nft_Set", "an IPv4")
                };
                write!(
                    f,
                    "{src}: {door}: no {directive}, nothing added to a set for {family} knocker"
                )
            }
        }
    }
}
