//! A TPACKET_V2 receive ring (PACKET_MMAP): the kernel writes each accepted frame into a
//! slot of memory shared with us and flips the slot's status word, so a flood costs no
//! system call and no copy per frame, and a lone knock is ready the moment it is written.
//!
//! Why V2 and not V3: a V3 ring hands over whole blocks, and a block that does not fill up
//! waits for its retire timer, 1 ms at the least (measured: a lone knock reached us 0.9 ms
//! after its kernel timestamp, against 4 to 34 us here). A V2 slot is ours as soon as it is
//! written, and poll wakes for it. That wake-up, once per frame, is what a flood would make
//! expensive; the reader avoids it under load (see `pace`).
//!
//! Slots have a fixed size, kept small since knocks are all headers. A frame too long for
//! its slot is cut to fit, and the kernel queues a whole copy of it on the socket
//! (PACKET_COPY_THRESH), which is read in the slot's place.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use knock_core::wire::LinkType;
use knockd_engine::bpf::Program;

use super::{CaptureStats, Frame};
use crate::sys::PacketSocket;

/// Ring geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Bytes per block: a power of two, at least a page. The kernel allocates each block
    /// as one piece, so smaller blocks need less contiguous memory.
    pub block_size: u32,
    pub blocks: u32,
    /// Bytes per slot, its 66-byte header included (a multiple of 16). On Ethernet a slot
    /// holds a frame of up to `frame_size - 66` bytes; a longer one arrives as a copy.
    pub frame_size: u32,
    /// Under load the reader stops asking to be woken for each frame: once more than
    /// `busy_frames` frames arrive per `busy_interval`, it sleeps `busy_interval` between
    /// drains, until a drain finds fewer. Zero in either turns this off.
    pub busy_interval: Duration,
    pub busy_frames: u32,
}

impl Default for RingOptions {
    /// 96 blocks of 64 KiB (6 MiB) in 192-byte slots: 32,736 frames of backlog. A slot
    /// holds a 126-byte frame: an IPv6 SYN with 40 bytes of TCP options and a VLAN tag
    /// fits with room to spare.
    fn default() -> Self {
        RingOptions {
            block_size: 64 << 10,
            blocks: 96,
            frame_size: 192,
            busy_interval: Duration::from_millis(1),
            busy_frames: 8,
        }
    }
}

/// Where the sockaddr_ll sits in a slot: after the header, aligned.
const SLL_OFFSET: usize = (std::mem::size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);
/// The smallest slot worth having: header, sockaddr_ll and a minimal IPv4/TCP frame.
const MIN_FRAME_SIZE: u32 = 128;

#[derive(Debug)]
pub(super) struct Ring {
    base: *mut u8,
    len: usize,
    block_size: usize,
    frame_size: usize,
    per_block: usize,
    frames: usize,
    /// The next slot to read.
    cur: usize,
    /// Slots still to be run through the user-space filter after a filter change.
    refilter_frames: usize,
    /// Where a too-long frame's copy is read to; its length bounds what we keep of it.
    copy: Vec<u8>,
    /// An error a copy's recv reported (the socket's pending error comes out there first),
    /// to be passed on after the frames read so far.
    error: Option<io::Error>,
}

// SAFETY: the mapping is owned by this value alone and only touched through &mut self.
unsafe impl Send for Ring {}

/// One slot's header, as the kernel left it.
struct Slot {
    status: u32,
    len: u32,
    snaplen: u32,
    mac: u16,
    sec: u32,
    nsec: u32,
    vlan_tci: u16,
    pkttype: u8,
}

impl Ring {
    /// Switches the socket to TPACKET_V2 and maps its ring; copies of frames too long for
    /// a slot are kept to `copy_len` bytes. Errors name the step.
    pub(super) fn setup(
        sock: &PacketSocket,
        opts: &RingOptions,
        copy_len: usize,
    ) -> Result<Ring, (&'static str, io::Error)> {
        let req = Ring::configure(sock, opts)?;
        Ring::map(sock, &req, copy_len)
    }

    /// [`Ring::setup`] without the mapping: the kernel's ring is there, for another process
    /// to map ([`Ring::map_existing`]; the monitor opens the sandboxed worker's socket so,
    /// and never maps the 6 MiB itself).
    pub(super) fn configure(
        sock: &PacketSocket,
        opts: &RingOptions,
    ) -> Result<libc::tpacket_req, (&'static str, io::Error)> {
        let version = libc::tpacket_versions::TPACKET_V2 as i32;
        sock.set_int(libc::SOL_PACKET, libc::PACKET_VERSION, version)
            .map_err(|e| ("setsockopt(PACKET_VERSION)", e))?;
        // Any non-zero value turns the copies on; the kernel bounds them by SO_RCVBUF.
        sock.set_int(libc::SOL_PACKET, libc::PACKET_COPY_THRESH, 1)
            .map_err(|e| ("setsockopt(PACKET_COPY_THRESH)", e))?;
        let req = geometry(opts)?;
        sock.set_rx_ring(&req)
            .map_err(|e| ("setsockopt(PACKET_RX_RING)", e))?;
        Ok(req)
    }

    /// Maps the ring another process set up on `sock` with the same `opts` (the sandboxed
    /// worker's side: the monitor configured the socket, and its own mapping is gone).
    pub(super) fn map_existing(
        sock: &PacketSocket,
        opts: &RingOptions,
        copy_len: usize,
    ) -> Result<Ring, (&'static str, io::Error)> {
        Ring::map(sock, &geometry(opts)?, copy_len)
    }

    fn map(
        sock: &PacketSocket,
        req: &libc::tpacket_req,
        copy_len: usize,
    ) -> Result<Ring, (&'static str, io::Error)> {
        let (block_size, blocks, frame_size, frames) = (
            req.tp_block_size,
            req.tp_block_nr,
            req.tp_frame_size,
            req.tp_frame_nr,
        );
        let per_block = block_size / frame_size;
        let len = usize::try_from(u64::from(block_size) * u64::from(blocks))
            .map_err(|_| ("mmap(PACKET_RX_RING)", io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: maps the ring the kernel allocated for fd (PACKET_RX_RING with this very
        // geometry), shared and writable as PACKET_MMAP requires; the result is checked
        // against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                sock.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(("mmap(PACKET_RX_RING)", io::Error::last_os_error()));
        }
        Ok(Ring {
            base: base.cast(),
            len,
            block_size: block_size as usize,
            frame_size: frame_size as usize,
            per_block: per_block as usize,
            frames: frames as usize,
            cur: 0,
            refilter_frames: 0,
            copy: vec![0; copy_len.max(64)],
            error: None,
        })
    }

    /// After a filter change: any slot up to one lap ahead of us may hold a frame the old
    /// filter accepted, including those the kernel is still writing, since it cannot
    /// overtake us.
    pub(super) fn refilter(&mut self) {
        self.refilter_frames = self.frames;
    }

    /// The error a copy's recv met, once.
    pub(super) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// The slot's offset in the mapping; frames do not straddle blocks.
    fn offset(&self, slot: usize) -> usize {
        (slot / self.per_block) * self.block_size + (slot % self.per_block) * self.frame_size
    }

    fn status_ptr(&self, slot: usize) -> *mut u32 {
        debug_assert!(slot < self.frames);
        // SAFETY: slot < frames, so the slot lies inside the mapping; tp_status is the
        // first field of the header at its start. We only form the pointer here.
        unsafe {
            let h = self
                .base
                .add(self.offset(slot))
                .cast::<libc::tpacket2_hdr>();
            std::ptr::addr_of_mut!((*h).tp_status)
        }
    }

    /// The status word of the slot at the cursor.
    fn status(&self) -> u32 {
        // SAFETY: the pointer is to a u32 inside the mapping (slot alignment is 16); the
        // kernel writes it concurrently, hence the volatile read.
        unsafe { std::ptr::read_volatile(self.status_ptr(self.cur)) }
    }

    /// Whether the slot at the cursor belongs to user space.
    fn ready(&self) -> bool {
        self.status() & libc::TP_STATUS_USER != 0
    }

    /// Hands the frames of ready slots to `sink`, in order, until `max` frames went out or
    /// no slot is ready. `None` if no slot was ready at all.
    pub(super) fn read(
        &mut self,
        sock: &PacketSocket,
        link: LinkType,
        program: &Program,
        stats: &mut CaptureStats,
        max: usize,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Option<usize> {
        let mut delivered = 0;
        let mut any = false;
        while delivered < max && self.ready() {
            any = true;
            // The kernel sets the status after writing the slot; read nothing before it.
            fence(Ordering::Acquire);
            let refilter = self.refilter_frames > 0;
            if self.read_slot(sock, link, program, refilter, stats, sink) {
                delivered += 1;
            }
            fence(Ordering::Release);
            // SAFETY: hands the slot back to the kernel; no reference into it outlived
            // read_slot.
            unsafe { std::ptr::write_volatile(self.status_ptr(self.cur), libc::TP_STATUS_KERNEL) };
            self.cur = (self.cur + 1) % self.frames;
            self.refilter_frames = self.refilter_frames.saturating_sub(1);
            if self.error.is_some() {
                break;
            }
        }
        any.then_some(delivered)
    }

    /// Reads the slot at the cursor, which belongs to user space; true if it went to
    /// `sink`.
    fn read_slot(
        &mut self,
        sock: &PacketSocket,
        link: LinkType,
        program: &Program,
        refilter: bool,
        stats: &mut CaptureStats,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> bool {
        // SAFETY: the slot at the cursor is inside the mapping and belongs to user space
        // (TP_STATUS_USER, read before the acquire fence), so the kernel does not write it
        // until we hand it back; it is frame_size bytes long.
        let slot = unsafe {
            std::slice::from_raw_parts(self.base.add(self.offset(self.cur)), self.frame_size)
        };
        let h = read_header(slot);
        // A copy was queued for this slot whatever becomes of the frame, so it is read
        // now to keep the queue in step with the ring.
        let copied = if h.status & libc::TP_STATUS_COPY != 0 {
            self.take_copy(sock)
        } else {
            None
        };
        let data = match copied {
            Some(n) => &self.copy[..n],
            None => {
                let start = usize::from(h.mac);
                // The kernel's offsets are checked against the slot anyway.
                match slot.get(start..start.saturating_add(h.snaplen as usize)) {
                    Some(d) => d,
                    None => return false,
                }
            }
        };
        if h.pkttype == libc::PACKET_OUTGOING || (refilter && !program.accepts(data)) {
            stats.refiltered += 1;
            return false;
        }
        let vlan = (h.status & libc::TP_STATUS_VLAN_VALID != 0).then_some(h.vlan_tci & 0x0fff);
        sink(&Frame {
            link,
            ts_ns: u64::from(h.sec) * 1_000_000_000 + u64::from(h.nsec),
            vlan,
            wire_len: h.len,
            data,
        });
        true
    }

    /// Reads the copy queued for a too-long frame; its length, or None if there was none
    /// (the queue is bounded by SO_RCVBUF, and a slot is cut short without a copy when it
    /// is full).
    fn take_copy(&mut self, sock: &PacketSocket) -> Option<usize> {
        // A pending socket error comes out of recv before the copy does, and reading it
        // clears it: keep it for the caller and try again.
        for _ in 0..4 {
            match sock.recv(&mut self.copy) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
        None
    }
}

/// The ring's shape for `opts`, as PACKET_RX_RING takes it.
fn geometry(opts: &RingOptions) -> Result<libc::tpacket_req, (&'static str, io::Error)> {
    let too_big = || {
        (
            "setsockopt(PACKET_RX_RING)",
            io::ErrorKind::InvalidInput.into(),
        )
    };
    let frame_size = opts
        .frame_size
        .max(MIN_FRAME_SIZE)
        .checked_next_multiple_of(16)
        .ok_or_else(too_big)?;
    let block_size = opts
        .block_size
        .max(4096)
        .max(frame_size)
        .checked_next_power_of_two()
        .ok_or_else(too_big)?;
    let blocks = opts.blocks.max(1);
    let per_block = block_size / frame_size;
    let frames = per_block.checked_mul(blocks).ok_or_else(too_big)?;
    u64::from(block_size)
        .checked_mul(u64::from(blocks))
        .and_then(|len| usize::try_from(len).ok())
        .ok_or_else(too_big)?;
    Ok(libc::tpacket_req {
        tp_block_size: block_size,
        tp_block_nr: blocks,
        tp_frame_size: frame_size,
        tp_frame_nr: frames,
    })
}

/// Copies the header and address fields out of a slot.
fn read_header(slot: &[u8]) -> Slot {
    // SAFETY: a slot is at least MIN_FRAME_SIZE bytes, more than the header and the
    // sockaddr_ll after it; read_unaligned does not rely on the slot's alignment.
    let (h, sll) = unsafe {
        (
            std::ptr::read_unaligned(slot.as_ptr().cast::<libc::tpacket2_hdr>()),
            std::ptr::read_unaligned(slot.as_ptr().add(SLL_OFFSET).cast::<libc::sockaddr_ll>()),
        )
    };
    Slot {
        status: h.tp_status,
        len: h.tp_len,
        snaplen: h.tp_snaplen,
        mac: h.tp_mac,
        sec: h.tp_sec,
        nsec: h.tp_nsec,
        vlan_tci: h.tp_vlan_tci,
        pkttype: sll.sll_pkttype,
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base and len are exactly what mmap returned, unmapped once; no slice
        // into the ring outlives &mut self borrows.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_follows_the_header_where_the_kernel_puts_it() {
        // TPACKET2_HDRLEN is the aligned header plus the sockaddr_ll.
        assert_eq!(SLL_OFFSET, 32);
        assert_eq!(
            SLL_OFFSET + std::mem::size_of::<libc::sockaddr_ll>(),
            libc::TPACKET2_HDRLEN
        );
    }

    #[test]
    fn a_slot_header_reads_back_field_by_field() {
        #[rustfmt::skip]
        let head: [u8; 52] = [
            0x11, 0x00, 0x00, 0x00, // tp_status: TP_STATUS_USER | TP_STATUS_VLAN_VALID
            0x4a, 0x00, 0x00, 0x00, // tp_len: 74
            0x3c, 0x00, 0x00, 0x00, // tp_snaplen: 60
            0x42, 0x00,             // tp_mac: 66
            0x50, 0x00,             // tp_net: 80
            0x00, 0xe1, 0xf5, 0x05, // tp_sec: 100,000,000
            0x15, 0xcd, 0x5b, 0x07, // tp_nsec: 123,456,789
            0x0a, 0x20,             // tp_vlan_tci: priority 1, VLAN 10
            0x00, 0x81,             // tp_vlan_tpid: 0x8100
            0x00, 0x00, 0x00, 0x00, // padding
            0x11, 0x00,             // sll_family: AF_PACKET
            0x08, 0x00,             // sll_protocol: ETH_P_IP, big-endian
            0x07, 0x00, 0x00, 0x00, // sll_ifindex: 7
            0x01, 0x00,             // sll_hatype: ARPHRD_ETHER
            0x04,                   // sll_pkttype: PACKET_OUTGOING
            0x06,                   // sll_halen
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, // sll_addr
        ];
        let mut slot = [0u8; MIN_FRAME_SIZE as usize];
        slot[..head.len()].copy_from_slice(&head);
        let h = read_header(&slot);
        assert_eq!(h.status, libc::TP_STATUS_USER | libc::TP_STATUS_VLAN_VALID);
        assert_eq!((h.len, h.snaplen, h.mac), (74, 60, 66));
        assert_eq!((h.sec, h.nsec), (100_000_000, 123_456_789));
        assert_eq!(h.vlan_tci, 0x200a);
        assert_eq!(h.pkttype, libc::PACKET_OUTGOING);
    }
}
