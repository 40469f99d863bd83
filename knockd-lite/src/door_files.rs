//! The files doors name, read into the engine's inputs: one-time list texts and HMAC
//! secrets (refusing files others can read, as `knock` does), with the HMAC counters
//! already used.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use knock_core::conf::{Config, Door, SequenceSource};
use knock_core::files::{self, FileId};
use knock_core::secret::source::{self, Prompt, SecretError, SecretSource};
use knockd_engine::{HmacInput, Inputs};

use crate::hmac_state::UsedCounters;

/// A door file that could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DoorFileError {
    /// The message holds the OS error, so it is not also the `source()`.
    #[error("{}: cannot read the one-time list of door [{door}]: {error}", path.display())]
    OneTimeList {
        path: PathBuf,
        door: String,
        error: io::Error,
    },
    /// The message holds the secret's error, so it is not also the `source()`.
    #[error("door [{door}]: {error}")]
    Secret { door: String, error: SecretError },
}

/// Secrets come from files only: there is never anyone to ask.
struct NoPrompt;

impl Prompt for NoPrompt {
    fn available(&self) -> bool {
        false
    }

    fn read_hidden(&mut self, _message: &str) -> io::Result<String> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no terminal"))
    }
}

/// Which one-time list files were read, as they were: a list is written into (a line
/// marked used) only while it is still that file.
pub(crate) type ListIds = HashMap<PathBuf, FileId>;

/// What the doors' files hold.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// For the engine, without local addresses.
    pub(crate) inputs: Inputs,
    pub(crate) lists: ListIds,
}

/// The engine's inputs for `config`, without local addresses: one-time texts and HMAC
/// secrets, each HMAC door with the counters `used` lists for it; and which list files
/// were read.
pub(crate) fn load(config: &Config, used: &UsedCounters) -> Result<Loaded, DoorFileError> {
    let mut inputs = Inputs::default();
    let mut lists = ListIds::new();
    for door in &config.doors {
        match &door.sequence {
            SequenceSource::Fixed(_) => {}
            SequenceSource::OneTime(path) => {
                let (text, id) = read_list(path).map_err(|error| DoorFileError::OneTimeList {
                    path: path.clone(),
                    door: door.name.clone(),
                    error,
                })?;
                inputs.one_time.insert(door.name.clone(), text);
                lists.insert(path.clone(), id);
            }
            SequenceSource::Hmac(h) => {
                let secret = read_secret(&h.secret_file, door)?;
                let used = used.get(&door.name).cloned().unwrap_or_default();
                inputs
                    .hmac
                    .insert(door.name.clone(), HmacInput { secret, used });
            }
        }
    }
    Ok(Loaded { inputs, lists })
}

/// A one-time list's text, and which file it was: a regular file of at most 16 MiB (a
/// FIFO is refused at once, never waited on), in UTF-8.
pub(crate) fn read_list(path: &Path) -> io::Result<(String, FileId)> {
    let (bytes, id) = files::read_regular_id(path, files::MAX_LIST_BYTES)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))?;
    Ok((text, id))
}

fn read_secret(path: &Path, door: &Door) -> Result<knock_core::secret::Secret, DoorFileError> {
    source::load_with(
        &SecretSource::File(path.to_path_buf()),
        |_| None,
        &mut NoPrompt,
        "",
    )
    .map_err(|error| DoorFileError::Secret {
        door: door.name.clone(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;
    use std::os::unix::fs::PermissionsExt;

    fn config(text: &str) -> Config {
        knock_core::conf::parse(text, Path::new("t.conf")).unwrap()
    }

    #[test]
    fn reads_lists_secrets_and_used_counters() {
        let scratch = Scratch::new("inputs-ok");
        let dir = scratch.path();
        let list = dir.join("list");
        let key = dir.join("key");
        std::fs::write(&list, "7000,8000\n").unwrap();
        std::fs::write(&key, "s3cret\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = config(&format!(
            "[otp]\none_time_sequences = {}\n[h]\nhmac_secret_file = {}\n[f]\nsequence = 1\n",
            list.display(),
            key.display()
        ));
        let mut used = UsedCounters::new();
        used.entry("h".into()).or_default().extend([5, 6]);
        let Loaded { inputs, lists } = load(&c, &used).unwrap();
        assert_eq!(lists.keys().collect::<Vec<_>>(), [&list]);
        assert_eq!(inputs.one_time["otp"], "7000,8000\n");
        assert_eq!(inputs.hmac["h"].secret.expose(), b"s3cret");
        assert_eq!(
            inputs.hmac["h"].used.iter().copied().collect::<Vec<_>>(),
            [5, 6]
        );
        assert!(inputs.local_addrs.is_empty());
    }

    #[test]
    fn refuses_missing_lists_and_shared_secrets() {
        let scratch = Scratch::new("inputs-bad");
        let dir = scratch.path();
        let key = dir.join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let c = config(&format!("[h]\nhmac_secret_file = {}\n", key.display()));
        let err = load(&c, &UsedCounters::new()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "door [h]: secret file {k} is readable by group/others (mode 0640); run: chmod 600 {k}",
                k = key.display()
            )
        );
        assert!(!err.contains("s3cret"));
        let list = dir.join("missing");
        let c = config(&format!("[o]\none_time_sequences = {}\n", list.display()));
        let err = load(&c, &UsedCounters::new()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "{}: cannot read the one-time list of door [o]: ",
                list.display()
            )),
            "{err}"
        );
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("(os error 2)").count(), 1, "{chain}");
    }
}
