//! What knock prints on stdout: verbose lines, the dry-run listing, and a writer for which
//! a closed pipe means the reader has seen enough.

use std::io::{self, Write};

use knock_core::hit::{Hit, HitFlags};

use crate::plan::Plan;
use crate::resolve::Address;

/// stdout, line by line. Once the reader has gone (broken pipe), further lines are
/// dropped without error: `knock -v ... | head -1` still sends every hit and exits 0.
pub(crate) struct Out<'a> {
    w: &'a mut dyn Write,
    closed: bool,
}

impl<'a> Out<'a> {
    pub(crate) fn new(w: &'a mut dyn Write) -> Out<'a> {
        Out { w, closed: false }
    }

    /// Writes one line and flushes it, so each verbose line appears as its hit goes out.
    pub(crate) fn line(&mut self, text: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.w, "{text}").and_then(|()| self.w.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// `tcp 192.0.2.2:7000`, `udp [2001:db8::2]:8000`, `tcp [fe80::1%eth0]:7000`,
/// `tcp 192.0.2.2:7000 [fin,psh]`: the port always as a number (a service name shows what
/// it stood for), the flags only when the hit has exact ones.
pub(crate) fn target(hit: &Hit, addr: &Address) -> String {
    let mut text = format!("{} {}", hit.proto, addr.with_port(hit.port));
    if let HitFlags::Exact(flags) = hit.flags {
        let names: Vec<&str> = flags.names().collect();
        if names.is_empty() {
            text.push_str(" [none]");
        } else {
            text.push_str(&format!(" [{}]", names.join(",")));
        }
    }
    text
}

/// The `-v` line printed just before a hit is sent, as knock(1) prints it.
pub(crate) fn hitting(hit: &Hit, addr: &Address) -> String {
    format!("hitting {}", target(hit, addr))
}

/// The line an interactive knock leaves when its bar is taken off the screen:
/// `knocked 192.0.2.2: 3 hits`, `knocked home.example.net (192.0.2.2): 1 hit`.
pub(crate) fn knocked(plan: &Plan) -> String {
    let addr = plan.addr.to_string();
    let target = if plan.host == addr || plan.host == format!("[{addr}]") {
        addr
    } else {
        format!("{} ({addr})", plan.host)
    };
    let n = plan.hits.len();
    format!("knocked {target}: {n} hit{}", if n == 1 { "" } else { "s" })
}

/// A moment as a clock reads it, in UTC: `2023-11-14 22:13:20 UTC` (no time zone database
/// is needed to say it, and it means the same to everyone).
pub(crate) fn utc(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The Gregorian date `days` after 1970-01-01: counted in 400-year eras of 146097 days
/// that start on March 1st, so the leap day falls at the end of each counted year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The `--dry-run` listing: one line per hit, and the pauses where they would be.
pub(crate) fn dry_run_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, hit) in plan.hits.iter().enumerate() {
        if i > 0 && !plan.delay.is_zero() {
            lines.push(format!("wait {} ms", plan.delay.as_millis()));
        }
        lines.push(format!("would hit {}", target(hit, &plan.addr)));
    }
    if let Some(connect) = &plan.connect {
        lines.extend(crate::connect::describe(connect, &plan.addr));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Mode;
    use knock_core::hit::{Proto, TcpFlags};
    use std::time::Duration;

    fn ip(s: &str) -> Address {
        Address::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    #[test]
    fn verbose_lines() {
        let v4 = ip("192.0.2.2");
        let v6 = ip("2001:db8::2");
        let fin_psh = Hit::tcp_flags(7000, TcpFlags::FIN | TcpFlags::PSH);
        let zoned = Address {
            dest: knock_core::send::Dest {
                ip: "fe80::1".parse().unwrap(),
                scope_id: 2,
            },
            zone: Some("eth0".into()),
        };
        let table: &[(Hit, Address, &str)] = &[
            (Hit::tcp(7000), v4.clone(), "hitting tcp 192.0.2.2:7000"),
            (Hit::udp(8000), v4.clone(), "hitting udp 192.0.2.2:8000"),
            (Hit::tcp(7000), v6.clone(), "hitting tcp [2001:db8::2]:7000"),
            (Hit::udp(8000), v6.clone(), "hitting udp [2001:db8::2]:8000"),
            (fin_psh, v4.clone(), "hitting tcp 192.0.2.2:7000 [fin,psh]"),
            (fin_psh, v6, "hitting tcp [2001:db8::2]:7000 [fin,psh]"),
            (fin_psh, zoned, "hitting tcp [fe80::1%eth0]:7000 [fin,psh]"),
            (
                Hit::tcp_flags(110, TcpFlags::NONE),
                v4.clone(),
                "hitting tcp 192.0.2.2:110 [none]",
            ),
            // Flags ignored: sent as an ordinary SYN, so nothing to show.
            (
                Hit::parse("tcp:110:i", Proto::Tcp).unwrap(),
                v4,
                "hitting tcp 192.0.2.2:110",
            ),
        ];
        for (hit, addr, want) in table {
            assert_eq!(hitting(hit, addr), *want);
        }
    }

    #[test]
    fn dry_run_lists_hits_and_pauses_between_them() {
        let mut plan = Plan {
            host: "dual.test".into(),
            addr: ip("2001:db8::2"),
            hits: vec![
                Hit::tcp(7000),
                Hit::udp(8000),
                Hit::tcp_flags(9000, TcpFlags::SYN),
            ],
            delay: Duration::from_millis(250),
            verbose: false,
            mode: Mode::DryRun,
            send: Default::default(),
            connect: None,
        };
        assert_eq!(
            dry_run_lines(&plan),
            [
                "would hit tcp [2001:db8::2]:7000",
                "wait 250 ms",
                "would hit udp [2001:db8::2]:8000",
                "wait 250 ms",
                "would hit tcp [2001:db8::2]:9000 [syn]",
            ]
        );
        plan.delay = Duration::ZERO;
        plan.hits.truncate(1);
        assert_eq!(dry_run_lines(&plan), ["would hit tcp [2001:db8::2]:7000"]);
    }

    #[test]
    fn clock_times_in_utc() {
        let table = [
            (0, "1970-01-01 00:00:00 UTC"),
            (1_700_000_000, "2023-11-14 22:13:20 UTC"),
            (1_709_164_800, "2024-02-29 00:00:00 UTC"),
            (1_709_251_199, "2024-02-29 23:59:59 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (4_107_542_400, "2100-03-01 00:00:00 UTC"),
            (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        ];
        for (t, want) in table {
            assert_eq!(utc(t), want, "{t}");
        }
    }

    /// A writer whose reader has gone away.
    struct ClosedPipe(usize);

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_broken_pipe_silences_output_without_failing() {
        let mut pipe = ClosedPipe(0);
        {
            let mut out = Out::new(&mut pipe);
            assert!(out.line("one").is_ok());
            assert!(out.line("two").is_ok());
        }
        assert_eq!(pipe.0, 1, "no write after the pipe closed");
    }

    #[test]
    fn other_write_errors_are_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut full = Full;
        let mut out = Out::new(&mut full);
        for _ in 0..2 {
            // The disk's own error, every time: only a closed pipe silences the output.
            let err = out.line("x").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(28));
        }
    }
}
