//! knockd.conf: the configuration file knockd 0.8 reads, parsed into plain values (no I/O).
//!
//! The syntax is knockd's: lines are trimmed; blank lines and lines starting with `#` are
//! skipped; `[name]` starts a section, `[options]` (any case) being the global one; keys are
//! case-insensitive and split from their value at the first `=`. Where knockd silently
//! coerces a bad value (`atoi("abc")` is port 0), this parser reports `path:line: message`.
//!
//! Decisions where knockd is loose:
//! * timeouts accept millisecond fractions (`0.5`), where knockd truncates to whole seconds;
//! * a repeated directive replaces the earlier one (as in knockd), but a door may name only
//!   one sequence source: `Sequence`, `One_Time_Sequences` or `HMAC_Secret_File`;
//! * two doors with the same name are an error: names identify doors in logs, one-time
//!   files, HMAC labels and reloads;
//! * `UseSyslog` (bare, or `= yes|no`) is accepted in any section, as knockd accepts the bare
//!   form anywhere.

mod value;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hit::{FlagRule, Hit, Proto, parse_sequence};
use crate::hmac::{self, HmacParams, PortRange, Protocols};

pub const DEFAULT_PID_FILE: &str = "/var/run/knockd.pid";
pub const DEFAULT_INTERFACE: &str = "eth0";
pub const DEFAULT_SEQ_TIMEOUT: Duration = Duration::from_secs(25);
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HMAC_SKEW: u64 = 1;
/// Each packet is checked against `2 * skew + 1` live sequences, so the skew is bounded.
pub const MAX_HMAC_SKEW: u64 = 10;

/// A whole knockd.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `LogFile`: where knockd-format log lines go, if anywhere.
    pub log_file: Option<PathBuf>,
    /// `PidFile`, default `/var/run/knockd.pid`.
    pub pid_file: PathBuf,
    /// `Interface`, default `eth0`. The command line's `-i` wins over it.
    pub interface: String,
    /// `UseSyslog`.
    pub use_syslog: bool,
    /// The doors in file order.
    pub doors: Vec<Door>,
}

impl Config {
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
}

impl Door {
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

/// Parses a knockd.conf. `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfError> {
    Parser::new(path).run(text)
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
            config: Config {
                log_file: None,
                pid_file: PathBuf::from(DEFAULT_PID_FILE),
                interface: DEFAULT_INTERFACE.to_string(),
                use_syslog: false,
                doors: Vec::new(),
            },
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

    fn run(mut self, text: &str) -> Result<Config, ConfError> {
        // Editors on some systems start files with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, raw) in text.lines().enumerate() {
            self.line = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                self.section_header(line)?;
            } else {
                self.directive(line)?;
            }
        }
        let drafts = std::mem::take(&mut self.drafts);
        for draft in drafts {
            let door = self.finish_door(draft)?;
            self.config.doors.push(door);
        }
        Ok(self.config)
    }

    fn section_header(&mut self, line: &str) -> Result<(), ConfError> {
        let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            return Err(self.err(
                self.line,
                format_args!("unterminated section header {line:?} (expected [name])"),
            ));
        };
        let name = inner.trim();
        if name.is_empty() {
            return Err(self.err(self.line, "empty section name"));
        }
        if name.eq_ignore_ascii_case("options") {
            self.section = Section::Options;
            return Ok(());
        }
        if let Some(first) = self.drafts.iter().find(|d| d.door.name == name) {
            return Err(self.err(
                self.line,
                format_args!(
                    "duplicate door [{name}] (first defined on line {})",
                    first.door.line
                ),
            ));
        }
        self.drafts.push(DoorDraft {
            door: Door {
                name: name.to_string(),
                line: self.line,
                sequence: SequenceSource::Fixed(Vec::new()),
                seq_timeout: DEFAULT_SEQ_TIMEOUT,
                tcp_flags: FlagRule::ANY,
                start_command: None,
                start_command_6: None,
                cmd_timeout: DEFAULT_CMD_TIMEOUT,
                stop_command: None,
                stop_command_6: None,
                target: None,
            },
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
        });
        self.section = Section::Door;
        Ok(())
    }

    fn directive(&mut self, line: &str) -> Result<(), ConfError> {
        let (key_text, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (line, None),
        };
        if matches!(self.section, Section::None) {
            return Err(self.err(
                self.line,
                format_args!(
                    "{key_text:?} is outside any section (put it under [options] or a [door] header)"
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
                    format_args!("expected \"key = value\" or \"[section]\", found {line:?}"),
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
                format_args!("unknown directive {key_text:?} in {place}"),
            ));
        };
        let bad = |message: String| self.err(self.line, format_args!("{key_text}: {message}"));
        if key == Key::UseSyslog {
            self.config.use_syslog = value::yes_no(value).map_err(bad)?;
            return Ok(());
        }
        match self.section {
            Section::Options if key.is_global() => self.global(key, key_text, value),
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
            _ => self.door_directive(key, key_text, value),
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
            Key::LogFile => self.config.log_file = Some(PathBuf::from(value)),
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
                            parse_sequence(value, Proto::Tcp).map_err(|e| bad(e.to_string()))?,
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
            Key::SeqTimeout => door.seq_timeout = value::seconds(value).map_err(bad)?,
            Key::CmdTimeout => door.cmd_timeout = value::seconds(value).map_err(bad)?,
            Key::TcpFlags => door.tcp_flags = value::tcp_flags(value).map_err(bad)?,
            Key::StartCommand => door.start_command = Some(value.to_string()),
            Key::StartCommand6 => door.start_command_6 = Some(value.to_string()),
            Key::StopCommand => door.stop_command = Some(value.to_string()),
            Key::StopCommand6 => door.stop_command_6 = Some(value.to_string()),
            Key::Target => {
                door.target = Some(
                    value
                        .parse()
                        .map_err(|_| bad(format!("{value:?} is not an IP address")))?,
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
