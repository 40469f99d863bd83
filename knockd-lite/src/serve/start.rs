//! Start-up: everything that can fail is checked while errors still reach the terminal,
//! then `-d` detaches, and only then does the first thread start.

use std::time::Duration;

use knock_core::wire::ParseError;

use super::commands::Commands;
use super::journal::Journal;
use super::lookup::{self, Resolver};
use super::state::HmacCounters;
use super::{Failure, Server, config_error, runtime_error, settings, wall_ms};
use crate::args::Args;
use crate::capture::{CaptureOptions, InterfaceCapture};
use crate::daemon::{self, Pidfile, Signals};
use crate::engine::{Engine, Options, Timestamp};
use crate::exec::Executor;
use crate::log::{Kind, Logger};
use crate::netif::{self, Watch};

impl Server {
    pub(super) fn start(args: Args, signals: Signals) -> Result<Server, Failure> {
        let base = std::env::current_dir()
            .map_err(|e| runtime_error(format!("cannot read the current directory: {e}")))?;
        let (config, settings) = settings::load(&args, &base).map_err(config_error)?;
        let counters = HmacCounters::load(&settings.state_file)
            .map_err(|e| runtime_error(format!("HMAC state: {e}")))?;
        let mut inputs = crate::inputs::load(&config, counters.used()).map_err(config_error)?;
        let iface = netif::find(&settings.interface)
            .map_err(|e| runtime_error(format!("{}: {e}", settings.interface)))?
            .ok_or_else(|| runtime_error(format!("{}: no such interface", settings.interface)))?;
        inputs.local_addrs = iface.addrs.clone();
        let options = Options {
            max_attempts: args.max_attempts,
        };
        let now = Timestamp::from_millis(wall_ms());
        let (engine, first_actions) =
            Engine::new(&config, inputs, options, now).map_err(|e| config_error(e.to_string()))?;
        let capture_opts = CaptureOptions {
            families: settings.families,
            ..CaptureOptions::default()
        };
        let mut capture =
            InterfaceCapture::open(&settings.interface, &engine.capture_rules(), &capture_opts)
                .map_err(|e| runtime_error(e.to_string()))?;
        let mut logger =
            Logger::open(settings.log_config(&args)).map_err(|e| runtime_error(e.to_string()))?;
        // An eventfd, no thread yet.
        let exec = Executor::new(Duration::from_secs(args.command_limit))
            .map_err(|e| runtime_error(e.to_string()))?;

        let mut pidfile = None;
        if args.daemon {
            Pidfile::check(&settings.pid_file).map_err(|e| runtime_error(e.to_string()))?;
            daemon::detach().map_err(|e| runtime_error(e.to_string()))?;
            // From here stderr is /dev/null: failures go to the log as well.
            let _ = logger.reopen();
            match Pidfile::create(&settings.pid_file) {
                Ok(p) => pidfile = Some(p),
                Err(e) => {
                    logger.event(wall_ms(), &e.to_string(), Kind::Error);
                    return Err(runtime_error(e.to_string()));
                }
            }
        }
        // The first thread; from here on nothing fails start-up.
        let resolver = if args.lookup {
            match Resolver::start(lookup::reverse) {
                Ok(r) => Some(r),
                Err(e) => {
                    let line = format!("no lookup thread ({e}): logging addresses, not names");
                    logger.event(wall_ms(), &line, Kind::Error);
                    None
                }
            }
        } else {
            None
        };
        let commands = Commands::new(exec);
        capture.add_wake_fd(signals.fd());
        capture.add_wake_fd(commands.wake_fd());
        let watch = Watch::new(&settings.interface, Some(iface));
        let mut server = Server {
            base,
            journal: Journal::new(logger, resolver),
            settings,
            config,
            engine,
            capture,
            watch,
            commands,
            counters,
            signals,
            _pidfile: pidfile,
            rules_dirty: false,
            refused: [0; ParseError::ALL.len()],
            last_capture_error: None,
            args,
        };
        let now = wall_ms();
        let line = format!("starting up, listening on {}", server.settings.interface);
        server.journal.line(now, &line, Kind::Event);
        server.apply(now, first_actions);
        server.sync_rules();
        Ok(server)
    }
}
