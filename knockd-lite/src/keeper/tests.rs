//! The keeper as a real process, through the daemon's side of the link: this test binary
//! is started again as the keeper (`keeper_child`), with the channel as its stdin. A link
//! dropped without a goodbye is a daemon that died.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use knockd_engine::Mono;

use super::{KeeperLink, Launch};
use crate::stops::{Pending, StopJournal};
use crate::sys;
use crate::testutil::Scratch;

const JOURNAL_VAR: &str = "KNOCKD_LITE_KEEPER_TEST_JOURNAL";

/// Not a test by itself: the keeper the tests below start.
#[test]
#[ignore = "the keeper process of the tests in keeper::tests, started by them"]
fn keeper_child() {
    let Some(journal) = std::env::var_os(JOURNAL_VAR) else {
        return;
    };
    std::process::exit(super::run(PathBuf::from(journal)));
}

/// A scratch folder with a journal path, a log and a file each stop appends to.
struct Setup {
    dir: Scratch,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        Setup {
            dir: Scratch::new(tag),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn journal(&self) -> PathBuf {
        self.path("k.conf.0123456789abcdef.stops")
    }

    /// A link whose keeper is this test binary, for the journal here.
    fn link(&self) -> KeeperLink {
        let mut args: Vec<OsString> = vec![
            format!("{JOURNAL_VAR}={}", self.journal().display()).into(),
            std::env::current_exe().unwrap().into(),
        ];
        args.extend(
            [
                "--exact",
                "keeper::tests::keeper_child",
                "--ignored",
                "--test-threads=1",
                "--quiet",
            ]
            .map(OsString::from),
        );
        let mut link = KeeperLink::new(
            Launch::Exec {
                program: "/usr/bin/env".into(),
                args,
            },
            self.path("k.conf.0123456789abcdef.keeper"),
            Duration::from_secs(10),
        );
        let notes = link.set_log(Some(self.path("k.log")), None);
        assert!(notes.is_empty());
        link.set_wanted(true);
        let notes = link.sync();
        assert!(notes.is_empty(), "{notes:?}");
        link
    }

    /// A stop that appends `tag` and the address to `ran`.
    fn stop(&self, tag: &str, src: &str) -> Pending {
        Pending {
            door: "d".into(),
            src: src.parse().unwrap(),
            template: format!("echo {tag} %IP% >> {}", self.path("ran").display()),
            due_ms: 1_700_000_000_000,
            delay_ms: 3_000,
        }
    }

    /// Writes the journal the daemon would have written.
    fn write_journal(&self, stops: &[Pending]) {
        let mut j = StopJournal::open(&self.journal(), 0).journal;
        for (i, s) in stops.iter().enumerate() {
            j.put(i as u64, s.clone()).unwrap();
        }
    }

    fn ran(&self) -> Vec<String> {
        fs::read_to_string(self.path("ran"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("k.log")).unwrap_or_default()
    }

    fn keeper_pid(&self) -> u32 {
        fs::read_to_string(self.path("k.conf.0123456789abcdef.keeper"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn in_ms(ms: u64) -> Mono {
    Mono::from_millis(sys::boot_ms() + ms)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !matches!(
        stat.rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next()),
        None | Some("Z")
    )
}

#[test]
fn a_daemon_gone_without_a_goodbye_leaves_its_stops_to_the_keeper_on_time() {
    let s = Setup::new("keeper-orphan");
    let (a, b, c, other) = (
        s.stop("a", "192.0.2.1"),
        s.stop("b", "2001:db8::1"),
        s.stop("c", "192.0.2.3"),
        s.stop("unknown", "192.0.2.9"),
    );
    // The journal also has a stop the keeper never heard of: it stays for the next start.
    s.write_journal(&[a.clone(), b.clone(), c.clone(), other.clone()]);
    let mut link = s.link();
    let pid = s.keeper_pid();
    let begun = Instant::now();
    assert!(link.schedule(1, in_ms(700), &a).is_empty());
    assert!(link.schedule(2, in_ms(300), &b).is_empty());
    assert!(link.schedule(3, in_ms(100), &c).is_empty());
    // The daemon ran c itself.
    assert!(link.done(3).is_empty());
    std::thread::sleep(Duration::from_millis(50));
    assert!(alive(pid), "a keeper waits while its daemon lives");
    drop(link);
    wait_until("both stops ran", || s.ran().len() == 2);
    let elapsed = begun.elapsed();
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}: early");
    assert_eq!(s.ran(), ["b 2001:db8::1", "a 192.0.2.1"]);
    wait_until("the keeper left", || !alive(pid));
    assert_eq!(
        StopJournal::open(&s.journal(), 0).pending,
        [c, other],
        "the stops it ran left the journal, the others stay"
    );
    let log = s.log();
    for want in [
        " ended without a clean stop: its stop keeper (pid ",
        ") runs the 2 pending stop commands when due\n",
        "] 2001:db8::1: d: command timeout\n",
        &format!(
            "] d: running command: echo a 192.0.2.1 >> {}\n",
            s.path("ran").display()
        ),
    ] {
        assert!(log.contains(want), "{want:?} in\n{log}");
    }
}

#[test]
fn after_a_goodbye_the_keeper_runs_nothing() {
    let s = Setup::new("keeper-bye");
    let a = s.stop("a", "192.0.2.1");
    s.write_journal(std::slice::from_ref(&a));
    let mut link = s.link();
    let pid = s.keeper_pid();
    assert!(link.schedule(1, in_ms(200), &a).is_empty());
    link.bye();
    assert!(!alive(pid), "the keeper left at once");
    assert!(!s.path("k.conf.0123456789abcdef.keeper").exists());
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.ran().is_empty());
    assert_eq!(StopJournal::open(&s.journal(), 0).pending, [a]);
}

#[test]
fn a_keeper_that_dies_is_replaced_and_told_everything_again() {
    let s = Setup::new("keeper-again");
    let a = s.stop("a", "192.0.2.1");
    s.write_journal(std::slice::from_ref(&a));
    let mut link = s.link();
    let first = s.keeper_pid();
    assert!(link.schedule(1, in_ms(1500), &a).is_empty());
    kill9(first);
    wait_until("the first keeper died", || !alive(first));
    let notes = link.sync();
    assert!(
        matches!(&notes[..], [(crate::log::Kind::Error, line)]
            if line == &format!("stop keeper (pid {first}) ended: signal: 9 (SIGKILL); starting another")),
        "{notes:?}"
    );
    // The next one after a pause of a second.
    assert!(link.sync().is_empty());
    assert_eq!(s.keeper_pid(), first);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(link.sync().is_empty());
    let second = s.keeper_pid();
    assert_ne!(second, first);
    drop(link);
    wait_until("the stop ran", || s.ran() == ["a 192.0.2.1"]);
    wait_until("the keeper left", || !alive(second));
    assert!(StopJournal::open(&s.journal(), 0).pending.is_empty());
}

/// A stop command too long for a frame is not sent (the keeper would refuse the frame and
/// end, and every keeper after it too): the daemon says so and the keeper keeps the others.
#[test]
fn a_stop_too_long_for_the_channel_is_said_and_the_keeper_keeps_the_others() {
    let s = Setup::new("keeper-long");
    let a = s.stop("a", "192.0.2.1");
    let long = Pending {
        template: format!("{} # {}", a.template, "x".repeat(70_000)),
        src: "192.0.2.2".parse().unwrap(),
        ..a.clone()
    };
    s.write_journal(&[a.clone(), long.clone()]);
    let mut link = s.link();
    let pid = s.keeper_pid();
    let notes = link.schedule(1, in_ms(200), &long);
    assert!(
        matches!(&notes[..], [(crate::log::Kind::Error, line)]
            if line.starts_with("192.0.2.2: d: stop command too long for the stop keeper (a message of 70")
                && line.ends_with(" bytes (the stop keeper takes at most 65536)): should knockd-lite \
                    end without a clean stop, this stop runs at its next start, not on time")),
        "{notes:?}"
    );
    assert!(link.schedule(2, in_ms(200), &a).is_empty());
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(pid), "the keeper took the stop it could");
    assert!(link.sync().is_empty(), "and lives on");
    drop(link);
    wait_until("the stop it was told ran", || s.ran() == ["a 192.0.2.1"]);
    wait_until("the keeper left", || !alive(pid));
    assert_eq!(StopJournal::open(&s.journal(), 0).pending, [long]);
}

#[test]
fn retire_previous_ignores_what_is_not_a_keeper_of_this_journal() {
    let s = Setup::new("keeper-retire");
    let pid_file = s.path("k.conf.0123456789abcdef.keeper");
    // No file, a pid that is not a keeper: nothing to do.
    assert_eq!(
        super::retire_previous(&pid_file, &s.journal(), Duration::ZERO),
        None
    );
    fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    assert_eq!(
        super::retire_previous(&pid_file, &s.journal(), Duration::ZERO),
        None
    );
    // A live keeper whose command line is not `knockd-lite --stop-keeper JOURNAL` (the
    // tests' keeper is the test binary): not signalled. The real case is end-to-end.
    let mut link = s.link();
    assert_eq!(
        super::retire_previous(&pid_file, &s.journal(), Duration::ZERO),
        None
    );
    link.bye();
    assert!(!Path::new(&pid_file).exists());
}

fn kill9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
