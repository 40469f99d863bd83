//! Quoting what a user wrote in a message: at most a short excerpt, so a 30 MB line in a
//! config makes a one-line error, not a 30 MB one (in the log, too).

use std::fmt::{self, Write as _};

/// Characters of the text a message quotes before it cuts.
pub const MAX_QUOTED_CHARS: usize = 60;

/// `s` for a message: Rust's `{:?}` quoting (so control characters show), of at most
/// [`MAX_QUOTED_CHARS`] characters; a longer text is cut there and followed by `…` and
/// its length. Use it as `{:?}` or `{}`: both print the quoted excerpt.
pub fn quoted(s: &str) -> Quoted<'_> {
    Quoted(s)
}

/// See [`quoted`].
#[derive(Clone, Copy)]
pub struct Quoted<'a>(&'a str);

/// `s` as it is, for a message that shows it unquoted (a number as written): at most
/// [`MAX_QUOTED_CHARS`] characters, then `…` and its length. Control characters are
/// escaped as `{:?}` escapes them (`\t`, `\u{1b}`), and count as the characters shown.
pub fn excerpt(s: &str) -> Excerpt<'_> {
    Excerpt(s, MAX_QUOTED_CHARS)
}

/// Characters kept of a library's message (a TOML parser's error) that ours passes on: it
/// may quote what was written at any length.
pub const MAX_FOREIGN_CHARS: usize = 300;

/// A library's message for one of ours: at most [`MAX_FOREIGN_CHARS`] characters, then `…`
/// and its length; control characters escaped, as in [`excerpt`] (TOML quotes a key
/// as written, and a quoted key may hold a tab or, written `\u001b`, a terminal escape).
pub fn foreign(s: &str) -> Excerpt<'_> {
    Excerpt(s, MAX_FOREIGN_CHARS)
}

/// See [`excerpt`] and [`foreign`]: the text, and the characters kept.
#[derive(Clone, Copy, Debug)]
pub struct Excerpt<'a>(&'a str, usize);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = 0;
        for c in self.0.chars() {
            let width = if c.is_control() {
                c.escape_debug().count()
            } else {
                1
            };
            shown += width;
            if shown > self.1 {
                return write!(f, "… ({} bytes)", self.0.len());
            }
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(MAX_QUOTED_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_quoted_whole_and_long_ones_cut() {
        assert_eq!(quoted("7000,x").to_string(), "\"7000,x\"");
        assert_eq!(format!("{:?}", quoted("a\tb")), "\"a\\tb\"");
        let exact = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(quoted(&exact).to_string(), format!("{exact:?}"));
        assert_eq!(excerpt("-5").to_string(), "-5");
        let digits = "9".repeat(100);
        assert_eq!(
            excerpt(&digits).to_string(),
            format!("{}… (100 bytes)", "9".repeat(MAX_QUOTED_CHARS))
        );
        let message = format!("unknown field `{}`", "k".repeat(400));
        let cut = foreign(&message).to_string();
        assert_eq!(
            cut.chars().count(),
            MAX_FOREIGN_CHARS + "… (416 bytes)".len() - 2
        );
        assert!(cut.ends_with("k… (416 bytes)"), "{cut}");
        // Control characters escaped, and counted as shown.
        assert_eq!(
            foreign("unknown field `a\t\u{1b}[31mb\r`").to_string(),
            "unknown field `a\\t\\u{1b}[31mb\\r`"
        );
        assert_eq!(excerpt("1\n2").to_string(), "1\\n2");
        let tabs = format!("9{}", "\t".repeat(100));
        assert_eq!(
            excerpt(&tabs).to_string(),
            format!("9{}… (101 bytes)", "\\t".repeat((MAX_QUOTED_CHARS - 1) / 2))
        );
        let long = "é".repeat(30_000_000 / 2);
        let shown = quoted(&long).to_string();
        assert_eq!(
            shown,
            format!("{:?}… (30000000 bytes)", "é".repeat(MAX_QUOTED_CHARS))
        );
    }
}
