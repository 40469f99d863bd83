//! Following an interface by name: when it goes down the capture reports it and waits on
//! the same socket; when it is deleted the socket goes and the name is looked up again
//! once a [`RECHECK`] until an interface with it returns, which is then bound anew.
//!
//! The policy ([`Follow`]) is written against a [`Binder`], the little it needs from the
//! system (open a socket, look the interface up, sleep, read the clock), so it is tested
//! with a scripted binder; [`InterfaceCapture`] is the policy over AF_PACKET sockets.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use knock_core::wire::LinkType;
use knockd_engine::bpf::{self, Coarse};
use knockd_engine::filter::CaptureRule;

use super::linux::{AfPacket, CaptureOptions};
use super::{CaptureError, CaptureStats, Frame, PacketSource};
use crate::netif;
use crate::sys::{self, PollFd};

/// How often a lost or down interface is looked up again.
const RECHECK: Duration = Duration::from_secs(1);

/// A change in the captured interface's state, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The interface went down; the socket stays bound and resumes when it comes up.
    Down,
    Up,
    /// The interface was deleted; capture resumes when one with the same name returns.
    Lost,
    /// Capture is bound again, to the interface with this index.
    Restored {
        index: u32,
    },
}

impl LinkEvent {
    /// A log line body, e.g. `eth0: interface gone, waiting for it to return`.
    pub(crate) fn describe(&self, ifname: &str) -> String {
        match self {
            LinkEvent::Down => format!("{ifname}: interface down, capture paused"),
            LinkEvent::Up => format!("{ifname}: interface up, capture resumed"),
            LinkEvent::Lost => format!("{ifname}: interface gone, waiting for it to return"),
            LinkEvent::Restored { index } => {
                format!("{ifname}: interface back (index {index}), capture resumed")
            }
        }
    }
}

/// What following an interface needs from the system.
pub(crate) trait Binder {
    type Socket: PacketSource;

    /// Opens a capture on the interface named `ifname`, filtered for `rules`.
    fn open(&mut self, ifname: &str, rules: &[CaptureRule]) -> Result<Self::Socket, CaptureError>;

    /// The index of the interface `socket` is bound to.
    fn index(socket: &Self::Socket) -> u32;

    /// The index of the interface named `ifname` and whether it is up, if it exists.
    fn lookup(&mut self, ifname: &str) -> io::Result<Option<(u32, bool)>>;

    /// Fails if `rules` cannot be made into a filter (for the socket's link, if bound);
    /// returns the coarser filter they get when the exact one would not fit.
    fn check(
        &self,
        socket: Option<&Self::Socket>,
        rules: &[CaptureRule],
    ) -> Result<Option<Coarse>, CaptureError>;

    /// Waits `timeout`, or less if something the caller should see (a signal) arrives.
    fn idle(&mut self, timeout: Duration);

    fn now(&self) -> Instant;
}

/// The following policy over a [`Binder`].
#[derive(Debug)]
pub(crate) struct Follow<B: Binder> {
    binder: B,
    ifname: String,
    rules: Vec<CaptureRule>,
    sock: Option<B::Socket>,
    /// The bound interface reported itself down.
    down: bool,
    last_check: Option<Instant>,
    events: VecDeque<LinkEvent>,
    /// Counters of sockets closed since.
    carried: CaptureStats,
}

impl<B: Binder> Follow<B> {
    /// Binds now; the interface must exist.
    pub(crate) fn open(
        mut binder: B,
        ifname: &str,
        rules: &[CaptureRule],
    ) -> Result<Follow<B>, CaptureError> {
        let sock = binder.open(ifname, rules)?;
        Ok(Follow::new(binder, ifname, rules, Some(sock)))
    }

    /// Binds when the interface appears (reporting [`LinkEvent::Restored`]), as after a
    /// loss. Rules that can never make a filter fail now, not later in the loop.
    pub(crate) fn waiting(
        binder: B,
        ifname: &str,
        rules: &[CaptureRule],
    ) -> Result<Follow<B>, CaptureError> {
        binder.check(None, rules)?;
        Ok(Follow::new(binder, ifname, rules, None))
    }

    fn new(binder: B, ifname: &str, rules: &[CaptureRule], sock: Option<B::Socket>) -> Self {
        Follow {
            binder,
            ifname: ifname.to_string(),
            rules: rules.to_vec(),
            sock,
            down: false,
            last_check: None,
            events: VecDeque::new(),
            carried: CaptureStats::default(),
        }
    }

    pub(crate) fn socket(&self) -> Option<&B::Socket> {
        self.sock.as_ref()
    }

    pub(crate) fn parts_mut(&mut self) -> (&mut B, Option<&mut B::Socket>) {
        (&mut self.binder, self.sock.as_mut())
    }

    /// Whether a look at the interface is due, and if so, notes that one is taken now.
    fn due(&mut self) -> bool {
        let now = self.binder.now();
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < RECHECK)
        {
            return false;
        }
        self.last_check = Some(now);
        true
    }

    fn lose(&mut self) {
        if let Some(mut s) = self.sock.take() {
            let st = s.stats();
            self.carried.delivered += st.delivered;
            self.carried.kernel_drops += st.kernel_drops;
            self.carried.refiltered += st.refiltered;
        }
        self.down = false;
        self.last_check = Some(self.binder.now());
        self.events.push_back(LinkEvent::Lost);
    }

    /// While down: has it come up, or gone away (deleted, or re-created with another
    /// index)? A failed lookup decides nothing.
    fn recheck_down(&mut self) {
        let index = self.sock.as_ref().map_or(0, B::index);
        match self.binder.lookup(&self.ifname) {
            Ok(Some((i, up))) if i == index => {
                if up {
                    self.down = false;
                    self.events.push_back(LinkEvent::Up);
                }
            }
            Ok(_) => self.lose(),
            Err(_) => {}
        }
    }

    /// While unbound: try to bind, once a [`RECHECK`].
    fn rebind(&mut self) -> Result<(), CaptureError> {
        if !self.due() {
            return Ok(());
        }
        match self.binder.open(&self.ifname, &self.rules) {
            Ok(s) => {
                self.events.push_back(LinkEvent::Restored {
                    index: B::index(&s),
                });
                self.sock = Some(s);
                Ok(())
            }
            Err(CaptureError::NoSuchInterface { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<B: Binder> PacketSource for Follow<B> {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        if self.sock.is_none() {
            self.rebind()?;
            if self.sock.is_none() {
                self.binder.idle(timeout.min(RECHECK));
                return Ok(0);
            }
        }
        if self.down && self.due() {
            self.recheck_down();
        }
        let down = self.down;
        let Some(sock) = self.sock.as_mut() else {
            return Ok(0);
        };
        // While down the socket stays quiet; wake up in time for the next look.
        let timeout = if down { timeout.min(RECHECK) } else { timeout };
        match sock.next_batch(timeout, sink) {
            Err(CaptureError::InterfaceDown { .. }) => {
                if !self.down {
                    self.down = true;
                    self.events.push_back(LinkEvent::Down);
                }
                // Deleting an interface takes it down first; look now whether it is gone.
                self.last_check = None;
                if self.due() {
                    self.recheck_down();
                }
                Ok(0)
            }
            other => other,
        }
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        // Check first, so rules that make no filter fail even while unbound.
        let coarse = self.binder.check(self.sock.as_ref(), rules)?;
        match &mut self.sock {
            Some(s) => {
                let coarse = s.set_rules(rules)?;
                self.rules = rules.to_vec();
                Ok(coarse)
            }
            None => {
                self.rules = rules.to_vec();
                Ok(coarse)
            }
        }
    }

    fn stats(&mut self) -> CaptureStats {
        let mut st = self.carried;
        if let Some(s) = &mut self.sock {
            let now = s.stats();
            st.delivered += now.delivered;
            st.kernel_drops += now.kernel_drops;
            st.refiltered += now.refiltered;
        }
        st
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        self.events.drain(..).collect()
    }
}

/// The system's side of following: AF_PACKET sockets, getifaddrs, and sleeping on the
/// wake-up descriptors.
#[derive(Debug)]
pub(crate) struct Kernel {
    opts: CaptureOptions,
    wake: Vec<RawFd>,
}

impl Binder for Kernel {
    type Socket = AfPacket;

    fn open(&mut self, ifname: &str, rules: &[CaptureRule]) -> Result<AfPacket, CaptureError> {
        let mut s = AfPacket::open(ifname, rules, &self.opts)?;
        for &fd in &self.wake {
            s.add_wake_fd(fd);
        }
        Ok(s)
    }

    fn index(socket: &AfPacket) -> u32 {
        socket.ifindex()
    }

    fn lookup(&mut self, ifname: &str) -> io::Result<Option<(u32, bool)>> {
        Ok(netif::find(ifname)?.map(|i| (i.index, i.is_up())))
    }

    fn check(
        &self,
        socket: Option<&AfPacket>,
        rules: &[CaptureRule],
    ) -> Result<Option<Coarse>, CaptureError> {
        let link = socket.map_or(LinkType::Ethernet, AfPacket::link);
        Ok(bpf::compile_fitting(rules, link, self.opts.families)?.coarse)
    }

    fn idle(&mut self, timeout: Duration) {
        let mut fds: Vec<PollFd> = self.wake.iter().copied().map(PollFd::readable).collect();
        // Woken early or interrupted, the caller looks again either way.
        let _ = sys::poll(&mut fds, timeout);
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A capture that follows an interface by name: when it goes down or is deleted, the
/// capture reports it and keeps waiting, and binds again when it returns.
#[derive(Debug)]
pub struct InterfaceCapture(Follow<Kernel>);

impl InterfaceCapture {
    /// Opens the capture; the interface must exist now.
    pub fn open(
        ifname: &str,
        rules: &[CaptureRule],
        opts: &CaptureOptions,
    ) -> Result<InterfaceCapture, CaptureError> {
        Follow::open(kernel(opts), ifname, rules).map(InterfaceCapture)
    }

    /// A capture for an interface that may not exist yet: it binds when the interface
    /// appears (reporting [`LinkEvent::Restored`]), as after a loss.
    pub fn waiting(
        ifname: &str,
        rules: &[CaptureRule],
        opts: &CaptureOptions,
    ) -> Result<InterfaceCapture, CaptureError> {
        Follow::waiting(kernel(opts), ifname, rules).map(InterfaceCapture)
    }

    /// The bound socket, if the interface is there.
    pub fn socket(&self) -> Option<&AfPacket> {
        self.0.socket()
    }

    /// See [`AfPacket::add_wake_fd`]; also used while waiting for a lost interface.
    pub fn add_wake_fd(&mut self, fd: RawFd) {
        let (kernel, sock) = self.0.parts_mut();
        kernel.wake.push(fd);
        if let Some(s) = sock {
            s.add_wake_fd(fd);
        }
    }
}

fn kernel(opts: &CaptureOptions) -> Kernel {
    Kernel {
        opts: opts.clone(),
        wake: Vec::new(),
    }
}

impl PacketSource for InterfaceCapture {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        self.0.next_batch(timeout, sink)
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        self.0.set_rules(rules)
    }

    fn stats(&mut self) -> CaptureStats {
        self.0.stats()
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        self.0.take_events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;

    /// What the scripted interface looks like now.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Iface {
        Absent,
        Up(u32),
        Down(u32),
    }

    /// The test's view of the world, shared with the binder and its sockets.
    #[derive(Debug)]
    struct World {
        iface: Cell<Iface>,
        now: Cell<Instant>,
        opens: Cell<usize>,
        lookups: Cell<usize>,
        idled: RefCell<Vec<Duration>>,
    }

    #[derive(Debug)]
    struct FakeSocket {
        world: Rc<World>,
        index: u32,
        frames: u64,
        /// The kernel reports a link going away once (ENETDOWN), then the socket is quiet.
        reported: bool,
    }

    impl PacketSource for FakeSocket {
        fn next_batch(
            &mut self,
            _timeout: Duration,
            _sink: &mut dyn FnMut(&Frame<'_>),
        ) -> Result<usize, CaptureError> {
            match self.world.iface.get() {
                Iface::Up(i) if i == self.index => {
                    self.reported = false;
                    self.frames += 1;
                    Ok(1)
                }
                _ if self.reported => Ok(0),
                // Down, deleted or replaced: the kernel says ENETDOWN, once.
                _ => {
                    self.reported = true;
                    Err(CaptureError::InterfaceDown {
                        ifname: "eth0".into(),
                    })
                }
            }
        }

        fn set_rules(&mut self, _rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
            Ok(None)
        }

        fn stats(&mut self) -> CaptureStats {
            CaptureStats {
                delivered: self.frames,
                ..CaptureStats::default()
            }
        }
    }

    #[derive(Debug)]
    struct Script(Rc<World>);

    impl Binder for Script {
        type Socket = FakeSocket;

        fn open(&mut self, ifname: &str, _: &[CaptureRule]) -> Result<FakeSocket, CaptureError> {
            self.0.opens.set(self.0.opens.get() + 1);
            match self.0.iface.get() {
                Iface::Up(index) | Iface::Down(index) => Ok(FakeSocket {
                    world: Rc::clone(&self.0),
                    index,
                    frames: 0,
                    reported: false,
                }),
                Iface::Absent => Err(CaptureError::NoSuchInterface {
                    ifname: ifname.into(),
                }),
            }
        }

        fn index(socket: &FakeSocket) -> u32 {
            socket.index
        }

        fn lookup(&mut self, _: &str) -> io::Result<Option<(u32, bool)>> {
            self.0.lookups.set(self.0.lookups.get() + 1);
            Ok(match self.0.iface.get() {
                Iface::Absent => None,
                Iface::Up(i) => Some((i, true)),
                Iface::Down(i) => Some((i, false)),
            })
        }

        fn check(
            &self,
            _: Option<&FakeSocket>,
            rules: &[CaptureRule],
        ) -> Result<Option<Coarse>, CaptureError> {
            if rules.len() > 2 {
                return Err(CaptureError::Filter(bpf::FilterError::Link(
                    knock_core::wire::LinkType::LinuxSll,
                )));
            }
            Ok(None)
        }

        fn idle(&mut self, timeout: Duration) {
            self.0.idled.borrow_mut().push(timeout);
            self.0.now.set(self.0.now.get() + timeout);
        }

        fn now(&self) -> Instant {
            self.0.now.get()
        }
    }

    fn world(iface: Iface) -> Rc<World> {
        Rc::new(World {
            iface: Cell::new(iface),
            now: Cell::new(Instant::now()),
            opens: Cell::new(0),
            lookups: Cell::new(0),
            idled: RefCell::new(Vec::new()),
        })
    }

    fn step(f: &mut Follow<Script>) -> usize {
        f.next_batch(Duration::from_secs(10), &mut |_| {}).unwrap()
    }

    fn later(w: &World, d: Duration) {
        w.now.set(w.now.get() + d);
    }

    #[test]
    fn down_then_up_keeps_the_socket() {
        let w = world(Iface::Up(2));
        let mut f = Follow::open(Script(Rc::clone(&w)), "eth0", &[]).unwrap();
        assert_eq!(step(&mut f), 1);
        w.iface.set(Iface::Down(2));
        assert_eq!(step(&mut f), 0);
        assert_eq!(f.take_events(), [LinkEvent::Down]);
        // Looked at once at once; still down, so nothing more until RECHECK has passed.
        assert_eq!(w.lookups.get(), 1);
        assert_eq!(step(&mut f), 0);
        assert_eq!(w.lookups.get(), 1);
        assert!(f.take_events().is_empty());
        w.iface.set(Iface::Up(2));
        later(&w, RECHECK);
        assert_eq!(step(&mut f), 1);
        assert_eq!(f.take_events(), [LinkEvent::Up]);
        assert_eq!(w.opens.get(), 1, "the same socket throughout");
        assert!(f.socket().is_some());
    }

    #[test]
    fn deletion_is_noticed_at_once_and_the_return_rebinds_after_a_recheck() {
        let w = world(Iface::Up(2));
        let mut f = Follow::open(Script(Rc::clone(&w)), "eth0", &[]).unwrap();
        assert_eq!(step(&mut f), 1);
        w.iface.set(Iface::Absent);
        assert_eq!(step(&mut f), 0);
        assert_eq!(f.take_events(), [LinkEvent::Down, LinkEvent::Lost]);
        assert!(f.socket().is_none());
        // Its counters survive the socket.
        assert_eq!(f.stats().delivered, 1);
        // Gone: the next turn sleeps (no busy loop) at most RECHECK, without binding.
        assert_eq!(step(&mut f), 0);
        assert_eq!(w.opens.get(), 1);
        assert_eq!(*w.idled.borrow(), [RECHECK]);
        // The sleep let RECHECK pass: the next turn tries again, still absent.
        assert_eq!(step(&mut f), 0);
        assert_eq!(w.opens.get(), 2);
        w.iface.set(Iface::Up(9));
        later(&w, RECHECK);
        assert_eq!(step(&mut f), 1);
        assert_eq!(f.take_events(), [LinkEvent::Restored { index: 9 }]);
        assert_eq!(f.stats().delivered, 2);
    }

    #[test]
    fn an_interface_recreated_under_another_index_is_rebound() {
        let w = world(Iface::Up(2));
        let mut f = Follow::open(Script(Rc::clone(&w)), "eth0", &[]).unwrap();
        w.iface.set(Iface::Up(5));
        assert_eq!(step(&mut f), 0);
        assert_eq!(f.take_events(), [LinkEvent::Down, LinkEvent::Lost]);
        later(&w, RECHECK);
        assert_eq!(step(&mut f), 1);
        assert_eq!(f.take_events(), [LinkEvent::Restored { index: 5 }]);
    }

    #[test]
    fn a_capture_can_wait_for_an_interface_that_is_not_there_yet() {
        let w = world(Iface::Absent);
        let mut f = Follow::waiting(Script(Rc::clone(&w)), "eth0", &[]).unwrap();
        assert_eq!(step(&mut f), 0);
        assert!(f.take_events().is_empty());
        w.iface.set(Iface::Up(3));
        assert_eq!(step(&mut f), 1, "RECHECK passed during the idle turn");
        assert_eq!(f.take_events(), [LinkEvent::Restored { index: 3 }]);
    }

    #[test]
    fn rules_that_make_no_filter_fail_even_while_unbound() {
        let w = world(Iface::Absent);
        let rule = CaptureRule {
            proto: knock_core::hit::Proto::Udp,
            port: 1,
            flags: knock_core::hit::FlagRule::ANY,
        };
        assert!(Follow::waiting(Script(Rc::clone(&w)), "eth0", &[rule; 3]).is_err());
        let mut f = Follow::waiting(Script(Rc::clone(&w)), "eth0", &[rule]).unwrap();
        assert!(f.set_rules(&[rule; 3]).is_err());
        assert!(f.set_rules(&[rule, rule]).is_ok());
    }

    #[test]
    fn describe_link_events() {
        assert_eq!(
            LinkEvent::Lost.describe("eth0"),
            "eth0: interface gone, waiting for it to return"
        );
        assert_eq!(
            LinkEvent::Restored { index: 4 }.describe("eth0"),
            "eth0: interface back (index 4), capture resumed"
        );
    }
}
