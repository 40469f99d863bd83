//! The messages the daemon sends its stop keeper, as bytes: [`encode`] and [`decode`] are
//! pure functions (no I/O), and decoding never panics, whatever the bytes.
//!
//! A frame is a 4-byte big-endian body length, then the body: one tag byte and the fields,
//! fixed-width integers big-endian, byte strings as a 4-byte length and the bytes. A body is
//! at most [`MAX_BODY`] bytes and must be used up exactly. Each message has one frame: what
//! [`decode`] reads, [`encode`] writes back byte for byte, and what [`encode`] writes,
//! [`decode`] reads back (a message too long for a frame, [`encode`] refuses).

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::codec::{FieldError, Reader, put_addr, put_bytes};
use crate::stops::Pending;

/// The version [`Message::Hello`] carries; a keeper is always the daemon's own binary
/// (`/proc/self/exe`), so a mismatch means the bytes are not ours.
pub(crate) const VERSION: u16 = 1;
/// The longest body: a door's stop command is one config line, and Linux runs no command
/// longer than 128 KiB anyway (`MAX_ARG_STRLEN`); [`encode`] refuses a longer message.
pub const MAX_BODY: usize = 64 * 1024;

const HELLO: u8 = 1;
const LOG: u8 = 2;
const SCHEDULE: u8 = 3;
const DONE: u8 = 4;
const BYE: u8 = 5;

/// What the daemon tells its keeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// First: who is talking, and how long a stop command may run (`--command-limit`).
    Hello { daemon_pid: u32, limit_ms: u64 },
    /// Where the keeper logs if it has to run stops: the daemon's log file and syslog socket
    /// (again after a SIGHUP moved them).
    Log {
        file: Option<PathBuf>,
        syslog: Option<PathBuf>,
    },
    /// The stop `id` is pending, due at `due_ms` on the monotonic clock (milliseconds since
    /// boot, which both processes read); `stop` is its entry in the stop journal, as
    /// written there. A later `Schedule` for the same id replaces it.
    Schedule { id: u64, due_ms: u64, stop: Pending },
    /// The stop `id` has run (or will not): it has left the journal.
    Done { id: u64 },
    /// A clean shutdown: the daemon ran every pending stop itself. The keeper exits and
    /// runs nothing.
    Bye,
}

/// Why bytes are not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The length prefix is beyond [`MAX_BODY`].
    TooLong(usize),
    UnknownTag(u8),
    /// The body ended inside this field.
    Truncated(&'static str),
    /// Bytes left after the last field.
    Trailing(usize),
    NotUtf8(&'static str),
    BadFamily(u8),
    BadFlag(u8),
    BadVersion(u16),
    /// A stop with an empty door name or command, which no door schedules.
    EmptyStop,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLong(n) => write!(f, "a frame of {n} bytes (at most {MAX_BODY})"),
            DecodeError::UnknownTag(t) => write!(f, "unknown message {t}"),
            DecodeError::Truncated(field) => write!(f, "message ends inside its {field}"),
            DecodeError::Trailing(n) => write!(f, "{n} bytes after the message"),
            DecodeError::NotUtf8(field) => write!(f, "{field} is not UTF-8"),
            DecodeError::BadFamily(b) => write!(f, "address family {b}"),
            DecodeError::BadFlag(b) => write!(f, "flag byte {b}"),
            DecodeError::BadVersion(v) => write!(f, "version {v}, expected {VERSION}"),
            DecodeError::EmptyStop => write!(f, "a stop with no door or no command"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<FieldError> for DecodeError {
    fn from(e: FieldError) -> DecodeError {
        match e {
            FieldError::Truncated(field) => DecodeError::Truncated(field),
            // No field is longer than the body, which [`MAX_BODY`] already bounds.
            FieldError::Oversized(field) => DecodeError::Truncated(field),
            FieldError::NotUtf8(field) => DecodeError::NotUtf8(field),
            FieldError::BadFlag(b) => DecodeError::BadFlag(b),
            FieldError::BadFamily(b) => DecodeError::BadFamily(b),
            FieldError::Trailing(n) => DecodeError::Trailing(n),
        }
    }
}

/// A message whose body (this many bytes) is longer than [`MAX_BODY`]: the keeper would
/// refuse its frame and end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLong(pub usize);

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a message of {} bytes (the stop keeper takes at most {MAX_BODY})",
            self.0
        )
    }
}

impl std::error::Error for TooLong {}

/// `message` as one frame, or why it cannot be sent.
pub fn encode(message: &Message) -> Result<Vec<u8>, TooLong> {
    let mut body = Vec::new();
    match message {
        Message::Hello {
            daemon_pid,
            limit_ms,
        } => {
            body.push(HELLO);
            body.extend_from_slice(&VERSION.to_be_bytes());
            body.extend_from_slice(&daemon_pid.to_be_bytes());
            body.extend_from_slice(&limit_ms.to_be_bytes());
        }
        Message::Log { file, syslog } => {
            body.push(LOG);
            for path in [file, syslog] {
                match path {
                    None => body.push(0),
                    Some(p) => {
                        body.push(1);
                        put_bytes(&mut body, p.as_os_str().as_bytes());
                    }
                }
            }
        }
        Message::Schedule { id, due_ms, stop } => {
            body.push(SCHEDULE);
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&due_ms.to_be_bytes());
            body.extend_from_slice(&stop.due_ms.to_be_bytes());
            body.extend_from_slice(&stop.delay_ms.to_be_bytes());
            put_addr(&mut body, stop.src);
            put_bytes(&mut body, stop.door.as_bytes());
            put_bytes(&mut body, stop.template.as_bytes());
        }
        Message::Done { id } => {
            body.push(DONE);
            body.extend_from_slice(&id.to_be_bytes());
        }
        Message::Bye => body.push(BYE),
    }
    let len = match u32::try_from(body.len()) {
        Ok(len) if body.len() <= MAX_BODY => len,
        _ => return Err(TooLong(body.len())),
    };
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// The first message in `buf` and the bytes it took, or `None` while its frame is not all
/// there yet.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some((len, rest)) = buf.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
    if len > MAX_BODY {
        return Err(DecodeError::TooLong(len));
    }
    let Some(body) = rest.get(..len) else {
        return Ok(None);
    };
    let mut r = Reader::new(body);
    let message = match r.u8("tag")? {
        HELLO => {
            let version = r.u16("version")?;
            if version != VERSION {
                return Err(DecodeError::BadVersion(version));
            }
            Message::Hello {
                daemon_pid: r.u32("pid")?,
                limit_ms: r.u64("limit")?,
            }
        }
        LOG => Message::Log {
            file: path(&mut r, "log file")?,
            syslog: path(&mut r, "syslog socket")?,
        },
        SCHEDULE => {
            let id = r.u64("id")?;
            let due_ms = r.u64("due time")?;
            let wall_due = r.u64("journal due time")?;
            let delay_ms = r.u64("delay")?;
            let src = r.addr("address")?;
            let door = r.text("door", MAX_BODY)?;
            let template = r.text("command", MAX_BODY)?;
            if door.is_empty() || template.is_empty() {
                return Err(DecodeError::EmptyStop);
            }
            Message::Schedule {
                id,
                due_ms,
                stop: Pending {
                    door,
                    src,
                    template,
                    due_ms: wall_due,
                    delay_ms,
                },
            }
        }
        DONE => Message::Done { id: r.u64("id")? },
        BYE => Message::Bye,
        tag => return Err(DecodeError::UnknownTag(tag)),
    };
    r.finish()?;
    Ok(Some((message, 4 + len)))
}

/// A path, or none: a flag byte, then the path's bytes.
fn path(r: &mut Reader<'_>, field: &'static str) -> Result<Option<PathBuf>, DecodeError> {
    Ok(match r.flag(field)? {
        false => None,
        true => Some(PathBuf::from(OsString::from_vec(
            r.bytes(field, MAX_BODY)?.to_vec(),
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop() -> Pending {
        Pending {
            door: "openSSH".into(),
            src: "2001:db8::1".parse().unwrap(),
            template: "ip6tables -D INPUT -s %IP% -j ACCEPT".into(),
            due_ms: 1_700_000_010_000,
            delay_ms: 10_000,
        }
    }

    fn all() -> Vec<Message> {
        vec![
            Message::Hello {
                daemon_pid: 812,
                limit_ms: 300_000,
            },
            Message::Log {
                file: Some("/var/log/knockd.log".into()),
                syslog: None,
            },
            Message::Log {
                file: None,
                syslog: Some(OsString::from_vec(b"/dev/\xfflog".to_vec()).into()),
            },
            Message::Schedule {
                id: 7,
                due_ms: 123_456,
                stop: stop(),
            },
            Message::Schedule {
                id: u64::MAX,
                due_ms: 0,
                stop: Pending {
                    src: "192.0.2.1".parse().unwrap(),
                    ..stop()
                },
            },
            Message::Done { id: 7 },
            Message::Bye,
        ]
    }

    #[test]
    fn every_message_round_trips_and_frames_follow_one_another() {
        let mut stream = Vec::new();
        for m in all() {
            stream.extend(encode(&m).unwrap());
        }
        let mut at = 0;
        let mut back = Vec::new();
        while let Some((m, used)) = decode(&stream[at..]).unwrap() {
            back.push(m);
            at += used;
        }
        assert_eq!(at, stream.len());
        assert_eq!(back, all());
    }

    #[test]
    fn golden_bytes() {
        assert_eq!(encode(&Message::Bye).unwrap(), [0, 0, 0, 1, 5]);
        assert_eq!(
            encode(&Message::Done { id: 258 }).unwrap(),
            [0, 0, 0, 9, 4, 0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(
            encode(&Message::Hello {
                daemon_pid: 0x0102_0304,
                limit_ms: 5,
            })
            .unwrap(),
            [0, 0, 0, 15, 1, 0, 1, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5]
        );
    }

    #[test]
    fn a_message_too_long_for_a_frame_is_refused_not_sent() {
        // The body of a stop: tag, four numbers, an IPv6 address, two lengths, the door.
        let fixed = 1 + 4 * 8 + 17 + 2 * 4 + "openSSH".len();
        let with = |command_len: usize| {
            encode(&Message::Schedule {
                id: 1,
                due_ms: 2,
                stop: Pending {
                    template: "x".repeat(command_len),
                    ..stop()
                },
            })
        };
        let longest = with(MAX_BODY - fixed).unwrap();
        assert_eq!(longest.len(), 4 + MAX_BODY);
        assert!(matches!(decode(&longest), Ok(Some((_, n))) if n == longest.len()));
        assert_eq!(with(MAX_BODY - fixed + 1), Err(TooLong(MAX_BODY + 1)));
        assert_eq!(
            TooLong(70_000).to_string(),
            "a message of 70000 bytes (the stop keeper takes at most 65536)"
        );
    }

    #[test]
    fn a_frame_not_all_there_is_waited_for() {
        for m in all() {
            let frame = encode(&m).unwrap();
            for cut in 0..frame.len() {
                assert_eq!(decode(&frame[..cut]), Ok(None), "{m:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn bad_bodies_are_named() {
        let frame = |body: &[u8]| {
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend_from_slice(body);
            f
        };
        let schedule = encode(&Message::Schedule {
            id: 1,
            due_ms: 2,
            stop: stop(),
        })
        .unwrap();
        let body = &schedule[4..];
        let mut bad_family = body.to_vec();
        bad_family[33] = 5;
        let mut bad_utf8 = body.to_vec();
        bad_utf8[55] = 0xff;
        let mut empty_door = body[..50].to_vec();
        empty_door.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b'c']);
        for (bytes, want) in [
            (
                u32::MAX.to_be_bytes().to_vec(),
                DecodeError::TooLong(u32::MAX as usize),
            ),
            (frame(&[]), DecodeError::Truncated("tag")),
            (frame(&[9]), DecodeError::UnknownTag(9)),
            (frame(&[5, 0]), DecodeError::Trailing(1)),
            (frame(&[4, 1, 2]), DecodeError::Truncated("id")),
            (frame(&[1, 0, 2]), DecodeError::BadVersion(2)),
            (frame(&[2, 2]), DecodeError::BadFlag(2)),
            (
                frame(&[2, 1, 0, 0, 0, 9, b'/']),
                DecodeError::Truncated("log file"),
            ),
            (frame(&bad_family), DecodeError::BadFamily(5)),
            (frame(&bad_utf8), DecodeError::NotUtf8("door")),
            (frame(&empty_door), DecodeError::EmptyStop),
        ] {
            assert_eq!(decode(&bytes), Err(want.clone()), "{bytes:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn any_bytes_decode_without_panicking() {
        // Every prefix and every single-byte change of real frames, and a cheap
        // pseudo-random stream.
        let mut stream = Vec::new();
        for m in all() {
            stream.extend(encode(&m).unwrap());
        }
        for i in 0..stream.len() {
            for b in [0u8, 1, 4, 6, 0x7f, 0xff] {
                let mut s = stream.clone();
                s[i] = b;
                let mut at = 0;
                while let Ok(Some((_, used))) = decode(&s[at..]) {
                    assert!(used > 0);
                    at += used;
                }
            }
        }
        let mut x: u32 = 0x2545_f491;
        let noise: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 7) as u8
            })
            .collect();
        for start in 0..2_000 {
            let _ = decode(&noise[start..]);
        }
    }
}
