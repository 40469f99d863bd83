//! knock-flood: a spoofed-source TCP SYN flood over AF_PACKET, for benchmarking knock
//! servers in test namespaces.
//!
//! Sources are spread over the whole of 198.18.0.0/15 (the benchmark range; `--sources`
//! of its 131,072 addresses) with random source ports. A flood cycles through them on one
//! port; `--sequence` instead sends a whole knock from each source once (spoofed
//! completions, for the command-flood test). The destination must be in 192.0.2.0/24 and
//! the process must run inside a named network namespace. The run stops by itself after
//! at most [`MAX_DURATION_SECS`] seconds.

pub mod frames;
pub mod pace;
pub mod sys;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use clap::Parser;

use frames::{FRAME_LEN, Target, XorShift};
use pace::{Pacer, Step};

/// The longest flood the generator agrees to run.
pub const MAX_DURATION_SECS: f64 = 30.0;

/// Spoofed-source TCP SYN flood from 198.18.0.0/15 to a test host, over AF_PACKET.
#[derive(Debug, Parser)]
#[command(name = "knock-flood", version)]
pub struct Args {
    /// Interface to send from (the client end of the test veth pair).
    #[arg(short, long, value_name = "IF")]
    pub interface: String,
    /// The server's MAC address (aa:bb:cc:dd:ee:ff).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: String,
    /// The server's IPv4 address; must be in 192.0.2.0/24.
    #[arg(long, value_name = "ADDR", default_value = "192.0.2.2")]
    pub dst: Ipv4Addr,
    /// Destination TCP port of the flood (the door's first port).
    #[arg(
        short,
        long,
        required_unless_present = "sequence",
        conflicts_with = "sequence"
    )]
    pub port: Option<u16>,
    /// Instead of a flood: each source sends these ports once, in order (all sources'
    /// first hits, then all second hits, ...), and the run ends.
    #[arg(long, value_name = "PORTS", value_delimiter = ',')]
    pub sequence: Option<Vec<u16>>,
    /// How many sources, spread evenly over the whole of 198.18.0.0/15.
    #[arg(
        short = 'n',
        long,
        default_value_t = frames::source_count(),
        value_parser = clap::value_parser!(u32).range(1..=i64::from(frames::source_count()))
    )]
    pub sources: u32,
    /// Packets per second; 0 sends as fast as possible.
    #[arg(short, long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds to flood, at most 30.
    #[arg(short, long, default_value_t = 6.0)]
    pub duration: f64,
}

/// What a run did.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    pub sent: u64,
    pub elapsed: Duration,
    /// Frames the pacer gave up after the sender fell behind (paced runs only).
    pub skipped: u64,
    /// `sendmmsg` calls the kernel refused with ENOBUFS.
    pub refused: u64,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Checks the arguments against the benchmark's limits.
pub fn validate(args: &Args) -> anyhow::Result<()> {
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_SECS) {
        anyhow::bail!(
            "--duration {}: must be more than 0 and at most {MAX_DURATION_SECS} seconds",
            args.duration
        );
    }
    if args.dst.octets()[..3] != [192, 0, 2] {
        anyhow::bail!(
            "--dst {}: the flood only goes to test hosts in 192.0.2.0/24",
            args.dst
        );
    }
    Ok(())
}

/// Runs the flood and returns what it sent.
pub fn flood(args: &Args) -> anyhow::Result<Report> {
    validate(args)?;
    sys::require_test_namespace()?;
    let target = Target {
        src_mac: frames::parse_mac(&sys::interface_mac(&args.interface)?)?,
        dst_mac: frames::parse_mac(&args.dst_mac)?,
        dst: args.dst,
        dst_port: args.port.unwrap_or(0),
    };
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    let mut rng = XorShift::new(u64::from_ne_bytes(seed));
    let sources = frames::shuffled_sources(args.sources, &mut rng);
    let once = args.sequence.is_some();
    let frames = match &args.sequence {
        Some(ports) => frames::build_rounds(&target, &sources, ports, &mut rng)?,
        None => frames::build_all(&target, &sources, &mut rng)?,
    };
    let socket = sys::FrameSocket::open(&args.interface)?;
    let mut batch = socket.batch(&frames, FRAME_LEN);

    let limit = Duration::from_secs_f64(args.duration);
    let mut pacer = Pacer::new(args.rate);
    let (mut sent, mut refused, mut next) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= limit || (once && sent >= batch.len() as u64) {
            break;
        }
        match pacer.next(elapsed, sent) {
            Step::Send(n) => {
                let n = (n as usize).min(batch.len() - next);
                let done = batch.send(next, n)?;
                if done == 0 {
                    refused += 1;
                    std::thread::yield_now();
                }
                sent += done as u64;
                next = (next + done) % batch.len();
            }
            Step::Wait(d) => std::thread::sleep(d.min(limit.saturating_sub(elapsed))),
        }
    }
    Ok(Report {
        sent,
        elapsed: start.elapsed(),
        skipped: pacer.skipped(),
        refused,
    })
}

/// Runs `knock-flood` and returns the exit code (0 ok, 1 runtime failure, 2 usage).
pub fn run() -> i32 {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Err(e) = validate(&args) {
        eprintln!("knock-flood: {e:#}");
        return 2;
    }
    match flood(&args) {
        Ok(r) => {
            println!(
                "sent={} elapsed={:.3} rate={:.0} skipped={} refused={}",
                r.sent,
                r.elapsed.as_secs_f64(),
                r.rate(),
                r.skipped,
                r.refused
            );
            0
        }
        Err(e) => {
            eprintln!("knock-flood: {e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Args, String> {
        let base = [
            "knock-flood",
            "-i",
            "veth0",
            "--dst-mac",
            "02:00:00:00:00:02",
            "-p",
            "7000",
        ];
        let args = Args::try_parse_from(base.iter().chain(extra)).map_err(|e| e.to_string())?;
        validate(&args).map_err(|e| e.to_string())?;
        Ok(args)
    }

    #[test]
    fn defaults_are_full_rate_for_six_seconds_to_the_test_server() {
        let a = args(&[]).unwrap();
        assert_eq!(a.rate, 0);
        assert_eq!(a.duration, 6.0);
        assert_eq!(a.sources, 131_072);
        assert_eq!(a.sequence, None);
        assert_eq!(a.dst, Ipv4Addr::new(192, 0, 2, 2));
    }

    #[test]
    fn limits_are_enforced_with_a_reason() {
        let cases: [(&[&str], &str); 4] = [
            (
                &["-d", "31"],
                "--duration 31: must be more than 0 and at most 30 seconds",
            ),
            (
                &["-d", "0"],
                "--duration 0: must be more than 0 and at most 30 seconds",
            ),
            (
                &["-d", "NaN"],
                "--duration NaN: must be more than 0 and at most 30 seconds",
            ),
            (
                &["--dst", "10.0.0.1"],
                "--dst 10.0.0.1: the flood only goes to test hosts in 192.0.2.0/24",
            ),
        ];
        for (extra, message) in cases {
            assert_eq!(args(extra).unwrap_err(), message, "{extra:?}");
        }
        assert!(args(&["-d", "30", "--dst", "192.0.2.9"]).is_ok());
        assert!(args(&["-n", "0"]).is_err());
        assert!(args(&["-n", "131073"]).is_err());
        assert_eq!(args(&["-n", "32768"]).unwrap().sources, 32_768);
    }

    #[test]
    fn a_sequence_replaces_the_port() {
        let a = Args::try_parse_from([
            "knock-flood",
            "-i",
            "veth0",
            "--dst-mac",
            "02:00:00:00:00:02",
            "--sequence",
            "7000,8000,9000",
            "-n",
            "1000",
        ])
        .unwrap();
        assert_eq!(a.sequence, Some(vec![7000, 8000, 9000]));
        assert_eq!(a.port, None);
        assert!(args(&["--sequence", "1,2"]).is_err(), "not with -p");
    }
}
