//! Engine internals: capture rules, queue memory under churn. Behaviour is tested by replay
//! in `tests/engine/`.

use super::*;
use knock_core::conf;
use knock_core::hit::{FlagRule, TcpFlags};
use std::path::Path;

fn engine(text: &str, max_attempts: usize) -> Engine {
    let config = conf::parse(text, Path::new("t.conf")).unwrap();
    let inputs = Inputs {
        local_addrs: vec!["192.0.2.2".parse().unwrap()],
        ..Inputs::default()
    };
    let options = Options {
        max_attempts,
        ..Options::default()
    };
    Engine::new(&config, inputs, options, at(1_000_000))
        .unwrap()
        .0
}

/// Both clocks at `ms` (mono and wall agree).
fn at(ms: u64) -> Now {
    Now::new(Mono::from_millis(ms), Timestamp::from_millis(ms))
}

fn syn(src: u32, port: u16) -> KnockPacket {
    KnockPacket {
        src: IpAddr::V4(src.into()),
        dst: "192.0.2.2".parse().unwrap(),
        proto: Proto::Tcp,
        dst_port: port,
        tcp_flags: TcpFlags::SYN,
    }
}

#[test]
fn capture_rules_are_deduplicated_in_door_order() {
    let e = engine(
        "[a]\nsequence = 7000,8000:udp,7000\ntcpflags = syn\n\
         [b]\nsequence = 8000:udp,7000:tcp:fin,7000\ntcpflags = syn\n",
        10,
    );
    let rules: Vec<String> = e.capture_rules().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        rules,
        [
            "tcp dst port 7000 and tcp[13] & 0x02 == 0x02",
            "udp dst port 8000",
            "tcp dst port 7000 and tcp[13] & 0xff == 0x01",
        ]
    );
    let rule = e.capture_rules()[1];
    assert_eq!(rule.flags, FlagRule::ANY);
}

#[test]
fn queue_memory_stays_proportional_to_live_attempts() {
    // Each packet cancels the source's attempt and starts a new one (a retransmitted first
    // knock), leaving a stale deadline entry behind; eviction at the cap does the same.
    let mut e = engine("[d]\nsequence = 7000,8000\nseq_timeout = 60\n", 1000);
    let now = at(1_000_000);
    for i in 0..200_000u32 {
        e.on_packet(now, &syn(0xC612_0000 + i % 3000, 7000));
        let kept = e.deadlines.entries() + e.attempts.first_step_entries();
        assert!(kept <= 4 * e.attempts.live() + 4096 + 2, "{kept} at {i}");
    }
    assert_eq!(e.stats().live_attempts, 1000);
}

#[test]
fn monotonic_time_never_runs_backwards() {
    let mut e = engine("[d]\nsequence = 7000,8000\nseq_timeout = 1\n", 10);
    e.on_packet(at(1_000_000), &syn(1, 7000));
    // A packet dated a little earlier (out of order in a batch) is taken as "now".
    e.on_packet(at(999_990), &syn(2, 7000));
    assert_eq!(e.next_deadline(), Some(Mono::from_millis(1_001_000)));
    let out = e.on_tick(at(1_001_000));
    assert_eq!(out.len(), 2);
    assert_eq!(e.stats().live_attempts, 0);
}

#[test]
fn the_wall_clock_moves_no_timer() {
    let mut e = engine("[d]\nsequence = 7000,8000\nseq_timeout = 5\n", 10);
    let wall =
        |mono: u64, wall: u64| Now::new(Mono::from_millis(mono), Timestamp::from_millis(wall));
    const W: u64 = 1_700_000_000_000;
    e.on_packet(wall(1_000_000, W), &syn(1, 7000));
    // The wall clock steps back a day, then forward a year: the deadline stays 5 s after
    // the knock on the monotonic clock.
    assert!(e.on_tick(wall(1_001_000, W - 86_400_000)).is_empty());
    assert!(e.on_tick(wall(1_002_000, W + 31_536_000_000)).is_empty());
    assert_eq!(e.next_deadline(), Some(Mono::from_millis(1_005_000)));
    assert_eq!(e.stats().live_attempts, 1);
    assert!(e.on_tick(wall(1_004_999, 0)).is_empty());
    assert_eq!(e.on_tick(wall(1_005_000, 0)).len(), 1);
    assert_eq!(e.stats().live_attempts, 0);
}
