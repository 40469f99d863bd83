//! An in-memory packet source for tests: frames filtered by the same BPF program the kernel
//! would run, when the kernel would run it, and delivered in order.
//!
//! As with AF_PACKET, a frame meets the filter installed when it arrives (when it is
//! pushed): a frame the filter of that moment rejects is gone, whatever filter comes later.
//! A filter change runs the frames already queued through the new program, as the ring's
//! re-check does.

use std::collections::VecDeque;
use std::time::Duration;

use knock_core::wire::LinkType;
use knockd_engine::bpf::{self, Coarse, Families, Program};
use knockd_engine::filter::CaptureRule;

use super::{CaptureError, CaptureStats, Frame, PacketSource};

/// One frame to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplayFrame {
    pub ts_ns: u64,
    pub vlan: Option<u16>,
    pub data: Vec<u8>,
}

/// Replays frames of one link type. Each `next_batch` hands over at most `batch` frames and
/// never waits: an empty queue returns 0 at once.
///
/// The queue holds each frame with the length the filter kept of it.
#[derive(Debug)]
pub(crate) struct ReplaySource {
    link: LinkType,
    families: Families,
    program: Program,
    queue: VecDeque<(ReplayFrame, usize)>,
    batch: usize,
    stats: CaptureStats,
}

impl ReplaySource {
    /// A source with no rules yet, which therefore lets nothing in until `set_rules`.
    pub(crate) fn new(link: LinkType, families: Families) -> ReplaySource {
        ReplaySource {
            link,
            families,
            program: Program::reject_all(),
            queue: VecDeque::new(),
            batch: 64,
            stats: CaptureStats::default(),
        }
    }

    /// How many frames one `next_batch` hands over at most (at least 1).
    pub(crate) fn with_batch(mut self, batch: usize) -> ReplaySource {
        self.batch = batch.max(1);
        self
    }

    /// A frame arrives: queued for replay if the filter installed now keeps it.
    pub(crate) fn push(&mut self, frame: ReplayFrame) {
        let keep = self.program.run(&frame.data) as usize;
        if keep > 0 {
            let keep = keep.min(frame.data.len());
            self.queue.push_back((frame, keep));
        }
    }

    /// Frames still queued.
    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
    }
}

impl PacketSource for ReplaySource {
    fn next_batch(
        &mut self,
        _timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        let mut n = 0;
        while n < self.batch {
            let Some((f, keep)) = self.queue.pop_front() else {
                break;
            };
            sink(&Frame {
                link: self.link,
                ts_ns: f.ts_ns,
                vlan: f.vlan,
                wire_len: u32::try_from(f.data.len()).unwrap_or(u32::MAX),
                data: &f.data[..keep],
            });
            n += 1;
        }
        self.stats.delivered += n as u64;
        Ok(n)
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        let fitted = bpf::compile_fitting(rules, self.link, self.families)?;
        self.program = fitted.program;
        let before = self.queue.len();
        let program = &self.program;
        self.queue
            .retain(|(f, keep)| program.accepts(&f.data[..*keep]));
        self.stats.refiltered += (before - self.queue.len()) as u64;
        Ok(fitted.coarse)
    }

    fn stats(&mut self) -> CaptureStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::hit::{FlagRule, Proto};
    use knock_core::wire::{Ipv4Header, Transport, UdpDatagram, ipv4_packet};

    fn raw_udp(dport: u16) -> Vec<u8> {
        let udp = Transport::Udp(UdpDatagram {
            src_port: 40000,
            dst_port: dport,
            payload: &[],
        });
        let ip = Ipv4Header::new([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        ipv4_packet(&ip, &udp).unwrap()
    }

    fn frame(i: u64, port: u16) -> ReplayFrame {
        ReplayFrame {
            ts_ns: 1_000_000 * i,
            vlan: None,
            data: raw_udp(port),
        }
    }

    fn udp_rule(port: u16) -> CaptureRule {
        CaptureRule {
            proto: Proto::Udp,
            port,
            flags: FlagRule::ANY,
        }
    }

    #[test]
    fn replays_in_order_through_the_filter_in_batches() {
        let mut src = ReplaySource::new(LinkType::RawIp, Families::Both).with_batch(2);
        src.set_rules(&[udp_rule(7000)]).unwrap();
        for (i, port) in [7000u16, 1, 7000, 7000].into_iter().enumerate() {
            src.push(frame(i as u64, port));
        }
        let mut seen = Vec::new();
        let mut sink = |f: &Frame<'_>| seen.push((f.ts_ms(), f.link, f.data.len()));
        assert_eq!(src.next_batch(Duration::ZERO, &mut sink).unwrap(), 2);
        assert_eq!(src.next_batch(Duration::ZERO, &mut sink).unwrap(), 1);
        assert_eq!(src.next_batch(Duration::ZERO, &mut sink).unwrap(), 0);
        assert_eq!(
            seen,
            vec![
                (0, LinkType::RawIp, 28),
                (2, LinkType::RawIp, 28),
                (3, LinkType::RawIp, 28)
            ]
        );
        assert_eq!(src.stats().delivered, 3);
    }

    #[test]
    fn without_rules_nothing_is_let_in() {
        let mut src = ReplaySource::new(LinkType::RawIp, Families::Both);
        src.push(frame(0, 7000));
        let n = src.next_batch(Duration::ZERO, &mut |_| {}).unwrap();
        assert_eq!((n, src.pending()), (0, 0));
    }

    /// As in the kernel: the filter of the moment a frame arrives decides whether it is
    /// queued, and a new filter only ever takes frames out of the queue.
    #[test]
    fn a_frame_meets_the_filter_of_its_arrival_and_a_new_one_rechecks_the_queue() {
        let mut src = ReplaySource::new(LinkType::RawIp, Families::Both);
        src.set_rules(&[udp_rule(7000)]).unwrap();
        src.push(frame(0, 7000));
        src.push(frame(1, 8000)); // rejected on arrival
        src.push(frame(2, 7000));
        src.set_rules(&[udp_rule(8000)]).unwrap();
        src.push(frame(3, 8000));
        let mut seen = Vec::new();
        src.next_batch(Duration::ZERO, &mut |f| seen.push(f.ts_ms()))
            .unwrap();
        assert_eq!(
            seen,
            [3],
            "7000 was re-checked out, the first 8000 never got in"
        );
        let stats = src.stats();
        assert_eq!((stats.delivered, stats.refiltered), (1, 2));
    }
}
