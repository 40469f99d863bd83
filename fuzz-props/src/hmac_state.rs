//! `hmac_state`: knockd-lite's used-HMAC-counter file, which must survive a restart
//! exactly (a counter lost is a sequence that opens its door twice).
//!
//! Properties:
//! * the input read as a state file: rejected with `path:line: message` on a line of the
//!   file and a printable message; accepted, written back it reads the same, and writing
//!   that again gives the same text;
//! * the input read as counters (door names and numbers, as `arbitrary` builds them):
//!   written, they read back exactly, unless a door name cannot be written and the writer
//!   says so.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use knockd_lite::fuzzing::{StateError, UsedCounters, format_counters, parse_counters};

use crate::{printable_message, rejected, text};

const PATH: &str = "/var/lib/knockd-lite/fuzz.conf.hmac-used";

/// Accepted: the input is a state file.
pub fn check(data: &[u8]) -> bool {
    if let Ok(used) = UsedCounters::arbitrary_take_rest(Unstructured::new(data)) {
        written_and_read(&used);
    }
    let input = text(data);
    match parse_counters(&input, Path::new(PATH)) {
        Ok(used) => {
            let written = written_and_read(&used).expect("a file that was read can be written");
            let again = parse_counters(&written, Path::new(PATH)).expect("read once already");
            assert_eq!(
                format_counters(&again, Path::new(PATH)).ok(),
                Some(written),
                "not a fixed point"
            );
            true
        }
        Err(e) => rejected(e, Path::new(PATH), &input),
    }
}

/// `used` written, then read back: the same counters, or a refusal that says why.
fn written_and_read(used: &UsedCounters) -> Option<String> {
    match format_counters(used, Path::new(PATH)) {
        Ok(text) => {
            let back = parse_counters(&text, Path::new(PATH))
                .unwrap_or_else(|e| panic!("written, the file fails: {e}\n{text:?}"));
            assert_eq!(&back, used, "\n{text:?}");
            Some(text)
        }
        Err(StateError::Format {
            line: 0, message, ..
        }) => {
            assert!(used.keys().any(|door| door.contains('\n')), "{message}");
            printable_message(&message);
            None
        }
        Err(e) => panic!("formatting did I/O: {e}"),
    }
}
