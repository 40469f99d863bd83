//! The command line's syntax (clap derive): what the user wrote, before anything is
//! looked up. [`crate::plan`] turns it into what to do.

use std::net::Ipv4Addr;

use clap::{Args, CommandFactory, Parser};
use knock_core::hit::{Hit, HitError, Proto, parse_sequence};
use knock_core::profile::{DEFAULT_DELAY_MS, Family};

use crate::connect::ConnectFlags;
use crate::connect::flags::with_wait_help;

/// First words that are subcommands (`knock profile ...`, `knock help`). None of them can
/// be a HOST, so a subcommand never changes what a working command line does.
pub(crate) const RESERVED: [&str; 4] = ["profile", "otp", "keygen", "help"];

/// The whole command tree: `knock [OPTIONS] HOST HIT...` with the subcommands `profile`,
/// `otp`, `keygen` and `help`, each with its own options and help. `knock --help`, `knock
/// help [COMMAND...]` and `knock COMMAND help` print from it, and it is what man pages and
/// shell completions are generated from, so every word of help lives in these definitions.
pub fn command() -> clap::Command {
    KnockArgs::command()
        .subcommand(crate::profile::ProfileArgs::command())
        .subcommand(crate::otp::OtpArgs::command())
        .subcommand(crate::keygen::KeygenArgs::command())
        .subcommand_value_name("COMMAND")
        .subcommand_help_heading("Commands")
        .args_conflicts_with_subcommands(true)
        .subcommand_negates_reqs(true)
        .override_usage(
            "knock [OPTIONS] <HOST> <HIT>...\n       knock <COMMAND> [OPTIONS] [ARGS]...",
        )
}

/// Knock on a host's ports: one TCP SYN or UDP datagram per hit, in order.
///
/// A drop-in replacement for knock(1): the same command lines send the same packets. HOST
/// is resolved once and every hit goes to that one address; every hit is checked before
/// the first is sent.
#[derive(Debug, Parser)]
#[command(
    name = "knock",
    // The same name in usage lines on every system, not argv[0] (`knock.exe` on Windows).
    bin_name = "knock",
    version,
    after_help = with_wait_help(KNOCK_AFTER_HELP)
)]
pub(crate) struct KnockArgs {
    #[command(flatten)]
    pub send: SendFlags,

    #[command(flatten)]
    pub source: SourcePort,

    #[command(flatten)]
    pub connect: ConnectFlags,

    /// Print each hit as it is sent
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Draw no progress bar and leave no `knocked` line (a bar is drawn only when stderr
    /// is a terminal)
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print the hits that would be sent, and send nothing (HOST is still resolved; a hit
    /// a real run would refuse gets a note on stderr)
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run, print one JSON object instead of text: host, address, delay_ms, and
    /// per hit port, proto, flags, raw (sent through a raw socket) and refused (why a real
    /// run would refuse it, or null)
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Host name or address to knock on (IPv6 with a zone: fe80::1%eth0)
    #[arg(value_name = "HOST", value_parser = host, value_hint = clap::ValueHint::Hostname)]
    pub host: String,

    /// Hits to send, in order (forms below)
    // No negative numbers: `-4` and `-6` after the hits are options, as knock(1)'s getopt
    // reads them. A negative port is named by the hit grammar (see `negative_hit`).
    #[arg(value_name = "HIT", required = true)]
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

    // The help names the default from its constant. A negative value reaches the parser,
    // which says what is wrong, instead of clap's advice to write `-- -5`.
    #[arg(
        short = 'd',
        long,
        value_name = "MS",
        allow_negative_numbers = true,
        value_parser = delay_ms,
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
    /// ephemeral one per plain hit); a port this run may not bind (below 1024 without
    /// privileges) is refused before anything is sent
    #[arg(
        long,
        value_name = "PORT",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub source_port: Option<u16>,
}

/// What `knock --help` says after the options.
const KNOCK_AFTER_HELP: &str = "\
HIT forms (each HIT may also be a comma-separated list of them):
  PORT[:PROTO]          7000, 8000:udp (PROTO is tcp or udp; default tcp, udp under -u)
  PORT:tcp:FLAGS        7000:tcp:fin+psh: exact TCP flags fin syn rst psh ack urg ece cwr
                        joined by +, or none (no flag set), or any (flags ignored: sent as
                        a plain SYN; a knockd-lite door accepts any flags there)
  PROTO:PORT[:LETTERS]  tcp:110:up (tportknockd letters f s r p a u, x all six, n none,
                        i ignored)

A PORT may also be a service name, looked up as knock(1) looks it up: ssh, http:udp,
www:tcp:fin. The name's entry for the hit's protocol in the system's services database
(/etc/services; on Windows %SystemRoot%\\System32\\drivers\\etc\\services) gives the port,
else its entry for any protocol (-u ssh is UDP to 22). -v and --dry-run show the number.

Options may come anywhere, before, between or after HOST and the hits, as knock(1) takes
them; `--` ends the options.

HOST comes first. A HOST that reads as a hit (7000, 7000,8000, 8000:udp) is refused as a
missing HOST (exit 2), since `knock 7000 8000` would otherwise knock the address 0.0.27.88.
To knock an address, write it in full: four numbers 0-255 joined by dots, or IPv6. A
link-local IPv6 address takes its zone, fe80::1%eth0 (or [fe80::1%eth0]), which every hit
is sent on and every listing shows.

Hits with exact flags, and every TCP hit under --raw, are built whole and sent through a
raw socket. That needs root or CAP_NET_RAW on Linux (once: sudo setcap cap_net_raw+ep
$(command -v knock)), root on macOS and FreeBSD, and is not possible on Windows, which
sends no TCP through raw sockets. Everything else needs no privileges anywhere, and a lone
`syn` flag goes out through an ordinary connect when raw sockets are not available.

On a terminal, a progress bar on stderr counts the hits and each delay down; once the
knock went out whole it is replaced by one line (knocked 192.0.2.2: 3 hits). -q and -v
draw no bar and leave no line, and nothing is drawn when stderr is not a terminal.

Ctrl-C stops a knock between two hits: the bar is erased, `knock: interrupted after hit 1
of 3` says how far it got, and the exit status is 130.

Exit status: 0 every hit was sent (and the port of --wait or --proxy accepted), 1 a lookup
or send failed, the port never accepted, or the relay failed, 2 usage error, bad hit, or a
hit or --source-port that needs privileges this run does not have (nothing is sent then),
130 interrupted by Ctrl-C.

`knock help COMMAND` (or `knock COMMAND --help`) describes each command.";

/// Checks the HOST operand, wherever on the line it stands: not a reserved word, and a
/// [`host_value`].
fn host(s: &str) -> Result<String, String> {
    if RESERVED.contains(&s) {
        return Err(reserved_message(s));
    }
    host_value(s)
}

/// Checks a host as written (`HOST`, `--host HOST`): not empty, and not a hit standing
/// where the host belongs.
pub(crate) fn host_value(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("HOST is empty".into());
    }
    if let Some(why) = looks_like_a_hit(s) {
        return Err(why);
    }
    Ok(s.to_string())
}

/// Why `s` cannot be a HOST because it reads as a hit (`knock 7000 8000`, where the host
/// was forgotten); `None` for anything that may name a host. A name is never all digits
/// (no top-level domain is), so the only host such a word could mean is the address the
/// resolver makes of a bare number (7000 is 0.0.27.88), which nobody means to knock.
fn looks_like_a_hit(s: &str) -> Option<String> {
    if s.parse::<std::net::IpAddr>().is_ok() || parse_sequence(s, Proto::Tcp).is_err() {
        return None;
    }
    let (what, address) = match s.parse::<u32>() {
        Ok(n) => (
            "a port",
            format!(" (to knock the address {}, write it so)", Ipv4Addr::from(n)),
        ),
        Err(_) => ("a hit", String::new()),
    };
    Some(format!(
        "{s:?} looks like {what}, not a host: HOST comes first, as in \
         `knock HOST {s} ...`{address}"
    ))
}

/// `-d MS`: milliseconds, 0 or more.
fn delay_ms(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| {
        if s.strip_prefix('-')
            .is_some_and(|n| n.parse::<u64>().is_ok())
        {
            "the delay cannot be negative (milliseconds, 0 or more)".to_string()
        } else {
            "give the delay in milliseconds, a whole number 0 or more".to_string()
        }
    })
}

/// A negative port on a command line that takes hits (`knock HOST -1`): clap reads `-1` as
/// an unknown option, since `-4` and `-6` after the hits are options. This finds the word
/// and names it the way the hit grammar does, instead of clap's advice to write `-- -1`.
pub(crate) fn negative_hit(err: &clap::Error, args: &[std::ffi::OsString]) -> Option<HitError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(unknown)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let is_negative = |w: &str| {
        w.strip_prefix('-')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    if !is_negative(unknown) {
        return None;
    }
    let word = args
        .iter()
        .filter_map(|a| a.to_str())
        .take_while(|a| *a != "--")
        .find(|a| is_negative(a) && a.starts_with(unknown.as_str()))?;
    Hit::parse(word, Proto::Tcp).err()
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
    use clap::FromArgMatches;
    use clap::error::ErrorKind;

    /// Parses as `knock` does: with the whole tree, knock's own arguments from it.
    fn parse(line: &[&str]) -> Result<KnockArgs, clap::Error> {
        command()
            .try_get_matches_from(std::iter::once("knock").chain(line.iter().copied()))
            .and_then(|m| KnockArgs::from_arg_matches(&m))
    }

    fn argv(line: &[&str]) -> Vec<std::ffi::OsString> {
        std::iter::once("knock")
            .chain(line.iter().copied())
            .map(Into::into)
            .collect()
    }

    #[test]
    fn definition_is_consistent() {
        KnockArgs::command().debug_assert();
        command().debug_assert();
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

        // Options after the hits, as knock(1)'s getopt takes them: -4 and -6 are options,
        // not negative ports, and `--` ends the options.
        let a = parse(&["h", "7000", "-4"]).unwrap();
        assert!(a.send.ipv4);
        assert_eq!(a.hits, ["7000"]);
        let a = parse(&["h", "7000", "8000", "-6", "-v", "-d", "100", "-u"]).unwrap();
        assert!(a.send.ipv6 && a.verbose && a.send.udp);
        assert_eq!((a.hits.len(), a.send.delay), (2, Some(100)));
        let a = parse(&["h", "7000", "--dry-run", "8000", "--json"]).unwrap();
        assert!(a.dry_run && a.json);
        assert_eq!(a.hits, ["7000", "8000"]);
        let a = parse(&["-v", "--", "h", "-1", "-4"]).unwrap();
        assert!(a.verbose && !a.send.ipv4);
        assert_eq!(a.hits, ["-1", "-4"]);
        // After `--` a reserved word still cannot be a host.
        let err = parse(&["--", "profile", "1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains(&reserved_message("profile")),
            "{err}"
        );
    }

    /// Every help text stands alone: an installed knock has no docs/ folder or README.
    #[test]
    fn no_help_sends_the_reader_to_a_file_they_do_not_have() {
        fn walk(cmd: &mut clap::Command, path: &str, seen: &mut usize) {
            for long in [true, false] {
                let help = if long {
                    cmd.render_long_help()
                } else {
                    cmd.render_help()
                }
                .to_string();
                for word in ["docs/", "README", ".md"] {
                    assert!(!help.contains(word), "{path} help mentions {word}:\n{help}");
                }
            }
            *seen += 1;
            for sub in cmd.get_subcommands_mut() {
                let path = format!("{path} {}", sub.get_name());
                walk(sub, &path, seen);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut seen = 0;
        walk(&mut cmd, "knock", &mut seen);
        // knock, profile and its six, otp and its two, keygen, help.
        assert!(seen >= 12, "{seen}");
    }

    #[test]
    fn a_negative_port_is_named_as_the_grammar_names_it() {
        let table: &[(&[&str], Option<&str>)] = &[
            (
                &["h", "-1"],
                Some(r#"bad hit "-1": port -1 is negative (expected 1-65535)"#),
            ),
            // clap stops at the first unknown character of `-15`; the word is found whole.
            (
                &["h", "7000", "-15", "-v"],
                Some(r#"bad hit "-15": port -15 is negative (expected 1-65535)"#),
            ),
            // An unknown option that is not a number stays clap's error.
            (&["h", "1", "-x"], None),
        ];
        for (line, want) in table {
            let err = parse(line).unwrap_err();
            let got = negative_hit(&err, &argv(line)).map(|e| e.to_string());
            assert_eq!(got.as_deref(), *want, "{line:?}");
        }
        // Addresses and names are hosts, whatever digits they hold.
        for host in [
            "0.0.27.88",
            "192.0.2.2",
            "2001:db8::2",
            "::1",
            "h7000",
            "7000.example",
        ] {
            assert_eq!(parse(&[host, "1"]).unwrap().host, *host);
        }
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
                ErrorKind::ValueValidation,
                "invalid value '-5' for '--delay <MS>': the delay cannot be negative \
                 (milliseconds, 0 or more)",
            ),
            (
                &["h", "1", "--delay=-1"],
                ErrorKind::ValueValidation,
                "the delay cannot be negative",
            ),
            (
                &["-d", "1.5", "h", "1"],
                ErrorKind::ValueValidation,
                "give the delay in milliseconds, a whole number 0 or more",
            ),
            (
                &["--source-port", "-1", "h", "1"],
                ErrorKind::ValueValidation,
                "invalid value '-1' for '--source-port <PORT>': -1 is not in 1..=65535",
            ),
            (
                &["7000", "8000"],
                ErrorKind::ValueValidation,
                "invalid value '7000' for '<HOST>': \"7000\" looks like a port, not a host: \
                 HOST comes first, as in `knock HOST 7000 ...` (to knock the address \
                 0.0.27.88, write it so)",
            ),
            (
                &["7000"],
                ErrorKind::ValueValidation,
                "\"7000\" looks like a port, not a host",
            ),
            (
                &["-v", "7000,8000:udp", "9000"],
                ErrorKind::ValueValidation,
                "\"7000,8000:udp\" looks like a hit, not a host: HOST comes first, as in \
                 `knock HOST 7000,8000:udp ...`\n",
            ),
            (
                &["tcp:110:up", "1"],
                ErrorKind::ValueValidation,
                "\"tcp:110:up\" looks like a hit",
            ),
            (&["", "1"], ErrorKind::ValueValidation, "HOST is empty"),
            (&[" ", "1"], ErrorKind::ValueValidation, "HOST is empty"),
            (
                &["--", "help", "1"],
                ErrorKind::ValueValidation,
                "\"help\" is reserved",
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
            "--wait <PORT>",
            "--proxy <PORT>",
            "--no-wait",
            "--wait-timeout <SECONDS>",
            "[default: 10]",
            "--retries <N>",
            "[default: 2]",
            "Tries start 0, 20, 50, 100, 200, 400, 800 and 1600 ms after a knock",
            "ProxyCommand knock profile %n --proxy %p",
            "-V, --version",
            "PORT:tcp:FLAGS",
            "root or CAP_NET_RAW on Linux",
            "sends no TCP through raw sockets",
            // Every subcommand, with one line each.
            "Usage: knock [OPTIONS] <HOST> <HIT>...\n       knock <COMMAND>",
            "\n  profile  Knock from a saved profile, or manage profiles\n",
            "\n  otp      One-time sequence lists\n",
            "\n  keygen   Make a new knock-hmac-v1 secret",
            "\n  help     Print this message or the help of the given subcommand(s)\n",
            "Options may come anywhere",
            "A HOST that reads as a hit",
            "or any (flags ignored",
        ] {
            assert!(help.contains(line), "help lacks {line:?}:\n{help}");
        }
        // The short help lists the subcommands too.
        let short = parse(&["-h"]).unwrap_err().to_string();
        assert!(short.contains("\n  profile  "), "{short}");
        let version = parse(&["-V"]).unwrap_err().to_string();
        assert_eq!(version, format!("knock {}\n", env!("CARGO_PKG_VERSION")));
    }
}
