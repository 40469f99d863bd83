//! `--wait`, `--proxy`, `--no-wait`, `--wait-timeout` and `--retries`: defined once, for
//! `knock HOST HIT...` and `knock profile NAME` alike, and settled into a [`Connect`].

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;

use super::schedule::Schedule;
use super::{Connect, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_RETRIES};
use crate::Failure;

/// How the wait goes: a paragraph of `--help` for `knock` and `knock profile`.
pub(crate) const WAIT_HELP: &str = "\
With --wait PORT (or a profile's open_port), after the last hit knock connects over TCP to
PORT on the address it knocked until it accepts (exit 0) or --wait-timeout passes (exit 1).
Tries start 0, 20, 50, 100, 200, 400, 800 and 1600 ms after a knock, then every second. The
wait is cut into --retries + 1 equal turns, each later one starting with a knock again
while the port is closed: a sequence is sent again as it is, a one-time line too (it is
marked used only once the port accepted), an HMAC profile sends the sequence of that
moment. --proxy PORT waits the same way, then carries stdin and stdout over that connection
(ssh: ProxyCommand knock profile %n --proxy %p). --dry-run describes the wait and tries
nothing.";

/// `text` (a command's after-help) with [`WAIT_HELP`] as the paragraph before the one that
/// starts `Exit status:`, or at the end when there is none.
pub(crate) fn with_wait_help(text: &str) -> String {
    match text.find("\n\nExit status:") {
        Some(i) => format!("{}\n\n{WAIT_HELP}{}", &text[..i], &text[i..]),
        None => format!("{text}\n\n{WAIT_HELP}"),
    }
}

/// Waiting for the door and carrying the connection.
#[derive(Debug, Default, Args)]
pub(crate) struct ConnectFlags {
    /// After knocking, connect to PORT until it accepts, knocking again while it stays
    /// closed; exit 1 if it never opens
    #[arg(
        long,
        value_name = "PORT",
        value_parser = port,
        conflicts_with_all = ["proxy", "no_wait"]
    )]
    pub wait: Option<u16>,

    /// Knock and wait for PORT as --wait does, then carry stdin and stdout over the
    /// connection that got through, until both sides have closed (for ssh's
    /// ProxyCommand); stdout then carries only the connection's bytes
    #[arg(long, value_name = "PORT", value_parser = port, conflicts_with = "no_wait")]
    pub proxy: Option<u16>,

    /// Do not wait, even when the profile has open_port
    #[arg(long, conflicts_with_all = ["wait_timeout", "retries"])]
    pub no_wait: bool,

    // The help names the default from its constant.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = seconds,
        help = format!(
            "Give up waiting after SECONDS (decimals allowed) [default: {}]",
            DEFAULT_TIMEOUT.as_secs()
        )
    )]
    pub wait_timeout: Option<Duration>,

    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RETRIES)),
        help = format!(
            "Knock again up to N times while the port stays closed, at equal intervals of \
             the wait [default: {DEFAULT_RETRIES}]"
        )
    )]
    pub retries: Option<u32>,
}

impl ConnectFlags {
    /// Whether none of these options was given.
    pub(crate) fn is_empty(&self) -> bool {
        let ConnectFlags {
            wait,
            proxy,
            no_wait,
            wait_timeout,
            retries,
        } = self;
        wait.is_none() && proxy.is_none() && !no_wait && wait_timeout.is_none() && retries.is_none()
    }

    /// What to do after the knock: `--proxy` or `--wait` first, then a profile's
    /// `open_port` unless `--no-wait`. `profile` is `Some(open_port)` for `knock profile
    /// NAME`, `None` for `knock HOST HIT...`. `--wait-timeout` or `--retries` with nothing
    /// to wait for is a usage error.
    pub(crate) fn settle(&self, profile: Option<Option<u16>>) -> Result<Option<Connect>, Failure> {
        let open_port = profile.flatten();
        let (port, proxy) = match (self.proxy, self.wait) {
            (Some(port), _) => (Some(port), true),
            (None, Some(port)) => (Some(port), false),
            (None, None) if self.no_wait => (None, false),
            (None, None) => (open_port, false),
        };
        let Some(port) = port else {
            if self.wait_timeout.is_some() || self.retries.is_some() {
                return Err(Failure::usage(anyhow!(
                    "--wait-timeout and --retries apply only to a wait: add --wait PORT or \
                     --proxy PORT{}",
                    if profile.is_some() {
                        ", or open_port to the profile"
                    } else {
                        ""
                    }
                )));
            }
            return Ok(None);
        };
        Ok(Some(Connect {
            port,
            proxy,
            schedule: Schedule {
                timeout: self.wait_timeout.unwrap_or(DEFAULT_TIMEOUT),
                retries: self.retries.unwrap_or(DEFAULT_RETRIES),
            },
        }))
    }
}

/// A TCP port to connect to: 1 to 65535.
pub(crate) fn port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        Ok(n) => Err(format!("{n} is not a port (expected 1-65535)")),
        Err(_) => Err(format!("{s:?} is not a port number (expected 1-65535)")),
    }
}

/// The longest wait: a day, far beyond any door, and far from Duration's limits.
const MAX_WAIT_SECS: f64 = 86_400.0;

/// A positive number of seconds, decimals allowed (`10`, `2.5`).
fn seconds(s: &str) -> Result<Duration, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    // NaN is refused here too.
    if value.is_nan() || value <= 0.0 {
        return Err(format!("{s} is not more than 0 seconds"));
    }
    if value > MAX_WAIT_SECS {
        return Err(format!("{s} seconds is more than a day"));
    }
    // At least a millisecond: the wait counts in them.
    Ok(Duration::from_secs_f64(value).max(Duration::from_millis(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_paragraph_comes_before_the_exit_status() {
        assert_eq!(
            with_wait_help("Forms.\n\nExit status: 0 ok."),
            format!("Forms.\n\n{WAIT_HELP}\n\nExit status: 0 ok.")
        );
        assert_eq!(with_wait_help("Forms."), format!("Forms.\n\n{WAIT_HELP}"));
    }

    #[test]
    fn ports_and_seconds() {
        assert_eq!(port("22"), Ok(22));
        assert_eq!(port("65535"), Ok(65535));
        assert_eq!(port("0"), Err("0 is not a port (expected 1-65535)".into()));
        assert_eq!(
            port("70000"),
            Err("70000 is not a port (expected 1-65535)".into())
        );
        assert_eq!(
            port("abc"),
            Err("\"abc\" is not a port number (expected 1-65535)".into())
        );
        assert_eq!(
            port("-1"),
            Err("\"-1\" is not a port number (expected 1-65535)".into())
        );
        assert_eq!(seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("0.0001"), Ok(Duration::from_millis(1)));
        assert_eq!(seconds("0"), Err("0 is not more than 0 seconds".into()));
        assert_eq!(seconds("-1"), Err("-1 is not more than 0 seconds".into()));
        assert_eq!(seconds("NaN"), Err("NaN is not more than 0 seconds".into()));
        assert_eq!(seconds("inf"), Err("inf seconds is more than a day".into()));
        assert_eq!(
            seconds("soon"),
            Err("\"soon\" is not a number of seconds".into())
        );
    }

    fn flags(wait: Option<u16>, proxy: Option<u16>, no_wait: bool) -> ConnectFlags {
        ConnectFlags {
            wait,
            proxy,
            no_wait,
            ..ConnectFlags::default()
        }
    }

    #[test]
    fn the_command_line_wins_over_open_port() {
        let default = Schedule {
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
        };
        let connect = |port, proxy| {
            Some(Connect {
                port,
                proxy,
                schedule: default,
            })
        };
        let settle = |f: ConnectFlags, open| f.settle(Some(open)).map_err(|f| f.describe());
        assert_eq!(settle(flags(None, None, false), None).unwrap(), None);
        assert_eq!(flags(None, None, false).settle(None).unwrap(), None);
        assert_eq!(
            flags(Some(22), None, false).settle(None).unwrap(),
            connect(22, false)
        );
        assert_eq!(
            settle(flags(None, None, false), Some(22)).unwrap(),
            connect(22, false)
        );
        assert_eq!(settle(flags(None, None, true), Some(22)).unwrap(), None);
        assert_eq!(
            settle(flags(Some(2222), None, false), Some(22)).unwrap(),
            connect(2222, false)
        );
        assert_eq!(
            settle(flags(None, Some(2222), false), Some(22)).unwrap(),
            connect(2222, true)
        );
        let f = ConnectFlags {
            wait_timeout: Some(Duration::from_millis(1500)),
            retries: Some(0),
            ..flags(None, None, false)
        };
        assert_eq!(
            settle(f, Some(22)).unwrap().unwrap().schedule,
            Schedule {
                timeout: Duration::from_millis(1500),
                retries: 0
            }
        );
        let f = ConnectFlags {
            retries: Some(1),
            ..ConnectFlags::default()
        };
        assert_eq!(
            settle(f, None).unwrap_err(),
            (
                2,
                vec![
                    "--wait-timeout and --retries apply only to a wait: add --wait PORT or \
                     --proxy PORT, or open_port to the profile"
                        .to_string()
                ]
            )
        );
        let f = ConnectFlags {
            wait_timeout: Some(Duration::from_secs(1)),
            ..ConnectFlags::default()
        };
        assert_eq!(
            f.settle(None).map_err(|f| f.describe()).unwrap_err().1,
            ["--wait-timeout and --retries apply only to a wait: add --wait PORT or --proxy PORT"]
        );
        assert!(ConnectFlags::default().is_empty());
        assert!(!flags(None, None, true).is_empty());
    }
}
