//! Linux capture: an AF_PACKET socket bound to one interface by index, filtered in the
//! kernel by a classic BPF program compiled from the capture rules, read through a
//! TPACKET_V2 ring or in recvmmsg batches; and [`InterfaceCapture`], which follows the
//! interface through loss and return.
//!
//! Binding at the link layer means knocks on closed ports are seen: the kernel answers them
//! with RSTs, but a copy reaches the socket first. The socket is created with protocol 0,
//! which receives nothing, and only starts receiving at `bind`, after the filter is attached,
//! so no unfiltered frame is ever queued. Outgoing frames are not captured.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::bpf::{self, Families, Program};
use super::pace::{Pace, Wait};
use super::ring::{Ring, RingOptions};
use super::{CaptureError, CaptureStats, Frame, LinkKind, PacketSource};
use crate::filter::CaptureRule;
use crate::netif;

/// Capture tuning.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    pub families: Families,
    /// Socket receive buffer in bytes: what absorbs a burst while the loop is busy.
    pub rcvbuf: usize,
    /// Frames per recvmmsg call.
    pub batch: usize,
    /// Bytes kept per frame; longer frames are truncated (knock packets are tiny).
    pub slot_len: usize,
    /// Most frames one `next_batch` call delivers, so timers and signals get a turn during
    /// a flood.
    pub max_per_call: usize,
    /// Read through a TPACKET_V2 ring (the default) rather than with recvmmsg. `batch`
    /// applies only to recvmmsg; with a ring, `rcvbuf` and `slot_len` bound only the copies
    /// of frames too long for a ring slot. Measured on a veth pair (bench/README.md): the
    /// ring keeps up with 1.2 million SYNs/s at ~35 ns of user CPU per frame and hands a
    /// lone knock over 4-34 us after its kernel timestamp; recvmmsg spends ~1.2 us per
    /// frame, tops out at 0.6-0.8 million/s, sometimes with kernel drops, and hands a lone
    /// knock over in 3-40 us.
    pub ring: Option<RingOptions>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            families: Families::Both,
            rcvbuf: 8 << 20,
            batch: 64,
            slot_len: 2048,
            max_per_call: 4096,
            ring: Some(RingOptions::default()),
        }
    }
}

const ETH_P_ALL: u16 = 0x0003;
/// Room for the SO_TIMESTAMPNS and PACKET_AUXDATA control messages of one frame.
const CTRL_LEN: usize = 128;

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct AfPacket {
    fd: OwnedFd,
    ifname: String,
    ifindex: u32,
    link: LinkKind,
    families: Families,
    program: Program,
    /// Set when the filter changed: frames read until the queue is next empty may have been
    /// queued under the old filter, so they are run through the new one here.
    refilter: bool,
    opts: CaptureOptions,
    ring: Option<Ring>,
    /// How to wait on an empty ring.
    pace: Option<Pace>,
    bufs: Vec<u8>,
    /// u64 for the alignment control messages need.
    ctrl: Vec<u64>,
    wake: Vec<RawFd>,
    stats: CaptureStats,
}

fn os_err(op: &'static str, ifname: &str) -> CaptureError {
    CaptureError::Io {
        op,
        ifname: ifname.to_string(),
        source: io::Error::last_os_error(),
    }
}

/// `setsockopt` with a plain value of type `T` (its size is the option length).
pub(super) fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points at a live T and we pass its exact size; the kernel copies it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn attach(fd: RawFd, program: &Program) -> io::Result<()> {
    let insns = program.insns();
    let prog = libc::sock_fprog {
        len: u16::try_from(insns.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        // bpf::Insn is repr(C) with the fields and layout of struct sock_filter.
        filter: insns.as_ptr().cast_mut().cast(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

fn is_link_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENETDOWN | libc::ENODEV | libc::ENXIO)
    )
}

impl AfPacket {
    /// Opens a capture on the interface named `ifname` with a filter for `rules`.
    pub fn open(
        ifname: &str,
        rules: &[CaptureRule],
        opts: &CaptureOptions,
    ) -> Result<AfPacket, CaptureError> {
        let iface = netif::find(ifname)
            .map_err(|source| CaptureError::Io {
                op: "getifaddrs",
                ifname: ifname.to_string(),
                source,
            })?
            .ok_or_else(|| CaptureError::NoSuchInterface {
                ifname: ifname.to_string(),
            })?;
        let link = iface.link().ok_or_else(|| CaptureError::UnsupportedLink {
            ifname: ifname.to_string(),
            hatype: iface.hatype,
        })?;
        let program = bpf::compile(rules, link, opts.families)?;

        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(os_err("socket(AF_PACKET)", ifname));
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let io_err = |op, source| CaptureError::Io {
            op,
            ifname: ifname.to_string(),
            source,
        };

        let rcvbuf = i32::try_from(opts.rcvbuf).unwrap_or(i32::MAX);
        // SO_RCVBUFFORCE passes rmem_max, which root may do; SO_RCVBUF is capped by it.
        if setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf).is_err() {
            setsockopt(s, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf)
                .map_err(|e| io_err("setsockopt(SO_RCVBUF)", e))?;
        }
        setsockopt(s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)
            .map_err(|e| io_err("setsockopt(SO_TIMESTAMPNS)", e))?;
        setsockopt(s, libc::SOL_PACKET, libc::PACKET_AUXDATA, &1i32)
            .map_err(|e| io_err("setsockopt(PACKET_AUXDATA)", e))?;
        // Linux 4.20+; older kernels still deliver outgoing frames, which recv drops.
        let _ = setsockopt(s, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
        attach(s, &program).map_err(|e| io_err("setsockopt(SO_ATTACH_FILTER)", e))?;
        let ring = opts
            .ring
            .as_ref()
            .map(|r| Ring::setup(s, r, opts.slot_len))
            .transpose()
            .map_err(|(op, e)| io_err(op, e))?;

        // SAFETY: sockaddr_ll is plain old data, for which all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = i32::try_from(iface.index).unwrap_or(0);
        // SAFETY: sll is a valid sockaddr_ll and we pass its size.
        let rc = unsafe {
            libc::bind(
                s,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err("bind(AF_PACKET)", ifname));
        }
        let batch = if ring.is_some() { 0 } else { opts.batch.max(1) };
        Ok(AfPacket {
            fd,
            ifname: ifname.to_string(),
            ifindex: iface.index,
            link,
            families: opts.families,
            program,
            refilter: false,
            opts: opts.clone(),
            pace: opts
                .ring
                .as_ref()
                .map(|r| Pace::new(r.busy_interval, r.busy_frames as usize)),
            ring,
            bufs: vec![0; batch * opts.slot_len.max(64)],
            ctrl: vec![0; batch * CTRL_LEN / 8],
            wake: Vec::new(),
            stats: CaptureStats::default(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn link(&self) -> LinkKind {
        self.link
    }

    /// The filter in force.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Makes `next_batch` return early when `fd` becomes readable (a signalfd, an eventfd
    /// the command threads write to, ...). The caller drains it.
    pub fn add_wake_fd(&mut self, fd: RawFd) {
        self.wake.push(fd);
    }

    /// Waits until the socket or a wake-up descriptor is ready; true if the socket is.
    /// With `sleep`, it watches only the wake-up descriptors, for that long at most, so
    /// the kernel has no one to wake for each frame; true unless one of them woke it.
    fn wait(&self, timeout: Duration, sleep: Option<Duration>) -> Result<bool, CaptureError> {
        let socket = sleep.is_none().then(|| self.fd.as_raw_fd());
        let timeout = sleep.map_or(timeout, |s| s.min(timeout));
        let mut fds: Vec<libc::pollfd> = socket
            .into_iter()
            .chain(self.wake.iter().copied())
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: fds is a live array of fds.len() pollfd structs, ts a valid timespec; no
        // signal mask is passed.
        let rc = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(CaptureError::Io {
                op: "poll",
                ifname: self.ifname.clone(),
                source: e,
            });
        }
        if socket.is_none() {
            return Ok(fds.iter().all(|f| f.revents == 0));
        }
        if fds[0].revents & libc::POLLERR != 0 {
            // With a ring there is no recv to report the error, so fetch it here.
            if let Some(e) = self.socket_error() {
                return Err(self.read_error("poll", e));
            }
        }
        Ok(fds[0].revents != 0)
    }

    /// A failed read: the interface going away, or an error naming `op`.
    fn read_error(&self, op: &'static str, e: io::Error) -> CaptureError {
        if is_link_gone(&e) {
            CaptureError::InterfaceDown {
                ifname: self.ifname.clone(),
            }
        } else {
            CaptureError::Io {
                op,
                ifname: self.ifname.clone(),
                source: e,
            }
        }
    }

    /// The socket's pending error (SO_ERROR), which reading clears.
    fn socket_error(&self) -> Option<io::Error> {
        let mut err: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: err and len are live and len is err's size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut i32).cast(),
                &mut len,
            )
        };
        (rc == 0 && err != 0).then(|| io::Error::from_raw_os_error(err))
    }

    /// One recvmmsg round: returns frames delivered, or None when the queue is empty.
    fn read_round(
        &mut self,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<Option<usize>, CaptureError> {
        let batch = self.opts.batch.max(1);
        let slot = self.bufs.len() / batch;
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut addrs: Vec<libc::sockaddr_ll> = vec![unsafe { std::mem::zeroed() }; batch];
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .chunks_exact_mut(slot)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let ctrl_base = self.ctrl.as_mut_ptr().cast::<u8>();
        let mut msgs: Vec<libc::mmsghdr> = (0..batch)
            .map(|i| {
                // SAFETY: all-zero is a valid msghdr; the pointers are filled in below.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
                // SAFETY: ctrl holds batch * CTRL_LEN bytes, so slot i is in bounds.
                h.msg_control = unsafe { ctrl_base.add(i * CTRL_LEN) }.cast();
                h.msg_controllen = CTRL_LEN as _;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: msgs holds `batch` headers whose name, iovec and control pointers point
        // into addrs, iovs/bufs and ctrl, all alive and unaliased until we read them below.
        let n = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                batch as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) => Ok(None),
                Some(libc::EINTR) => Ok(Some(0)),
                _ => Err(self.read_error("recvmmsg", e)),
            };
        }
        let mut delivered = 0;
        for (i, m) in msgs.iter().take(n as usize).enumerate() {
            if addrs[i].sll_pkttype == libc::PACKET_OUTGOING {
                self.stats.refiltered += 1;
                continue;
            }
            let (ts_ns, aux) = read_cmsgs(&m.msg_hdr);
            let len = (m.msg_len as usize).min(slot);
            let data = &self.bufs[i * slot..i * slot + len];
            if self.refilter && !self.program.accepts(data) {
                self.stats.refiltered += 1;
                continue;
            }
            let vlan = aux.and_then(|a| {
                (a.tp_status & libc::TP_STATUS_VLAN_VALID != 0 || a.tp_vlan_tci != 0)
                    .then_some(a.tp_vlan_tci & 0x0fff)
            });
            let ts_ns = ts_ns.unwrap_or_else(wall_clock_ns);
            sink(&Frame {
                link: self.link,
                ts_ns,
                vlan,
                wire_len: aux.map_or(m.msg_len, |a| a.tp_len),
                data,
            });
            delivered += 1;
        }
        Ok(Some(delivered))
    }

    fn kernel_drops(&mut self) {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: st and len are live and len is st's size; the kernel writes at most that.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        // Reading the counters resets them, so they are summed here.
        if rc == 0 {
            self.stats.kernel_drops += u64::from(st.tp_drops);
        }
    }
}

fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The kernel timestamp and auxiliary data of one received message.
fn read_cmsgs(h: &libc::msghdr) -> (Option<u64>, Option<libc::tpacket_auxdata>) {
    let (mut ts, mut aux) = (None, None);
    // SAFETY: h was filled in by recvmmsg, so its control buffer holds msg_controllen bytes
    // of well-formed cmsgs; CMSG_FIRSTHDR/NXTHDR stay inside it, and each payload is read
    // unaligned as the type its level and type say it is.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let t = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    let ns = u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
                        + u64::try_from(t.tv_nsec).unwrap_or(0);
                    ts = Some(ns);
                }
                (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                    aux = Some(std::ptr::read_unaligned(
                        data.cast::<libc::tpacket_auxdata>(),
                    ));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (ts, aux)
}

impl AsRawFd for AfPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PacketSource for AfPacket {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        let mut delivered = 0;
        let mut waited = false;
        while delivered < self.opts.max_per_call {
            let round = match &mut self.ring {
                Some(ring) => {
                    let round = ring.read(
                        self.fd.as_raw_fd(),
                        self.link,
                        &self.program,
                        &mut self.stats,
                        self.opts.max_per_call - delivered,
                        sink,
                    );
                    if let Some(e) = ring.take_error() {
                        self.stats.delivered += (delivered + round.unwrap_or(0)) as u64;
                        return Err(self.read_error("recv", e));
                    }
                    round
                }
                None => self.read_round(sink)?,
            };
            match round {
                Some(n) => {
                    delivered += n;
                    if let Some(pace) = &mut self.pace {
                        pace.delivered(n);
                    }
                }
                None => {
                    // The queue was empty at this point, so nothing queued under an older
                    // filter is left.
                    self.refilter = false;
                    if delivered > 0 || waited {
                        break;
                    }
                    let sleep = match self.pace.as_mut().map(|p| p.wait(Instant::now())) {
                        Some(Wait::Sleep(d)) => Some(d),
                        Some(Wait::ForFrame) | None => None,
                    };
                    // Even with a zero timeout, poll once: with a ring, that is where a
                    // socket error (the interface going down) shows.
                    if !self.wait(timeout, sleep)? {
                        break;
                    }
                    waited = true;
                }
            }
        }
        self.stats.delivered += delivered as u64;
        Ok(delivered)
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<(), CaptureError> {
        let program = bpf::compile(rules, self.link, self.families)?;
        attach(self.fd.as_raw_fd(), &program).map_err(|source| CaptureError::Io {
            op: "setsockopt(SO_ATTACH_FILTER)",
            ifname: self.ifname.clone(),
            source,
        })?;
        self.program = program;
        match &mut self.ring {
            Some(ring) => ring.refilter(),
            None => self.refilter = true,
        }
        Ok(())
    }

    fn stats(&mut self) -> CaptureStats {
        self.kernel_drops();
        self.stats
    }
}

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
    pub fn describe(&self, ifname: &str) -> String {
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

/// How often a lost or down interface is looked up again.
const RECHECK: Duration = Duration::from_secs(1);

/// A capture that follows an interface by name: when it goes down or is deleted, the
/// capture reports it and keeps waiting, and binds again when it returns.
#[derive(Debug)]
pub struct InterfaceCapture {
    ifname: String,
    opts: CaptureOptions,
    rules: Vec<CaptureRule>,
    sock: Option<AfPacket>,
    down: bool,
    last_check: Option<Instant>,
    events: VecDeque<LinkEvent>,
    wake: Vec<RawFd>,
    /// Counters of sockets closed since.
    carried: CaptureStats,
}

impl InterfaceCapture {
    /// Opens the capture; the interface must exist now.
    pub fn open(
        ifname: &str,
        rules: &[CaptureRule],
        opts: &CaptureOptions,
    ) -> Result<InterfaceCapture, CaptureError> {
        let sock = AfPacket::open(ifname, rules, opts)?;
        Ok(InterfaceCapture {
            ifname: ifname.to_string(),
            opts: opts.clone(),
            rules: rules.to_vec(),
            sock: Some(sock),
            down: false,
            last_check: None,
            events: VecDeque::new(),
            wake: Vec::new(),
            carried: CaptureStats::default(),
        })
    }

    /// A capture for an interface that may not exist yet: it binds when the interface
    /// appears (reporting [`LinkEvent::Restored`]), as after a loss.
    pub fn waiting(
        ifname: &str,
        rules: &[CaptureRule],
        opts: &CaptureOptions,
    ) -> Result<InterfaceCapture, CaptureError> {
        // Fail now on rules that can never compile, not later in the loop.
        bpf::compile(rules, LinkKind::Ethernet, opts.families)?;
        Ok(InterfaceCapture {
            ifname: ifname.to_string(),
            opts: opts.clone(),
            rules: rules.to_vec(),
            sock: None,
            down: false,
            last_check: None,
            events: VecDeque::new(),
            wake: Vec::new(),
            carried: CaptureStats::default(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The bound socket, if the interface is there.
    pub fn socket(&self) -> Option<&AfPacket> {
        self.sock.as_ref()
    }

    /// The link type, while bound.
    pub fn link(&self) -> Option<LinkKind> {
        self.sock.as_ref().map(AfPacket::link)
    }

    /// See [`AfPacket::add_wake_fd`]; also used while waiting for a lost interface.
    pub fn add_wake_fd(&mut self, fd: RawFd) {
        self.wake.push(fd);
        if let Some(s) = &mut self.sock {
            s.add_wake_fd(fd);
        }
    }

    /// State changes since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<LinkEvent> {
        self.events.drain(..).collect()
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
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
        self.last_check = Some(Instant::now());
        self.events.push_back(LinkEvent::Lost);
    }

    /// While down: has it come up, or gone away?
    fn recheck_down(&mut self) {
        let index = self.sock.as_ref().map_or(0, AfPacket::ifindex);
        match netif::find(&self.ifname) {
            Ok(Some(i)) if i.index == index => {
                if i.is_up() {
                    self.down = false;
                    self.events.push_back(LinkEvent::Up);
                }
            }
            Ok(_) => self.lose(),
            Err(_) => {}
        }
    }

    fn sleep(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .wake
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: fds is a live array of fds.len() pollfd structs (possibly empty, which
        // makes poll a plain sleep).
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    }
}

impl PacketSource for InterfaceCapture {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        if self.sock.is_none() {
            if self.due() {
                match AfPacket::open(&self.ifname, &self.rules, &self.opts) {
                    Ok(mut s) => {
                        for &fd in &self.wake {
                            s.add_wake_fd(fd);
                        }
                        self.events
                            .push_back(LinkEvent::Restored { index: s.ifindex() });
                        self.sock = Some(s);
                    }
                    Err(CaptureError::NoSuchInterface { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if self.sock.is_none() {
                self.sleep(timeout.min(RECHECK));
                return Ok(0);
            }
        }
        if self.down && self.due() {
            self.recheck_down();
            if self.sock.is_none() {
                return Ok(0);
            }
        }
        let Some(sock) = self.sock.as_mut() else {
            return Ok(0);
        };
        // While down the socket stays quiet; wake up in time for the next look.
        let timeout = if self.down {
            timeout.min(RECHECK)
        } else {
            timeout
        };
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

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<(), CaptureError> {
        // Compile first, so a rule set that is too large fails even while unbound.
        let link = self.link().unwrap_or(LinkKind::Ethernet);
        bpf::compile(rules, link, self.opts.families)?;
        self.rules = rules.to_vec();
        match &mut self.sock {
            Some(s) => s.set_rules(rules),
            None => Ok(()),
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
}
