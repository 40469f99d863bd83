//! `filter`: the kernel filter against the parser. For fuzzed capture rules, link type,
//! families and frame, the compiled BPF program (run by the interpreter, as the kernel runs
//! it) keeps the frame exactly when `filter::wanted` does: the parser accepts it, a rule
//! matches and `-4` lets it through.
//!
//! Input: byte 0 picks the link (bit 0: raw IP, else Ethernet) and `-4` (bit 1); byte 1 the
//! number of rules (1 to 8); then 5 bytes a rule (protocol and port choice, port, flags to
//! be set, flags to be clear); the rest is the frame. Ports come from a small set half the
//! time so that frames and rules meet. (knockd-engine's `tests/engine/filter.rs` holds the
//! same on frames it builds field by field.)

use knock_core::hit::{FlagRule, Proto, TcpFlags};
use knock_core::wire::LinkType;
use knockd_engine::bpf::{Families, compile};
use knockd_engine::filter::{CaptureRule, wanted};

const PORTS: [u16; 4] = [53, 7000, 8000, 65535];

/// Accepted: the filter keeps the frame.
pub fn check(data: &[u8]) -> bool {
    let Some((&[mode, count], rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let link = if mode & 1 == 0 {
        LinkType::Ethernet
    } else {
        LinkType::RawIp
    };
    let families = if mode & 2 == 0 {
        Families::Both
    } else {
        Families::V4Only
    };
    let n = usize::from(count % 8) + 1;
    let Some((spec, frame)) = rest.split_at_checked(5 * n) else {
        return false;
    };
    let rules: Vec<CaptureRule> = spec
        .chunks_exact(5)
        .map(|r| {
            let port = if r[0] & 2 == 0 {
                PORTS[usize::from(r[1]) % PORTS.len()]
            } else {
                u16::from_be_bytes([r[1], r[2]])
            };
            let set = TcpFlags::from_bits(r[3]);
            let clear = TcpFlags::from_bits(r[4] & !r[3]);
            CaptureRule {
                proto: if r[0] & 1 == 0 {
                    Proto::Tcp
                } else {
                    Proto::Udp
                },
                port,
                flags: FlagRule { set, clear },
            }
        })
        .collect();
    let program = compile(&rules, link, families).expect("8 rules always fit");
    let kept = program.accepts(frame);
    assert_eq!(
        kept,
        wanted(&rules, link, families, frame),
        "{link:?} {families:?} rules {rules:?} frame {frame:02x?}\n{program}"
    );
    kept
}
