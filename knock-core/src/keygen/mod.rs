//! `knock keygen`: a new knock-hmac-v1 secret, and the knockd-lite door and the `knock`
//! profile that use it.
//!
//! The secret is 32 bytes from the OS's CSPRNG written in base64. Like any knock-hmac-v1
//! secret, the key `K` is the text itself (the 44 characters), not the decoded bytes.

use std::path::PathBuf;

use crate::conf::DEFAULT_HMAC_SKEW;
use crate::hit::TcpFlags;
use crate::hmac::HmacParams;
use crate::profile::{HmacKnock, Knock, Profile, SecretRef, ToTomlError};
use crate::secret::{Secret, wipe};

mod base64;

/// Random bytes in a new secret.
pub const SECRET_BYTES: usize = 32;

/// A new secret: [`SECRET_BYTES`] bytes from the OS, base64-encoded.
pub fn new_secret() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)?;
    let secret = secret_from_bytes(&bytes);
    wipe(&mut bytes);
    Ok(secret)
}

/// The secret whose text is the base64 form of `bytes`.
pub(crate) fn secret_from_bytes(bytes: &[u8]) -> Secret {
    Secret::new(base64::encode(bytes).into_bytes())
}

/// The host a generated profile knocks on until it is edited: a placeholder, never a
/// real address.
pub const DEFAULT_HOST: &str = "server.example.net";

/// What the snippets say besides the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeygenOptions {
    /// The door label and derivation parameters, shared by both ends.
    pub params: HmacParams,
    /// Steps either side of now that the server accepts (`HMAC_Skew`).
    pub skew: u64,
    /// The host the profile knocks on.
    pub host: String,
    /// Where the server keeps the secret.
    pub server_secret_file: PathBuf,
    /// Where the client's profile reads the secret from.
    pub client_secret: SecretRef,
    /// The door's `Start_Command`.
    pub start_command: String,
}

impl KeygenOptions {
    /// Defaults for door `door`: knock-hmac-v1's default parameters, the default skew,
    /// [`DEFAULT_HOST`], the secret in
    /// `/etc/knockd-lite/DOOR.secret` on the server and `DOOR.secret` beside the profile,
    /// and a command that lets the knocking address reach SSH.
    pub fn new(door: &str) -> KeygenOptions {
        KeygenOptions {
            params: HmacParams::new(door),
            skew: DEFAULT_HMAC_SKEW,
            host: DEFAULT_HOST.into(),
            server_secret_file: PathBuf::from(format!("/etc/knockd-lite/{door}.secret")),
            client_secret: SecretRef::File {
                path: PathBuf::from(format!("{door}.secret")),
                resolved: PathBuf::from(format!("{door}.secret")),
            },
            start_command: "/usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT".into(),
        }
    }
}

/// The knockd-lite door, in knockd.conf syntax. The section name is the door label.
pub fn door_snippet(opts: &KeygenOptions) -> String {
    let p = &opts.params;
    let mut rows: Vec<(&str, String)> = vec![
        (
            "HMAC_Secret_File",
            opts.server_secret_file.display().to_string(),
        ),
        ("HMAC_Length", p.length.to_string()),
        ("HMAC_Ports", p.ports.to_string()),
        ("HMAC_Protocols", p.protocols.to_string()),
        ("HMAC_Step", p.step.to_string()),
        ("HMAC_Skew", opts.skew.to_string()),
    ];
    if let Some(flags) = p.flags {
        rows.push(("TCPFlags", tcpflags_directive(flags)));
    }
    rows.push(("Start_Command", opts.start_command.clone()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("[{}]\n", p.door);
    for (key, value) in rows {
        out.push_str(&format!("    {key:width$} = {value}\n"));
    }
    out
}

/// knockd's `TCPFlags` for hits that carry exactly `flags`: each of the six flags knockd
/// knows, set or `!`-negated. (ece and cwr have no knockd name and go unchecked.)
fn tcpflags_directive(flags: TcpFlags) -> String {
    TcpFlags::NAMES[..6]
        .iter()
        .map(|&(name, f)| {
            if flags.contains(f) {
                name.to_string()
            } else {
                format!("!{name}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The client profile, as `knock profile save` would write it.
pub fn profile_snippet(opts: &KeygenOptions) -> Result<String, ToTomlError> {
    let mut profile = Profile::new(Knock::Hmac(HmacKnock {
        params: opts.params.clone(),
        secret: opts.client_secret.clone(),
    }));
    profile.host = Some(opts.host.clone());
    profile.to_toml()
}

/// Everything `knock keygen` prints: the secret, then the server door and the client
/// profile with instructions for each. This is the one place a secret is printed.
pub fn render(secret: &Secret, opts: &KeygenOptions) -> Result<String, ToTomlError> {
    let door = &opts.params.door;
    let text = String::from_utf8_lossy(secret.expose());
    let client_step = match &opts.client_secret {
        SecretRef::File { path, .. } => format!(
            "put the secret on the first line of {}{}, chmod 600 it.",
            path.display(),
            if path.is_relative() {
                " in the profile directory"
            } else {
                ""
            }
        ),
        SecretRef::Env(name) => format!("set the environment variable {name} to the secret."),
        SecretRef::Prompt => "type the secret when knock asks for it.".to_string(),
    };
    Ok(format!(
        "# New knock-hmac-v1 secret for door {door:?}: {SECRET_BYTES} random bytes from the OS, \
         base64.\n\
         # Both ends need it. Keep it out of shell history, command lines and version control.\n\
         {text}\n\
         \n\
         # Server (knockd-lite): put the secret on the first line of {server}, chmod 600 it,\n\
         # and add this door to the configuration:\n\
         {door_snippet}\
         \n\
         # Client (knock): {client_step}\n\
         # Then save this as {door}.toml in the profile directory:\n\
         {profile}",
        server = opts.server_secret_file.display(),
        door_snippet = door_snippet(opts),
        profile = profile_snippet(opts)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hit::{Proto, format_sequence};
    use crate::hmac::{PortRange, Protocols};
    use crate::profile::parse;
    use std::path::Path;

    #[test]
    fn new_secrets_are_44_base64_characters_and_differ() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_eq!(a.expose().len(), 44);
        assert!(a.expose().ends_with(b"="));
        assert!(
            a.expose()
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c))
        );
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn door_snippet_for_defaults() {
        assert_eq!(
            door_snippet(&KeygenOptions::new("ssh")),
            "[ssh]\n\
             \x20   HMAC_Secret_File = /etc/knockd-lite/ssh.secret\n\
             \x20   HMAC_Length      = 4\n\
             \x20   HMAC_Ports       = 1024-65535\n\
             \x20   HMAC_Protocols   = tcp\n\
             \x20   HMAC_Step        = 30\n\
             \x20   HMAC_Skew        = 1\n\
             \x20   Start_Command    = /usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n"
        );
    }

    #[test]
    fn door_snippet_with_flags_and_other_parameters() {
        let mut opts = KeygenOptions::new("web");
        opts.params.length = 6;
        opts.params.ports = PortRange { lo: 7000, hi: 7999 };
        opts.params.protocols = Protocols::Mixed;
        opts.params.step = 60;
        opts.params.flags = Some(TcpFlags::FIN | TcpFlags::PSH);
        opts.skew = 2;
        let text = door_snippet(&opts);
        assert!(text.contains("    HMAC_Length      = 6\n"), "{text}");
        assert!(
            text.contains("    HMAC_Ports       = 7000-7999\n"),
            "{text}"
        );
        assert!(text.contains("    HMAC_Protocols   = mixed\n"), "{text}");
        assert!(text.contains("    HMAC_Step        = 60\n"), "{text}");
        assert!(text.contains("    HMAC_Skew        = 2\n"), "{text}");
        assert!(
            text.contains("    TCPFlags         = fin,!syn,!rst,psh,!ack,!urg\n"),
            "{text}"
        );
        assert_eq!(
            tcpflags_directive(TcpFlags::NONE),
            "!fin,!syn,!rst,!psh,!ack,!urg"
        );
    }

    /// What keygen prints for the server is a door knockd-lite's parser reads back with
    /// the same parameters, and whose sequences are the profile's.
    #[test]
    fn door_snippet_parses_as_the_same_door() {
        let mut flagged = KeygenOptions::new("web door");
        flagged.params.length = 6;
        flagged.params.ports = PortRange { lo: 7000, hi: 7999 };
        flagged.params.protocols = Protocols::Mixed;
        flagged.params.step = 60;
        flagged.params.flags = Some(TcpFlags::FIN | TcpFlags::PSH);
        flagged.skew = 2;
        let secret = secret_from_bytes(&[7; 32]);
        for opts in [KeygenOptions::new("ssh"), flagged] {
            let text = door_snippet(&opts);
            let config = crate::conf::parse(&text, Path::new("keygen.conf"))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let [door] = config.doors.as_slice() else {
                panic!("{text}")
            };
            let crate::conf::SequenceSource::Hmac(h) = &door.sequence else {
                panic!("{text}")
            };
            assert_eq!(door.name, opts.params.door);
            assert_eq!(h.secret_file, opts.server_secret_file);
            assert_eq!(h.skew, opts.skew);
            assert_eq!(
                door.start_command_for(false),
                Some(opts.start_command.as_str())
            );
            // The door's derivation has no flags: TCPFlags carries them instead, and holds
            // exactly the hits the profile sends.
            let params = h.params(&door.name);
            assert_eq!(
                params,
                HmacParams {
                    flags: None,
                    ..opts.params.clone()
                }
            );
            let door_hits = params.derive(&secret, 9).unwrap();
            let client_hits = opts.params.derive(&secret, 9).unwrap();
            assert_eq!(door_hits.len(), client_hits.len());
            assert!(client_hits.iter().any(|c| c.proto == Proto::Tcp), "{text}");
            for (d, c) in door_hits.iter().zip(&client_hits) {
                assert_eq!((d.port, d.proto), (c.port, c.proto), "{text}");
                assert!(
                    c.proto == Proto::Udp || d.step_rule(door.tcp_flags).matches(c.wire_flags()),
                    "{c} against {text}"
                );
            }
            if let Some(flags) = opts.params.flags {
                assert!(!door.tcp_flags.matches(flags | TcpFlags::SYN), "{text}");
            }
        }
    }

    #[test]
    fn profile_snippet_parses_and_derives_like_the_door() {
        let mut opts = KeygenOptions::new("ssh");
        opts.host = "192.0.2.2".into();
        opts.params.protocols = Protocols::Udp;
        let text = profile_snippet(&opts).unwrap();
        assert_eq!(
            text,
            "host = \"192.0.2.2\"\n\n[hmac]\ndoor = \"ssh\"\nsecret_file = \"ssh.secret\"\n\
             length = 4\nports = \"1024-65535\"\nprotocols = \"udp\"\nstep = 30\n"
        );
        let p = parse(Path::new("/p/ssh.toml"), &text).unwrap();
        let Knock::Hmac(h) = &p.knock else {
            panic!("{p:?}")
        };
        assert_eq!(h.params, opts.params);
        // Same secret, same door label, same sequence on both ends.
        let secret = secret_from_bytes(&[7; 32]);
        assert_eq!(
            format_sequence(&h.params.derive(&secret, 1).unwrap()),
            format_sequence(&opts.params.derive(&secret, 1).unwrap())
        );
    }

    #[test]
    fn render_prints_the_secret_once_with_both_snippets() {
        let secret = secret_from_bytes(b"0123456789abcdef0123456789abcdef");
        let text_secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        assert_eq!(secret.expose(), text_secret.as_bytes());
        let mut opts = KeygenOptions::new("ssh");
        opts.client_secret = SecretRef::Env("KNOCK_SSH_SECRET".into());
        let text = render(&secret, &opts).unwrap();
        assert_eq!(text.matches(text_secret).count(), 1, "{text}");
        assert!(text.contains(&format!("base64.\n# Both ends need it. Keep it out of shell history, command lines and version control.\n{text_secret}\n\n")), "{text}");
        assert!(text.contains(&door_snippet(&opts)), "{text}");
        assert!(text.ends_with(&profile_snippet(&opts).unwrap()), "{text}");
        assert!(
            text.contains(
                "# Client (knock): set the environment variable KNOCK_SSH_SECRET to the secret.\n\
                 # Then save this as ssh.toml in the profile directory:\nhost = "
            ),
            "{text}"
        );
        let text = render(&secret, &KeygenOptions::new("web")).unwrap();
        assert!(
            text.contains(
                "# Client (knock): put the secret on the first line of web.secret in the \
                 profile directory, chmod 600 it.\n"
            ),
            "{text}"
        );
    }
}
