//! knock-core: the library shared by the `knock` client and the `knockd-lite` server.
//!
//! * [`conf`]: knockd.conf, parsed into plain values;
//! * [`hit`]: the hit grammar (`7000,8000:udp,9000:tcp:fin+psh`, `tcp:110:up`);
//! * [`otp`]: one-time sequence lists in knockd's format;
//! * [`hmac`]: knock-hmac-v1, sequences derived from a shared secret and the clock;
//! * [`secret`]: a secret type that never prints itself;
//! * [`wire`]: packet building and validated parsing.
//!
//! ```
//! use knock_core::hit::{parse_sequence, Proto};
//! let hits = parse_sequence("7000,8000:udp,tcp:110:up", Proto::Tcp).unwrap();
//! assert_eq!(hits.len(), 3);
//! ```

pub mod conf;
pub mod hit;
pub mod hmac;
pub mod otp;
pub mod secret;
pub mod wire;
