//! Time to load configs with many doors: parsing knockd.conf (with its duplicate-name
//! check), building the engine, a reload of the same config (SIGHUP), and the capture
//! filter, at 10,000 and 100,000 doors (ms). Capture is held up for the whole of a reload.
//!
//! `cargo bench -p knockd-engine --bench doors`. The doors' sequences use distinct ports,
//! so the filter is the largest such a config makes.

use std::path::Path;
use std::time::Instant;

use knock_core::wire::LinkType;
use knockd_engine::bpf::{self, Families};
use knockd_engine::{Engine, Inputs, Mono, Now, Options, Timestamp};

const NOW: Now = Now::new(
    Mono::from_millis(1_700_000_000_000),
    Timestamp::from_secs(1_700_000_000),
);

/// `n` doors, each with three TCP ports and its own Seq_Timeout (one deadline queue per
/// distinct timeout is the engine's worst case), commands included.
fn config(n: usize) -> String {
    let mut text = String::with_capacity(n * 120);
    for i in 0..n {
        let port = |k: usize| 1 + (i * 3 + k) % 65_535;
        text.push_str(&format!(
            "[door{i}]\nsequence = {},{},{}\nseq_timeout = {}.{:03}\n\
             start_command = open %IP% {i}\n",
            port(0),
            port(1),
            port(2),
            5 + i / 1000,
            i % 1000
        ));
    }
    text
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn main() {
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "doors", "parse", "engine", "reload", "filter", "conf bytes"
    );
    for n in [10_000usize, 100_000] {
        let text = config(n);
        let start = Instant::now();
        let config = knock_core::conf::parse(text.as_bytes(), Path::new("bench.conf")).unwrap();
        let parse = ms(start);
        assert_eq!(config.doors.len(), n);
        let inputs = || Inputs {
            local_addrs: vec!["192.0.2.2".parse().unwrap()],
            ..Inputs::default()
        };
        let start = Instant::now();
        let (mut engine, _) = Engine::new(&config, inputs(), Options::default(), NOW).unwrap();
        let build = ms(start);
        let start = Instant::now();
        engine.reload(&config, inputs(), NOW).unwrap();
        let reload = ms(start);
        let start = Instant::now();
        let rules = engine.capture_rules();
        let _ = bpf::compile(&rules, LinkType::Ethernet, Families::Both);
        let filter = ms(start);
        println!(
            "{n:>8} {parse:>10.0} {build:>10.0} {reload:>10.0} {filter:>10.0} {:>12}",
            text.len()
        );
    }
    // One name twice, the second at the end: the duplicate check sees every door.
    let mut text = config(100_000);
    text.push_str("[door0]\nsequence = 1,2,3\n");
    let start = Instant::now();
    let parsed = knock_core::conf::parse(text.as_bytes(), Path::new("bench.conf")).unwrap();
    println!(
        "100000 doors and a duplicate name: parsed in {:.0} ms, {} warning(s)",
        ms(start),
        parsed.warnings.len()
    );
}
