//! `--check`: validate a configuration and describe every door and the capture filter.
//!
//! Reading the one-time lists and HMAC secret files happens here, at the edge; the report
//! itself is built from values so it can be tested with a fixed clock.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use knock_core::conf::{Config, Door, SequenceSource};
use knock_core::hit::{FlagRule, TcpFlags, format_sequence};
use knock_core::otp;

use knockd_engine::{Engine, EngineError, Inputs, Options, Timestamp};

use crate::door_files::{self, DoorFileError};

/// Reads what the doors need from disk: one-time list texts and HMAC secrets (refusing
/// secret files others can read, as the server does).
pub(crate) fn load_inputs(config: &Config) -> Result<Inputs, DoorFileError> {
    door_files::load(config, &Default::default())
}

/// The `--check` report. `interface` is `-i`, which wins over the config.
pub(crate) fn report(
    path: &Path,
    config: &Config,
    interface: Option<&str>,
    inputs: Inputs,
    now: Timestamp,
) -> Result<String, EngineError> {
    let one_time: Vec<(String, String)> = inputs
        .one_time
        .iter()
        .map(|(d, t)| (d.clone(), t.clone()))
        .collect();
    let (engine, _) = Engine::new(config, inputs, Options::default(), now)?;
    let mut out = String::new();
    let doors = config.doors.len();
    let _ = writeln!(
        out,
        "{}: OK, {doors} door{}",
        path.display(),
        if doors == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "interface: {}{}",
        interface.unwrap_or(&config.interface),
        if interface.is_some() {
            " (from -i)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "log file:  {}",
        config
            .log_file
            .as_ref()
            .map_or("none".to_string(), |p| p.display().to_string())
    );
    let _ = writeln!(out, "pid file:  {}", config.pid_file.display());
    let _ = writeln!(
        out,
        "syslog:    {}",
        if config.use_syslog { "yes" } else { "no" }
    );
    for door in &config.doors {
        let text = one_time
            .iter()
            .find(|(d, _)| *d == door.name)
            .map(|(_, t)| t.as_str());
        describe(&mut out, door, text);
    }
    let _ = writeln!(
        out,
        "\ncapture filter (each packet's destination is then checked against the door's target):"
    );
    let rules = engine.capture_rules();
    if rules.is_empty() {
        let _ = writeln!(out, "  (nothing: every door is disabled)");
    }
    for (i, rule) in rules.iter().enumerate() {
        let _ = writeln!(out, "  {}({rule})", if i == 0 { "   " } else { "or " });
    }
    Ok(out)
}

fn describe(out: &mut String, door: &Door, one_time_text: Option<&str>) {
    let _ = writeln!(out, "\n[{}] (line {})", door.name, door.line);
    match &door.sequence {
        SequenceSource::Fixed(hits) => {
            let _ = writeln!(out, "  sequence:       {}", format_sequence(hits));
        }
        SequenceSource::OneTime(path) => {
            let lines: Vec<_> = one_time_text
                .map(|t| otp::unused_lines(t).filter_map(Result::ok).collect())
                .unwrap_or_default();
            let active = lines
                .first()
                .map_or("none, door disabled".to_string(), |l| {
                    format!("line {}", l.line_no)
                });
            let _ = writeln!(
                out,
                "  one-time list:  {} ({} unused, active: {active})",
                path.display(),
                lines.len()
            );
        }
        SequenceSource::Hmac(h) => {
            let _ = writeln!(
                out,
                "  hmac:           secret in {} (not shown), length {}, ports {}, protocols {}, \
                 step {}s, skew {} ({} live sequences)",
                h.secret_file.display(),
                h.length,
                h.ports,
                h.protocols,
                h.step,
                h.skew,
                2 * h.skew + 1
            );
        }
    }
    let _ = writeln!(out, "  seq_timeout:    {}", seconds(door.seq_timeout));
    let _ = writeln!(out, "  tcpflags:       {}", flag_rule(door.tcp_flags));
    let _ = writeln!(
        out,
        "  start:          {}",
        command(door.start_command.as_deref())
    );
    let _ = writeln!(
        out,
        "  start (IPv6):   {}",
        command_6(
            door.start_command_6.as_deref(),
            door.start_command.is_some()
        )
    );
    let _ = writeln!(out, "  cmd_timeout:    {}", seconds(door.cmd_timeout));
    let _ = writeln!(
        out,
        "  stop:           {}",
        command(door.stop_command.as_deref())
    );
    let _ = writeln!(
        out,
        "  stop (IPv6):    {}",
        command_6(door.stop_command_6.as_deref(), door.stop_command.is_some())
    );
    let _ = writeln!(
        out,
        "  target:         {}",
        door.target
            .map_or("the interface's addresses".to_string(), |t| t.to_string())
    );
}

fn command(c: Option<&str>) -> String {
    match c {
        None | Some("") => "none".to_string(),
        Some(c) => c.to_string(),
    }
}

fn command_6(c6: Option<&str>, has_v4: bool) -> String {
    match c6 {
        None if has_v4 => "same as IPv4".to_string(),
        None => "none".to_string(),
        Some("") => "disabled".to_string(),
        Some(c) => c.to_string(),
    }
}

/// `25s`, `0.5s`, `1.25s`.
fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// `syn,!ack`, or `any`.
fn flag_rule(rule: FlagRule) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::conf::parse;
    use knock_core::hmac::HmacParams;
    use knock_core::secret::Secret;
    use knockd_engine::HmacInput;

    const T: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn report_describes_every_door_and_the_filter() {
        let text = "[options]\nUseSyslog\n[open]\nsequence = 7000,8000:udp,9000:tcp:fin+psh\n\
                    seq_timeout = 0.75\ntcpflags = syn,!ack\nstart_command = up %IP%\n\
                    start_command_6 =\nstop_command = down %IP%\ncmd_timeout = 30\n\
                    [otp]\none_time_sequences = /etc/otp\ntarget = 192.0.2.99\n";
        let config = parse(text, Path::new("k.conf")).unwrap();
        let mut inputs = Inputs::default();
        inputs
            .one_time
            .insert("otp".into(), "#1,2\n 3,4:udp\n 5,6\n".into());
        let got = report(Path::new("k.conf"), &config, Some("ks0"), inputs, T).unwrap();
        let want = "\
k.conf: OK, 2 doors
interface: ks0 (from -i)
log file:  none
pid file:  /var/run/knockd.pid
syslog:    yes

[open] (line 3)
  sequence:       7000:tcp,8000:udp,9000:tcp:fin+psh
  seq_timeout:    0.75s
  tcpflags:       syn,!ack
  start:          up %IP%
  start (IPv6):   disabled
  cmd_timeout:    30s
  stop:           down %IP%
  stop (IPv6):    same as IPv4
  target:         the interface's addresses

[otp] (line 11)
  one-time list:  /etc/otp (2 unused, active: line 2)
  seq_timeout:    25s
  tcpflags:       any
  start:          none
  start (IPv6):   none
  cmd_timeout:    10s
  stop:           none
  stop (IPv6):    none
  target:         192.0.2.99

capture filter (each packet's destination is then checked against the door's target):
     (tcp dst port 7000 and tcp[13] & 0x12 == 0x02)
  or (udp dst port 8000)
  or (tcp dst port 9000 and tcp[13] & 0xff == 0x09)
  or (tcp dst port 3)
  or (udp dst port 4)
";
        assert_eq!(got, want);
    }

    #[test]
    fn report_never_shows_the_secret() {
        let text = "[ssh]\nhmac_secret_file = /etc/ssh.key\nhmac_length = 2\nhmac_skew = 0\n";
        let config = parse(text, Path::new("k.conf")).unwrap();
        let secret = "do-not-print-me";
        let mut inputs = Inputs::default();
        inputs.hmac.insert(
            "ssh".into(),
            HmacInput {
                secret: Secret::from_text(secret),
                used: Default::default(),
            },
        );
        let got = report(Path::new("k.conf"), &config, None, inputs, T).unwrap();
        assert!(!got.contains(secret));
        assert!(got.contains(
            "  hmac:           secret in /etc/ssh.key (not shown), length 2, ports 1024-65535, \
             protocols tcp, step 30s, skew 0 (1 live sequences)\n"
        ));
        let mut params = HmacParams::new("ssh");
        params.length = 2;
        let hits = params
            .derive_at(&Secret::from_text(secret), T.unix_seconds())
            .unwrap();
        let tail = format!(
            "     (tcp dst port {})\n  or (tcp dst port {})\n",
            hits[0].port, hits[1].port
        );
        assert!(got.ends_with(&tail), "{got}");
    }

    #[test]
    fn disabled_doors_and_durations() {
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25s");
        assert_eq!(seconds(Duration::from_millis(5)), "0.005s");
        assert_eq!(seconds(Duration::ZERO), "0s");
        let config = parse("[otp]\none_time_sequences = /l\n", Path::new("k.conf")).unwrap();
        let mut inputs = Inputs::default();
        inputs.one_time.insert("otp".into(), "#used\n".into());
        let got = report(Path::new("k.conf"), &config, None, inputs, T).unwrap();
        assert!(got.contains("(0 unused, active: none, door disabled)"));
        assert!(got.ends_with("  (nothing: every door is disabled)\n"));
    }

    #[test]
    fn unreadable_inputs_name_the_file_and_door() {
        let config = parse(
            "[otp]\none_time_sequences = /nonexistent/otp\n",
            Path::new("k.conf"),
        )
        .unwrap();
        assert_eq!(
            load_inputs(&config).unwrap_err().to_string(),
            "/nonexistent/otp: cannot read the one-time list of door [otp]: \
             No such file or directory (os error 2)"
        );
    }
}
