//! `knock keygen`: a new knock-hmac-v1 secret with the knockd-lite door and the `knock`
//! profile that use it, printed, or with the secret written to a private file instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Parser;
use knock_core::conf::{DEFAULT_HMAC_SKEW, MAX_HMAC_SKEW};
use knock_core::files::{self, WriteError};
use knock_core::hit::{TcpFlags, parse_exact_flags};
use knock_core::hmac::{
    DEFAULT_LENGTH, DEFAULT_PORTS, DEFAULT_STEP, HmacParams, MAX_LENGTH, PortRange, Protocols,
};
use knock_core::keygen::{self, KeygenOptions};
use knock_core::profile::SecretRef;
use knock_core::secret::Secret;

use crate::otp::port_range;
use crate::{Ctx, Failure, parse_args};

/// Make a new knock-hmac-v1 secret, with the knockd-lite door and the knock profile that
/// use it.
///
/// The secret is 32 random bytes from the OS, in base64. By default it is printed on
/// stdout together with both snippets: anything that records the terminal or the output
/// then holds it. With --secret-file PATH it is written to a new file with mode 0600
/// instead, never printed, and the profile reads it from there.
#[derive(Debug, Parser)]
#[command(
    group(clap::ArgGroup::new("written").args(["secret_file", "save"]).multiple(true)),
    name = "keygen",
    bin_name = "knock keygen",
    after_help = "\
The door and the profile must agree on every derivation parameter (--door, --length,
--ports, --protocols, --step, --flags).

With --save NAME --host HOST, one command makes the profile: the secret goes to NAME.secret
in the profile directory (or --secret-file), mode 0600, the profile to NAME.toml pointing at
it, and stdout gets only the server's door and where the files are. Then `knock profile
NAME` knocks.

Exit status: 0 done, 1 the random generator or the file system failed, 2 usage error,
parameters that cannot derive a sequence, or a --secret-file that exists without --force."
)]
pub(crate) struct KeygenArgs {
    /// The door label: the knockd-lite door's name and the profile's [hmac] door
    // This doc is the --help text, where [hmac] is the profile's table, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, value_name = "NAME", default_value = "ssh", value_parser = door_name)]
    pub door: String,

    /// The host the profile knocks on
    #[arg(
        long,
        value_name = "HOST",
        default_value = keygen::DEFAULT_HOST,
        value_parser = crate::args::host_value,
        value_hint = clap::ValueHint::Hostname
    )]
    pub host: String,

    // Help, default and bounds from the constants of knock-hmac-v1.
    #[arg(
        long,
        value_name = "N",
        help = format!("Hits per sequence, 1 to {MAX_LENGTH}"),
        default_value_t = DEFAULT_LENGTH as u32,
        value_parser = clap::value_parser!(u32).range(1..=MAX_LENGTH as i64)
    )]
    pub length: u32,

    /// Port pool of the sequences
    #[arg(long, value_name = "LO-HI", default_value_t = DEFAULT_PORTS, value_parser = port_range)]
    pub ports: PortRange,

    /// Protocol of the hits: tcp, udp, or mixed (derived per hit)
    #[arg(long, value_name = "tcp|udp|mixed", default_value_t = Protocols::Tcp, value_parser = protocols)]
    pub protocols: Protocols,

    /// Seconds each sequence is valid for
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_STEP, allow_negative_numbers = true, value_parser = step)]
    pub step: u64,

    /// Exact TCP flags for TCP hits: names joined by + (fin+psh), or none; without it they
    /// are plain SYNs (`any`, which a door's sequence may use, derives nothing)
    #[arg(long, value_name = "FLAGS", value_parser = flags)]
    pub flags: Option<TcpFlags>,

    // Help, default and bounds from knockd.conf's HMAC_Skew.
    #[arg(
        long,
        value_name = "STEPS",
        help = format!("Steps either side of now that the door accepts (HMAC_Skew), 0 to {MAX_HMAC_SKEW}"),
        default_value_t = DEFAULT_HMAC_SKEW,
        value_parser = clap::value_parser!(u64).range(0..=MAX_HMAC_SKEW)
    )]
    pub skew: u64,

    /// Where the server keeps the secret [default: /etc/knockd-lite/DOOR.secret]
    #[arg(long, value_name = "PATH")]
    pub server_secret_file: Option<PathBuf>,

    /// Write the secret to this new file (mode 0600) instead of printing it; the profile
    /// reads it from there
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,

    /// Replace the --secret-file, and the profile of --save, if they exist
    #[arg(long, requires = "written")]
    pub force: bool,

    /// The profile reads the secret from this environment variable instead of a file
    #[arg(long, value_name = "NAME", conflicts_with = "secret_file")]
    pub secret_env: Option<String>,

    /// Save the profile as NAME in the profile directory, with the secret in a file beside
    /// it (NAME.secret, or --secret-file), instead of printing the profile; needs --host
    #[arg(
        long,
        value_name = "NAME",
        requires = "host",
        conflicts_with = "secret_env"
    )]
    pub save: Option<String>,

    /// Profile directory for --save [default: $KNOCK_PROFILES, else <config dir>/knock/profiles]
    // This doc is the --help text, where <...> is a placeholder, not an HTML tag.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR", requires = "save")]
    pub profiles: Option<PathBuf>,
}

/// A door name that knockd.conf can hold as a section: `[NAME]`.
fn door_name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the door name is empty".into());
    }
    if s.trim() != s || s.contains(['[', ']']) || s.chars().any(char::is_control) {
        return Err(format!(
            "door name {s:?} cannot be a knockd.conf section (no brackets, control \
             characters, or spaces at the ends)"
        ));
    }
    if s.eq_ignore_ascii_case("options") {
        return Err("\"options\" is knockd.conf's global section, not a door".into());
    }
    Ok(s.to_string())
}

fn protocols(s: &str) -> Result<Protocols, String> {
    s.parse()
}

/// `fin+psh` or `none`, in the hit grammar's spelling.
fn flags(s: &str) -> Result<TcpFlags, String> {
    parse_exact_flags(s)
}

/// `--step`: whole seconds, at least 1.
fn step(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ if s.parse::<i64>().is_ok() => Err("the step is at least 1 second".into()),
        _ => Err("give the step in whole seconds, 1 or more".into()),
    }
}

/// `knock keygen ...`: `args[1]` is `keygen`.
pub(crate) fn run(args: Vec<OsString>, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let Some(args) = parse_args::<KeygenArgs>(args.into_iter().skip(1).collect(), ctx)? else {
        return Ok(());
    };
    let mut opts = options(&args)?;
    if let Some(name) = &args.save {
        return save(&args, name, opts, ctx);
    }
    let secret = keygen::new_secret()
        .map_err(|e| Failure::runtime(anyhow!("read random bytes from the OS: {e}")))?;
    let text = match &args.secret_file {
        None => keygen::render(&secret, &opts).map_err(Failure::usage)?,
        Some(path) => {
            let path = absolute(path)?;
            write_secret(&path, &secret, args.force)?;
            opts.client_secret = SecretRef::File {
                path: path.clone(),
                resolved: path.clone(),
            };
            render_without_secret(&opts, &path).map_err(Failure::usage)?
        }
    };
    for line in text.lines() {
        ctx.line(line)?;
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path)
        .with_context(|| format!("make {} absolute", path.display()))
        .map_err(Failure::runtime)
}

/// `knock keygen --save NAME`: the secret into NAME.secret beside the profiles (or
/// --secret-file), the profile into NAME.toml, and on stdout only what the server needs
/// and where everything went. Nothing is written if the profile exists (without --force).
fn save(
    args: &KeygenArgs,
    name: &str,
    mut opts: KeygenOptions,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let store = crate::profile::open_store(args.profiles.as_deref(), ctx)?;
    crate::profile::check_free(&store, name, args.force)?;
    files::create_private_dir(store.dir())
        .with_context(|| format!("create directory {}", store.dir().display()))
        .map_err(Failure::runtime)?;
    let secret_path = match &args.secret_file {
        Some(path) => absolute(path)?,
        None => absolute(&store.dir().join(format!("{name}.secret")))?,
    };
    let secret = keygen::new_secret()
        .map_err(|e| Failure::runtime(anyhow!("read random bytes from the OS: {e}")))?;
    write_secret(&secret_path, &secret, args.force)?;
    opts.client_secret = SecretRef::File {
        path: secret_path.clone(),
        resolved: secret_path.clone(),
    };
    let snippet = keygen::profile_snippet(&opts).map_err(Failure::usage)?;
    let profile_path = store.path(name).map_err(crate::profile::store_failure)?;
    let profile = knock_core::profile::parse(&profile_path, &snippet).map_err(Failure::usage)?;
    let saved = store
        .save(name, &profile, args.force)
        .map_err(crate::profile::store_failure)?;
    let door = &opts.params.door;
    let text = format!(
        "# New knock-hmac-v1 secret for door {door:?}: written to {secret} (mode 0600), \
         not shown.\n\
         \n\
         # Server (knockd-lite): copy {secret} to {server} (mode 0600),\n\
         # and add this door to the configuration:\n\
         {door_snippet}\
         \n\
         saved profile {name}: {saved}\n\
         profile directory: {dir}\n\
         knock with: knock profile {name}",
        secret = secret_path.display(),
        server = opts.server_secret_file.display(),
        door_snippet = keygen::door_snippet(&opts),
        saved = saved.display(),
        dir = store.dir().display(),
    );
    for line in text.lines() {
        ctx.line(line)?;
    }
    Ok(())
}

/// The snippets' values from the command line, checked as a door would check them.
fn options(args: &KeygenArgs) -> Result<KeygenOptions, Failure> {
    let mut opts = KeygenOptions::new(&args.door);
    opts.params = HmacParams {
        door: args.door.clone(),
        length: args.length as usize,
        ports: args.ports,
        protocols: args.protocols,
        step: args.step,
        flags: args.flags,
    };
    opts.params
        .validate()
        .map_err(|e| Failure::usage(anyhow!(e)))?;
    opts.skew = args.skew;
    opts.host = args.host.clone();
    if let Some(path) = &args.server_secret_file {
        opts.server_secret_file = path.clone();
    }
    if let Some(name) = &args.secret_env {
        opts.client_secret = SecretRef::Env(name.clone());
    }
    Ok(opts)
}

/// The secret's text and a newline, in a new private file.
fn write_secret(path: &Path, secret: &Secret, force: bool) -> Result<(), Failure> {
    let mut bytes = secret.expose().to_vec();
    bytes.push(b'\n');
    let written = files::write_private(path, &bytes, force);
    bytes.fill(0);
    std::hint::black_box(&bytes);
    written.map_err(|e| match e {
        WriteError::Exists(path) => Failure::usage(anyhow!(
            "{} already exists; use --force to replace it",
            path.display()
        )),
        e => Failure::runtime(e),
    })
}

/// What `knock keygen --secret-file PATH` prints: both snippets, and where the secret is.
fn render_without_secret(
    opts: &KeygenOptions,
    path: &Path,
) -> Result<String, knock_core::profile::ToTomlError> {
    let door = &opts.params.door;
    Ok(format!(
        "# New knock-hmac-v1 secret for door {door:?}: written to {path} (mode 0600), \
         not shown.\n\
         \n\
         # Server (knockd-lite): copy {path} to {server} (mode 0600),\n\
         # and add this door to the configuration:\n\
         {door_snippet}\
         \n\
         # Client (knock): save this as {door}.toml in the profile directory:\n\
         {profile}",
        path = path.display(),
        server = opts.server_secret_file.display(),
        door_snippet = keygen::door_snippet(opts),
        profile = keygen::profile_snippet(opts)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(line: &[&str]) -> Result<KeygenArgs, clap::Error> {
        KeygenArgs::try_parse_from(std::iter::once("keygen").chain(line.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        KeygenArgs::command().debug_assert();
    }

    #[test]
    fn defaults_are_knock_hmac_v1_defaults() {
        let a = parse(&[]).unwrap();
        let opts = options(&a).unwrap();
        assert_eq!(opts, KeygenOptions::new("ssh"));
        assert!(a.secret_file.is_none() && a.secret_env.is_none() && !a.force);
    }

    #[test]
    fn every_option() {
        let a = parse(&[
            "--door",
            "web door",
            "--host",
            "192.0.2.2",
            "--length",
            "6",
            "--ports",
            "7000-7999",
            "--protocols",
            "mixed",
            "--step",
            "60",
            "--flags",
            "fin+psh",
            "--skew",
            "2",
            "--server-secret-file",
            "/srv/web.secret",
            "--secret-env",
            "WEB_SECRET",
        ])
        .unwrap();
        let opts = options(&a).unwrap();
        let mut want = KeygenOptions::new("web door");
        want.params.length = 6;
        want.params.ports = PortRange { lo: 7000, hi: 7999 };
        want.params.protocols = Protocols::Mixed;
        want.params.step = 60;
        want.params.flags = Some(TcpFlags::FIN | TcpFlags::PSH);
        want.skew = 2;
        want.host = "192.0.2.2".into();
        want.server_secret_file = "/srv/web.secret".into();
        want.client_secret = SecretRef::Env("WEB_SECRET".into());
        assert_eq!(opts, want);
        let a = parse(&["--secret-file", "k.secret", "--force", "--flags", "none"]).unwrap();
        assert_eq!(a.secret_file, Some(PathBuf::from("k.secret")));
        assert!(a.force);
        assert_eq!(a.flags, Some(TcpFlags::NONE));
    }

    #[test]
    fn rejected_lines() {
        let table: &[(&[&str], ErrorKind, &str)] = &[
            (
                &["--door", ""],
                ErrorKind::ValueValidation,
                "the door name is empty",
            ),
            (
                &["--door", "a]b"],
                ErrorKind::ValueValidation,
                "door name \"a]b\" cannot be a knockd.conf section",
            ),
            (
                &["--door", "Options"],
                ErrorKind::ValueValidation,
                "\"options\" is knockd.conf's global section, not a door",
            ),
            (
                &["--length", "0"],
                ErrorKind::ValueValidation,
                "0 is not in 1..=32",
            ),
            (
                &["--step", "0"],
                ErrorKind::ValueValidation,
                "invalid value '0' for '--step <SECONDS>': the step is at least 1 second",
            ),
            (
                &["--step", "-5"],
                ErrorKind::ValueValidation,
                "the step is at least 1 second",
            ),
            (
                &["--step", "soon"],
                ErrorKind::ValueValidation,
                "give the step in whole seconds, 1 or more",
            ),
            (
                &["--skew", "11"],
                ErrorKind::ValueValidation,
                "11 is not in 0..=10",
            ),
            (
                &["--flags", "fin+bogus"],
                ErrorKind::ValueValidation,
                "unknown TCP flag \"bogus\"",
            ),
            (
                &["--flags", "any"],
                ErrorKind::ValueValidation,
                "\"any\" (flags ignored) is for a door's sequence, not for sending: give exact \
                 flags (fin+psh, or none), or leave them out for plain SYNs",
            ),
            (
                &["--flags", "fin+bogus"],
                ErrorKind::ValueValidation,
                "unknown TCP flag \"bogus\" (expected fin, syn, rst, psh, ack, urg, ece, cwr \
                 joined by +, or none)",
            ),
            (
                &["--ports", "1-"],
                ErrorKind::ValueValidation,
                "is not a port (1-65535)",
            ),
            (
                &["--force"],
                ErrorKind::MissingRequiredArgument,
                "--secret-file <PATH>",
            ),
            (
                &["--secret-file", "f", "--secret-env", "E"],
                ErrorKind::ArgumentConflict,
                "'--secret-file <PATH>' cannot be used with '--secret-env <NAME>'",
            ),
            (&["--secret", "x"], ErrorKind::UnknownArgument, "'--secret'"),
        ];
        crate::tests::assert_rejected(table, parse);
        // Parameters that parse one by one but cannot derive a sequence together.
        let a = parse(&["--protocols", "udp", "--flags", "fin"]).unwrap();
        assert_eq!(
            options(&a).unwrap_err().describe(),
            (2, vec!["flags are set but protocols is udp".to_string()])
        );
        let a = parse(&["--ports", "7000-7002", "--length", "4"]).unwrap();
        assert_eq!(
            options(&a).unwrap_err().describe(),
            (
                2,
                vec!["port range 7000-7002 has 3 ports, fewer than the length 4".to_string()]
            )
        );
    }

    #[test]
    fn help_mentions_the_secret_file() {
        let help = parse(&["--help"]).unwrap_err().to_string();
        assert!(help.contains("--secret-file <PATH>"), "{help}");
        assert!(help.contains("mode 0600"), "{help}");
        assert!(help.contains("Usage: knock keygen [OPTIONS]"), "{help}");
        assert!(help.contains("Exit status: 0 done, 1 "), "{help}");
    }
}
