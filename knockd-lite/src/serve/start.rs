//! Start-up: everything that can fail is checked while errors still reach the terminal,
//! then `-d` detaches, and only then does the first thread start.

use std::time::Duration;

use anyhow::{Context, anyhow};
use knockd_engine::{Engine, Options};

use super::Feed;
use super::commands::Commands;
use super::doors;
use super::gate::Limits;
use super::journal::Journal;
use super::lookup::{self, Resolver};
use super::{Failure, Server, Turn, clock_now, settings};
use crate::args::Args;
use crate::capture::{CaptureOptions, InterfaceCapture};
use crate::config;
use crate::door_files;
use crate::exec::Executor;
use crate::hmac_state::HmacCounters;
use crate::keeper::{self, KeeperLink, Launch};
use crate::log::{Kind, Logger};
use crate::netif::{self, Watch};
use crate::nft::{self, Netlink};
use crate::pidfile::Pidfile;
use crate::signals::Signals;
use crate::stops::StopJournal;
use crate::sys;
use crate::sys::sandbox::{self, WorkerIds};
use crate::worker::WorkerLink;

/// A seed for the first-step filter's hash that nobody outside can predict: std's hash
/// maps take their keys from the OS's random source.
pub(super) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}

impl Server<Feed, Executor> {
    pub(super) fn start(args: Args, signals: &Signals) -> Result<Self, Failure> {
        let base = std::env::current_dir()
            .context("cannot read the current directory")
            .map_err(Failure::runtime)?;
        let (config, settings) = settings::load(&args, &base).map_err(Failure::config)?;
        // Every set must exist and take timeouts before the first knock needs it.
        let mut sets = Netlink::default();
        nft::validate(&config, &args.config, &mut sets).map_err(|(e, not_checked)| {
            if not_checked {
                Failure::runtime(anyhow!(e))
            } else {
                Failure::config(anyhow!(e))
            }
        })?;
        let now = clock_now();
        let counters = HmacCounters::load(
            &settings.state_file,
            Some(&settings.legacy_state_file),
            now.mono,
        )
        .context("HMAC state")
        .map_err(Failure::runtime)?;
        let door_files::Loaded { mut inputs, lists } =
            door_files::load(&config, &counters.used()).map_err(Failure::config)?;
        let iface = netif::find(&settings.interface)
            .with_context(|| settings.interface.clone())
            .map_err(Failure::runtime)?
            .ok_or_else(|| anyhow!("{}: no such interface", settings.interface))
            .map_err(Failure::runtime)?;
        inputs.local_addrs = iface.addrs.clone();
        // With the worker, this engine sees no packet (it checks the worker's claims, and
        // schedules stops): no room for attempts. The worker's gets the flags (its load).
        let options = if args.no_sandbox {
            Options {
                max_attempts: args.max_attempts,
                first_step_memory: (args.first_step_memory as usize) << 20,
                seed: random_seed(),
            }
        } else {
            Options {
                max_attempts: 1,
                first_step_memory: 0,
                seed: random_seed(),
            }
        };
        let (engine, first_actions) =
            Engine::new(&config, inputs, options, now).map_err(Failure::config)?;
        let capture_opts = CaptureOptions {
            families: settings.families,
            ..CaptureOptions::default()
        };
        let mut sandbox_lines = Vec::new();
        // In-process, the capture is opened now. With the worker, the capture is the
        // worker's, opened once it runs (after -d, which a child process must not cross);
        // whether one can be opened at all is checked here, while errors reach the terminal.
        let mut capture = if args.no_sandbox {
            Feed::Local(Box::new(
                InterfaceCapture::open(&settings.interface, &engine.capture_rules(), &capture_opts)
                    .map_err(Failure::runtime)?,
            ))
        } else {
            // Which user, and what the kernel offers: said once, and a kernel without
            // seccomp (or any way to take the file system away) is refused here, not
            // skipped: --no-sandbox is the way to go without.
            let support = sandbox::probe();
            sandbox_lines.push(format!("sandbox: {support}"));
            if let Err(why) = &support.seccomp {
                return Err(Failure::runtime(anyhow!(
                    "seccomp filters are not available: {why} (run with --no-sandbox to go without)"
                )));
            }
            let ids = match &args.user {
                Some(name) => WorkerIds::lookup(name).map_err(Failure::config)?,
                None => {
                    let d = sandbox::default_user().map_err(Failure::config)?;
                    sandbox_lines.push(format!(
                        "sandbox: the worker runs as {}: {}",
                        d.ids.name, d.why
                    ));
                    d.ids
                }
            };
            drop(
                crate::capture::AfPacket::open_unmapped(
                    &settings.interface,
                    &engine.capture_rules(),
                    &capture_opts,
                )
                .map_err(Failure::runtime)?,
            );
            Feed::Worker(Box::new(WorkerLink::new(
                &settings.interface,
                &ids,
                capture_opts.clone(),
                engine.capture_rules(),
            )))
        };
        let mut logger = Logger::open(settings.log_config(&args));
        // Warnings go to stderr while it is still the terminal, and to the log (syslog
        // with UseSyslog); a log file that cannot be opened does not stop the server, as in
        // knockd: a SIGHUP tries it again.
        let mut warnings = config::warnings(&config, &args.config);
        if args.no_sandbox {
            warnings.push(
                "warning: --no-sandbox: packets are parsed in this process, with its \
                 privileges"
                    .to_string(),
            );
        }
        warnings.extend(logger.file_error().map(|e| e.warning(&settings.log_origin)));
        for warning in &warnings {
            eprintln!("knockd-lite: {warning}");
            logger.event(clock_now(), warning, Kind::Warning);
        }
        for line in &sandbox_lines {
            logger.event(clock_now(), line, Kind::Event);
        }
        // An eventfd, no thread yet.
        let exec =
            Executor::new(Duration::from_secs(args.command_limit)).map_err(Failure::runtime)?;

        let mut pidfile = None;
        let mut detached = None;
        if args.daemon {
            Pidfile::check(&settings.pid_file).map_err(Failure::runtime)?;
            let d = sys::detach().map_err(Failure::runtime)?;
            // From here stderr is /dev/null: a failure goes to the log, and to the parent
            // still waiting on the terminal, which exits 1 with it.
            let _ = logger.reopen();
            match Pidfile::create(&settings.pid_file) {
                Ok(p) => pidfile = Some(p),
                Err(e) => {
                    let message = e.to_string();
                    logger.event(clock_now(), &message, Kind::Error);
                    d.failed(&message);
                    return Err(Failure::runtime(e));
                }
            }
            detached = Some(d);
        }
        if let Feed::Worker(w) = &mut capture
            && let Err(e) = w.start()
        {
            let message = e.to_string();
            logger.event(clock_now(), &message, Kind::Error);
            if let Some(d) = detached {
                d.failed(&message);
            }
            return Err(Failure::runtime(e));
        }
        // The first thread; from here on nothing fails start-up.
        let resolver = if args.lookup {
            match Resolver::start(lookup::reverse) {
                Ok(r) => Some(r),
                Err(e) => {
                    let line = format!("no lookup thread ({e}): logging addresses, not names");
                    logger.event(clock_now(), &line, Kind::Error);
                    None
                }
            }
        } else {
            None
        };
        capture.add_wake_fd(signals.fd());
        capture.add_wake_fd(exec.wake_fd());
        let watch = Watch::new(&settings.interface, Some(iface));
        // A keeper left by an earlier process hands its stops back before the journal is
        // read, so each of them runs once, here.
        if let Some((kind, line)) = keeper::retire_previous(
            &settings.keeper_file,
            &settings.stops_file,
            keeper::HANDOVER_WAIT,
        ) {
            logger.event(clock_now(), &line, kind);
        }
        let opened = StopJournal::open(&settings.stops_file, clock_now().wall.unix_seconds());
        let limits = Limits {
            max_running: args.max_commands,
            door_rate: args.door_rate,
        };
        let mut keeper = KeeperLink::new(
            Launch::exec(&settings.stops_file),
            settings.keeper_file.clone(),
            Duration::from_secs(args.command_limit),
        );
        keeper.set_wanted(doors::has_stop_commands(&config));
        let log = settings.log_config(&args);
        // Not started yet: nothing to report.
        let _ = keeper.set_log(log.file, log.syslog);
        let mut server = Server {
            args,
            base,
            settings,
            config,
            engine,
            capture,
            watch,
            lookup: netif::find,
            journal: Journal::new(logger, resolver),
            commands: Commands::new(exec, limits),
            counters,
            lists,
            sets: Box::new(sets),
            open_sets: Default::default(),
            stops: opened.journal,
            keeper,
            clock: Box::new(clock_now),
            _pidfile: pidfile,
            turn: Turn::default(),
        };
        server.feed_worker(clock_now());
        server.begin(first_actions);
        server.take_over(opened.problem, opened.pending);
        if let Some(d) = detached {
            d.ready();
        }
        Ok(server)
    }
}
