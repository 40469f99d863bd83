//! Command-line options over a profile's values: the command line wins, then the profile,
//! then knock's defaults.

use super::{Family, Profile};
use crate::hit::Proto;

/// The wait between hits when neither the command line nor the profile gives one (knock(1)'s
/// `-d` default too): none.
pub const DEFAULT_DELAY_MS: u64 = 0;

/// Values given on the command line; `None` for an option that was not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub host: Option<String>,
    pub delay_ms: Option<u64>,
    pub udp: Option<bool>,
    pub family: Option<Family>,
    pub raw: Option<bool>,
}

/// The values a knock from a profile runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub host: String,
    /// Milliseconds between hits (knock's `-d`); [`DEFAULT_DELAY_MS`] by default.
    pub delay_ms: u64,
    pub udp: bool,
    pub family: Family,
    pub raw: bool,
}

impl Settings {
    /// The protocol of bare ports in a `sequence`.
    pub fn default_proto(&self) -> Proto {
        if self.udp { Proto::Udp } else { Proto::Tcp }
    }
}

/// Neither the profile nor the command line gives a host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the profile has no host: give one with --host HOST, or add host = \"...\" to the profile")]
pub struct NoHost;

impl Profile {
    /// This profile's values with `cli` applied over them.
    pub fn settings(&self, cli: &Overrides) -> Result<Settings, NoHost> {
        Ok(Settings {
            host: cli
                .host
                .clone()
                .or_else(|| self.host.clone())
                .ok_or(NoHost)?,
            delay_ms: cli.delay_ms.or(self.delay_ms).unwrap_or(DEFAULT_DELAY_MS),
            udp: cli.udp.or(self.udp).unwrap_or(false),
            family: cli.family.or(self.family).unwrap_or_default(),
            raw: cli.raw.or(self.raw).unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FixedSequence, Knock};

    fn profile() -> Profile {
        let mut p = Profile::new(Knock::Fixed(FixedSequence::parse("7000").unwrap()));
        p.host = Some("home.example.net".into());
        p.delay_ms = Some(250);
        p.udp = Some(true);
        p.family = Some(Family::Ipv6);
        p.raw = Some(false);
        p
    }

    #[test]
    fn profile_values_apply_when_the_command_line_is_silent() {
        let s = profile().settings(&Overrides::default()).unwrap();
        assert_eq!(
            s,
            Settings {
                host: "home.example.net".into(),
                delay_ms: 250,
                udp: true,
                family: Family::Ipv6,
                raw: false,
            }
        );
        assert_eq!(s.default_proto(), Proto::Udp);
    }

    #[test]
    fn the_command_line_wins_value_by_value() {
        let cli = Overrides {
            host: Some("192.0.2.2".into()),
            delay_ms: Some(0),
            udp: Some(false),
            family: Some(Family::Ipv4),
            raw: Some(true),
        };
        let s = profile().settings(&cli).unwrap();
        assert_eq!(
            s,
            Settings {
                host: "192.0.2.2".into(),
                delay_ms: 0,
                udp: false,
                family: Family::Ipv4,
                raw: true,
            }
        );
        // One option given, the rest from the profile.
        let cli = Overrides {
            delay_ms: Some(10),
            ..Overrides::default()
        };
        let s = profile().settings(&cli).unwrap();
        assert_eq!((s.delay_ms, s.udp, s.family), (10, true, Family::Ipv6));
    }

    #[test]
    fn defaults_when_neither_says() {
        let mut p = Profile::new(Knock::Fixed(FixedSequence::parse("7000").unwrap()));
        assert_eq!(p.settings(&Overrides::default()), Err(NoHost));
        assert_eq!(
            NoHost.to_string(),
            "the profile has no host: give one with --host HOST, or add host = \"...\" to the profile"
        );
        p.host = Some("192.0.2.2".into());
        let s = p.settings(&Overrides::default()).unwrap();
        assert_eq!(
            s,
            Settings {
                host: "192.0.2.2".into(),
                delay_ms: 0,
                udp: false,
                family: Family::Any,
                raw: false,
            }
        );
        assert_eq!(s.default_proto(), Proto::Tcp);
        let cli = Overrides {
            host: Some("198.51.100.7".into()),
            ..Overrides::default()
        };
        let mut hostless = p.clone();
        hostless.host = None;
        assert_eq!(hostless.settings(&cli).unwrap().host, "198.51.100.7");
    }
}
