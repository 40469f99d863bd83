//! A TPACKET_V3 receive ring (PACKET_MMAP): the kernel writes accepted frames into blocks of
//! memory shared with us and hands over whole blocks, so a flood costs no system call and no
//! copy per frame.
//!
//! A block goes to user space when it is full or when its retire timer (`retire_ms`) runs
//! out, which bounds the added latency of a lone knock.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{Ordering, fence};

use super::bpf::Program;
use super::linux::setsockopt;
use super::{CaptureStats, Frame, LinkKind};

/// Ring geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Bytes per block: a power of two, at least a page.
    pub block_size: u32,
    pub blocks: u32,
    /// How long the kernel fills a block before handing it over anyway, in ms (at least 1).
    pub retire_ms: u32,
}

impl Default for RingOptions {
    /// 16 blocks of 256 KiB: 4 MiB, about 30,000 SYNs of backlog.
    fn default() -> Self {
        RingOptions {
            block_size: 256 << 10,
            blocks: 16,
            retire_ms: 1,
        }
    }
}

/// The frame size the kernel uses for its bookkeeping; V3 packs frames of any size.
const FRAME_SIZE: u32 = 2048;

/// Offset of the sockaddr_ll after a tpacket3_hdr.
const SLL_OFFSET: usize = (std::mem::size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

#[derive(Debug)]
pub(super) struct Ring {
    base: *mut u8,
    len: usize,
    block_size: usize,
    blocks: usize,
    cur: usize,
    /// Blocks still to be run through the user-space filter after a filter change: those
    /// the kernel may have filled, wholly or partly, under the old filter.
    refilter_blocks: usize,
}

// SAFETY: the mapping is owned by this value alone and only touched through &mut self.
unsafe impl Send for Ring {}

impl Ring {
    /// Switches the socket to TPACKET_V3 and maps its ring. Errors name the step.
    pub(super) fn setup(fd: RawFd, opts: &RingOptions) -> Result<Ring, (&'static str, io::Error)> {
        let version = libc::tpacket_versions::TPACKET_V3 as i32;
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| ("setsockopt(PACKET_VERSION)", e))?;
        let block_size = opts.block_size.max(4096).next_power_of_two();
        let blocks = opts.blocks.max(2);
        let req = libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: blocks,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: block_size / FRAME_SIZE * blocks,
            tp_retire_blk_tov: opts.retire_ms.max(1),
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| ("setsockopt(PACKET_RX_RING)", e))?;
        let len = block_size as usize * blocks as usize;
        // SAFETY: maps the ring the kernel just allocated for fd, shared and writable as
        // PACKET_MMAP requires; the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
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
            blocks: blocks as usize,
            cur: 0,
            refilter_blocks: 0,
        })
    }

    /// After a filter change: the blocks up to and including the one the kernel is filling
    /// now may hold frames the old filter accepted.
    pub(super) fn refilter(&mut self) {
        self.refilter_blocks = self.blocks + 1;
    }

    /// Whether the block at the cursor belongs to user space.
    pub(super) fn ready(&self) -> bool {
        self.status_ptr(self.cur).is_some_and(|p| {
            // SAFETY: p points at the status word of a block inside the mapping; the
            // kernel writes it concurrently, hence the volatile read.
            let status = unsafe { std::ptr::read_volatile(p) };
            status & libc::TP_STATUS_USER != 0
        })
    }

    fn status_ptr(&self, block: usize) -> Option<*mut u32> {
        if block >= self.blocks {
            return None;
        }
        // SAFETY: block < blocks, so the block descriptor lies inside the mapping; we only
        // form a pointer to its status field.
        unsafe {
            let desc = self
                .base
                .add(block * self.block_size)
                .cast::<libc::tpacket_block_desc>();
            Some(std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status))
        }
    }

    /// Hands the frames of ready blocks to `sink`, whole blocks at a time, until `max`
    /// frames went out or no block is ready. `None` if no block was ready at all.
    pub(super) fn read(
        &mut self,
        link: LinkKind,
        program: &Program,
        stats: &mut CaptureStats,
        max: usize,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Option<usize> {
        let mut delivered = 0;
        let mut any = false;
        while delivered < max && self.ready() {
            any = true;
            fence(Ordering::Acquire);
            let refilter = self.refilter_blocks > 0;
            delivered += self.read_block(link, program, refilter, stats, sink);
            let status = self.status_ptr(self.cur)?;
            fence(Ordering::Release);
            // SAFETY: hands the block back to the kernel; we hold no reference into it
            // any more (the frames' slices did not outlive read_block).
            unsafe { std::ptr::write_volatile(status, libc::TP_STATUS_KERNEL) };
            self.cur = (self.cur + 1) % self.blocks;
            self.refilter_blocks = self.refilter_blocks.saturating_sub(1);
        }
        any.then_some(delivered)
    }

    fn read_block(
        &self,
        link: LinkKind,
        program: &Program,
        refilter: bool,
        stats: &mut CaptureStats,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> usize {
        // SAFETY: the block at the cursor is inside the mapping and belongs to user space
        // (TP_STATUS_USER, read with acquire ordering), so the kernel does not write it
        // until we hand it back; the block is `block_size` bytes long.
        let block = unsafe {
            std::slice::from_raw_parts(self.base.add(self.cur * self.block_size), self.block_size)
        };
        // SAFETY: the descriptor is at the start of the block, which is page-aligned.
        let bh1 = unsafe {
            let desc = block.as_ptr().cast::<libc::tpacket_block_desc>();
            std::ptr::read(std::ptr::addr_of!((*desc).hdr.bh1))
        };
        let mut delivered = 0;
        let mut off = bh1.offset_to_first_pkt as usize;
        for _ in 0..bh1.num_pkts {
            // Every offset comes from the kernel, but is checked against the block anyway.
            if off + SLL_OFFSET + std::mem::size_of::<libc::sockaddr_ll>() > block.len() {
                break;
            }
            // SAFETY: the header lies within the block (checked above); frames are
            // TPACKET_ALIGNMENT-aligned, but read_unaligned does not rely on it.
            let h = unsafe {
                std::ptr::read_unaligned(block.as_ptr().add(off).cast::<libc::tpacket3_hdr>())
            };
            // SAFETY: as above, for the sockaddr_ll that follows the header.
            let sll = unsafe {
                std::ptr::read_unaligned(
                    block
                        .as_ptr()
                        .add(off + SLL_OFFSET)
                        .cast::<libc::sockaddr_ll>(),
                )
            };
            let start = off + usize::from(h.tp_mac);
            let Some(data) = block.get(start..start + h.tp_snaplen as usize) else {
                break;
            };
            if sll.sll_pkttype == libc::PACKET_OUTGOING || (refilter && !program.accepts(data)) {
                stats.refiltered += 1;
            } else {
                let vlan = (h.tp_status & libc::TP_STATUS_VLAN_VALID != 0)
                    .then_some((h.hv1.tp_vlan_tci & 0x0fff) as u16);
                sink(&Frame {
                    link,
                    ts_ns: u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec),
                    vlan,
                    wire_len: h.tp_len,
                    data,
                });
                delivered += 1;
            }
            if h.tp_next_offset == 0 {
                break;
            }
            off += h.tp_next_offset as usize;
        }
        delivered
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base and len are exactly what mmap returned, unmapped once; no slice
        // into the ring outlives &mut self borrows.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
