//! SIGHUP: re-read the config, its one-time lists and secrets, and the interface's
//! addresses. A config that does not load leaves the running one in place (knockd exits);
//! attempts at doors that did not change carry over.

use anyhow::{Context, anyhow};
use knockd_engine::Now;

use std::path::Path;

use super::settings;
use super::{Feed, Server};
use crate::capture::{CaptureOptions, InterfaceCapture, PacketSource};
use crate::config;
use crate::door_files;
use crate::exec::Executor;
use crate::log::{Kind, Logger};
use crate::netif::{self, Watch};
use crate::signals::Signals;

impl Server<Feed, Executor> {
    pub(super) fn reload(&mut self, signals: &Signals) {
        let now = self.now();
        // Log rotation is the other reason for a SIGHUP.
        self.reopen_log(now);
        match self.try_reload(now, signals) {
            Ok(doors) => {
                let line = format!(
                    "re-read {}: {doors} door{}",
                    self.args.config.display(),
                    if doors == 1 { "" } else { "s" }
                );
                self.journal.line(now, &line, Kind::Event);
            }
            Err(e) => {
                let line = format!("config not reloaded, the running one stays: {e:#}");
                self.journal.line(now, &line, Kind::Error);
            }
        }
    }

    /// Loads everything first and commits only when all of it succeeded: the new doors and
    /// the capture filter made from them go in together, or neither does (a door whose
    /// ports the filter drops would be deaf).
    fn try_reload(&mut self, now: Now, signals: &Signals) -> anyhow::Result<usize> {
        let (config, settings) = settings::load(&self.args, &self.base)?;
        crate::nft::validate(&config, &self.args.config, self.sets.as_mut())
            .map_err(|(e, _)| anyhow!(e))?;
        let door_files::Loaded { mut inputs, lists } =
            door_files::load(&config, &self.counters.used())?;
        let moved = settings.interface != self.settings.interface;
        let iface = if moved {
            let iface = netif::find(&settings.interface)
                .with_context(|| settings.interface.clone())?
                .ok_or_else(|| anyhow!("{}: no such interface", settings.interface))?;
            inputs.local_addrs = iface.addrs.clone();
            Some(iface)
        } else {
            self.poll_addresses(now);
            inputs.local_addrs = self.watch.addrs().to_vec();
            None
        };
        // The worker's load, made from the same inputs before the engine takes them.
        let load = if moved {
            None
        } else {
            self.worker_load(&settings.config_text, &inputs)
        };
        let next = self.engine.prepare(&config, inputs, now)?;
        let rules = next.capture_rules();
        let coarse = match iface {
            Some(iface) if self.capture.worker().is_some() => {
                // A worker for the other interface; it gets its load once the doors below
                // are in place (`feed_worker`).
                if let Some(w) = self.capture.worker() {
                    w.move_to(&settings.interface)
                        .context("a worker for the new interface")?;
                }
                self.watch = Watch::new(&settings.interface, Some(iface));
                let line = format!("listening on {} now", settings.interface);
                self.journal.line(now, &line, Kind::Event);
                self.capture.set_rules(&rules)?
            }
            Some(iface) => {
                let opts = CaptureOptions {
                    families: settings.families,
                    ..CaptureOptions::default()
                };
                let mut capture = InterfaceCapture::open(&settings.interface, &rules, &opts)?;
                let coarse = capture.set_rules(&rules)?;
                capture.add_wake_fd(signals.fd());
                capture.add_wake_fd(self.commands.runner().wake_fd());
                self.capture = Feed::Local(Box::new(capture));
                self.watch = Watch::new(&settings.interface, Some(iface));
                let line = format!("listening on {} now", settings.interface);
                self.journal.line(now, &line, Kind::Event);
                coarse
            }
            None => self
                .capture
                .set_rules(&rules)
                .context("capture filter for the new doors")?,
        };
        let actions = self.engine.commit(next);
        if let (Some(load), Some(w)) = (load, self.capture.worker()) {
            w.send_load(&load);
            self.sync_hmac_windows();
        }
        self.lists = lists;
        self.note_filter(now, rules.len(), coarse);
        let log_moved = (&settings.log_file, settings.syslog)
            != (&self.settings.log_file, self.settings.syslog);
        let doors = config.doors.len();
        for warning in config::warnings(&config, &self.args.config) {
            self.journal.line(now, &warning, Kind::Warning);
        }
        self.config = config;
        let old = std::mem::replace(&mut self.settings, settings);
        if log_moved {
            let logger = Logger::open(self.settings.log_config(&self.args));
            match logger.file_error() {
                None => self.journal.set_logger(logger),
                Some(e) => {
                    // The next SIGHUP tries the new file again.
                    let line = format!(
                        "{}; logging on as before",
                        e.warning(&self.settings.log_origin)
                    );
                    eprintln!("knockd-lite: {line}");
                    self.journal.line(now, &line, Kind::Warning);
                    self.settings.log_file = old.log_file;
                    self.settings.log_origin = old.log_origin;
                    self.settings.syslog = old.syslog;
                }
            }
        }
        let log = self.settings.log_config(&self.args);
        let notes = self.keeper.set_log(log.file, log.syslog);
        self.keeper_notes(notes);
        self.keeper
            .set_wanted(super::doors::has_stop_commands(&self.config));
        self.apply(now, actions);
        // The filter went in with the doors; what the actions changed since is rebuilt.
        self.sync_rules();
        Ok(doors)
    }

    /// Reopens the log file, or opens it at last if it could not be opened before.
    fn reopen_log(&mut self, now: Now) {
        match self.journal.logger_mut().reopen() {
            Ok(false) => {}
            Ok(true) => {
                let line = format!(
                    "opened the log file {}",
                    self.settings
                        .log_file
                        .as_deref()
                        .unwrap_or(Path::new("?"))
                        .display()
                );
                self.journal.line(now, &line, Kind::Event);
            }
            Err(e) => {
                let line = e.warning(&self.settings.log_origin);
                eprintln!("knockd-lite: {line}");
                self.journal.line(now, &line, Kind::Warning);
            }
        }
    }
}
