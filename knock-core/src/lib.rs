//! knock-core: the library shared by the `knock` client and the `knockd-lite` server.
//!
//! * [`conf`]: knockd.conf, parsed into plain values;
//! * [`hit`]: the hit grammar (`7000,8000:udp,9000:tcp:fin+psh`, `tcp:110:up`);
//! * [`otp`]: one-time sequence lists in knockd's format, and consuming them on disk;
//! * [`files`]: atomic file writes, private (0600) or with a given mode;
//! * [`hmac`]: knock-hmac-v1, sequences derived from a shared secret and the clock;
//! * [`secret`]: a secret type that never prints itself, and where secrets come from;
//! * [`wire`]: the packet layout, packet building and validated parsing.
//!
//! With the `client` feature (the `knock` client's half, which the server leaves out):
//!
//! * `profile`: TOML knock profiles and the directory that holds them;
//! * `keygen`: new knock-hmac-v1 secrets and the door and profile that use them;
//! * `send`: the `Sender` seam, the plain and raw senders, and privileges;
//! * `secret::source::TerminalPrompt`: asking for a secret without echo.
//!
//! ```
//! use knock_core::hit::{parse_sequence, Proto};
//! let hits = parse_sequence("7000,8000:udp,tcp:110:up", Proto::Tcp).unwrap();
//! assert_eq!(hits.len(), 3);
//! ```

pub mod conf;
pub mod files;
pub mod hit;
pub mod hmac;
#[cfg(feature = "client")]
pub mod keygen;
pub mod otp;
#[cfg(feature = "client")]
pub mod profile;
pub mod secret;
#[cfg(feature = "client")]
pub mod send;
#[cfg(test)]
mod testutil;
pub mod text;
pub mod wire;
