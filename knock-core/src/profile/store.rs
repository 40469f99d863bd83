//! Named profiles in a directory: finding the directory, and list, load, save and remove.
//!
//! Profile `NAME` is the file `NAME.toml` in the profile directory, which is
//! `--profiles DIR`, else `$KNOCK_PROFILES`, else `<config dir>/knock/profiles`.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use super::write::ToTomlError;
use super::{Profile, ProfileError, parse, parse_file};
use crate::files::{self, WriteError};

/// The environment variable that overrides the profile directory.
pub const ENV_VAR: &str = "KNOCK_PROFILES";

/// Words that follow `knock profile` as subcommands, so no profile may have them as names.
pub const RESERVED: [&str; 6] = ["list", "show", "save", "remove", "import", "help"];

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("profile name {name:?} {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("no profile named {name:?} (looked for {}); {hint}", path.display())]
    NotFound {
        name: String,
        path: PathBuf,
        /// The closest name there is, or how to see or make profiles.
        hint: String,
    },
    #[error("profile {name:?} already exists ({}); use --force to replace it", path.display())]
    Exists { name: String, path: PathBuf },
    #[error("{} already exists; use --force to replace it", path.display())]
    FileExists { path: PathBuf },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    // These two messages hold their cause, so it is not also the `source()`: a context
    // chain (`{:#}`) would print it twice.
    #[error("profile {name:?}: {error}")]
    Write { name: String, error: ToTomlError },
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "cannot tell where profiles live: the system has no configuration directory; \
         use --profiles DIR or set KNOCK_PROFILES"
    )]
    NoConfigDir,
}

/// The profile directory: `flag` (`--profiles DIR`) wins, then `env` (the value of
/// `KNOCK_PROFILES`, ignored when empty), then `config_dir/knock/profiles`.
pub fn resolve_dir(
    flag: Option<&Path>,
    env: Option<&OsStr>,
    config_dir: Option<&Path>,
) -> Result<PathBuf, StoreError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = env.filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    config_dir
        .map(|c| c.join("knock").join("profiles"))
        .ok_or(StoreError::NoConfigDir)
}

/// [`resolve_dir`] with this process's `KNOCK_PROFILES` and the OS's configuration
/// directory (`$XDG_CONFIG_HOME` or `~/.config`, `~/Library/Application Support`,
/// `%APPDATA%`).
pub fn profile_dir(flag: Option<&Path>) -> Result<PathBuf, StoreError> {
    resolve_dir(
        flag,
        std::env::var_os(ENV_VAR).as_deref(),
        dirs::config_dir().as_deref(),
    )
}

/// Checks that `name` can name a profile: not empty, no path separators or control
/// characters, none of the characters Windows refuses in file names, no leading dot, and not
/// a reserved word. One rule on every system, so a profile directory can be copied to any.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.contains(['/', '\\']) {
        Some("may not contain path separators")
    } else if name.contains(['<', '>', ':', '"', '|', '?', '*']) {
        // On Windows `a:b.toml` would even "work", as an alternate data stream of `a`.
        Some("may not contain any of < > : \" | ? * (Windows file names cannot)")
    } else if name.starts_with('.') {
        Some("may not start with '.'")
    } else if name.chars().any(char::is_control) {
        Some("may not contain control characters")
    } else if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        Some("is reserved (list, show, save, remove, import and help are profile subcommands)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// One profile found by [`Store::list`]: a broken one carries its error.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub profile: Result<Profile, ProfileError>,
}

/// The profiles in one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The store in [`profile_dir`].
    pub fn open(flag: Option<&Path>) -> Result<Store, StoreError> {
        profile_dir(flag).map(Store::new)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of profile `name`.
    pub fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.toml")))
    }

    /// Every profile, sorted by name. A directory that does not exist yet holds none. A
    /// profile that does not parse is listed with its error rather than ending the list.
    pub fn list(&self) -> Result<Vec<Entry>, StoreError> {
        let read = match std::fs::read_dir(&self.dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("read directory", &self.dir)(e)),
        };
        let mut entries = Vec::new();
        for item in read {
            let item = item.map_err(self.io("read directory", &self.dir))?;
            let file_name = item.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".toml")) else {
                continue;
            };
            let path = item.path();
            if check_name(name).is_err() || !path.is_file() {
                continue;
            }
            entries.push(Entry {
                name: name.to_string(),
                profile: parse_file(&path),
                path,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Loads profile `name`.
    pub fn load(&self, name: &str) -> Result<Profile, StoreError> {
        let path = self.path(name)?;
        match parse_file(&path) {
            Err(ProfileError::Read { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
                Err(self.not_found(name, path))
            }
            other => Ok(other?),
        }
    }

    /// The names of the profiles here, sorted, without reading them.
    fn names(&self) -> Vec<String> {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = read
            .filter_map(|item| {
                let file_name = item.ok()?.file_name();
                let name = file_name.to_str()?.strip_suffix(".toml")?;
                check_name(name).is_ok().then(|| name.to_string())
            })
            .collect();
        names.sort();
        names
    }

    /// Profile `name` is not here: the error says which name comes closest (a typo), or
    /// how to list or make profiles.
    fn not_found(&self, name: &str, path: PathBuf) -> StoreError {
        let names = self.names();
        let hint = match closest(name, &names) {
            Some(near) => format!("did you mean {near:?}? `knock profile list` shows them all"),
            None if names.is_empty() => format!(
                "there are no profiles in {} (make one with `knock profile save`, `knock \
                 profile import`, `knock keygen --save` or `knock otp generate --save`)",
                self.dir.display()
            ),
            None => "`knock profile list` shows the profiles there are".to_string(),
        };
        StoreError::NotFound {
            name: name.to_string(),
            path,
            hint,
        }
    }

    /// Writes `profile` as `name` with mode 0600, atomically, creating the directory
    /// (0700) if needed. An existing profile is replaced only with `force`. Relative paths
    /// in the profile are kept as written and resolve against the profile directory, so
    /// give paths the user typed on the command line absolute.
    pub fn save(&self, name: &str, profile: &Profile, force: bool) -> Result<PathBuf, StoreError> {
        let path = self.path(name)?;
        let text = profile.to_toml().map_err(|error| StoreError::Write {
            name: name.to_string(),
            error,
        })?;
        // Never write what could not be read back.
        parse(&path, &text)?;
        self.write(&path, text.as_bytes(), force)
            .map_err(|e| match e {
                StoreError::FileExists { path } => StoreError::Exists {
                    name: name.to_string(),
                    path,
                },
                e => e,
            })?;
        Ok(path)
    }

    /// Writes `bytes` to `file_name` in the profile directory, privately and atomically,
    /// as [`Store::save`] does: for the copy of a one-time list that `import` makes.
    pub fn save_file(
        &self,
        file_name: &str,
        bytes: &[u8],
        force: bool,
    ) -> Result<PathBuf, StoreError> {
        if file_name.is_empty() || file_name.starts_with('.') || file_name.contains(['/', '\\']) {
            return Err(StoreError::BadName {
                name: file_name.to_string(),
                reason: "is not a plain file name",
            });
        }
        let path = self.dir.join(file_name);
        self.write(&path, bytes, force)?;
        Ok(path)
    }

    fn write(&self, path: &Path, bytes: &[u8], force: bool) -> Result<(), StoreError> {
        files::create_private_dir(&self.dir).map_err(self.io("create directory", &self.dir))?;
        files::write_private(path, bytes, force).map_err(|e| match e {
            WriteError::Exists(path) => StoreError::FileExists { path },
            WriteError::Io { op, path, error } => StoreError::Io { op, path, error },
        })
    }

    /// Deletes profile `name`. Files it points at (lists, secrets) are left alone.
    pub fn remove(&self, name: &str) -> Result<PathBuf, StoreError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.not_found(name, path)),
            Err(e) => Err(self.io("remove", &path)(e)),
        }
    }

    fn io<'a>(
        &self,
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> StoreError + 'a {
        move |error| StoreError::Io {
            op,
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The name among `names` a typo of `name` most likely meant: the nearest by edit distance
/// (case ignored), if it is near enough, a third of the name's length at most (and at
/// least 1, at most 3 edits).
fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    names
        .iter()
        .map(|n| (edit_distance(&name, &n.to_lowercase()), n))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

/// Levenshtein distance: insertions, deletions and substitutions, plus a swap of two
/// neighbours counted as one (the commonest typo).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// `knock profile list`: name, host, kind and description in columns; a broken profile
/// shows its error in place of the rest.
///
/// `detail` adds to a profile's kind what the caller found out about it (`one-time, 37
/// left`).
pub fn list_table(entries: &[Entry], detail: &dyn Fn(&Profile) -> Option<String>) -> String {
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| match &e.profile {
            Ok(p) => [
                e.name.clone(),
                p.host.clone().unwrap_or_else(|| "-".into()),
                match detail(p) {
                    Some(d) => format!("{}, {d}", p.kind()),
                    None => p.kind().to_string(),
                },
                p.description.clone().unwrap_or_default(),
            ],
            Err(err) => [e.name.clone(), "-".into(), "broken".into(), err.to_string()],
        })
        .collect();
    let header = ["NAME", "HOST", "KIND", "DESCRIPTION"].map(String::from);
    let all: Vec<&[String; 4]> = std::iter::once(&header).chain(&rows).collect();
    let width = |i: usize| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    all.iter()
        .map(|r| {
            let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
            format!("{}\n", line.trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_name_it_meant() {
        let names: Vec<String> = ["office", "ssh-home", "vpn"].map(String::from).to_vec();
        let table = [
            ("ssh-hmoe", Some("ssh-home")),
            ("sshhome", Some("ssh-home")),
            ("SSH-HOME", Some("ssh-home")),
            ("offcie", Some("office")),
            ("vpm", Some("vpn")),
            ("web", None),
            ("x", None),
        ];
        for (typed, want) in table {
            assert_eq!(closest(typed, &names), want, "{typed}");
        }
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
    use crate::profile::{FixedSequence, Kind, Knock, OneTime};
    use crate::testutil::Scratch;

    #[test]
    fn directory_precedence() {
        let flag = Path::new("/flag");
        let env = OsStr::new("/env");
        let config = Path::new("/home/u/.config");
        let dir = |f, e, c| resolve_dir(f, e, c).unwrap();
        assert_eq!(dir(Some(flag), Some(env), Some(config)), Path::new("/flag"));
        assert_eq!(dir(None, Some(env), Some(config)), Path::new("/env"));
        assert_eq!(
            dir(None, None, Some(config)),
            Path::new("/home/u/.config/knock/profiles")
        );
        // An empty KNOCK_PROFILES is as good as unset.
        assert_eq!(
            dir(None, Some(OsStr::new("")), Some(config)),
            Path::new("/home/u/.config/knock/profiles")
        );
        assert_eq!(dir(Some(flag), None, None), Path::new("/flag"));
        assert_eq!(
            resolve_dir(None, None, None).unwrap_err().to_string(),
            "cannot tell where profiles live: the system has no configuration directory; \
             use --profiles DIR or set KNOCK_PROFILES"
        );
    }

    #[test]
    fn profile_dir_prefers_the_flag() {
        assert_eq!(profile_dir(Some(Path::new("/x"))).unwrap(), Path::new("/x"));
    }

    #[test]
    fn names() {
        for good in ["ssh-home", "a", "x.y", "Lists", "my profile", "ünïcode"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let table = [
            ("", r#"profile name "" is empty"#),
            (
                "a/b",
                r#"profile name "a/b" may not contain path separators"#,
            ),
            (
                "a\\b",
                r#"profile name "a\\b" may not contain path separators"#,
            ),
            (
                "../x",
                r#"profile name "../x" may not contain path separators"#,
            ),
            (
                ".hidden",
                r#"profile name ".hidden" may not start with '.'"#,
            ),
            ("..", r#"profile name ".." may not start with '.'"#),
            (
                "a:b",
                r#"profile name "a:b" may not contain any of < > : " | ? * (Windows file names cannot)"#,
            ),
            (
                "what?",
                r#"profile name "what?" may not contain any of < > : " | ? * (Windows file names cannot)"#,
            ),
            (
                "\"q\"",
                r#"profile name "\"q\"" may not contain any of < > : " | ? * (Windows file names cannot)"#,
            ),
            (
                "a\nb",
                r#"profile name "a\nb" may not contain control characters"#,
            ),
        ];
        for (name, want) in table {
            assert_eq!(check_name(name).unwrap_err().to_string(), want);
        }
        for word in RESERVED.iter().chain(&["LIST", "Show"]) {
            assert_eq!(
                check_name(word).unwrap_err().to_string(),
                format!(
                    "profile name {word:?} is reserved (list, show, save, remove, import and help \
                     are profile subcommands)"
                )
            );
        }
    }

    fn seq(text: &str, host: &str) -> Profile {
        let mut p = Profile::new(Knock::Fixed(FixedSequence::parse(text).unwrap()));
        p.host = Some(host.into());
        p
    }

    #[test]
    fn save_load_list_remove() {
        let scratch = Scratch::new("store");
        let store = Store::new(scratch.join("profiles"));
        // Not there yet: nothing to list, nothing to load.
        assert!(store.list().unwrap().is_empty());
        let err = store.load("ssh").unwrap_err();
        let want = format!(
            "no profile named \"ssh\" (looked for {}); there are no profiles in {} (make one \
             with `knock profile save`, `knock profile import`, `knock keygen --save` or \
             `knock otp generate --save`)",
            store.dir().join("ssh.toml").display(),
            store.dir().display()
        );
        assert_eq!(err.to_string(), want);

        let ssh = seq("7000,8000:udp", "home.example.net");
        let path = store.save("ssh", &ssh, false).unwrap();
        assert_eq!(path, store.dir().join("ssh.toml"));
        assert_eq!(store.load("ssh").unwrap(), ssh);

        // Refuses to overwrite unless forced.
        let other = seq("1,2,3", "192.0.2.2");
        let err = store.save("ssh", &other, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "profile \"ssh\" already exists ({}); use --force to replace it",
                path.display()
            )
        );
        assert_eq!(store.load("ssh").unwrap(), ssh);
        store.save("ssh", &other, true).unwrap();
        assert_eq!(store.load("ssh").unwrap(), other);

        let mut vpn = Profile::new(Knock::OneTime(OneTime::new("vpn.otp", store.dir())));
        vpn.description = Some("office VPN".into());
        store.save("vpn", &vpn, false).unwrap();
        let names: Vec<(String, Kind)> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.profile.unwrap().kind()))
            .collect();
        assert_eq!(
            names,
            [("ssh".into(), Kind::Fixed), ("vpn".into(), Kind::OneTime)]
        );

        assert_eq!(store.remove("ssh").unwrap(), path);
        let err = store.remove("ssh").unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(matches!(
            store.save("list", &ssh, false),
            Err(StoreError::BadName { .. })
        ));
    }

    #[test]
    fn list_is_sorted_and_shows_broken_profiles_with_their_error() {
        let scratch = Scratch::new("store-list");
        let store = Store::new(scratch.path());
        let write = |name: &str, text: &str| std::fs::write(scratch.join(name), text).unwrap();
        write("zeta.toml", "host = \"192.0.2.9\"\nsequence = \"9\"\n");
        write(
            "alpha.toml",
            "host = \"192.0.2.1\"\nsequence = \"1\"\ndescription = \"first\"\n",
        );
        write("mid.toml", "host = \"192.0.2.5\"\n\nbogus = 1\n");
        // Not profiles: other extensions, hidden files, temporary files, directories.
        write("notes.txt", "x");
        write(".hidden.toml", "sequence = \"1\"\n");
        write(".zeta.toml.tmp-1-0", "x");
        std::fs::create_dir(scratch.join("dir.toml")).unwrap();
        let entries = store.list().unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        let mid = scratch.join("mid.toml");
        assert_eq!(
            list_table(&entries, &|_| None),
            format!(
                "NAME   HOST       KIND      DESCRIPTION\n\
                 alpha  192.0.2.1  sequence  first\n\
                 mid    -          broken    {}:3: unknown field `bogus`, expected one of \
                 `description`, `host`, `sequence`, `delay_ms`, `udp`, `family`, `raw`, \
                 `open_port`, `one_time_sequences`, `hmac`\n\
                 zeta   192.0.2.9  sequence\n",
                mid.display()
            )
        );
        // Loading the broken one by name gives the same error.
        assert_eq!(
            store.load("mid").unwrap_err().to_string(),
            entries[1].profile.as_ref().unwrap_err().to_string()
        );
    }

    #[test]
    fn invalid_profiles_are_never_written() {
        let scratch = Scratch::new("store-invalid");
        let store = Store::new(scratch.path());
        let mut p = seq("1", "h");
        p.host = Some(String::new());
        let err = store.save("bad", &p, false).unwrap_err();
        let path = scratch.join("bad.toml");
        assert_eq!(
            err.to_string(),
            format!("{}:1: host is empty", path.display())
        );
        assert!(!path.exists());
    }

    #[test]
    fn save_file_for_imported_lists() {
        let scratch = Scratch::new("store-file");
        let store = Store::new(scratch.join("p"));
        let path = store.save_file("vpn.otp", b" 1,2\n", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b" 1,2\n");
        let err = store.save_file("vpn.otp", b" 3\n", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} already exists; use --force to replace it",
                path.display()
            )
        );
        for bad in ["", ".x", "a/b"] {
            assert!(matches!(
                store.save_file(bad, b"", true),
                Err(StoreError::BadName { .. })
            ));
        }
    }

    #[cfg(unix)]
    #[test]
    fn saved_profiles_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("store-mode");
        let store = Store::new(scratch.join("new").join("profiles"));
        let path = store.save("p", &seq("1", "h"), false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(store.dir()), 0o700);
        // Replacing a profile someone made world-readable makes it private again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.save("p", &seq("2", "h"), true).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
