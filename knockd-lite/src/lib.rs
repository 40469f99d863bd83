//! knockd-lite: a knockd-compatible server built on a pure matching engine.
//!
//! * [`args`]: knockd's command-line flags plus knockd-lite's additions;
//! * [`engine`]: the matcher (knockd's semantics, knockd's bugs fixed), pure and clock-free;
//! * [`filter`]: capture rules shared by the engine and the capture layer;
//! * [`check`]: `--check`, a validated description of a configuration;
//! * [`capture`]: AF_PACKET capture with an in-kernel BPF filter, and a replay source;
//! * [`netif`]: interfaces, their addresses and address changes;
//! * [`exec`]: running door commands off the capture path;
//! * [`log`]: knockd's log format, syslog and flood folding;
//! * [`daemon`]: detaching, the pidfile and signals;
//! * [`otp_store`]: durable one-time list consumption and HMAC counter state.

pub mod args;
pub mod capture;
pub mod check;
pub mod daemon;
pub mod engine;
pub mod exec;
pub mod filter;
pub mod log;
pub mod netif;
pub mod otp_store;

use std::ffi::OsString;
use std::time::SystemTime;

use clap::Parser;
use clap::error::ErrorKind;

use args::Args;
use engine::Timestamp;

/// Runs `knockd-lite` with these arguments and returns the process exit code
/// (0 ok, 1 runtime failure, 2 usage or configuration error).
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    if args.list_interfaces {
        eprintln!(
            "knockd-lite: --list-interfaces needs the capture runtime, which is not wired in yet"
        );
        return 1;
    }
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("knockd-lite: {message}");
            return 2;
        }
    };
    if args.check {
        let report = check::load_inputs(&config).and_then(|inputs| {
            let now = Timestamp::from_system_time(SystemTime::now());
            check::report(
                &args.config,
                &config,
                args.interface.as_deref(),
                inputs,
                now,
            )
            .map_err(|e| e.to_string())
        });
        return match report {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(message) => {
                eprintln!("knockd-lite: {message}");
                2
            }
        };
    }
    eprintln!(
        "knockd-lite: {} is valid, but the capture runtime is not wired in yet: only --check works in this build",
        args.config.display()
    );
    1
}

fn load_config(args: &Args) -> Result<knock_core::conf::Config, String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    knock_core::conf::parse(&text, &args.config).map_err(|e| e.to_string())
}
