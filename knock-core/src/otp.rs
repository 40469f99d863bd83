//! One-time sequence lists in knockd's file format (reading and generating; no I/O here,
//! the file half is [`file`](mod@file)).
//!
//! One sequence per line, in the hit grammar. A `#` in column 0 marks a used line (knockd
//! overwrites the first character of a line when it consumes it, which is why lines are
//! written with a leading space). Blank lines and lines whose first non-blank character is
//! `#` are skipped.

use crate::hit::{Hit, HitError, Proto, parse_sequence};
use crate::hmac::PortRange;

pub mod file;

/// An unused line of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtpLine {
    /// 1-based line number.
    pub line_no: usize,
    /// Byte offset of the line's first character: the byte that becomes `#` once used.
    pub offset: u64,
    pub hits: Vec<Hit>,
}

/// An unused line that does not parse. The message says what is wrong and never quotes the
/// line ([`HitError::without_text`]): a one-time list is a secret, and a file named as one
/// by mistake may be another. It is not also the `source()`: a context chain (`{:#}`)
/// would print it twice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line_no}: {}", error.without_text())]
pub struct OtpError {
    pub line_no: usize,
    pub error: HitError,
}

/// Every unused line in file order, each parsed or with its error.
pub fn unused_lines(text: &str) -> impl Iterator<Item = Result<OtpLine, OtpError>> + '_ {
    let mut offset = 0u64;
    text.split_inclusive('\n')
        .enumerate()
        .filter_map(move |(i, raw)| {
            let start = offset;
            offset += raw.len() as u64;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                return None;
            }
            Some(
                parse_sequence(content, Proto::Tcp)
                    .map(|hits| OtpLine {
                        line_no: i + 1,
                        offset: start,
                        hits,
                    })
                    .map_err(|error| OtpError {
                        line_no: i + 1,
                        error,
                    }),
            )
        })
}

/// The first unused line, if any. A bad line before it is an error, never skipped, so that
/// client and server cannot drift apart over a line only one of them accepts.
pub fn first_unused(text: &str) -> Result<Option<OtpLine>, OtpError> {
    unused_lines(text).next().transpose()
}

/// Protocol mix for generated lists: the same choice, with the same names, as a
/// knock-hmac-v1 door's protocols (for `mixed`, each hit draws its own at random).
pub use crate::hmac::Protocols as GenProtocols;

/// Writes `count` lines of `length` distinct random ports from `ports`, each line starting
/// with a space. `random` supplies uniformly random u32 values (the OS CSPRNG in `knock`),
/// or `None` once it has failed, which stops generation with an error: a source stuck on
/// one value would otherwise never yield a second distinct port.
pub fn generate(
    count: usize,
    length: usize,
    ports: PortRange,
    protocols: GenProtocols,
    mut random: impl FnMut() -> Option<u32>,
) -> Result<String, String> {
    if length == 0 {
        return Err("length must be at least 1".into());
    }
    if (ports.size() as usize) < length {
        return Err(format!(
            "port range {ports} has {} ports, fewer than the length {length}",
            ports.size()
        ));
    }
    let pool = ports.size();
    // Rejection sampling keeps every port equally likely.
    let limit = u32::MAX - (u32::MAX % pool);
    let mut out = String::new();
    let mut random = || random().ok_or_else(|| "the random source failed".to_string());
    for _ in 0..count {
        let mut line: Vec<Hit> = Vec::with_capacity(length);
        while line.len() < length {
            let r = random()?;
            if r >= limit {
                continue;
            }
            let port = (u32::from(ports.lo) + r % pool) as u16;
            if line.iter().any(|h| h.port == port) {
                continue;
            }
            let udp = match protocols {
                GenProtocols::Tcp => false,
                GenProtocols::Udp => true,
                GenProtocols::Mixed => random()? & 1 == 1,
            };
            line.push(if udp { Hit::udp(port) } else { Hit::tcp(port) });
        }
        out.push(' ');
        out.push_str(&crate::hit::format_sequence(&line));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "# my list\n\n#1001,1002\n 2001,2002:udp\n\t3001\n";

    #[test]
    fn skips_used_blank_and_comment_lines() {
        let lines: Vec<_> = unused_lines(LIST).collect::<Result<_, _>>().unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line_no, 4);
        assert_eq!(lines[0].offset, 22);
        assert_eq!(&LIST[22..23], " ");
        assert_eq!(lines[0].hits, vec![Hit::tcp(2001), Hit::udp(2002)]);
        assert_eq!(lines[1].line_no, 5);
        assert_eq!(lines[1].hits, vec![Hit::tcp(3001)]);
    }

    #[test]
    fn indented_hash_is_a_comment() {
        let first = first_unused("  # note\n 5,6\n").unwrap().unwrap();
        assert_eq!(first.line_no, 2);
    }

    #[test]
    fn crlf_and_no_trailing_newline() {
        let first = first_unused("#1\r\n 7,8\r\n").unwrap().unwrap();
        assert_eq!((first.line_no, first.offset), (2, 4));
        assert_eq!(first.hits, vec![Hit::tcp(7), Hit::tcp(8)]);
        assert_eq!(first_unused(" 9").unwrap().unwrap().hits, vec![Hit::tcp(9)]);
        assert_eq!(first_unused("#1\n#2\n\n").unwrap(), None);
        assert_eq!(first_unused("").unwrap(), None);
    }

    #[test]
    fn bad_line_is_an_error() {
        let err = first_unused("#1\n 1,abc\n 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: not a sequence: a port that is not a number from 1 to 65535 (the line is \
             not shown: the file may hold a secret)"
        );
    }

    /// The hostile run's finding: a secret file named as a one-time list had its first line
    /// printed in the error, and on SIGHUP written to the log.
    #[test]
    fn a_bad_line_is_never_quoted() {
        for secret in [
            "c29tZSBzZWNyZXQga2V5IG1hdGVyaWFs\n",
            "correct horse battery staple\n",
            "7000,hunter2\n",
            "tcp:7000:s3cr3t\n",
        ] {
            let err = first_unused(secret).unwrap_err().to_string();
            let words = secret.split(|c: char| !c.is_alphanumeric());
            for word in words.filter(|w| w.len() > 3) {
                assert!(!err.contains(word), "{word:?} in {err:?}");
            }
        }
    }

    #[test]
    fn generated_lists_parse_back() {
        let mut state = 0x1234_5678u32;
        let rng = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            Some(state)
        };
        let range = PortRange { lo: 2000, hi: 2009 };
        let text = generate(20, 10, range, GenProtocols::Mixed, rng).unwrap();
        let lines: Vec<_> = unused_lines(&text).collect::<Result<_, _>>().unwrap();
        assert_eq!(lines.len(), 20);
        let mut saw_udp = false;
        for (line, raw) in lines.iter().zip(text.lines()) {
            assert!(raw.starts_with(' '));
            let mut ports: Vec<u16> = line.hits.iter().map(|h| h.port).collect();
            ports.sort_unstable();
            assert_eq!(ports, (2000..=2009).collect::<Vec<_>>());
            saw_udp |= line.hits.iter().any(|h| h.proto == Proto::Udp);
        }
        assert!(saw_udp);
        assert_eq!(
            generate(1, 11, range, GenProtocols::Tcp, || Some(0)),
            Err("port range 2000-2009 has 10 ports, fewer than the length 11".to_string())
        );
    }

    #[test]
    fn a_failing_random_source_stops_generation() {
        let range = PortRange { lo: 2000, hi: 2009 };
        // Fails at once, and after a few values (mid-line, in the protocol draw too).
        for good in [0u32, 1, 3] {
            for protocols in [GenProtocols::Tcp, GenProtocols::Mixed] {
                let mut values = 1..=good;
                let random = move || values.next();
                assert_eq!(
                    generate(2, 4, range, protocols, random),
                    Err("the random source failed".to_string()),
                    "{good} good values, {protocols}"
                );
            }
        }
    }
}
