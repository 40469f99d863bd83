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
    // Volatile writes so the wipe is not optimised away as a dead store.
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a byte of our buffer.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::write_volatile(b, 0)
        };
    }
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
    fn first_line_without_line_ending() {
        assert_eq!(Secret::from_text("abc\r\n").expose(), b"abc");
        assert_eq!(Secret::from_text("abc").expose(), b"abc");
        assert_eq!(Secret::from_text(" a b \n").expose(), b" a b ");
        assert!(Secret::from_text("\nabc").is_empty());
    }
}
