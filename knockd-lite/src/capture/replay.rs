//! An in-memory packet source for tests: frames given up front, filtered by the same BPF
//! program the kernel would run, and delivered in order.

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
#[derive(Debug)]
pub(crate) struct ReplaySource {
    link: LinkType,
    families: Families,
    program: Program,
    queue: VecDeque<ReplayFrame>,
    batch: usize,
    stats: CaptureStats,
}

impl ReplaySource {
    /// A source with no rules yet, which therefore delivers nothing until `set_rules`.
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

    /// Queues a frame for replay.
    pub(crate) fn push(&mut self, frame: ReplayFrame) {
        self.queue.push_back(frame);
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
            let Some(f) = self.queue.pop_front() else {
                break;
            };
            let keep = self.program.run(&f.data) as usize;
            if keep == 0 {
                self.stats.refiltered += 1;
                continue;
            }
            sink(&Frame {
                link: self.link,
                ts_ns: f.ts_ns,
                vlan: f.vlan,
                wire_len: u32::try_from(f.data.len()).unwrap_or(u32::MAX),
                data: &f.data[..keep.min(f.data.len())],
            });
            n += 1;
        }
        self.stats.delivered += n as u64;
        Ok(n)
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        let fitted = bpf::compile_fitting(rules, self.link, self.families)?;
        self.program = fitted.program;
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

    #[test]
    fn replays_in_order_through_the_filter_in_batches() {
        let mut src = ReplaySource::new(LinkType::RawIp, Families::Both).with_batch(2);
        for (i, port) in [7000u16, 1, 7000, 7000].into_iter().enumerate() {
            src.push(ReplayFrame {
                ts_ns: 1_000_000 * i as u64,
                vlan: None,
                data: raw_udp(port),
            });
        }
        let rule = CaptureRule {
            proto: Proto::Udp,
            port: 7000,
            flags: FlagRule::ANY,
        };
        src.set_rules(&[rule]).unwrap();
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
        let stats = src.stats();
        assert_eq!((stats.delivered, stats.refiltered), (3, 1));
    }

    #[test]
    fn without_rules_nothing_is_delivered() {
        let mut src = ReplaySource::new(LinkType::RawIp, Families::Both);
        src.push(ReplayFrame {
            ts_ns: 0,
            vlan: None,
            data: raw_udp(7000),
        });
        let n = src.next_batch(Duration::ZERO, &mut |_| {}).unwrap();
        assert_eq!((n, src.pending()), (0, 0));
    }
}
