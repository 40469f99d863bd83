//! `conf`: server configuration files, knockd.conf and tportknockd's format, as
//! `knock_core::conf::parse` reads them (it tells the two apart by their first line). An
//! administrator hands them to a root process; `--check` and SIGHUP print what they say.
//!
//! Properties:
//! * rejected: the error is `path:line: message` for this path, its line is a line of the
//!   file that holds something (not blank, not a comment), and the message is printable;
//! * accepted: every door's line holds its `[header]` or `<TAG>`; notes and warnings are
//!   printable;
//! * a blank line added at the top moves every line number (in messages too) by one and
//!   changes nothing else;
//! * round trip: the config written back as knockd.conf ([`render`]) parses to the same
//!   config, both canonically and with noise that must not matter (key case and aliases,
//!   spacing, comments after values and on lines of their own, blank lines, CRLF, a
//!   byte-order mark, directives shuffled, `TCPFlags` split over two lines, `UseSyslog` in a
//!   door, other spellings of hits, seconds, flags and numbers). The canonical text is a
//!   fixed point and reads without notes. The same in tportknockd's format where a config
//!   can be said in it ([`crate::tportknockd`]), so a config read in one format reads the
//!   same written in the other.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use knock_core::conf::{self, ConfError, Config, Door, Format, Note, SequenceSource};
use knock_core::hit::{FlagRule, Hit, HitFlags, Proto, TcpFlags};

use crate::mutate::Rng;
use crate::printable_message;
use crate::tportknockd;

pub(crate) const PATH: &str = "/etc/fuzz/knockd.conf";

/// Accepted: the config parsed.
pub fn check(data: &[u8]) -> bool {
    let parsed = conf::parse(data, Path::new(PATH));
    shifted_by_a_line(data, &parsed);
    let config = match parsed {
        Err(e) => {
            error_shape(&e, data);
            return false;
        }
        Ok(config) => config,
    };
    for note in notes(&config) {
        printable_message(&note.message);
    }
    headers_where_doors_say(data, &config);
    if knockd_can_say(&config) {
        round_trip(&config, data, Format::Knockd, render);
    }
    if tportknockd::can_say(&config) {
        round_trip(&config, data, Format::Tportknockd, tportknockd::render);
    }
    true
}

/// Every note and warning, of the config and its doors.
fn notes(config: &Config) -> impl Iterator<Item = &Note> {
    config
        .notes
        .iter()
        .chain(&config.warnings)
        .chain(config.doors.iter().flat_map(|d| &d.notes))
}

/// Written in `format` canonically (a fixed point, read without notes) and with noise.
fn round_trip(
    config: &Config,
    data: &[u8],
    format: Format,
    write: fn(&Config, &mut Noise) -> String,
) {
    let canonical = write(config, &mut Noise::none());
    let again = reparse(&canonical, config, format);
    assert_eq!(
        write(&again, &mut Noise::none()),
        canonical,
        "not a fixed point"
    );
    let quiet = again.notes.is_empty() && again.doors.iter().all(|d| d.notes.is_empty());
    assert!(
        quiet,
        "the canonical text reads with notes: {again:?}\n{canonical}"
    );
    let mut noise = Noise::seeded(crate::driver::fnv(data));
    let noisy = write(config, &mut noise);
    reparse(&noisy, config, format);
}

/// `text` parses, in `format`, to `want` (lines and notes aside: they depend on layout).
fn reparse(text: &str, want: &Config, format: Format) -> Config {
    let got = conf::parse(text, Path::new(PATH))
        .unwrap_or_else(|e| panic!("written back, the config fails: {e}\n{text}"));
    // Without doors there is nothing to tell the formats apart.
    if !want.doors.is_empty() {
        assert_eq!(got.format, format, "\n{text}");
    }
    assert_eq!(comparable(&got), comparable(want), "\n{text}");
    headers_where_doors_say(text.as_bytes(), &got);
    got
}

/// What must survive being written in another layout or format: everything but line
/// numbers, the format, and notes and warnings, which are about lines as written (a
/// warned-about path given twice is warned about twice, though only the last counts).
fn comparable(config: &Config) -> Config {
    let mut c = config.clone();
    c.format = Format::Knockd;
    c.notes.clear();
    c.warnings.clear();
    c.log_file_line = c.log_file_line.map(|_| 0);
    for door in &mut c.doors {
        door.line = 0;
        door.notes.clear();
        for set in [&mut door.nft_set, &mut door.nft_set_6]
            .into_iter()
            .flatten()
        {
            set.line = 0;
        }
    }
    c
}

fn error_shape(e: &ConfError, data: &[u8]) {
    assert_eq!(e.path, Path::new(PATH));
    let line = e
        .line
        .checked_sub(1)
        .and_then(|i| data.split(|&b| b == b'\n').nth(i))
        .map(|l| if e.line == 1 { strip_bom(l) } else { l }.trim_ascii());
    assert!(
        line.is_some_and(|l| !l.is_empty() && l[0] != b'#'),
        "{e}: the line is {:?}",
        line.map(String::from_utf8_lossy)
    );
    printable_message(&e.message);
    assert_eq!(e.to_string(), format!("{PATH}:{}: {}", e.line, e.message));
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes)
}

/// A blank line first (after a byte-order mark, which only counts at the very start).
fn shifted_by_a_line(data: &[u8], parsed: &Result<Config, ConfError>) {
    let rest = strip_bom(data);
    let mut shifted = data[..data.len() - rest.len()].to_vec();
    shifted.push(b'\n');
    shifted.extend_from_slice(rest);
    match (parsed, conf::parse(&shifted, Path::new(PATH))) {
        (Ok(a), Ok(mut b)) => {
            b.log_file_line = b.log_file_line.map(|n| n - 1);
            let a_notes: Vec<&Note> = notes(a).collect();
            let b_notes: Vec<&Note> = notes(&b).collect();
            assert_eq!(a_notes.len(), b_notes.len());
            for (x, y) in a_notes.into_iter().zip(b_notes) {
                assert_eq!(x.line + 1, y.line, "{x:?} then {y:?}");
                assert!(one_line_later(&x.message, &y.message), "{x:?} then {y:?}");
            }
            b.notes.clone_from(&a.notes);
            b.warnings.clone_from(&a.warnings);
            for (door, was) in b.doors.iter_mut().zip(&a.doors) {
                door.line -= 1;
                door.notes.clone_from(&was.notes);
                for set in [&mut door.nft_set, &mut door.nft_set_6]
                    .into_iter()
                    .flatten()
                {
                    set.line -= 1;
                }
            }
            assert_eq!(*a, b);
        }
        (Err(a), Err(b)) => {
            assert_eq!((&a.path, a.line + 1), (&b.path, b.line), "{a} then {b}");
            assert!(one_line_later(&a.message, &b.message), "{a} then {b}");
        }
        (a, b) => panic!("a blank line changed the outcome: {a:?} then {b:?}"),
    }
}

/// Whether `b` is `a` with the line numbers it gives one later. Text is compared between
/// the occurrences of "line N"; each N is one more in `b`, or the same (where the message
/// quotes text that happens to read "line 5s").
fn one_line_later(a: &str, b: &str) -> bool {
    let (a, b) = (line_numbers(a), line_numbers(b));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| match (x, y) {
            (Piece::Text(x), Piece::Text(y)) => x == y,
            (Piece::Line(x), Piece::Line(y)) => x.checked_add(1) == Some(*y) || y == x,
            _ => false,
        })
}

#[derive(Debug)]
enum Piece<'a> {
    Text(&'a str),
    Line(usize),
}

/// `message` cut into text and the numbers that follow "line ".
fn line_numbers(message: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        let (before, after) = rest.split_at(at + "line ".len());
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push(Piece::Text(before));
        if let Ok(n) = after[..digits].parse() {
            out.push(Piece::Line(n));
        }
        rest = &after[digits..];
    }
    out.push(Piece::Text(rest));
    out
}

/// Each door's line holds its section header (`[name]`) or event tag (`<NAME>`).
fn headers_where_doors_say(data: &[u8], config: &Config) {
    let lines: Vec<&[u8]> = strip_bom(data).split(|&b| b == b'\n').collect();
    let mark = match config.format {
        Format::Knockd => b'[',
        Format::Tportknockd => b'<',
    };
    for door in &config.doors {
        let header = door.line.checked_sub(1).and_then(|i| lines.get(i));
        assert!(
            header.is_some_and(|h| h.trim_ascii().first() == Some(&mark)),
            "door {:?} on line {}: {:?}",
            door.name,
            door.line,
            header.map(|h| String::from_utf8_lossy(h))
        );
    }
}

/// Choices a writer may make without changing what the file means. [`Noise::none`] makes
/// the canonical text.
pub(crate) struct Noise(Option<Rng>);

impl Noise {
    pub(crate) fn none() -> Noise {
        Noise(None)
    }

    pub(crate) fn seeded(seed: u64) -> Noise {
        Noise(Some(Rng::new(seed)))
    }

    /// True `percent` of the time when noisy, never when canonical.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.0.as_mut().is_some_and(|r| r.chance(percent))
    }

    /// One of `options` (the first when canonical).
    pub(crate) fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0.as_mut().map_or(0, |r| r.below(n))
    }

    /// A keyword in mixed case.
    pub(crate) fn case(&mut self, word: &str) -> String {
        match self.below(3) {
            1 => word.to_ascii_lowercase(),
            2 => word.to_ascii_uppercase(),
            _ => word.to_string(),
        }
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// `KEY = value`, with one of the key's spellings (the first is canonical), and a
    /// comment after the value where `comment_ok` (the key's value cannot hold ` #`).
    pub(crate) fn directive(&mut self, keys: &[&str], value: &str, comment_ok: bool) -> String {
        let key = self.pick(keys);
        let key = self.case(key);
        let eq = self.pick(&[" = ", "=", "\t=\t", " =  "]);
        let comment = if comment_ok && self.chance(20) {
            self.pick(&[" # note", "\t#", " #x = [y] <z>"])
        } else {
            ""
        };
        format!("{key}{eq}{value}{comment}")
    }

    /// Seconds with milliseconds: canonically `25` or `0.5`; noisy also `25.000`, `.5`,
    /// `0.500`, `25s`, `0.5 s`.
    pub(crate) fn seconds(&mut self, d: Duration) -> String {
        let (secs, millis) = (d.as_secs(), d.subsec_millis());
        let frac = format!("{millis:03}");
        let number = match self.below(3) {
            1 => format!("{secs}.{frac}"),
            2 if secs == 0 => format!(".{frac}"),
            _ if millis == 0 => secs.to_string(),
            _ => format!("{secs}.{}", frac.trim_end_matches('0')),
        };
        let unit = self.pick(&["", "", "s", " s"]);
        format!("{number}{unit}")
    }

    /// The lines of a file, with blank and comment lines, indentation, CRLF and a
    /// byte-order mark thrown in when noisy.
    pub(crate) fn file(&mut self, lines: &[String]) -> String {
        let mut out = String::new();
        if self.chance(10) {
            out.push('\u{feff}');
        }
        let newline = self.pick(&["\n", "\r\n"]);
        for line in lines {
            while self.chance(10) {
                out.push_str(self.pick(&["", "#", "# a comment = [x] <y>", "   ", "\t# x"]));
                out.push_str(newline);
            }
            let indent = self.pick(&["", "", "  ", "\t"]);
            let _ = write!(out, "{indent}{line}{newline}");
        }
        out
    }
}

/// Whether knockd.conf can say this config: not a door named like the global section.
fn knockd_can_say(config: &Config) -> bool {
    !config
        .doors
        .iter()
        .any(|d| d.name.eq_ignore_ascii_case("options"))
}

/// Writes `config` as knockd.conf.
pub(crate) fn render(config: &Config, noise: &mut Noise) -> String {
    let mut lines: Vec<String> = Vec::new();
    let defaults = conf::parse("", Path::new(PATH)).expect("an empty config is valid");
    let mut globals = Vec::new();
    if let Some(log) = &config.log_file {
        globals.push(noise.directive(&["LogFile"], &path_text(log), false));
    }
    if config.pid_file != defaults.pid_file || noise.chance(30) {
        let pid = path_text(&config.pid_file);
        globals.push(noise.directive(&["PidFile"], &pid, false));
    }
    if config.interface != defaults.interface || noise.chance(30) {
        globals.push(noise.directive(&["Interface"], &config.interface, true));
    }
    let syslog_in_door = config.use_syslog && !config.doors.is_empty() && noise.chance(30);
    if config.use_syslog && !syslog_in_door {
        globals.push(syslog(noise));
    }
    if !globals.is_empty() || noise.chance(20) {
        noise.shuffle(&mut globals);
        let name = noise.case("options");
        lines.push(header(noise, &name));
        lines.extend(globals);
    }
    for (i, door) in config.doors.iter().enumerate() {
        lines.push(header(noise, &door.name));
        let mut body = door_lines(door, noise);
        if syslog_in_door && i == 0 {
            body.push(syslog(noise));
        }
        noise.shuffle(&mut body);
        lines.extend(body);
    }
    noise.file(&lines)
}

fn header(noise: &mut Noise, name: &str) -> String {
    let pad = noise.pick(&["", " ", "\t"]);
    format!("[{pad}{name}{pad}]")
}

fn syslog(noise: &mut Noise) -> String {
    if noise.chance(50) {
        let yes = noise.case("yes");
        noise.directive(&["UseSyslog"], &yes, true)
    } else {
        noise.case("UseSyslog")
    }
}

fn door_lines(door: &Door, noise: &mut Noise) -> Vec<String> {
    let mut out = Vec::new();
    match &door.sequence {
        SequenceSource::Fixed(hits) => {
            let seq = sequence(hits, noise);
            out.push(noise.directive(&["Sequence"], &seq, true));
        }
        SequenceSource::OneTime(path) => {
            let path = path_text(path);
            out.push(noise.directive(&["One_Time_Sequences"], &path, false));
        }
        SequenceSource::Hmac(h) => {
            let secret = path_text(&h.secret_file);
            out.push(noise.directive(&["HMAC_Secret_File"], &secret, false));
            let number = |noise: &mut Noise, n: u64| {
                if noise.chance(20) {
                    format!("00{n}")
                } else {
                    n.to_string()
                }
            };
            let length = number(noise, h.length as u64);
            out.push(noise.directive(&["HMAC_Length"], &length, true));
            let ports = format!("{}{}{}", h.ports.lo, noise.pick(&["-", " - "]), h.ports.hi);
            out.push(noise.directive(&["HMAC_Ports"], &ports, true));
            let protocols = noise.case(h.protocols.as_str());
            out.push(noise.directive(&["HMAC_Protocols"], &protocols, true));
            let step = number(noise, h.step);
            out.push(noise.directive(&["HMAC_Step"], &step, true));
            let skew = number(noise, h.skew);
            out.push(noise.directive(&["HMAC_Skew"], &skew, true));
        }
    }
    let timeout = noise.seconds(door.seq_timeout);
    out.push(noise.directive(&["Seq_Timeout", "Timeout"], &timeout, true));
    if !door.tcp_flags.is_any() {
        // knockd combines TCPFlags lines: the rule may be split over two.
        let rule = door.tcp_flags;
        let split = noise.chance(20) && !rule.set.is_empty() && !rule.clear.is_empty();
        let parts = if split {
            vec![
                FlagRule {
                    set: rule.set,
                    clear: TcpFlags::NONE,
                },
                FlagRule {
                    set: TcpFlags::NONE,
                    clear: rule.clear,
                },
            ]
        } else {
            vec![rule]
        };
        for part in parts {
            let flags = flag_rule(part, noise);
            out.push(noise.directive(&["TCPFlags"], &flags, true));
        }
    }
    let commands = [
        (&door.start_command, &["Start_Command", "Command"][..]),
        (&door.start_command_6, &["Start_Command_6", "Command_6"][..]),
        (&door.stop_command, &["Stop_Command"][..]),
        (&door.stop_command_6, &["Stop_Command_6"][..]),
    ];
    for (command, keys) in commands {
        if let Some(c) = command {
            out.push(noise.directive(keys, c, false));
        }
    }
    let cmd_timeout = noise.seconds(door.cmd_timeout);
    out.push(noise.directive(&["Cmd_Timeout"], &cmd_timeout, true));
    for (set, key) in [(&door.nft_set, "Nft_Set"), (&door.nft_set_6, "Nft_Set_6")] {
        if let Some(d) = set {
            let family = noise.case(d.set.family.name());
            let space = noise.pick(&[" ", "  ", "\t"]);
            let value = format!("{family}{space}{}{space}{}", d.set.table, d.set.set);
            out.push(noise.directive(&[key], &value, true));
        }
    }
    if let Some(target) = door.target {
        let target = target.to_string();
        let target = if noise.chance(30) {
            target.to_ascii_uppercase()
        } else {
            target
        };
        out.push(noise.directive(&["Target"], &target, true));
    }
    out
}

pub(crate) fn path_text(path: &Path) -> String {
    path.to_str().expect("parsed from text").to_string()
}

fn flag_rule(rule: FlagRule, noise: &mut Noise) -> String {
    let mut items: Vec<String> = Vec::new();
    for (flags, negated) in [(rule.set, false), (rule.clear, true)] {
        for name in flags.names() {
            let bang = if negated {
                noise.pick(&["!", "! "])
            } else {
                ""
            };
            items.push(format!("{bang}{}", noise.case(name)));
        }
    }
    noise.shuffle(&mut items);
    let sep = noise.pick(&[",", ", ", " ,"]);
    items.join(sep)
}

/// The hits in the grammar, canonical or in other spellings of the same hits.
fn sequence(hits: &[Hit], noise: &mut Noise) -> String {
    let items: Vec<String> = hits
        .iter()
        .map(|h| {
            let canonical = h.to_string();
            match noise.below(4) {
                // A bare port is TCP in knockd.conf.
                1 if h.proto == Proto::Tcp && h.flags == HitFlags::Plain => h.port.to_string(),
                2 => crate::hit::frame_spelling(h).unwrap_or(canonical),
                3 => match h.flags {
                    HitFlags::Exact(f) if f != TcpFlags::NONE => {
                        let names: Vec<String> = f.names().map(|n| noise.case(n)).collect();
                        format!("{}:{}:{}", h.port, noise.case("tcp"), names.join(" + "))
                    }
                    _ => canonical.to_ascii_uppercase(),
                },
                _ => canonical,
            }
        })
        .collect();
    items.join(noise.pick(&[",", ", ", " , "]))
}
