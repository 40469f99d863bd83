//! `knock profile import knockd.conf`: one profile per door of a knockd (or knockd-lite)
//! configuration, or per event of a tportknockd one, named after the door.
//!
//! * a `Sequence` door gets a `sequence` profile;
//! * a `One_Time_Sequences` door gets a copy of its list saved next to the profiles, and a
//!   profile pointing at that copy (client and server then each mark their own copy);
//! * an `HMAC_*` door gets an `[hmac]` table: the door's name is the label, the `HMAC_*`
//!   values are the parameters, and `secret_file` is the door's `HMAC_Secret_File`.
//!
//! A door's `TCPFlags` decides which TCP packets count. When it does not accept the plain
//! SYN that knock sends by default, the profile's TCP hits carry the flags it asks for.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use knock_core::conf::{self, Door, Format, SequenceSource};
use knock_core::hit::{FlagRule, Hit, HitFlags, Proto, TcpFlags, format_sequence};
use knock_core::profile::store::{Store, StoreError};
use knock_core::profile::{FixedSequence, HmacKnock, Knock, OneTime, Profile, SecretRef};

use super::store_failure;
use crate::{Ctx, Failure};

/// `knock profile import KNOCKD_CONF [--host HOST] [--force]`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The knockd.conf (or tportknockd config) to read
    #[arg(value_name = "KNOCKD_CONF")]
    pub conf: PathBuf,

    /// The host every profile knocks on [default: the door's Target, if it has one]
    #[arg(long, value_name = "HOST", value_parser = crate::args::host_value, value_hint = clap::ValueHint::Hostname)]
    pub host: Option<String>,

    /// Replace profiles, and copies of one-time lists, that already exist
    #[arg(long)]
    pub force: bool,
}

/// One door turned into a profile.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Imported {
    pub profile: Profile,
    /// For a one-time door: the list's text, to be copied next to the profile.
    pub list: Option<(PathBuf, Vec<u8>)>,
    /// What the user should know about this profile.
    pub notes: Vec<String>,
}

pub(crate) fn import(args: ImportArgs, store: &Store, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let text = std::fs::read(&args.conf)
        .with_context(|| format!("read {}", args.conf.display()))
        .map_err(Failure::runtime)?;
    let config = conf::parse(&text, &args.conf).map_err(Failure::usage)?;
    if config.doors.is_empty() {
        return Err(Failure::usage(anyhow!(
            "{} has no doors to import",
            args.conf.display()
        )));
    }
    let conf_dir = absolute_dir(&args.conf)?;
    let mut errors = Vec::new();
    let mut code = 2;
    for (i, door) in config.doors.iter().enumerate() {
        let first = config.doors[..i].iter().find(|d| d.name == door.name);
        let saved = match first {
            // A profile is named after its door: the first door of a name gets it.
            Some(first) => Err(Failure::usage(anyhow!(
                "it has the same name as the door on line {} of {}, which is imported as \
                 profile {}; rename it there to import it too",
                first.line,
                args.conf.display(),
                door.name
            ))),
            None => door_profile(
                door,
                config.format,
                &conf_dir,
                args.host.as_deref(),
                &args.conf,
            )
            .and_then(|imported| save(&door.name, imported, store, args.force)),
        };
        match saved {
            Ok((path, kind, notes)) => {
                ctx.line(&format!(
                    "door [{}] -> profile {} ({kind}): {}",
                    door.name,
                    door.name,
                    path.display()
                ))?;
                for note in notes {
                    ctx.note(&format!("profile {}: {note}", door.name));
                }
            }
            Err(failure) => {
                let (c, errs) = failure.into_parts();
                if c == 1 {
                    code = 1;
                }
                errors.extend(
                    errs.into_iter()
                        .map(|e| e.context(format!("door [{}] not imported", door.name))),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Errors(code, errors))
    }
}

/// The directory of the configuration file, absolute, for paths written relative to it.
fn absolute_dir(conf: &Path) -> Result<PathBuf, Failure> {
    let abs = std::path::absolute(conf)
        .with_context(|| format!("make {} absolute", conf.display()))
        .map_err(Failure::runtime)?;
    Ok(abs.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// A path from the configuration, relative ones taken from the configuration's directory.
fn from_conf(path: &Path, conf_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        conf_dir.join(path)
    }
}

/// The profile for one door (nothing written yet).
pub(crate) fn door_profile(
    door: &Door,
    format: Format,
    conf_dir: &Path,
    host: Option<&str>,
    conf: &Path,
) -> Result<Imported, Failure> {
    let mut notes = Vec::new();
    let rule = door.tcp_flags;
    let (knock, list) = match &door.sequence {
        SequenceSource::Fixed(hits) => {
            let hits = fit_hits(hits, rule, &mut notes).map_err(|e| Failure::usage(anyhow!(e)))?;
            let sequence = FixedSequence::parse(&format_sequence(&hits)).map_err(Failure::usage)?;
            (Knock::Fixed(sequence), None)
        }
        SequenceSource::OneTime(path) => {
            let source = from_conf(path, conf_dir);
            let bytes = std::fs::read(&source)
                .with_context(|| format!("read one-time list {}", source.display()))
                .map_err(Failure::runtime)?;
            if !rule.matches(TcpFlags::SYN) {
                notes.push(format!(
                    "the door's TCPFlags ({}) ignores the plain SYNs the list's TCP hits are \
                     sent as; give the list's lines exact flags",
                    rule_text(rule)
                ));
            }
            notes.push(format!(
                "its one-time list is a copy of {}: knock and the server each mark their \
                 own copy, so both must start from the same lines",
                source.display()
            ));
            let file = PathBuf::from(format!("{}.otp", door.name));
            (
                Knock::OneTime(OneTime::new(file.clone(), Path::new(""))),
                Some((file, bytes)),
            )
        }
        SequenceSource::Hmac(h) => {
            let mut params = h.params(&door.name);
            if !rule.matches(TcpFlags::SYN) {
                params.flags = Some(fitting_flags(rule).map_err(|e| Failure::usage(anyhow!(e)))?);
                notes.push(format!(
                    "TCP hits carry the flags {} that the door's TCPFlags ({}) asks for; they \
                     go out through a raw socket, which needs privileges",
                    params.flags.unwrap_or(TcpFlags::NONE),
                    rule_text(rule)
                ));
            }
            params.validate().map_err(|e| Failure::usage(anyhow!(e)))?;
            let secret = from_conf(&h.secret_file, conf_dir);
            notes.push(format!(
                "the secret is read from {} (the door's HMAC_Secret_File), which must be \
                 readable by you alone",
                secret.display()
            ));
            let knock = Knock::Hmac(HmacKnock {
                params,
                secret: SecretRef::File {
                    path: secret.clone(),
                    resolved: secret,
                },
            });
            (knock, None)
        }
    };
    let mut profile = Profile::new(knock);
    profile.description = Some(match format {
        Format::Knockd => format!("knockd door [{}] of {}", door.name, conf.display()),
        Format::Tportknockd => format!("tportknockd event <{}> of {}", door.name, conf.display()),
    });
    profile.host = host
        .map(str::to_string)
        .or_else(|| door.target.map(|t| t.to_string()));
    if profile.host.is_none() {
        notes.push(
            "no host: give one with --host when knocking, or add host = \"...\" to the profile"
                .into(),
        );
    }
    Ok(Imported {
        profile,
        list,
        notes,
    })
}

/// The door's hits as knock must send them: plain TCP hits become exact flags when the
/// door's `TCPFlags` would ignore a plain SYN.
fn fit_hits(hits: &[Hit], rule: FlagRule, notes: &mut Vec<String>) -> Result<Vec<Hit>, String> {
    if rule.matches(TcpFlags::SYN) {
        return Ok(hits.to_vec());
    }
    let flags = fitting_flags(rule)?;
    let mut changed = false;
    let hits = hits
        .iter()
        .map(|h| match (h.proto, h.flags) {
            (Proto::Tcp, HitFlags::Plain) => {
                changed = true;
                Hit::tcp_flags(h.port, flags)
            }
            _ => *h,
        })
        .collect();
    if changed {
        notes.push(format!(
            "TCP hits carry the flags {flags} that the door's TCPFlags ({}) asks for; they \
             go out through a raw socket, which needs privileges",
            rule_text(rule)
        ));
    }
    Ok(hits)
}

/// The fewest flags a packet can carry and still pass `rule`: exactly the required ones.
fn fitting_flags(rule: FlagRule) -> Result<TcpFlags, String> {
    if rule.matches(rule.set) {
        Ok(rule.set)
    } else {
        Err(format!(
            "the door's TCPFlags ({}) accepts no packet at all",
            rule_text(rule)
        ))
    }
}

/// `syn,!ack`, as knockd.conf writes it.
fn rule_text(rule: FlagRule) -> String {
    let mut parts = Vec::new();
    for (name, f) in TcpFlags::NAMES {
        if rule.set.contains(f) {
            parts.push(name.to_string());
        }
        if rule.clear.contains(f) {
            parts.push(format!("!{name}"));
        }
    }
    parts.join(",")
}

/// Writes one imported profile (and its list copy): the profile's name is checked, and an
/// existing profile refused without `force`, before anything is written.
fn save(
    name: &str,
    imported: Imported,
    store: &Store,
    force: bool,
) -> Result<(PathBuf, &'static str, Vec<String>), Failure> {
    let path = store.path(name).map_err(store_failure)?;
    if !force && path.exists() {
        return Err(store_failure(StoreError::Exists {
            name: name.to_string(),
            path,
        }));
    }
    let kind = imported.profile.kind().as_str();
    if let Some((file, bytes)) = &imported.list {
        let file = file.to_str().expect("made from a UTF-8 door name");
        store.save_file(file, bytes, force).map_err(store_failure)?;
    }
    let path = store
        .save(name, &imported.profile, force)
        .map_err(store_failure)?;
    Ok((path, kind, imported.notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_knockd_writes_them() {
        let rule = FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK,
        };
        assert_eq!(rule_text(rule), "syn,!ack");
        assert_eq!(
            rule_text(FlagRule::exact(TcpFlags::FIN)).split(',').count(),
            8
        );
        assert_eq!(rule_text(FlagRule::ANY), "");
    }

    #[test]
    fn plain_tcp_hits_fit_the_doors_flags() {
        let hits = [Hit::tcp(1), Hit::udp(2), Hit::tcp_flags(3, TcpFlags::URG)];
        let mut notes = Vec::new();
        // A rule a SYN passes leaves the hits alone.
        let syn_ok = FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK,
        };
        assert_eq!(fit_hits(&hits, syn_ok, &mut notes).unwrap(), hits);
        assert_eq!(fit_hits(&hits, FlagRule::ANY, &mut notes).unwrap(), hits);
        assert!(notes.is_empty());
        // fin,!syn: plain hits become exact FIN.
        let fin = FlagRule {
            set: TcpFlags::FIN,
            clear: TcpFlags::SYN,
        };
        assert_eq!(
            fit_hits(&hits, fin, &mut notes).unwrap(),
            [
                Hit::tcp_flags(1, TcpFlags::FIN),
                Hit::udp(2),
                Hit::tcp_flags(3, TcpFlags::URG)
            ]
        );
        assert_eq!(
            notes,
            [
                "TCP hits carry the flags fin that the door's TCPFlags (fin,!syn) asks for; \
              they go out through a raw socket, which needs privileges"
            ]
        );
        let none = FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::SYN,
        };
        assert_eq!(
            fit_hits(&hits, none, &mut notes).unwrap_err(),
            "the door's TCPFlags (syn,!syn) accepts no packet at all"
        );
    }
}
