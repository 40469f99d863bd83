//! The sandboxed worker: the process that reads packets, separate from the privileged
//! monitor that runs commands and keeps state (`docs/knockd-lite-sandbox.md`).
//!
//! * `msg`: the channel's typed messages, pure encode/decode;
//! * `admit`: what the monitor admits from the worker before its engine checks the door;
//! * `backoff`: when the monitor starts a worker again after one died;
//! * `report`: the worker's engine actions as what goes up the channel.

pub(crate) mod admit;
pub(crate) mod backoff;
mod confine;
pub(crate) mod link;
pub(crate) mod msg;
pub(crate) mod report;
mod run;

pub(crate) use link::{Heard, WorkerLink};
pub(crate) use run::{ARG, run};
