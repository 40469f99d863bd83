//! Value parsers for knockd.conf directives: seconds, TCP flag lists, yes/no and integers.

use std::time::Duration;

use crate::hit::{FlagRule, TcpFlags};

/// Seconds with up to millisecond precision: `25`, `0.5`, `1.250`.
///
/// knockd reads timeouts with `atoi`, so `0.5` means 0 there. Accepting the fraction is a
/// deliberate extension: exact millisecond timeouts are one of the fixes knockd-lite makes.
pub(crate) fn seconds(value: &str) -> Result<Duration, String> {
    const HINT: &str = "expected seconds, e.g. 25 or 0.5";
    if value.is_empty() {
        return Err(format!("empty value ({HINT})"));
    }
    if let Some(rest) = value.strip_prefix('-')
        && rest.starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return Err(format!("negative timeout {value:?} ({HINT})"));
    }
    let (whole, frac) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(digits);
    if !(digits(whole) || (whole.is_empty() && frac.is_some_and(digits))) || !frac_ok {
        return Err(format!("{value:?} is not a number of seconds ({HINT})"));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > 3 {
        return Err(format!(
            "{value:?} is more precise than a millisecond ({HINT})"
        ));
    }
    let too_large = || format!("{value:?} is too large ({HINT})");
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
        let flag =
            TcpFlags::from_name(name).ok_or_else(|| format!("unknown flag {item:?} ({HINT})"))?;
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
        Err(format!("expected yes or no, found {value:?}"))
    }
}

/// A decimal integer within `range`, without atoi's coercions (`12abc`, `-1`, empty).
pub(crate) fn integer(value: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let out_of_range = || format!("{value:?} is out of range (expected {lo}-{hi})");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        if value
            .strip_prefix('-')
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(out_of_range());
        }
        return Err(format!(
            "{value:?} is not a whole number (expected {lo}-{hi})"
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
        ];
        for (input, ms) in table {
            assert_eq!(seconds(input), Ok(Duration::from_millis(*ms)), "{input:?}");
        }
    }

    #[test]
    fn seconds_rejected() {
        let table: &[(&str, &str)] = &[
            ("", "empty value (expected seconds, e.g. 25 or 0.5)"),
            (
                "-1",
                r#"negative timeout "-1" (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "-0.5",
                r#"negative timeout "-0.5" (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "abc",
                r#""abc" is not a number of seconds (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "5s",
                r#""5s" is not a number of seconds (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "10.",
                r#""10." is not a number of seconds (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                ".",
                r#""." is not a number of seconds (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "1.2.3",
                r#""1.2.3" is not a number of seconds (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "0.0001",
                r#""0.0001" is more precise than a millisecond (expected seconds, e.g. 25 or 0.5)"#,
            ),
            (
                "99999999999999999999",
                r#""99999999999999999999" is too large (expected seconds, e.g. 25 or 0.5)"#,
            ),
        ];
        for (input, want) in table {
            assert_eq!(seconds(input).unwrap_err(), *want, "{input:?}");
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
