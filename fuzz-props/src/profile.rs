//! `profile`: TOML knock profiles (`knock profile NAME`), which a user may also import or
//! copy from elsewhere.
//!
//! Properties:
//! * rejected: the error is `path:line: message` for this path, on a line of the file (or
//!   just past its end, where TOML reports a missing value), with a printable message;
//! * accepted: `to_toml` writes the profile so that it parses back equal, and writing that
//!   again gives the same text.

use std::path::Path;

use knock_core::profile::{self, ProfileError};

use crate::{printable_message, text};

const PATH: &str = "/home/fuzz/.config/knock/profiles/p.toml";

/// Accepted: the profile parsed.
pub fn check(data: &[u8]) -> bool {
    let input = text(data);
    let path = Path::new(PATH);
    match profile::parse(path, &input) {
        Err(ProfileError::Invalid {
            path: p,
            line,
            message,
        }) => {
            assert_eq!(p, path);
            let last = input.bytes().filter(|&b| b == b'\n').count() + 1;
            assert!(
                (1..=last).contains(&line),
                "line {line} of {last}: {message}"
            );
            printable_message(&message);
            false
        }
        Err(e @ ProfileError::Read { .. }) => panic!("parse read a file: {e}"),
        Ok(p) => {
            let toml = p
                .to_toml()
                .unwrap_or_else(|e| panic!("{p:?} cannot be written: {e}"));
            let again = profile::parse(path, &toml)
                .unwrap_or_else(|e| panic!("written back, the profile fails: {e}\n{toml}"));
            assert_eq!(again, p, "\n{toml}");
            assert_eq!(again.to_toml().unwrap(), toml, "not a fixed point");
            true
        }
    }
}
