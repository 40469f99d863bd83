//! The `knock` client: command-line parsing, name resolution and sending hits.
//!
//! A run goes through the modules in order: [`args`] is the syntax (clap), [`plan`] parses
//! the hits and resolves HOST once, [`knock`] checks then sends the hits, [`output`] and
//! [`json`] print. [`run`] picks the command by the first word, before any clap parsing,
//! so each subcommand can bring its own definition while `knock HOST HIT...` keeps the
//! shape of knock(1).

mod args;
mod json;
mod knock;
mod output;
mod plan;
mod resolve;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::anyhow;
use clap::Parser;
use knock_core::send::{KnockSender, Privilege, SendOptions, Sender};

use crate::args::KnockArgs;
use crate::output::Out;
use crate::plan::{Mode, Plan};

/// Runs `knock` with these arguments (the first is the program name) and returns the
/// process exit code: 0 every hit sent, 1 runtime failure, 2 usage error or bad hit.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = args.into_iter().map(Into::into).collect();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr();
    // The privilege is asked for once, when a run is about to check its hits.
    let mut sender = |options: SendOptions| -> Box<dyn Sender> {
        Box::new(KnockSender::new(options, Privilege::current()))
    };
    let mut sleep = std::thread::sleep;
    run_with(
        args,
        Env {
            out: &mut stdout,
            err: &mut stderr,
            sender: &mut sender,
            sleep: &mut sleep,
        },
    )
}

/// Makes the sender for a run's options (`--raw`, `--source-port`).
pub(crate) type MakeSender<'a> = dyn FnMut(SendOptions) -> Box<dyn Sender + 'a> + 'a;

/// The outside world of a run, passed in so tests can stand in for it.
pub(crate) struct Env<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub sender: &'a mut MakeSender<'a>,
    pub sleep: &'a mut dyn FnMut(Duration),
}

pub(crate) fn run_with(args: Vec<OsString>, env: Env<'_>) -> i32 {
    let Env {
        out,
        err,
        sender,
        sleep,
    } = env;
    let mut out = Out::new(out);
    let result = dispatch(args, &mut out, sender, sleep);
    match result {
        Ok(()) => 0,
        Err(failure) => failure.report(err),
    }
}

/// Picks the command from the first word. `knock profile ...` and the other reserved words
/// become subcommands here; until one exists its word is refused, so that no command line
/// that works today changes meaning when it arrives.
fn dispatch<'a>(
    args: Vec<OsString>,
    out: &mut Out<'_>,
    sender: &mut MakeSender<'a>,
    sleep: &mut dyn FnMut(Duration),
) -> Result<(), Failure> {
    match args.get(1).and_then(|a| a.to_str()) {
        Some(word) if args::RESERVED.contains(&word) => {
            Err(Failure::usage(anyhow!(args::reserved_message(word))))
        }
        _ => knock_command(args, out, sender, sleep),
    }
}

/// `knock [OPTIONS] HOST HIT...`.
fn knock_command<'a>(
    args: Vec<OsString>,
    out: &mut Out<'_>,
    make_sender: &mut MakeSender<'a>,
    sleep: &mut dyn FnMut(Duration),
) -> Result<(), Failure> {
    let args = match KnockArgs::try_parse_from(args) {
        Ok(args) => args,
        // --help and --version: clap's text on stdout, exit 0.
        Err(e) if !e.use_stderr() => {
            return out
                .line(e.to_string().trim_end())
                .map_err(|e| Failure::runtime(anyhow!(e).context("write stdout")));
        }
        Err(e) => return Err(Failure::Clap(e)),
    };
    let plan = Plan::new(args)?;
    let stdout_failed = |e: io::Error| Failure::runtime(anyhow!(e).context("write stdout"));
    match plan.mode {
        Mode::DryRun => {
            for line in output::dry_run_lines(&plan) {
                out.line(&line).map_err(stdout_failed)?;
            }
            Ok(())
        }
        Mode::DryRunJson => out
            .line(&json::DryRun::new(&plan).to_json())
            .map_err(stdout_failed),
        Mode::Send => {
            let mut sender = make_sender(plan.send);
            let refused = knock::refusals(&plan, sender.as_ref());
            if !refused.is_empty() {
                let ways_out = knock::ways_out(&refused);
                let mut errors: Vec<anyhow::Error> =
                    refused.into_iter().map(anyhow::Error::from).collect();
                errors.extend(ways_out.map(|w| anyhow!(w)));
                return Err(Failure::Errors(2, errors));
            }
            knock::send_all(&plan, sender.as_mut(), sleep, out).map_err(Failure::runtime)
        }
    }
}

/// Why a run did not succeed, and how to say so.
#[derive(Debug)]
pub(crate) enum Failure {
    /// clap's own report of a usage error (exit 2).
    Clap(clap::Error),
    /// Errors printed one per line as `knock: ...` with their whole context chain, and the
    /// exit code.
    Errors(i32, Vec<anyhow::Error>),
}

impl Failure {
    /// A usage or configuration error: exit 2.
    pub(crate) fn usage(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Errors(2, vec![e.into()])
    }

    /// A failure while doing the work: exit 1.
    pub(crate) fn runtime(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Errors(1, vec![e.into()])
    }

    /// Prints the failure on stderr and returns the exit code.
    fn report(self, err: &mut dyn Write) -> i32 {
        // Nothing useful is left to do if stderr itself cannot be written.
        match self {
            Failure::Clap(e) => {
                let _ = write!(err, "{e}");
                e.exit_code()
            }
            Failure::Errors(code, errors) => {
                for e in errors {
                    let _ = writeln!(err, "knock: {e:#}");
                }
                code
            }
        }
    }
}
