//! Packet capture: the [`PacketSource`] seam, the Linux AF_PACKET source, a source that
//! follows an interface through loss and return, and an in-memory replay source for tests.
//!
//! Public for the end-to-end tests, which capture on real interfaces with it.
//!
//! A source hands up raw frames with their link type and kernel timestamp; parsing them is
//! the wire module's job. Sources filter with the same BPF program whether the kernel runs
//! it (AF_PACKET) or we do (replay), so tests through the replay source see what the kernel
//! would let through.
//!
//! VLANs: capture on the interface the configuration names. On a VLAN interface (`eth0.10`)
//! frames arrive untagged. On its parent (`eth0`) the kernel moves the outer tag into packet
//! metadata before the filter runs (on veth and on NICs alike), so a tagged knock matches
//! like an untagged one and [`Frame::vlan`] carries its VLAN id; a second, inner tag
//! (802.1ad stacking) stays in the frame, and the filter skips it, as the parser must.

mod follow;
mod linux;
mod pace;
#[cfg(test)]
mod replay;
mod ring;

use std::io;
use std::time::Duration;

use knock_core::wire::LinkType;
use knockd_engine::bpf::{Coarse, FilterError};
use knockd_engine::filter::CaptureRule;

pub use follow::{InterfaceCapture, LinkEvent};
pub use linux::{AfPacket, CaptureOptions};
#[cfg(test)]
pub(crate) use replay::{ReplayFrame, ReplaySource};
pub use ring::RingOptions;

/// One captured frame, borrowed from the source's buffer for the duration of the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// How the frame starts, as the parser names it.
    pub link: LinkType,
    /// Kernel receive time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The VLAN id of a tag the kernel took off the frame before we saw it (PACKET_AUXDATA),
    /// so `data` no longer contains it. In-band tags stay in `data`.
    pub vlan: Option<u16>,
    /// The frame's length on the wire; `data` may be shorter if it was truncated.
    pub wire_len: u32,
    pub data: &'a [u8],
}

impl Frame<'_> {
    /// The receive time in milliseconds since the Unix epoch.
    pub(crate) fn ts_ms(&self) -> u64 {
        self.ts_ns / 1_000_000
    }
}

/// Counters kept by the source since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames handed to the sink.
    pub delivered: u64,
    /// Frames the kernel accepted but had to drop because the buffer was full.
    pub kernel_drops: u64,
    /// Frames rejected in user space: queued under an old filter, or outgoing.
    pub refiltered: u64,
}

/// What went wrong in a capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{ifname}: no such interface")]
    NoSuchInterface { ifname: String },
    #[error(
        "{ifname}: unsupported link type {hatype} (capture supports Ethernet, loopback and raw-IP interfaces)"
    )]
    UnsupportedLink { ifname: String, hatype: u16 },
    /// The interface went down (it may come back up on the same socket) or was deleted.
    #[error("{ifname}: interface went down or away")]
    InterfaceDown { ifname: String },
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("{op} on {ifname}: {error}")]
    Io {
        op: &'static str,
        ifname: String,
        error: io::Error,
    },
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// A source of captured frames.
pub trait PacketSource {
    /// Waits up to `timeout` for frames, hands each frame that is ready to `sink`, and
    /// returns how many it handed over (0 on timeout). It may return early with 0 when a
    /// wake-up descriptor it watches becomes readable.
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError>;

    /// Replaces the filter with one compiled from `rules` (`bpf::compile_fitting`): the
    /// exact one, or when that would not fit the kernel a coarser one, which is returned
    /// (user space filters the rest). Frames queued under the old filter that the new one
    /// rejects are dropped, not delivered. On error the old filter stays.
    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError>;

    fn stats(&mut self) -> CaptureStats;

    /// Changes in the captured interface's state since the last call, oldest first (for
    /// the log). A source that follows no interface has none.
    fn take_events(&mut self) -> Vec<LinkEvent> {
        Vec::new()
    }

    /// The sandboxed worker that reads the packets instead, for a source that is one.
    /// Crate-internal (the end-to-end tests' sources have none).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn worker(&mut self) -> Option<&mut crate::worker::WorkerLink> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_io_error_prints_its_os_error_once() {
        let err = CaptureError::Io {
            op: "bind(AF_PACKET)",
            ifname: "eth0".into(),
            error: io::Error::from_raw_os_error(libc::ENODEV),
        };
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "bind(AF_PACKET) on eth0: No such device (os error 19)"
        );
    }
}
