//! What the server runs with: the config file with the command line's overrides applied,
//! and every relative path anchored where knockd-lite was started.
//!
//! `-d` changes to `/` after detaching (so the daemon holds no directory busy), and the
//! config is re-read and one-time lists are written long after start-up, so relative paths
//! are made absolute once, against the start-up directory.

use std::path::{Path, PathBuf};

use knock_core::conf::{Config, SequenceSource};
use knockd_engine::bpf::Families;

use super::state::{self, StateKind};
use crate::args::Args;
use crate::config::{self, ConfigError};
use crate::log::{DEV_LOG, LogConfig};

/// The resolved settings, besides the doors themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The config file, absolute.
    pub(crate) config_path: PathBuf,
    /// `-i`, else the config's `Interface`.
    pub(crate) interface: String,
    /// `-p`, else the config's `PidFile`; used with `-d` only, as knockd does.
    pub(crate) pid_file: PathBuf,
    /// `-g`, else the config's `LogFile`.
    pub(crate) log_file: Option<PathBuf>,
    /// Where `log_file` came from, for warnings: `-g` or `LogFile on line N of FILE`.
    pub(crate) log_origin: String,
    pub(crate) syslog: bool,
    pub(crate) families: Families,
    /// Where used HMAC counters are kept (named by [`state::state_file`]), so two
    /// instances with different configs never share counters.
    pub(crate) state_file: PathBuf,
    /// Where older versions kept them, read once if `state_file` does not exist yet.
    pub(crate) legacy_state_file: PathBuf,
    /// The stop journal: stop commands still due, which a restart runs.
    pub(crate) stops_file: PathBuf,
    /// The stop keeper's pid.
    pub(crate) keeper_file: PathBuf,
    /// The config file's bytes as read, for the sandboxed worker.
    pub(crate) config_text: Vec<u8>,
}

impl Settings {
    /// The log destinations, with `-v` and `-D`.
    pub(crate) fn log_config(&self, args: &Args) -> LogConfig {
        LogConfig {
            file: self.log_file.clone(),
            syslog: self.syslog.then(|| PathBuf::from(DEV_LOG)),
            verbose: args.verbose,
            debug: args.debug,
            first_stage_budget: 0,
        }
    }
}

/// Reads and parses the config named by `args` (`path:line: message` on error) and applies
/// the command line. `base` is the start-up directory.
pub(crate) fn load(args: &Args, base: &Path) -> Result<(Config, Settings), ConfigError> {
    let config_path = base.join(&args.config);
    // Messages name the file as it was given.
    let (mut config, config_text) = config::read_with_text(&config_path, &args.config)?;
    anchor(&mut config, base);
    let state_dir = base.join(&args.state_dir);
    let settings = Settings {
        interface: args
            .interface
            .clone()
            .unwrap_or_else(|| config.interface.clone()),
        pid_file: base.join(args.pidfile.as_ref().unwrap_or(&config.pid_file)),
        log_file: args
            .logfile
            .as_ref()
            .or(config.log_file.as_ref())
            .map(|p| base.join(p)),
        log_origin: config::log_file_origin(&config, &args.config, args.logfile.is_some()),
        syslog: config.use_syslog,
        families: if args.only_ipv4 {
            Families::V4Only
        } else {
            Families::Both
        },
        state_file: state::state_file(&state_dir, &config_path, StateKind::HmacUsed),
        legacy_state_file: state::legacy_hmac_file(&state_dir, &config_path),
        stops_file: state::state_file(&state_dir, &config_path, StateKind::Stops),
        keeper_file: state::state_file(&state_dir, &config_path, StateKind::Keeper),
        config_path,
        config_text,
    };
    Ok((config, settings))
}

/// Makes every path in `config` absolute against `base` (`join` keeps absolute ones).
fn anchor(config: &mut Config, base: &Path) {
    if let Some(p) = &mut config.log_file {
        *p = base.join(&*p);
    }
    config.pid_file = base.join(&config.pid_file);
    for door in &mut config.doors {
        match &mut door.sequence {
            SequenceSource::Fixed(_) => {}
            SequenceSource::OneTime(p) => *p = base.join(&*p),
            SequenceSource::Hmac(h) => h.secret_file = base.join(&h.secret_file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("knockd-lite").chain(extra.iter().copied())).unwrap()
    }

    #[test]
    fn command_line_wins_and_relative_paths_are_anchored() {
        let scratch = Scratch::new("settings");
        let dir = scratch.path();
        std::fs::write(
            dir.join("k.conf"),
            "[options]\nlogfile = k.log\npidfile = run/k.pid\ninterface = eth7\nusesyslog\n\
             [otp]\none_time_sequences = lists/otp\n\
             [h]\nhmac_secret_file = /etc/k.key\n",
        )
        .unwrap();
        let (config, s) = load(&args(&["-c", "k.conf", "--state-dir", "st"]), dir).unwrap();
        assert_eq!(s.config_path, dir.join("k.conf"));
        assert_eq!(s.interface, "eth7");
        assert_eq!(s.pid_file, dir.join("run/k.pid"));
        assert_eq!(s.log_file, Some(dir.join("k.log")));
        assert!(s.syslog);
        assert_eq!(s.families, Families::Both);
        assert_eq!(
            s.state_file,
            state::state_file(&dir.join("st"), &dir.join("k.conf"), StateKind::HmacUsed)
        );
        assert_eq!(s.legacy_state_file, dir.join("st/k.conf.hmac-used"));
        assert_eq!(
            config.doors[0].sequence,
            SequenceSource::OneTime(dir.join("lists/otp"))
        );
        match &config.doors[1].sequence {
            SequenceSource::Hmac(h) => assert_eq!(h.secret_file, PathBuf::from("/etc/k.key")),
            other => panic!("{other:?}"),
        }
        let log = s.log_config(&args(&["-v"]));
        assert_eq!(log.syslog, Some(PathBuf::from(DEV_LOG)));
        assert!(log.verbose && !log.debug);

        let (_, s) = load(
            &args(&[
                "-c",
                "k.conf",
                "-i",
                "ks0",
                "-p",
                "/run/x.pid",
                "-g",
                "/tmp/x.log",
                "-4",
            ]),
            dir,
        )
        .unwrap();
        assert_eq!(s.interface, "ks0");
        assert_eq!(s.pid_file, PathBuf::from("/run/x.pid"));
        assert_eq!(s.log_file, Some(PathBuf::from("/tmp/x.log")));
        assert_eq!(s.families, Families::V4Only);
        assert_eq!(
            s.state_file.parent(),
            Some(Path::new("/var/lib/knockd-lite"))
        );
    }

    #[test]
    fn errors_name_the_file_as_given() {
        let scratch = Scratch::new("settings-e");
        let dir = scratch.path();
        std::fs::write(dir.join("bad.conf"), "[d]\nsequence = 7000,\n").unwrap();
        let err = load(&args(&["-c", "bad.conf"]), dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad.conf:2: sequence: empty port (a stray or trailing comma?)"
        );
        let err = load(&args(&["-c", "missing.conf"]), dir)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot read missing.conf: "), "{err}");
    }
}
