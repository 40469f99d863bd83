//! Carrying out a plan: every hit checked before the first is sent, then all listed (dry
//! runs) or sent in order with the delay between them, and with `--wait` or `--proxy` the
//! wait for the door and the relay ([`crate::connect`]).

use anyhow::{Context, anyhow};
use knock_core::hit::Hit;
use knock_core::send::{Grant, RawNeed, Refusal, SendError, Sender};

use crate::connect::{self, Again, Opened};
use crate::output::{self, hitting};
use crate::plan::{Mode, Plan};
use crate::progress::{self, Bar, Progress, Silent};
use crate::{Ctx, Failure, Sent, json};

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

/// Carries out a plan: [`knock`], then [`finish`].
pub(crate) fn execute(plan: &Plan, ctx: &mut Ctx<'_>, quiet: bool) -> Result<(), Failure> {
    let opened = knock(plan, ctx, quiet, None)?;
    finish(plan, opened, ctx)
}

/// Checks every hit, then lists them (dry runs, with a note on stderr for each hit a real
/// run would refuse), or sends them all when none is refused, with a progress bar when
/// [`progress::wanted`] (never under `--proxy`, whose stderr ssh shares). With
/// `plan.connect`, then waits for the port ([`connect::knock_and_wait`]) and returns the
/// connection that got through. `again` gives the hits of a knock sent again.
pub(crate) fn knock(
    plan: &Plan,
    ctx: &mut Ctx<'_>,
    quiet: bool,
    again: Again<'_>,
) -> Result<Option<Opened>, Failure> {
    let mut sender = (ctx.sender)(plan.send);
    let refused = refusals(plan, sender.as_ref());
    let source = sender.check_source(&plan.hits, plan.addr.dest).err();
    match plan.mode {
        Mode::DryRun => {
            for line in output::dry_run_lines(plan) {
                ctx.line(&line)?;
            }
        }
        Mode::DryRunJson => {
            let doc = json::DryRun::new(plan, sender.as_ref(), &refused, source.as_ref());
            ctx.line(&doc.to_json())?;
        }
        Mode::Send if refused.is_empty() && source.is_none() => {
            // Under --proxy ssh shares stderr: no bar, only -v lines.
            let bar = !plan.proxy() && progress::wanted(ctx.stderr_terminal, plan.verbose, quiet);
            let mut progress: Box<dyn Progress> = if bar {
                Box::new(Bar::stderr(plan.hits.len(), &plan.host))
            } else {
                Box::new(Silent)
            };
            let opened = match plan.connect {
                None => {
                    send_all(plan, sender.as_mut(), ctx, progress.as_mut())?;
                    None
                }
                Some(connect) => Some(connect::knock_and_wait(
                    plan,
                    connect,
                    again,
                    sender.as_mut(),
                    ctx,
                    progress.as_mut(),
                )?),
            };
            // The bar goes first, so the line is left on a clean screen.
            drop(progress);
            if bar {
                let mut line = output::knocked(plan);
                if let Some(o) = &opened {
                    line.push_str(&format!("; {}", o.summary()));
                }
                let _ = writeln!(ctx.err, "{line}");
            }
            return Ok(opened);
        }
        Mode::Send => {
            let ways_out = ways_out(&refused);
            let mut errors: Vec<anyhow::Error> =
                refused.into_iter().map(anyhow::Error::from).collect();
            errors.extend(ways_out.map(|w| anyhow!(w)));
            let mut code = 2;
            if let Some(e) = source {
                code = source_failure(e, &mut errors);
            }
            return Err(Failure::Errors(code, errors));
        }
    }
    // A dry run lists what was asked for; stderr says what a real run would refuse here,
    // so the listing never promises a knock that cannot happen.
    for r in refused {
        ctx.note(&format!(
            "a real run would refuse {:#}",
            anyhow::Error::from(r)
        ));
    }
    if let Some(e) = source {
        ctx.note(&format!("a real run would refuse --source-port: {e}"));
    }
    Ok(None)
}

/// What follows a knock: under `--proxy`, the relay over the connection that proved the
/// door open; under `--wait`, nothing (the connection is closed).
pub(crate) fn finish(
    plan: &Plan,
    opened: Option<Opened>,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let Some(opened) = opened else {
        return Ok(());
    };
    if !plan.proxy() {
        return Ok(());
    }
    let relayed = ctx
        .dial
        .relay(opened.stream, ctx.interrupted)
        .map_err(Failure::runtime)?;
    if relayed.interrupted {
        let n = plan.hits.len();
        return Err(Failure::Interrupted(Some(Sent { sent: n, total: n })));
    }
    if plan.verbose {
        let _ = writeln!(
            ctx.err,
            "connection closed: {} bytes sent, {} received",
            relayed.sent, relayed.received
        );
    }
    Ok(())
}

/// The lines for a source port that cannot be bound, added to `errors`, and the exit code:
/// 2 when privileges are missing, 1 when binding failed otherwise (the port in use).
fn source_failure(e: SendError, errors: &mut Vec<anyhow::Error>) -> i32 {
    let code = match &e {
        SendError::Refused(_) => 2,
        _ => 1,
    };
    let ways = match &e {
        SendError::Refused(Refusal::SourcePort { ways, .. }) => *ways,
        _ => &[],
    };
    errors.push(anyhow!("--source-port: {e}"));
    let mut ways: Vec<&str> = ways.to_vec();
    ways.push("choose another --source-port (1024 or more needs no privileges)");
    errors.push(anyhow!(
        "nothing was sent; to send from that port, {}",
        ways.join(", or ")
    ));
    code
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

/// The line that follows the refused hits when privileges or the OS are the reason:
/// nothing was sent, and the ways to send them. `None` when no refusal has a way out.
pub(crate) fn ways_out(refused: &[AtHit<Refusal>]) -> Option<String> {
    let mut grant: Option<Grant> = None;
    let mut unsupported = false;
    let (mut flags, mut raw_mode) = (false, false);
    for r in refused {
        let need = match r.source {
            Refusal::NoPrivilege { need, grant: g } => {
                grant = Some(g);
                need
            }
            Refusal::Unsupported { need, .. } => {
                unsupported = true;
                need
            }
            _ => continue,
        };
        match need {
            RawNeed::ExactFlags => flags = true,
            RawNeed::RawMode => raw_mode = true,
        }
    }
    let drop = match (flags, raw_mode) {
        (true, true) => "drop the flags and --raw",
        (true, false) => "drop the flags",
        (false, true) => "drop --raw",
        (false, false) => return None,
    };
    if unsupported {
        // No privilege helps here; only what works without raw sockets is left.
        return Some(format!(
            "nothing was sent; to knock from this system, {drop} \
             (hits without flags, and a lone syn, go out through an ordinary connect)"
        ));
    }
    let ways = grant.map_or(&[][..], Grant::ways);
    let list = if ways.is_empty() {
        drop.to_string()
    } else {
        format!("{}, or {drop}", ways.join(", "))
    };
    Some(format!("nothing was sent; to send these hits, {list}"))
}

/// Sends the hits in order, pausing `plan.delay` between two hits (never after the last),
/// and printing the `-v` line before each. Stops at the first failed send, and at Ctrl-C
/// (looked at before each hit, and so at the end of every pause). `progress` hears of
/// every hit sent and takes every pause.
pub(crate) fn send_all(
    plan: &Plan,
    sender: &mut dyn Sender,
    ctx: &mut Ctx<'_>,
    progress: &mut dyn Progress,
) -> Result<(), Failure> {
    let total = plan.hits.len();
    for (i, hit) in plan.hits.iter().enumerate() {
        if i > 0 && !plan.delay.is_zero() {
            progress.pause(plan.delay, ctx.sleep, ctx.interrupted);
        }
        if (ctx.interrupted)() {
            return Err(Failure::Interrupted(Some(Sent { sent: i, total })));
        }
        if plan.verbose {
            verbose_line(plan, ctx, &hitting(hit, &plan.addr))?;
        }
        sender
            .send(hit, plan.addr.dest)
            .map_err(|source| AtHit::<SendError> {
                index: i + 1,
                total,
                hit: *hit,
                source,
            })
            .map_err(Failure::runtime)?;
        progress.sent();
    }
    Ok(())
}

/// Prints a `-v` line: on stdout, or on stderr under `--proxy`, whose stdout carries only
/// the connection's bytes.
pub(crate) fn verbose_line(plan: &Plan, ctx: &mut Ctx<'_>, text: &str) -> Result<(), Failure> {
    if plan.proxy() {
        let _ = writeln!(ctx.err, "{text}");
        return Ok(());
    }
    ctx.out
        .line(text)
        .context("write stdout")
        .map_err(Failure::runtime)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Senders, a sleeper and a network that write one shared timeline on one virtual
    //! clock, for tests of the send loop, the wait and of `run`.

    use std::cell::{Cell, RefCell};
    use std::io;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::rc::Rc;
    use std::time::Duration;

    use knock_core::hit::Hit;
    use knock_core::send::{Dest, Op, PlainSender, Privilege, Refusal, Route, SendError, Sender};

    use crate::connect::{Dial, RelayError, Relayed};

    /// One thing that happened, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Event {
        /// Sent by the plain sender.
        Sent(Hit, Dest),
        /// Sent by the raw sender.
        SentRaw(Hit, Dest),
        Slept(Duration),
        /// A try to connect, at this virtual time, given this long.
        Tried(SocketAddr, Duration, Duration),
        /// The connection was relayed.
        Relayed,
    }

    /// What the senders, the sleeper and the network did, in order, how many sends were
    /// tried, and the virtual clock (moved on by sleeps and by tries that time out).
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Timeline {
        events: Rc<RefCell<Vec<Event>>>,
        attempts: Rc<Cell<usize>>,
        clock: Rc<Cell<Duration>>,
    }

    impl Timeline {
        pub(crate) fn events(&self) -> Vec<Event> {
            self.events.borrow().clone()
        }

        /// How many pauses were taken so far.
        pub(crate) fn slept(&self) -> usize {
            let events = self.events.borrow();
            events
                .iter()
                .filter(|e| matches!(e, Event::Slept(_)))
                .count()
        }

        /// A sleeper that records the pause and moves the clock on instead of waiting.
        pub(crate) fn sleeper(&self) -> impl FnMut(Duration) + use<> {
            let events = Rc::clone(&self.events);
            let clock = Rc::clone(&self.clock);
            move |d| {
                events.borrow_mut().push(Event::Slept(d));
                clock.set(clock.get() + d);
            }
        }

        /// The virtual clock.
        pub(crate) fn now(&self) -> Duration {
            self.clock.get()
        }

        /// Sends tried so far, failed ones included.
        fn attempts(&self) -> usize {
            self.attempts.get()
        }
    }

    /// When the fake door opens.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(crate) enum Door {
        /// Never; every try times out (a firewall that drops).
        #[default]
        Dropping,
        /// Never; every try is refused at once (nothing listens, no firewall).
        Refusing,
        /// Once this many hits were sent (counting every knock).
        AfterSends(usize),
        /// From this virtual time on.
        At(Duration),
    }

    /// A network for tests: a door that opens as [`Door`] says. An open door hands out
    /// real loopback connections (the relay's tests need a real socket); the relay itself
    /// only records that it ran.
    pub(crate) struct FakeNet {
        pub timeline: Timeline,
        pub door: Door,
        listener: Option<TcpListener>,
    }

    impl FakeNet {
        pub(crate) fn new(timeline: Timeline, door: Door) -> FakeNet {
            FakeNet {
                timeline,
                door,
                listener: None,
            }
        }

        fn open(&self) -> bool {
            match self.door {
                Door::Dropping | Door::Refusing => false,
                Door::AfterSends(n) => self.timeline.attempts() >= n,
                Door::At(t) => self.timeline.now() >= t,
            }
        }
    }

    impl Dial for FakeNet {
        fn elapsed(&self) -> Duration {
            self.timeline.now()
        }

        fn connect(&mut self, addr: SocketAddr, within: Duration) -> io::Result<TcpStream> {
            let t = &self.timeline;
            t.events
                .borrow_mut()
                .push(Event::Tried(addr, t.now(), within));
            if self.open() {
                let listener = match &self.listener {
                    Some(l) => l,
                    None => self.listener.insert(TcpListener::bind("127.0.0.1:0")?),
                };
                return TcpStream::connect(listener.local_addr()?);
            }
            match self.door {
                Door::Refusing => Err(io::ErrorKind::ConnectionRefused.into()),
                _ => {
                    t.clock.set(t.now() + within);
                    Err(io::ErrorKind::TimedOut.into())
                }
            }
        }

        fn relay(
            &mut self,
            _stream: TcpStream,
            _interrupted: &dyn Fn() -> bool,
        ) -> Result<Relayed, RelayError> {
            self.timeline.events.borrow_mut().push(Event::Relayed);
            Ok(Relayed::default())
        }
    }

    /// Records sends. A plain recorder checks hits as the plain sender does, a raw one as
    /// the raw sender does under its privilege. The send whose 0-based index (counted
    /// over every recorder of the timeline) is `fail_at` fails.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Recorder {
        pub timeline: Timeline,
        pub fail_at: Option<usize>,
        raw: Option<Privilege>,
        /// The fixed source port (`--source-port`) of a plain recorder.
        pub source_port: Option<u16>,
        /// Whether ports below 1024 may be bound, as for root.
        pub low_ports: bool,
    }

    impl Recorder {
        pub(crate) fn failing_at(fail_at: usize) -> Recorder {
            Recorder {
                fail_at: Some(fail_at),
                ..Recorder::default()
            }
        }

        /// The raw recorder that goes with this one: same timeline, same failure.
        pub(crate) fn raw(&self, privilege: Privilege) -> Recorder {
            Recorder {
                raw: Some(privilege),
                ..self.clone()
            }
        }
    }

    impl Sender for Recorder {
        fn route(&self, _hit: &Hit) -> Route {
            match self.raw {
                None => Route::Plain,
                Some(_) => Route::Raw,
            }
        }

        /// A plain recorder binds its source port as an ordinary user may: not below 1024
        /// unless `low_ports`.
        fn check_source(&self, hits: &[Hit], _dst: Dest) -> Result<(), SendError> {
            match self.source_port {
                Some(port)
                    if port < 1024 && !self.low_ports && self.raw.is_none() && !hits.is_empty() =>
                {
                    Err(SendError::Refused(Refusal::SourcePort {
                        port,
                        ways: &["run knock as root"],
                    }))
                }
                _ => Ok(()),
            }
        }

        fn check(&self, hit: &Hit) -> Result<(), Refusal> {
            match self.raw {
                None => PlainSender::new().check(hit),
                Some(privilege) => privilege.check_raw(hit),
            }
        }

        fn send(&mut self, hit: &Hit, dst: Dest) -> Result<(), SendError> {
            self.check(hit)?;
            let attempt = self.timeline.attempts.get();
            self.timeline.attempts.set(attempt + 1);
            if self.fail_at == Some(attempt) {
                return Err(SendError::Io {
                    op: Op::SendTo,
                    addr: dst.socket_addr(hit.port),
                    error: io::ErrorKind::PermissionDenied.into(),
                });
            }
            let event = match self.raw {
                None => Event::Sent(*hit, dst),
                Some(_) => Event::SentRaw(*hit, dst),
            };
            self.timeline.events.borrow_mut().push(event);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Door, Event, FakeNet, Recorder, Timeline};
    use super::*;
    use crate::output::Out;
    use crate::plan::Mode;
    use crate::progress::{Bar, Silent};
    use indicatif::ProgressDrawTarget;
    use knock_core::hit::{Proto, parse_sequence};
    use knock_core::send::{KnockSender, Privilege};
    use std::time::Duration;

    fn plan(hits: &str, delay_ms: u64, verbose: bool) -> Plan {
        Plan {
            host: "h".into(),
            addr: crate::resolve::Address::from("192.0.2.2".parse::<std::net::IpAddr>().unwrap()),
            hits: parse_sequence(hits, Proto::Tcp).unwrap(),
            delay: Duration::from_millis(delay_ms),
            verbose,
            mode: Mode::Send,
            send: Default::default(),
            connect: None,
        }
    }

    /// Calls `f` with a context around the send loop: stdout into `text`, pauses onto
    /// `timeline`, and Ctrl-C pressed once `interrupt_at` pauses were taken.
    fn with_ctx<R>(
        timeline: &Timeline,
        text: &mut Vec<u8>,
        interrupt_at: Option<usize>,
        f: impl FnOnce(&mut Ctx<'_>) -> R,
    ) -> R {
        let mut sleep = timeline.sleeper();
        let mut err = Vec::new();
        let mut make = |_| -> Box<dyn Sender> { unreachable!("the loop gets its sender") };
        let mut prompt = NoPrompt;
        let services = knock_core::hit::NoNames;
        let pauses = timeline.clone();
        let interrupted = move || interrupt_at.is_some_and(|n| pauses.slept() >= n);
        let mut net = FakeNet::new(timeline.clone(), Door::default());
        let mut ctx = Ctx {
            out: Out::new(text),
            err: &mut err,
            sender: &mut make,
            sleep: &mut sleep,
            vars: &|_| None,
            now: &|| 0,
            prompt: &mut prompt,
            stderr_terminal: false,
            services: &services,
            interrupted: &interrupted,
            dial: &mut net,
        };
        f(&mut ctx)
    }

    /// No terminal to ask on.
    struct NoPrompt;

    impl knock_core::secret::source::Prompt for NoPrompt {
        fn available(&self) -> bool {
            false
        }

        fn read_hidden(&mut self, _: &str) -> std::io::Result<String> {
            Err(std::io::Error::other("no terminal"))
        }
    }

    /// Runs the loop; returns the timeline, stdout and the result.
    fn run(plan: &Plan, sender: Recorder) -> (Vec<Event>, String, Result<(), Failure>) {
        run_until(plan, sender, None)
    }

    /// [`run`], with Ctrl-C pressed once `interrupt_at` pauses were taken.
    fn run_until(
        plan: &Plan,
        mut sender: Recorder,
        interrupt_at: Option<usize>,
    ) -> (Vec<Event>, String, Result<(), Failure>) {
        let timeline = sender.timeline.clone();
        let mut text = Vec::new();
        let result = with_ctx(&timeline, &mut text, interrupt_at, |ctx| {
            send_all(plan, &mut sender, ctx, &mut Silent)
        });
        (timeline.events(), String::from_utf8(text).unwrap(), result)
    }

    #[test]
    fn ctrl_c_stops_before_the_next_hit_and_says_how_far_it_got() {
        let p = plan("7000,8000:udp,9000", 150, true);
        let (events, text, result) = run_until(&p, Recorder::default(), Some(1));
        let a = p.addr.dest;
        assert_eq!(
            events,
            [
                Event::Sent(Hit::tcp(7000), a),
                Event::Slept(Duration::from_millis(150)),
            ]
        );
        assert_eq!(text, "hitting tcp 192.0.2.2:7000\n");
        assert_eq!(
            result.unwrap_err().describe(),
            (130, vec!["interrupted after hit 1 of 3".to_string()])
        );
        // Pressed before anything went out (during a lookup, say): nothing is sent.
        let (events, _, result) = run_until(&p, Recorder::default(), Some(0));
        assert_eq!(events, []);
        assert_eq!(
            result.unwrap_err().describe(),
            (
                130,
                vec!["interrupted before hit 1 of 3; nothing was sent".to_string()]
            )
        );
    }

    #[test]
    fn delay_goes_between_hits_not_after_the_last() {
        let p = plan("7000,8000:udp,9000", 150, false);
        let (events, _, result) = run(&p, Recorder::default());
        result.unwrap();
        let d = Duration::from_millis(150);
        let a = p.addr.dest;
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
                Event::Sent(Hit::tcp(7000), p.addr.dest),
                Event::Sent(Hit::tcp(8000), p.addr.dest)
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
                Event::Sent(Hit::tcp(7000), p.addr.dest),
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
        let mut bar = Bar::with_target(2, "192.0.2.2", ProgressDrawTarget::hidden());
        let mut text = Vec::new();
        with_ctx(&timeline, &mut text, None, |ctx| {
            send_all(&p, &mut sender, ctx, &mut bar)
        })
        .unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            timeline.events(),
            [
                Event::Sent(Hit::tcp(7000), p.addr.dest),
                Event::Slept(ms(100)),
                Event::Slept(ms(100)),
                Event::Slept(ms(50)),
                Event::Sent(Hit::tcp(8000), p.addr.dest),
            ]
        );
        assert_eq!(bar.position(), 2);
        assert!(text.is_empty(), "the bar never writes on stdout");
    }

    /// The real router over recorders, for a process with `privilege`.
    fn knock_sender(privilege: Privilege, raw_tcp: bool) -> KnockSender<Recorder, Recorder> {
        let plain = Recorder::default();
        let raw = plain.raw(privilege);
        KnockSender::with_senders(plain, raw, raw_tcp)
    }

    fn refused(p: &Plan, sender: &dyn Sender) -> Vec<String> {
        let found = refusals(p, sender);
        let last = ways_out(&found);
        found
            .into_iter()
            .map(|r| format!("{:#}", anyhow::Error::from(r)))
            .chain(last)
            .collect()
    }

    const LINUX_USER: Privilege = Privilege::Missing(Grant::RootOrCapNetRaw);

    #[test]
    fn refusals_name_every_hit_that_needs_raw_and_the_ways_out() {
        let p = plan(
            "7000,8000:tcp:fin+psh,9000:udp,tcp:110:up,tcp:1:s",
            0,
            false,
        );
        let why = "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW";
        assert_eq!(
            refused(&p, &knock_sender(LINUX_USER, false)),
            [
                format!("hit 2 of 5 (8000:tcp:fin+psh): {why}"),
                format!("hit 4 of 5 (110:tcp:psh+urg): {why}"),
                "nothing was sent; to send these hits, run knock as root, give it CAP_NET_RAW \
                 once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop the flags"
                    .to_string(),
            ]
        );
        // With raw privilege nothing is refused; without flags nothing needs it.
        assert!(refused(&p, &knock_sender(Privilege::Raw, true)).is_empty());
        let plain = plan("7000,8000:udp,tcp:1:i,2:tcp:syn", 0, false);
        assert!(refused(&plain, &knock_sender(LINUX_USER, false)).is_empty());
    }

    #[test]
    fn raw_mode_refusals_say_to_drop_raw() {
        let p = plan("7000,8000:udp", 0, false);
        assert_eq!(
            refused(&p, &knock_sender(Privilege::Missing(Grant::Root), true)),
            [
                "hit 1 of 2 (7000:tcp): sending a TCP hit raw needs a raw socket, which needs root",
                "nothing was sent; to send these hits, run knock as root, or drop --raw",
            ]
        );
        let p = plan("7000,8000:tcp:rst", 0, false);
        let found = refused(&p, &knock_sender(LINUX_USER, true));
        assert_eq!(
            found.last().unwrap(),
            "nothing was sent; to send these hits, run knock as root, give it CAP_NET_RAW \
             once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop the flags \
             and --raw"
        );
    }

    #[test]
    fn windows_refuses_flags_and_keeps_syns() {
        let windows = Privilege::Unsupported("Windows does not send TCP through raw sockets");
        let p = plan("7000,8000:tcp:fin,9000:tcp:syn,10000:udp", 0, false);
        assert_eq!(
            refused(&p, &knock_sender(windows, false)),
            [
                "hit 2 of 4 (8000:tcp:fin): exact TCP flags need a raw socket, but Windows \
                 does not send TCP through raw sockets",
                "nothing was sent; to knock from this system, drop the flags (hits without \
                 flags, and a lone syn, go out through an ordinary connect)",
            ]
        );
        let p = plan("7000", 0, false);
        assert_eq!(
            refused(&p, &knock_sender(windows, true)).last().unwrap(),
            "nothing was sent; to knock from this system, drop --raw (hits without flags, \
             and a lone syn, go out through an ordinary connect)"
        );
    }

    #[test]
    fn other_refusals_have_no_way_out_line() {
        let p = plan("7000:tcp:fin", 0, false);
        assert_eq!(
            refused(&p, &Recorder::default()),
            [
                "hit 1 of 1 (7000:tcp:fin): exact TCP flags need a raw socket, which the plain \
              sender does not use"
            ]
        );
    }

    #[test]
    fn hits_go_through_the_sender_they_are_routed_to() {
        let p = plan("7000,8000:udp,9000:tcp:fin,tcp:1:s", 0, false);
        let plain = Recorder::default();
        let timeline = plain.timeline.clone();
        let raw = plain.raw(Privilege::Raw);
        let mut sender = KnockSender::with_senders(plain, raw, false);
        let mut out = Vec::new();
        with_ctx(&timeline, &mut out, None, |ctx| {
            send_all(&p, &mut sender, ctx, &mut Silent)
        })
        .unwrap();
        let a = p.addr.dest;
        assert_eq!(
            timeline.events(),
            [
                Event::Sent(Hit::tcp(7000), a),
                Event::Sent(Hit::udp(8000), a),
                Event::SentRaw(p.hits[2], a),
                Event::SentRaw(p.hits[3], a),
            ]
        );
    }
}
