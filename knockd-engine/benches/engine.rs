//! Per-packet cost of the engine at 0, 10k and 20k live attempts (ns/packet), and a
//! first-step flood of 10 million distinct sources: cost per packet, memory, whether a knock
//! typed a second apart is caught, and the false positives that flood leaves behind.
//!
//! `cargo bench -p knockd-engine --bench engine`. Spoofed sources come from 198.18.0.0/15;
//! the 10-million flood needs more distinct addresses than that, so it numbers them across
//! the IPv4 space (values fed to the engine, never packets on a wire).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use knock_core::hit::{Proto, TcpFlags};
use knock_core::wire::KnockPacket;
use knockd_engine::{
    Action, DEFAULT_FIRST_STEP_MEMORY, DEFAULT_MAX_ATTEMPTS, Engine, Event, Inputs, Mono, Now,
    Options, Timestamp,
};

const CONF: &str = "[open]\nsequence = 7000,8000,9000\nseq_timeout = 25\ntcpflags = syn\n\
                    command = open %IP%\n[close]\nsequence = 9000,8000,7000\ntcpflags = syn\n\
                    command = close %IP%\n";
const NOW: Now = Now::new(
    Mono::from_millis(1_700_000_000_000),
    Timestamp::from_secs(1_700_000_000),
);
const MEASURED: u32 = 20_000;

fn spoofed(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xC612_0000 + (i % (1 << 17))))
}

const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn packet(src: IpAddr, port: u16) -> KnockPacket {
    KnockPacket {
        src,
        dst: SERVER,
        proto: Proto::Tcp,
        dst_port: port,
        tcp_flags: TcpFlags::SYN,
    }
}

fn new_engine(conf: &str, max_attempts: usize, first_step_memory: usize) -> Engine {
    let config = knock_core::conf::parse(conf, Path::new("bench.conf")).unwrap();
    let inputs = Inputs {
        local_addrs: vec!["192.0.2.2".parse().unwrap()],
        ..Inputs::default()
    };
    let options = Options {
        max_attempts,
        first_step_memory,
        ..Options::default()
    };
    Engine::new(&config, inputs, options, NOW).unwrap().0
}

/// An engine with `live` first-step attempts from sources 0..live.
fn engine(live: u32, max_attempts: usize) -> Engine {
    let mut e = new_engine(CONF, max_attempts, DEFAULT_FIRST_STEP_MEMORY);
    for i in 0..live {
        e.on_packet(NOW, &packet(spoofed(i), 7000));
    }
    assert_eq!(e.stats().live_attempts, live as usize);
    e
}

/// ns per packet for `packets` fed to a fresh `engine(live, max_attempts)`; the best of
/// five runs, since the machine is shared.
fn time(live: u32, max_attempts: usize, packets: &[KnockPacket]) -> f64 {
    (0..5)
        .map(|_| {
            let mut e = engine(live, max_attempts);
            let start = Instant::now();
            for p in packets {
                black_box(e.on_packet(NOW, p));
            }
            start.elapsed().as_nanos() as f64 / packets.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// This thread's CPU time in seconds (Linux: utime + stime of /proc/thread-self/stat, in
/// the kernel's fixed USER_HZ of 100 ticks a second), which time spent descheduled on a busy
/// machine does not inflate.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory in KiB (Linux), to show what a full attempt table costs.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many distinct sources the first-step flood uses.
const FLOOD_SOURCES: u32 = 10_000_000;
/// Unseen sources whose second step measures the false positives after a flood.
const PROBES: u32 = 1_000_000;

/// The `i`-th distinct source of the 10-million flood: an odd multiplier is a bijection of
/// the 32-bit space, so the sources are distinct and scattered.
fn flood_source(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1)))
}

/// Feeds `FLOOD_SOURCES` distinct first steps at `rate` a second (virtual clock) to a door
/// with `timeout_s`, while one knock comes from 192.0.2.10 with a second between hits;
/// `memory` bytes of first-step filter (0: the oldest first step is forgotten at the cap).
fn first_step_flood(timeout_s: u32, rate: u32, memory: usize) {
    let conf = format!(
        "[open]\nsequence = 7000,8000,9000\nseq_timeout = {timeout_s}\ntcpflags = syn\n\
         command = open %IP%\n"
    );
    let mut e = new_engine(&conf, DEFAULT_MAX_ATTEMPTS, memory);
    let genuine: IpAddr = "192.0.2.10".parse().unwrap();
    let per_ms = u64::from(rate / 1000).max(1);
    // Two seconds into the flood, then a second apart.
    let knock_at = [2 * rate, 3 * rate, 4 * rate].map(|n| n.min(FLOOD_SOURCES - 1));
    let knock_ports = [7000, 8000, 9000];
    let mut opened = false;
    let mut ms = NOW.mono.as_millis();
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    for i in 0..FLOOD_SOURCES {
        if u64::from(i) % per_ms == 0 {
            ms += 1;
        }
        let now = Now::new(Mono::from_millis(ms), Timestamp::from_millis(ms));
        if let Some(step) = knock_at.iter().position(|&k| k == i) {
            let actions = e.on_packet(now, &packet(genuine, knock_ports[step]));
            opened |= actions
                .iter()
                .any(|a| matches!(a, Action::RunCommand { src, .. } if *src == genuine));
        }
        black_box(e.on_packet(now, &packet(flood_source(i), 7000)));
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(FLOOD_SOURCES);
    let cpu_ns = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.0}", (b - a) * 1e9 / f64::from(FLOOD_SOURCES)),
        _ => "-".to_string(),
    };
    let stats = e.stats();
    // Second steps from sources that never knocked: each one the filter takes for a first
    // step it saw is a false positive.
    let now = Now::new(Mono::from_millis(ms), Timestamp::from_millis(ms));
    let false_positives = (0..PROBES)
        .filter(|&i| {
            let p = packet(flood_source(FLOOD_SOURCES + i), 8000);
            e.on_packet(now, &p)
                .iter()
                .any(|a| matches!(a, Action::Log(Event::Stage { stage: 2, .. })))
        })
        .count();
    println!(
        "{timeout_s:>8} {rate:>10} {:>7} {ns:>10.0} {cpu_ns:>9} {:>10.1} {:>9} {:>8} {:>11.3}",
        memory >> 20,
        stats.first_step_bytes as f64 / f64::from(1 << 20),
        stats.live_attempts,
        if opened { "caught" } else { "MISSED" },
        100.0 * false_positives as f64 / f64::from(PROBES),
    );
}

fn main() {
    // First, before other engines leave freed memory behind for reuse.
    if let Some(before) = rss_kib() {
        let cap = DEFAULT_MAX_ATTEMPTS as u32;
        let e = engine(cap, DEFAULT_MAX_ATTEMPTS);
        let after = rss_kib().unwrap_or(before);
        println!(
            "memory: a full table of {cap} attempts adds {:.1} MiB of RSS",
            after.saturating_sub(before) as f64 / 1024.0
        );
        drop(e);
    }
    println!(
        "\nfirst-step flood: {FLOOD_SOURCES} distinct sources, a knock with 1 s between hits, \
         {DEFAULT_MAX_ATTEMPTS} exact attempts; MiB is --first-step-memory, ns/packet is wall \
         time, cpu ns this thread's CPU time (steadier on a shared machine)"
    );
    println!(
        "{:>8} {:>10} {:>7} {:>10} {:>9} {:>10} {:>9} {:>8} {:>11}",
        "timeout",
        "packets/s",
        "MiB",
        "ns/packet",
        "cpu ns",
        "filter MiB",
        "attempts",
        "knock",
        "false pos %"
    );
    let mib = DEFAULT_FIRST_STEP_MEMORY;
    for (timeout_s, rate, memory) in [
        (5, 1_000_000, 0),
        (5, 1_000_000, mib),
        (25, 1_000_000, mib),
        (25, 1_000_000, 4 * mib),
        (25, 200_000, mib),
    ] {
        first_step_flood(timeout_s, rate, memory);
    }
    println!();
    println!(
        "{:>14} {:>16} {:>16} {:>16} {:>18}",
        "live attempts", "new source", "next step", "no door port", "new source at cap"
    );
    for live in [0u32, 10_000, DEFAULT_MAX_ATTEMPTS as u32] {
        let roomy = live as usize + 2 * MEASURED as usize;
        // Spoofed first knocks from sources with no attempt: each starts one.
        let fresh: Vec<_> = (0..MEASURED)
            .map(|i| packet(spoofed(live + i), 7000))
            .collect();
        let new_source = time(live, roomy, &fresh);
        // Second knocks from sources that have an attempt: each advances it.
        let next_step = if live > 0 {
            let steps: Vec<_> = (0..MEASURED.min(live))
                .map(|i| packet(spoofed(i), 8000))
                .collect();
            format!("{:.0}", time(live, roomy, &steps))
        } else {
            "-".to_string()
        };
        // Packets to a port no door uses: rejected before any attempt is looked at.
        let noise: Vec<_> = (0..MEASURED).map(|i| packet(spoofed(i), 22)).collect();
        let no_door = time(live, roomy, &noise);
        // The flood's steady state: the table is full and each knock evicts one.
        let at_cap = if live > 0 {
            format!("{:.0}", time(live, live as usize, &fresh))
        } else {
            "-".to_string()
        };
        println!("{live:>14} {new_source:>16.0} {next_step:>16} {no_door:>16.0} {at_cap:>18}");
    }
}
