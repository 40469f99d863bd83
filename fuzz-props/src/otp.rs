//! `otp`: one-time sequence lists in knockd's format, shared by `knock` and the server,
//! and the one routine both ends use to mark a line used.
//!
//! Properties:
//! * every unused line is reported at its own line number and byte offset (the start of
//!   that line), in order, with the hits (or the error) of its trimmed text, and no other
//!   line is; errors print as one printable line;
//! * `#` written over the first unused line (what marking does) removes exactly that line;
//! * on disk: `peek` gives the first unused line, or says why not (used up, a bad line, not
//!   UTF-8, each with the right line number); `consume` sends that line, marks it and
//!   changes nothing else; and `mark_used`, handed the real lines and near misses of them
//!   (one byte off, one line off, another line's hits, a line already used), marks exactly
//!   when it is handed an unused line of the file as it now is, and otherwise leaves the
//!   file alone.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use knock_core::hit::{Proto, parse_sequence};
use knock_core::otp::file::{ConsumeError, MarkError, OtpFileError, consume, mark_used, peek};
use knock_core::otp::{OtpError, OtpLine, first_unused, unused_lines};

use crate::printable_message;

/// Accepted: the list has a usable first line.
pub fn check(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<Result<OtpLine, OtpError>> = unused_lines(&text).collect();
    positions(&text, &lines);
    assert_eq!(first_unused(&text), lines.first().cloned().transpose());
    if let Some(Ok(first)) = lines.first()
        && text.as_bytes()[first.offset as usize].is_ascii()
    {
        let marked = marked(text.as_bytes(), first);
        let marked = String::from_utf8(marked).expect("ASCII over ASCII");
        let after: Vec<_> = unused_lines(&marked).collect();
        assert_eq!(
            after,
            lines[1..],
            "marking line {} changed others",
            first.line_no
        );
    }
    on_disk(data)
}

/// Every unused line where it says it is, and every line that is not skipped reported.
fn positions(text: &str, lines: &[Result<OtpLine, OtpError>]) {
    let mut reported = lines.iter().peekable();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let content = raw.trim();
        let start = offset;
        offset += raw.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let item = reported
            .next()
            .unwrap_or_else(|| panic!("line {} ({content:?}) not reported", i + 1));
        match (item, parse_sequence(content, Proto::Tcp)) {
            (Ok(line), Ok(hits)) => {
                assert_eq!((line.line_no, line.offset as usize), (i + 1, start));
                assert_eq!(line.hits, hits);
            }
            (Err(e), Err(error)) => {
                assert_eq!((e.line_no, &e.error), (i + 1, &error));
                printable_message(&e.to_string());
            }
            (item, parsed) => panic!("line {}: reported {item:?}, parses {parsed:?}", i + 1),
        }
    }
    assert!(reported.next().is_none(), "a skipped line was reported");
}

/// `bytes` with line `line` marked used.
fn marked(bytes: &[u8], line: &OtpLine) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[line.offset as usize] = b'#';
    out
}

/// A list file of its own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(bytes: &[u8]) -> Scratch {
        // tmpfs where there is one: mark_used syncs every write to disk.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let thread = format!("{:?}", std::thread::current().id());
        let name: String = thread.chars().filter(char::is_ascii_digit).collect();
        let path = dir.join(format!("knock-fuzz-otp-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        Scratch(path)
    }

    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.0).expect("read the scratch list")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn on_disk(data: &[u8]) -> bool {
    let file = Scratch::new(data);
    let path = &file.0;
    let peeked = peek(path);
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(e) => {
            let line = data[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            match peeked {
                Err(OtpFileError::NotUtf8 { line_no, .. }) => assert_eq!(line_no, line),
                other => panic!("not UTF-8 at line {line}, yet peek says {other:?}"),
            }
            return false;
        }
    };
    let line = match (first_unused(text), peeked) {
        (Ok(Some(want)), Ok(got)) => {
            assert_eq!(got, want);
            got
        }
        (Ok(None), Err(OtpFileError::Exhausted { .. })) => return false,
        (Err(want), Err(OtpFileError::BadLine { line_no, error, .. })) => {
            assert_eq!((line_no, error), (want.line_no, want.error));
            return false;
        }
        (want, got) => panic!("first unused line {want:?}, peek says {got:?}"),
    };
    // Unused lines, a bad one too: the next run reports it rather than skip it.
    let unused = unused_lines(text).count();
    let sent = consume(path, |l| Ok::<_, Infallible>(l.clone()));
    let mut now = data.to_vec();
    match sent {
        Ok(used) if data[line.offset as usize].is_ascii() => {
            assert_eq!((&used.line, &used.value), (&line, &line));
            assert_eq!(used.remaining, unused - 1);
            now = marked(data, &line);
            assert_eq!(file.read(), now, "consume wrote more than one '#'");
        }
        Err(ConsumeError::List(OtpFileError::NotAsciiStart { line_no, .. }))
            if !data[line.offset as usize].is_ascii() =>
        {
            assert_eq!(line_no, line.line_no);
            assert_eq!(file.read(), now, "a refused consume wrote");
        }
        other => panic!("consume of {line:?}: {other:?}"),
    }
    for candidate in candidates(text) {
        let text_now = String::from_utf8(now.clone()).expect("still UTF-8");
        let unused_now = unused_lines(&text_now).any(|l| l.is_ok_and(|l| l == candidate));
        let ascii = now.get(candidate.offset as usize).is_some_and(u8::is_ascii);
        match mark_used(path, &candidate) {
            Ok(()) => {
                assert!(
                    unused_now && ascii,
                    "marked {candidate:?}, not an unused line"
                );
                now = marked(&now, &candidate);
            }
            // Refused for its first byte before its hits were compared: a refusal either way.
            Err(MarkError::NotAsciiStart) => assert!(!ascii, "{candidate:?}"),
            Err(MarkError::Changed) => assert!(!unused_now, "refused {candidate:?}"),
            Err(e @ (MarkError::Io { .. } | MarkError::Replaced)) => panic!("{e}"),
        }
        assert_eq!(file.read(), now, "after mark_used({candidate:?})");
    }
    true
}

/// The first few unused lines of `text`, and near misses of each: what a client and a
/// server holding slightly different copies of a list might hand `mark_used`.
fn candidates(text: &str) -> Vec<OtpLine> {
    let lines: Vec<OtpLine> = unused_lines(text).take(4).filter_map(Result::ok).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut off_by_one = line.clone();
        off_by_one.offset += 1;
        out.push(off_by_one);
        let mut back = line.clone();
        back.offset = back.offset.saturating_sub(1);
        out.push(back);
        let mut next_line = line.clone();
        next_line.line_no += 1;
        out.push(next_line);
        if let Some(other) = lines.get(i + 1) {
            let mut swapped = line.clone();
            swapped.hits.clone_from(&other.hits);
            out.push(swapped);
        }
        // The real line, twice: the second time it is used already.
        out.push(line.clone());
        out.push(line.clone());
    }
    out
}
