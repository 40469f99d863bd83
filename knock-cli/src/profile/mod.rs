//! `knock profile`: knocking from a saved profile, and the subcommands that manage them
//! (`list`, `show`, `save`, `remove`, `import`).
//!
//! The syntax is here; [`knock_from`] knocks from a profile of any kind, [`manage`] does the
//! rest. Profiles live in the directory `--profiles DIR` or `KNOCK_PROFILES` names, else
//! in `<config dir>/knock/profiles`; `knock profile --help` describes the format.

mod hmac_used;
mod import;
mod knock_from;
mod manage;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use knock_core::profile::Overrides;
use knock_core::profile::store::{self, Store, StoreError};

use crate::args::{SendFlags, SourcePort};
use crate::connect::ConnectFlags;
use crate::connect::flags::with_wait_help;
use crate::{Ctx, Failure};

/// The end of `knock profile -h`: where profiles are, and the way to the whole story.
const PROFILE_AFTER_HELP: &str = "\
Profiles are NAME.toml files in the profile directory: --profiles DIR, else $KNOCK_PROFILES,
else <config dir>/knock/profiles (~/.config on Linux and FreeBSD, ~/Library/Application
Support on macOS, %APPDATA% on Windows). `knock profile --help` describes every key.

Exit status: 0 done, 1 a lookup, send or file operation failed, the port of --wait,
--proxy or open_port never accepted, or the relay failed, 2 usage error, bad or missing
profile, a one-time list that is used up or has a bad line, a secret that cannot be used,
or a hit or --source-port that needs privileges this run does not have (nothing is sent
then), 130 interrupted by Ctrl-C (a one-time line is then left unused).";

/// The end of `knock profile --help`, `knock help profile` and the man page: the whole
/// profile format, so an installed `knock` needs no other document.
const PROFILE_AFTER_LONG_HELP: &str = "\
WHERE PROFILES LIVE
Profile NAME is the file NAME.toml in the profile directory, the first of: --profiles DIR
(anywhere on a `knock profile` line, or before `profile`); $KNOCK_PROFILES (ignored when
empty); <config dir>/knock/profiles, where <config dir> is $XDG_CONFIG_HOME or ~/.config on
Linux and FreeBSD, ~/Library/Application Support on macOS, and %APPDATA% on Windows. A name
may not be empty, contain / or \\ or control characters or any of < > : \" | ? *, or start
with a dot; list, show, save, remove, import and help (in any case) are subcommands and
cannot name a profile. knock writes profiles with mode 0600 (a new directory 0700),
atomically, and replaces one only with --force.

KEYS
Unknown keys are errors, and every error names the file and line. A profile has exactly
one of sequence, one_time_sequences and [hmac]; that is its kind.
  description = \"SSH at home\"        shown by `knock profile list`
  host = \"home.example.net\"          name or address to knock on (--host overrides;
                                     required to knock)
  sequence = \"7000,8000:udp,9000\"    hits in the hit grammar of `knock --help`, port
                                     numbers only
  one_time_sequences = \"vpn.otp\"     a one-time list; a relative path is relative to
                                     the profile's directory
  delay_ms = 100                     milliseconds between hits (-d); default 0
  udp = true                         bare ports of sequence are UDP (-u); sequence only
  family = \"ipv4\"                    \"any\" (the resolver's first answer, the
                                     default), \"ipv4\" (-4) or \"ipv6\" (-6)
  raw = true                         plain TCP hits go through a raw socket too (--raw)
  open_port = 22                     the TCP port that accepts once the door is open:
                                     knocking waits for it as --wait does (--no-wait
                                     skips that)

[HMAC] TABLE: sequences derived from a secret shared with a knockd-lite door and the clock
(knock-hmac-v1); its values must match the door's HMAC_* directives.
  door = \"ssh\"                       the door's name, the label the sequence is
                                     derived for (required)
  secret_file = \"ssh.secret\"         file whose first line is the secret (relative to
                                     the profile's directory); refused if group or
                                     others can read it, with the chmod that fixes it
  secret_env = \"KNOCK_SSH_SECRET\"    or: the environment variable holding it
  length = 4                         hits per sequence, 1 to 32
  ports = \"1024-65535\"               port pool, at least length ports
  protocols = \"tcp\"                  \"tcp\", \"udp\" or \"mixed\"
  step = 30                          seconds each sequence is valid for
  flags = \"fin+psh\"                  exact TCP flags for TCP hits (names joined by +,
                                     or none); without it, plain SYNs
With neither secret_file nor secret_env, knock asks for the secret without echo when stdin
is a terminal (a console on Windows). The secret is never read from the command line, never
stored in a profile, never printed. A secret file that group or others can read is refused
on Linux, macOS and FreeBSD; Windows has no mode bits, its ACL decides.

A door takes each sequence once. knock keeps the counter it last sent for each HMAC profile
in NAME.hmac-used beside the profile (mode 0600; removed with it), and a second knock inside
the same step waits for the next step, counting down (Ctrl-C stops it), instead of sending
a sequence the door would ignore. --dry-run shows the step as UTC clock times and the
seconds left, and says when a real run would wait.

ONE-TIME LISTS
A one-time list has knockd's format, one sequence per line in the hit grammar; blank lines
and lines starting with # are skipped. Each knock sends the first unused line and then marks
it used as knockd does, with # over its first character, so both ends move through the list
together (generated lines start with a space for that). The list is locked meanwhile; a
failed or interrupted send marks nothing, and with a wait (--wait, --proxy, open_port) a
line is marked only once the port accepted. `knock profile list` and `show` say how many lines
are left. knock otp generate writes a list (and with --save a profile that uses it).

COMMAND LINE OVER PROFILE
Options given with `knock profile NAME` win over the profile's values one by one: --host,
-d, -4/-6, --raw, and -u (sequence profiles only); --at only for [hmac].

MAKING PROFILES
knock profile save NAME HOST HIT... saves a sequence profile from a knock command line
(service names are saved as numbers); knock profile import KNOCKD_CONF makes one per door;
knock keygen --save NAME --host HOST makes an [hmac] profile with a new secret; knock otp
generate ... --save NAME --host HOST a one-time profile with a new list.

Exit status: 0 done, 1 a lookup, send or file operation failed, the port of --wait,
--proxy or open_port never accepted, or the relay failed, 2 usage error, bad or missing
profile, a one-time list that is used up or has a bad line, a secret that cannot be used,
or a hit or --source-port that needs privileges this run does not have (nothing is sent
then), 130 interrupted by Ctrl-C (a one-time line is then left unused).";

/// Knock from a saved profile, or manage profiles.
///
/// `knock profile NAME` knocks as the profile says: a fixed sequence, the next line of a
/// one-time list, or the knock-hmac-v1 sequence of the moment. Options given here win over
/// the profile's values.
#[derive(Debug, Parser)]
#[command(
    name = "profile",
    bin_name = "knock profile",
    subcommand_negates_reqs = true,
    override_usage = "knock profile [OPTIONS] <NAME>\n       knock profile [--profiles <DIR>] <COMMAND>",
    subcommand_value_name = "COMMAND",
    after_help = with_wait_help(PROFILE_AFTER_HELP),
    after_long_help = with_wait_help(PROFILE_AFTER_LONG_HELP)
)]
pub(crate) struct ProfileArgs {
    /// Profile directory [default: $KNOCK_PROFILES, else <config dir>/knock/profiles]
    // This doc is the --help text, where <...> is a placeholder, not an HTML tag.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR", global = true)]
    pub profiles: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<ProfileCommand>,

    #[command(flatten)]
    pub knock: KnockFromProfile,
}

/// `knock profile NAME [OPTIONS]`.
#[derive(Debug, Args)]
pub(crate) struct KnockFromProfile {
    /// The profile to knock from
    #[arg(value_name = "NAME", required = true)]
    pub name: Option<String>,

    /// Knock on HOST instead of the profile's host
    #[arg(long, value_name = "HOST", value_parser = crate::args::host_value, value_hint = clap::ValueHint::Hostname)]
    pub host: Option<String>,

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

    /// Print the hits that would be sent, and send nothing: a one-time line stays unused,
    /// and a hit a real run would refuse gets a note on stderr
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run, print one JSON object instead of text (as knock --help describes)
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// With --dry-run, show an HMAC profile's sequence at this moment instead of now
    #[arg(long, value_name = "UNIX_SECONDS", requires = "dry_run")]
    pub at: Option<u64>,
}

impl KnockFromProfile {
    /// Whether nothing of `knock profile NAME [OPTIONS]` was given (`--profiles` aside).
    fn is_empty(&self) -> bool {
        let KnockFromProfile {
            name,
            host,
            send,
            source: SourcePort { source_port },
            connect,
            verbose,
            quiet,
            dry_run,
            json,
            at,
        } = self;
        name.is_none()
            && host.is_none()
            && send.is_empty()
            && source_port.is_none()
            && connect.is_empty()
            && at.is_none()
            && ![verbose, quiet, dry_run, json].iter().any(|&&b| b)
    }

    /// The options given, to apply over the profile's values.
    pub(crate) fn overrides(&self) -> Overrides {
        Overrides {
            host: self.host.clone(),
            delay_ms: self.send.delay,
            udp: self.send.udp.then_some(true),
            family: self.send.family(),
            raw: self.send.raw.then_some(true),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// List the profiles: name, host, kind and description
    List {
        /// Print only the names, one a line, with no header (for scripts and shell
        /// completion)
        #[arg(long)]
        names: bool,
    },
    /// Show a profile's values (for a secret, only where it comes from)
    Show {
        /// The profile to show
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Save a sequence profile (mode 0600)
    Save(SaveArgs),
    /// Delete a profile (files it points at, lists and secrets, are kept)
    Remove {
        /// The profile to delete
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Make one profile per door of a knockd.conf, named after the door
    #[command(after_help = "\
A Sequence door gets a sequence profile. A One_Time_Sequences door gets a copy of its list,
saved as NAME.otp next to the profiles; knock and the server then each mark their own copy.
An HMAC door gets an [hmac] table with the door's name as the label, its HMAC_* values,
and secret_file set to its HMAC_Secret_File. When a door's TCPFlags would ignore a plain
SYN, the profile's TCP hits carry the flags it asks for.")]
    Import(import::ImportArgs),
}

/// `knock profile save NAME HOST HIT... [OPTIONS]`.
#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// Name of the profile (the file NAME.toml)
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Host name or address to knock on
    #[arg(value_name = "HOST", value_parser = crate::args::host_value, value_hint = clap::ValueHint::Hostname)]
    pub host: String,

    /// Hits, in order, as on the knock command line
    // No negative numbers here, unlike knock's HITs: `-4` and `-6` after the hits are the
    // options, as one would write them at the end of a save line.
    #[arg(value_name = "HIT", required = true)]
    pub hits: Vec<String>,

    #[command(flatten)]
    pub send: SendFlags,

    /// A line shown by `knock profile list`
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// The TCP port that accepts once the door is open: knocking from the profile then
    /// waits for it, as --wait PORT does
    #[arg(long, value_name = "PORT", value_parser = crate::connect::flags::port)]
    pub open_port: Option<u16>,

    /// Replace an existing profile of that name
    #[arg(long)]
    pub force: bool,
}

impl ProfileArgs {
    /// Parses `knock profile ...` (`args[0]` is `profile`). A subcommand takes none of the
    /// knock options: clap's `args_conflicts_with_subcommands` would also refuse the global
    /// `--profiles` before one, so the check is made here.
    fn parse(args: Vec<OsString>) -> Result<ProfileArgs, clap::Error> {
        let parsed = ProfileArgs::try_parse_from(args)?;
        if let Some(command) = &parsed.command
            && !parsed.knock.is_empty()
        {
            let word = command.word();
            return Err(ProfileArgs::command().error(
                ErrorKind::ArgumentConflict,
                format!(
                    "the subcommand '{word}' cannot be used with a profile NAME or the \
                     options for knocking"
                ),
            ));
        }
        Ok(parsed)
    }
}

impl ProfileCommand {
    fn word(&self) -> &'static str {
        match self {
            ProfileCommand::List { .. } => "list",
            ProfileCommand::Show { .. } => "show",
            ProfileCommand::Save(_) => "save",
            ProfileCommand::Remove { .. } => "remove",
            ProfileCommand::Import(_) => "import",
        }
    }
}

/// `knock profile ...`: `args[1]` is `profile`.
pub(crate) fn run(argv: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let argv: Vec<OsString> = argv.into_iter().skip(1).collect();
    let parsed = ProfileArgs::parse(argv.clone());
    // `save` takes hits, so a negative one is named as `knock HOST -1` names it.
    if let Err(e) = &parsed
        && argv.iter().any(|a| a == "save")
        && let Some(hit) = crate::args::negative_hit(e, &argv)
    {
        return Err(Failure::usage(hit));
    }
    let Some(args) = crate::clap_outcome(parsed, ctx)? else {
        return Ok(());
    };
    let store = open_store(args.profiles.as_deref(), ctx)?;
    match args.command {
        None => knock_from::knock(args.knock, &store, ctx),
        Some(ProfileCommand::List { names }) => manage::list(&store, names, ctx),
        Some(ProfileCommand::Show { name }) => manage::show(&store, &name, ctx),
        Some(ProfileCommand::Save(save)) => manage::save(save, &store, ctx),
        Some(ProfileCommand::Remove { name }) => manage::remove(&store, &name, ctx),
        Some(ProfileCommand::Import(import)) => import::import(import, &store, ctx),
    }
}

/// The profile directory: `--profiles DIR`, else `$KNOCK_PROFILES`, else
/// `<config dir>/knock/profiles`.
pub(crate) fn open_store(flag: Option<&std::path::Path>, ctx: &Ctx<'_>) -> Result<Store, Failure> {
    let dir = store::resolve_dir(
        flag,
        (ctx.vars)(store::ENV_VAR).as_deref(),
        dirs::config_dir().as_deref(),
    )
    .map_err(store_failure)?;
    Ok(Store::new(dir))
}

/// Refuses to go on when profile `name` exists and may not be replaced, before anything
/// else is written (the secret or list a new profile comes with).
pub(crate) fn check_free(store: &Store, name: &str, force: bool) -> Result<PathBuf, Failure> {
    let path = store.path(name).map_err(store_failure)?;
    if !force && path.exists() {
        return Err(store_failure(StoreError::Exists {
            name: name.to_string(),
            path,
        }));
    }
    Ok(path)
}

/// A store error with its exit code: 1 when the file system failed, 2 when the name or the
/// profile is at fault.
pub(crate) fn store_failure(e: StoreError) -> Failure {
    let runtime = match &e {
        StoreError::Io { .. } => true,
        StoreError::Profile(knock_core::profile::ProfileError::Read { error, .. }) => {
            error.kind() != std::io::ErrorKind::NotFound
        }
        _ => false,
    };
    if runtime {
        Failure::runtime(e)
    } else {
        Failure::usage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::profile::Family;

    fn parse(line: &[&str]) -> Result<ProfileArgs, clap::Error> {
        ProfileArgs::parse(
            std::iter::once("profile")
                .chain(line.iter().copied())
                .map(Into::into)
                .collect(),
        )
    }

    #[test]
    fn definition_is_consistent() {
        ProfileArgs::command().debug_assert();
    }

    #[test]
    fn knock_lines() {
        let a = parse(&["ssh-home"]).unwrap();
        assert!(a.command.is_none() && a.profiles.is_none());
        let k = a.knock;
        assert_eq!(k.name.as_deref(), Some("ssh-home"));
        assert_eq!(k.overrides(), Overrides::default());
        assert!(!k.verbose && !k.quiet && !k.dry_run && !k.json && k.at.is_none());

        let a = parse(&[
            "ssh",
            "--host",
            "192.0.2.2",
            "-u",
            "-d",
            "20",
            "-6",
            "--raw",
            "-v",
        ])
        .unwrap();
        assert_eq!(
            a.knock.overrides(),
            Overrides {
                host: Some("192.0.2.2".into()),
                delay_ms: Some(20),
                udp: Some(true),
                family: Some(Family::Ipv6),
                raw: Some(true),
            }
        );
        assert!(a.knock.verbose);
        assert_eq!(a.knock.source.source_port, None);
        assert_eq!(a.knock.overrides().family, Some(Family::Ipv6));
        let a = parse(&["ssh", "--source-port", "40000"]).unwrap();
        assert_eq!(a.knock.source.source_port, Some(40000));
        let a = parse(&["-4", "ssh", "-q"]).unwrap();
        assert_eq!(a.knock.overrides().family, Some(Family::Ipv4));
        assert!(a.knock.quiet);

        let a = parse(&["office", "--dry-run", "--json", "--at", "1700000000"]).unwrap();
        assert!(a.knock.dry_run && a.knock.json);
        assert_eq!(a.knock.at, Some(1_700_000_000));

        // --profiles anywhere, before or after the name.
        let a = parse(&["--profiles", "/p", "ssh"]).unwrap();
        assert_eq!(a.profiles, Some(PathBuf::from("/p")));
        let a = parse(&["ssh", "--profiles=/q"]).unwrap();
        assert_eq!(a.profiles, Some(PathBuf::from("/q")));
    }

    #[test]
    fn subcommand_lines() {
        assert!(matches!(
            parse(&["list"]).unwrap().command,
            Some(ProfileCommand::List { names: false })
        ));
        let a = parse(&["--profiles", "/p", "list"]).unwrap();
        assert_eq!(a.profiles, Some(PathBuf::from("/p")));
        assert!(matches!(
            a.command,
            Some(ProfileCommand::List { names: false })
        ));
        let a = parse(&["--profiles", "/p", "show", "x"]).unwrap();
        assert!(matches!(a.command, Some(ProfileCommand::Show { .. })));
        let a = parse(&["list", "--profiles", "/q"]).unwrap();
        assert_eq!(a.profiles, Some(PathBuf::from("/q")));
        match parse(&["show", "ssh"]).unwrap().command {
            Some(ProfileCommand::Show { name }) => assert_eq!(name, "ssh"),
            other => panic!("{other:?}"),
        }
        match parse(&["remove", "ssh"]).unwrap().command {
            Some(ProfileCommand::Remove { name }) => assert_eq!(name, "ssh"),
            other => panic!("{other:?}"),
        }
        let Some(ProfileCommand::Save(s)) = parse(&[
            "save",
            "ssh",
            "192.0.2.2",
            "7000,8000:udp",
            "9000",
            "-u",
            "-d",
            "100",
            "-4",
            "--raw",
            "--description",
            "home SSH",
            "--force",
        ])
        .unwrap()
        .command
        else {
            panic!("not save")
        };
        assert_eq!((s.name.as_str(), s.host.as_str()), ("ssh", "192.0.2.2"));
        assert_eq!(s.hits, ["7000,8000:udp", "9000"]);
        assert!(s.send.udp && s.send.ipv4 && !s.send.ipv6 && s.send.raw && s.force);
        assert_eq!(s.send.delay, Some(100));
        assert_eq!(s.description.as_deref(), Some("home SSH"));
        let Some(ProfileCommand::Save(s)) = parse(&["save", "n", "h", "1"]).unwrap().command else {
            panic!("not save")
        };
        assert!(s.send.is_empty() && !s.force && s.description.is_none());
        let Some(ProfileCommand::Import(i)) =
            parse(&["import", "/etc/knockd.conf"]).unwrap().command
        else {
            panic!("not import")
        };
        assert_eq!(i.conf, PathBuf::from("/etc/knockd.conf"));
        assert!(i.host.is_none() && !i.force);
        let Some(ProfileCommand::Import(i)) =
            parse(&["import", "k.conf", "--host", "192.0.2.2", "--force"])
                .unwrap()
                .command
        else {
            panic!("not import")
        };
        assert_eq!(i.host.as_deref(), Some("192.0.2.2"));
        assert!(i.force);
    }

    #[test]
    fn rejected_lines() {
        let table: &[(&[&str], ErrorKind, &str)] = &[
            (&[], ErrorKind::MissingRequiredArgument, "<NAME>"),
            (
                &["ssh", "--json"],
                ErrorKind::MissingRequiredArgument,
                "--dry-run",
            ),
            (
                &["ssh", "--at", "5"],
                ErrorKind::MissingRequiredArgument,
                "--dry-run",
            ),
            (
                &["ssh", "--dry-run", "--at", "soon"],
                ErrorKind::ValueValidation,
                "invalid value 'soon' for '--at <UNIX_SECONDS>'",
            ),
            (
                &["ssh", "-4", "-6"],
                ErrorKind::ArgumentConflict,
                "'--ipv4' cannot be used with '--ipv6'",
            ),
            (
                &["ssh", "-v", "-q"],
                ErrorKind::ArgumentConflict,
                "'--verbose' cannot be used with '--quiet'",
            ),
            (
                &["ssh", "--source-port", "0"],
                ErrorKind::ValueValidation,
                "invalid value '0' for '--source-port <PORT>': 0 is not in 1..=65535",
            ),
            (
                &["--source-port", "40000", "list"],
                ErrorKind::ArgumentConflict,
                "the subcommand 'list' cannot be used with a profile NAME or the options \
                 for knocking",
            ),
            (&["ssh", "extra"], ErrorKind::UnknownArgument, "'extra'"),
            (
                &["-v", "list"],
                ErrorKind::ArgumentConflict,
                "the subcommand 'list' cannot be used with a profile NAME or the options \
                 for knocking",
            ),
            (
                &["ssh", "show", "x"],
                ErrorKind::ArgumentConflict,
                "the subcommand 'show' cannot be used",
            ),
            (&["show"], ErrorKind::MissingRequiredArgument, "<NAME>"),
            (&["remove"], ErrorKind::MissingRequiredArgument, "<NAME>"),
            (
                &["save", "n", "h"],
                ErrorKind::MissingRequiredArgument,
                "<HIT>",
            ),
            (
                &["save", "n", "h", "1", "-4", "-6"],
                ErrorKind::ArgumentConflict,
                "'--ipv4' cannot be used with '--ipv6'",
            ),
            (
                &["save", "n", "h", "1", "-d", "x"],
                ErrorKind::ValueValidation,
                "invalid value 'x' for '--delay <MS>'",
            ),
            (&["list", "x"], ErrorKind::UnknownArgument, "'x'"),
            (
                &["import"],
                ErrorKind::MissingRequiredArgument,
                "<KNOCKD_CONF>",
            ),
        ];
        crate::tests::assert_rejected(table, parse);
    }

    /// `knock`, `knock profile NAME` and `knock profile save` take the sending options from
    /// one definition: same flags, same values, same help.
    #[test]
    fn the_sending_options_are_the_same_in_every_command() {
        let knock = crate::args::KnockArgs::command();
        let profile = ProfileArgs::command();
        let save = profile.find_subcommand("save").unwrap().clone();
        let describe = |cmd: &clap::Command, id: &str| {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("{} has no {id}", cmd.get_name()));
            format!(
                "{:?} {:?} {:?} {:?}",
                arg.get_short(),
                arg.get_long(),
                arg.get_value_names(),
                arg.get_help().map(ToString::to_string)
            )
        };
        for id in ["udp", "delay", "ipv4", "ipv6", "raw"] {
            let want = describe(&knock, id);
            assert_eq!(describe(&profile, id), want);
            assert_eq!(describe(&save, id), want);
        }
        assert_eq!(
            describe(&profile, "source_port"),
            describe(&knock, "source_port")
        );
        // Waiting for the door, likewise (a profile keeps only open_port, as --open-port).
        for id in ["wait", "proxy", "no_wait", "wait_timeout", "retries"] {
            assert_eq!(describe(&profile, id), describe(&knock, id));
            assert!(save.get_arguments().all(|a| a.get_id() != id), "{id}");
        }
        // A profile keeps no source port.
        assert!(save.get_arguments().all(|a| a.get_id() != "source_port"));
    }

    #[test]
    fn help_describes_every_subcommand() {
        let help = parse(&["--help"]).unwrap_err().to_string();
        for text in [
            "Usage: knock profile [OPTIONS] <NAME>",
            "knock profile [--profiles <DIR>] <COMMAND>",
            "list ",
            "show ",
            "save ",
            "remove ",
            "import ",
            "--profiles <DIR>",
            "--dry-run",
            "--at <UNIX_SECONDS>",
            "--source-port <PORT>",
            "WHERE PROFILES LIVE",
            "secret_env = \"KNOCK_SSH_SECRET\"",
            "NAME.hmac-used",
            "ONE-TIME LISTS",
            "a one-time list that is used up or has a bad line",
            "a hit or --source-port that needs privileges this run does not have",
            "130 interrupted by Ctrl-C",
        ] {
            assert!(help.contains(text), "help lacks {text:?}:\n{help}");
        }
        let short = parse(&["-h"]).unwrap_err().to_string();
        assert!(
            short.contains("`knock profile --help` describes every key"),
            "{short}"
        );
        let help = parse(&["save", "--help"]).unwrap_err().to_string();
        assert!(
            help.contains("Usage: knock profile save [OPTIONS] <NAME> <HOST> <HIT>..."),
            "{help}"
        );
    }
}
