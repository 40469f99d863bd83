//! The end-to-end tests, as one test binary: each module was once a binary of its own, and
//! every binary linked the whole suite again (ripgrep's `tests/` layout).
//!
//! A test's name is its module and function, as `cargo test` lists it: run one module with
//! `cargo test -p knock-e2e --test e2e server_daemon::`, one test by its full name. The
//! tests that need root are written with [`knock_e2e::netns_test!`].

mod client;
mod client_feedback;
mod clock_step;
mod connect;
mod firewall_doors;
mod hmac_lite;
mod interop_knockd;
mod interop_knockd_flags;
mod knock1_compat;
mod otp_knockd;
mod profile_knockd;
mod raw_flags;
mod runtime_capture;
mod sandbox;
mod server_commands;
mod server_config;
mod server_daemon;
mod server_knock;
mod static_aarch64;
mod windows_wine;
