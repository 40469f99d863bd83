//! Table-driven tests for the knockd.conf parser: every directive and alias, every error.

use super::*;
use crate::hit::{HitFlags, TcpFlags};

fn p<T: AsRef<[u8]> + ?Sized>(text: &T) -> Result<Config, ConfError> {
    parse(text, Path::new("/etc/knockd.conf"))
}

fn door(text: &str) -> Door {
    let config = p(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
    assert_eq!(config.doors.len(), 1);
    config.doors.into_iter().next().unwrap()
}

fn err(text: &str) -> String {
    p(text).expect_err(text).to_string()
}

fn fixed(d: &Door) -> &[Hit] {
    match &d.sequence {
        SequenceSource::Fixed(hits) => hits,
        other => panic!("not a fixed sequence: {other:?}"),
    }
}

#[test]
fn defaults() {
    let c = p("[d]\nsequence = 7000\n").unwrap();
    assert_eq!(c.log_file, None);
    assert_eq!(c.pid_file, Path::new("/var/run/knockd.pid"));
    assert_eq!(c.interface, "eth0");
    assert!(!c.use_syslog);
    let d = &c.doors[0];
    assert_eq!((d.name.as_str(), d.line), ("d", 1));
    assert_eq!(d.seq_timeout, Duration::from_secs(25));
    assert_eq!(d.cmd_timeout, Duration::from_secs(10));
    assert_eq!(d.tcp_flags, FlagRule::ANY);
    assert_eq!(d.target, None);
    assert_eq!(d.start_command_for(false), None);
    assert_eq!(d.stop_command_for(true), None);
}

#[test]
fn global_directives() {
    let c = p("[options]\n LogFile = /var/log/knockd.log\n\tPIDFILE=/run/k.pid\n interface = ens3 \n UseSyslog\n[d]\nsequence=1\n")
        .unwrap();
    assert_eq!(
        c.log_file.as_deref(),
        Some(Path::new("/var/log/knockd.log"))
    );
    assert_eq!(c.pid_file, Path::new("/run/k.pid"));
    assert_eq!(c.interface, "ens3");
    assert!(c.use_syslog);
    for (line, want) in [
        ("UseSyslog = yes", true),
        ("usesyslog=YES", true),
        ("UseSyslog = no", false),
    ] {
        let c = p(&format!("[Options]\n{line}\n[d]\nsequence=1\n")).unwrap();
        assert_eq!(c.use_syslog, want, "{line}");
    }
    // knockd accepts a bare UseSyslog in a door section too.
    assert!(p("[d]\nsequence=1\nUseSyslog\n").unwrap().use_syslog);
    // [options] in any case, and more than once; later values win.
    let c = p("[OPTIONS]\nlogfile=/a\n[d]\nsequence=1\n[options]\nlogfile=/b\n").unwrap();
    assert_eq!(c.log_file.as_deref(), Some(Path::new("/b")));
}

#[test]
fn door_directives_and_aliases() {
    let d = door(
        "[door]\n\
         Sequence = 7000, 8000:udp ,9000:tcp\n\
         Seq_Timeout = 5\n\
         TCPFlags = syn, !ack\n\
         Start_Command = open %IP%\n\
         Start_Command_6 = open6 %IP%\n\
         Cmd_Timeout = 3\n\
         Stop_Command = close %IP%\n\
         Stop_Command_6 = close6 %IP%\n\
         Target = 192.0.2.99\n",
    );
    assert_eq!(fixed(&d), [Hit::tcp(7000), Hit::udp(8000), Hit::tcp(9000)]);
    assert_eq!(d.seq_timeout, Duration::from_secs(5));
    assert_eq!(
        d.tcp_flags,
        FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK
        }
    );
    assert_eq!(d.start_command_for(false), Some("open %IP%"));
    assert_eq!(d.start_command_for(true), Some("open6 %IP%"));
    assert_eq!(d.cmd_timeout, Duration::from_secs(3));
    assert_eq!(d.stop_command_for(false), Some("close %IP%"));
    assert_eq!(d.stop_command_for(true), Some("close6 %IP%"));
    assert_eq!(d.target, Some("192.0.2.99".parse().unwrap()));

    let d = door("[d]\nsequence=1\ntimeout=7\ncommand=a = b\ncommand_6=c\n");
    assert_eq!(d.seq_timeout, Duration::from_secs(7));
    assert_eq!(d.start_command.as_deref(), Some("a = b"));
    assert_eq!(d.start_command_6.as_deref(), Some("c"));
    let d = door("[d]\nsequence=1\nTarget = 2001:db8::7\n");
    assert_eq!(d.target, Some("2001:db8::7".parse().unwrap()));
}

#[test]
fn ipv6_commands_fall_back_or_are_disabled() {
    let d = door("[d]\nsequence=1\nstart_command=up %IP%\nstop_command=down %IP%\n");
    assert_eq!(d.start_command_for(true), Some("up %IP%"));
    assert_eq!(d.stop_command_for(true), Some("down %IP%"));
    let d = door(
        "[d]\nsequence=1\nstart_command=up\nstart_command_6=\nstop_command=down\nstop_command_6 =\n",
    );
    assert_eq!(d.start_command_for(false), Some("up"));
    assert_eq!(d.start_command_for(true), None);
    assert_eq!(d.stop_command_for(false), Some("down"));
    assert_eq!(d.stop_command_for(true), None);
    let d = door("[d]\nsequence=1\nstart_command=\nstart_command_6=up6\n");
    assert_eq!(d.start_command_for(false), None);
    assert_eq!(d.start_command_for(true), Some("up6"));
}

#[test]
fn sequences_use_the_hit_grammar() {
    let d = door("[d]\nsequence = 7000:tcp:fin+psh, tcp:110:up, 53:udp, tcp:9:i\n");
    let hits = fixed(&d);
    assert_eq!(hits[0], Hit::tcp_flags(7000, TcpFlags::FIN | TcpFlags::PSH));
    assert_eq!(hits[1], Hit::tcp_flags(110, TcpFlags::URG | TcpFlags::PSH));
    assert_eq!(hits[2], Hit::udp(53));
    assert_eq!(hits[3].flags, HitFlags::Any);
    // A repeated Sequence replaces the earlier one, as in knockd.
    assert_eq!(fixed(&door("[d]\nsequence=1\nsequence=2\n")), [Hit::tcp(2)]);
}

#[test]
fn timeouts_accept_milliseconds() {
    let d = door("[d]\nsequence=1\nseq_timeout=0.6\ncmd_timeout=1.25\n");
    assert_eq!(d.seq_timeout, Duration::from_millis(600));
    assert_eq!(d.cmd_timeout, Duration::from_millis(1250));
    assert_eq!(
        door("[d]\nsequence=1\nseq_timeout=0\n").seq_timeout,
        Duration::ZERO
    );
}

#[test]
fn one_time_and_hmac_doors() {
    let d = door("[otp]\none_time_sequences = /etc/knockd/smtp_sequences\ntcpflags=fin,!ack\n");
    assert_eq!(
        d.sequence,
        SequenceSource::OneTime("/etc/knockd/smtp_sequences".into())
    );
    let d = door("[ssh]\nHMAC_Secret_File = /etc/knockd/ssh.key\n");
    let SequenceSource::Hmac(h) = &d.sequence else {
        panic!("not hmac")
    };
    assert_eq!(h.secret_file, Path::new("/etc/knockd/ssh.key"));
    assert_eq!(
        (h.length, h.ports, h.protocols, h.step, h.skew),
        (4, hmac::DEFAULT_PORTS, Protocols::Tcp, 30, 1)
    );
    assert_eq!(h.params("ssh"), HmacParams::new("ssh"));
    // Options may come before the secret file.
    let d = door(
        "[web]\nhmac_length=6\nHMAC_Ports = 7000-7999\nhmac_protocols = Mixed\nhmac_step=60\nhmac_skew=0\nhmac_secret_file=k\n",
    );
    let SequenceSource::Hmac(h) = &d.sequence else {
        panic!("not hmac")
    };
    assert_eq!(
        (h.length, h.ports, h.protocols, h.step, h.skew),
        (6, PortRange { lo: 7000, hi: 7999 }, Protocols::Mixed, 60, 0)
    );
}

#[test]
fn syntax_read_as_knockd_reads_it() {
    let c =
        p("# comment\n\n   # indented comment\r\n[ a ]\r\n  SEQUENCE\t=\t1  \r\n[b]\nsequence=2\n")
            .unwrap();
    assert_eq!(c.doors[0].name, "a");
    assert_eq!(c.doors[0].line, 4);
    assert_eq!(c.doors[1].name, "b");
    assert_eq!(p("\u{feff}[d]\nsequence=1\n").unwrap().doors[0].name, "d");
    // A `#` after a value is part of the value, as in knockd.
    let d = door("[d]\nsequence=1\ncommand=echo hi # not a comment\n");
    assert_eq!(d.start_command.as_deref(), Some("echo hi # not a comment"));
}

#[test]
fn same_definition_ignores_position() {
    let a = p("[d]\nsequence=1\n").unwrap().doors.remove(0);
    let b = p("\n\n[d]\nsequence=1\n").unwrap().doors.remove(0);
    assert!(a.same_definition(&b));
    let c = p("[d]\nsequence=1\ncommand=x\n").unwrap().doors.remove(0);
    assert!(!a.same_definition(&c));
}

#[test]
fn errors_with_pinned_messages() {
    let table: &[(&str, &str)] = &[
        // Unknown keys.
        (
            "[d]\nsequence=1\nfoo=bar\n",
            r#"3: unknown directive "foo" in door [d]"#,
        ),
        (
            "[options]\nfoo = 1\n",
            r#"2: unknown directive "foo" in [options]"#,
        ),
        (
            "[d]\nsequence=1\nseq timeout=1\n",
            r#"3: unknown directive "seq timeout" in door [d]"#,
        ),
        // Lines that are neither a section nor a directive.
        (
            "[d]\nsequence=1\nbare\n",
            r#"3: expected "key = value" or "[section]", found "bare""#,
        ),
        (
            "[d]\nsequence\n",
            "2: sequence needs a value (write sequence = ...)",
        ),
        (
            "[d\nsequence=1\n",
            r#"1: unterminated section header "[d" (expected [name])"#,
        ),
        ("[]\n", "1: empty section name"),
        (
            "[d\x1b[2J]\nsequence=1\n",
            r#"1: section name "d\u{1b}[2J" has a control character"#,
        ),
        (
            "[d\x1b[2J] x\nsequence=1\n",
            r#"1: section name "d\u{1b}[2J" has a control character"#,
        ),
        ("[ ]\n", "1: empty section name"),
        // Directives outside a section or in the wrong one.
        (
            "sequence = 1\n[d]\n",
            r#"1: "sequence" is outside any section (put it under [options] or a [door] header)"#,
        ),
        (
            "UseSyslog\n",
            r#"1: "UseSyslog" is outside any section (put it under [options] or a [door] header)"#,
        ),
        (
            "[options]\nsequence = 1\n",
            "2: sequence belongs in a door section, not in [options]",
        ),
        (
            "[d]\nsequence=1\nLogFile = /x\n",
            "3: LogFile belongs in [options], not in door [d]",
        ),
        ("[options]\nlogfile =\n", "2: logfile: empty value"),
        (
            "[options]\nUseSyslog = maybe\n",
            r#"2: UseSyslog: expected yes or no, found "maybe" (or write UseSyslog alone, the only form knockd 0.8 reads, to log to syslog)"#,
        ),
        // Doors without exactly one sequence.
        (
            "[d]\ncommand = x\n",
            "1: door [d] has no sequence (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
        ),
        (
            "[a]\nsequence=1\n[b]\n",
            "3: door [b] has no sequence (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
        ),
        (
            "[d]\nsequence=1\none_time_sequences=/x\n",
            "3: one_time_sequences: door [d] already has a sequence from Sequence on line 2 (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
        ),
        (
            "[d]\nhmac_secret_file=/k\nsequence=1\n",
            "3: sequence: door [d] already has a sequence from HMAC_Secret_File on line 2 (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
        ),
        (
            "[d]\none_time_sequences =\n",
            "2: one_time_sequences: empty value",
        ),
        // Bad ports: no atoi coercion.
        (
            "[d]\nsequence = 1,abc\n",
            r#"2: sequence: port "abc" is not a number (expected 1-65535)"#,
        ),
        (
            "[d]\nsequence = 1,-1\n",
            r#"2: sequence: port -1 is negative (expected 1-65535)"#,
        ),
        (
            "[d]\nsequence = 1,2,\n",
            "2: sequence: empty port (a stray or trailing comma?)",
        ),
        (
            "[d]\nsequence =\n",
            "2: sequence: empty port (a stray or trailing comma?)",
        ),
        (
            "[d]\nsequence = 70000\n",
            r#"2: sequence: port 70000 is out of range (expected 1-65535)"#,
        ),
        (
            "[d]\nsequence = 0\n",
            r#"2: sequence: port 0 is out of range (expected 1-65535)"#,
        ),
        (
            "[d]\nsequence = 1:icmp\n",
            r#"2: sequence: port "1:icmp": unknown protocol "icmp" (expected tcp or udp)"#,
        ),
        // Timeouts.
        (
            "[d]\nsequence=1\nseq_timeout = -1\n",
            r#"3: seq_timeout: negative timeout "-1" (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence=1\nTimeout = -5\n",
            r#"3: Timeout: negative timeout "-5" (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence=1\ncmd_timeout = -0.5\n",
            r#"3: cmd_timeout: negative timeout "-0.5" (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence=1\nseq_timeout = 5 seconds\n",
            r#"3: seq_timeout: "5 seconds" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence=1\nseq_timeout =\n",
            "3: seq_timeout: empty value (expected seconds, e.g. 25, 0.5 or 5s)",
        ),
        // Flags and target.
        (
            "[d]\nsequence=1\ntcpflags = syn,bogus\n",
            r#"3: tcpflags: unknown flag "bogus" (expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with !)"#,
        ),
        (
            "[d]\nsequence=1\ntcpflags =\n",
            "3: tcpflags: empty flag (a stray or trailing comma?) (expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with !)",
        ),
        (
            "[d]\nsequence=1\ntcpflags = syn,!syn\n",
            "3: tcpflags: syn is both required and excluded",
        ),
        (
            "[d]\nsequence=1\ntarget = host.example\n",
            r#"3: target: "host.example" is not an IP address"#,
        ),
        // HMAC.
        (
            "[d]\nhmac_secret_file=k\nhmac_length=0\n",
            r#"3: hmac_length: "0" is out of range (expected 1-32)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_length=33\n",
            r#"3: hmac_length: "33" is out of range (expected 1-32)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_ports=9-5\n",
            r#"3: hmac_ports: port range "9-5": low end is above high end"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_protocols=icmp\n",
            r#"3: hmac_protocols: unknown protocols "icmp" (expected tcp, udp or mixed)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_step=0\n",
            r#"3: hmac_step: "0" is out of range (expected 1-4294967295)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_skew=11\n",
            r#"3: hmac_skew: "11" is out of range (expected 0-10)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_skew=-1\n",
            r#"3: hmac_skew: "-1" is out of range (expected 0-10)"#,
        ),
        (
            "[d]\nhmac_secret_file=k\nhmac_ports=10-12\n",
            "1: door [d]: port range 10-12 has 3 ports, fewer than the length 4",
        ),
        (
            "[d]\nsequence=1\nhmac_step=60\n",
            "3: hmac_step needs HMAC_Secret_File in door [d]",
        ),
    ];
    for (text, want) in table {
        assert_eq!(
            err(text),
            format!("/etc/knockd.conf:{want}"),
            "config:\n{text}"
        );
    }
}

/// A door's name goes into every message and log line about the door: at most
/// MAX_NAME_CHARS characters, so that they stay short whatever the file holds.
#[test]
fn long_door_names_are_refused() {
    let name = "d".repeat(MAX_NAME_CHARS);
    assert_eq!(door(&format!("[{name}]\nsequence = 1\n")).name, name);
    let text = format!("[{name}é]\nsequence = 1\n");
    let shown = "d".repeat(60);
    assert_eq!(
        err(&text),
        format!(
            "/etc/knockd.conf:1: section name \"{shown}\"… (130 bytes) is 129 characters long \
             (at most 128)"
        )
    );
}

/// The four examples of knockd's manual page, laid out afresh.
#[test]
fn man_page_examples_parse() {
    let two_doors = "[options]\n    logfile = /var/log/knockd.log\n\n\
        [openSSH]\n    sequence    = 7000,8000,9000\n    seq_timeout = 10\n    tcpflags    = syn\n\
        \x20   command     = /sbin/iptables -A INPUT -s %IP% --dport 22 -j ACCEPT\n\n\
        [closeSSH]\n    sequence    = 9000,8000,7000\n    seq_timeout = 10\n    tcpflags    = syn\n\
        \x20   command     = /sbin/iptables -D INPUT -s %IP% --dport 22 -j ACCEPT\n";
    let c = p(two_doors).unwrap();
    assert_eq!(c.doors.len(), 2);
    assert_eq!(
        fixed(&c.doors[1]),
        [Hit::tcp(9000), Hit::tcp(8000), Hit::tcp(7000)]
    );
    assert_eq!(c.doors[0].tcp_flags.set, TcpFlags::SYN);

    let open_close = "[options]\n\tlogfile = /var/log/knockd.log\n[opencloseSSH]\n\
        \tsequence = 2222:udp,3333:tcp,4444:udp\n\tseq_timeout = 15\n\ttcpflags = syn,ack\n\
        \tstart_command = /usr/sbin/iptables -A INPUT -s %IP% -p tcp --syn -j ACCEPT\n\
        \tcmd_timeout = 5\n\
        \tstop_command = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --syn -j ACCEPT\n";
    let d = &p(open_close).unwrap().doors[0];
    assert_eq!(fixed(d), [Hit::udp(2222), Hit::tcp(3333), Hit::udp(4444)]);
    assert_eq!(d.tcp_flags.set, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(d.cmd_timeout, Duration::from_secs(5));
    assert!(d.stop_command_for(false).unwrap().contains("-D INPUT"));

    let one_time = "[options]\nlogfile = /var/log/knockd.log\n[opencloseSMTP]\n\
        one_time_sequences = /etc/knockd/smtp_sequences\nseq_timeout = 15\ntcpflags = fin,!ack\n\
        start_command = /usr/sbin/iptables -A INPUT -s %IP% -p tcp --dport 25 -j ACCEPT\n\
        cmd_timeout = 5\n\
        stop_command = /usr/sbin/iptables -D INPUT -s %IP% -p tcp --dport 25 -j ACCEPT\n";
    let d = &p(one_time).unwrap().doors[0];
    assert_eq!(
        d.tcp_flags,
        FlagRule {
            set: TcpFlags::FIN,
            clear: TcpFlags::ACK
        }
    );
    assert!(matches!(d.sequence, SequenceSource::OneTime(_)));

    let dual_stack = format!(
        "{one_time}start_command_6 = /usr/sbin/ip6tables -A INPUT -s %IP% -p tcp --dport 25 -j ACCEPT\n\
         stop_command_6 = /usr/sbin/ip6tables -D INPUT -s %IP% -p tcp --dport 25 -j ACCEPT\n"
    );
    let d = &p(&dual_stack).unwrap().doors[0];
    assert!(
        d.start_command_for(true)
            .unwrap()
            .starts_with("/usr/sbin/ip6tables -A")
    );
    assert!(
        d.stop_command_for(true)
            .unwrap()
            .starts_with("/usr/sbin/ip6tables -D")
    );
    assert!(
        d.start_command_for(false)
            .unwrap()
            .starts_with("/usr/sbin/iptables -A")
    );
}

/// Debian's default /etc/knockd.conf: a bare UseSyslog and three syn doors.
#[test]
fn debian_default_layout_parses() {
    let text = "[options]\n\tUseSyslog\n\n\
        [openSSH]\n\tsequence    = 7000,8000,9000\n\tseq_timeout = 5\n\
        \tcommand     = /sbin/iptables -A INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n\ttcpflags    = syn\n\n\
        [closeSSH]\n\tsequence    = 9000,8000,7000\n\tseq_timeout = 5\n\
        \tcommand     = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT\n\ttcpflags    = syn\n\n\
        [openHTTPS]\n\tsequence    = 12345,54321,24680,13579\n\tseq_timeout = 5\n\
        \tcommand     = /usr/local/sbin/knock_add -i -c INPUT -p tcp -d 443 -f %IP%\n\ttcpflags    = syn\n";
    let c = p(text).unwrap();
    assert!(c.use_syslog);
    let names: Vec<&str> = c.doors.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["openSSH", "closeSSH", "openHTTPS"]);
    assert!(
        c.doors
            .iter()
            .all(|d| d.seq_timeout == Duration::from_secs(5))
    );
}

/// The file Debian's knockd package installs, when it is on this machine.
#[test]
fn installed_knockd_conf_parses() {
    let path = Path::new("/etc/knockd.conf");
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipped: {} is not installed", path.display());
        return;
    };
    let c = parse(&text, path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.doors.is_empty());
}

/// Every file of up to four lines drawn from headers, directives in and out of place, and
/// malformed lines is accepted or refused with `path:line: message`, never a panic.
#[test]
fn line_combinations_never_panic() {
    const LINES: [&str; 12] = [
        "[d]",
        "[options]",
        "sequence = 1,2:udp",
        "UseSyslog",
        "HMAC_Secret_File = /s",
        "hmac_length = 2",
        "=",
        "[",
        "interface =",
        "one_time_sequences = /l",
        "tcpflags = syn,!ack",
        "# note",
    ];
    let mut text = String::new();
    let mut kinds = std::collections::HashSet::new();
    for count in 1..=4u32 {
        for n in 0..LINES.len().pow(count) {
            text.clear();
            let mut rest = n;
            for _ in 0..count {
                text.push_str(LINES[rest % LINES.len()]);
                text.push('\n');
                rest /= LINES.len();
            }
            match p(&text) {
                Ok(config) => {
                    for d in &config.doors {
                        assert_eq!(d.name, "d", "{text}");
                        kinds.insert(std::mem::discriminant(&d.sequence));
                    }
                }
                Err(e) => {
                    assert!(
                        (1..=count as usize).contains(&e.line) && !e.message.is_empty(),
                        "{e:?}\n{text}"
                    );
                    assert!(
                        e.to_string()
                            .starts_with(&format!("/etc/knockd.conf:{}: ", e.line)),
                        "{e}"
                    );
                }
            }
        }
    }
    // Doors of all three kinds were among the accepted files.
    assert_eq!(kinds.len(), 3);
}

/// `TCPFlags` on two lines: knockd keeps each flag's state from every line, so this door
/// wants SYN set and ACK clear, not just ACK clear (which would let FIN, RST and flagless
/// packets count).
#[test]
fn tcpflags_lines_combine_as_in_knockd() {
    let d = door("[d]\nsequence = 1\ntcpflags = syn\ntcpflags = !ack\n");
    assert_eq!(
        d.tcp_flags,
        FlagRule {
            set: TcpFlags::SYN,
            clear: TcpFlags::ACK
        }
    );
    assert_eq!(
        d.notes,
        [Note {
            line: 4,
            message: "tcpflags: combined with line 3, as knockd does: syn,!ack".into()
        }]
    );
    // Three lines, and a flag repeated the same way, combine too.
    let d = door("[d]\nsequence = 1\ntcpflags = fin\ntcpflags = !ack\nTCPFlags = fin,!rst\n");
    assert_eq!(tcp_flags_text(d.tcp_flags), "fin,!rst,!ack");
    // A flag required on one line and excluded on another is refused, as on one line.
    for (text, want) in [
        (
            "[d]\nsequence = 1\ntcpflags = syn,ack\ntcpflags = !syn\n",
            "4: tcpflags: syn is excluded here but required on line 3",
        ),
        (
            "[d]\nsequence = 1\ntcpflags = !ack\n\ntcpflags = ack\n",
            "5: tcpflags: ack is required here but excluded on line 3",
        ),
    ] {
        assert_eq!(err(text), format!("/etc/knockd.conf:{want}"));
    }
    // Doors do not share flags.
    let c = p("[a]\nsequence = 1\ntcpflags = syn\n[b]\nsequence = 2\ntcpflags = !syn\n").unwrap();
    assert_eq!(c.doors[1].tcp_flags.set, TcpFlags::NONE);
    assert!(c.doors[1].notes.is_empty());
}

/// `sequence = 7000,8000,9000 # open` and `seq_timeout = 5s`, as tutorials write them:
/// knockd reads 9000 and 5 by accident of atoi; here the comment is ignored and the unit
/// read, and the door's notes say so for `--check`.
#[test]
fn comments_after_values_and_a_unit_on_timeouts() {
    let c = p(
        "[options]\n  interface = ens3 # wan\n  UseSyslog = yes # also\n\
               [openSSH]\n  sequence = 7000,8000:udp,9000 # open\n  seq_timeout = 5 # seconds\n\
               \x20 cmd_timeout = 30s\n  tcpflags = syn #only\n  target = 192.0.2.7\t# vip\n\
               \x20 command = /sbin/iptables -A INPUT -s %IP% -j ACCEPT # shell comment\n",
    )
    .unwrap();
    assert_eq!(c.interface, "ens3");
    assert!(c.use_syslog);
    let d = &c.doors[0];
    assert_eq!(fixed(d), [Hit::tcp(7000), Hit::udp(8000), Hit::tcp(9000)]);
    assert_eq!(d.seq_timeout, Duration::from_secs(5));
    assert_eq!(d.cmd_timeout, Duration::from_secs(30));
    assert_eq!(d.tcp_flags.set, TcpFlags::SYN);
    assert_eq!(d.target, Some("192.0.2.7".parse().unwrap()));
    // Commands go to the shell as written; there ` #` starts a comment anyway.
    assert_eq!(
        d.start_command.as_deref(),
        Some("/sbin/iptables -A INPUT -s %IP% -j ACCEPT # shell comment")
    );
    let notes = |ns: &[Note]| ns.iter().map(Note::to_string).collect::<Vec<_>>();
    assert_eq!(
        notes(&c.notes),
        [
            r##"line 2: interface: ignored the comment "# wan""##,
            r##"line 3: UseSyslog: ignored the comment "# also""##,
        ]
    );
    assert_eq!(
        notes(&d.notes),
        [
            r##"line 5: sequence: ignored the comment "# open""##,
            r##"line 6: seq_timeout: ignored the comment "# seconds""##,
            r#"line 7: cmd_timeout: "30s" read as 30s"#,
            r##"line 8: tcpflags: ignored the comment "#only""##,
            r##"line 9: target: ignored the comment "# vip""##,
        ]
    );
    assert!(c.warnings.is_empty());
    // HMAC numbers take comments too.
    let d = door("[h]\nhmac_secret_file = /k\nhmac_length = 6 # ports\nhmac_step = 60 # 1 min\n");
    let SequenceSource::Hmac(h) = &d.sequence else {
        panic!("hmac")
    };
    assert_eq!((h.length, h.step), (6, 60));
}

/// Paths are kept whole, as knockd keeps them, with a warning when they hold ` #`.
#[test]
fn paths_keep_a_hash_and_warn() {
    let c = p("[options]\nlogfile = /var/log/knockd.log # log\n[d]\nsequence = 1\n").unwrap();
    assert_eq!(
        c.log_file.as_deref(),
        Some(Path::new("/var/log/knockd.log # log"))
    );
    assert_eq!(c.log_file_line, Some(2));
    assert_eq!(
        c.warnings,
        [Note {
            line: 2,
            message: r#"logfile: the path "/var/log/knockd.log # log" holds " #": all of it is the path, as in knockd (put a comment on a line of its own)"#
                .into()
        }]
    );
    let c =
        p("[options]\nlogfile = /var/log/k#1.log\n[d]\none_time_sequences = /etc/k/l#2\n").unwrap();
    assert!(c.warnings.is_empty());
}

/// The strictness that protects users stays, comments or not: knockd reads port 0 or an
/// endless timeout in each of these.
#[test]
fn strictness_is_kept() {
    let table: &[(&str, &str)] = &[
        (
            "[d]\nsequence = 7000,8000, # open\n",
            "2: sequence: empty port (a stray or trailing comma?)",
        ),
        (
            "[d]\nsequence = 7000,abc\n",
            r#"2: sequence: port "abc" is not a number (expected 1-65535)"#,
        ),
        (
            "[d]\nsequence = 7000,-1 # x\n",
            "2: sequence: port -1 is negative (expected 1-65535)",
        ),
        (
            "[d]\nsequence = 7000,9000#open\n",
            r#"2: sequence: port "9000#open" is not a number (expected 1-65535; # starts a comment only at the start of a line or after a space)"#,
        ),
        (
            "[d]\nsequence = 7000\nseq_timeout = # none\n",
            "3: seq_timeout: empty value (expected seconds, e.g. 25, 0.5 or 5s)",
        ),
        (
            "[d]\nsequence = 7000\nseq_timeout = -1 # never\n",
            r#"3: seq_timeout: negative timeout "-1" (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence = 7000\ncmd_timeout = 5 secs\n",
            r#"3: cmd_timeout: "5 secs" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
        ),
        (
            "[d]\nsequence = 7000\ntcpflags = syn,!syn # odd\n",
            "3: tcpflags: syn is both required and excluded",
        ),
        (
            "[d]\nsequence = 7000\none_time_sequences = /l # x\n",
            "3: one_time_sequences: door [d] already has a sequence from Sequence on line 2 (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
        ),
        (
            "[d]\nsequence = 1\ntarget = 192.0.2.1#x\n",
            r#"3: target: "192.0.2.1#x" is not an IP address"#,
        ),
    ];
    for (text, want) in table {
        assert_eq!(err(text), format!("/etc/knockd.conf:{want}"), "{text}");
    }
}

/// Two doors with one name, as a script that appends doors makes when it runs twice.
#[test]
fn doors_with_the_same_name() {
    let text = "[openSSH]\nsequence = 7000,8000\ncommand = open %IP%\n\
                [openSSH]\nsequence = 7000,8000\ncommand = open %IP%\n";
    let c = p(text).unwrap();
    assert_eq!(c.doors.len(), 2);
    assert!(c.doors[0].same_definition(&c.doors[1]));
    assert_eq!(c.door("openSSH").unwrap().line, 1);
    assert_eq!(
        c.warnings,
        [Note {
            line: 4,
            message: "door [openSSH] has the same name as the door on line 1: both are kept, \
                      as knockd keeps them, and log lines name both [openSSH] (rename one to \
                      tell them apart)"
                .into()
        }]
    );
    // Where the name keys state, it must be unique.
    for second in [
        "one_time_sequences = /etc/knockd/list",
        "hmac_secret_file = /etc/knockd/key",
    ] {
        for (a, b) in [
            ("sequence = 1", second),
            (second, "sequence = 1"),
            (second, second),
        ] {
            let text = format!("[d]\n{a}\n\n[d]\n{b}\n");
            assert_eq!(
                err(&text),
                "/etc/knockd.conf:4: door [d] has the same name as the door on line 1; a \
                 one-time or HMAC door's name keys its state (the list's progress, the HMAC \
                 label and used counters), so give each door its own name",
                "{text}"
            );
        }
    }
}

/// The hostile run's finding: the duplicate-name check searched every earlier door for
/// each door, so 100,000 doors took 100 s (and 2 M never finished). It is one map now
/// (`cargo bench -p knockd-engine --bench doors` times it); this holds the answers at
/// that scale: every repeat names the first door of its name, three of one name too.
#[test]
fn same_names_among_many_doors() {
    let mut text = String::new();
    for i in 0..50_000 {
        text.push_str(&format!("[d{i}]\nsequence = {}\n", 1 + i % 65_000));
    }
    text.push_str("[d7]\nsequence = 1\n[d49999]\nsequence = 2\n[d7]\nsequence = 3\n");
    let c = p(&text).unwrap();
    assert_eq!(c.doors.len(), 50_003);
    let said: Vec<(usize, &str)> = c
        .warnings
        .iter()
        .map(|w| (w.line, w.message.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        said,
        [
            (
                100_001,
                "door [d7] has the same name as the door on line 15"
            ),
            (
                100_003,
                "door [d49999] has the same name as the door on line 99999"
            ),
            (
                100_005,
                "door [d7] has the same name as the door on line 15"
            ),
        ]
    );
}

/// Messages that said the wrong thing.
#[test]
fn messages_name_the_real_problem() {
    let table: &[(&str, &str)] = &[
        (
            "[openSSH] # open the door\nsequence = 1\n",
            r##"1: text after the section header [openSSH]: "# open the door" (put a comment on a line of its own: # starts a comment only at the start of a line)"##,
        ),
        (
            "[options]\nuseSyslog=false\n",
            r#"2: useSyslog: expected yes or no, found "false" (or write UseSyslog alone, the only form knockd 0.8 reads, to log to syslog)"#,
        ),
    ];
    for (text, want) in table {
        assert_eq!(err(text), format!("/etc/knockd.conf:{want}"), "{text}");
    }
    // `9000 # open` is no longer a bad port: the comment is ignored.
    assert_eq!(
        fixed(&door("[d]\nsequence = 9000:udp # open\n")),
        [Hit::udp(9000)]
    );
}

/// One Latin-1 byte in a comment: knockd runs the file, and so does this parser. Anywhere
/// else the error names the line and column.
#[test]
fn bytes_that_are_not_utf8() {
    let c = p(b"# Konfiguration f\xfcr knockd\n[d]\n  # T\xfcr\n  sequence = 1 # \xe9\n").unwrap();
    assert_eq!(fixed(&c.doors[0]), [Hit::tcp(1)]);
    assert_eq!(
        c.doors[0].notes[0].message,
        "sequence: ignored the comment \"# \u{fffd}\""
    );
    let table: &[(&[u8], &str)] = &[
        (
            b"[d]\nsequence = 1\ncommand = echo T\xfcr ge\xf6ffnet\n",
            "3: command: byte 0xFC at column 17 is not UTF-8 (only comments may hold other bytes: convert the file, e.g. iconv -f latin1 -t utf-8)",
        ),
        (
            b"[T\xfcr]\nsequence = 1\n",
            "1: byte 0xFC at column 3 is not UTF-8 (only comments may hold other bytes: convert the file, e.g. iconv -f latin1 -t utf-8)",
        ),
        (
            b"[d]\ns\xe9quence = 1\n",
            "2: byte 0xE9 at column 2 is not UTF-8 (only comments may hold other bytes: convert the file, e.g. iconv -f latin1 -t utf-8)",
        ),
        (
            b"[options]\nlogfile = /var/log/kn\xf6ckd.log\n",
            "2: logfile: byte 0xF6 at column 22 is not UTF-8 (only comments may hold other bytes: convert the file, e.g. iconv -f latin1 -t utf-8)",
        ),
    ];
    for (text, want) in table {
        assert_eq!(
            p(text).unwrap_err().to_string(),
            format!("/etc/knockd.conf:{want}"),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}
#[test]
fn nft_sets() {
    let d = door(
        "[ssh]\nsequence = 1\nNft_Set = inet filter knock_ssh\nnft_set_6 = inet filter knock_ssh6\n",
    );
    let set = |name: &str| NftSet {
        family: NftFamily::Inet,
        table: "filter".into(),
        set: name.into(),
    };
    assert_eq!(
        d.nft_set,
        Some(SetDirective {
            set: set("knock_ssh"),
            line: 3
        })
    );
    assert_eq!(d.nft_set_for(true).unwrap().set, set("knock_ssh6"));
    assert_eq!(d.nft_set_for(true).unwrap().line, 4);
    assert_eq!(d.start_command_for(false), None, "a set needs no command");
    // No fallback between families: a set holds one.
    let d = door("[ssh]\nsequence = 1\nnft_set = ip fw s\n");
    assert_eq!(d.nft_set_for(false).unwrap().set.to_string(), "ip fw s");
    assert_eq!(d.nft_set_for(true), None);
    // Where the directive sits does not change the door.
    let a = door("[ssh]\nsequence = 1\nnft_set = ip fw s\n");
    let b = door("\n[ssh]\nnft_set = ip fw s\nsequence = 1\n");
    assert!(a.same_definition(&b));
    let c = door("[ssh]\nsequence = 1\nnft_set = ip fw t\n");
    assert!(!a.same_definition(&c));
}

#[test]
fn nft_set_errors() {
    for (text, want) in [
        (
            "[d]\nsequence=1\nnft_set = inet filter\n",
            "3: nft_set: 2 words (expected FAMILY TABLE SET, e.g. inet filter knock_ssh)",
        ),
        (
            "[d]\nsequence=1\nNft_Set_6 = ipx filter s\n",
            "3: Nft_Set_6: unknown family \"ipx\" (expected ip, ip6, inet, arp, bridge or netdev)",
        ),
        (
            "[options]\nnft_set = inet filter s\n",
            "2: nft_set belongs in a door section, not in [options]",
        ),
        (
            "[d]\nsequence=1\ncmd_timeout = 0\nnft_set_6 = inet filter s\n",
            "4: door [d]: an nftables door needs a Cmd_Timeout above 0 (it is the element's \
             timeout, and the kernel keeps an element with timeout 0 for ever)",
        ),
    ] {
        assert_eq!(err(text), format!("/etc/knockd.conf:{want}"), "{text}");
    }
}
