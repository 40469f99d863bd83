//! Writing a profile back as TOML (for `knock profile save` and `import`).

use std::path::Path;

use serde::Serialize;

use super::{Knock, Profile, SecretRef};

#[derive(Serialize)]
struct Out<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_time_sequences: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hmac: Option<OutHmac<'a>>,
}

#[derive(Serialize)]
struct OutHmac<'a> {
    door: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_env: Option<&'a str>,
    length: usize,
    ports: String,
    protocols: &'a str,
    step: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<String>,
}

/// Why a profile cannot be written as TOML.
#[derive(Debug, thiserror::Error)]
pub enum ToTomlError {
    #[error("{key} path {} is not valid UTF-8, which TOML cannot hold", path.display())]
    NotUtf8 {
        key: &'static str,
        path: std::path::PathBuf,
    },
    /// The message holds the serializer's, so it is not also the `source()`.
    #[error("serialize profile: {0}")]
    Toml(toml::ser::Error),
}

impl From<toml::ser::Error> for ToTomlError {
    fn from(e: toml::ser::Error) -> Self {
        ToTomlError::Toml(e)
    }
}

fn utf8<'a>(key: &'static str, path: &'a Path) -> Result<&'a str, ToTomlError> {
    path.to_str().ok_or_else(|| ToTomlError::NotUtf8 {
        key,
        path: path.to_path_buf(),
    })
}

impl Profile {
    /// The profile as TOML that [`parse`](fn@super::parse) reads back to an equal profile. Paths are
    /// written as they were given (relative ones stay relative to the profile's directory);
    /// HMAC parameters are written out in full, defaults included.
    pub fn to_toml(&self) -> Result<String, ToTomlError> {
        let mut out = Out {
            description: self.description.as_deref(),
            host: self.host.as_deref(),
            sequence: None,
            one_time_sequences: None,
            delay_ms: self.delay_ms,
            udp: self.udp,
            family: self.family.map(|f| f.as_str()),
            raw: self.raw,
            open_port: self.open_port,
            hmac: None,
        };
        match &self.knock {
            Knock::Fixed(seq) => out.sequence = Some(seq.as_str()),
            Knock::OneTime(list) => {
                out.one_time_sequences = Some(utf8("one_time_sequences", &list.path)?);
            }
            Knock::Hmac(h) => {
                let p = &h.params;
                let (secret_file, secret_env) = match &h.secret {
                    SecretRef::File { path, .. } => (Some(utf8("secret_file", path)?), None),
                    SecretRef::Env(name) => (None, Some(name.as_str())),
                    SecretRef::Prompt => (None, None),
                };
                out.hmac = Some(OutHmac {
                    door: &p.door,
                    secret_file,
                    secret_env,
                    length: p.length,
                    ports: p.ports.to_string(),
                    protocols: p.protocols.as_str(),
                    step: p.step,
                    flags: p.flags.map(|f| f.to_string()),
                });
            }
        }
        Ok(toml::to_string(&out)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::TcpFlags;
    use crate::hmac::{HmacParams, PortRange, Protocols};
    use crate::profile::{Family, FixedSequence, HmacKnock, OneTime, parse};

    const PATH: &str = "/p/x.toml";

    fn round_trip(p: &Profile) -> String {
        let text = p.to_toml().unwrap();
        let back = parse(Path::new(PATH), &text).unwrap_or_else(|e| panic!("{text}\n{e}"));
        assert_eq!(&back, p, "{text}");
        text
    }

    #[test]
    fn sequence_profile_with_every_value() {
        let mut p = Profile::new(Knock::Fixed(FixedSequence::parse("7000,8000:udp").unwrap()));
        p.description = Some("quote \" and\nnewline".into());
        p.host = Some("home.example.net".into());
        p.delay_ms = Some(100);
        p.udp = Some(false);
        p.family = Some(Family::Ipv4);
        p.raw = Some(true);
        p.open_port = Some(22);
        let text = round_trip(&p);
        assert!(text.starts_with("description = "), "{text}");
        assert!(text.contains("\nhost = \"home.example.net\"\nsequence = \"7000,8000:udp\"\ndelay_ms = 100\nudp = false\nfamily = \"ipv4\"\nraw = true\nopen_port = 22\n"), "{text}");
    }

    #[test]
    fn minimal_and_one_time_profiles() {
        let p = Profile::new(Knock::Fixed(FixedSequence::parse("1").unwrap()));
        assert_eq!(round_trip(&p), "sequence = \"1\"\n");
        let mut p = Profile::new(Knock::OneTime(OneTime::new("vpn.otp", Path::new("/p"))));
        p.host = Some("192.0.2.2".into());
        assert_eq!(
            round_trip(&p),
            "host = \"192.0.2.2\"\none_time_sequences = \"vpn.otp\"\n"
        );
    }

    #[test]
    fn hmac_profiles_write_every_parameter() {
        let mut params = HmacParams::new("ssh");
        params.length = 5;
        params.ports = PortRange { lo: 2000, hi: 2999 };
        params.protocols = Protocols::Mixed;
        params.step = 15;
        params.flags = Some(TcpFlags::FIN | TcpFlags::URG);
        let mut p = Profile::new(Knock::Hmac(HmacKnock {
            params,
            secret: SecretRef::Env("KNOCK_SECRET".into()),
        }));
        p.host = Some("office.example.net".into());
        assert_eq!(
            round_trip(&p),
            "host = \"office.example.net\"\n\n[hmac]\ndoor = \"ssh\"\nsecret_env = \"KNOCK_SECRET\"\n\
             length = 5\nports = \"2000-2999\"\nprotocols = \"mixed\"\nstep = 15\nflags = \"fin+urg\"\n"
        );
        let mut p = Profile::new(Knock::Hmac(HmacKnock {
            params: HmacParams::new("web"),
            secret: SecretRef::file("web.secret", Path::new("/p")),
        }));
        p.host = Some("192.0.2.2".into());
        let text = round_trip(&p);
        assert!(text.contains("secret_file = \"web.secret\"\nlength = 4\nports = \"1024-65535\"\nprotocols = \"tcp\"\nstep = 30\n"), "{text}");
        let p = Profile::new(Knock::Hmac(HmacKnock {
            params: HmacParams::new("asked"),
            secret: SecretRef::Prompt,
        }));
        assert!(!round_trip(&p).contains("secret"));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::OsStr::from_bytes(b"list\xff.otp");
        let p = Profile::new(Knock::OneTime(OneTime::new(path, Path::new("/p"))));
        assert_eq!(
            p.to_toml().unwrap_err().to_string(),
            "one_time_sequences path list\u{fffd}.otp is not valid UTF-8, which TOML cannot hold"
        );
    }
}
