//! Per-packet cost of the engine at 0, 20k and 100k live attempts (ns/packet).
//!
//! `cargo bench -p knockd-engine --bench engine`. Spoofed sources come from 198.18.0.0/15.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

use knock_core::hit::{Proto, TcpFlags};
use knock_core::wire::KnockPacket;
use knockd_engine::{Engine, Inputs, Mono, Now, Options, Timestamp};

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

fn packet(src: IpAddr, port: u16) -> KnockPacket {
    KnockPacket {
        src,
        dst: "192.0.2.2".parse().unwrap(),
        proto: Proto::Tcp,
        dst_port: port,
        tcp_flags: TcpFlags::SYN,
    }
}

/// An engine with `live` first-step attempts from sources 0..live.
fn engine(live: u32, max_attempts: usize) -> Engine {
    let config = knock_core::conf::parse(CONF, Path::new("bench.conf")).unwrap();
    let inputs = Inputs {
        local_addrs: vec!["192.0.2.2".parse().unwrap()],
        ..Inputs::default()
    };
    let (mut e, _) = Engine::new(&config, inputs, Options { max_attempts }, NOW).unwrap();
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

/// Resident memory in KiB (Linux), to show what a full attempt table costs.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // First, before other engines leave freed memory behind for reuse.
    if let Some(before) = rss_kib() {
        let e = engine(100_000, 100_000);
        let after = rss_kib().unwrap_or(before);
        println!(
            "memory: a full table of 100000 attempts adds {:.1} MiB of RSS",
            after.saturating_sub(before) as f64 / 1024.0
        );
        drop(e);
    }
    println!(
        "{:>14} {:>16} {:>16} {:>16} {:>18}",
        "live attempts", "new source", "next step", "no door port", "new source at cap"
    );
    for live in [0u32, 20_000, 100_000] {
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
