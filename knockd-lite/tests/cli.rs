//! The knockd-lite binary's command line: exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_knockd-lite"))
        .args(args)
        .output()
        .expect("run knockd-lite");
    eprintln!(
        "knockd-lite {args:?}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A config file in a folder of its own, removed on drop.
struct ConfFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for ConfFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `text` to NAME in a new folder named after the process and NAME, so tests
/// running in parallel each have their own.
fn conf_file(name: &str, text: &str) -> ConfFile {
    let dir = std::env::temp_dir().join(format!("knockd-lite-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    ConfFile { dir, path }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_prints_doors_and_filter() {
    let conf = conf_file(
        "ok.conf",
        "[open]\nsequence = 7000,8000:udp\ntcpflags = syn\ncommand = up %IP%\n",
    );
    let out = run(&["--check", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let short = run(&["-C", "-c", conf.arg()]);
    assert_eq!(short.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(short.stdout).unwrap(),
        stdout,
        "-C is --check"
    );
    assert!(stdout.starts_with(&format!("{}: OK, 1 door\n", conf.path().display())));
    assert!(stdout.contains("  sequence:       7000:tcp,8000:udp\n"));
    assert!(stdout.contains(
        "     (tcp dst port 7000 and tcp[13] & 0x02 == 0x02)\n  or (udp dst port 8000)\n\n\
         kernel filter: "
    ));
    assert!(stdout.ends_with(" BPF instructions (the kernel takes up to 4096)\n"));
    // --show-hmac-ports goes with --check only.
    let out = run(&["--show-hmac-ports", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_error_exits_2_with_path_and_line() {
    let conf = conf_file("bad.conf", "[open]\nsequence = 7000,\n");
    let out = run(&["--check", "--config", conf.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "knockd-lite: {}:2: sequence: empty port (a stray or trailing comma?)\n",
            conf.path().display()
        )
    );
    let out = run(&["-c", "/nonexistent/knockd.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read /nonexistent/knockd.conf: No such file"));
}

#[test]
fn bad_option_exits_2() {
    for args in [&["-x"][..], &["--max-attempts", "0"], &["-c"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = run(&["-V"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("knockd-lite "));
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for flag in [
        "--interface",
        "--daemon",
        "--config",
        "--debug",
        "--lookup",
        "--pidfile",
        "--logfile",
        "--verbose",
        "--only-ip-v4",
        "--check",
        "--list-interfaces",
        "--max-attempts",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn serving_on_a_missing_interface_exits_1() {
    let conf = conf_file("serve.conf", "[open]\nsequence = 7000\n");
    let out = run(&["-i", "nosuch0", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "knockd-lite: nosuch0: no such interface\n");
}

#[test]
fn serving_with_a_broken_config_exits_2_before_touching_the_interface() {
    let conf = conf_file("broken.conf", "[open]\nsequence = 7000\nbogus = 1\n");
    let out = run(&["-i", "nosuch0", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "knockd-lite: {}:3: unknown directive \"bogus\" in door [open]\n",
            conf.path().display()
        )
    );
}

/// `--check` on a config knockd 0.8 runs with warnings: a log file in a folder that does not
/// exist, two doors with one name. Exit 0, the warnings on stderr with the file's lines.
#[test]
fn check_warns_and_says_ok() {
    let conf = conf_file(
        "warn.conf",
        "[options]\n  LogFile = /nonexistent/knockd/knockd.log\n\
         [open]\n  sequence = 7000,8000 # open\n\
         [open]\n  sequence = 7000,8000\n",
    );
    let out = run(&["--check", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(0));
    let path = conf.path().display();
    assert_eq!(
        stderr(&out),
        format!(
            "knockd-lite: warning: {path}:5: door [open] has the same name as the door on line \
             3: both are kept, as knockd keeps them, and log lines name both [open] (rename one \
             to tell them apart)\n\
             knockd-lite: warning: cannot open the log file /nonexistent/knockd/knockd.log \
             (LogFile on line 2 of {path}): No such file or directory (os error 2); running \
             without it until a SIGHUP opens it\n"
        )
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with(&format!("{path}: OK, 2 doors\nformat:    knockd.conf\n")));
    assert!(stdout.contains("log file:  /nonexistent/knockd/knockd.log (line 2)\n"));
    assert!(
        stdout.contains("  read:           line 4: sequence: ignored the comment \"# open\"\n")
    );
    // With -g the warning names -g.
    let out = run(&["--check", "-c", conf.arg(), "-g", "/nonexistent/other.log"]);
    assert!(
        stderr(&out).contains("cannot open the log file /nonexistent/other.log (-g): "),
        "{}",
        stderr(&out)
    );
}

/// A tportknockd config, told from its first line.
#[test]
fn check_reads_a_tportknockd_config() {
    let conf = conf_file(
        "tportknockd.conf",
        "# events\n<SSH>\n  sequence = tcp:110:s tcp:110:up udp:53\n  timeout = 10\n\
         \x20 start_command = up %IP%\n</SSH>\n",
    );
    let out = run(&["--check", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("format:    tportknockd\n"), "{stdout}");
    assert!(
        stdout.contains("[SSH] (line 2)\n  sequence:       110:tcp:syn,110:tcp:psh+urg,53:udp\n")
    );
    let bad = conf_file("tportknockd-bad.conf", "<SSH>\n  sequence = 7000\n");
    let out = run(&["--check", "-c", bad.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "knockd-lite: {}:2: sequence: frame \"7000\" is not PROTO:PORT[:FLAGS] (e.g. \
             tcp:7000:s or udp:53)\n",
            bad.path().display()
        )
    );
}

/// `mkfifo PATH`.
fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// The hostile run's findings: a FIFO as the config or a one-time list blocked `--check`
/// (and start-up and SIGHUP) until someone wrote to it, /dev/zero grew memory without end,
/// and a 30 MB bad line made a 30 MB message. Each is refused at once now, in a short
/// message.
#[test]
fn fifos_devices_and_huge_lines_are_refused_at_once_in_short_messages() {
    let conf = conf_file("fifo.conf", "");
    let fifo = conf.dir.join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let out = run(&["--check", "-c", fifo]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("knockd-lite: cannot read {fifo}: not a regular file (a FIFO)\n")
    );
    let out = run(&["--check", "-c", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "knockd-lite: cannot read /dev/zero: not a regular file (a character device)\n"
    );
    for (door, what) in [
        (
            format!("[o]\none_time_sequences = {fifo}\n"),
            "one-time list",
        ),
        (format!("[h]\nhmac_secret_file = {fifo}\n"), "secret"),
        (
            "[o]\none_time_sequences = /dev/zero\n".to_string(),
            "one-time list",
        ),
        ("[h]\nhmac_secret_file = /dev/zero\n".to_string(), "secret"),
    ] {
        std::fs::write(conf.path(), &door).unwrap();
        let out = run(&["--check", "-c", conf.arg()]);
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = stderr(&out);
        assert!(
            err.contains("not a regular file (a FIFO)")
                || err.contains("not a regular file (a character device)"),
            "{what}: {err}"
        );
    }
    // A bad line of 1 MB: the message quotes 60 characters of it.
    let long = format!("[d]\nsequence = 7000,{}\n", "9".repeat(1 << 20));
    std::fs::write(conf.path(), &long).unwrap();
    let out = run(&["--check", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).len() < 400, "{} bytes", stderr(&out).len());
    assert!(
        stderr(&out).contains(&format!("… ({} bytes)", 1 << 20)),
        "{}",
        stderr(&out)
    );
    // Larger than the 16 MiB a config may hold: refused before it is parsed.
    let huge = std::fs::File::create(conf.path()).unwrap();
    huge.set_len(17 << 20).unwrap();
    let out = run(&["--check", "-c", conf.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "knockd-lite: cannot read {}: {} bytes, more than the {} allowed\n",
            conf.arg(),
            17 << 20,
            16 << 20
        )
    );
}
