//! knockd-lite: a knockd-compatible server around the pure matching engine of
//! `knockd-engine`. The binary calls [`run`]; [`capture`] and [`netif`] are public for the
//! end-to-end tests, which capture on real interfaces with them.
//!
//! * `args`: knockd's command-line flags plus knockd-lite's additions;
//! * `config`, `door_files`: knockd.conf, and the one-time lists and secrets its doors name;
//! * `check`: `--check`, a validated description of a configuration;
//! * [`capture`]: AF_PACKET capture with an in-kernel BPF filter, following the interface,
//!   and a replay source;
//! * [`netif`]: interfaces, their addresses and address changes;
//! * `exec`: running door commands off the capture path;
//! * `log`: knockd's log format, syslog and flood folding;
//! * `pidfile`, `signals`: the pidfile of `-d`, and signals as input to the main loop;
//! * `hmac_state`: the used HMAC counters that survive a restart;
//! * `nft`: nftables doors, over nf_tables netlink;
//! * `stops`: the stop journal, pending stop commands that survive a crash;
//! * `keeper`: the stop keeper, a small process that runs pending stops on time when the
//!   daemon dies and is not started again;
//! * `sys`: every libc call outside the capture ring, behind safe functions;
//! * `serve`: the daemon itself, which wires all of the above together.

mod args;
pub mod capture;
mod check;
mod codec;
mod config;
mod door_files;
mod exec;
mod hmac_state;
mod keeper;
mod log;
pub mod netif;
mod nft;
mod pidfile;
mod serve;
mod signals;
mod stops;
mod sys;
#[cfg(test)]
mod testutil;
mod worker;

/// Pure entry points into private modules for the fuzz targets (`fuzz-props`, run by
/// `cargo test` and by cargo-fuzz). Not an API: nothing else calls them.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::hmac_state::{StateError, UsedCounters, format_counters, parse_counters};
    pub use crate::keeper::msg::{
        DecodeError as KeeperDecodeError, MAX_BODY as KEEPER_MAX_BODY, Message as KeeperMessage,
        TooLong as KeeperTooLong, decode as decode_keeper, encode as encode_keeper,
    };
    pub use crate::stops::{Pending, format_stops, parse_stops};
    pub use crate::worker::admit::{Claim, Refusal, completion as admit_completion};
    pub use crate::worker::msg::{
        DecodeError as WorkerDecodeError, Down as WorkerDown, HmacLoad, Load as WorkerLoad,
        Up as WorkerUp, decode_down as decode_worker_down, decode_load as decode_worker_load,
        decode_up as decode_worker_up, encode_down as encode_worker_down,
        encode_load as encode_worker_load, encode_up as encode_worker_up,
    };
}

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::Parser;
use clap::error::ErrorKind;
use knockd_engine::Timestamp;

use args::Args;

/// Runs `knockd-lite` with these arguments and returns the process exit code
/// (0 ok, 1 runtime failure, 2 usage or configuration error).
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The stop keeper the daemon starts: not an option anyone types (not in --help).
    if args.get(1).is_some_and(|a| a == keeper::ARG) {
        return match &args[..] {
            [_, _, journal] => keeper::run(PathBuf::from(journal)),
            _ => {
                eprintln!(
                    "knockd-lite: {} is internal: knockd-lite starts it",
                    keeper::ARG
                );
                2
            }
        };
    }
    // The sandboxed worker the monitor starts: internal too.
    if args.get(1).is_some_and(|a| a == worker::ARG) {
        let id = |a: &OsString| a.to_str().and_then(|s| s.parse::<u32>().ok());
        return match &args[..] {
            [_, _, ifname, uid, gid] if id(uid).is_some() && id(gid).is_some() => worker::run(
                &ifname.to_string_lossy(),
                id(uid).unwrap_or(u32::MAX),
                id(gid).unwrap_or(u32::MAX),
            ),
            _ => {
                eprintln!(
                    "knockd-lite: {} is internal: knockd-lite starts it",
                    worker::ARG
                );
                2
            }
        };
    }
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
            Err(e) => report(&e.into(), 1),
        };
    }
    if args.check {
        return match check(&args) {
            Ok((text, warnings, wrong)) => {
                for warning in warnings {
                    eprintln!("knockd-lite: {warning}");
                }
                // With a wrong set the report still helps: it holds the ruleset lines
                // that create missing sets.
                print!("{text}");
                match wrong {
                    None => 0,
                    Some(wrong) => report(&anyhow::Error::msg(wrong), 2),
                }
            }
            Err(e) => report(&e, 2),
        };
    }
    serve::run(args)
}

/// `--check`: the report, the warnings (a log file that cannot be opened, what the
/// config's reader warns of) and a set that is wrong; or why the configuration does not
/// load (exit 2, as for a wrong set).
fn check(args: &Args) -> anyhow::Result<(String, Vec<String>, Option<String>)> {
    let config = config::read(&args.config, &args.config)?;
    let mut warnings = config::warnings(&config, &args.config);
    let log_file = args.logfile.as_ref().or(config.log_file.as_ref());
    if let Some(Err(e)) = log_file.map(|p| log::check_file(p)) {
        let origin = config::log_file_origin(&config, &args.config, args.logfile.is_some());
        warnings.push(e.warning(&origin));
    }
    let inputs = check::load_inputs(&config)?;
    let now = Timestamp::from_system_time(SystemTime::now());
    let mut text = check::report(
        &args.config,
        &config,
        args.interface.as_deref(),
        inputs,
        now,
        args.show_hmac_ports,
    )?;
    // Sets are checked in the kernel; without CAP_NET_ADMIN the report says so per set.
    let (sets, wrong) = nft::check_report(&config, &args.config, &mut nft::Netlink::default());
    text.push_str(&sets);
    Ok((text, warnings, wrong))
}

/// Prints `knockd-lite: ` and the error with its whole context chain; returns `code`.
fn report(e: &anyhow::Error, code: i32) -> i32 {
    eprintln!("knockd-lite: {e:#}");
    code
}

/// The whole command line as clap defines it: what `--help` prints, and what the man page
/// and shell completions are generated from at build time (`xtask`).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}
