//! The channel between the monitor and its sandboxed worker, as bytes: [`encode_up`],
//! [`decode_up`] (worker to monitor), [`encode_down`], [`decode_down`] (monitor to worker)
//! and the [`Load`] the worker builds its engine from. Pure functions (no I/O); decoding
//! never panics, whatever the bytes.
//!
//! The channel is a `SOCK_SEQPACKET` socket pair, so each message is one datagram and
//! needs no length prefix: one tag byte, then the fields, fixed-width integers big-endian,
//! strings and byte strings as a 4-byte length and the bytes, an address as its family
//! (4 or 6) and its octets. A message is at most [`MAX_MESSAGE`] bytes and must be used up
//! exactly. A [`Load`] (config text, one-time lists, HMAC material) can be larger: it is
//! encoded on its own and sent as [`Down::Chunk`]s of at most [`CHUNK`] bytes, at most
//! [`MAX_LOAD`] in all.
//!
//! The worker is the side a hostile packet may have taken over, so what comes up is
//! narrow: a completion (door, address, proof), typed log events, and notes about its
//! capture. Every string it sends is bounded by [`MAX_TEXT`]; the monitor checks the rest.

use std::fmt;
use std::net::IpAddr;

use knock_core::hit::Proto;
use knock_core::wire::{KnockPacket, ParseError, TcpFlags};
use knockd_engine::Proof;

use crate::codec::{FieldError, Reader, put_addr, put_bytes, put_len, put_str};

/// The version [`Up::Ready`] carries: the worker is the monitor's own binary, so another
/// version means the bytes are not ours.
pub(crate) const VERSION: u16 = 1;
/// The longest message either way, in bytes (a datagram the default socket buffers take).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// The most bytes of a [`Load`] one [`Down::Chunk`] carries.
pub(crate) const CHUNK: usize = 48 * 1024;
/// The longest encoded [`Load`]: a 16 MiB config and its lists with room to spare.
pub(crate) const MAX_LOAD: usize = 64 << 20;
/// The longest string the worker sends (a door name, an error's text).
pub(crate) const MAX_TEXT: usize = 4096;
/// The most addresses in [`Down::LocalAddrs`].
pub(crate) const MAX_ADDRS: usize = 4096;

// Worker to monitor.
const READY: u8 = 1;
const COMPLETED: u8 = 2;
const STAGE: u8 = 3;
const TIMEOUT: u8 = 4;
const REPLAY: u8 = 5;
const PACKET: u8 = 6;
const REFUSED: u8 = 7;
// 8 and 9 were the filter's notes: the monitor works them out itself.
const FILTER_FAILED: u8 = 10;
const CAPTURE_FAILED: u8 = 11;
const LINK_DOWN: u8 = 12;
const FAILED: u8 = 13;
const SUPPRESSED: u8 = 14;

// Monitor to worker.
const CHUNK_TAG: u8 = 101;
const CAPTURE: u8 = 102;
const DROP_CAPTURE: u8 = 103;
const LOCAL_ADDRS: u8 = 104;
const ONE_TIME_BACK: u8 = 105;
const SHUTDOWN: u8 = 106;
const CLOCK: u8 = 107;
const HMAC_WINDOW: u8 = 108;

/// What the worker tells the monitor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Up {
    /// The worker built its engine from the load of `generation` and holds a capture: the
    /// first message after each load.
    Ready { version: u16, generation: u32 },
    /// `src` completed `door` under the load of `generation`, with `proof`. The monitor
    /// checks it against its own doors before anything runs.
    Completed {
        generation: u32,
        door: String,
        src: IpAddr,
        proof: Proof,
    },
    /// Log lines, in knockd's words once the monitor formats them.
    Stage {
        src: IpAddr,
        door: String,
        stage: u32,
    },
    Timeout {
        src: IpAddr,
        door: String,
        stage: u32,
    },
    Replay {
        src: IpAddr,
        door: String,
        counter: u64,
    },
    /// A `-D` line for a packet (`vlan`: a tag the kernel took off).
    Packet {
        packet: KnockPacket,
        vlan: Option<u16>,
    },
    /// A `-D` line for a frame the parser refused.
    Refused(ParseError),
    /// The filter could not be replaced (the old one stays).
    FilterFailed(String),
    /// Reading the capture failed.
    CaptureFailed(String),
    /// The capture's interface went down (or away): the monitor looks whether it is gone.
    LinkDown,
    /// The worker cannot go on (it could not enter its sandbox), and exits.
    Failed(String),
    /// First-stage lines the worker folded in a second that ended (a spoofed flood makes
    /// one per packet: they are folded where they are made, with the log's own rule, so a
    /// flood costs no message per packet).
    Suppressed { knocks: u64, timeouts: u64 },
}

/// What the monitor tells the worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// A piece of an encoded [`Load`]; the last one has `last` set.
    Chunk { last: bool, bytes: Vec<u8> },
    /// A capture socket comes with this message (SCM_RIGHTS), bound to `ifindex`; `link`
    /// is its link type's code ([`link_code`]).
    Capture { ifindex: u32, link: u8 },
    /// The interface is gone: close the capture and wait for another.
    DropCapture,
    /// The interface's addresses now.
    LocalAddrs(Vec<IpAddr>),
    /// The monitor could not mark `line_no` of `door`'s one-time list used and could not
    /// read the list again: the line stays active (`hits` in the hit grammar, `offset` its
    /// byte offset in the file).
    OneTimeBack {
        door: String,
        line_no: u32,
        offset: u64,
        hits: String,
    },
    /// Exit now.
    Shutdown,
    /// The monitor's two clocks read at one moment: milliseconds since boot (which both
    /// processes read alike) and the wall clock. The worker reads only the first, and dates
    /// its engine's wall clock (HMAC windows, a packet's age) from the monitor's, so both
    /// engines agree on the window; sent before each load and once a second.
    Clock { mono_ms: u64, wall_ms: u64 },
    /// An HMAC door's live window, derived by the monitor (the worker never holds the
    /// secret): the counter it is centred on, and each live counter's sequence in the hit
    /// grammar. Sent after each load and whenever the window moves.
    HmacWindow {
        door: String,
        center: u64,
        sequences: Vec<(u64, String)>,
    },
}

/// Everything the worker's engine is built from: the worker reads no file.
#[derive(Clone, PartialEq, Eq)]
pub struct Load {
    /// Counts the loads; completions name the one they were made under.
    pub generation: u32,
    /// The config file as the monitor read it, and the name errors give it.
    pub config_name: String,
    pub config_text: Vec<u8>,
    pub max_attempts: u64,
    pub first_step_memory: u64,
    pub seed: u64,
    /// `-4`: IPv4 only.
    pub only_ipv4: bool,
    /// `-D`: the worker sends a line per packet.
    pub debug: bool,
    pub local_addrs: Vec<IpAddr>,
    /// Each one-time door's list, by door name.
    pub one_time: Vec<(String, String)>,
    /// Each HMAC door's used counters, by door name: never its secret. The monitor
    /// derives each window and sends it ([`Down::HmacWindow`]).
    pub hmac: Vec<HmacLoad>,
}

/// An HMAC door's used counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacLoad {
    pub door: String,
    pub used: Vec<u64>,
}

impl fmt::Debug for Load {
    // Never the lists (one-time lists are secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Load")
            .field("generation", &self.generation)
            .field("config_name", &self.config_name)
            .field("config_bytes", &self.config_text.len())
            .field("one_time_doors", &self.one_time.len())
            .field("hmac_doors", &self.hmac.len())
            .finish_non_exhaustive()
    }
}

/// Why bytes are not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    /// More than [`MAX_MESSAGE`] (or, for a load, [`MAX_LOAD`]) bytes.
    TooLong(usize),
    UnknownTag(u8),
    /// The message ended inside this field.
    Truncated(&'static str),
    /// Bytes left after the last field.
    Trailing(usize),
    NotUtf8(&'static str),
    /// A string or list longer than its field allows.
    Oversized(&'static str),
    BadFamily(u8),
    BadFlag(u8),
    BadProto(u8),
    BadProof(u8),
    BadReason(u8),
    BadVersion(u16),
    /// A door name that is empty.
    NoDoor,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("an empty message"),
            DecodeError::TooLong(n) => write!(f, "a message of {n} bytes (too long)"),
            DecodeError::UnknownTag(t) => write!(f, "unknown message {t}"),
            DecodeError::Truncated(field) => write!(f, "message ends inside its {field}"),
            DecodeError::Trailing(n) => write!(f, "{n} bytes after the message"),
            DecodeError::NotUtf8(field) => write!(f, "{field} is not UTF-8"),
            DecodeError::Oversized(field) => write!(f, "{field} is too long"),
            DecodeError::BadFamily(b) => write!(f, "address family {b}"),
            DecodeError::BadFlag(b) => write!(f, "flag byte {b}"),
            DecodeError::BadProto(b) => write!(f, "protocol {b}"),
            DecodeError::BadProof(b) => write!(f, "proof kind {b}"),
            DecodeError::BadReason(b) => write!(f, "parse error {b}"),
            DecodeError::BadVersion(v) => write!(f, "version {v}, expected {VERSION}"),
            DecodeError::NoDoor => f.write_str("an empty door name"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<FieldError> for DecodeError {
    fn from(e: FieldError) -> DecodeError {
        match e {
            FieldError::Truncated(field) => DecodeError::Truncated(field),
            FieldError::Oversized(field) => DecodeError::Oversized(field),
            FieldError::NotUtf8(field) => DecodeError::NotUtf8(field),
            FieldError::BadFlag(b) => DecodeError::BadFlag(b),
            FieldError::BadFamily(b) => DecodeError::BadFamily(b),
            FieldError::Trailing(n) => DecodeError::Trailing(n),
        }
    }
}

/// The code [`Down::Capture`] gives a link type.
pub(crate) fn link_code(link: knock_core::wire::LinkType) -> u8 {
    use knock_core::wire::LinkType;
    match link {
        LinkType::Ethernet => 1,
        LinkType::RawIp => 2,
        LinkType::Loopback => 3,
        LinkType::LinuxSll => 4,
    }
}

/// The link type of a [`link_code`].
pub(crate) fn link_of(code: u8) -> Option<knock_core::wire::LinkType> {
    use knock_core::wire::LinkType;
    match code {
        1 => Some(LinkType::Ethernet),
        2 => Some(LinkType::RawIp),
        3 => Some(LinkType::Loopback),
        4 => Some(LinkType::LinuxSll),
        _ => None,
    }
}

/// `message` as one datagram.
pub fn encode_up(message: &Up) -> Vec<u8> {
    let mut b = Vec::new();
    match message {
        Up::Ready {
            version,
            generation,
        } => {
            b.push(READY);
            b.extend_from_slice(&version.to_be_bytes());
            b.extend_from_slice(&generation.to_be_bytes());
        }
        Up::Completed {
            generation,
            door,
            src,
            proof,
        } => {
            b.push(COMPLETED);
            b.extend_from_slice(&generation.to_be_bytes());
            put_str(&mut b, door);
            put_addr(&mut b, *src);
            match proof {
                Proof::Fixed => b.push(0),
                Proof::OneTime { line_no } => {
                    b.push(1);
                    b.extend_from_slice(&(*line_no as u64).to_be_bytes());
                }
                Proof::Hmac { counter } => {
                    b.push(2);
                    b.extend_from_slice(&counter.to_be_bytes());
                }
            }
        }
        Up::Stage { src, door, stage } | Up::Timeout { src, door, stage } => {
            b.push(if matches!(message, Up::Stage { .. }) {
                STAGE
            } else {
                TIMEOUT
            });
            put_addr(&mut b, *src);
            put_str(&mut b, door);
            b.extend_from_slice(&stage.to_be_bytes());
        }
        Up::Replay { src, door, counter } => {
            b.push(REPLAY);
            put_addr(&mut b, *src);
            put_str(&mut b, door);
            b.extend_from_slice(&counter.to_be_bytes());
        }
        Up::Packet { packet, vlan } => {
            b.push(PACKET);
            b.push(match packet.proto {
                Proto::Tcp => 6,
                Proto::Udp => 17,
            });
            b.push(packet.tcp_flags.bits());
            put_addr(&mut b, packet.src);
            put_addr(&mut b, packet.dst);
            b.extend_from_slice(&packet.dst_port.to_be_bytes());
            match vlan {
                None => b.push(0),
                Some(v) => {
                    b.push(1);
                    b.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        Up::Refused(e) => {
            b.push(REFUSED);
            b.push(*e as u8);
        }
        Up::FilterFailed(text) => {
            b.push(FILTER_FAILED);
            put_str(&mut b, bounded(text));
        }
        Up::CaptureFailed(text) => {
            b.push(CAPTURE_FAILED);
            put_str(&mut b, bounded(text));
        }
        Up::LinkDown => b.push(LINK_DOWN),
        Up::Failed(text) => {
            b.push(FAILED);
            put_str(&mut b, bounded(text));
        }
        Up::Suppressed { knocks, timeouts } => {
            b.push(SUPPRESSED);
            b.extend_from_slice(&knocks.to_be_bytes());
            b.extend_from_slice(&timeouts.to_be_bytes());
        }
    }
    b
}

/// The message in `bytes`, one datagram from the worker.
pub fn decode_up(bytes: &[u8]) -> Result<Up, DecodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let tag = r.u8("tag").map_err(|_| DecodeError::Empty)?;
    let message = match tag {
        READY => {
            let version = r.u16("version")?;
            if version != VERSION {
                return Err(DecodeError::BadVersion(version));
            }
            Up::Ready {
                version,
                generation: r.u32("generation")?,
            }
        }
        COMPLETED => {
            let generation = r.u32("generation")?;
            let door = door(&mut r)?;
            let src = r.addr("address")?;
            let proof = match r.u8("proof")? {
                0 => Proof::Fixed,
                1 => {
                    let line = r.u64("line number")?;
                    let line_no =
                        usize::try_from(line).map_err(|_| DecodeError::Oversized("line number"))?;
                    Proof::OneTime { line_no }
                }
                2 => Proof::Hmac {
                    counter: r.u64("counter")?,
                },
                other => return Err(DecodeError::BadProof(other)),
            };
            Up::Completed {
                generation,
                door,
                src,
                proof,
            }
        }
        STAGE | TIMEOUT => {
            let src = r.addr("address")?;
            let door = door(&mut r)?;
            let stage = r.u32("stage")?;
            if tag == STAGE {
                Up::Stage { src, door, stage }
            } else {
                Up::Timeout { src, door, stage }
            }
        }
        REPLAY => Up::Replay {
            src: r.addr("address")?,
            door: door(&mut r)?,
            counter: r.u64("counter")?,
        },
        PACKET => {
            let proto = match r.u8("protocol")? {
                6 => Proto::Tcp,
                17 => Proto::Udp,
                other => return Err(DecodeError::BadProto(other)),
            };
            let flags = r.u8("flags")?;
            if proto == Proto::Udp && flags != 0 {
                return Err(DecodeError::BadFlag(flags));
            }
            let src = r.addr("source")?;
            let dst = r.addr("destination")?;
            let dst_port = r.u16("port")?;
            let vlan = match r.u8("vlan flag")? {
                0 => None,
                1 => Some(r.u16("vlan")?),
                other => return Err(DecodeError::BadFlag(other)),
            };
            Up::Packet {
                packet: KnockPacket {
                    src,
                    dst,
                    proto,
                    dst_port,
                    tcp_flags: TcpFlags::from_bits(flags),
                },
                vlan,
            }
        }
        REFUSED => {
            let code = r.u8("reason")?;
            let e = ParseError::ALL
                .get(usize::from(code))
                .copied()
                .ok_or(DecodeError::BadReason(code))?;
            Up::Refused(e)
        }
        FILTER_FAILED => Up::FilterFailed(r.text("error", MAX_TEXT)?),
        CAPTURE_FAILED => Up::CaptureFailed(r.text("error", MAX_TEXT)?),
        LINK_DOWN => Up::LinkDown,
        FAILED => Up::Failed(r.text("error", MAX_TEXT)?),
        SUPPRESSED => Up::Suppressed {
            knocks: r.u64("knocks")?,
            timeouts: r.u64("timeouts")?,
        },
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.finish()?;
    Ok(message)
}

/// `message` as one datagram.
pub fn encode_down(message: &Down) -> Vec<u8> {
    let mut b = Vec::new();
    match message {
        Down::Chunk { last, bytes } => {
            b.push(CHUNK_TAG);
            b.push(u8::from(*last));
            put_bytes(&mut b, bytes);
        }
        Down::Capture { ifindex, link } => {
            b.push(CAPTURE);
            b.extend_from_slice(&ifindex.to_be_bytes());
            b.push(*link);
        }
        Down::DropCapture => b.push(DROP_CAPTURE),
        Down::LocalAddrs(addrs) => {
            b.push(LOCAL_ADDRS);
            put_len(&mut b, addrs.len());
            for a in addrs {
                put_addr(&mut b, *a);
            }
        }
        Down::OneTimeBack {
            door,
            line_no,
            offset,
            hits,
        } => {
            b.push(ONE_TIME_BACK);
            put_str(&mut b, door);
            b.extend_from_slice(&line_no.to_be_bytes());
            b.extend_from_slice(&offset.to_be_bytes());
            put_str(&mut b, hits);
        }
        Down::Shutdown => b.push(SHUTDOWN),
        Down::Clock { mono_ms, wall_ms } => {
            b.push(CLOCK);
            b.extend_from_slice(&mono_ms.to_be_bytes());
            b.extend_from_slice(&wall_ms.to_be_bytes());
        }
        Down::HmacWindow {
            door,
            center,
            sequences,
        } => {
            b.push(HMAC_WINDOW);
            put_str(&mut b, door);
            b.extend_from_slice(&center.to_be_bytes());
            put_len(&mut b, sequences.len());
            for (counter, hits) in sequences {
                b.extend_from_slice(&counter.to_be_bytes());
                put_str(&mut b, hits);
            }
        }
    }
    b
}

/// The message in `bytes`, one datagram from the monitor.
pub fn decode_down(bytes: &[u8]) -> Result<Down, DecodeError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let tag = r.u8("tag").map_err(|_| DecodeError::Empty)?;
    let message = match tag {
        CHUNK_TAG => {
            let last = r.flag("last")?;
            let bytes = r.bytes("chunk", CHUNK)?.to_vec();
            Down::Chunk { last, bytes }
        }
        CAPTURE => Down::Capture {
            ifindex: r.u32("interface index")?,
            link: {
                let code = r.u8("link type")?;
                link_of(code).ok_or(DecodeError::BadFlag(code))?;
                code
            },
        },
        DROP_CAPTURE => Down::DropCapture,
        LOCAL_ADDRS => {
            let n = r.u32("address count")? as usize;
            if n > MAX_ADDRS {
                return Err(DecodeError::Oversized("address list"));
            }
            let mut addrs = Vec::with_capacity(n);
            for _ in 0..n {
                addrs.push(r.addr("address")?);
            }
            Down::LocalAddrs(addrs)
        }
        ONE_TIME_BACK => Down::OneTimeBack {
            door: door(&mut r)?,
            line_no: r.u32("line number")?,
            offset: r.u64("offset")?,
            hits: r.text("hits", MAX_TEXT * 16)?,
        },
        SHUTDOWN => Down::Shutdown,
        CLOCK => Down::Clock {
            mono_ms: r.u64("monotonic time")?,
            wall_ms: r.u64("wall time")?,
        },
        HMAC_WINDOW => {
            let door = door(&mut r)?;
            let center = r.u64("window centre")?;
            let n = r.count("window", 12)?;
            let mut sequences = Vec::with_capacity(n);
            for _ in 0..n {
                let counter = r.u64("counter")?;
                sequences.push((counter, r.text("sequence", MAX_TEXT)?));
            }
            Down::HmacWindow {
                door,
                center,
                sequences,
            }
        }
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.finish()?;
    Ok(message)
}

/// `load` as bytes, for [`chunks`].
pub fn encode_load(load: &Load) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&load.generation.to_be_bytes());
    put_str(&mut b, &load.config_name);
    put_bytes(&mut b, &load.config_text);
    b.extend_from_slice(&load.max_attempts.to_be_bytes());
    b.extend_from_slice(&load.first_step_memory.to_be_bytes());
    b.extend_from_slice(&load.seed.to_be_bytes());
    b.push(u8::from(load.only_ipv4));
    b.push(u8::from(load.debug));
    put_len(&mut b, load.local_addrs.len());
    for a in &load.local_addrs {
        put_addr(&mut b, *a);
    }
    put_len(&mut b, load.one_time.len());
    for (door, text) in &load.one_time {
        put_str(&mut b, door);
        put_str(&mut b, text);
    }
    put_len(&mut b, load.hmac.len());
    for h in &load.hmac {
        put_str(&mut b, &h.door);
        put_len(&mut b, h.used.len());
        for c in &h.used {
            b.extend_from_slice(&c.to_be_bytes());
        }
    }
    b
}

/// The load in `bytes`, put together from its chunks.
pub fn decode_load(bytes: &[u8]) -> Result<Load, DecodeError> {
    if bytes.len() > MAX_LOAD {
        return Err(DecodeError::TooLong(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    let generation = r.u32("generation")?;
    let config_name = r.text("config name", MAX_LOAD)?;
    let config_text = r.bytes("config", MAX_LOAD)?.to_vec();
    let max_attempts = r.u64("max attempts")?;
    let first_step_memory = r.u64("first-step memory")?;
    let seed = r.u64("seed")?;
    let only_ipv4 = r.flag("-4")?;
    let debug = r.flag("-D")?;
    let n = r.count("address count", 5)?;
    let mut local_addrs = Vec::with_capacity(n);
    for _ in 0..n {
        local_addrs.push(r.addr("address")?);
    }
    let n = r.count("one-time count", 8)?;
    let mut one_time = Vec::with_capacity(n);
    for _ in 0..n {
        one_time.push((door(&mut r)?, r.text("one-time list", MAX_LOAD)?));
    }
    let n = r.count("HMAC count", 9)?;
    let mut hmac = Vec::with_capacity(n);
    for _ in 0..n {
        let door = door(&mut r)?;
        let m = r.count("used count", 8)?;
        let mut used = Vec::with_capacity(m);
        for _ in 0..m {
            used.push(r.u64("counter")?);
        }
        hmac.push(HmacLoad { door, used });
    }
    r.finish()?;
    Ok(Load {
        generation,
        config_name,
        config_text,
        max_attempts,
        first_step_memory,
        seed,
        only_ipv4,
        debug,
        local_addrs,
        one_time,
        hmac,
    })
}

/// An encoded load as the chunks that carry it (at least one, the last marked).
pub(crate) fn chunks(load: &[u8]) -> Vec<Down> {
    let mut out: Vec<Down> = load
        .chunks(CHUNK)
        .map(|c| Down::Chunk {
            last: false,
            bytes: c.to_vec(),
        })
        .collect();
    match out.last_mut() {
        Some(Down::Chunk { last, .. }) => *last = true,
        _ => out.push(Down::Chunk {
            last: true,
            bytes: Vec::new(),
        }),
    }
    out
}

/// At most [`MAX_TEXT`] bytes of `text`, cut at a character boundary.
fn bounded(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn door(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let door = r.text("door", MAX_TEXT)?;
    if door.is_empty() {
        return Err(DecodeError::NoDoor);
    }
    Ok(door)
}

#[cfg(test)]
mod tests;
