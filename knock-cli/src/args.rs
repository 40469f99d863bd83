//! The command line's syntax (clap derive): what the user wrote, before anything is
//! looked up. [`crate::plan`] turns it into what to do.

use clap::{Args, Parser};
use knock_core::profile::{DEFAULT_DELAY_MS, Family};

/// First words that are subcommands (`knock profile ...`). None of them can be a HOST, so
/// a subcommand never changes what a working command line does.
pub(crate) const RESERVED: [&str; 3] = ["profile", "otp", "keygen"];

/// Knock on a host's ports: one TCP SYN or UDP datagram per hit, in order.
///
/// A drop-in replacement for knock(1). HOST is resolved once, and every hit goes to that
/// one address.
#[derive(Debug, Parser)]
#[command(
    name = "knock",
    // The same name in usage lines on every system, not argv[0] (`knock.exe` on Windows).
    bin_name = "knock",
    version,
    after_help = "\
HIT forms (each HIT may also be a comma-separated list of them):
  PORT[:PROTO]          7000, 8000:udp (PROTO is tcp or udp; default tcp, udp under -u)
  PORT:tcp:FLAGS        7000:tcp:fin+psh (exact TCP flags)
  PROTO:PORT[:LETTERS]  tcp:110:up (tportknockd letters f s r p a u, x, n, i)

Hits with exact flags, and every TCP hit under --raw, are built whole and sent through a
raw socket. That needs root or CAP_NET_RAW on Linux (once: sudo setcap cap_net_raw+ep
$(command -v knock)), root on macOS and FreeBSD, and is not possible on Windows, which
sends no TCP through raw sockets. Everything else needs no privileges anywhere, and a lone
`syn` flag goes out through an ordinary connect when raw sockets are not available.

Exit status: 0 every hit was sent, 1 a lookup or send failed, 2 usage error, bad hit, or a
hit that needs privileges this run does not have (nothing is sent then)."
)]
pub(crate) struct KnockArgs {
    #[command(flatten)]
    pub send: SendFlags,

    #[command(flatten)]
    pub source: SourcePort,

    /// Print each hit as it is sent
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Draw no progress bar (one is drawn only when stderr is a terminal)
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the hits that would be sent, and send nothing (HOST is still resolved; a hit
    /// a real run would refuse gets a note on stderr)
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run, print one JSON object instead of text
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Host name or address to knock on
    #[arg(value_name = "HOST", value_parser = host)]
    pub host: String,

    /// Hits to send, in order
    #[arg(value_name = "HIT", required = true, allow_negative_numbers = true)]
    pub hits: Vec<String>,
}

/// How the hits go out: the options `knock`, `knock profile NAME` and `knock profile save`
/// share, defined once so that their meaning and help cannot drift apart. For a profile,
/// each one given wins over the profile's value; `save` stores the ones given.
#[derive(Debug, Default, Args)]
pub(crate) struct SendFlags {
    /// Send bare PORT hits as UDP (an explicit PORT:tcp stays TCP)
    #[arg(short = 'u', long)]
    pub udp: bool,

    // The help names the default from its constant.
    #[arg(
        short = 'd',
        long,
        value_name = "MS",
        help = format!(
            "Wait MS milliseconds between hits, not after the last one \
             [default: a profile's delay_ms, else {DEFAULT_DELAY_MS}]"
        )
    )]
    pub delay: Option<u64>,

    /// Use the host's IPv4 address
    #[arg(short = '4', long, conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Use the host's IPv6 address
    #[arg(short = '6', long)]
    pub ipv6: bool,

    /// Send TCP hits without flags through a raw socket too, as bare SYNs (needs
    /// privileges; `knock --help` says which)
    #[arg(long)]
    pub raw: bool,
}

impl SendFlags {
    /// The family `-4` or `-6` asks for, `None` when neither is given (clap refuses both).
    pub(crate) fn family(&self) -> Option<Family> {
        match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::Ipv4),
            (_, true) => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// Whether none of these options was given.
    pub(crate) fn is_empty(&self) -> bool {
        let SendFlags {
            udp,
            delay,
            ipv4,
            ipv6,
            raw,
        } = self;
        delay.is_none() && ![udp, ipv4, ipv6, raw].iter().any(|&&b| b)
    }
}

/// `--source-port`, for the commands that send now (`knock`, `knock profile NAME`); a
/// profile does not keep one, so `save` does not take it.
#[derive(Debug, Default, Args)]
pub(crate) struct SourcePort {
    /// Send every hit from this source port (default: a random port per raw hit, an
    /// ephemeral one per plain hit)
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub source_port: Option<u16>,
}

/// Refuses a reserved word as HOST, wherever on the line it stands.
fn host(s: &str) -> Result<String, String> {
    if RESERVED.contains(&s) {
        return Err(reserved_message(s));
    }
    Ok(s.to_string())
}

/// Why a reserved word cannot be used here, and the way round it.
pub(crate) fn reserved_message(word: &str) -> String {
    format!(
        "{word:?} is reserved for a knock subcommand and cannot be a HOST; \
         give the host's full domain name or its address"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(line: &[&str]) -> Result<KnockArgs, clap::Error> {
        KnockArgs::try_parse_from(std::iter::once("knock").chain(line.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        KnockArgs::command().debug_assert();
    }

    #[test]
    fn accepted_lines() {
        let a = parse(&["host", "7000"]).unwrap();
        assert_eq!(a.host, "host");
        assert_eq!(a.hits, ["7000"]);
        assert!(a.send.is_empty() && a.send.family().is_none());
        assert!(!a.verbose && !a.dry_run && !a.json);
        assert_eq!(a.send.delay, None);
        assert_eq!(a.source.source_port, None);

        let a = parse(&["-u", "-d", "250", "-4", "-v", "h", "1,2", "3:tcp"]).unwrap();
        assert!(a.send.udp && a.send.ipv4 && a.verbose);
        assert_eq!(a.send.family(), Some(Family::Ipv4));
        assert_eq!(a.send.delay, Some(250));
        assert_eq!(a.hits, ["1,2", "3:tcp"]);

        let a = parse(&["--udp", "--delay=5", "--ipv6", "--verbose", "h", "1"]).unwrap();
        assert!(a.send.udp && a.send.ipv6 && a.verbose);
        assert_eq!(a.send.family(), Some(Family::Ipv6));
        assert_eq!(a.send.delay, Some(5));

        // knock(1) uses getopt, which also takes options after the operands.
        let a = parse(&["h", "1", "-v", "-d100"]).unwrap();
        assert!(a.verbose);
        assert_eq!(a.send.delay, Some(100));

        let a = parse(&["--dry-run", "--json", "h", "1"]).unwrap();
        assert!(a.dry_run && a.json);

        let a = parse(&["--raw", "--source-port", "40000", "h", "1"]).unwrap();
        assert!(a.send.raw && !a.send.is_empty());
        assert_eq!(a.source.source_port, Some(40000));
        let a = parse(&["h", "1", "--source-port=1", "--raw"]).unwrap();
        assert!(a.send.raw);
        assert_eq!(a.source.source_port, Some(1));
        assert_eq!(
            parse(&["--source-port", "65535", "h", "1"])
                .unwrap()
                .source
                .source_port,
            Some(65535)
        );

        // A negative port reaches the hit grammar, which names it, instead of clap.
        assert_eq!(parse(&["h", "-1"]).unwrap().hits, ["-1"]);
        // After `--` a reserved word still cannot be a host.
        let err = parse(&["--", "profile", "1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains(&reserved_message("profile")),
            "{err}"
        );
    }

    #[test]
    fn dash_4_and_dash_6_choose_the_family() {
        let family = |ipv4, ipv6| {
            SendFlags {
                ipv4,
                ipv6,
                ..SendFlags::default()
            }
            .family()
        };
        assert_eq!(family(false, false), None);
        assert_eq!(family(true, false), Some(Family::Ipv4));
        assert_eq!(family(false, true), Some(Family::Ipv6));
    }

    #[test]
    fn rejected_lines() {
        let table: &[(&[&str], ErrorKind, &str)] = &[
            (
                &[],
                ErrorKind::MissingRequiredArgument,
                "the following required arguments were not provided",
            ),
            (&["host"], ErrorKind::MissingRequiredArgument, "<HIT>..."),
            (
                &["-4", "-6", "h", "1"],
                ErrorKind::ArgumentConflict,
                "the argument '--ipv4' cannot be used with '--ipv6'",
            ),
            (
                &["--json", "h", "1"],
                ErrorKind::MissingRequiredArgument,
                "--dry-run",
            ),
            (
                &["-d", "soon", "h", "1"],
                ErrorKind::ValueValidation,
                "invalid value 'soon' for '--delay <MS>'",
            ),
            (
                &["-d", "-5", "h", "1"],
                ErrorKind::UnknownArgument,
                "unexpected argument '-5'",
            ),
            (
                &["--source-port", "0", "h", "1"],
                ErrorKind::ValueValidation,
                "invalid value '0' for '--source-port <PORT>': 0 is not in 1..=65535",
            ),
            (
                &["--source-port", "65536", "h", "1"],
                ErrorKind::ValueValidation,
                "invalid value '65536' for '--source-port <PORT>': 65536 is not in 1..=65535",
            ),
            (
                &["--source-port", "http", "h", "1"],
                ErrorKind::ValueValidation,
                "invalid value 'http' for '--source-port <PORT>'",
            ),
            (
                &["h", "1", "--source-port"],
                ErrorKind::InvalidValue,
                "a value is required for '--source-port <PORT>' but none was supplied",
            ),
            (
                &["-x", "h", "1"],
                ErrorKind::UnknownArgument,
                "unexpected argument '-x'",
            ),
            (
                &["-v", "profile", "1"],
                ErrorKind::ValueValidation,
                "\"profile\" is reserved for a knock subcommand and cannot be a HOST",
            ),
            (
                &["-4", "keygen", "1"],
                ErrorKind::ValueValidation,
                "\"keygen\" is reserved",
            ),
        ];
        crate::tests::assert_rejected(table, parse);
    }

    #[test]
    fn help_and_version_exit_zero() {
        for flag in ["-h", "--help", "-V", "--version"] {
            let err = parse(&[flag]).unwrap_err();
            assert_eq!(err.exit_code(), 0, "{flag}");
            assert!(!err.use_stderr(), "{flag} prints to stdout");
        }
        let help = parse(&["--help"]).unwrap_err().to_string();
        for line in [
            "Usage: knock [OPTIONS] <HOST> <HIT>...",
            "-u, --udp",
            "-d, --delay <MS>",
            "-4, --ipv4",
            "-6, --ipv6",
            "-v, --verbose",
            "--dry-run",
            "--json",
            "--raw",
            "--source-port <PORT>",
            "-V, --version",
            "PORT:tcp:FLAGS",
            "root or CAP_NET_RAW on Linux",
            "sends no TCP through raw sockets",
        ] {
            assert!(help.contains(line), "help lacks {line:?}:\n{help}");
        }
        let version = parse(&["-V"]).unwrap_err().to_string();
        assert_eq!(version, format!("knock {}\n", env!("CARGO_PKG_VERSION")));
    }
}
