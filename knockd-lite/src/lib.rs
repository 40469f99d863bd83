//! knockd-lite: a knockd-compatible server built on a pure matching engine.
//!
//! * [`args`]: knockd's command-line flags plus knockd-lite's additions;
//! * [`engine`]: the matcher (knockd's semantics, knockd's bugs fixed), pure and clock-free;
//! * [`filter`]: capture rules shared by the engine and the capture layer;
//! * [`check`](mod@check): `--check`, a validated description of a configuration;
//! * [`capture`]: AF_PACKET capture with an in-kernel BPF filter, and a replay source;
//! * [`netif`]: interfaces, their addresses and address changes;
//! * [`exec`]: running door commands off the capture path;
//! * [`log`]: knockd's log format, syslog and flood folding;
//! * [`daemon`]: detaching, the pidfile and signals;
//! * [`otp_store`]: durable one-time list consumption and HMAC counter state;
//! * [`inputs`]: reading one-time lists and HMAC secrets for the engine;
//! * `serve`: the daemon itself, which wires all of the above together.

pub mod args;
pub mod capture;
pub mod check;
pub mod daemon;
pub mod engine;
pub mod exec;
pub mod filter;
pub mod inputs;
pub mod log;
pub mod netif;
pub mod otp_store;
mod serve;
#[cfg(test)]
mod testutil;

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
        return match netif::interfaces() {
            Ok(list) => {
                print!("{}", netif::list_text(&list));
                0
            }
            Err(e) => {
                eprintln!("knockd-lite: {e}");
                1
            }
        };
    }
    if args.check {
        return check(&args);
    }
    serve::run(args)
}

fn check(args: &Args) -> i32 {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("knockd-lite: {message}");
            return 2;
        }
    };
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
    match report {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(message) => {
            eprintln!("knockd-lite: {message}");
            2
        }
    }
}

fn load_config(args: &Args) -> Result<knock_core::conf::Config, String> {
    read_config(&args.config, &args.config)
}

/// Reads and parses the config at `path`; messages (`path:line: message`) name it `shown`,
/// the path as it was given on the command line.
pub(crate) fn read_config(
    path: &std::path::Path,
    shown: &std::path::Path,
) -> Result<knock_core::conf::Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", shown.display()))?;
    knock_core::conf::parse(&text, shown).map_err(|e| e.to_string())
}
