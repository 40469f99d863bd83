//! From syntax to a plan: the hits parsed, HOST resolved, the options settled. This is the
//! one place that looks anything up; sending and printing work only on the [`Plan`].

use std::time::Duration;

use knock_core::hit::{Hit, HitError, PortNames, Proto, parse_sequence_named};
use knock_core::profile::{DEFAULT_DELAY_MS, Family};
use knock_core::send::SendOptions;

use crate::Failure;
use crate::args::KnockArgs;
use crate::connect::Connect;
use crate::resolve::{Address, ResolveError, resolve};

/// What a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Send,
    /// List the hits as text and send nothing.
    DryRun,
    /// List the hits as one JSON object and send nothing.
    DryRunJson,
}

/// Everything a run needs, nothing left to look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// HOST as written.
    pub host: String,
    /// The one address every hit goes to.
    pub addr: Address,
    pub hits: Vec<Hit>,
    /// Pause between two hits.
    pub delay: Duration,
    pub verbose: bool,
    pub mode: Mode,
    /// `--raw` and `--source-port`, for the sender.
    pub send: SendOptions,
    /// `--wait` or `--proxy` (or a profile's `open_port`): what follows the knock.
    pub connect: Option<Connect>,
}

impl Mode {
    /// The mode `--dry-run` and `--json` ask for.
    pub(crate) fn new(dry_run: bool, json: bool) -> Mode {
        match (dry_run, json) {
            (false, _) => Mode::Send,
            (true, false) => Mode::DryRun,
            (true, true) => Mode::DryRunJson,
        }
    }
}

impl Plan {
    /// Whether the knock is followed by `--proxy`'s relay, so stdout is the connection's.
    pub(crate) fn proxy(&self) -> bool {
        self.connect.is_some_and(|c| c.proxy)
    }

    /// Parses the hits, with service names from `names` (a bad one is a usage error), then
    /// resolves HOST once (a failure there is a runtime error). Hits come first so a typo
    /// never waits on a lookup.
    pub(crate) fn new(args: KnockArgs, names: &dyn PortNames) -> Result<Plan, Failure> {
        let hits = parse_hits(&args.hits, args.send.udp, names).map_err(Failure::usage)?;
        let connect = args.connect.settle(None)?;
        let family = args.send.family().unwrap_or_default();
        let mut plan = Plan::resolve(
            args.host,
            family,
            hits,
            Duration::from_millis(args.send.delay.unwrap_or(DEFAULT_DELAY_MS)),
            args.verbose,
            Mode::new(args.dry_run, args.json),
            SendOptions {
                raw_tcp: args.send.raw,
                source_port: args.source.source_port,
            },
        )?;
        plan.connect = connect;
        Ok(plan)
    }

    /// A plan for hits already parsed: resolves `host` once (a failure is a runtime
    /// error, a HOST that cannot name a host a usage error). The hits may be left empty and
    /// filled in later, by a one-time list that is read only once the address is known.
    /// Nothing follows the knock until the caller sets `connect`.
    pub(crate) fn resolve(
        host: String,
        family: Family,
        hits: Vec<Hit>,
        delay: Duration,
        verbose: bool,
        mode: Mode,
        send: SendOptions,
    ) -> Result<Plan, Failure> {
        let addr = resolve(&host, family).map_err(|e| match e {
            ResolveError::NotAHost(_) => Failure::usage(e),
            _ => Failure::runtime(e),
        })?;
        Ok(Plan {
            host,
            addr,
            hits,
            delay,
            verbose,
            mode,
            send,
            connect: None,
        })
    }
}

/// All HIT arguments in order; each may itself be a comma-separated sequence, and its
/// ports service names found in `names`.
pub(crate) fn parse_hits(
    words: &[String],
    udp: bool,
    names: &dyn PortNames,
) -> Result<Vec<Hit>, HitError> {
    let default = if udp { Proto::Udp } else { Proto::Tcp };
    let mut hits = Vec::new();
    for word in words {
        hits.extend(parse_sequence_named(word, default, names)?);
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::hit::{NoNames, TcpFlags};

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hit_arguments_and_comma_lists_flatten_in_order() {
        let hits = parse_hits(
            &words(&["7000,8000:udp", "9000", "1:tcp:fin+psh"]),
            false,
            &NoNames,
        );
        assert_eq!(
            hits.unwrap(),
            [
                Hit::tcp(7000),
                Hit::udp(8000),
                Hit::tcp(9000),
                Hit::tcp_flags(1, TcpFlags::FIN | TcpFlags::PSH)
            ]
        );
    }

    #[test]
    fn udp_changes_only_bare_ports() {
        let hits = parse_hits(&words(&["7000", "8000:tcp", "9000:udp"]), true, &NoNames).unwrap();
        assert_eq!(hits, [Hit::udp(7000), Hit::tcp(8000), Hit::udp(9000)]);
    }

    #[test]
    fn the_first_bad_hit_is_named() {
        let err = parse_hits(&words(&["7000", "8000,abc", "0"]), false, &NoNames).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"bad hit "abc": port "abc" is not a number (expected 1-65535)"#
        );
        let err = parse_hits(&words(&["7000,"]), false, &NoNames).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"bad hit "": empty item (a stray or trailing comma?)"#
        );
    }
}
