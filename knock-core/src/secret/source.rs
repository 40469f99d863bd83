//! Where a secret comes from: a private file, an environment variable, or a prompt
//! without echo. Never from the command line.
//!
//! Errors name the file or the variable, never the secret itself.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::PathBuf;

use super::{Secret, wipe};
use crate::files;

/// Where to read a secret from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// The first line of this file, which only its owner may read.
    File(PathBuf),
    /// The value of this environment variable (its name is stored, not its value).
    Env(String),
    /// Ask on the terminal, without echo.
    Prompt,
}

impl std::fmt::Display for SecretSource {
    /// Where the secret comes from, without ever its value: for `show` and messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::Prompt => f.write_str("prompt"),
        }
    }
}

/// Reading a line without echo: the terminal in `knock`, a script in tests.
pub trait Prompt {
    /// Whether there is someone to ask (stdin is a terminal).
    fn available(&self) -> bool;
    /// Shows `message` and reads one line without echoing it.
    fn read_hidden(&mut self, message: &str) -> io::Result<String>;
}

/// The real terminal, through rpassword (which reads the controlling terminal directly).
#[cfg(feature = "client")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminalPrompt;

#[cfg(feature = "client")]
impl Prompt for TerminalPrompt {
    fn available(&self) -> bool {
        io::IsTerminal::is_terminal(&io::stdin())
    }

    fn read_hidden(&mut self, message: &str) -> io::Result<String> {
        rpassword::prompt_password(message)
    }
}

/// Why no secret could be had. Holds paths and variable names only. Messages hold their
/// cause, so none is also the `source()`: a context chain (`{:#}`) would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("read secret file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error(
        "secret file {p} is {} by group/others (mode {mode:04o}); run: chmod 600 {p}",
        shared_access(*.mode),
        p = .path.display()
    )]
    Shared { path: PathBuf, mode: u32 },
    #[error("secret file {} is empty (the secret is its first line)", path.display())]
    EmptyFile { path: PathBuf },
    #[error("secret file {} is not valid UTF-8", path.display())]
    FileNotUtf8 { path: PathBuf },
    #[error("environment variable {name} (secret_env) is not set")]
    EnvUnset { name: String },
    #[error("environment variable {name} (secret_env) is empty")]
    EnvEmpty { name: String },
    #[error("environment variable {name} (secret_env) is not valid UTF-8")]
    EnvNotUtf8 { name: String },
    #[error(
        "no secret: the profile has neither secret_file nor secret_env, \
         and stdin is not a terminal to ask on"
    )]
    NoTerminal,
    #[error("read the secret from the terminal: {0}")]
    Prompt(io::Error),
    #[error("no secret: the line typed was empty")]
    EmptyPrompt,
}

fn shared_access(mode: u32) -> &'static str {
    if mode & 0o044 != 0 {
        "readable"
    } else if mode & 0o022 != 0 {
        "writable"
    } else {
        "accessible"
    }
}

/// Loads the secret from `source`, reading environment variables with `env` and asking
/// with `prompt` (showing `message`) when the source is [`SecretSource::Prompt`].
pub fn load_with(
    source: &SecretSource,
    env: impl Fn(&str) -> Option<OsString>,
    prompt: &mut dyn Prompt,
    message: &str,
) -> Result<Secret, SecretError> {
    match source {
        SecretSource::File(path) => read_file(path),
        SecretSource::Env(name) => {
            let value = env(name).ok_or_else(|| SecretError::EnvUnset { name: name.clone() })?;
            let value = value
                .into_string()
                .map_err(|_| SecretError::EnvNotUtf8 { name: name.clone() })?;
            let secret = Secret::from_text(&value);
            // Our copy of the variable; the process environment keeps its own.
            wipe(&mut value.into_bytes());
            if secret.is_empty() {
                return Err(SecretError::EnvEmpty { name: name.clone() });
            }
            Ok(secret)
        }
        SecretSource::Prompt => {
            if !prompt.available() {
                return Err(SecretError::NoTerminal);
            }
            let typed = prompt.read_hidden(message).map_err(SecretError::Prompt)?;
            let secret = Secret::from_text(&typed);
            wipe(&mut typed.into_bytes());
            if secret.is_empty() {
                return Err(SecretError::EmptyPrompt);
            }
            Ok(secret)
        }
    }
}

/// [`load_with`] on the process environment, prompting with "Secret for door DOOR: ".
pub fn load(
    source: &SecretSource,
    prompt: &mut dyn Prompt,
    door: &str,
) -> Result<Secret, SecretError> {
    load_with(
        source,
        |name| std::env::var_os(name),
        prompt,
        &format!("Secret for door {door}: "),
    )
}

fn read_file(path: &std::path::Path) -> Result<Secret, SecretError> {
    let read_err = |error| SecretError::Read {
        path: path.to_path_buf(),
        error,
    };
    // A regular file of at most 64 KiB: a FIFO or a device is refused at once, never
    // waited on or read without end. The checks look at the file that was opened, not the
    // name, so a swap in between cannot slip by.
    let (mut file, meta) =
        files::open_regular(path, OpenOptions::new().read(true), files::MAX_SECRET_BYTES)
            .map_err(read_err)?;
    if let Some(mode) = files::shared_mode(&meta) {
        return Err(SecretError::Shared {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    let read = (&mut file)
        .take(files::MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes);
    if let Err(e) = read {
        wipe(&mut bytes);
        return Err(read_err(e));
    }
    if bytes.len() as u64 > files::MAX_SECRET_BYTES {
        wipe(&mut bytes);
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("more than the {} bytes allowed", files::MAX_SECRET_BYTES),
        )));
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let secret = Secret::from_text(&text);
            wipe(&mut text.into_bytes());
            if secret.is_empty() {
                return Err(SecretError::EmptyFile {
                    path: path.to_path_buf(),
                });
            }
            Ok(secret)
        }
        Err(e) => {
            wipe(&mut e.into_bytes());
            Err(SecretError::FileNotUtf8 {
                path: path.to_path_buf(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scratch;

    const SECRET: &str = "s3cr3t-Value-9f8e";

    /// A scripted terminal that records what it was asked.
    struct Script {
        terminal: bool,
        answer: io::Result<String>,
        asked: Vec<String>,
    }

    impl Script {
        fn new(terminal: bool, answer: io::Result<String>) -> Script {
            Script {
                terminal,
                answer,
                asked: Vec::new(),
            }
        }
    }

    impl Prompt for Script {
        fn available(&self) -> bool {
            self.terminal
        }
        fn read_hidden(&mut self, message: &str) -> io::Result<String> {
            self.asked.push(message.to_string());
            match &self.answer {
                Ok(s) => Ok(s.clone()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            }
        }
    }

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn env_with(value: &'static str) -> impl Fn(&str) -> Option<OsString> {
        move |name| (name == "KNOCK_TEST_SECRET").then(|| OsString::from(value))
    }

    /// Neither the message nor the Debug form of an error may show the secret.
    fn assert_hidden(err: &SecretError) {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(SECRET), "secret leaked: {text}");
        }
    }

    fn never_asked() -> Script {
        Script::new(true, Ok("must not be used".into()))
    }

    #[test]
    fn from_the_environment() {
        let source = SecretSource::Env("KNOCK_TEST_SECRET".into());
        let mut prompt = never_asked();
        let secret = load_with(&source, env_with(SECRET), &mut prompt, "?").unwrap();
        assert_eq!(secret.expose(), SECRET.as_bytes());
        assert!(!format!("{secret:?}").contains(SECRET));
        // A trailing newline (from `$(cat file)` or an editor) is not part of the secret.
        let with_nl = format!("{SECRET}\n").leak();
        let secret = load_with(&source, env_with(with_nl), &mut prompt, "?").unwrap();
        assert_eq!(secret.expose(), SECRET.as_bytes());
        assert!(prompt.asked.is_empty());
    }

    #[test]
    fn environment_errors_name_the_variable_only() {
        let source = SecretSource::Env("KNOCK_TEST_SECRET".into());
        let mut prompt = never_asked();
        let err = load_with(&source, no_env, &mut prompt, "?").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable KNOCK_TEST_SECRET (secret_env) is not set"
        );
        let err = load_with(&source, env_with("\n"), &mut prompt, "?").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable KNOCK_TEST_SECRET (secret_env) is empty"
        );
        assert_hidden(&err);
    }

    #[test]
    fn from_a_file_first_line_only() {
        let dir = Scratch::new("secret-file");
        let path = dir.join("door.secret");
        crate::files::write_private(&path, format!("{SECRET}\r\nnot this\n").as_bytes(), false)
            .unwrap();
        let mut prompt = never_asked();
        let secret = load_with(&SecretSource::File(path), no_env, &mut prompt, "?").unwrap();
        assert_eq!(secret.expose(), SECRET.as_bytes());
        assert!(prompt.asked.is_empty());
    }

    #[test]
    fn file_errors() {
        let dir = Scratch::new("secret-file-errors");
        let mut prompt = never_asked();
        let missing = dir.join("missing");
        let err = load_with(
            &SecretSource::File(missing.clone()),
            no_env,
            &mut prompt,
            "?",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("read secret file {}: ", missing.display())),
            "{msg}"
        );
        let empty = dir.join("empty");
        crate::files::write_private(&empty, b"\nsecond line is ignored\n", false).unwrap();
        let err =
            load_with(&SecretSource::File(empty.clone()), no_env, &mut prompt, "?").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "secret file {} is empty (the secret is its first line)",
                empty.display()
            )
        );
        let binary = dir.join("binary");
        crate::files::write_private(&binary, b"\xff\xfe", false).unwrap();
        let err = load_with(
            &SecretSource::File(binary.clone()),
            no_env,
            &mut prompt,
            "?",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("secret file {} is not valid UTF-8", binary.display())
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("secret-mode");
        let path = dir.join("door.secret");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        let mut prompt = never_asked();
        let cases = [
            (0o644, "readable", "0644"),
            (0o640, "readable", "0640"),
            (0o604, "readable", "0604"),
            (0o620, "writable", "0620"),
            (0o601, "accessible", "0601"),
        ];
        for (mode, what, shown) in cases {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err =
                load_with(&SecretSource::File(path.clone()), no_env, &mut prompt, "?").unwrap_err();
            let p = path.display();
            assert_eq!(
                err.to_string(),
                format!(
                    "secret file {p} is {what} by group/others (mode {shown}); run: chmod 600 {p}"
                )
            );
            assert_hidden(&err);
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let source = SecretSource::File(path.clone());
            let secret = load_with(&source, no_env, &mut prompt, "?").unwrap();
            assert_eq!(secret.expose(), SECRET.as_bytes(), "mode {mode:04o}");
        }
    }

    #[test]
    fn prompt_when_nothing_is_configured() {
        let mut prompt = Script::new(true, Ok(format!("{SECRET}\n")));
        let secret = load_with(&SecretSource::Prompt, no_env, &mut prompt, "Secret: ").unwrap();
        assert_eq!(secret.expose(), SECRET.as_bytes());
        assert_eq!(prompt.asked, ["Secret: "]);
    }

    #[test]
    fn prompt_errors() {
        let mut prompt = Script::new(false, Ok(SECRET.into()));
        let err = load_with(&SecretSource::Prompt, no_env, &mut prompt, "?").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no secret: the profile has neither secret_file nor secret_env, \
             and stdin is not a terminal to ask on"
        );
        assert!(prompt.asked.is_empty(), "no terminal, no question");
        let mut prompt = Script::new(true, Ok("\n".into()));
        let err = load_with(&SecretSource::Prompt, no_env, &mut prompt, "?").unwrap_err();
        assert_eq!(err.to_string(), "no secret: the line typed was empty");
        let mut prompt = Script::new(true, Err(io::Error::other("terminal went away")));
        let err = load_with(&SecretSource::Prompt, no_env, &mut prompt, "?").unwrap_err();
        assert_eq!(
            err.to_string(),
            "read the secret from the terminal: terminal went away"
        );
    }

    #[test]
    fn load_uses_the_process_environment_and_names_the_door() {
        // PATH is set in any test environment; its value becomes the secret here.
        let source = SecretSource::Env("PATH".into());
        let secret = load(&source, &mut never_asked(), "ssh").unwrap();
        assert_eq!(
            secret.expose(),
            std::env::var("PATH")
                .unwrap()
                .split('\n')
                .next()
                .unwrap()
                .as_bytes()
        );
        let mut prompt = Script::new(true, Ok(SECRET.into()));
        load(&SecretSource::Prompt, &mut prompt, "ssh").unwrap();
        assert_eq!(prompt.asked, ["Secret for door ssh: "]);
    }

    #[test]
    fn sources_display_without_values() {
        assert_eq!(
            SecretSource::Env("KNOCK_SECRET".into()).to_string(),
            "environment variable KNOCK_SECRET"
        );
        assert_eq!(
            SecretSource::File("/etc/k.secret".into()).to_string(),
            "file /etc/k.secret"
        );
        assert_eq!(SecretSource::Prompt.to_string(), "prompt");
    }
}
