//! Reading the config file (knockd.conf or tportknockd's): the file and its parse, with
//! errors and warnings that name the file as it was given on the command line.

use std::io;
use std::path::{Path, PathBuf};

use knock_core::conf::{self, ConfError, Config};
use knock_core::files;

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// `path:line: message`.
    #[error(transparent)]
    Parse(#[from] ConfError),
}

/// Reads and parses the config at `path`; messages name it `shown`, the path as it was
/// given on the command line.
pub(crate) fn read(path: &Path, shown: &Path) -> Result<Config, ConfigError> {
    read_with_text(path, shown).map(|(config, _)| config)
}

/// [`read`], and the file's bytes as they were parsed (for the sandboxed worker, which
/// parses them itself and reads no file).
pub(crate) fn read_with_text(path: &Path, shown: &Path) -> Result<(Config, Vec<u8>), ConfigError> {
    // Bytes: comments may hold bytes that are not UTF-8, as knockd allows. A regular file
    // of at most 16 MiB: a FIFO or /dev/zero is refused at once, never waited on.
    let text =
        files::read_regular(path, files::MAX_CONFIG_BYTES).map_err(|error| ConfigError::Read {
            path: shown.to_path_buf(),
            error,
        })?;
    let config = conf::parse(&text, shown)?;
    Ok((config, text))
}

/// The config's warnings, `warning: path:line: message`, for stderr and the log.
pub(crate) fn warnings(config: &Config, shown: &Path) -> Vec<String> {
    config
        .warnings
        .iter()
        .map(|w| format!("warning: {}:{}: {}", shown.display(), w.line, w.message))
        .collect()
}

/// Where the log file's path came from, for messages: `-g`, or `LogFile on line N of FILE`.
pub(crate) fn log_file_origin(config: &Config, shown: &Path, from_flag: bool) -> String {
    match (from_flag, config.log_file_line) {
        (false, Some(line)) => format!("LogFile on line {line} of {}", shown.display()),
        _ => "-g".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_path_as_given_and_its_os_error_once() {
        let err = read(Path::new("/nonexistent/k.conf"), Path::new("k.conf")).unwrap_err();
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "cannot read k.conf: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn latin1_comments_are_read_and_warnings_name_the_file() {
        let scratch = crate::testutil::Scratch::new("config-read");
        let path = scratch.path().join("k.conf");
        std::fs::write(
            &path,
            b"# f\xfcr die T\xfcr\n[options]\nlogfile = /var/log/k.log\n[d]\nsequence = 1\n[d]\nsequence = 2\n",
        )
        .unwrap();
        let config = read(&path, Path::new("k.conf")).unwrap();
        assert_eq!(
            warnings(&config, Path::new("k.conf")),
            [
                "warning: k.conf:6: door [d] has the same name as the door on line 4: both are \
              kept, as knockd keeps them, and log lines name both [d] (rename one to tell them \
              apart)"
            ]
        );
        assert_eq!(
            log_file_origin(&config, Path::new("k.conf"), false),
            "LogFile on line 3 of k.conf"
        );
        assert_eq!(log_file_origin(&config, Path::new("k.conf"), true), "-g");
    }
}
