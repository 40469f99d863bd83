//! A shared secret that never shows itself in `Debug`, `Display`, errors or logs.

use std::fmt;

pub mod source;

/// Secret bytes. Wiped from memory on drop; formatting prints only `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// The secret from text as typed or read from a file: the first line, without its
    /// line ending (`\n` or `\r\n`).
    pub fn from_text(text: &str) -> Secret {
        let line = text.split('\n').next().unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        Secret(line.as_bytes().to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Zeroes a buffer that held secret bytes (a file read, a typed line) before it is freed.
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // A store into memory about to be freed is dead to the optimiser; handing the buffer to
    // black_box makes the zeros observable, so the fill stays (without `unsafe`, which this
    // crate keeps to its OS modules).
    std::hint::black_box(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_text("hunter2\nsecond line");
        assert_eq!(s.expose(), b"hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut bytes = *b"hunter2";
        wipe(&mut bytes);
        assert_eq!(bytes, [0; 7]);
    }

    #[test]
    fn first_line_without_line_ending() {
        assert_eq!(Secret::from_text("abc\r\n").expose(), b"abc");
        assert_eq!(Secret::from_text("abc").expose(), b"abc");
        assert_eq!(Secret::from_text(" a b \n").expose(), b" a b ");
        assert!(Secret::from_text("\nabc").is_empty());
    }
}
