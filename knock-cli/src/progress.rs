//! The progress bar on stderr: hits sent so far, a countdown through each delay, and the
//! time left while `--wait` waits for the port.
//!
//! The send loop talks to a [`Progress`]; only a terminal on stderr with neither `-v` nor
//! `-q` gets a real bar ([`wanted`]), and dry runs (`--json` among them) draw none. The bar
//! waits through the loop's own sleeper, so a test clock sees every pause.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the countdown is redrawn during a delay.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// What the send loop reports as it goes.
pub(crate) trait Progress {
    /// Waits `delay` with `sleep` before the next hit, or less once `interrupted`.
    fn pause(
        &mut self,
        delay: Duration,
        sleep: &mut dyn FnMut(Duration),
        interrupted: &dyn Fn() -> bool,
    );
    /// One more hit went out.
    fn sent(&mut self);
    /// The wait for `port` goes on, `left` before it gives up.
    fn waiting(&mut self, _port: u16, _left: Duration) {}
    /// A knock starts again: its hits count from zero.
    fn again(&mut self) {}
}

/// No bar: a pause is one sleep.
#[derive(Debug, Default)]
pub(crate) struct Silent;

impl Progress for Silent {
    /// One sleep, which itself returns early at Ctrl-C.
    fn pause(
        &mut self,
        delay: Duration,
        sleep: &mut dyn FnMut(Duration),
        _interrupted: &dyn Fn() -> bool,
    ) {
        sleep(delay);
    }

    fn sent(&mut self) {}
}

/// Whether a run that sends draws a bar: only for a person watching stderr, and never
/// when verbose lines or `--quiet` ask for silence. (`--json` needs `--dry-run`, and a dry
/// run sends nothing, so it never gets this far.)
pub(crate) fn wanted(stderr_terminal: bool, verbose: bool, quiet: bool) -> bool {
    stderr_terminal && !verbose && !quiet
}

/// The bar: `knock 192.0.2.2 [=====>    ] 2/4 hits  next in 0.3 s`. Taken off the screen
/// when dropped, so an error message that follows starts on a clean line.
pub(crate) struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar for `total` hits to `target`, drawn on stderr.
    pub(crate) fn stderr(total: usize, target: &str) -> Bar {
        Bar::with_target(total, target, ProgressDrawTarget::stderr())
    }

    pub(crate) fn with_target(total: usize, target: &str, draw: ProgressDrawTarget) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total as u64), draw);
        let style =
            ProgressStyle::with_template("knock {prefix} [{bar:20}] {pos}/{len} hits  {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(target.to_string());
        Bar { bar }
    }

    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.bar.position()
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> String {
        self.bar.message()
    }
}

impl Progress for Bar {
    fn pause(
        &mut self,
        delay: Duration,
        sleep: &mut dyn FnMut(Duration),
        interrupted: &dyn Fn() -> bool,
    ) {
        let mut left = delay;
        while !left.is_zero() && !interrupted() {
            self.bar
                .set_message(format!("next in {}", seconds_left(left)));
            let tick = left.min(TICK);
            sleep(tick);
            left -= tick;
        }
        self.bar.set_message("");
    }

    fn sent(&mut self) {
        self.bar.inc(1);
    }

    fn waiting(&mut self, port: u16, left: Duration) {
        self.bar.set_message(format!(
            "waiting for port {port}, {} left",
            seconds_left(left)
        ));
    }

    fn again(&mut self) {
        self.bar.set_position(0);
        self.bar.set_message("knocking again");
    }
}

/// `0.3 s`: the time left rounded up to a tenth, so the countdown never shows 0.0 while
/// there is still a wait.
fn seconds_left(left: Duration) -> String {
    let tenths = left.as_millis().div_ceil(100);
    format!("{}.{} s", tenths / 10, tenths % 10)
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The wait for the next HMAC step, on a terminal: `knock HOST: next sequence in 17 s`,
/// taken off the screen when dropped. Draws nothing when not `shown`.
pub(crate) struct Countdown {
    bar: Option<ProgressBar>,
}

impl Countdown {
    pub(crate) fn stderr(shown: bool, target: &str) -> Countdown {
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("knock {prefix}: {msg}")
                .expect("the template is valid");
            bar.set_style(style);
            bar.set_prefix(target.to_string());
            bar
        });
        Countdown { bar }
    }

    /// `seconds` left.
    pub(crate) fn show(&self, seconds: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("next sequence in {seconds} s"));
        }
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_terminal_without_other_output_gets_a_bar() {
        // (stderr is a terminal, -v, -q) -> bar
        let table = [
            ((true, false, false), true),
            ((false, false, false), false),
            ((true, true, false), false),
            ((true, false, true), false),
            ((false, true, true), false),
        ];
        for ((tty, v, q), want) in table {
            assert_eq!(wanted(tty, v, q), want, "{tty} {v} {q}");
        }
    }

    #[test]
    fn the_bar_counts_hits_and_counts_down_each_delay_in_ticks() {
        let mut bar = Bar::with_target(3, "192.0.2.2", ProgressDrawTarget::hidden());
        bar.sent();
        assert_eq!(bar.position(), 1);
        // The sleeper notes the countdown shown during each tick.
        let handle = bar.bar.clone();
        let mut ticks = Vec::new();
        bar.pause(
            Duration::from_millis(250),
            &mut |d| {
                ticks.push((d, handle.message()));
            },
            &|| false,
        );
        let ms = Duration::from_millis;
        assert_eq!(
            ticks,
            [
                (ms(100), "next in 0.3 s".to_string()),
                (ms(100), "next in 0.2 s".to_string()),
                (ms(50), "next in 0.1 s".to_string()),
            ]
        );
        assert_eq!(
            bar.message(),
            "",
            "the countdown is gone once the wait is over"
        );
        bar.sent();
        bar.sent();
        assert_eq!(bar.position(), 3);
    }

    #[test]
    fn the_wait_shows_the_time_left_and_a_new_knock_counts_again() {
        let mut bar = Bar::with_target(2, "192.0.2.2", ProgressDrawTarget::hidden());
        bar.sent();
        bar.sent();
        bar.waiting(22, Duration::from_millis(9_950));
        assert_eq!(bar.message(), "waiting for port 22, 10.0 s left");
        bar.again();
        assert_eq!(
            (bar.position(), bar.message().as_str()),
            (0, "knocking again")
        );
    }

    #[test]
    fn seconds_left_rounds_up_to_a_tenth() {
        let table = [
            (1, "0.1 s"),
            (100, "0.1 s"),
            (101, "0.2 s"),
            (2500, "2.5 s"),
            (12_345, "12.4 s"),
        ];
        for (ms, want) in table {
            assert_eq!(seconds_left(Duration::from_millis(ms)), want, "{ms}");
        }
    }

    #[test]
    fn silent_sleeps_once_per_pause() {
        let mut slept = Vec::new();
        Silent.pause(Duration::from_millis(250), &mut |d| slept.push(d), &|| {
            false
        });
        assert_eq!(slept, [Duration::from_millis(250)]);
    }
}
