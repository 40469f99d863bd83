//! Where the server's packets come from: its own capture (`--no-sandbox`), or the
//! sandboxed worker that reads them (the default), to the main loop one
//! [`PacketSource`] either way.

use std::os::fd::RawFd;
use std::time::Duration;

use knockd_engine::bpf::Coarse;
use knockd_engine::filter::CaptureRule;

use crate::capture::{
    CaptureError, CaptureStats, Frame, InterfaceCapture, LinkEvent, PacketSource,
};
use crate::worker::WorkerLink;

#[derive(Debug)]
pub(crate) enum Feed {
    /// This process captures and matches (`--no-sandbox`).
    Local(Box<InterfaceCapture>),
    /// The worker does; this process hears its completions.
    Worker(Box<WorkerLink>),
}

impl Feed {
    pub(crate) fn add_wake_fd(&mut self, fd: RawFd) {
        match self {
            Feed::Local(c) => c.add_wake_fd(fd),
            Feed::Worker(w) => w.add_wake_fd(fd),
        }
    }
}

impl PacketSource for Feed {
    fn next_batch(
        &mut self,
        timeout: Duration,
        sink: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<usize, CaptureError> {
        match self {
            Feed::Local(c) => c.next_batch(timeout, sink),
            Feed::Worker(w) => w.next_batch(timeout, sink),
        }
    }

    fn set_rules(&mut self, rules: &[CaptureRule]) -> Result<Option<Coarse>, CaptureError> {
        match self {
            Feed::Local(c) => c.set_rules(rules),
            Feed::Worker(w) => w.set_rules(rules),
        }
    }

    fn stats(&mut self) -> CaptureStats {
        match self {
            Feed::Local(c) => c.stats(),
            Feed::Worker(w) => w.stats(),
        }
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        match self {
            Feed::Local(c) => c.take_events(),
            Feed::Worker(w) => w.take_events(),
        }
    }

    fn worker(&mut self) -> Option<&mut WorkerLink> {
        match self {
            Feed::Local(_) => None,
            Feed::Worker(w) => Some(w),
        }
    }
}
