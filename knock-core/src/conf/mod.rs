//! Server configuration files, parsed into plain values (no I/O): knockd.conf, and
//! tportknockd's event blocks (see [`tportknockd`]). [`parse`] tells them apart.
//!
//! The knockd.conf syntax is knockd's: lines are trimmed; blank lines and lines starting
//! with `#` are skipped; `[name]` starts a section, `[options]` (any case) being the global
//! one; keys are case-insensitive and split from their value at the first `=`. Where knockd
//! silently coerces a bad value (`atoi("abc")` is port 0), this parser reports
//! `path:line: message`.
//!
//! Decisions where knockd is loose (docs/knockd-lite-matching.md has the reasons):
//! * timeouts accept millisecond fractions (`0.5`) and a unit `s` (`5s`);
//! * a ` # comment` after a value is ignored where the value cannot hold one (ports,
//!   numbers, flags, addresses, yes/no, the interface); paths and commands are kept as
//!   written, as knockd keeps them;
//! * a repeated directive replaces the earlier one, as in knockd, except `TCPFlags`, whose
//!   lines combine as in knockd; a door may name only one sequence source: `Sequence`,
//!   `One_Time_Sequences` or `HMAC_Secret_File`;
//! * two doors with the same name are kept (with a warning) when both have a `Sequence`;
//!   where the name is a key (one-time and HMAC doors) they are an error;
//! * `UseSyslog` (bare, or `= yes|no`) is accepted in any section, as knockd accepts the
//!   bare form anywhere;
//! * bytes that are not UTF-8 are accepted in comments; anywhere else they are an error
//!   that names the line and column.

mod lines;
mod nft;
pub mod tportknockd;
mod value;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hit::{FlagRule, Hit, HitError, HitErrorKind, Proto, parse_sequence};
use crate::hmac::{self, HmacParams, PortRange, Protocols};
use crate::text::{excerpt, quoted};

pub use nft::{MAX_NAME_LEN as NFT_MAX_NAME_LEN, NftFamily, NftSet};
pub use value::{seconds_text, tcp_flags_text};

pub const DEFAULT_PID_FILE: &str = "/var/run/knockd.pid";
pub const DEFAULT_INTERFACE: &str = "eth0";
pub const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HMAC_SKEW: u64 = 1;
/// Each packet is checked against `2 * skew + 1` live sequences, so the skew is bounded.
pub const MAX_HMAC_SKEW: u64 = 10;

/// The format a configuration file is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// knockd's `[name]` sections.
    Knockd,
    /// tportknockd's `<NAME> ... </NAME>` event blocks.
    Tportknockd,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Knockd => "knockd.conf",
            Format::Tportknockd => "tportknockd",
        })
    }
}

/// Something whoever runs a config should know, at one of its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The format it was written in.
    pub format: Format,
    /// `LogFile`: where knockd-format log lines go, if anywhere.
    pub log_file: Option<PathBuf>,
    /// The line of the `LogFile` directive that set `log_file`.
    pub log_file_line: Option<usize>,
    /// `PidFile`, default `/var/run/knockd.pid`.
    pub pid_file: PathBuf,
    /// `Interface`, default `eth0`. The command line's `-i` wins over it.
    pub interface: String,
    /// `UseSyslog`.
    pub use_syslog: bool,
    /// The doors in file order.
    pub doors: Vec<Door>,
    /// How `[options]` values were read where that is not obvious (a comment ignored).
    pub notes: Vec<Note>,
    /// What may not mean what its author meant: two doors with one name, a path with ` #`.
    pub warnings: Vec<Note>,
}

impl Config {
    fn empty(format: Format) -> Config {
        Config {
            format,
            log_file: None,
            log_file_line: None,
            pid_file: PathBuf::from(DEFAULT_PID_FILE),
            interface: DEFAULT_INTERFACE.to_string(),
            use_syslog: false,
            doors: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The first door with this name.
    pub fn door(&self, name: &str) -> Option<&Door> {
        self.doors.iter().find(|d| d.name == name)
    }
}

/// One door (knockd calls it a knock/event): a sequence and what to run when it is knocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Door {
    pub name: String,
    /// Line of the `[name]` header.
    pub line: usize,
    pub sequence: SequenceSource,
    /// `Seq_Timeout` / `Timeout`: bound on the whole sequence, from the first knock.
    pub seq_timeout: Duration,
    /// `TCPFlags`: which TCP packets this door pays attention to.
    pub tcp_flags: FlagRule,
    /// `Start_Command` / `Command`, verbatim (with `%IP%`).
    pub start_command: Option<String>,
    /// `Start_Command_6` / `Command_6`. `None` falls back to `start_command`; an empty value
    /// disables the command for IPv6.
    pub start_command_6: Option<String>,
    /// `Cmd_Timeout`: delay between the start command finishing and the stop command.
    pub cmd_timeout: Duration,
    pub stop_command: Option<String>,
    /// `Stop_Command_6`, with the same fallback as `start_command_6`.
    pub stop_command_6: Option<String>,
    /// `Target`: match knocks sent to this address instead of the interface's own.
    pub target: Option<IpAddr>,
    /// How this door's values were read where that is not obvious, for `--check`.
    pub notes: Vec<Note>,
    /// `Nft_Set`: the nftables set IPv4 knockers are added to, for `Cmd_Timeout`.
    pub nft_set: Option<SetDirective>,
    /// `Nft_Set_6`: the set for IPv6 knockers. No fallback: a set holds one family.
    pub nft_set_6: Option<SetDirective>,
}

/// An `Nft_Set` or `Nft_Set_6` directive: the set, and the line that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDirective {
    pub set: NftSet,
    pub line: usize,
}

impl Door {
    fn new(name: &str, line: usize) -> Door {
        Door {
            name: name.to_string(),
            line,
            sequence: SequenceSource::Fixed(Vec::new()),
            seq_timeout: DEFAULT_SEQ_TIMEOUT,
            tcp_flags: FlagRule::ANY,
            start_command: None,
            start_command_6: None,
            cmd_timeout: DEFAULT_CMD_TIMEOUT,
            stop_command: None,
            stop_command_6: None,
            target: None,
            notes: Vec::new(),
            nft_set: None,
            nft_set_6: None,
        }
    }

    /// The set a knocker from IPv4 or IPv6 is added to, if the door has one for that family.
    pub fn nft_set_for(&self, ipv6: bool) -> Option<&SetDirective> {
        if ipv6 {
            self.nft_set_6.as_ref()
        } else {
            self.nft_set.as_ref()
        }
    }

    /// The start command for a knock from IPv4 or IPv6, after the `_6` fallback. `None`
    /// when there is no command or it is empty.
    pub fn start_command_for(&self, ipv6: bool) -> Option<&str> {
        pick(&self.start_command, &self.start_command_6, ipv6)
    }

    /// The stop command for a knock from IPv4 or IPv6, after the `_6` fallback.
    pub fn stop_command_for(&self, ipv6: bool) -> Option<&str> {
        pick(&self.stop_command, &self.stop_command_6, ipv6)
    }

    /// Whether two doors are defined identically, wherever they sit in their files.
    pub fn same_definition(&self, other: &Door) -> bool {
        let set = |s: &Option<SetDirective>| s.as_ref().map(|d| d.set.clone());
        let Door {
            name,
            line: _,
            sequence,
            seq_timeout,
            tcp_flags,
            start_command,
            start_command_6,
            cmd_timeout,
            stop_command,
            stop_command_6,
            target,
            notes: _,
            nft_set,
            nft_set_6,
        } = self;
        *name == other.name
            && *sequence == other.sequence
            && *seq_timeout == other.seq_timeout
            && *tcp_flags == other.tcp_flags
            && *start_command == other.start_command
            && *start_command_6 == other.start_command_6
            && *cmd_timeout == other.cmd_timeout
            && *stop_command == other.stop_command
            && *stop_command_6 == other.stop_command_6
            && *target == other.target
            && set(nft_set) == set(&other.nft_set)
            && set(nft_set_6) == set(&other.nft_set_6)
    }

    /// Whether the door's name keys state that must not be shared: a one-time list's
    /// position, an HMAC door's label and used counters.
    pub fn name_is_a_key(&self) -> bool {
        !matches!(self.sequence, SequenceSource::Fixed(_))
    }
}

fn pick<'a>(v4: &'a Option<String>, v6: &'a Option<String>, ipv6: bool) -> Option<&'a str> {
    let chosen = if ipv6 {
        v6.as_ref().or(v4.as_ref())
    } else {
        v4.as_ref()
    };
    chosen.map(String::as_str).filter(|c| !c.is_empty())
}

/// Where a door's sequence comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SequenceSource {
    /// `Sequence`, in the hit grammar.
    Fixed(Vec<Hit>),
    /// `One_Time_Sequences`: a list file in knockd's format.
    OneTime(PathBuf),
    /// `HMAC_Secret_File` and friends: knock-hmac-v1 sequences.
    Hmac(HmacDoor),
}

/// The server half of a knock-hmac-v1 door. The door's name is the label `D`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacDoor {
    /// `HMAC_Secret_File`: the secret is its first line.
    pub secret_file: PathBuf,
    /// `HMAC_Length`, default 4.
    pub length: usize,
    /// `HMAC_Ports`, default 1024-65535.
    pub ports: PortRange,
    /// `HMAC_Protocols`, default tcp.
    pub protocols: Protocols,
    /// `HMAC_Step` in seconds, default 30.
    pub step: u64,
    /// `HMAC_Skew` in steps, default 1: counters `c - skew ..= c + skew` are live.
    pub skew: u64,
}

impl HmacDoor {
    /// The derivation parameters for the door named `door`. TCP hits are plain: the door's
    /// `TCPFlags` decides which TCP packets count.
    pub fn params(&self, door: &str) -> HmacParams {
        HmacParams {
            door: door.to_string(),
            length: self.length,
            ports: self.ports,
            protocols: self.protocols,
            step: self.step,
            flags: None,
        }
    }
}

/// A configuration error: `path:line: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct ConfError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Parses a configuration file in either format (see [`detect`]). `path` is only used in
/// messages. The text is bytes: comments may hold bytes that are not UTF-8.
pub fn parse<T: AsRef<[u8]> + ?Sized>(text: &T, path: &Path) -> Result<Config, ConfError> {
    let text = text.as_ref();
    match detect(text) {
        Format::Knockd => Parser::new(path).run(text),
        Format::Tportknockd => tportknockd::parse(text, path),
    }
}

/// The format of a configuration file: tportknockd's when its first line that is neither
/// blank nor a comment opens an event block (`<NAME>`), else knockd.conf.
pub fn detect(text: &[u8]) -> Format {
    match lines::significant(text).next() {
        Some(line) if line.bytes.starts_with(b"<") => Format::Tportknockd,
        _ => Format::Knockd,
    }
}

/// The directives, with their canonical spelling for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    LogFile,
    PidFile,
    Interface,
    UseSyslog,
    Sequence,
    OneTimeSequences,
    SeqTimeout,
    TcpFlags,
    StartCommand,
    StartCommand6,
    CmdTimeout,
    StopCommand,
    StopCommand6,
    Target,
    HmacSecretFile,
    HmacLength,
    HmacPorts,
    HmacProtocols,
    HmacStep,
    HmacSkew,
    NftSet,
    NftSet6,
}

impl Key {
    fn lookup(key: &str) -> Option<Key> {
        let k = key.to_ascii_uppercase();
        Some(match k.as_str() {
            "LOGFILE" => Key::LogFile,
            "PIDFILE" => Key::PidFile,
            "INTERFACE" => Key::Interface,
            "USESYSLOG" => Key::UseSyslog,
            "SEQUENCE" => Key::Sequence,
            "ONE_TIME_SEQUENCES" => Key::OneTimeSequences,
            "SEQ_TIMEOUT" | "TIMEOUT" => Key::SeqTimeout,
            "TCPFLAGS" => Key::TcpFlags,
            "START_COMMAND" | "COMMAND" => Key::StartCommand,
            "START_COMMAND_6" | "COMMAND_6" => Key::StartCommand6,
            "CMD_TIMEOUT" => Key::CmdTimeout,
            "STOP_COMMAND" => Key::StopCommand,
            "STOP_COMMAND_6" => Key::StopCommand6,
            "TARGET" => Key::Target,
            "HMAC_SECRET_FILE" => Key::HmacSecretFile,
            "HMAC_LENGTH" => Key::HmacLength,
            "HMAC_PORTS" => Key::HmacPorts,
            "HMAC_PROTOCOLS" => Key::HmacProtocols,
            "HMAC_STEP" => Key::HmacStep,
            "HMAC_SKEW" => Key::HmacSkew,
            "NFT_SET" => Key::NftSet,
            "NFT_SET_6" => Key::NftSet6,
            _ => return None,
        })
    }

    fn is_global(self) -> bool {
        matches!(
            self,
            Key::LogFile | Key::PidFile | Key::Interface | Key::UseSyslog
        )
    }

    fn is_hmac_option(self) -> bool {
        matches!(
            self,
            Key::HmacLength | Key::HmacPorts | Key::HmacProtocols | Key::HmacStep | Key::HmacSkew
        )
    }

    /// Values that cannot hold ` #` (numbers, ports, flags, addresses, yes/no, interface
    /// names), so a ` # comment` after them is a comment. knockd's `atoi` reads
    /// `9000 # open` as 9000 by accident; tutorials write configs like that.
    fn takes_comment(self) -> bool {
        !(self.is_path() || self.is_command())
    }

    /// Kept as written, ` #` and all, as knockd keeps them.
    fn is_path(self) -> bool {
        matches!(
            self,
            Key::LogFile | Key::PidFile | Key::OneTimeSequences | Key::HmacSecretFile
        )
    }

    /// Passed to the shell as written: there a ` #` starts a comment anyway.
    fn is_command(self) -> bool {
        matches!(
            self,
            Key::StartCommand | Key::StartCommand6 | Key::StopCommand | Key::StopCommand6
        )
    }
}

enum Section {
    None,
    Options,
    Door,
}

/// A door being read, with the line of each sequence-related directive for later checks.
struct DoorDraft {
    door: Door,
    /// The directive that gave the sequence, and its line. A fixed or one-time sequence is
    /// in `door.sequence` already; an HMAC one is built from `hmac` at the end, because its
    /// options may follow the secret file line.
    source: Option<(Key, usize)>,
    hmac: HmacDoor,
    /// First HMAC option seen, for "needs HMAC_Secret_File".
    hmac_option: Option<(String, usize)>,
    /// Line of each flag's first mention in `TCPFlags`, for messages about combined lines.
    flag_lines: Vec<(FlagRule, usize)>,
}

struct Parser<'p> {
    path: &'p Path,
    line: usize,
    config: Config,
    drafts: Vec<DoorDraft>,
    section: Section,
}

impl<'p> Parser<'p> {
    fn new(path: &'p Path) -> Self {
        Parser {
            path,
            line: 0,
            config: Config::empty(Format::Knockd),
            drafts: Vec::new(),
            section: Section::None,
        }
    }

    fn err(&self, line: usize, message: impl fmt::Display) -> ConfError {
        ConfError {
            path: self.path.to_path_buf(),
            line,
            message: message.to_string(),
        }
    }

    fn run(mut self, text: &[u8]) -> Result<Config, ConfError> {
        for line in lines::significant(text) {
            self.line = line.number;
            if line.bytes[0] == b'[' {
                let header = lines::text(line.bytes, 0).map_err(|m| self.err(self.line, m))?;
                self.section_header(header)?;
            } else {
                self.directive(line.bytes)?;
            }
        }
        let drafts = std::mem::take(&mut self.drafts);
        for draft in drafts {
            let door = self.finish_door(draft)?;
            self.config.doors.push(door);
        }
        self.same_names()?;
        Ok(self.config)
    }

    fn section_header(&mut self, line: &str) -> Result<(), ConfError> {
        let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            if let Some(end) = line.find(']') {
                let (header, rest) = line.split_at(end + 1);
                // Before the message quotes the header, which it does by its trimmed name.
                let name = header[1..end].trim();
                check_name("section", name).map_err(|m| self.err(self.line, m))?;
                return Err(self.err(
                    self.line,
                    format_args!(
                        "text after the section header [{}]: {:?} (put a comment on a \
                         line of its own: # starts a comment only at the start of a line)",
                        excerpt(name),
                        quoted(rest.trim())
                    ),
                ));
            }
            return Err(self.err(
                self.line,
                format_args!(
                    "unterminated section header {} (expected [name])",
                    quoted(line)
                ),
            ));
        };
        let name = inner.trim();
        if name.is_empty() {
            return Err(self.err(self.line, "empty section name"));
        }
        check_name("section", name).map_err(|m| self.err(self.line, m))?;
        if name.eq_ignore_ascii_case("options") {
            self.section = Section::Options;
            return Ok(());
        }
        self.drafts.push(DoorDraft {
            door: Door::new(name, self.line),
            source: None,
            hmac: HmacDoor {
                secret_file: PathBuf::new(),
                length: hmac::DEFAULT_LENGTH,
                ports: hmac::DEFAULT_PORTS,
                protocols: Protocols::Tcp,
                step: hmac::DEFAULT_STEP,
                skew: DEFAULT_HMAC_SKEW,
            },
            hmac_option: None,
            flag_lines: Vec::new(),
        });
        self.section = Section::Door;
        Ok(())
    }

    fn directive(&mut self, line: &[u8]) -> Result<(), ConfError> {
        let (key_bytes, value) = match line.iter().position(|&b| b == b'=') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        let key_text =
            lines::text(key_bytes.trim_ascii(), 0).map_err(|m| self.err(self.line, m))?;
        if matches!(self.section, Section::None) {
            return Err(self.err(
                self.line,
                format_args!(
                    "{} is outside any section (put it under [options] or a [door] header)",
                    quoted(key_text)
                ),
            ));
        }
        let key = Key::lookup(key_text);
        let Some(value) = value else {
            return match key {
                Some(Key::UseSyslog) => {
                    self.config.use_syslog = true;
                    Ok(())
                }
                Some(_) => Err(self.err(
                    self.line,
                    format_args!("{key_text} needs a value (write {key_text} = ...)"),
                )),
                None => Err(self.err(
                    self.line,
                    format_args!(
                        "expected \"key = value\" or \"[section]\", found {}",
                        quoted(key_text)
                    ),
                )),
            };
        };
        let Some(key) = key else {
            let place = match self.section {
                Section::Door => format!("door [{}]", self.current_name()),
                _ => "[options]".to_string(),
            };
            return Err(self.err(
                self.line,
                format_args!("unknown directive {} in {place}", quoted(key_text)),
            ));
        };
        let value = value.trim_ascii();
        // Where the value starts in the line, for the column of a byte that is not UTF-8.
        let offset = value.as_ptr() as usize - line.as_ptr() as usize;
        let (value, comment) = if key.takes_comment() {
            lines::split_comment(value)
        } else {
            (value, None)
        };
        let value = lines::text(value, offset)
            .map_err(|m| self.err(self.line, format_args!("{key_text}: {m}")))?;
        let mut notes = Vec::new();
        if let Some(comment) = comment {
            notes.push(self.note(format!(
                "{key_text}: ignored the comment {:?}",
                quoted(&String::from_utf8_lossy(comment))
            )));
        }
        if key.is_path() && lines::split_comment(value.as_bytes()).1.is_some() {
            let warning = self.note(format!(
                "{key_text}: the path {:?} holds \" #\": all of it is the path, as in \
                 knockd (put a comment on a line of its own)",
                quoted(value)
            ));
            self.config.warnings.push(warning);
        }
        let bad = |message: String| self.err(self.line, format_args!("{key_text}: {message}"));
        if key == Key::UseSyslog {
            self.config.use_syslog = value::yes_no(value).map_err(|m| {
                bad(format!(
                    "{m} (or write UseSyslog alone, the only form knockd 0.8 reads, to log to \
                     syslog)"
                ))
            })?;
            self.config.notes.extend(notes);
            return Ok(());
        }
        match self.section {
            Section::Options if key.is_global() => {
                self.config.notes.extend(notes);
                self.global(key, key_text, value)
            }
            Section::Options => Err(self.err(
                self.line,
                format_args!("{key_text} belongs in a door section, not in [options]"),
            )),
            Section::Door if key.is_global() => Err(self.err(
                self.line,
                format_args!(
                    "{key_text} belongs in [options], not in door [{}]",
                    self.current_name()
                ),
            )),
            _ => {
                self.door_directive(key, key_text, value)?;
                let draft = self.drafts.last_mut().expect("a door section is open");
                draft.door.notes.extend(notes);
                Ok(())
            }
        }
    }

    fn note(&self, message: String) -> Note {
        Note {
            line: self.line,
            message,
        }
    }

    fn current_name(&self) -> &str {
        self.drafts.last().map_or("", |d| d.door.name.as_str())
    }

    fn global(&mut self, key: Key, key_text: &str, value: &str) -> Result<(), ConfError> {
        if value.is_empty() {
            return Err(self.err(self.line, format_args!("{key_text}: empty value")));
        }
        match key {
            Key::LogFile => {
                self.config.log_file = Some(PathBuf::from(value));
                self.config.log_file_line = Some(self.line);
            }
            Key::PidFile => self.config.pid_file = PathBuf::from(value),
            Key::Interface => self.config.interface = value.to_string(),
            _ => unreachable!("only global keys reach here"),
        }
        Ok(())
    }

    fn door_directive(&mut self, key: Key, key_text: &str, value: &str) -> Result<(), ConfError> {
        let line = self.line;
        let path = self.path;
        let bad = |message: String| ConfError {
            path: path.to_path_buf(),
            line,
            message: format!("{key_text}: {message}"),
        };
        let draft = self.drafts.last_mut().expect("a door section is open");
        let door = &mut draft.door;
        let non_empty = |v: &str| {
            if v.is_empty() {
                Err(bad("empty value".to_string()))
            } else {
                Ok(v.to_string())
            }
        };
        match key {
            Key::Sequence | Key::OneTimeSequences | Key::HmacSecretFile => {
                match key {
                    Key::Sequence => {
                        door.sequence = SequenceSource::Fixed(
                            parse_sequence(value, Proto::Tcp)
                                .map_err(|e| bad(sequence_error(&e)))?,
                        )
                    }
                    Key::OneTimeSequences => {
                        door.sequence = SequenceSource::OneTime(non_empty(value)?.into())
                    }
                    _ => draft.hmac.secret_file = non_empty(value)?.into(),
                }
                if let Some((other, other_line)) = &draft.source
                    && *other != key
                {
                    return Err(bad(format!(
                        "door [{}] already has a sequence from {} on line {other_line} \
                         (give exactly one of Sequence, One_Time_Sequences or HMAC_Secret_File)",
                        door.name,
                        key_name(*other)
                    )));
                }
                draft.source = Some((key, line));
            }
            Key::SeqTimeout => {
                door.seq_timeout = value::seconds(value).map_err(bad)?;
                door.notes
                    .extend(unit_note(key_text, value, door.seq_timeout, line));
            }
            Key::CmdTimeout => {
                door.cmd_timeout = value::seconds(value).map_err(bad)?;
                door.notes
                    .extend(unit_note(key_text, value, door.cmd_timeout, line));
            }
            Key::TcpFlags => {
                let rule = value::tcp_flags(value).map_err(bad)?;
                combine_flags(draft, rule, line).map_err(bad)?;
                if draft.flag_lines.len() > 1 {
                    let first = draft.flag_lines[0].1;
                    let combined = tcp_flags_text(draft.door.tcp_flags);
                    draft.door.notes.push(Note {
                        line,
                        message: format!(
                            "{key_text}: combined with line {first}, as knockd does: {combined}"
                        ),
                    });
                }
            }
            Key::StartCommand => door.start_command = Some(value.to_string()),
            Key::StartCommand6 => door.start_command_6 = Some(value.to_string()),
            Key::StopCommand => door.stop_command = Some(value.to_string()),
            Key::StopCommand6 => door.stop_command_6 = Some(value.to_string()),
            Key::Target => {
                door.target = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("{:?} is not an IP address", quoted(value))))?,
                )
            }
            Key::HmacLength => {
                draft.hmac.length =
                    value::integer(value, 1, hmac::MAX_LENGTH as u64).map_err(bad)? as usize
            }
            Key::HmacPorts => draft.hmac.ports = value.parse().map_err(bad)?,
            Key::HmacProtocols => draft.hmac.protocols = value.parse().map_err(bad)?,
            Key::HmacStep => {
                draft.hmac.step = value::integer(value, 1, u64::from(u32::MAX)).map_err(bad)?
            }
            Key::HmacSkew => {
                draft.hmac.skew = value::integer(value, 0, MAX_HMAC_SKEW).map_err(bad)?
            }
            Key::NftSet | Key::NftSet6 => {
                let set = nft::parse_set(value).map_err(bad)?;
                let slot = if key == Key::NftSet {
                    &mut door.nft_set
                } else {
                    &mut door.nft_set_6
                };
                *slot = Some(SetDirective { set, line });
            }
            Key::LogFile | Key::PidFile | Key::Interface | Key::UseSyslog => {
                unreachable!("global keys are handled by the caller")
            }
        }
        if key.is_hmac_option() && draft.hmac_option.is_none() {
            draft.hmac_option = Some((key_text.to_string(), line));
        }
        Ok(())
    }

    fn finish_door(&self, draft: DoorDraft) -> Result<Door, ConfError> {
        let DoorDraft {
            mut door,
            source,
            hmac,
            hmac_option,
            flag_lines: _,
        } = draft;
        let Some((key, _)) = source else {
            return Err(self.err(
                door.line,
                format_args!(
                    "door [{}] has no sequence (give exactly one of Sequence, \
                     One_Time_Sequences or HMAC_Secret_File)",
                    door.name
                ),
            ));
        };
        // The kernel reads an element timeout of 0 as "never expires".
        if door.cmd_timeout.is_zero()
            && let Some(d) = door.nft_set.as_ref().or(door.nft_set_6.as_ref())
        {
            return Err(self.err(
                d.line,
                format_args!(
                    "door [{}]: an nftables door needs a Cmd_Timeout above 0 \
                     (it is the element's timeout, and the kernel keeps an element \
                     with timeout 0 for ever)",
                    door.name
                ),
            ));
        }
        if key == Key::HmacSecretFile {
            if let Err(e) = hmac.params(&door.name).validate() {
                return Err(self.err(door.line, format_args!("door [{}]: {e}", door.name)));
            }
            door.sequence = SequenceSource::Hmac(hmac);
        } else if let Some((key_text, line)) = hmac_option {
            return Err(self.err(
                line,
                format_args!("{key_text} needs HMAC_Secret_File in door [{}]", door.name),
            ));
        }
        Ok(door)
    }

    /// Two doors with one name: knockd keeps both, and so does this parser, with a
    /// warning, unless the name keys state (see [`Door::name_is_a_key`]).
    /// Linear in the number of doors: a map from each name to its first door (a config
    /// with 100,000 doors took 100 s with a search per door, and blocked capture on SIGHUP).
    fn same_names(&mut self) -> Result<(), ConfError> {
        let doors = &self.config.doors;
        let mut first_of: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(doors.len());
        for (i, door) in doors.iter().enumerate() {
            let first = &doors[*first_of.entry(door.name.as_str()).or_insert(i)];
            if std::ptr::eq(first, door) {
                continue;
            }
            if door.name_is_a_key() || first.name_is_a_key() {
                return Err(self.err(
                    door.line,
                    format_args!(
                        "door [{}] has the same name as the door on line {}; a one-time or \
                         HMAC door's name keys its state (the list's progress, the HMAC label \
                         and used counters), so give each door its own name",
                        door.name, first.line
                    ),
                ));
            }
            let warning = Note {
                line: door.line,
                message: format!(
                    "door [{}] has the same name as the door on line {}: both are kept, as \
                     knockd keeps them, and log lines name both [{}] (rename one to tell them \
                     apart)",
                    door.name, first.line, door.name
                ),
            };
            self.config.warnings.push(warning);
        }
        Ok(())
    }
}

/// The longest door name: names go into every log line and message about their door, which
/// must stay short whatever a file holds.
pub const MAX_NAME_CHARS: usize = 128;

/// A door's name goes into every log line and message about it, where a control character
/// (a terminal escape, a newline in a syslog field) would forge output and a long name
/// would make every line long: both refused in either format. `what` says what the file
/// calls it.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.contains(char::is_control) {
        return Err(format!(
            "{what} name {:?} has a control character",
            quoted(name)
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "{what} name {:?} is {chars} characters long (at most {MAX_NAME_CHARS})",
            quoted(name)
        ));
    }
    Ok(())
}

/// Adds one `TCPFlags` line to a door's rule. knockd keeps each flag's state across lines,
/// so `syn` then `!ack` means SYN set and ACK clear. A flag required on one line and
/// excluded on another is an error, as `syn,!syn` on one line is.
fn combine_flags(draft: &mut DoorDraft, rule: FlagRule, line: usize) -> Result<(), String> {
    let old = draft.door.tcp_flags;
    for &(name, flag) in crate::hit::TcpFlags::NAMES.iter() {
        let (required_here, excluded_here) = (rule.set.contains(flag), rule.clear.contains(flag));
        let conflict = (required_here && old.clear.contains(flag))
            || (excluded_here && old.set.contains(flag));
        if conflict {
            let earlier = draft
                .flag_lines
                .iter()
                .find(|(r, _)| r.set.contains(flag) || r.clear.contains(flag))
                .map_or(line, |&(_, l)| l);
            let (here, there) = if required_here {
                ("required", "excluded")
            } else {
                ("excluded", "required")
            };
            return Err(format!(
                "{name} is {here} here but {there} on line {earlier}"
            ));
        }
    }
    draft.door.tcp_flags = FlagRule {
        set: old.set | rule.set,
        clear: old.clear | rule.clear,
    };
    draft.flag_lines.push((rule, line));
    Ok(())
}

/// `seq_timeout = 5s` is read as 5 seconds: say so in `--check`.
fn unit_note(key_text: &str, value: &str, read: Duration, line: usize) -> Option<Note> {
    value.ends_with('s').then(|| Note {
        line,
        message: format!(
            "{key_text}: {:?} read as {}",
            quoted(value),
            seconds_text(read)
        ),
    })
}

/// A `Sequence` error in the words of knockd's manual, which calls each item a port.
fn sequence_error(e: &HitError) -> String {
    let item = &e.item;
    match &e.kind {
        HitErrorKind::Empty => "empty port (a stray or trailing comma?)".to_string(),
        HitErrorKind::NotANumber(port) if item.contains('#') => format!(
            "port {:?} is not a number (expected 1-65535; # starts a comment only at the \
             start of a line or after a space)",
            quoted(port)
        ),
        HitErrorKind::NotANumber(_) | HitErrorKind::Negative(_) | HitErrorKind::OutOfRange(_)
            if !item.contains(':') =>
        {
            e.kind.to_string()
        }
        kind => format!("port {:?}: {kind}", quoted(item)),
    }
}

fn key_name(key: Key) -> &'static str {
    match key {
        Key::Sequence => "Sequence",
        Key::OneTimeSequences => "One_Time_Sequences",
        Key::HmacSecretFile => "HMAC_Secret_File",
        _ => "another directive",
    }
}

#[cfg(test)]
mod tests;
