//! `--wait` and `--proxy`: after the knock, connect to the port until it accepts, knocking
//! again while it stays closed ([`schedule`]), then, with `--proxy`, carry stdin and
//! stdout over the very connection that got through ([`relay`]), so a door that lets one
//! connection in, or closes again quickly, still works.
//!
//! The network and the monotonic clock come in through [`Dial`], so whole runs are tested
//! on a virtual clock; [`Net`] is the real one.

pub(crate) mod flags;
mod relay;
mod schedule;
mod stdio;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use knock_core::hit::Hit;
use knock_core::send::Sender;

pub(crate) use flags::ConnectFlags;
pub(crate) use relay::{RelayError, Relayed};
pub(crate) use schedule::Schedule;
use schedule::{Next, Wait};

use crate::execute::{send_all, verbose_line};
use crate::plan::Plan;
use crate::progress::Progress;
use crate::resolve::Address;
use crate::{Ctx, Failure, Sent};

/// How long `--wait` and `--proxy` wait without `--wait-timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times they knock again without `--retries`.
pub(crate) const DEFAULT_RETRIES: u32 = 2;
/// The most `--retries` takes: more knocks than this in one wait is flooding the door.
pub(crate) const MAX_RETRIES: u32 = 100;

/// What happens after the knock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Connect {
    /// The TCP port that proves the door open by accepting.
    pub port: u16,
    /// Relay stdin and stdout over the connection (`--proxy`), instead of closing it.
    pub proxy: bool,
    pub schedule: Schedule,
}

/// The network and the clock, as the wait and the relay see them.
pub(crate) trait Dial {
    /// Time since a fixed moment on the monotonic clock: a wall-clock step can neither
    /// end a wait early nor stretch it.
    fn elapsed(&self) -> Duration;

    /// One try: a TCP connection to `addr`, given up after `within`.
    fn connect(&mut self, addr: SocketAddr, within: Duration) -> io::Result<TcpStream>;

    /// Carries `stream` over stdin and stdout until both sides have ended, or until
    /// `interrupted` says Ctrl-C was pressed.
    fn relay(
        &mut self,
        stream: TcpStream,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Relayed, RelayError>;
}

/// The real network, stdin and stdout.
pub(crate) struct Net {
    start: Instant,
}

impl Net {
    pub(crate) fn new() -> Net {
        Net {
            start: Instant::now(),
        }
    }
}

impl Dial for Net {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn connect(&mut self, addr: SocketAddr, within: Duration) -> io::Result<TcpStream> {
        // connect_timeout refuses a zero timeout.
        TcpStream::connect_timeout(&addr, within.max(Duration::from_millis(1)))
    }

    fn relay(
        &mut self,
        stream: TcpStream,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Relayed, RelayError> {
        let failed = |way: &str| {
            let way = way.to_string();
            move |error| RelayError { way, error }
        };
        let input = stdio::stdin().map_err(failed("take stdin"))?;
        let output = stdio::take_stdout().map_err(failed("take stdout"))?;
        relay::relay(stream, input, output, interrupted)
    }
}

/// The connection that proved the door open.
#[derive(Debug)]
pub(crate) struct Opened {
    pub stream: TcpStream,
    /// `192.0.2.2:22`, `[fe80::1%eth0]:22`.
    pub target: String,
    /// Knocks sent, the first one included.
    pub knocks: u32,
    /// From the first hit to the accepted connection.
    pub took: Duration,
}

impl Opened {
    /// `door open after 1 knock and 0.06 s: 192.0.2.2:22`.
    pub(crate) fn summary(&self) -> String {
        format!(
            "door open after {} and {}: {}",
            counted(self.knocks, "knock"),
            seconds(self.took),
            self.target
        )
    }
}

/// The port never accepted.
#[derive(Debug, thiserror::Error)]
#[error(
    "door still closed after {} and {}: {target} (last try: {last})",
    counted(*knocks, "knock"),
    seconds(*waited)
)]
pub(crate) struct StillClosed {
    pub knocks: u32,
    /// The wait's timeout.
    pub waited: Duration,
    pub target: String,
    /// How the last try failed.
    pub last: String,
}

/// Whether `failure` is the port that never accepted.
pub(crate) fn still_closed(failure: &Failure) -> bool {
    match failure {
        Failure::Errors(_, errors) => errors.iter().any(|e| e.is::<StillClosed>()),
        _ => false,
    }
}

/// The hits of a knock after the first: `None` sends the first knock's hits again; an HMAC
/// profile derives those of the moment (Unix seconds).
pub(crate) type Again<'a> = Option<&'a dyn Fn(u64) -> Result<Vec<Hit>, Failure>>;

/// Sends the plan's hits, then tries `connect.port` on the knocked address as the
/// schedule says, knocking again while it stays closed. Returns the first connection that
/// got through (the one that proved the door open); [`StillClosed`] (exit 1) when none did.
/// Ctrl-C ends the wait within a pause or a try.
pub(crate) fn knock_and_wait(
    plan: &Plan,
    connect: Connect,
    again: Again<'_>,
    sender: &mut dyn Sender,
    ctx: &mut Ctx<'_>,
    progress: &mut dyn Progress,
) -> Result<Opened, Failure> {
    let start = ctx.dial.elapsed();
    send_all(plan, sender, ctx, progress)?;
    let addr = plan.addr.dest.socket_addr(connect.port);
    let target = plan.addr.with_port(connect.port);
    let total = plan.hits.len();
    let interrupted = || Failure::Interrupted(Some(Sent { sent: total, total }));
    let schedule = connect.schedule;
    let mut wait = Wait::new(schedule);
    let began = ctx.dial.elapsed();
    let mut last = None;
    loop {
        if (ctx.interrupted)() {
            return Err(interrupted());
        }
        let elapsed = ctx.dial.elapsed().saturating_sub(began);
        match wait.next(elapsed) {
            Next::Try(within) => {
                progress.waiting(connect.port, schedule.timeout.saturating_sub(elapsed));
                match ctx.dial.connect(addr, within) {
                    Ok(stream) => {
                        let opened = Opened {
                            stream,
                            target,
                            knocks: wait.knocks(),
                            took: ctx.dial.elapsed().saturating_sub(start),
                        };
                        if plan.verbose {
                            verbose_line(plan, ctx, &opened.summary())?;
                        }
                        return Ok(opened);
                    }
                    Err(e) => last = Some(e),
                }
            }
            Next::Pause(pause) => {
                progress.waiting(connect.port, schedule.timeout.saturating_sub(elapsed));
                (ctx.sleep)(pause);
            }
            Next::Knock => {
                let n = wait.knocks() + 1;
                if plan.verbose {
                    let text = format!(
                        "{target} still closed after {}: knocking again ({n} of {})",
                        seconds(elapsed),
                        schedule.retries + 1
                    );
                    verbose_line(plan, ctx, &text)?;
                }
                progress.again();
                match again {
                    None => send_all(plan, sender, ctx, progress)?,
                    Some(derive) => {
                        let mut fresh = plan.clone();
                        fresh.hits = derive((ctx.now)())?;
                        send_all(&fresh, sender, ctx, progress)?;
                    }
                }
                wait.knocked(ctx.dial.elapsed().saturating_sub(began));
            }
            Next::GiveUp => {
                return Err(Failure::runtime(StillClosed {
                    knocks: wait.knocks(),
                    waited: schedule.timeout,
                    target,
                    last: last.as_ref().map_or_else(|| "none".into(), try_failure),
                }));
            }
        }
    }
}

/// How a try failed, for the message: a dropped SYN is `no answer`.
fn try_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "no answer".into(),
        _ => e.to_string(),
    }
}

/// What `--dry-run` says after the hits.
pub(crate) fn describe(connect: &Connect, addr: &Address) -> Vec<String> {
    let target = addr.with_port(connect.port);
    let s = connect.schedule;
    let mut wait = format!(
        "would wait for tcp {target} to accept, up to {}",
        seconds(s.timeout)
    );
    let again: Vec<String> = s.reknocks().map(seconds).collect();
    if let Some((last, rest)) = again.split_last() {
        let at = if rest.is_empty() {
            last.clone()
        } else {
            format!("{} and {last}", rest.join(", "))
        };
        wait.push_str(&format!(", knocking again at {at} while it is closed"));
    }
    let mut lines = vec![wait];
    if connect.proxy {
        lines.push("would relay stdin and stdout over that connection".into());
    }
    lines
}

/// `1 knock`, `3 knocks`.
fn counted(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `10 s`, `2.5 s`, `0.12 s`: at most two decimals, none that are zero.
pub(crate) fn seconds(d: Duration) -> String {
    let centis = (d.as_millis() + 5) / 10;
    let whole = centis / 100;
    let frac = centis % 100;
    match frac {
        0 => format!("{whole} s"),
        f if f % 10 == 0 => format!("{whole}.{} s", f / 10),
        f => format!("{whole}.{f:02} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_short() {
        let table = [
            (10_000, "10 s"),
            (2_500, "2.5 s"),
            (3_333, "3.33 s"),
            (6_667, "6.67 s"),
            (120, "0.12 s"),
            (4, "0 s"),
            (5, "0.01 s"),
            (1_005, "1.01 s"),
            (9_999, "10 s"),
        ];
        for (ms, want) in table {
            assert_eq!(seconds(Duration::from_millis(ms)), want, "{ms}");
        }
    }

    #[test]
    fn dry_runs_describe_the_wait() {
        let mut c = Connect {
            port: 22,
            proxy: false,
            schedule: Schedule {
                timeout: DEFAULT_TIMEOUT,
                retries: 2,
            },
        };
        let v4 = Address::from("192.0.2.2".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(
            describe(&c, &v4),
            [
                "would wait for tcp 192.0.2.2:22 to accept, up to 10 s, knocking again at \
              3.33 s and 6.67 s while it is closed"
            ]
        );
        c.proxy = true;
        c.schedule.retries = 0;
        c.schedule.timeout = Duration::from_millis(1500);
        assert_eq!(
            describe(
                &c,
                &Address::from("2001:db8::2".parse::<std::net::IpAddr>().unwrap())
            ),
            [
                "would wait for tcp [2001:db8::2]:22 to accept, up to 1.5 s",
                "would relay stdin and stdout over that connection"
            ]
        );
        c.schedule.retries = 3;
        c.schedule.timeout = DEFAULT_TIMEOUT;
        assert_eq!(
            describe(&c, &v4)[0],
            "would wait for tcp 192.0.2.2:22 to accept, up to 10 s, knocking again at \
             2.5 s, 5 s and 7.5 s while it is closed"
        );
    }

    #[test]
    fn still_closed_says_what_was_tried() {
        let e = StillClosed {
            knocks: 3,
            waited: DEFAULT_TIMEOUT,
            target: "192.0.2.2:22".into(),
            last: try_failure(&io::ErrorKind::TimedOut.into()),
        };
        assert_eq!(
            e.to_string(),
            "door still closed after 3 knocks and 10 s: 192.0.2.2:22 (last try: no answer)"
        );
        assert_eq!(counted(1, "knock"), "1 knock");
    }
}
