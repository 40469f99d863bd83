//! Value parsers for knockd.conf directives: seconds, TCP flag lists, yes/no and integers.

use std::time::Duration;

use crate::hit::{FlagRule, TcpFlags};
use crate::text::quoted;

/// Seconds with up to millisecond precision and an optional unit `s`: `25`, `0.5`,
/// `1.250`, `5s`, `5 s`.
///
/// knockd reads timeouts with `atoi`, so `0.5` means 0 there and `5s` means 5. Accepting the
/// fraction is a deliberate extension: exact millisecond timeouts are one of the fixes
/// knockd-lite makes. The unit is accepted because tutorials write it and knockd happens to
/// read it; any other text after the number (`5 seconds`, `500ms`) is an error.
pub(crate) fn seconds(written: &str) -> Result<Duration, String> {
    const HINT: &str = "expected seconds, e.g. 25, 0.5 or 5s";
    let shown = quoted(written);
    let value = written
        .strip_suffix('s')
        .map_or(written, |v| v.trim_end())
        .trim();
    if written.is_empty() {
        return Err(format!("empty value ({HINT})"));
    }
    if let Some(rest) = value.strip_prefix('-')
        && rest.starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return Err(format!("negative timeout {shown:?} ({HINT})"));
    }
    let (whole, frac) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(digits);
    if !(digits(whole) || (whole.is_empty() && frac.is_some_and(digits))) || !frac_ok {
        return Err(format!("{shown:?} is not a number of seconds ({HINT})"));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > 3 {
        return Err(format!(
            "{shown:?} is more precise than a millisecond ({HINT})"
        ));
    }
    let too_large = || format!("{shown:?} is too large ({HINT})");
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let millis: u64 = format!("{frac:0<3}").parse().unwrap_or(0);
    let total = secs
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(millis))
        .ok_or_else(too_large)?;
    Ok(Duration::from_millis(total))
}

/// `25s`, `0.5s`, `1.25s`: how `--check` shows a timeout, and how a note says one was read.
pub fn seconds_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// A door's `TCPFlags` rule written back in the directive's syntax (`syn,!ack`), or `any`.
pub fn tcp_flags_text(rule: FlagRule) -> String {
    if rule.is_any() {
        return "any".to_string();
    }
    TcpFlags::NAMES
        .iter()
        .filter_map(|&(name, flag)| {
            if rule.set.contains(flag) {
                Some(name.to_string())
            } else if rule.clear.contains(flag) {
                Some(format!("!{name}"))
            } else {
                None
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A door's `TCPFlags`: comma-separated flag names, each optionally prefixed with `!`.
/// Spaces around names are allowed (knockd 0.8 rejects `syn, ack`).
pub(crate) fn tcp_flags(value: &str) -> Result<FlagRule, String> {
    const HINT: &str =
        "expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with !";
    let mut rule = FlagRule::ANY;
    for item in value.split(',') {
        let item = item.trim();
        let (negated, name) = match item.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item),
        };
        if name.is_empty() {
            return Err(format!("empty flag (a stray or trailing comma?) ({HINT})"));
        }
        let flag = TcpFlags::from_name(name)
            .ok_or_else(|| format!("unknown flag {:?} ({HINT})", quoted(item)))?;
        let (this, other) = if negated {
            (&mut rule.clear, rule.set)
        } else {
            (&mut rule.set, rule.clear)
        };
        if other.contains(flag) {
            return Err(format!(
                "{} is both required and excluded",
                name.to_ascii_lowercase()
            ));
        }
        *this |= flag;
    }
    Ok(rule)
}

/// `yes` or `no`, in any case.
pub(crate) fn yes_no(value: &str) -> Result<bool, String> {
    if value.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err(format!("expected yes or no, found {:?}", quoted(value)))
    }
}

/// A decimal integer within `range`, without atoi's coercions (`12abc`, `-1`, empty).
pub(crate) fn integer(value: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let shown = quoted(value);
    let out_of_range = || format!("{shown:?} is out of range (expected {lo}-{hi})");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        if value
            .strip_prefix('-')
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(out_of_range());
        }
        return Err(format!(
            "{shown:?} is not a whole number (expected {lo}-{hi})"
        ));
    }
    match value.parse::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(out_of_range()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accepted() {
        let table: &[(&str, u64)] = &[
            ("25", 25_000),
            ("0", 0),
            ("0.5", 500),
            (".5", 500),
            ("1.25", 1250),
            ("1.250", 1250),
            ("007", 7000),
            ("5s", 5000),
            ("5 s", 5000),
            ("0.5s", 500),
        ];
        for (input, ms) in table {
            assert_eq!(seconds(input), Ok(Duration::from_millis(*ms)), "{input:?}");
        }
    }

    #[test]
    fn seconds_rejected() {
        let table: &[(&str, &str)] = &[
            ("", "empty value (expected seconds, e.g. 25, 0.5 or 5s)"),
            (
                "-1",
                r#"negative timeout "-1" (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "-0.5",
                r#"negative timeout "-0.5" (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "abc",
                r#""abc" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "5 seconds",
                r#""5 seconds" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "500ms",
                r#""500ms" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "s",
                r#""s" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "5ss",
                r#""5ss" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "-1s",
                r#"negative timeout "-1s" (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "10.",
                r#""10." is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                ".",
                r#""." is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "1.2.3",
                r#""1.2.3" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "0.0001",
                r#""0.0001" is more precise than a millisecond (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "99999999999999999999",
                r#""99999999999999999999" is too large (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
        ];
        for (input, want) in table {
            assert_eq!(seconds(input).unwrap_err(), *want, "{input:?}");
        }
    }

    #[test]
    fn texts_read_back() {
        assert_eq!(seconds_text(Duration::from_millis(1250)), "1.25s");
        assert_eq!(seconds_text(Duration::from_millis(5)), "0.005s");
        assert_eq!(seconds_text(Duration::ZERO), "0s");
        for text in ["syn,!ack", "fin,psh,!urg", "any", "!syn,ece,!cwr"] {
            let rule = if text == "any" {
                FlagRule::ANY
            } else {
                tcp_flags(text).unwrap()
            };
            assert_eq!(tcp_flags_text(rule), text);
        }
    }

    #[test]
    fn flags() {
        let rule = tcp_flags("syn, !ack,FIN").unwrap();
        assert_eq!(rule.set, TcpFlags::SYN | TcpFlags::FIN);
        assert_eq!(rule.clear, TcpFlags::ACK);
        assert_eq!(tcp_flags("! rst").unwrap().clear, TcpFlags::RST);
        assert_eq!(
            tcp_flags("syn,,ack").unwrap_err(),
            "empty flag (a stray or trailing comma?) (expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with !)"
        );
        assert_eq!(
            tcp_flags("syn,foo").unwrap_err(),
            r#"unknown flag "foo" (expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with !)"#
        );
        assert_eq!(
            tcp_flags("SYN,!syn").unwrap_err(),
            "syn is both required and excluded"
        );
    }

    #[test]
    fn integers_and_yes_no() {
        assert_eq!(integer("4", 1, 32), Ok(4));
        assert_eq!(
            integer("33", 1, 32).unwrap_err(),
            r#""33" is out of range (expected 1-32)"#
        );
        assert_eq!(
            integer("-1", 1, 32).unwrap_err(),
            r#""-1" is out of range (expected 1-32)"#
        );
        assert_eq!(
            integer("4x", 1, 32).unwrap_err(),
            r#""4x" is not a whole number (expected 1-32)"#
        );
        assert_eq!(yes_no("YES"), Ok(true));
        assert_eq!(yes_no("no"), Ok(false));
        assert_eq!(yes_no("1").unwrap_err(), r#"expected yes or no, found "1""#);
    }
}
