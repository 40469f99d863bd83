//! Every parser's fuzz target, written once as a property over bytes.
//!
//! Each module's `check(&[u8]) -> bool` panics when a property fails and returns whether
//! the input was accepted (it parsed). Two drivers call the same functions:
//!
//! * cargo-fuzz (`fuzz/fuzz_targets/*.rs`, nightly, coverage-guided), for long campaigns
//!   (`fuzz/campaign.sh`);
//! * [`driver`], on the stable toolchain: the seed corpus, then a fixed number of inputs
//!   mutated from it with a fixed seed. `cargo test` runs it for every target
//!   (`tests/stable.rs`), and `fuzz-stable` runs it for as long as you like.
//!
//! `fuzz/README.md` describes the targets, their properties, seeds and dictionaries.

mod alloc;
pub mod driver;
pub mod mutate;

pub mod build_parse;
pub mod conf;
pub mod filter;
pub mod hit;
pub mod hmac_state;
pub mod keeper;
pub mod otp;
pub mod packet;
pub mod profile;
pub mod stops;
pub mod tportknockd;
pub mod worker_channel;

use std::borrow::Cow;

/// A fuzz target as both drivers see it.
pub struct Target {
    /// Also the cargo-fuzz binary's name and the folder of its seeds.
    pub name: &'static str,
    /// Panics when a property fails; returns whether the input was accepted.
    pub check: fn(&[u8]) -> bool,
    /// Executions in `cargo test` (unoptimized): a few seconds' worth on a slow machine.
    pub ci_execs: usize,
    /// Longest input the stable driver makes.
    pub max_len: usize,
}

/// Every target, in the order the campaign runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "conf",
        check: conf::check,
        ci_execs: 30_000,
        max_len: 4096,
    },
    Target {
        name: "tportknockd",
        check: tportknockd::check,
        ci_execs: 30_000,
        max_len: 4096,
    },
    Target {
        name: "hit",
        check: hit::check,
        ci_execs: 60_000,
        max_len: 512,
    },
    Target {
        name: "profile",
        check: profile::check,
        ci_execs: 20_000,
        max_len: 4096,
    },
    Target {
        name: "otp",
        check: otp::check,
        ci_execs: 6_000,
        max_len: 4096,
    },
    Target {
        name: "hmac_state",
        check: hmac_state::check,
        ci_execs: 50_000,
        max_len: 4096,
    },
    Target {
        name: "stops",
        check: stops::check,
        ci_execs: 50_000,
        max_len: 4096,
    },
    Target {
        name: "keeper",
        check: keeper::check,
        ci_execs: 10_000,
        max_len: 4096,
    },
    Target {
        name: "packet",
        check: packet::check,
        ci_execs: 100_000,
        max_len: 2048,
    },
    Target {
        name: "build_parse",
        check: build_parse::check,
        ci_execs: 60_000,
        max_len: 2048,
    },
    Target {
        name: "filter",
        check: filter::check,
        ci_execs: 40_000,
        max_len: 2048,
    },
    Target {
        name: "worker_channel",
        check: worker_channel::check,
        ci_execs: 60_000,
        max_len: 1024,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Bytes as the text a file reader would hand a parser: invalid UTF-8 becomes U+FFFD, so
/// mutations that break a character still reach the parser.
pub(crate) fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Checks an error message the way a log or terminal shows it: non-empty, one line, and no
/// control characters (a message quoting input must escape it, or a crafted file could
/// forge log lines or terminal escapes).
pub(crate) fn printable_message(message: &str) {
    assert!(!message.is_empty(), "empty message");
    assert!(
        !message.chars().any(char::is_control),
        "control character in message {message:?}"
    );
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "a message of {} characters: {message:?}",
        message.chars().count()
    );
}

/// The longest message a bad file may produce: the longest fixed wording (about 250
/// characters) and a few quotes of at most `knock_core::text::MAX_QUOTED_CHARS` characters
/// each, `{:?}`-escaped (up to 10 bytes a character), so that a 30 MB line never makes a 30
/// MB message.
pub(crate) const MAX_MESSAGE_CHARS: usize = 2000;

/// A state file (HMAC counters, stop journal) refused: the property every such refusal
/// holds, `path:line: message` with this path, a line of the input, a printable message.
/// Returns false (the input was not accepted).
pub(crate) fn rejected(
    e: knockd_lite::fuzzing::StateError,
    path: &std::path::Path,
    input: &str,
) -> bool {
    match e {
        knockd_lite::fuzzing::StateError::Format {
            path: at,
            line,
            message,
        } => {
            assert_eq!(at, path);
            let lines = line_count(input);
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            printable_message(&message);
            false
        }
        e => panic!("parsing text did I/O: {e}"),
    }
}

/// Lines as the parsers count them (`str::lines`): what a `path:line` may point at.
pub(crate) fn line_count(text: &str) -> usize {
    text.lines().count()
}
