//! `--check`: validate a configuration and describe every door and the capture filter.
//!
//! Reading the one-time lists and HMAC secret files happens here, at the edge; the report
//! itself is built from values so it can be tested with a fixed clock.

use std::fmt::Write as _;
use std::path::Path;

use knock_core::conf::{Config, Door, SequenceSource, seconds_text, tcp_flags_text};
use knock_core::hit::format_sequence;
use knock_core::otp;

use knock_core::hit::{FlagRule, Proto};
use knock_core::hmac::Protocols;
use knock_core::wire::LinkType;
use knockd_engine::bpf::{self, Families, FilterError, MAX_INSNS};
use knockd_engine::filter::CaptureRule;
use knockd_engine::{Engine, EngineError, Inputs, Mono, Now, Options, Timestamp};

use crate::door_files::{self, DoorFileError};

/// Reads what the doors need from disk: one-time list texts and HMAC secrets (refusing
/// secret files others can read, as the server does).
pub(crate) fn load_inputs(config: &Config) -> Result<Inputs, DoorFileError> {
    door_files::load(config, &Default::default()).map(|loaded| loaded.inputs)
}

/// The `--check` report. `interface` is `-i`, which wins over the config. HMAC doors'
/// live ports are left out of the filter unless `show_hmac_ports` (`--show-hmac-ports`):
/// each live sequence opens its door for a minute or so, to anyone who reads it.
pub(crate) fn report(
    path: &Path,
    config: &Config,
    interface: Option<&str>,
    inputs: Inputs,
    now: Timestamp,
    show_hmac_ports: bool,
) -> Result<String, EngineError> {
    let one_time = inputs.one_time.clone();
    // No timer runs here: only the wall clock (HMAC windows) matters.
    let now = Now::new(Mono::default(), now);
    let (engine, _) = Engine::new(config, inputs, Options::default(), now)?;
    let mut out = String::new();
    let doors = config.doors.len();
    let _ = writeln!(
        out,
        "{}: OK, {doors} door{}",
        path.display(),
        if doors == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "format:    {}", config.format);
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
        match (&config.log_file, config.log_file_line) {
            (Some(p), Some(line)) => format!("{} (line {line})", p.display()),
            (Some(p), None) => p.display().to_string(),
            (None, _) => "none".to_string(),
        }
    );
    let _ = writeln!(out, "pid file:  {}", config.pid_file.display());
    let _ = writeln!(
        out,
        "syslog:    {}",
        if config.use_syslog { "yes" } else { "no" }
    );
    for note in &config.notes {
        let _ = writeln!(out, "read:      {note}");
    }
    for door in &config.doors {
        let text = one_time.get(&door.name).map(String::as_str);
        describe(&mut out, door, text);
    }
    let _ = writeln!(
        out,
        "\ncapture filter (each packet's destination is then checked against the door's target):"
    );
    let all = engine.capture_rules();
    let (rules, hidden) = if show_hmac_ports {
        (all.clone(), Vec::new())
    } else {
        engine.capture_rules_without_hmac()
    };
    if rules.is_empty() && hidden.is_empty() {
        let _ = writeln!(out, "  (nothing: every door is disabled)");
    }
    let mut lines = rules
        .iter()
        .map(|rule| format!("({rule})"))
        .chain(hidden.iter().map(|(door, n)| {
            format!(
                "the {n} live ports of HMAC door [{door}] (not shown: each live sequence \
                 opens the door; --show-hmac-ports shows them)"
            )
        }));
    if let Some(first) = lines.next() {
        let _ = writeln!(out, "     {first}");
    }
    for line in lines {
        let _ = writeln!(out, "  or {line}");
    }
    if !all.is_empty() {
        kernel_filter(&mut out, config, &all);
    }
    Ok(out)
}

/// Whether the capture filter fits the kernel's 4,096 instructions, now and when HMAC
/// windows hold as many distinct ports as they can; and what is used when it does not.
fn kernel_filter(out: &mut String, config: &Config, rules: &[CaptureRule]) {
    let (link, families) = (LinkType::Ethernet, Families::Both);
    let Ok(fitted) = bpf::compile_fitting(rules, link, families) else {
        return;
    };
    let size = fitted.program.insns().len();
    match &fitted.coarse {
        None => {
            let _ = writeln!(
                out,
                "\nkernel filter: {size} BPF instructions (the kernel takes up to {MAX_INSNS})"
            );
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "\nkernel filter: the rules need {} BPF instructions, more than the kernel's \
                 {MAX_INSNS}; knockd-lite uses a coarser filter ({size} instructions) that \
                 keeps these, and checks the rest itself:",
                c.needed
            );
            for (i, keep) in c.keeps.iter().enumerate() {
                let _ = writeln!(out, "  {}({keep})", if i == 0 { "   " } else { "or " });
            }
        }
    }
    let worst = worst_case_rules(config, rules);
    if worst.len() > rules.len()
        && bpf::compile(&worst, link, families)
            .is_err_and(|e| matches!(e, FilterError::TooLarge { .. }))
    {
        let _ = writeln!(
            out,
            "kernel filter: as HMAC windows move, their live ports can number {}, more than \
             an exact filter holds; then a coarser one is used, as above",
            worst.len() - rules.len()
        );
    }
}

/// `rules` plus, for each HMAC door, as many distinct isolated ports as its window can
/// hold at once (`2 * skew + 1` sequences of `length` ports), as no real window is worse.
fn worst_case_rules(config: &Config, rules: &[CaptureRule]) -> Vec<CaptureRule> {
    let mut out = rules.to_vec();
    for door in &config.doors {
        let SequenceSource::Hmac(h) = &door.sequence else {
            continue;
        };
        let ports = usize::try_from(h.skew.saturating_mul(2).saturating_add(1))
            .unwrap_or(usize::MAX)
            .saturating_mul(h.length);
        let protos: &[Proto] = match h.protocols {
            Protocols::Tcp => &[Proto::Tcp],
            Protocols::Udp => &[Proto::Udp],
            Protocols::Mixed => &[Proto::Tcp, Proto::Udp],
        };
        let (lo, hi) = (u32::from(h.ports.lo), u32::from(h.ports.hi));
        for k in 0..ports {
            let port = lo + (2 * k as u32) % (hi - lo + 1).max(1);
            let proto = protos[k % protos.len()];
            out.push(CaptureRule {
                proto,
                port: u16::try_from(port.min(hi)).unwrap_or(u16::MAX),
                flags: if proto == Proto::Tcp {
                    door.tcp_flags
                } else {
                    FlagRule::ANY
                },
            });
        }
    }
    out
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
    let _ = writeln!(out, "  seq_timeout:    {}", seconds_text(door.seq_timeout));
    let _ = writeln!(out, "  tcpflags:       {}", tcp_flags_text(door.tcp_flags));
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
    let _ = writeln!(out, "  cmd_timeout:    {}", seconds_text(door.cmd_timeout));
    let _ = writeln!(out, "  stop:           {}", stop(door, false));
    let _ = writeln!(out, "  stop (IPv6):    {}", stop(door, true));
    let _ = writeln!(
        out,
        "  target:         {}",
        door.target
            .map_or("the interface's addresses".to_string(), |t| t.to_string())
    );
    for note in &door.notes {
        let _ = writeln!(out, "  read:           {note}");
    }
}

/// A stop command runs only after a start command for the same family, as in knockd: say
/// so where the config names a stop that can never run.
fn stop(door: &Door, ipv6: bool) -> String {
    let written = if ipv6 {
        command_6(door.stop_command_6.as_deref(), door.stop_command.is_some())
    } else {
        command(door.stop_command.as_deref())
    };
    if door.stop_command_for(ipv6).is_none() || door.start_command_for(ipv6).is_some() {
        return written;
    }
    match (ipv6, door.start_command_6.as_deref()) {
        (false, _) => format!("{written} (never runs: no start command)"),
        (true, Some("")) => "none (the IPv6 start is disabled)".to_string(),
        (true, _) => "none (no start command for IPv6)".to_string(),
    }
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
        let got = report(Path::new("k.conf"), &config, Some("ks0"), inputs, T, false).unwrap();
        let want = "\
k.conf: OK, 2 doors
format:    knockd.conf
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
  stop (IPv6):    none (the IPv6 start is disabled)
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
  or (tcp dst port 5)
  or (tcp dst port 6)

kernel filter: 532 BPF instructions (the kernel takes up to 4096)
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
        let inputs = || {
            let mut inputs = Inputs::default();
            inputs.hmac.insert(
                "ssh".into(),
                HmacInput {
                    secret: Secret::from_text(secret),
                    used: Default::default(),
                },
            );
            inputs
        };
        let got = report(Path::new("k.conf"), &config, None, inputs(), T, false).unwrap();
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
        let live = format!(
            "     (tcp dst port {})\n  or (tcp dst port {})\n",
            hits[0].port, hits[1].port
        );
        // The hostile run's finding: --check printed the live sequences, which open the
        // door to anyone who sees pasted output. They are left out unless asked for.
        for hit in &hits {
            assert!(
                !got.contains(&format!("port {}", hit.port)),
                "{} in\n{got}",
                hit.port
            );
        }
        assert!(
            got.contains(
                "capture filter (each packet's destination is then checked against the door's \
                 target):\n     the 2 live ports of HMAC door [ssh] (not shown: each live \
                 sequence opens the door; --show-hmac-ports shows them)\n"
            ),
            "{got}"
        );
        let shown = report(Path::new("k.conf"), &config, None, inputs(), T, true).unwrap();
        assert!(shown.contains(&live), "{shown}");
        assert!(!shown.contains(secret));
    }

    /// The hostile run's finding: about 1,365 distinct door ports passed --check and then
    /// failed at start-up. --check says what the kernel gets.
    #[test]
    fn report_says_when_the_filter_does_not_fit_the_kernel() {
        let mut text = String::new();
        for i in 0..1500u32 {
            text.push_str(&format!("[d{i}]\nsequence = {}\n", 2 * i + 1));
        }
        let config = parse(&text, Path::new("k.conf")).unwrap();
        let got = report(
            Path::new("k.conf"),
            &config,
            None,
            Inputs::default(),
            T,
            false,
        )
        .unwrap();
        let want = "\nkernel filter: the rules need ";
        let at = got.find(want).unwrap_or_else(|| panic!("{got}"));
        let tail = &got[at..];
        assert!(
            tail.contains(
                " BPF instructions, more than the kernel's 4096; knockd-lite uses a coarser \
                 filter ("
            ),
            "{tail}"
        );
        assert!(tail.contains("     (tcp dst portrange 1-"), "{tail}");
        assert!(!tail.contains("as HMAC windows move"), "{tail}");

        // HMAC doors whose windows can outgrow the filter, though their live ports fit now.
        let door = |n: u32| {
            format!("[h{n}]\nhmac_secret_file = /k{n}\nhmac_length = 32\nhmac_skew = 10\n")
        };
        let config = parse(
            &format!("{}{}{}", door(1), door(2), door(3)),
            Path::new("k.conf"),
        )
        .unwrap();
        let mut inputs = Inputs::default();
        for n in 1..=3 {
            inputs.hmac.insert(
                format!("h{n}"),
                HmacInput {
                    secret: Secret::from_text(&format!("s{n}")),
                    used: Default::default(),
                },
            );
        }
        let got = report(Path::new("k.conf"), &config, None, inputs, T, false).unwrap();
        assert!(
            got.contains(
                "kernel filter: as HMAC windows move, their live ports can number 2016, more \
                 than an exact filter holds; then a coarser one is used, as above\n"
            ),
            "{got}"
        );
    }

    /// How values were read, stops that can never run, and tportknockd's format.
    #[test]
    fn report_says_how_values_were_read() {
        let text = "[options]\nlogfile = /var/log/k.log\ninterface = eth1 # lan\n\
                    [d]\nsequence = 7000,8000 # open\nseq_timeout = 5s\ntcpflags = syn\n\
                    tcpflags = !ack\nstop_command = down %IP%\n";
        let config = parse(text, Path::new("k.conf")).unwrap();
        let got = report(
            Path::new("k.conf"),
            &config,
            None,
            Inputs::default(),
            T,
            false,
        )
        .unwrap();
        let want = "\
k.conf: OK, 1 door
format:    knockd.conf
interface: eth1
log file:  /var/log/k.log (line 2)
pid file:  /var/run/knockd.pid
syslog:    no
read:      line 3: interface: ignored the comment \"# lan\"

[d] (line 4)
  sequence:       7000:tcp,8000:tcp
  seq_timeout:    5s
  tcpflags:       syn,!ack
  start:          none
  start (IPv6):   none
  cmd_timeout:    10s
  stop:           down %IP% (never runs: no start command)
  stop (IPv6):    none (no start command for IPv6)
  target:         the interface's addresses
  read:           line 5: sequence: ignored the comment \"# open\"
  read:           line 6: seq_timeout: \"5s\" read as 5s
  read:           line 8: tcpflags: combined with line 7, as knockd does: syn,!ack
";
        assert!(got.starts_with(want), "{got}");

        let text = "<SSH>\nsequence = tcp:110:s tcp:110:a\ntimeout = 10\n\
                    start_command = up %IP%\nstop_command = down %IP%\ncommand_delay = 30\n</SSH>\n";
        let config = parse(text, Path::new("t.conf")).unwrap();
        let got = report(
            Path::new("t.conf"),
            &config,
            Some("eth0"),
            Inputs::default(),
            T,
            false,
        )
        .unwrap();
        let want = "\
t.conf: OK, 1 door
format:    tportknockd
interface: eth0 (from -i)
log file:  none
pid file:  /var/run/knockd.pid
syslog:    no

[SSH] (line 1)
  sequence:       110:tcp:syn,110:tcp:ack
  seq_timeout:    10s
  tcpflags:       any
  start:          up %IP%
  start (IPv6):   same as IPv4
  cmd_timeout:    30s
  stop:           down %IP%
  stop (IPv6):    same as IPv4
  target:         the interface's addresses

capture filter (each packet's destination is then checked against the door's target):
     (tcp dst port 110 and tcp[13] & 0xff == 0x02)
  or (tcp dst port 110 and tcp[13] & 0xff == 0x10)

kernel filter: 515 BPF instructions (the kernel takes up to 4096)
";
        assert_eq!(got, want);
    }

    #[test]
    fn disabled_doors_and_durations() {
        let config = parse("[otp]\none_time_sequences = /l\n", Path::new("k.conf")).unwrap();
        let mut inputs = Inputs::default();
        inputs.one_time.insert("otp".into(), "#used\n".into());
        let got = report(Path::new("k.conf"), &config, None, inputs, T, false).unwrap();
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
