//! `knock otp generate`: a fresh one-time sequence list, in knockd's format, from the OS's
//! random generator.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use knock_core::hmac::{DEFAULT_PORTS, PortRange};
use knock_core::otp::GenProtocols;
use knock_core::otp::file::{GenerateOptions, OtpFileError, generate_file};

use knock_core::files;
use knock_core::profile::{Knock, OneTime, Profile};

use crate::{Ctx, Failure, parse_args};

/// One-time sequence lists.
///
/// A list is shared with the server: knockd (One_Time_Sequences) or knockd-lite reads its
/// copy, `knock profile NAME` with one_time_sequences = "FILE" reads the other. Each knock
/// uses the first unused line and marks it with '#', on both ends.
#[derive(Debug, Parser)]
#[command(
    name = "otp",
    bin_name = "knock otp",
    subcommand_required = true,
    arg_required_else_help = true,
    subcommand_value_name = "COMMAND"
)]
pub(crate) struct OtpArgs {
    #[command(subcommand)]
    pub command: OtpCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OtpCommand {
    /// Write a new list of random sequences to FILE (mode 0600)
    #[command(after_help = "\
Each line is one sequence in the hit grammar and starts with a space, as knockd's manual
advises, so that marking it used ('#' over the first character) keeps every port intact.
Ports are drawn without repeats within a line from the OS's random generator. Give the
server its own copy of the same file.

With --save NAME --host HOST, a one-time profile NAME is saved too, pointing at FILE by its
absolute path, so `knock profile NAME` knocks with the list at once.

Exit status: 0 written, 1 the random generator or the file system failed, 2 usage error,
parameters that cannot make a list, or FILE exists without --force.")]
    Generate(GenerateArgs),
}

/// `knock otp generate --count N --length L [OPTIONS] FILE`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Number of sequences (lines), 1 to 100000
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,

    /// Hits per sequence, 1 to 32
    #[arg(long, value_name = "L", value_parser = clap::value_parser!(u32).range(1..=32))]
    pub length: u32,

    /// Port pool to draw from
    #[arg(long, value_name = "LO-HI", default_value_t = DEFAULT_PORTS, value_parser = port_range)]
    pub ports: PortRange,

    /// Protocol of the hits: tcp, udp, or mixed (each hit tcp or udp at random)
    #[arg(long, value_name = "tcp|udp|mixed", default_value_t = GenProtocols::Tcp, value_parser = gen_protocols)]
    pub protocols: GenProtocols,

    /// Replace FILE, and the profile of --save, if they exist
    #[arg(long)]
    pub force: bool,

    /// Also save a one-time profile NAME in the profile directory that knocks on --host
    /// with this list
    #[arg(long, value_name = "NAME", requires = "host")]
    pub save: Option<String>,

    /// The host the profile of --save knocks on
    #[arg(long, value_name = "HOST", requires = "save", value_parser = crate::args::host_value, value_hint = clap::ValueHint::Hostname)]
    pub host: Option<String>,

    /// Profile directory for --save [default: $KNOCK_PROFILES, else <config dir>/knock/profiles]
    // This doc is the --help text, where <...> is a placeholder, not an HTML tag.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR", requires = "save")]
    pub profiles: Option<PathBuf>,

    /// The list file to write
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub(crate) fn port_range(s: &str) -> Result<PortRange, String> {
    s.parse()
}

fn gen_protocols(s: &str) -> Result<GenProtocols, String> {
    s.parse()
}

/// `knock otp ...`: `args[1]` is `otp`.
pub(crate) fn run(args: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let Some(args) = parse_args::<OtpArgs>(args.into_iter().skip(1).collect(), ctx)? else {
        return Ok(());
    };
    match args.command {
        OtpCommand::Generate(g) => generate(g, ctx),
    }
}

fn generate(args: GenerateArgs, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let opts = GenerateOptions {
        count: args.count as usize,
        length: args.length as usize,
        ports: args.ports,
        protocols: args.protocols,
    };
    // With --save, the profile's name is checked before the list is written.
    let store = match &args.save {
        Some(name) => {
            let store = crate::profile::open_store(args.profiles.as_deref(), ctx)?;
            crate::profile::check_free(&store, name, args.force)?;
            Some((store, name))
        }
        None => None,
    };
    generate_file(&args.file, &opts, args.force).map_err(otp_failure)?;
    ctx.line(&format!(
        "wrote {} sequences of {} hits to {} (mode 0600); give the server a copy of it",
        opts.count,
        opts.length,
        args.file.display()
    ))?;
    let Some((store, name)) = store else {
        return Ok(());
    };
    // The profile points at the list where it is, by its absolute path.
    let list = std::path::absolute(&args.file).map_err(|e| {
        Failure::runtime(anyhow::anyhow!(
            "make {} absolute: {e}",
            args.file.display()
        ))
    })?;
    let mut profile = Profile::new(Knock::OneTime(OneTime::new(list, store.dir())));
    profile.host = args.host.clone();
    files::create_private_dir(store.dir()).map_err(|e| {
        Failure::runtime(anyhow::anyhow!(
            "create directory {}: {e}",
            store.dir().display()
        ))
    })?;
    let saved = store
        .save(name, &profile, args.force)
        .map_err(crate::profile::store_failure)?;
    ctx.line(&format!("saved profile {name}: {}", saved.display()))?;
    ctx.line(&format!("profile directory: {}", store.dir().display()))?;
    ctx.line(&format!("knock with: knock profile {name}"))
}

/// A list that cannot be used or written: 1 when the file system or the random generator
/// failed, 2 when the list or the request needs fixing (a bad line, used up, exists).
pub(crate) fn otp_failure(e: OtpFileError) -> Failure {
    match e {
        OtpFileError::Io { .. } | OtpFileError::Mark { .. } | OtpFileError::Random(_) => {
            Failure::runtime(e)
        }
        _ => Failure::usage(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(line: &[&str]) -> Result<OtpArgs, clap::Error> {
        OtpArgs::try_parse_from(std::iter::once("otp").chain(line.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        OtpArgs::command().debug_assert();
    }

    #[test]
    fn accepted_lines() {
        let OtpCommand::Generate(g) = parse(&["generate", "--count", "5", "--length", "3", "f"])
            .unwrap()
            .command;
        assert_eq!((g.count, g.length), (5, 3));
        assert_eq!(g.ports, DEFAULT_PORTS);
        assert_eq!(g.protocols, GenProtocols::Tcp);
        assert!(!g.force);
        assert_eq!(g.file, PathBuf::from("f"));
        let OtpCommand::Generate(g) = parse(&[
            "generate",
            "--ports",
            "2000-2999",
            "--protocols",
            "mixed",
            "--force",
            "--count=1",
            "--length=32",
            "/tmp/x.otp",
        ])
        .unwrap()
        .command;
        assert_eq!(g.ports, PortRange { lo: 2000, hi: 2999 });
        assert_eq!(g.protocols, GenProtocols::Mixed);
        assert!(g.force);
        assert_eq!((g.count, g.length), (1, 32));
    }

    #[test]
    fn rejected_lines() {
        let table: &[(&[&str], ErrorKind, &str)] = &[
            (
                &["generate", "--length", "3", "f"],
                ErrorKind::MissingRequiredArgument,
                "--count <N>",
            ),
            (
                &["generate", "--count", "3", "f"],
                ErrorKind::MissingRequiredArgument,
                "--length <L>",
            ),
            (
                &["generate", "--count", "3", "--length", "2"],
                ErrorKind::MissingRequiredArgument,
                "<FILE>",
            ),
            (
                &["generate", "--count", "0", "--length", "2", "f"],
                ErrorKind::ValueValidation,
                "0 is not in 1..=100000",
            ),
            (
                &["generate", "--count", "1", "--length", "33", "f"],
                ErrorKind::ValueValidation,
                "33 is not in 1..=32",
            ),
            (
                &[
                    "generate", "--count", "1", "--length", "2", "--ports", "9-1", "f",
                ],
                ErrorKind::ValueValidation,
                "port range \"9-1\": low end is above high end",
            ),
            (
                &[
                    "generate",
                    "--count",
                    "1",
                    "--length",
                    "2",
                    "--protocols",
                    "sctp",
                    "f",
                ],
                ErrorKind::ValueValidation,
                "unknown protocols \"sctp\" (expected tcp, udp or mixed)",
            ),
            (&["mint"], ErrorKind::InvalidSubcommand, "'mint'"),
        ];
        crate::tests::assert_rejected(table, parse);
        // Bare `knock otp` shows the help, and is still a usage error.
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("generate"), "{err}");
    }
}
