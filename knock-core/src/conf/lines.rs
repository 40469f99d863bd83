//! Lines of a config file as bytes: comment lines may hold any bytes, other text must be UTF-8.

/// One line that is neither blank nor a `#` comment, trimmed, with its 1-based number.
pub(super) struct Line<'a> {
    pub(super) number: usize,
    pub(super) bytes: &'a [u8],
}

/// The lines that carry something: a byte-order mark at the start is skipped, `\n` and
/// `\r\n` both end a line, and lines that are blank or start with `#` after trimming (as
/// knockd trims them) are left out whatever bytes they hold.
pub(super) fn significant(text: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, raw)| Line {
            number: i + 1,
            bytes: raw.trim_ascii(),
        })
        .filter(|l| !l.bytes.is_empty() && l.bytes[0] != b'#')
}

/// `bytes` as text, or a message naming the first byte that is not UTF-8 and its column
/// in the line (`offset` is where `bytes` starts in the trimmed line).
pub(super) fn text(bytes: &[u8], offset: usize) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        format!(
            "byte 0x{:02X} at column {} is not UTF-8 (only comments may hold other bytes: \
             convert the file, e.g. iconv -f latin1 -t utf-8)",
            bytes[at],
            offset + at + 1
        )
    })
}

/// Splits a value from a trailing comment: a `#` at the start of the value or after
/// whitespace. The value comes back trimmed; the comment (from its `#`) as written.
pub(super) fn split_comment(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    let at = value
        .iter()
        .enumerate()
        .position(|(i, &b)| b == b'#' && (i == 0 || value[i - 1].is_ascii_whitespace()));
    match at {
        Some(i) => (value[..i].trim_ascii(), Some(&value[i..])),
        None => (value, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_skip_blanks_comments_and_the_byte_order_mark() {
        let text = b"\xef\xbb\xbf# caf\xe9\r\n\n  \t\n [d] \r\n\t# \xff\xfe\nkey = v\n";
        let got: Vec<(usize, &[u8])> = significant(text).map(|l| (l.number, l.bytes)).collect();
        assert_eq!(got, [(4, &b"[d]"[..]), (6, &b"key = v"[..])]);
    }

    #[test]
    fn text_names_the_first_bad_byte() {
        assert_eq!(text(b"abc", 0), Ok("abc"));
        assert_eq!(
            text(b"echo caf\xe9", 10).unwrap_err(),
            "byte 0xE9 at column 19 is not UTF-8 (only comments may hold other bytes: \
             convert the file, e.g. iconv -f latin1 -t utf-8)"
        );
    }

    #[test]
    fn comments_start_at_a_hash_after_whitespace() {
        type Row<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);
        let table: &[Row] = &[
            (b"7000,8000 # open", b"7000,8000", Some(b"# open")),
            (b"5\t#s", b"5", Some(b"#s")),
            (b"# all comment", b"", Some(b"# all comment")),
            (b"5#x", b"5#x", None),
            (b"5 # caf\xe9", b"5", Some(b"# caf\xe9")),
            (b"plain", b"plain", None),
        ];
        for (input, value, comment) in table {
            assert_eq!(split_comment(input), (*value, *comment), "{input:?}");
        }
    }
}
