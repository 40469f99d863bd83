//! `knock profile NAME`: a profile of any kind turned into a [`Plan`] and carried out by
//! the same code as `knock HOST HIT...`.
//!
//! * a `sequence` gives its hits;
//! * a one-time list gives its first unused line, marked used only after every hit of it
//!   was sent, and with a wait only once the port accepted (`--dry-run` only peeks);
//! * an `[hmac]` table gives the knock-hmac-v1 sequence of now, or of `--at`; a knock sent
//!   again while waiting sends the sequence of that moment.
//!
//! A profile's `open_port` makes the knock wait for that port, as `--wait` does.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use knock_core::otp::file::{ConsumeError, consume, peek};
use knock_core::profile::store::Store;
use knock_core::profile::{HmacKnock, Kind, Knock, OneTime};
use knock_core::secret::source::{SecretError, load_with};
use knock_core::send::SendOptions;

use super::hmac_used::{self, Turn};
use super::{KnockFromProfile, store_failure};
use crate::connect::still_closed;
use crate::execute::{execute, finish, knock as knock_plan};
use crate::otp::otp_failure;
use crate::plan::{Mode, Plan};
use crate::progress::{self, Countdown};
use crate::{Ctx, Failure, Sent, output};

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
    if args.send.udp && kind != Kind::Fixed {
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
    let connect = args.connect.settle(Some(profile.open_port))?;
    let mut plan = Plan::resolve(
        settings.host.clone(),
        settings.family,
        Vec::new(),
        Duration::from_millis(settings.delay_ms),
        args.verbose,
        Mode::new(args.dry_run, args.json),
        SendOptions {
            raw_tcp: settings.raw,
            source_port: args.source.source_port,
        },
    )?;
    plan.connect = connect;
    match &profile.knock {
        Knock::Fixed(seq) => {
            plan.hits = seq.hits(settings.default_proto()).to_vec();
            execute(&plan, ctx, args.quiet)
        }
        Knock::OneTime(list) => one_time(list, plan, args.quiet, ctx),
        Knock::Hmac(h) => hmac(h, plan, &args, &hmac_used::path(store, &name), ctx),
    }
}

/// Sends the first unused line and marks it, or shows it (dry run) and marks nothing.
fn one_time(list: &OneTime, mut plan: Plan, quiet: bool, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let path = &list.resolved;
    if plan.mode != Mode::Send {
        let line = peek(path).map_err(otp_failure)?;
        plan.hits = line.hits.clone();
        if plan.mode == Mode::DryRun {
            ctx.line(&format!(
                "next unused line: {}:{}",
                path.display(),
                line.line_no
            ))?;
        }
        return execute(&plan, ctx, quiet);
    }
    let mut line_no = 0;
    let used = consume(path, |line| {
        line_no = line.line_no;
        plan.hits = line.hits.clone();
        knock_plan(&plan, ctx, quiet, None)
    })
    .map_err(|e| match e {
        ConsumeError::Send(failure) => {
            if still_closed(&failure) {
                ctx.note(&format!(
                    "line {line_no} of {} stays unused: a server that never got it still \
                     expects it, so the next knock sends it again (if the server did take \
                     it, mark it used here too: put # at the start of the line)",
                    path.display()
                ));
            }
            failure
        }
        ConsumeError::List(e) => otp_failure(e),
    })?;
    if used.remaining == 0 {
        ctx.warn(&format!(
            "that was the last unused line of {}; generate a new list with \
             `knock otp generate` and give the server a copy",
            path.display()
        ));
    }
    // The line is marked and the list unlocked before the relay, which lasts as long as
    // the session.
    finish(&plan, used.value, ctx)
}

/// Derives the sequence of the moment (or of `--at`) from the secret, then knocks or shows.
/// A knock inside a step whose sequence was sent already (`state`) first waits for the
/// next step, counting down, since the door takes each sequence once; a sent sequence's
/// counter is recorded (with a wait, the highest sent, once the door opened).
fn hmac(
    h: &HmacKnock,
    mut plan: Plan,
    args: &KnockFromProfile,
    state: &Path,
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
    let last = hmac_used::last(state).unwrap_or_else(|e| {
        ctx.warn(&format!("{e:#}; knocking as if no sequence had been sent"));
        None
    });
    // Read the clock only now: typing the secret may have taken a while.
    let mut at = args.at.unwrap_or_else(|| (ctx.now)());
    let turn = hmac_used::turn(at, params.step, last);
    match (plan.mode, turn) {
        (_, Turn::Now(_)) => {}
        (Mode::Send, Turn::Ahead { last, now }) => {
            return Err(Failure::runtime(anyhow!(
                "the last sequence sent for door {:?} used counter {last}, ahead of this \
                 clock's counter {now}: check the clock, or remove {} if it came from \
                 another machine",
                params.door,
                state.display()
            )));
        }
        (
            Mode::Send,
            Turn::Wait {
                seconds,
                at: next,
                counter,
            },
        ) => {
            if !args.quiet {
                ctx.note(&format!(
                    "the sequence of counter {} was sent already, and the door takes each \
                     sequence once: waiting {seconds} s for counter {counter} (from {}; \
                     Ctrl-C to stop)",
                    counter - 1,
                    output::utc(next)
                ));
            }
            wait_for_step(seconds, params.length, &plan, args, ctx)?;
            at = at.max((ctx.now)()).max(next);
        }
        // A dry run of now says what a real run would do; one at --at is about that moment.
        (_, turn) if args.at.is_none() => ctx.note(&match turn {
            Turn::Wait {
                seconds, counter, ..
            } => format!(
                "the sequence of counter {} was sent already; a real run would wait \
                 {seconds} s for counter {counter}",
                counter - 1
            ),
            _ => format!(
                "the last sequence sent used counter {}, ahead of this clock: a real run \
                 would refuse to knock",
                last.unwrap_or_default()
            ),
        }),
        _ => {}
    }
    let counter = params.counter(at);
    let derive = |counter: u64| {
        params
            .derive(&secret, counter)
            .map_err(|e| Failure::usage(anyhow!(e).context(format!("door {:?}", params.door))))
    };
    plan.hits = derive(counter)?;
    if plan.mode == Mode::DryRun {
        let from = counter.saturating_mul(params.step);
        let to = from.saturating_add(params.step - 1);
        let (start, end) = (output::utc(from), output::utc(to));
        // The end's date only when it is another day.
        let end = match (start.split_once(' '), end.split_once(' ')) {
            (Some((day, _)), Some((end_day, time))) if day == end_day => time.to_string(),
            _ => end,
        };
        ctx.line(&format!(
            "door {:?}, counter {counter}: {} to {end}, {} s left",
            params.door,
            start.trim_end_matches(" UTC"),
            to + 1 - at.min(to + 1)
        ))?;
    }
    // A knock sent again while the door stays closed sends the sequence of that moment,
    // never a later step's (which would use up a counter the server has yet to reach).
    let highest = Cell::new(counter);
    let again = |now: u64| {
        let c = params.counter(now).max(counter);
        highest.set(highest.get().max(c));
        derive(c)
    };
    // Only a knock that went out, and with a wait got the door open, is recorded: one the
    // door never took is one the next run may send again.
    let opened = knock_plan(&plan, ctx, args.quiet, Some(&again))?;
    if plan.mode == Mode::Send
        && let Err(e) = hmac_used::record(state, highest.get())
    {
        ctx.warn(&format!(
            "{e:#}: the next knock inside this step will not know this sequence was sent"
        ));
    }
    finish(&plan, opened, ctx)
}

/// Waits `seconds` for the next HMAC step (of `length` hits), a second at a time, counting
/// down on a terminal; Ctrl-C ends the wait and the run.
fn wait_for_step(
    seconds: u64,
    length: usize,
    plan: &Plan,
    args: &KnockFromProfile,
    ctx: &mut Ctx<'_>,
) -> Result<(), Failure> {
    let shown = progress::wanted(ctx.stderr_terminal, args.verbose, args.quiet);
    let countdown = Countdown::stderr(shown, &plan.host);
    for left in (1..=seconds).rev() {
        countdown.show(left);
        (ctx.sleep)(Duration::from_secs(1));
        if (ctx.interrupted)() {
            return Err(Failure::Interrupted(Some(Sent {
                sent: 0,
                total: length,
            })));
        }
    }
    Ok(())
}

/// No secret: 2 (the profile, the file's mode or the environment needs fixing), except a
/// terminal that failed while reading.
fn secret_failure(e: SecretError) -> Failure {
    match e {
        SecretError::Prompt(_) => Failure::runtime(e),
        _ => Failure::usage(e),
    }
}
