//! A program run on a pseudo-terminal, for prompts that only a terminal gets (the secret
//! prompt): a small python3 program owns the terminal, waits for the prompt, types the
//! answer and records everything the program wrote.

use std::process::{Command, Stdio};

/// Runs `argv` on a new pseudo-terminal; one second after PROMPT appears in what it wrote,
/// types ANSWER and Enter. The pause is a person's: a program prints its prompt before it
/// turns echo off (rpassword does, on Unix and Windows alike), and any terminal echoes what
/// is typed before that. Once the program exits, whatever it wrote is drained and copied to
/// stdout, and the exit code is passed on (a program that never prompts fails with 125).
/// Processes that outlive it and keep the terminal open (Wine's services) are not waited
/// for.
const DRIVER: &str = r#"
import os, pty, select, sys, time
prompt, answer, argv = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out, typed, seen, status = b"", False, None, None
deadline = time.time() + 60
while time.time() < deadline:
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        out += data
        if not data and status is not None:
            break
    elif status is not None:
        break
    if not typed and prompt in out:
        if seen is None:
            seen = time.time()
        elif time.time() - seen >= 1.0:
            typed = True
            os.write(fd, answer + b"\r")
sys.stdout.buffer.write(out)
if status is None:
    os.kill(pid, 9)
    sys.exit(124)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if typed else 125)
"#;

/// What a program wrote on its terminal, and how it exited.
#[derive(Debug)]
pub struct Transcript {
    pub code: Option<i32>,
    /// Everything it wrote, terminal control sequences removed, `\r` dropped.
    pub text: String,
    /// Everything it wrote, as it wrote it (control sequences and all).
    pub raw: String,
}

/// Runs `cmd` (its program, arguments and environment) on a pseudo-terminal, answers
/// `prompt` with `answer`, and returns what it wrote. Panics if python3 cannot start.
pub fn answer_prompt(cmd: &Command, prompt: &str, answer: &str) -> Transcript {
    let mut driver = Command::new("python3");
    driver
        .args(["-c", DRIVER, prompt, answer])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => driver.env(key, v),
            None => driver.env_remove(key),
        };
    }
    let out = crate::output(&mut driver);
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    Transcript {
        code: out.status.code(),
        text: plain(&raw),
        raw,
    }
}

/// `text` without ANSI control sequences (`ESC [ ... letter`) and carriage returns.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_drops_control_sequences_and_carriage_returns() {
        assert_eq!(
            plain("\x1b[?25lSecret:\x1b[K\x1b[1C\x1b[?25h\r\r\nwould hit\r\n"),
            "Secret:\nwould hit\n"
        );
        assert_eq!(plain("no escapes\n"), "no escapes\n");
        assert_eq!(plain("cut \x1b[12"), "cut ");
    }
}
