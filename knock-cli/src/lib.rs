//! The `knock` client: command-line parsing, name resolution and sending hits.
//!
//! A run goes through the modules in order: [`args`] is the syntax (clap), [`plan`] parses
//! the hits and resolves HOST once, [`execute`] checks then sends the hits (with a
//! [`progress`] bar when someone is watching), [`output`] and [`json`] print. [`run`] picks
//! the command by the first word, before any clap parsing, so each subcommand brings its
//! own definition while `knock HOST HIT...` keeps the shape of knock(1):
//!
//! * [`profile`]: `knock profile NAME` knocks from a saved profile (a sequence, a one-time
//!   list or knock-hmac-v1) through the same [`Plan`]; `list`, `show`, `save`, `remove` and
//!   `import` manage profiles;
//! * [`otp`]: `knock otp generate` writes a one-time list;
//! * [`keygen`]: `knock keygen` makes an HMAC secret with its door and profile.
//!
//! With `--wait` or `--proxy`, [`connect`] waits for the door after the knock, knocks
//! again while it stays closed, and carries the connection over stdin and stdout.
//!
//! Everything outside the process (stdout, stderr, the sender, the sleeper, environment
//! variables, the clock, the terminal) comes in through [`Ctx`], so whole runs are tested
//! with stand-ins.

// The map above is for readers of the private items (`cargo doc --document-private-items`),
// where its links resolve; the public docs show them as plain names.
#![allow(rustdoc::private_intra_doc_links)]

mod args;
mod connect;
mod execute;
mod interrupt;
mod json;
mod keygen;
mod otp;
mod output;
mod plan;
mod profile;
mod progress;
mod resolve;
mod services;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use clap::{FromArgMatches, Parser};
use knock_core::hit::PortNames;
use knock_core::secret::source::{Prompt, TerminalPrompt};
use knock_core::send::{KnockSender, Privilege, SendOptions, Sender};

use crate::args::KnockArgs;
pub use crate::args::command;
use crate::connect::{Dial, Net};
use crate::output::Out;
use crate::plan::Plan;
use crate::services::Services;

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
    // Ctrl-C is watched for the whole run: every wait looks at it, and a run it stops exits
    // 130 saying how far it got.
    let _watch = interrupt::Watch::start();
    let mut sleep = interrupt::sleep;
    let mut prompt = TerminalPrompt;
    let services = Services::system();
    let mut net = Net::new();
    run_with(
        args,
        Ctx {
            out: Out::new(&mut stdout),
            err: &mut stderr,
            sender: &mut sender,
            sleep: &mut sleep,
            vars: &|name| std::env::var_os(name),
            now: &unix_now,
            prompt: &mut prompt,
            stderr_terminal: io::stderr().is_terminal(),
            services: &services,
            interrupted: &interrupt::interrupted,
            dial: &mut net,
        },
    )
}

/// Seconds since the Unix epoch on the system clock (0 for a clock set before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Makes the sender for a plan's options (`--raw`, `--source-port`), once the plan is
/// made and before any of its hits is checked.
pub(crate) type MakeSender<'a> = dyn FnMut(SendOptions) -> Box<dyn Sender> + 'a;

/// The outside world of a run, passed in so tests can stand in for it.
pub(crate) struct Ctx<'a> {
    /// stdout, where a closed pipe ends the output but not the run.
    pub out: Out<'a>,
    pub err: &'a mut dyn Write,
    pub sender: &'a mut MakeSender<'a>,
    /// Waits; returns early once Ctrl-C was pressed.
    pub sleep: &'a mut dyn FnMut(Duration),
    /// Environment variables (`KNOCK_PROFILES`, a profile's `secret_env`).
    pub vars: &'a dyn Fn(&str) -> Option<OsString>,
    /// The clock, in Unix seconds (HMAC sequences).
    pub now: &'a dyn Fn() -> u64,
    /// Where a secret is asked for when a profile names no file or variable.
    pub prompt: &'a mut dyn Prompt,
    /// Whether stderr is a terminal, where a progress bar may be drawn.
    pub stderr_terminal: bool,
    /// Service names for hits (`ssh`): the system's services database.
    pub services: &'a dyn PortNames,
    /// Whether Ctrl-C was pressed during the run.
    pub interrupted: &'a dyn Fn() -> bool,
    /// The network and the monotonic clock of `--wait` and `--proxy`, and the relay.
    pub dial: &'a mut dyn Dial,
}

impl Ctx<'_> {
    /// Prints one line on stdout.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), Failure> {
        self.out
            .line(text)
            .map_err(|e| Failure::runtime(anyhow!(e).context("write stdout")))
    }

    /// Prints `knock: warning: ...` on stderr (a warning that cannot be printed is lost).
    pub(crate) fn warn(&mut self, text: &str) {
        let _ = writeln!(self.err, "knock: warning: {text}");
    }

    /// Prints `knock: note: ...` on stderr, for what the user should know but need not fix.
    pub(crate) fn note(&mut self, text: &str) {
        let _ = writeln!(self.err, "knock: note: {text}");
    }
}

pub(crate) fn run_with(args: Vec<OsString>, mut ctx: Ctx<'_>) -> i32 {
    match dispatch(args, &mut ctx) {
        Ok(()) => 0,
        // Whatever failed once Ctrl-C was pressed (a prompt's read, a lookup) failed
        // because of it.
        Err(failure @ Failure::Interrupted(_)) => failure.report(ctx.err),
        Err(_) if (ctx.interrupted)() => Failure::Interrupted(None).report(ctx.err),
        Err(failure) => failure.report(ctx.err),
    }
}

/// Picks the command from the first word: `profile`, `otp`, `keygen` and `help` are
/// subcommands ([`args::RESERVED`]), anything else is `knock HOST HIT...`. Deciding before
/// clap parses anything lets each subcommand bring its own definition while the knock(1)
/// command line keeps its shape.
fn dispatch(args: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let args = lift_profiles_option(args);
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    match (word(1), word(2)) {
        (Some("help"), _) => help(args, ctx),
        // `knock profile help [save]` is `knock help profile [save]`.
        (Some(command), Some("help")) if args::RESERVED.contains(&command) => {
            let mut args = args;
            args.swap(1, 2);
            help(args, ctx)
        }
        (Some("profile"), _) => profile::run(args, ctx),
        (Some("otp"), _) => otp::run(args, ctx),
        (Some("keygen"), _) => keygen::run(args, ctx),
        _ => knock_command(args, ctx),
    }
}

/// `knock help [COMMAND [SUBCOMMAND]]`: the long help of that command, from the one
/// command tree ([`command`]), on stdout. `--help` there asks for the same (clap's own
/// `help` takes no options).
fn help(mut args: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let mut i = 0;
    args.retain(|a| {
        i += 1;
        i <= 2 || !(a == "--help" || a == "-h")
    });
    clap_outcome(command().try_get_matches_from(args).map(|_| ()), ctx)?;
    Ok(())
}

/// `--profiles DIR` is a global option: `knock --profiles DIR profile ...` is read as
/// `knock profile --profiles DIR ...`, where the profile command's parser takes it; the
/// same for `keygen` and `otp generate`, which save profiles with `--save`.
fn lift_profiles_option(mut args: Vec<OsString>) -> Vec<OsString> {
    let first = args.get(1).and_then(|a| a.to_str());
    let width = match first {
        Some("--profiles") => 2,
        Some(a) if a.starts_with("--profiles=") => 1,
        _ => return args,
    };
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    let at = match (word(1 + width), word(2 + width)) {
        (Some("profile" | "keygen"), _) => 2,
        (Some("otp"), Some("generate")) => 3,
        _ => return args,
    };
    let option: Vec<OsString> = args.drain(1..1 + width).collect();
    args.splice(at..at, option);
    args
}

/// Parses a command line with clap. `None` when it was `--help` or `--version`, whose
/// text is then already on stdout.
pub(crate) fn parse_args<T: Parser>(
    args: Vec<OsString>,
    ctx: &mut Ctx<'_>,
) -> Result<Option<T>, Failure> {
    clap_outcome(T::try_parse_from(args), ctx)
}

/// What clap's answer means for the run: the parsed arguments, or help already printed.
pub(crate) fn clap_outcome<T>(
    parsed: Result<T, clap::Error>,
    ctx: &mut Ctx<'_>,
) -> Result<Option<T>, Failure> {
    match parsed {
        Ok(args) => Ok(Some(args)),
        // --help and --version: clap's text on stdout, exit 0.
        Err(e) if !e.use_stderr() => {
            ctx.line(e.to_string().trim_end())?;
            Ok(None)
        }
        Err(e) => Err(Failure::Clap(e)),
    }
}

/// `knock [OPTIONS] HOST HIT...`, parsed with the whole command tree so that `--help`
/// lists the subcommands too.
fn knock_command(argv: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let parsed = command()
        .try_get_matches_from(&argv)
        .and_then(|m| KnockArgs::from_arg_matches(&m));
    if let Err(e) = &parsed
        && let Some(hit) = args::negative_hit(e, &argv)
    {
        return Err(Failure::usage(hit));
    }
    let Some(args) = clap_outcome(parsed, ctx)? else {
        return Ok(());
    };
    let quiet = args.quiet;
    let plan = Plan::new(args, ctx.services)?;
    execute::execute(&plan, ctx, quiet)
}

/// Why a run did not succeed, and how to say so.
#[derive(Debug)]
pub(crate) enum Failure {
    /// clap's own report of a usage error (exit 2).
    Clap(clap::Error),
    /// Errors printed one per line as `knock: ...` with their whole context chain, and the
    /// exit code.
    Errors(i32, Vec<anyhow::Error>),
    /// Ctrl-C stopped the run (exit 130): after this many hits of how many, when it
    /// stopped a knock.
    Interrupted(Option<Sent>),
}

/// How far a knock got: `sent` of `total` hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub sent: usize,
    pub total: usize,
}

impl std::fmt::Display for Failure {
    /// The interruption's line; other failures are printed by [`Failure::report`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Interrupted(Some(Sent { sent: 0, total })) => {
                write!(f, "interrupted before hit 1 of {total}; nothing was sent")
            }
            Failure::Interrupted(Some(Sent { sent, total })) => {
                write!(f, "interrupted after hit {sent} of {total}")
            }
            Failure::Interrupted(None) => f.write_str("interrupted; nothing was sent"),
            Failure::Clap(e) => write!(f, "{e}"),
            Failure::Errors(_, errors) => {
                let lines: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
                f.write_str(&lines.join("\n"))
            }
        }
    }
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

    /// The exit code and the errors, for a caller that gathers several failures into one.
    pub(crate) fn into_parts(self) -> (i32, Vec<anyhow::Error>) {
        match self {
            Failure::Clap(e) => (e.exit_code(), vec![e.into()]),
            Failure::Errors(code, errors) => (code, errors),
            Failure::Interrupted(_) => (interrupt::EXIT_CODE, vec![anyhow!("{self}")]),
        }
    }

    /// The exit code and the messages, as `report` would print them.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> (i32, Vec<String>) {
        match self {
            Failure::Clap(e) => (e.exit_code(), vec![e.to_string()]),
            Failure::Errors(code, errors) => {
                (*code, errors.iter().map(|e| format!("{e:#}")).collect())
            }
            Failure::Interrupted(_) => (interrupt::EXIT_CODE, vec![self.to_string()]),
        }
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
            Failure::Interrupted(_) => {
                let _ = writeln!(err, "knock: {self}");
                interrupt::EXIT_CODE
            }
        }
    }
}
