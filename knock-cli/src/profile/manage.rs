//! `knock profile list | show | save | remove`.

use knock_core::hit::{Hit, PortNames, Proto};
use knock_core::profile::store::{self, Store};
use knock_core::profile::{FixedSequence, Knock, Profile};

use super::{SaveArgs, store_failure};
use crate::{Ctx, Failure};

/// Name, host, kind and description of every profile; a broken one shows its error.
pub(crate) fn list(store: &Store, names: bool, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let entries = store.list().map_err(store_failure)?;
    if names {
        // Shell completion calls this on every TAB: no header, no note, broken ones too
        // (`knock profile NAME` then says what is wrong with it).
        for entry in &entries {
            ctx.line(&entry.name)?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        // On stderr, so that a script reading the table sees an empty one.
        let _ = writeln!(
            ctx.err,
            "knock: no profiles in {} (save one with `knock profile save`)",
            store.dir().display()
        );
        return Ok(());
    }
    for line in store::list_table(&entries, &|p| lines_left(p).map(|(short, _)| short)).lines() {
        ctx.line(line)?;
    }
    Ok(())
}

/// Every value of one profile. A secret is shown by where it comes from, never itself.
pub(crate) fn show(store: &Store, name: &str, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let profile = store.load(name).map_err(store_failure)?;
    let path = store.path(name).map_err(store_failure)?;
    let extra: Vec<(&'static str, String)> = lines_left(&profile)
        .map(|(_, long)| ("lines left", long))
        .into_iter()
        .collect();
    for line in profile.show(name, &path, &extra).lines() {
        ctx.line(line)?;
    }
    Ok(())
}

/// For a one-time profile, how many lines its list has left: short for `list` (`37 left`),
/// long for `show`; `None` for other kinds.
fn lines_left(profile: &Profile) -> Option<(String, String)> {
    let Knock::OneTime(list) = &profile.knock else {
        return None;
    };
    Some(match knock_core::otp::file::lines_left(&list.resolved) {
        Ok(0) => (
            "used up".into(),
            "0: the list is used up; make a new one with `knock otp generate` and give the \
             server a copy"
                .into(),
        ),
        Ok(n) => (format!("{n} left"), n.to_string()),
        Err(e) => ("list unreadable".into(), format!("unknown: {e}")),
    })
}

/// Writes a sequence profile from a knock command line.
pub(crate) fn save(args: SaveArgs, store: &Store, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let profile = profile_from(&args, ctx.services)?;
    let path = store
        .save(&args.name, &profile, args.force)
        .map_err(store_failure)?;
    ctx.line(&format!("saved profile {}: {}", args.name, path.display()))
}

/// The profile `save` writes: only the options given are set, so the file stays as short
/// as the command line was. Service names are saved as their numbers: the file then knocks
/// the same ports on every machine, and the server's copy of the sequence reads the same.
fn profile_from(args: &SaveArgs, names: &dyn PortNames) -> Result<Profile, Failure> {
    // Checked item by item first, so an error names the argument as knock would.
    crate::plan::parse_hits(&args.hits, args.send.udp, names).map_err(Failure::usage)?;
    let default = if args.send.udp {
        Proto::Udp
    } else {
        Proto::Tcp
    };
    let mut items = Vec::new();
    for item in args.hits.iter().flat_map(|w| w.split(',')) {
        let item = item.trim();
        if Hit::parse(item, default).is_ok() {
            items.push(item.to_string());
            continue;
        }
        let hit = Hit::parse_named(item, default, names).map_err(Failure::usage)?;
        // A bare name stays a bare port, so the profile's `udp` still decides.
        items.push(if item.contains(':') {
            hit.to_string()
        } else {
            hit.port.to_string()
        });
    }
    let text = items.join(",");
    let sequence = FixedSequence::parse(&text).map_err(Failure::usage)?;
    let mut p = Profile::new(Knock::Fixed(sequence));
    p.host = Some(args.host.clone());
    p.description = args.description.clone();
    p.delay_ms = args.send.delay;
    p.udp = args.send.udp.then_some(true);
    p.family = args.send.family();
    p.raw = args.send.raw.then_some(true);
    p.open_port = args.open_port;
    Ok(p)
}

/// Deletes one profile; what it points at stays.
pub(crate) fn remove(store: &Store, name: &str, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let path = store.remove(name).map_err(store_failure)?;
    // Its record of the HMAC counter last sent goes with it.
    let state = super::hmac_used::path(store, name);
    if let Err(e) = super::hmac_used::forget(&state) {
        ctx.warn(&format!("remove {}: {e}", state.display()));
    }
    ctx.line(&format!("removed profile {name}: {}", path.display()))
}
