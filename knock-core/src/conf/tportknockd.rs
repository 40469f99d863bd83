//! tportknockd's config format, read into the same [`Config`] as knockd.conf.
//!
//! What tportknockd's manual says of it: each knock event is a block that opens with
//! `<EVENT_NAME>` and closes with `</EVENT_NAME>`, and names are unique. Inside a block:
//! `sequence = {frame}*` (frames `PROTO:PORT[:LETTERS]` separated by spaces, the letters
//! being TCP flags; a frame without letters means no flag set), `timeout` (seconds for the
//! whole sequence), `start_command` (run after a successful knock; `%IP%` is the knocker's
//! address) and, optionally, `stop_command`, run `command_delay` seconds later.
//!
//! Each event becomes a door:
//!
//! | tportknockd     | door             | notes                                          |
//! |-----------------|------------------|------------------------------------------------|
//! | `<NAME>`        | `[NAME]`         | line of the opening tag                        |
//! | `sequence`      | `Sequence`       | each frame's flags matched exactly (`i`: any)  |
//! | `timeout`       | `Seq_Timeout`    | required, as the manual lists it in each event |
//! | `start_command` | `Start_Command`  | for IPv4 and IPv6 alike                        |
//! | `stop_command`  | `Stop_Command`   |                                                |
//! | `command_delay` | `Cmd_Timeout`    | default 10 s (knockd's) when it is left out    |
//!
//! `command_delay` is the wait between the start and the stop command, which is what
//! `Cmd_Timeout` is: knockd-lite counts it from the start command's end on the monotonic
//! clock and journals the stop so that it runs even after a restart. There is no `TCPFlags`
//! (frames carry their own flags) and no `[options]`: the interface comes from `-i`, a log
//! file from `-g`.
//!
//! As in knockd.conf, blank lines and `#` lines are skipped, keys are case-insensitive,
//! a ` # comment` after a sequence or a number is ignored, and errors are
//! `path:line: message`.

use std::path::Path;
use std::time::Duration;

use super::{ConfError, Config, Door, Format, Note, SequenceSource, lines, value};
use crate::hit::{Hit, Proto};
use crate::text::{excerpt, quoted};

const KEYS: &str = "sequence, timeout, start_command, stop_command or command_delay";

/// Parses a tportknockd config. `path` is only used in messages.
pub(super) fn parse(text: &[u8], path: &Path) -> Result<Config, ConfError> {
    let err = |line: usize, message: String| ConfError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut config = Config::empty(Format::Tportknockd);
    let mut open: Option<Event> = None;
    for line in lines::significant(text) {
        let n = line.number;
        if line.bytes[0] == b'<' {
            let tag = lines::text(line.bytes, 0).map_err(|m| err(n, m))?;
            let (closing, name) = tag_name(tag).map_err(|m| err(n, m))?;
            match (closing, open.take()) {
                (false, None) => {
                    if let Some(first) = config.doors.iter().find(|d| d.name == name) {
                        return Err(err(
                            n,
                            format!(
                                "event <{name}> is defined twice (first on line {}; each \
                                 event needs its own name)",
                                first.line
                            ),
                        ));
                    }
                    open = Some(Event::new(name, n));
                }
                (false, Some(event)) => {
                    return Err(err(
                        n,
                        format!(
                            "<{name}> opens inside <{}> (opened on line {}): close that one \
                             first with </{}>",
                            event.door.name, event.door.line, event.door.name
                        ),
                    ));
                }
                (true, None) => {
                    return Err(err(n, format!("</{name}> closes no open event")));
                }
                (true, Some(event)) if event.door.name != name => {
                    return Err(err(
                        n,
                        format!(
                            "</{name}> does not close <{}> (opened on line {}; expected </{}>)",
                            event.door.name, event.door.line, event.door.name
                        ),
                    ));
                }
                (true, Some(event)) => config
                    .doors
                    .push(event.finish().map_err(|(l, m)| err(l, m))?),
            }
            continue;
        }
        let Some(event) = open.as_mut() else {
            let text = String::from_utf8_lossy(line.bytes);
            let shown = quoted(&text);
            return Err(err(
                n,
                format!("{shown:?} is outside any event (put it between <NAME> and </NAME>)"),
            ));
        };
        event.directive(line.bytes, n).map_err(|m| err(n, m))?;
    }
    if let Some(event) = open {
        return Err(err(
            event.door.line,
            format!(
                "<{}> is not closed (expected </{}> before the end of the file)",
                event.door.name, event.door.name
            ),
        ));
    }
    Ok(config)
}

/// `<NAME>` or `</NAME>`: whether it closes, and the name.
fn tag_name(tag: &str) -> Result<(bool, &str), String> {
    let Some(inner) = tag.strip_prefix('<') else {
        unreachable!("tags start with <");
    };
    let Some(end) = inner.find('>') else {
        return Err(format!(
            "unterminated tag {:?} (expected <NAME> or </NAME>)",
            quoted(tag)
        ));
    };
    let (inner, rest) = (&inner[..end], inner[end + 1..].trim());
    let (closing, name) = match inner.strip_prefix('/') {
        Some(name) => (true, name.trim()),
        None => (false, inner.trim()),
    };
    // Before any message quotes the tag, which it does by its trimmed name.
    super::check_name("event", name)?;
    if !rest.is_empty() {
        let slash = if closing { "/" } else { "" };
        return Err(format!(
            "text after the tag <{slash}{}>: {:?} (put a comment on a line of its own)",
            excerpt(name),
            quoted(rest)
        ));
    }
    if name.is_empty() || name.contains('<') {
        return Err(format!(
            "bad event name in {:?} (expected <NAME> or </NAME>)",
            quoted(tag)
        ));
    }
    Ok((closing, name))
}

/// The keys of an event block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Sequence,
    Timeout,
    StartCommand,
    StopCommand,
    CommandDelay,
}

impl Key {
    fn lookup(key: &str) -> Option<Key> {
        Some(match key.to_ascii_lowercase().as_str() {
            "sequence" => Key::Sequence,
            "timeout" => Key::Timeout,
            "start_command" => Key::StartCommand,
            "stop_command" => Key::StopCommand,
            "command_delay" => Key::CommandDelay,
            _ => return None,
        })
    }

    fn is_command(self) -> bool {
        matches!(self, Key::StartCommand | Key::StopCommand)
    }
}

/// An event block being read.
struct Event {
    door: Door,
    /// Each key seen, with its line: a key may be given once.
    seen: Vec<(Key, usize)>,
}

impl Event {
    fn new(name: &str, line: usize) -> Event {
        Event {
            door: Door::new(name, line),
            seen: Vec::new(),
        }
    }

    fn directive(&mut self, line: &[u8], n: usize) -> Result<(), String> {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            let text = String::from_utf8_lossy(line);
            let shown = quoted(&text);
            return Err(format!(
                "expected \"key = value\" or a tag, found {shown:?} (keys: {KEYS})"
            ));
        };
        let key_text = lines::text(line[..eq].trim_ascii(), 0)?;
        let Some(key) = Key::lookup(key_text) else {
            return Err(format!(
                "unknown key {:?} in <{}> (expected {KEYS})",
                quoted(key_text),
                self.door.name
            ));
        };
        if let Some((_, first)) = self.seen.iter().find(|(k, _)| *k == key) {
            return Err(format!(
                "{key_text} is given twice in <{}> (first on line {first})",
                self.door.name
            ));
        }
        self.seen.push((key, n));
        let value = line[eq + 1..].trim_ascii();
        // Where the value starts in the line, for the column of a byte that is not UTF-8.
        let offset = value.as_ptr() as usize - line.as_ptr() as usize;
        let (value, comment) = if key.is_command() {
            (value, None)
        } else {
            lines::split_comment(value)
        };
        let value = lines::text(value, offset).map_err(|m| format!("{key_text}: {m}"))?;
        let bad = |m: String| format!("{key_text}: {m}");
        if let Some(comment) = comment {
            self.door.notes.push(Note {
                line: n,
                message: format!(
                    "{key_text}: ignored the comment {:?}",
                    quoted(&String::from_utf8_lossy(comment))
                ),
            });
        }
        match key {
            Key::Sequence => {
                self.door.sequence = SequenceSource::Fixed(frames(value).map_err(bad)?)
            }
            Key::Timeout => self.door.seq_timeout = seconds(value, key_text, n, &mut self.door)?,
            Key::CommandDelay => {
                self.door.cmd_timeout = seconds(value, key_text, n, &mut self.door)?
            }
            Key::StartCommand => self.door.start_command = Some(value.to_string()),
            Key::StopCommand => self.door.stop_command = Some(value.to_string()),
        }
        Ok(())
    }

    /// The door, once the block is closed; errors carry the line of the opening tag.
    fn finish(mut self) -> Result<Door, (usize, String)> {
        let name = &self.door.name;
        let has = |key: Key| self.seen.iter().any(|(k, _)| *k == key);
        if !has(Key::Sequence) {
            return Err((self.door.line, format!("<{name}> has no sequence")));
        }
        if !has(Key::Timeout) {
            return Err((
                self.door.line,
                format!("<{name}> has no timeout (the seconds a knocker has for the sequence)"),
            ));
        }
        if has(Key::StopCommand) && !has(Key::CommandDelay) {
            self.door.notes.push(Note {
                line: self.door.line,
                message: format!(
                    "no command_delay: the stop command runs {} after the start command \
                     (knockd's default Cmd_Timeout)",
                    value::seconds_text(self.door.cmd_timeout)
                ),
            });
        }
        Ok(self.door)
    }
}

fn seconds(value: &str, key_text: &str, line: usize, door: &mut Door) -> Result<Duration, String> {
    let read = value::seconds(value).map_err(|m| format!("{key_text}: {m}"))?;
    door.notes
        .extend(super::unit_note(key_text, value, read, line));
    Ok(read)
}

/// `tcp:110:up tcp:110:x udp:53`: frames separated by spaces (commas are accepted too). Only
/// the frame form is accepted: a bare `7000` means something else in knockd.conf.
fn frames(value: &str) -> Result<Vec<Hit>, String> {
    let mut hits = Vec::new();
    for word in value.split_whitespace() {
        for item in word.split(',') {
            let proto = item.split(':').next().unwrap_or("");
            if proto.parse::<Proto>().is_err() || !item.contains(':') {
                return Err(format!(
                    "frame {:?} is not PROTO:PORT[:FLAGS] (e.g. tcp:7000:s or udp:53)",
                    quoted(item)
                ));
            }
            let hit = Hit::parse(item, Proto::Tcp)
                .map_err(|e| format!("frame {:?}: {}", quoted(&e.item), e.kind))?;
            hits.push(hit);
        }
    }
    if hits.is_empty() {
        return Err("no frames (expected e.g. tcp:7000:s tcp:8000:a udp:53)".to_string());
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_any;
    use super::*;
    use crate::hit::{FlagRule, HitFlags, TcpFlags};

    fn p(text: &str) -> Result<Config, ConfError> {
        parse_any(text, Path::new("/etc/tportknockd.conf"))
    }

    fn err(text: &str) -> String {
        p(text).expect_err(text).to_string()
    }

    /// Laid out as tportknockd's manual describes its file: comment lines, one block per
    /// event, frames separated by spaces.
    const TWO_EVENTS: &str = "\
# tportknockd events
<SSH>
  sequence = tcp:110:s tcp:110:a tcp:110:up udp:53 tcp:110
  timeout  = 10
  start_command = /sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
  stop_command  = /sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT
  command_delay = 30
</SSH>

<WEB>
  SEQUENCE = tcp:8080:x  tcp:8080:i   # flag knocking on one port
  Timeout = 5s
  start_command = /usr/local/bin/open-web %IP% # shell comment
</WEB>
";

    #[test]
    fn events_become_doors() {
        let c = p(TWO_EVENTS).unwrap();
        assert_eq!(c.format, Format::Tportknockd);
        assert_eq!(c.log_file, None);
        assert!(!c.use_syslog);
        let ssh = &c.doors[0];
        assert_eq!((ssh.name.as_str(), ssh.line), ("SSH", 2));
        assert_eq!(
            ssh.sequence,
            SequenceSource::Fixed(vec![
                Hit::tcp_flags(110, TcpFlags::SYN),
                Hit::tcp_flags(110, TcpFlags::ACK),
                Hit::tcp_flags(110, TcpFlags::URG | TcpFlags::PSH),
                Hit::udp(53),
                Hit::tcp_flags(110, TcpFlags::NONE),
            ])
        );
        assert_eq!(ssh.seq_timeout, Duration::from_secs(10));
        assert_eq!(ssh.tcp_flags, FlagRule::ANY);
        assert_eq!(
            ssh.start_command_for(true),
            Some("/sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT")
        );
        assert_eq!(
            ssh.stop_command_for(false),
            Some("/sbin/iptables -D INPUT -s %IP% -p tcp --dport 22 -j ACCEPT")
        );
        assert_eq!(ssh.cmd_timeout, Duration::from_secs(30));
        assert!(ssh.notes.is_empty(), "{:?}", ssh.notes);

        let web = &c.doors[1];
        assert_eq!((web.name.as_str(), web.line), ("WEB", 10));
        let SequenceSource::Fixed(hits) = &web.sequence else {
            panic!("fixed")
        };
        assert_eq!(hits[0], Hit::tcp_flags(8080, TcpFlags::ALL_SIX));
        assert_eq!(hits[1].flags, HitFlags::Any);
        assert_eq!(web.seq_timeout, Duration::from_secs(5));
        // The shell decides what a command's ` #` means, as for knockd.conf.
        assert_eq!(
            web.start_command.as_deref(),
            Some("/usr/local/bin/open-web %IP% # shell comment")
        );
        assert_eq!(web.stop_command, None);
        assert_eq!(
            web.notes,
            [
                Note {
                    line: 11,
                    message: r##"SEQUENCE: ignored the comment "# flag knocking on one port""##
                        .into()
                },
                Note {
                    line: 12,
                    message: r#"Timeout: "5s" read as 5s"#.into()
                },
            ]
        );
    }

    #[test]
    fn a_stop_without_a_delay_waits_knockds_default() {
        let c = p(
            "<A>\nsequence = tcp:1\ntimeout = 3\nstart_command = up\nstop_command = down\n</A>\n",
        )
        .unwrap();
        let d = &c.doors[0];
        assert_eq!(d.cmd_timeout, Duration::from_secs(10));
        assert_eq!(
            d.notes,
            [Note {
                line: 1,
                message: "no command_delay: the stop command runs 10s after the start command \
                          (knockd's default Cmd_Timeout)"
                    .into()
            }]
        );
        // Commas between frames are read too; a timeout may have milliseconds.
        let c = p("<A>\nsequence = tcp:1:s,udp:2\ntimeout = 0.5\n</A>\n").unwrap();
        let SequenceSource::Fixed(hits) = &c.doors[0].sequence else {
            panic!("fixed")
        };
        assert_eq!(hits, &[Hit::tcp_flags(1, TcpFlags::SYN), Hit::udp(2)]);
        assert_eq!(c.doors[0].seq_timeout, Duration::from_millis(500));
    }

    #[test]
    fn the_format_is_told_from_the_first_line_that_counts() {
        assert_eq!(super::super::detect(b"\n# x\n  <A>\n"), Format::Tportknockd);
        assert_eq!(super::super::detect(b"# <A>\n[d]\n"), Format::Knockd);
        assert_eq!(super::super::detect(b""), Format::Knockd);
        assert_eq!(p("[d]\nsequence=1\n").unwrap().format, Format::Knockd);
    }

    #[test]
    fn errors_with_pinned_messages() {
        let table: &[(&str, &str)] = &[
            (
                "<A>\nsequence = tcp:1\ntimeout = 1\n",
                "1: <A> is not closed (expected </A> before the end of the file)",
            ),
            ("</A>\n", "1: </A> closes no open event"),
            (
                "<A>\nsequence = tcp:1\ntimeout = 1\n</B>\n",
                "4: </B> does not close <A> (opened on line 1; expected </A>)",
            ),
            (
                "<A>\n<B>\n",
                "2: <B> opens inside <A> (opened on line 1): close that one first with </A>",
            ),
            (
                "<A>\nsequence = tcp:1\ntimeout = 1\n</A>\n<A>\n",
                "5: event <A> is defined twice (first on line 1; each event needs its own name)",
            ),
            (
                "<A>\nsequence = tcp:1\ntimeout = 1\n</A>\nsequence = tcp:2\n",
                r#"5: "sequence = tcp:2" is outside any event (put it between <NAME> and </NAME>)"#,
            ),
            (
                "<A\n",
                r#"1: unterminated tag "<A" (expected <NAME> or </NAME>)"#,
            ),
            (
                "<>\n",
                r#"1: bad event name in "<>" (expected <NAME> or </NAME>)"#,
            ),
            (
                "<A\x1b[2J> x\n",
                r#"1: event name "A\u{1b}[2J" has a control character"#,
            ),
            (
                "<A> # ssh\n",
                r##"1: text after the tag <A>: "# ssh" (put a comment on a line of its own)"##,
            ),
            (
                "<A>\nport = 22\n",
                r#"2: unknown key "port" in <A> (expected sequence, timeout, start_command, stop_command or command_delay)"#,
            ),
            (
                "<A>\nsequence\n",
                r#"2: expected "key = value" or a tag, found "sequence" (keys: sequence, timeout, start_command, stop_command or command_delay)"#,
            ),
            (
                "<A>\nsequence = tcp:1\nsequence = tcp:2\n",
                "3: sequence is given twice in <A> (first on line 2)",
            ),
            ("<A>\ntimeout = 1\n</A>\n", "1: <A> has no sequence"),
            (
                "<A>\nsequence = tcp:1\n</A>\n",
                "1: <A> has no timeout (the seconds a knocker has for the sequence)",
            ),
            (
                "<A>\nsequence = 7000 8000\n",
                r#"2: sequence: frame "7000" is not PROTO:PORT[:FLAGS] (e.g. tcp:7000:s or udp:53)"#,
            ),
            (
                "<A>\nsequence = tcp\n",
                r#"2: sequence: frame "tcp" is not PROTO:PORT[:FLAGS] (e.g. tcp:7000:s or udp:53)"#,
            ),
            (
                "<A>\nsequence = tcp:1:q\n",
                r#"2: sequence: frame "tcp:1:q": unknown flag letter 'q' (expected letters from f s r p a u, or x, n or i alone)"#,
            ),
            (
                "<A>\nsequence = udp:53:s\n",
                r#"2: sequence: frame "udp:53:s": flags are only for tcp hits, not udp"#,
            ),
            (
                "<A>\nsequence = tcp:1,\n",
                r#"2: sequence: frame "" is not PROTO:PORT[:FLAGS] (e.g. tcp:7000:s or udp:53)"#,
            ),
            (
                "<A>\nsequence = # none\n",
                "2: sequence: no frames (expected e.g. tcp:7000:s tcp:8000:a udp:53)",
            ),
            (
                "<A>\nsequence = tcp:1\ntimeout = -1\n",
                r#"3: timeout: negative timeout "-1" (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
            (
                "<A>\nsequence = tcp:1\ntimeout = 1\ncommand_delay = soon\n",
                r#"4: command_delay: "soon" is not a number of seconds (expected seconds, e.g. 25, 0.5 or 5s)"#,
            ),
        ];
        for (text, want) in table {
            assert_eq!(
                err(text),
                format!("/etc/tportknockd.conf:{want}"),
                "config:\n{text}"
            );
        }
        assert_eq!(
            parse_any(b"<A>\nstart_command = echo caf\xe9\n", Path::new("t.conf"))
                .unwrap_err()
                .to_string(),
            "t.conf:2: start_command: byte 0xE9 at column 25 is not UTF-8 (only comments may \
             hold other bytes: convert the file, e.g. iconv -f latin1 -t utf-8)"
        );
    }
}
