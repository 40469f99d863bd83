//! `knock profile NAME`: a profile of any kind turned into a [`Plan`] and carried out by
//! the same code as `knock HOST HIT...`.
//!
//! * a `sequence` gives its hits;
//! * a one-time list gives its first unused line, marked used only after every hit of it
//!   was sent (`--dry-run` only peeks);
//! * an `[hmac]` table gives the knock-hmac-v1 sequence of now, or of `--at`.

use std::time::Duration;

use anyhow::anyhow;
use knock_core::hit::{Hit, HitFlags, Proto, TcpFlags};
use knock_core::otp::file::{ConsumeError, consume, peek};
use knock_core::profile::store::Store;
use knock_core::profile::{Family, HmacKnock, Kind, Knock, OneTime, Settings};
use knock_core::secret::source::{SecretError, load_with};

use super::{KnockFromProfile, store_failure};
use crate::otp::otp_failure;
use crate::plan::{Mode, Plan};
use crate::resolve;
use crate::{Ctx, Failure, execute};

/// Knocks from profile NAME, or lists what it would send (`--dry-run`), with the command
/// line's options over the profile's values. HOST is resolved before a one-time list is
/// touched or a secret asked for, so a lookup failure costs neither.
pub(crate) fn knock(
    args: KnockFromProfile,
    store: &Store,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let name = args.name.clone().unwrap_or_default();
    let profile = store.load(&name).map_err(store_failure)?;
    let kind = profile.kind();
    if args.udp && kind != Kind::Sequence {
        return Err(Failure::usage(anyhow!(
            "-u applies only to sequence profiles; {name:?} is a {kind} profile, whose \
             hits carry their own protocols"
        )));
    }
    if args.at.is_some() && kind != Kind::Hmac {
        return Err(Failure::usage(anyhow!(
            "--at applies only to hmac profiles; {name:?} is a {kind} profile"
        )));
    }
    let settings = profile
        .settings(&args.overrides())
        .map_err(|e| Failure::usage(anyhow!(e).context(format!("profile {name:?}"))))?;
    let mut plan = Plan::resolve(
        settings.host.clone(),
        family(settings.family),
        Vec::new(),
        Duration::from_millis(settings.delay_ms),
        args.verbose,
        Mode::new(args.dry_run, args.json),
    )?;
    match &profile.knock {
        Knock::Sequence(seq) => {
            plan.hits = raw_hits(seq.hits(settings.default_proto()), &settings);
            execute(&plan, ctx, args.quiet)
        }
        Knock::OneTime(list) => one_time(list, plan, &settings, args.quiet, ctx),
        Knock::Hmac(h) => hmac(h, plan, &settings, &args, ctx),
    }
}

/// Sends the first unused line and marks it, or shows it (dry run) and marks nothing.
fn one_time(
    list: &OneTime,
    mut plan: Plan,
    settings: &Settings,
    quiet: bool,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let path = &list.resolved;
    if plan.mode != Mode::Send {
        let line = peek(path).map_err(otp_failure)?;
        plan.hits = raw_hits(&line.hits, settings);
        if plan.mode == Mode::DryRun {
            ctx.line(&format!(
                "next unused line: {}:{}",
                path.display(),
                line.line_no
            ))?;
        }
        return execute(&plan, ctx, quiet);
    }
    let used = consume(path, |line| {
        plan.hits = raw_hits(&line.hits, settings);
        execute(&plan, ctx, quiet)
    })
    .map_err(|e| match e {
        ConsumeError::Send(failure) => failure,
        ConsumeError::List(e) => otp_failure(e),
    })?;
    if used.remaining == 0 {
        ctx.warn(&format!(
            "that was the last unused line of {}; generate a new list with \
             `knock otp generate` and give the server a copy",
            path.display()
        ));
    }
    Ok(())
}

/// Derives the sequence of the moment (or of `--at`) from the secret, then knocks or shows.
fn hmac(
    h: &HmacKnock,
    mut plan: Plan,
    settings: &Settings,
    args: &KnockFromProfile,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let params = &h.params;
    let secret = load_with(
        &h.secret.source(),
        ctx.vars,
        &mut *ctx.prompt,
        &format!("Secret for door {}: ", params.door),
    )
    .map_err(secret_failure)?;
    // Read the clock only now: typing the secret may have taken a while.
    let at = args.at.unwrap_or_else(|| (ctx.now)());
    let hits = params
        .derive_at(&secret, at)
        .map_err(|e| Failure::usage(anyhow!(e).context(format!("door {:?}", params.door))))?;
    plan.hits = raw_hits(&hits, settings);
    if plan.mode == Mode::DryRun {
        let counter = params.counter(at);
        let from = counter.saturating_mul(params.step);
        let to = from.saturating_add(params.step - 1);
        ctx.line(&format!(
            "door {:?}, counter {counter} (unix time {from} to {to})",
            params.door
        ))?;
    }
    execute(&plan, ctx, args.quiet)
}

/// The hits to send: under `raw`, plain TCP hits become SYNs with exact flags, which go
/// out over a raw socket like every other hit with flags.
fn raw_hits(hits: &[Hit], settings: &Settings) -> Vec<Hit> {
    hits.iter()
        .map(|h| match (settings.raw, h.proto, h.flags) {
            (true, Proto::Tcp, HitFlags::Plain | HitFlags::Any) => {
                Hit::tcp_flags(h.port, TcpFlags::SYN)
            }
            _ => *h,
        })
        .collect()
}

fn family(f: Family) -> resolve::Family {
    match f {
        Family::Any => resolve::Family::Any,
        Family::Ipv4 => resolve::Family::V4,
        Family::Ipv6 => resolve::Family::V6,
    }
}

/// No secret: 2 (the profile, the file's mode or the environment needs fixing), except a
/// terminal that failed while reading.
fn secret_failure(e: SecretError) -> Failure {
    match e {
        SecretError::Prompt(_) => Failure::runtime(e),
        _ => Failure::usage(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(raw: bool) -> Settings {
        Settings {
            host: "h".into(),
            delay_ms: 0,
            udp: false,
            family: Family::Any,
            raw,
        }
    }

    #[test]
    fn raw_turns_plain_tcp_hits_into_exact_syns() {
        let hits =
            knock_core::hit::parse_sequence("1,2:udp,3:tcp:fin,tcp:4:i", Proto::Tcp).unwrap();
        assert_eq!(raw_hits(&hits, &settings(false)), hits);
        let syn = TcpFlags::SYN;
        assert_eq!(
            raw_hits(&hits, &settings(true)),
            [
                Hit::tcp_flags(1, syn),
                Hit::udp(2),
                Hit::tcp_flags(3, TcpFlags::FIN),
                Hit::tcp_flags(4, syn)
            ]
        );
    }

    #[test]
    fn families_map_one_to_one() {
        assert_eq!(family(Family::Any), resolve::Family::Any);
        assert_eq!(family(Family::Ipv4), resolve::Family::V4);
        assert_eq!(family(Family::Ipv6), resolve::Family::V6);
    }
}
