//! Where per-config state files live: one function names them all.
//!
//! `DIR/<config file name>.<16 hex digits>.<kind>`, the digits being the start of the
//! SHA-256 of the config's absolute, canonical path. The file name keeps the folder
//! readable; the digest keeps two configs with the same file name (`/etc/a/knockd.conf`,
//! `/etc/b/knockd.conf`) from sharing a file, where one instance's save would drop the
//! other's HMAC counters and a used sequence would open the door again after a restart.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What a state file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateKind {
    /// The used HMAC counters.
    HmacUsed,
    /// The stop journal: stop commands still due.
    Stops,
    /// The pid of the stop keeper, for the next process to find it (a restart takes the
    /// stops over from a keeper still running).
    Keeper,
}

impl StateKind {
    fn suffix(self) -> &'static str {
        match self {
            StateKind::HmacUsed => "hmac-used",
            StateKind::Stops => "stops",
            StateKind::Keeper => "keeper",
        }
    }
}

/// The state file of `kind` for the config at `config` (absolute) in `dir`. A config that
/// can be canonicalised (it exists) is keyed by its canonical path, so a symlink or `..` to
/// the same file names the same state.
pub(crate) fn state_file(dir: &Path, config: &Path, kind: StateKind) -> PathBuf {
    let canonical = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{}.{hex}.{}", file_name(config), kind.suffix()))
}

/// Where versions before the digest kept the used HMAC counters, `DIR/<config file
/// name>.hmac-used`: read once when the new file does not exist yet.
pub(crate) fn legacy_hmac_file(dir: &Path, config: &Path) -> PathBuf {
    dir.join(format!("{}.hmac-used", file_name(config)))
}

fn file_name(config: &Path) -> String {
    config.file_name().map_or_else(
        || "knockd.conf".into(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    #[test]
    fn names_carry_the_file_name_and_a_digest_of_the_canonical_path() {
        let scratch = Scratch::new("state-names");
        let dir = scratch.path();
        for sub in ["a", "b"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("knockd.conf"), "").unwrap();
        }
        let st = Path::new("/var/lib/knockd-lite");
        let a = state_file(st, &dir.join("a/knockd.conf"), StateKind::HmacUsed);
        let b = state_file(st, &dir.join("b/knockd.conf"), StateKind::HmacUsed);
        assert_ne!(a, b, "same file name, different configs");
        let name = a.file_name().unwrap().to_str().unwrap();
        let (stem, digest) = name
            .strip_suffix(".hmac-used")
            .and_then(|n| n.rsplit_once('.'))
            .unwrap();
        assert_eq!(stem, "knockd.conf");
        assert_eq!(digest.len(), 16);
        assert!(digest.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.parent(), Some(st));
        // The same file by another path is the same state.
        std::os::unix::fs::symlink(dir.join("a"), dir.join("link")).unwrap();
        assert_eq!(
            state_file(
                st,
                &dir.join("link/../a/./knockd.conf"),
                StateKind::HmacUsed
            ),
            a
        );
        assert_eq!(
            state_file(st, &dir.join("link/knockd.conf"), StateKind::HmacUsed),
            a
        );
        // Kinds differ only in the suffix.
        let stops = state_file(st, &dir.join("a/knockd.conf"), StateKind::Stops);
        assert_eq!(
            stops.to_str().unwrap().strip_suffix(".stops"),
            a.to_str().unwrap().strip_suffix(".hmac-used")
        );
        assert_eq!(
            legacy_hmac_file(st, &dir.join("a/knockd.conf")),
            st.join("knockd.conf.hmac-used")
        );
    }

    #[test]
    fn the_digest_is_sha256_of_the_path() {
        // A path that does not exist is used as given: the first 16 hex digits of
        // sha256("/nonexistent-knockd-lite/knockd.conf"), as `sha256sum` prints them.
        let name = state_file(
            Path::new("/st"),
            Path::new("/nonexistent-knockd-lite/knockd.conf"),
            StateKind::HmacUsed,
        );
        assert_eq!(
            name,
            PathBuf::from("/st/knockd.conf.ce31cc2880fc9538.hmac-used")
        );
    }
}
