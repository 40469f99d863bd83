//! `stops`: knockd-lite's stop journal, the stop commands still due when the server ended,
//! which it runs after a restart. A journal that reads differently from what was written
//! is a door left open (a stop lost) or a wrong command run.
//!
//! Properties:
//! * the input read as a journal: rejected with `path:line: message` on a line of the
//!   file and a printable message (the server logs it when it sets a journal aside);
//!   accepted, written back it reads the same, and writing that again gives the same text;
//! * the input read as stops (door names and commands with any characters, addresses,
//!   times, as `arbitrary` builds them): written, they read back exactly.

use std::net::IpAddr;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use knockd_lite::fuzzing::{Pending, format_stops, parse_stops};

use crate::{rejected, text};

const PATH: &str = "/var/lib/knockd-lite/fuzz.conf.0123456789abcdef.stops";

/// Accepted: the input is a journal.
pub fn check(data: &[u8]) -> bool {
    if let Ok(stops) = stops_from(Unstructured::new(data)) {
        written_and_read(&stops);
    }
    let input = text(data);
    match parse_stops(&input, Path::new(PATH)) {
        Ok(stops) => {
            let written = written_and_read(&stops);
            let again = parse_stops(&written, Path::new(PATH)).expect("read once already");
            assert_eq!(format_stops(&again), written, "not a fixed point");
            true
        }
        Err(e) => rejected(e, Path::new(PATH), &input),
    }
}

/// Stops as the server makes them: a door name and a command are never empty (a door
/// without a stop command schedules no stop).
fn stops_from(mut u: Unstructured<'_>) -> arbitrary::Result<Vec<Pending>> {
    let mut out = Vec::new();
    while !u.is_empty() {
        let stop = Pending {
            door: String::arbitrary(&mut u)?,
            src: IpAddr::arbitrary(&mut u)?,
            template: String::arbitrary(&mut u)?,
            due_ms: u64::arbitrary(&mut u)?,
            delay_ms: u64::arbitrary(&mut u)?,
        };
        if !stop.door.is_empty() && !stop.template.is_empty() {
            out.push(stop);
        }
    }
    Ok(out)
}

/// `stops` written, then read back: the same stops.
fn written_and_read(stops: &[Pending]) -> String {
    let text = format_stops(stops);
    let back = parse_stops(&text, Path::new(PATH))
        .unwrap_or_else(|e| panic!("written, the journal fails: {e}\n{text:?}"));
    assert_eq!(back, stops, "\n{text:?}");
    text
}
