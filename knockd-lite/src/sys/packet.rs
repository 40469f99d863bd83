//! AF_PACKET sockets: creating, configuring and binding one, its counters and pending error,
//! and reading frames in `recvmmsg` batches with their kernel timestamps and VLAN metadata.
//! (The TPACKET_V2 ring's shared memory is `capture/ring.rs`'s.)

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use knockd_engine::bpf::Insn;

/// `ETH_P_ALL`: every protocol, once the socket is bound.
const ETH_P_ALL: u16 = 0x0003;
/// Room for the SO_TIMESTAMPNS and PACKET_AUXDATA control messages of one frame.
const CTRL_LEN: usize = 128;

/// Socket option values: plain data without pointers, so the kernel copying their bytes is
/// all that happens to them.
trait OptionValue: Copy {}
impl OptionValue for i32 {}
impl OptionValue for libc::tpacket_req {}
impl OptionValue for libc::tpacket_stats {}

/// An AF_PACKET raw socket (non-blocking, close-on-exec).
#[derive(Debug)]
pub(crate) struct PacketSocket(OwnedFd);

impl PacketSocket {
    /// A socket with protocol 0, which receives nothing until [`PacketSocket::bind`].
    pub(crate) fn open() -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        let raw = super::check(raw)? as RawFd;
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        Ok(PacketSocket(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// A socket another process opened and passed over (the sandboxed worker's capture).
    pub(crate) fn from_fd(fd: OwnedFd) -> PacketSocket {
        PacketSocket(fd)
    }

    /// The descriptor, to pass to another process.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.0
    }

    fn set<T: OptionValue>(&self, level: i32, name: i32, value: &T) -> io::Result<()> {
        // SAFETY: value points at a live T of plain data and we pass its exact size; the
        // kernel only copies it.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        super::check(rc).map(drop)
    }

    /// `setsockopt` with an `int` value.
    pub(crate) fn set_int(&self, level: i32, name: i32, value: i32) -> io::Result<()> {
        self.set(level, name, &value)
    }

    /// `PACKET_RX_RING`: asks the kernel for a receive ring of this geometry.
    pub(crate) fn set_rx_ring(&self, req: &libc::tpacket_req) -> io::Result<()> {
        self.set(libc::SOL_PACKET, libc::PACKET_RX_RING, req)
    }

    /// `SO_ATTACH_FILTER`: replaces the socket's classic BPF filter.
    pub(crate) fn attach_filter(&self, insns: &[Insn]) -> io::Result<()> {
        let mut filter: Vec<libc::sock_filter> = insns
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let prog = libc::sock_fprog {
            len: u16::try_from(filter.len()).map_err(|_| io::ErrorKind::InvalidInput)?,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: prog points at `len` live sock_filter structs in `filter`, which outlives
        // the call; the kernel copies the program during it.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        super::check(rc).map(drop)
    }

    /// Binds to the interface with this index, for every protocol: frames start arriving.
    pub(crate) fn bind(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data, for which all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: sll is a valid sockaddr_ll and we pass its size.
        let rc = unsafe {
            libc::bind(
                self.0.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        super::check(rc).map(drop)
    }

    fn get<T: OptionValue>(&self, level: i32, name: i32, value: &mut T) -> io::Result<()> {
        let mut len = std::mem::size_of::<T>() as libc::socklen_t;
        // SAFETY: value and len are live and len is value's size; the kernel writes at most
        // that many bytes of plain data.
        let rc = unsafe {
            libc::getsockopt(
                self.0.as_raw_fd(),
                level,
                name,
                (value as *mut T).cast(),
                &mut len,
            )
        };
        super::check(rc).map(drop)
    }

    /// The socket's pending error (SO_ERROR), which reading clears.
    pub(crate) fn take_error(&self) -> Option<io::Error> {
        let mut err = 0i32;
        self.get(libc::SOL_SOCKET, libc::SO_ERROR, &mut err).ok()?;
        (err != 0).then(|| io::Error::from_raw_os_error(err))
    }

    /// Frames the kernel dropped since the last call (PACKET_STATISTICS, which reading
    /// resets).
    pub(crate) fn drops(&self) -> Option<u32> {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        self.get(libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut st)
            .ok()?;
        Some(st.tp_drops)
    }

    /// One datagram into `buf` without waiting; its length (cut to `buf`).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is a live, writable buffer of buf.len() bytes.
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        super::check(n as i64).map(|n| (n as usize).min(buf.len()))
    }

    /// Reads up to a batch of frames without waiting; how many arrived (0: none queued).
    pub(crate) fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let count = batch.addrs.len();
        let slot = batch.slot;
        let mut iovs: Vec<libc::iovec> = batch
            .bufs
            .chunks_exact_mut(slot)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let ctrl_base = batch.ctrl.as_mut_ptr().cast::<u8>();
        let mut msgs: Vec<libc::mmsghdr> = (0..count)
            .map(|i| {
                // SAFETY: all-zero is a valid msghdr; the pointers are filled in below.
                let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                h.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_ll).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
                // SAFETY: ctrl holds count * CTRL_LEN bytes, so slot i is in bounds.
                h.msg_control = unsafe { ctrl_base.add(i * CTRL_LEN) }.cast();
                h.msg_controllen = CTRL_LEN as _;
                libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                }
            })
            .collect();
        // SAFETY: msgs holds `count` headers whose name, iovec and control pointers point
        // into batch.addrs, iovs/batch.bufs and batch.ctrl, all alive and not otherwise
        // borrowed until the results are copied out below.
        let n = unsafe {
            libc::recvmmsg(
                self.0.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as u32,
                // glibc takes the flags as int, musl as unsigned int.
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        let n = match super::check(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        batch.meta.clear();
        for (i, m) in msgs.iter().take(n).enumerate() {
            // SAFETY: recvmmsg filled in this header, so its control buffer holds
            // msg_controllen bytes of well-formed cmsgs.
            let (ts_ns, aux) = unsafe { read_cmsgs(&m.msg_hdr) };
            batch.meta.push(Meta {
                len: (m.msg_len as usize).min(slot),
                msg_len: m.msg_len,
                outgoing: batch.addrs[i].sll_pkttype == libc::PACKET_OUTGOING,
                ts_ns,
                aux: aux.map(|a| (a.tp_status, a.tp_vlan_tci, a.tp_len)),
            });
        }
        Ok(n)
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Buffers for [`PacketSocket::recv_batch`]: a slot per frame, with its address and control
/// messages.
#[derive(Debug)]
pub(crate) struct RecvBatch {
    slot: usize,
    bufs: Vec<u8>,
    /// u64 for the alignment control messages need.
    ctrl: Vec<u64>,
    addrs: Vec<libc::sockaddr_ll>,
    meta: Vec<Meta>,
}

/// What the kernel said about one message of the last batch.
#[derive(Clone, Copy, Debug)]
struct Meta {
    len: usize,
    msg_len: u32,
    outgoing: bool,
    ts_ns: Option<u64>,
    /// tp_status, tp_vlan_tci, tp_len from PACKET_AUXDATA.
    aux: Option<(u32, u16, u32)>,
}

/// One frame of the last batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received<'a> {
    pub(crate) data: &'a [u8],
    /// Sent by this host (not filtered out by an older kernel).
    pub(crate) outgoing: bool,
    /// Kernel receive time, nanoseconds since the Unix epoch.
    pub(crate) ts_ns: Option<u64>,
    /// The VLAN id of a tag the kernel took off the frame.
    pub(crate) vlan: Option<u16>,
    /// The frame's length on the wire.
    pub(crate) wire_len: u32,
}

impl RecvBatch {
    /// Room for `count` frames (at least 1) of up to `slot_len` bytes (at least 64) each.
    pub(crate) fn new(count: usize, slot_len: usize) -> RecvBatch {
        let (count, slot) = (count.max(1), slot_len.max(64));
        // SAFETY: all-zero is a valid sockaddr_ll (plain data).
        let zero: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        RecvBatch {
            slot,
            bufs: vec![0; count * slot],
            ctrl: vec![0; count * CTRL_LEN / 8],
            addrs: vec![zero; count],
            meta: Vec::with_capacity(count),
        }
    }

    /// The frames the last [`PacketSocket::recv_batch`] read, in order.
    pub(crate) fn frames(&self) -> impl Iterator<Item = Received<'_>> {
        self.meta.iter().enumerate().map(|(i, m)| {
            let vlan = m.aux.and_then(|(status, tci, _)| {
                (status & libc::TP_STATUS_VLAN_VALID != 0 || tci != 0).then_some(tci & 0x0fff)
            });
            Received {
                data: &self.bufs[i * self.slot..i * self.slot + m.len],
                outgoing: m.outgoing,
                ts_ns: m.ts_ns,
                vlan,
                wire_len: m.aux.map_or(m.msg_len, |(_, _, len)| len),
            }
        })
    }
}

/// The kernel timestamp and auxiliary data of one received message.
///
/// # Safety
/// `h` was filled in by recvmmsg: its control buffer holds msg_controllen bytes of
/// well-formed cmsgs.
unsafe fn read_cmsgs(h: &libc::msghdr) -> (Option<u64>, Option<libc::tpacket_auxdata>) {
    let (mut ts, mut aux) = (None, None);
    // SAFETY: by the caller's promise, CMSG_FIRSTHDR/NXTHDR stay inside the control buffer,
    // and each payload is read unaligned as the type its level and type say it is.
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
