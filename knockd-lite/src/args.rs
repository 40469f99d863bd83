//! Command-line flags: knockd's own set, plus `--check`, `--list-interfaces`, the limits on
//! attempts (`--max-attempts`, `--first-step-memory`) and on door commands.

use std::path::PathBuf;

use clap::Parser;
use knock_core::conf::DEFAULT_INTERFACE;
use knockd_engine::{DEFAULT_FIRST_STEP_MEMORY, DEFAULT_MAX_ATTEMPTS};

use crate::exec;
use crate::serve::gate;

/// knockd's config file.
const DEFAULT_CONFIG: &str = "/etc/knockd.conf";
/// Where state that must survive restarts is kept.
const DEFAULT_STATE_DIR: &str = "/var/lib/knockd-lite";

/// What `--help` says after the options (and the man page, where the exit status becomes
/// its own section).
const AFTER_HELP: &str = "\
Privileges: capturing needs CAP_NET_RAW; doors with Nft_Set or Nft_Set_6 need CAP_NET_ADMIN
(they add the knocker to an nftables set themselves, over netlink). Run as root, or grant
both capabilities; door commands need whatever their own programs need (iptables: root).

Signals: SIGHUP re-reads the config, its one-time lists and secrets and the interface's
addresses, and reopens the log file (a broken config leaves the running one in place);
SIGTERM and SIGINT run the pending stop commands, take out the nftables set elements this
process added, and exit.

Exit status: 0 after SIGTERM or SIGINT (or --check on a good config), 1 a runtime failure
(no such interface, no capture, a live instance holds the pidfile), 2 a bad option or a bad
config.";

/// A knockd-compatible port-knock server: reads knockd.conf, captures at the link layer,
/// matches knocks with knockd's semantics (and without its bugs) and runs the door's commands.
#[derive(Clone, Debug, PartialEq, Eq, Parser)]
#[command(
    name = "knockd-lite",
    version,
    after_help = AFTER_HELP
)]
pub(crate) struct Args {
    // The help names the config's default interface.
    #[arg(
        short,
        long,
        value_name = "IF",
        help = format!("Interface to listen on (default: the config's Interface, else {DEFAULT_INTERFACE})")
    )]
    pub(crate) interface: Option<String>,

    /// Become a daemon: detach and write the pidfile.
    #[arg(short, long)]
    pub(crate) daemon: bool,

    /// Configuration file.
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) config: PathBuf,

    /// Output debugging messages (a line per packet).
    #[arg(short = 'D', long)]
    pub(crate) debug: bool,

    /// Look up DNS names for log lines (never for commands; may be a security risk).
    #[arg(short, long)]
    pub(crate) lookup: bool,

    /// Pidfile to use in daemon mode (default: the config's PidFile).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) pidfile: Option<PathBuf>,

    /// Log file (default: the config's LogFile).
    #[arg(short = 'g', long, value_name = "FILE")]
    pub(crate) logfile: Option<PathBuf>,

    /// Output verbose status messages.
    #[arg(short, long)]
    pub(crate) verbose: bool,

    /// Ignore IPv6 packets and handle only IPv4.
    #[arg(short = '4', long = "only-ip-v4")]
    pub(crate) only_ipv4: bool,

    /// Validate the configuration, print every door and the capture filter, and exit
    /// (`-C` as in tportknockd).
    #[arg(short = 'C', long)]
    pub(crate) check: bool,

    /// With --check: list the live ports of HMAC doors in the capture filter too. Each live
    /// sequence opens its door, for anyone, until its window moves on: never paste them.
    #[arg(long, requires = "check")]
    pub(crate) show_hmac_ports: bool,

    /// List the interfaces that can be captured on, and exit.
    #[arg(long)]
    pub(crate) list_interfaces: bool,

    /// Cap on knock attempts kept exactly. At the cap, the oldest attempt still at its first
    /// step moves to the first-step filter (see --first-step-memory); attempts further
    /// along are evicted only when none is left.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_ATTEMPTS,
        value_parser = parse_max_attempts
    )]
    pub(crate) max_attempts: usize,

    /// Memory for first steps beyond --max-attempts, in MiB: a time-sliced Bloom filter in
    /// which no spoofed flood can push out a knock's first step (it only raises the
    /// false-positive rate). 0 turns it off: the oldest first step is then forgotten.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = (DEFAULT_FIRST_STEP_MEMORY >> 20) as u64,
        value_parser = clap::value_parser!(u64).range(0..=1024)
    )]
    pub(crate) first_step_memory: u64,

    /// Door commands running at once, at most. Beyond it start commands wait in a queue of
    /// 64 (then are dropped); stop commands always run. Queued and dropped starts are
    /// logged once a second with their counts.
    #[arg(
        long,
        value_name = "N",
        default_value_t = gate::DEFAULT_MAX_COMMANDS,
        value_parser = parse_max_attempts
    )]
    pub(crate) max_commands: usize,

    /// Start commands each door runs per second at most, and in a burst after a quiet
    /// spell; beyond it they are dropped and logged once a second (0: no limit). Stop
    /// commands always run.
    #[arg(long, value_name = "N", default_value_t = gate::DEFAULT_DOOR_RATE)]
    pub(crate) door_rate: u32,

    /// Kill a door command (and its process group) still running after this many seconds
    /// (1 to 86400).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = exec::DEFAULT_LIMIT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=exec::MAX_LIMIT_SECS)
    )]
    pub(crate) command_limit: u64,

    /// Folder for state that must survive restarts: the used HMAC counters, in
    /// DIR/<config file name>.<digest of its path>.hmac-used (only written when the config
    /// has HMAC doors), the stop commands still due, in DIR/<config file
    /// name>.<digest>.stops, and the pid of the stop keeper (the process that runs them
    /// on time should knockd-lite die), in DIR/<config file name>.<digest>.keeper.
    // This doc is the --help text, where <...> is a placeholder, not an HTML tag.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub(crate) state_dir: PathBuf,

    /// Run as one process, as knockd does, parsing packets with the server's privileges.
    /// By default a separate worker process reads the packets and the server only carries
    /// out the completions it reports (docs/knockd-lite-sandbox.md); this is for kernels or
    /// containers where that cannot run. Logged as a warning at start-up.
    #[arg(long)]
    pub(crate) no_sandbox: bool,

    /// The user the sandboxed worker runs as (default: knockd-lite if that user exists,
    /// else nobody). Never root.
    #[arg(long, value_name = "NAME", conflicts_with = "no_sandbox")]
    pub(crate) user: Option<String>,
}

/// A whole number of at least 1 (--max-attempts, --max-commands).
fn parse_max_attempts(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("knockd-lite").chain(args.iter().copied()))
    }

    #[test]
    fn knockd_flags() {
        let a = parse(&[
            "-i",
            "ks0",
            "-d",
            "-c",
            "/tmp/k.conf",
            "-D",
            "-l",
            "-p",
            "/run/k.pid",
            "-g",
            "/tmp/k.log",
            "-v",
            "-4",
        ])
        .unwrap();
        assert_eq!(a.interface.as_deref(), Some("ks0"));
        assert!(a.daemon && a.debug && a.lookup && a.verbose && a.only_ipv4);
        assert_eq!(a.config, PathBuf::from("/tmp/k.conf"));
        assert_eq!(a.pidfile, Some(PathBuf::from("/run/k.pid")));
        assert_eq!(a.logfile, Some(PathBuf::from("/tmp/k.log")));
        let long = parse(&[
            "--interface=ks0",
            "--daemon",
            "--config",
            "/tmp/k.conf",
            "--debug",
            "--lookup",
            "--pidfile",
            "/run/k.pid",
            "--logfile",
            "/tmp/k.log",
            "--verbose",
            "--only-ip-v4",
        ])
        .unwrap();
        assert_eq!(a, long);
    }

    #[test]
    fn defaults_and_additions() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.config, PathBuf::from("/etc/knockd.conf"));
        assert_eq!(a.max_attempts, 20_000);
        assert_eq!(a.first_step_memory, 8);
        assert_eq!(a.command_limit, 300);
        assert_eq!((a.max_commands, a.door_rate), (16, 20));
        assert_eq!(a.state_dir, PathBuf::from("/var/lib/knockd-lite"));
        assert!(!a.check && !a.list_interfaces && !a.daemon);
        let a = parse(&[
            "--check",
            "--list-interfaces",
            "--max-attempts",
            "5000",
            "--first-step-memory",
            "0",
            "--command-limit",
            "20",
            "--max-commands",
            "2",
            "--door-rate",
            "0",
            "--state-dir",
            "/tmp/st",
        ])
        .unwrap();
        assert!(a.check && a.list_interfaces);
        assert_eq!(a.max_attempts, 5000);
        assert_eq!(a.first_step_memory, 0);
        assert!(
            parse(&["-C", "-c", "/tmp/k.conf"]).unwrap().check,
            "tportknockd's -C"
        );
        assert_eq!(a.command_limit, 20);
        assert_eq!((a.max_commands, a.door_rate), (2, 0));
        assert_eq!(a.state_dir, PathBuf::from("/tmp/st"));
    }

    #[test]
    fn help_shows_the_defaults_the_code_uses() {
        use clap::CommandFactory;
        let help = Args::command().render_help().to_string();
        for want in [
            "the config's Interface, else eth0)",
            "[default: /etc/knockd.conf]",
            "[default: 20000]",
            "[default: 8]",
            "[default: 300]",
            "[default: 16]",
            "[default: 20]",
            "[default: /var/lib/knockd-lite]",
            "need CAP_NET_ADMIN",
        ] {
            assert!(help.contains(want), "{want:?} in\n{help}");
        }
    }

    #[test]
    fn errors_help_and_version() {
        assert_eq!(
            parse(&["-x"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(parse(&["-c"]).unwrap_err().kind(), ErrorKind::InvalidValue);
        assert_eq!(
            parse(&["--max-attempts", "0"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        for limit in ["0", "86401", "18446744073709551615", "-1"] {
            let err = parse(&["--command-limit", limit]).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::ValueValidation | ErrorKind::UnknownArgument
                ),
                "{limit}: {err}"
            );
        }
        assert_eq!(
            parse(&["--command-limit", "86400"]).unwrap().command_limit,
            86_400
        );
        assert_eq!(
            parse(&["--first-step-memory", "1025"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse(&["--max-commands", "0"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(parse(&["-h"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
        assert_eq!(
            parse(&["-V"]).unwrap_err().kind(),
            ErrorKind::DisplayVersion
        );
    }

    #[test]
    fn the_sandbox_is_the_default_and_its_user_excludes_no_sandbox() {
        let a = parse(&[]).unwrap();
        assert!(!a.no_sandbox && a.user.is_none());
        assert_eq!(
            parse(&["--user", "knockd-lite"]).unwrap().user.as_deref(),
            Some("knockd-lite")
        );
        assert!(parse(&["--no-sandbox"]).unwrap().no_sandbox);
        assert_eq!(
            parse(&["--no-sandbox", "--user", "nobody"])
                .unwrap_err()
                .kind(),
            ErrorKind::ArgumentConflict
        );
    }
}
