//! Reading knockd.conf: the file and its parse, with errors that name the file as it was
//! given on the command line.

use std::io;
use std::path::{Path, PathBuf};

use knock_core::conf::{self, ConfError, Config};

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
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: shown.to_path_buf(),
        error,
    })?;
    Ok(conf::parse(&text, shown)?)
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
}
