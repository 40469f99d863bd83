//! knockd-engine's integration tests, one binary (ripgrep's layout): traces replayed through
//! the engine on a virtual clock, and the compiled capture filter held against the parser.

// The harness is shared by modules that each use part of it.
#![allow(dead_code, unreachable_pub)]

mod clock;
mod completed;
mod doors;
mod filter;
mod flood;
mod hmac;
mod reload;
mod replay;
mod support;
