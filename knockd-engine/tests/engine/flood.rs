//! First steps under pressure: what the attempt cap and the first-step filter keep when a
//! spoofed flood fills the table, and the rules that change (slice-based timeout, no
//! cancelling between the first two steps) once a first step has moved to the filter.

use std::net::IpAddr;

use crate::support::{Harness, SERVER_V4, T0, config, knock_trace, local_addrs};
use knock_core::hit::{Proto, TcpFlags};
use knock_core::wire::KnockPacket;
use knockd_engine::{
    Action, DEFAULT_FIRST_STEP_MEMORY, DEFAULT_MAX_ATTEMPTS, Inputs, Mono, Options,
};

const OPEN: &str =
    "[open]\nsequence = 7000,8000,9000\nseq_timeout = 5\ntcpflags = syn\ncommand = open %IP%\n";
/// 1.6 s: 16 slices of exactly 100 ms, and the harness's clock starts on a slice boundary.
const SHORT: &str = "[open]\nsequence = 7000,8000,9000\nseq_timeout = 1.6\ncommand = open\n";

fn capped(conf: &str, max_attempts: usize) -> Harness {
    let options = Options {
        max_attempts,
        ..Options::default()
    };
    Harness::with(conf, Inputs::default(), options)
}

/// The `i`-th spoofed source of 198.18.0.0/15 in a scattered order (an odd multiplier
/// visits all 2^17 addresses before repeating).
fn spoofed(i: u32) -> IpAddr {
    let offset = i.wrapping_mul(0x9E37_79B1) & ((1 << 17) - 1);
    IpAddr::V4((0xC612_0000u32 | offset).into())
}

fn syn(src: IpAddr, port: u16) -> KnockPacket {
    KnockPacket {
        src,
        dst: SERVER_V4.parse().unwrap(),
        proto: Proto::Tcp,
        dst_port: port,
        tcp_flags: TcpFlags::SYN,
    }
}

/// `ms` milliseconds of a first-port flood at `per_ms` packets a millisecond, from the
/// spoofed sources after `*next`. Every action is a first-stage log line.
fn flood(h: &mut Harness, next: &mut u32, ms: u32, per_ms: u32) {
    for _ in 0..ms {
        h.wait(1);
        for _ in 0..per_ms {
            let p = syn(spoofed(*next), 7000);
            *next += 1;
            let actions = h.engine.on_packet(h.clock(), &p);
            assert!(
                actions
                    .iter()
                    .all(|a| matches!(a, Action::Log(e) if e.is_first_stage())),
                "{actions:?}"
            );
        }
    }
}

/// The case: 131,072 spoofed sources at 200,000 packets a second on the first
/// port, and a knock typed a second apart. The old table (evict the oldest first step)
/// lost it within 100 ms; the filter keeps it, in bounded memory.
#[test]
fn a_knock_at_human_speed_survives_a_flood_from_every_benchmark_source() {
    let mut h = Harness::new(OPEN);
    let mut next = 0;
    flood(&mut h, &mut next, 300, 200);
    h.play("0 192.0.2.10 tcp 7000\n");
    flood(&mut h, &mut next, 1000, 200);
    h.play("0 192.0.2.10 tcp 8000\n");
    flood(&mut h, &mut next, 1000, 200);
    h.play("0 192.0.2.10 tcp 9000\n");
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    let stats = h.engine.stats();
    assert!(stats.live_attempts <= DEFAULT_MAX_ATTEMPTS, "{stats:?}");
    assert!(stats.first_steps_filed > 400_000, "{stats:?}");
    assert_eq!(stats.first_steps_dropped, 0);
    assert_eq!(stats.evicted_later, 0);
    assert!(stats.first_step_bytes <= DEFAULT_FIRST_STEP_MEMORY + 64);
    // Its second step found the first one in the filter.
    assert!(stats.first_steps_recalled >= 1);
}

#[test]
fn under_pressure_the_timeout_runs_from_the_start_of_the_first_steps_slice() {
    // One attempt fits: every new first step pushes the previous one into the filter.
    let mut h = capped(SHORT, 1);
    // .10 knocks at +50 ms (its slice starts at +0): the filter gives it until +1600, 50 ms
    // less than the exact +1650. It finishes at +1599.
    h.wait(50);
    h.play(
        "0 192.0.2.10 tcp 7000\n0 192.0.2.11 tcp 7000\n\
         700 192.0.2.10 tcp 8000\n849 192.0.2.10 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    // .12 knocks at +2050 and finishes at +3600: in time for the exact rule (+3650), late
    // for the filter's (+3600).
    h.wait(2050 - 1599);
    h.play(
        "0 192.0.2.12 tcp 7000\n0 192.0.2.13 tcp 7000\n\
         700 192.0.2.12 tcp 8000\n850 192.0.2.12 tcp 9000\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert!(
        h.logs()
            .contains(&"192.0.2.12: open: sequence timeout (stage 2)".to_string()),
        "{:?}",
        h.logs()
    );
    // Without pressure the same knock is in time.
    let mut exact = Harness::new(SHORT);
    exact.wait(2050);
    exact.play("0 192.0.2.12 tcp 7000\n700 192.0.2.12 tcp 8000\n850 192.0.2.12 tcp 9000\n");
    assert_eq!(exact.opened(), ["192.0.2.12 open"]);
}

#[test]
fn a_recalled_attempt_expires_at_its_own_deadline() {
    // .10's first step goes to the filter; when its second step brings it back, its deadline
    // (+1600) is earlier than that of .12 (+1670), already in the queue.
    let mut h = capped(SHORT, 2);
    h.wait(50);
    h.play(
        "0 192.0.2.10 tcp 7000\n10 192.0.2.11 tcp 7000\n10 192.0.2.12 tcp 7000\n\
         30 192.0.2.10 tcp 8000\n",
    );
    assert_eq!(h.engine.next_deadline(), Some(Mono::from_millis(T0 + 1600)));
    h.wait(1499);
    assert!(!h.logs().iter().any(|l| l.contains("timeout")));
    h.wait(1);
    assert_eq!(
        h.logs().last().map(String::as_str),
        Some("192.0.2.10: open: sequence timeout (stage 2)")
    );
    assert_eq!(h.engine.next_deadline(), Some(Mono::from_millis(T0 + 1670)));
}

#[test]
fn under_pressure_packets_between_the_first_two_steps_do_not_cancel() {
    // 9000 between 7000 and 8000 cancels an attempt in the table ...
    let trace = "0 192.0.2.10 tcp 7000\n10 192.0.2.11 tcp 7000\n10 192.0.2.10 tcp 9000\n\
                 10 192.0.2.10 tcp 8000\n10 192.0.2.10 tcp 9000\n";
    let mut exact = Harness::new(OPEN);
    exact.play(trace);
    assert!(exact.opened().is_empty());
    // ... but not one in the filter, which cannot forget a single source: the knock opens.
    let mut pressed = capped(OPEN, 1);
    pressed.play(trace);
    assert_eq!(pressed.opened(), ["192.0.2.10 open"]);
}

#[test]
fn without_filter_memory_the_oldest_first_step_is_forgotten() {
    let options = Options {
        max_attempts: 1,
        first_step_memory: 0,
        ..Options::default()
    };
    let mut h = Harness::with(OPEN, Inputs::default(), options);
    h.play(
        "0 192.0.2.10 tcp 7000\n10 192.0.2.11 tcp 7000\n10 192.0.2.10 tcp 8000\n\
         10 192.0.2.10 tcp 9000\n",
    );
    assert!(h.opened().is_empty());
    let stats = h.engine.stats();
    assert_eq!((stats.first_steps_filed, stats.first_steps_dropped), (0, 1));
    assert_eq!(stats.first_step_bytes, 0);
}

#[test]
fn without_pressure_the_filter_takes_no_memory() {
    let mut h = Harness::new(OPEN);
    h.play(&knock_trace(
        "192.0.2.10",
        &knock_core::hit::parse_sequence("7000,8000,9000", Proto::Tcp).unwrap(),
        100,
    ));
    assert_eq!(h.opened(), ["192.0.2.10 open"]);
    assert_eq!(h.engine.stats().first_step_bytes, 0);
}

#[test]
fn reload_keeps_filed_first_steps_of_unchanged_doors_only() {
    let a = "[a]\nsequence = 7000,8000,9000\ncommand = a\n";
    let b = "[b]\nsequence = 1001,1002,1003\ncommand = b\n";
    let mut h = capped(&format!("{a}{b}"), 1);
    // .11's first step at [b] is pushed out by .10's at [a], and that one by .12's.
    h.play("0 192.0.2.11 tcp 1001\n10 192.0.2.10 tcp 7000\n10 192.0.2.12 tcp 1001\n");
    assert_eq!(h.engine.stats().first_steps_filed, 2);
    let inputs = Inputs {
        local_addrs: local_addrs(),
        ..Inputs::default()
    };
    let changed = format!("{a}{}", b.replace("= b", "= b2"));
    h.engine
        .reload(&config(&changed), inputs, h.clock())
        .unwrap();
    h.play(
        "10 192.0.2.10 tcp 8000\n10 192.0.2.10 tcp 9000\n\
         10 192.0.2.11 tcp 1002\n10 192.0.2.11 tcp 1003\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 a"], "{:?}", h.logs());
}

#[test]
fn one_time_door_under_pressure_recalls_the_active_line_only() {
    let options = Options {
        max_attempts: 1,
        ..Options::default()
    };
    let inputs = Inputs {
        one_time: [("otp".to_string(), " 1001,1002\n 2001,2002\n".to_string())].into(),
        ..Inputs::default()
    };
    let mut h = Harness::with(
        "[otp]\none_time_sequences = /l\nstart_command = otp %IP%\n",
        inputs,
        options,
    );
    // .10 and .11 both start line 1; .11 pushes .10 into the filter. .10 finishes line 1
    // from there; .11's attempt on the used line stops counting.
    h.play(
        "0 192.0.2.10 tcp 1001\n10 192.0.2.11 tcp 1001\n10 192.0.2.10 tcp 1002\n\
         10 192.0.2.11 tcp 1002\n",
    );
    assert_eq!(h.opened(), ["192.0.2.10 otp"]);
    let consumed: Vec<usize> = h
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ConsumeOneTime { line, .. } => Some(line.line_no),
            _ => None,
        })
        .collect();
    assert_eq!(consumed, [1]);
}

#[test]
fn hmac_door_under_pressure_recalls_the_counter_that_was_knocked() {
    use crate::hmac::{DOOR, c0, hits, inputs};
    let options = Options {
        max_attempts: 1,
        ..Options::default()
    };
    let mut h = Harness::with(DOOR, inputs(&[]), options);
    // Another source knocks the first hit of the next counter's sequence in between and
    // pushes .10's attempt into the filter.
    let mine = hits(c0());
    let theirs = hits(c0() + 1);
    let mut trace = knock_trace("192.0.2.10", &mine, 100);
    let first_line_end = trace.find('\n').unwrap() + 1;
    trace.insert_str(
        first_line_end,
        &format!("10 192.0.2.11 tcp {}\n", theirs[0].port),
    );
    h.play(&trace);
    assert_eq!(h.opened(), ["192.0.2.10 ssh"]);
    assert!(h.engine.stats().first_steps_recalled >= 1);
}
