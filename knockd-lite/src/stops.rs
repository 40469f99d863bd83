//! The stop journal: stop commands still due, kept on disk so that a crash between a start
//! command and its stop (kill -9, OOM, a panic, a power cut) costs a late stop, never a door
//! left open. The file is replaced atomically (`knock_core::files::write_atomic`, mode 0600)
//! whenever a stop is scheduled or has run, and removed when nothing is pending.
//!
//! Times are wall-clock milliseconds, the only clock that means anything after a restart;
//! the server turns them back into monotonic deadlines when it starts.
//!
//! A journal that cannot be read is set aside (renamed `NAME.corrupt-<unix time>`) and
//! reported, never a reason not to start.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use knock_core::files::{self, Overwrite};
use knock_core::text::quoted;

use crate::hmac_state::StateError;

const HEADER: &str =
    "# knockd-lite pending stop commands, v1: DUE_MS<TAB>DELAY_MS<TAB>ADDRESS<TAB>DOOR<TAB>COMMAND";

/// One stop command still to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub door: String,
    /// The numeric address `%IP%` stands for: the only thing ever put into the command.
    pub src: IpAddr,
    /// The stop command as the door had it when its start ran, with `%IP%` still in it.
    pub template: String,
    /// When it is due, wall-clock ms since the epoch.
    pub due_ms: u64,
    /// The door's Cmd_Timeout in ms: after a restart a stop waits at most this long, so
    /// a clock stepped back cannot hold it for hours.
    pub delay_ms: u64,
}

/// The pending stops of one config and their file.
#[derive(Debug)]
pub(crate) struct StopJournal {
    path: PathBuf,
    /// By the engine's id of the start command (or of the restored stop).
    entries: BTreeMap<u64, Pending>,
}

/// What [`StopJournal::open`] found.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) journal: StopJournal,
    /// The stops that were pending when the last process ended, to take over.
    pub(crate) pending: Vec<Pending>,
    /// A journal that could not be read: what was wrong, and where it was moved.
    pub(crate) problem: Option<String>,
}

impl StopJournal {
    /// Reads the journal at `path`; `now_s` names a corrupt one set aside.
    pub(crate) fn open(path: &Path, now_s: u64) -> Opened {
        let journal = StopJournal {
            path: path.to_path_buf(),
            entries: BTreeMap::new(),
        };
        match read(path) {
            Ok(pending) => Opened {
                journal,
                pending,
                problem: None,
            },
            Err(e) => {
                let aside = aside_name(path, now_s);
                let problem = match fs::rename(path, &aside) {
                    Ok(()) => format!(
                        "stop journal {e}; set aside as {}, its stops will not run",
                        aside.display()
                    ),
                    Err(r) => format!(
                        "stop journal {e}; could not set it aside as {}: {r}",
                        aside.display()
                    ),
                };
                Opened {
                    journal,
                    pending: Vec::new(),
                    problem: Some(problem),
                }
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `key` is in the journal.
    pub(crate) fn has(&self, key: u64) -> bool {
        self.entries.contains_key(&key)
    }

    /// Records (or updates) the pending stop `key` and writes the file.
    pub(crate) fn put(&mut self, key: u64, stop: Pending) -> Result<(), StateError> {
        let old = self.entries.insert(key, stop);
        self.save().inspect_err(|_| {
            match old {
                Some(old) => self.entries.insert(key, old),
                None => self.entries.remove(&key),
            };
        })
    }

    /// Takes over a stop already in the file (after a restart), under a new key.
    pub(crate) fn adopt(&mut self, key: u64, stop: Pending) {
        self.entries.insert(key, stop);
    }

    /// The stop `key` has run: drops it and writes the file. Unknown keys are ignored.
    pub(crate) fn remove(&mut self, key: u64) -> Result<(), StateError> {
        if self.entries.remove(&key).is_none() {
            return Ok(());
        }
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        if self.entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(StateError::Io {
                    op: "remove",
                    path: self.path.clone(),
                    error,
                }),
            };
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::create_private_dir(dir).map_err(|error| StateError::Io {
                op: "create folder",
                path: dir.to_path_buf(),
                error,
            })?;
        }
        let text = format_stops(self.entries.values());
        Ok(files::write_atomic(
            &self.path,
            text.as_bytes(),
            files::PRIVATE_MODE,
            Overwrite::Replace,
        )?)
    }
}

/// Takes one entry equal to `stop` out of the journal at `path` and writes the rest back
/// (the file goes when none is left), for a stop run by another process than the one that
/// wrote the journal: the stop keeper, after its daemon died. Entries it does not know stay
/// for the next start. `Ok(false)` when there was no such entry.
pub(crate) fn forget(path: &Path, stop: &Pending) -> Result<bool, StateError> {
    let mut stops = read(path)?;
    let Some(i) = stops.iter().position(|s| s == stop) else {
        return Ok(false);
    };
    stops.remove(i);
    let journal = StopJournal {
        path: path.to_path_buf(),
        entries: (0u64..).zip(stops).collect(),
    };
    journal.save()?;
    Ok(true)
}

/// `NAME.corrupt-<now_s>` beside `path`.
fn aside_name(path: &Path, now_s: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{now_s}"));
    path.with_file_name(name)
}

/// The stops in the file; none if it does not exist.
fn read(path: &Path) -> Result<Vec<Pending>, StateError> {
    // A regular file of bounded size: a FIFO or a device planted here is refused at once.
    let text = files::read_regular(path, files::MAX_STATE_BYTES).and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
    });
    match text {
        Ok(text) => parse_stops(&text, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(StateError::Io {
            op: "read",
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// The journal's text for `stops`, one line each after a header, which [`parse_stops`]
/// reads back.
pub fn format_stops<'a>(stops: impl IntoIterator<Item = &'a Pending>) -> String {
    let mut text = format!("{HEADER}\n");
    for p in stops {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            p.due_ms,
            p.delay_ms,
            p.src,
            escape(&p.door),
            escape(&p.template)
        ));
    }
    text
}

/// Parses the journal's text, read from `path` (named in errors).
pub fn parse_stops(text: &str, path: &Path) -> Result<Vec<Pending>, StateError> {
    let bad = |line: usize, message: String| StateError::Format {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [due, delay, src, door, template] = fields[..] else {
            return Err(bad(
                n,
                format!(
                    "expected 5 fields separated by tabs, found {}",
                    fields.len()
                ),
            ));
        };
        let number = |s: &str, what: &str| {
            s.parse::<u64>()
                .map_err(|_| bad(n, format!("bad {what} {:?}", quoted(s))))
        };
        let stop = Pending {
            due_ms: number(due, "due time")?,
            delay_ms: number(delay, "delay")?,
            src: src
                .parse()
                .map_err(|_| bad(n, format!("bad address {:?}", quoted(src))))?,
            door: unescape(door).map_err(|m| bad(n, format!("door: {m}")))?,
            template: unescape(template).map_err(|m| bad(n, format!("command: {m}")))?,
        };
        if stop.door.is_empty() || stop.template.is_empty() {
            return Err(bad(n, "empty door or command".into()));
        }
        out.push(stop);
    }
    Ok(out)
}

/// Tabs, line breaks and backslashes as `\t`, `\n`, `\r`, `\\`: one stop, one line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('\\') => '\\',
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            other => {
                // Escaped as {:?} would, without its quotes: the message goes to the log.
                let shown: String = other.map_or(String::new(), |c| c.escape_debug().collect());
                return Err(format!("bad escape \\{shown}"));
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Scratch, assert_not_followed, plant_symlinks};
    use std::os::unix::fs::PermissionsExt;

    fn stop(door: &str, due_ms: u64) -> Pending {
        Pending {
            door: door.into(),
            src: "2001:db8::1".parse().unwrap(),
            template: "iptables -D INPUT -s %IP%\t-j ACCEPT".into(),
            due_ms,
            delay_ms: 10_000,
        }
    }

    #[test]
    fn stops_are_written_atomically_read_back_and_the_file_goes_when_none_is_left() {
        let scratch = Scratch::new("stops");
        let path = scratch.path().join("sub/k.conf.0123456789abcdef.stops");
        let opened = StopJournal::open(&path, 0);
        assert!(opened.pending.is_empty() && opened.problem.is_none());
        let mut j = opened.journal;
        j.put(1, stop("ssh", 5)).unwrap();
        j.put(2, stop("web\\door", 6)).unwrap();
        j.put(1, stop("ssh", 7)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!(
                "{HEADER}\n\
                 7\t10000\t2001:db8::1\tssh\tiptables -D INPUT -s %IP%\\t-j ACCEPT\n\
                 6\t10000\t2001:db8::1\tweb\\\\door\tiptables -D INPUT -s %IP%\\t-j ACCEPT\n"
            )
        );
        let again = StopJournal::open(&path, 0);
        assert_eq!(again.pending, [stop("ssh", 7), stop("web\\door", 6)]);
        assert!(j.has(2) && !j.has(3));
        j.remove(1).unwrap();
        j.remove(9).unwrap();
        j.remove(2).unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 0);
    }

    #[test]
    fn forget_takes_out_one_matching_entry_and_keeps_the_others() {
        let scratch = Scratch::new("stops-forget");
        let path = scratch.path().join("k.stops");
        assert!(!forget(&path, &stop("ssh", 5)).unwrap(), "no journal");
        let mut j = StopJournal::open(&path, 0).journal;
        j.put(1, stop("ssh", 5)).unwrap();
        j.put(2, stop("web", 6)).unwrap();
        j.put(3, stop("ssh", 5)).unwrap();
        assert!(!forget(&path, &stop("ssh", 9)).unwrap(), "another due time");
        assert!(forget(&path, &stop("ssh", 5)).unwrap());
        assert_eq!(
            StopJournal::open(&path, 0).pending,
            [stop("web", 6), stop("ssh", 5)]
        );
        assert!(forget(&path, &stop("ssh", 5)).unwrap());
        assert!(forget(&path, &stop("web", 6)).unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn a_corrupt_journal_is_set_aside_and_named() {
        let scratch = Scratch::new("stops-corrupt");
        let path = scratch.path().join("k.stops");
        for (text, want) in [
            (
                "1\t2\t192.0.2.1\td\n",
                "1: expected 5 fields separated by tabs, found 4",
            ),
            ("# h\nx\t2\t192.0.2.1\td\tc\n", "2: bad due time \"x\""),
            (
                "1\t2\thost.example\td\tc\n",
                "1: bad address \"host.example\"",
            ),
            ("1\t2\t192.0.2.1\td\\q\tc\n", "1: door: bad escape \\q"),
        ] {
            fs::write(&path, text).unwrap();
            let opened = StopJournal::open(&path, 1_767_225_600);
            let aside = scratch.path().join("k.stops.corrupt-1767225600");
            assert_eq!(
                opened.problem.unwrap(),
                format!(
                    "stop journal {}:{want}; set aside as {}, its stops will not run",
                    path.display(),
                    aside.display()
                )
            );
            assert!(opened.pending.is_empty());
            assert!(!path.exists());
            assert_eq!(fs::read_to_string(&aside).unwrap(), text);
        }
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let scratch = Scratch::new("stops-symlink");
        let path = scratch.path().join("k.stops");
        let victim = plant_symlinks(&path);
        let mut j = StopJournal {
            path: path.clone(),
            entries: BTreeMap::new(),
        };
        j.put(1, stop("ssh", 5)).unwrap();
        assert_not_followed(&path, &victim, 0o600);
    }

    #[test]
    fn escapes_round_trip() {
        for s in ["plain", "a\tb\nc\rd\\e", "\\t", ""] {
            assert_eq!(unescape(&escape(s)).unwrap(), s);
            assert!(!escape(s).contains(['\t', '\n', '\r']));
        }
        assert!(unescape("trailing\\").is_err());
        assert_eq!(unescape("a\\\x1b").unwrap_err(), "bad escape \\\\u{1b}");
    }
}
