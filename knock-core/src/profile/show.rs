//! Describing a profile for `knock profile show`: every value, and for secrets only where
//! they come from.

use std::path::Path;

use super::{Knock, Profile, SecretRef};

impl Profile {
    /// The profile's values as (key, value) pairs, in file order. Keys the file leaves out
    /// are left out; an `[hmac]` table is shown in full with its defaults. A secret is
    /// described by its source (`secret_env` by the variable's name, `secret_file` by its
    /// path), never by its value, which a profile does not hold anyway.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("kind", self.kind().to_string())];
        let mut opt = |key, value: Option<String>| {
            if let Some(v) = value {
                out.push((key, v));
            }
        };
        opt("description", self.description.clone());
        opt("host", self.host.clone());
        opt("delay_ms", self.delay_ms.map(|v| v.to_string()));
        opt("udp", self.udp.map(|v| v.to_string()));
        opt("family", self.family.map(|v| v.to_string()));
        opt("raw", self.raw.map(|v| v.to_string()));
        opt("open_port", self.open_port.map(|v| v.to_string()));
        match &self.knock {
            Knock::Fixed(seq) => out.push(("sequence", seq.to_string())),
            Knock::OneTime(list) => {
                out.push(("one_time_sequences", path_shown(&list.path, &list.resolved)));
            }
            Knock::Hmac(h) => {
                let p = &h.params;
                out.push(("hmac.door", p.door.clone()));
                out.push(match &h.secret {
                    SecretRef::File { path, resolved } => {
                        ("hmac.secret_file", path_shown(path, resolved))
                    }
                    SecretRef::Env(name) => ("hmac.secret_env", name.clone()),
                    SecretRef::Prompt => ("hmac.secret", "asked on the terminal".to_string()),
                });
                out.push(("hmac.length", p.length.to_string()));
                out.push(("hmac.ports", p.ports.to_string()));
                out.push(("hmac.protocols", p.protocols.to_string()));
                out.push(("hmac.step", p.step.to_string()));
                let flags = p
                    .flags
                    .map_or_else(|| "plain SYN".to_string(), |f| f.to_string());
                out.push(("hmac.flags", flags));
            }
        }
        out
    }

    /// `knock profile show NAME`: one `key  value` line per field, after the name and file,
    /// then the `extra` rows the caller found out (how many one-time lines are left).
    pub fn show(&self, name: &str, file: &Path, extra: &[(&'static str, String)]) -> String {
        let mut rows = vec![
            ("name", name.to_string()),
            ("file", file.display().to_string()),
        ];
        rows.extend(self.fields());
        rows.extend(extra.iter().cloned());
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("{k:width$}  {v}\n"))
            .collect()
    }
}

/// A path as written, and where it resolves when that differs.
fn path_shown(written: &Path, resolved: &Path) -> String {
    if written == resolved {
        written.display().to_string()
    } else {
        format!("{} ({})", written.display(), resolved.display())
    }
}

#[cfg(test)]
mod tests {
    use crate::profile::parse;
    use std::path::Path;

    fn show(text: &str) -> String {
        let path = Path::new("/p/x.toml");
        parse(path, text).unwrap().show("x", path, &[])
    }

    #[test]
    fn sequence_profile() {
        assert_eq!(
            show(
                "description = \"home\"\nhost = \"h.example.net\"\nsequence = \"7000,8000:udp\"\ndelay_ms = 5\nudp = true\nfamily = \"ipv4\"\nraw = false\nopen_port = 2222\n"
            ),
            "name         x\n\
             file         /p/x.toml\n\
             kind         sequence\n\
             description  home\n\
             host         h.example.net\n\
             delay_ms     5\n\
             udp          true\n\
             family       ipv4\n\
             raw          false\n\
             open_port    2222\n\
             sequence     7000,8000:udp\n"
        );
    }

    #[test]
    fn one_time_profile_shows_where_the_list_is_not_what_it_holds() {
        // The list's path is joined the system's way (`/p\vpn.otp` on Windows).
        assert_eq!(
            show("one_time_sequences = \"vpn.otp\"\n"),
            format!(
                "name                x\n\
                 file                /p/x.toml\n\
                 kind                one-time\n\
                 one_time_sequences  vpn.otp ({})\n",
                Path::new("/p").join("vpn.otp").display()
            )
        );
    }

    #[test]
    fn hmac_profiles_never_show_a_secret() {
        // The variable's value is in this process's environment; only its name may show.
        let name = "PATH";
        let value = std::env::var(name).expect("PATH is set");
        let text = show(&format!(
            "host = \"o.example.net\"\n[hmac]\ndoor = \"ssh\"\nsecret_env = \"{name}\"\nflags = \"fin+psh\"\n"
        ));
        assert!(
            text.contains(&format!("\nhmac.secret_env  {name}\n")),
            "{text}"
        );
        assert!(!text.contains(&value), "{text}");
        assert!(
            text.ends_with(
                "hmac.door        ssh\n\
             hmac.secret_env  NAME\n\
             hmac.length      4\n\
             hmac.ports       1024-65535\n\
             hmac.protocols   tcp\n\
             hmac.step        30\n\
             hmac.flags       fin+psh\n"
                    .replace("NAME", name)
                    .as_str()
            ),
            "{text}"
        );
        let text = show("[hmac]\ndoor = \"d\"\nsecret_file = \"/etc/k.secret\"\n");
        assert!(
            text.contains("\nhmac.secret_file  /etc/k.secret\n"),
            "{text}"
        );
        assert!(text.contains("\nhmac.flags        plain SYN\n"), "{text}");
        let text = show("[hmac]\ndoor = \"d\"\n");
        assert!(
            text.contains("\nhmac.secret     asked on the terminal\n"),
            "{text}"
        );
    }
}
