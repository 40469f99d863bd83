//! `keeper`: the channel on which knockd-lite tells its stop keeper of every pending stop.
//! The keeper runs a door's stop on time when the daemon dies: a message read otherwise than
//! it was written is a stop lost or a wrong one run, and a message it refuses ends it.
//!
//! Properties:
//! * the input read as the channel's byte stream, frame after frame as the keeper reads
//!   it: each frame decodes to a message that encodes back to exactly its bytes (the
//!   encoding promises one frame per message: fixed-width fields, flags 0 or 1, a body
//!   used up exactly, so there is no other form to fold onto a canonical one); reading
//!   ends at an error, whose message is printable (the keeper logs it), or at a frame not
//!   all there, which is waited for only while it can still become one (fewer than 4
//!   bytes, or a length within the limit and fewer bytes than it says);
//! * a frame's outcome is its own: the frame alone gives the same outcome (the bytes after
//!   it change nothing), and a cut of it is waited for (`Ok(None)`);
//! * decoding holds at most as many bytes of memory as the input has, never more than the
//!   limit: a length prefix cannot make it reserve memory the bytes are not there for;
//! * the other way, messages built from the bytes (`arbitrary`; texts and paths with any
//!   characters, up to 80 KiB): encoded one after another, each decodes back exactly,
//!   alone and in the stream, or its encoding is refused because its body is over the limit
//!   (and only then); a stop with an empty door name or command (which no door schedules)
//!   is refused as such.

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use knockd_lite::fuzzing::{
    KEEPER_MAX_BODY, KeeperDecodeError, KeeperMessage, KeeperTooLong, Pending, decode_keeper,
    encode_keeper,
};

use crate::alloc::peak;
use crate::printable_message;

/// The most bytes the messages built from one input may repeat their texts to: past the
/// 64 KiB limit, and no more (copying long texts is most of this target's time).
const LONG_BUDGET: usize = 80 * 1024;

/// Accepted: the input starts with at least one whole message.
pub fn check(data: &[u8]) -> bool {
    if let Ok(messages) = messages_from(Unstructured::new(data)) {
        round_trip(&messages);
    }
    let mut at = 0;
    let mut frames = 0;
    while at <= data.len() {
        let rest = &data[at..];
        let (outcome, held) = peak(|| decode_keeper(rest));
        assert!(
            held <= rest.len().min(KEEPER_MAX_BODY),
            "decoding {} bytes held {held} bytes at once",
            rest.len()
        );
        let end = match &outcome {
            Ok(Some((m, used))) => {
                assert!(
                    (5..=rest.len()).contains(used),
                    "used {used} of {}",
                    rest.len()
                );
                assert_eq!(
                    encode_keeper(m).as_deref(),
                    Ok(&rest[..*used]),
                    "{m:?} is not encoded as it was read"
                );
                *used
            }
            Ok(None) => {
                if let Some(len) = rest.first_chunk::<4>() {
                    let len = u32::from_be_bytes(*len) as usize;
                    assert!(
                        len <= KEEPER_MAX_BODY && rest.len() < 4 + len,
                        "waits for a frame of {len} bytes with {} there",
                        rest.len()
                    );
                }
                break;
            }
            Err(KeeperDecodeError::TooLong(len)) => {
                assert!(*len > KEEPER_MAX_BODY, "{len} bytes called too long");
                4
            }
            Err(_) => {
                let len = u32::from_be_bytes(*rest.first_chunk::<4>().expect("a length"));
                4 + len as usize
            }
        };
        if let Err(e) = &outcome {
            printable_message(&e.to_string());
        }
        assert_eq!(
            decode_keeper(&rest[..end]),
            outcome,
            "the bytes after a frame changed it"
        );
        // The cuts inside the length and the first fields, half way and one byte short:
        // every cut of a long stream took a fifth of the time, and a cut further in meets
        // the same check (fewer bytes than the length says).
        for cut in (0..end.min(16)).chain([end / 2, end - 1]) {
            assert_eq!(
                decode_keeper(&rest[..cut]),
                Ok(None),
                "cut at {cut} of {end}"
            );
        }
        if outcome.is_err() {
            break;
        }
        at += end;
        frames += 1;
    }
    frames > 0
}

/// Messages as the daemon sends them, and some it never does (empty stops).
fn messages_from(mut u: Unstructured<'_>) -> arbitrary::Result<Vec<KeeperMessage>> {
    let mut out = Vec::new();
    let mut budget = LONG_BUDGET;
    while !u.is_empty() {
        let m = match u.int_in_range(0..=4u8)? {
            0 => KeeperMessage::Hello {
                daemon_pid: u.arbitrary()?,
                limit_ms: u.arbitrary()?,
            },
            1 => KeeperMessage::Log {
                file: path(&mut u, &mut budget)?,
                syslog: path(&mut u, &mut budget)?,
            },
            2 => KeeperMessage::Schedule {
                id: u.arbitrary()?,
                due_ms: u.arbitrary()?,
                stop: Pending {
                    door: long_text(&mut u, &mut budget)?,
                    src: IpAddr::arbitrary(&mut u)?,
                    template: long_text(&mut u, &mut budget)?,
                    due_ms: u.arbitrary()?,
                    delay_ms: u.arbitrary()?,
                },
            },
            3 => KeeperMessage::Done { id: u.arbitrary()? },
            _ => KeeperMessage::Bye,
        };
        out.push(m);
    }
    Ok(out)
}

/// How many times to repeat `len` bytes: one time in eight up to 65,535 times (within
/// `budget`), since a stop command is one config line and nothing bounds a line's length.
fn times(u: &mut Unstructured<'_>, len: usize, budget: &mut usize) -> arbitrary::Result<usize> {
    let times = if u.ratio(1u8, 8)? {
        usize::from(u.int_in_range(1..=u16::MAX)?)
    } else {
        1
    };
    let times = times.min(*budget / len.max(1)).max(1);
    *budget = budget.saturating_sub(len * times);
    Ok(times)
}

fn long_bytes(u: &mut Unstructured<'_>, budget: &mut usize) -> arbitrary::Result<Vec<u8>> {
    let bytes = Vec::<u8>::arbitrary(u)?;
    Ok(bytes.repeat(times(u, bytes.len(), budget)?))
}

/// Made valid before it is repeated: checking 80 KiB of UTF-8 took a third of the time.
fn long_text(u: &mut Unstructured<'_>, budget: &mut usize) -> arbitrary::Result<String> {
    let text = String::from_utf8_lossy(&Vec::<u8>::arbitrary(u)?).into_owned();
    Ok(text.repeat(times(u, text.len(), budget)?))
}

fn path(u: &mut Unstructured<'_>, budget: &mut usize) -> arbitrary::Result<Option<PathBuf>> {
    Ok(if bool::arbitrary(u)? {
        Some(OsString::from_vec(long_bytes(u, budget)?).into())
    } else {
        None
    })
}

/// `messages` encoded one after another read back exactly, alone and as a stream.
fn round_trip(messages: &[KeeperMessage]) {
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for m in messages {
        let frame = match encode_keeper(m) {
            Ok(frame) => frame,
            Err(KeeperTooLong(body)) => {
                assert!(body > KEEPER_MAX_BODY, "a body of {body} bytes refused");
                continue;
            }
        };
        assert!(frame.len() <= 4 + KEEPER_MAX_BODY);
        let back = decode_keeper(&frame);
        if let KeeperMessage::Schedule { stop, .. } = m
            && (stop.door.is_empty() || stop.template.is_empty())
        {
            assert_eq!(back, Err(KeeperDecodeError::EmptyStop));
            continue;
        }
        // Not assert_eq!: a message may be 80 KiB long.
        match back {
            Ok(Some((ref read, used))) if read == m && used == frame.len() => {}
            other => panic!(
                "a message of {} bytes reads back as {}",
                frame.len(),
                match other {
                    Ok(Some((_, used))) => format!("another message of {used} bytes"),
                    Ok(None) => "a frame not all there".to_string(),
                    Err(e) => format!("an error: {e}"),
                }
            ),
        }
        stream.extend_from_slice(&frame);
        sent.push(m.clone());
    }
    let mut at = 0;
    let mut read = Vec::new();
    while let Some((m, used)) = decode_keeper(&stream[at..]).expect("frames read alone") {
        read.push(m);
        at += used;
    }
    assert_eq!(at, stream.len());
    assert!(
        read == sent,
        "a stream of {} messages reads back otherwise",
        sent.len()
    );
}
