//! The main loop's ordering rules, run without root: frames come from the replay source
//! (through the compiled filter), commands go to a runner that only records them, and the
//! wall clock is virtual.
//!
//! The rules: a one-time line is marked used (and an HMAC counter recorded) before the
//! start command runs; when that fails the start does not run and neither does its stop;
//! a stop runs `Cmd_Timeout` after its start finished; at shutdown a stop waits behind its
//! start while that still runs.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::rc::Rc;

use clap::Parser;
use knock_core::conf::SequenceSource;
use knock_core::hit::{Hit, Proto, TcpFlags};
use knock_core::secret::Secret;
use knock_core::wire::{Ipv4Header, LinkType, TcpSegment, Transport, UdpDatagram, ipv4_packet};
use knockd_engine::bpf::Families;
use knockd_engine::{CommandId, Options};

use super::gate::{Limits, QUEUE_LEN};
use super::*;
use crate::capture::{ReplayFrame, ReplaySource};
use crate::door_files;
use crate::exec::{Completion, Outcome};
use crate::keeper::msg::Message;
use crate::keeper::{KeeperLink, Launch};
use crate::log::Logger;
use crate::stops::StopJournal;
use crate::testutil::Scratch;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The virtual clock starts here (ms since the epoch).
const T0: u64 = 1_700_000_000_000;

/// Both clocks: the monotonic one at `mono`, the wall clock `offset` ms ahead of it.
fn both(mono: u64, offset: i64) -> Now {
    Now::new(
        Mono::from_millis(mono),
        Timestamp::from_millis(mono.checked_add_signed(offset).unwrap()),
    )
}

/// What the runner was asked to do and did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A command started; with the watched file's text at that moment.
    Spawned(String, Option<String>),
    /// A command's completion was handed to the loop.
    Finished(String),
    /// A command was killed with its process group.
    Killed(String),
}

#[derive(Debug, Default)]
struct Shell {
    seen: Vec<Seen>,
    running: Vec<(CommandId, String)>,
    /// Every command by its id.
    names: HashMap<CommandId, String>,
    /// A file to read at each spawn, as the command would find it.
    watch: Option<PathBuf>,
    /// Whether a wait (shutdown's) lets every running command finish.
    finish_on_wait: bool,
    /// Commands that never finish on their own, whatever a wait does.
    hang: Vec<String>,
    /// The virtual monotonic clock, moved on by each wait that finishes nothing.
    clock: Option<Rc<Cell<u64>>>,
    done: Vec<Completion>,
}

impl Shell {
    /// Lets the running `command` finish with exit status 0.
    fn finish(&mut self, command: &str) {
        let i = self
            .running
            .iter()
            .position(|(_, c)| c == command)
            .unwrap_or_else(|| panic!("{command:?} is not running: {:?}", self.running));
        let (id, _) = self.running.remove(i);
        self.done.push(Completion {
            id,
            outcome: Outcome::Exited(0),
            duration: Duration::ZERO,
        });
    }

    fn hand_over(&mut self) -> Vec<Completion> {
        let done = std::mem::take(&mut self.done);
        for c in &done {
            let command = self.command_of(c.id);
            self.seen.push(Seen::Finished(command));
        }
        done
    }

    fn command_of(&self, id: CommandId) -> String {
        self.names.get(&id).cloned().unwrap_or_default()
    }

    fn spawned(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Spawned(c, _) => Some(c.clone()),
                Seen::Finished(_) | Seen::Killed(_) => None,
            })
            .collect()
    }
}

/// A runner that runs nothing: it records what it is asked and completes commands when the
/// test says so.
#[derive(Debug)]
struct FakeRunner(Rc<RefCell<Shell>>);

impl Runner for FakeRunner {
    fn spawn(&mut self, id: CommandId, command: &str) {
        let mut sh = self.0.borrow_mut();
        let text = sh
            .watch
            .as_ref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default());
        sh.seen.push(Seen::Spawned(command.to_string(), text));
        sh.running.push((id, command.to_string()));
        sh.names.insert(id, command.to_string());
    }

    fn completions(&mut self) -> Vec<Completion> {
        self.0.borrow_mut().hand_over()
    }

    fn wait_idle(&mut self, timeout: Duration) -> Vec<Completion> {
        let mut sh = self.0.borrow_mut();
        if sh.finish_on_wait {
            // One at a time, oldest first: a stop released by its start's completion
            // finishes on a later wait.
            let next = sh
                .running
                .iter()
                .find(|(_, c)| !sh.hang.contains(c))
                .map(|(_, c)| c.clone());
            if let Some(command) = next {
                sh.finish(&command);
            }
        }
        if sh.done.is_empty()
            && let Some(clock) = &sh.clock
        {
            clock.set(clock.get() + timeout.as_millis() as u64);
        }
        sh.hand_over()
    }

    fn kill(&mut self, id: CommandId) {
        let mut sh = self.0.borrow_mut();
        if let Some(i) = sh.running.iter().position(|(r, _)| *r == id) {
            let (_, command) = sh.running.remove(i);
            sh.seen.push(Seen::Killed(command));
            sh.done.push(Completion {
                id,
                outcome: Outcome::Killed,
                duration: Duration::ZERO,
            });
        }
    }
}

/// nftables sets that only record what they are asked; `fail` makes every add fail.
#[derive(Debug, Default)]
struct Kernel {
    calls: Vec<String>,
    fail: Option<i32>,
}

struct FakeSets(Rc<RefCell<Kernel>>);

impl crate::nft::Sets for FakeSets {
    fn add(
        &mut self,
        set: &knock_core::conf::NftSet,
        addr: IpAddr,
        timeout: Duration,
    ) -> Result<(), crate::nft::NftError> {
        let mut k = self.0.borrow_mut();
        k.calls
            .push(format!("add {set} {addr} {}ms", timeout.as_millis()));
        match k.fail {
            Some(errno) => Err(crate::nft::NftError::Kernel(errno)),
            None => Ok(()),
        }
    }

    fn delete(
        &mut self,
        set: &knock_core::conf::NftSet,
        addr: IpAddr,
    ) -> Result<bool, crate::nft::NftError> {
        self.0
            .borrow_mut()
            .calls
            .push(format!("delete {set} {addr}"));
        Ok(true)
    }

    fn describe(
        &mut self,
        set: &knock_core::conf::NftSet,
    ) -> Result<crate::nft::SetInfo, crate::nft::NftError> {
        self.0.borrow_mut().calls.push(format!("describe {set}"));
        Err(crate::nft::NftError::NoSet(set.clone()))
    }
}

/// A server on a replay source and a fake runner, with its folder, log and clock.
struct Harness {
    dir: Scratch,
    server: Server<ReplaySource, FakeRunner>,
    shell: Rc<RefCell<Shell>>,
    kernel: Rc<RefCell<Kernel>>,
    /// The monotonic clock, ms.
    clock: Rc<Cell<u64>>,
    /// The wall clock's lead on `clock`, ms.
    wall_offset: Rc<Cell<i64>>,
    /// What the stop keeper was told.
    told: Rc<RefCell<Vec<Message>>>,
}

/// The interface every lookup finds: up, with the server's address.
fn test_iface(name: &str) -> io::Result<Option<Interface>> {
    Ok(Some(Interface {
        name: name.to_string(),
        index: 7,
        hatype: 0xfffe,
        flags: libc::IFF_UP as u32,
        addrs: vec![IpAddr::V4(SERVER)],
    }))
}

impl Harness {
    /// A server for `conf`, after writing `files` (name, text, mode) next to it.
    fn new(conf: &str, files: &[(&str, &str, u32)]) -> Harness {
        Harness::build(Scratch::new("serve"), 0, conf, files, Limits::default())
    }

    /// Like [`Harness::new`], started while the wall clock reads `wall_offset` ms ahead of
    /// the monotonic one.
    fn started_off(wall_offset: i64, conf: &str, files: &[(&str, &str, u32)]) -> Harness {
        Harness::build(
            Scratch::new("serve"),
            wall_offset,
            conf,
            files,
            Limits::default(),
        )
    }

    /// [`Harness::new`] in a folder that may hold state from an earlier server.
    fn in_dir(dir: Scratch, conf: &str, files: &[(&str, &str, u32)]) -> Harness {
        Harness::build(dir, 0, conf, files, Limits::default())
    }

    /// Like [`Harness::new`], with other limits on start commands.
    fn with_limits(conf: &str, files: &[(&str, &str, u32)], limits: Limits) -> Harness {
        Harness::build(Scratch::new("serve"), 0, conf, files, limits)
    }

    fn build(
        dir: Scratch,
        wall_offset: i64,
        conf: &str,
        files: &[(&str, &str, u32)],
        limits: Limits,
    ) -> Harness {
        use std::os::unix::fs::PermissionsExt;
        for (name, text, mode) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        std::fs::write(dir.path().join("k.conf"), conf).unwrap();
        let args = Args::try_parse_from([
            "knockd-lite",
            "-c",
            "k.conf",
            "-i",
            "test0",
            "-g",
            "k.log",
            "--state-dir",
            "state",
        ])
        .unwrap();
        let base = dir.path().to_path_buf();
        let (config, settings) = settings::load(&args, &base).unwrap();
        let clock = Rc::new(Cell::new(T0));
        let wall_offset = Rc::new(Cell::new(wall_offset));
        let read = {
            let (clock, wall_offset) = (Rc::clone(&clock), Rc::clone(&wall_offset));
            move || both(clock.get(), wall_offset.get())
        };
        let counters = HmacCounters::load(
            &settings.state_file,
            Some(&settings.legacy_state_file),
            read().mono,
        )
        .unwrap();
        let door_files::Loaded { mut inputs, lists } =
            door_files::load(&config, &counters.used()).unwrap();
        inputs.local_addrs = vec![IpAddr::V4(SERVER)];
        let (engine, first_actions) =
            Engine::new(&config, inputs, Options::default(), read()).unwrap();
        let logger = Logger::open(settings.log_config(&args));
        let shell = Rc::new(RefCell::new(Shell::default()));
        let kernel = Rc::new(RefCell::new(Kernel::default()));
        let watch = Watch::new("test0", test_iface("test0").unwrap());
        let opened = StopJournal::open(&settings.stops_file, read().wall.unix_seconds());
        let told = Rc::new(RefCell::new(Vec::new()));
        let mut keeper = KeeperLink::new(
            Launch::Record(Rc::clone(&told)),
            settings.keeper_file.clone(),
            Duration::from_secs(60),
        );
        keeper.set_wanted(super::doors::has_stop_commands(&config));
        let mut server = Server {
            args,
            base,
            settings,
            config,
            engine,
            capture: ReplaySource::new(LinkType::RawIp, Families::Both),
            watch,
            lookup: test_iface,
            journal: Journal::new(logger, None),
            commands: Commands::new(FakeRunner(Rc::clone(&shell)), limits),
            counters,
            lists,
            sets: Box::new(FakeSets(Rc::clone(&kernel))),
            open_sets: Default::default(),
            stops: opened.journal,
            keeper,
            clock: Box::new(read),
            _pidfile: None,
            turn: Turn::default(),
        };
        server.begin(first_actions);
        server.take_over(opened.problem, opened.pending);
        Harness {
            dir,
            server,
            shell,
            kernel,
            clock,
            wall_offset,
            told,
        }
    }

    /// The wall clock, ms.
    fn wall(&self) -> u64 {
        both(self.clock.get(), self.wall_offset.get())
            .wall
            .as_millis()
    }

    /// Steps the wall clock by `ms` (back when negative); the monotonic clock stays.
    fn step_wall(&self, ms: i64) {
        self.wall_offset.set(self.wall_offset.get() + ms);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Keeps the loop's once-a-second duties (on the real clock) from running, so the lines
    /// counting held-back start commands come only when the test asks for them.
    fn hold_the_tick(&mut self) {
        self.server.turn.next_tick = std::time::Instant::now() + Duration::from_secs(3600);
    }

    /// Moves the virtual clock on.
    fn wait(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// One packet per hit from CLIENT, 100 ms apart, through the loop's receive step.
    fn knock(&mut self, hits: &[(Proto, u16)]) {
        self.knock_from(CLIENT, hits, 100);
    }

    /// Like [`Harness::knock`], from `src` with `gap_ms` before each hit.
    fn knock_from(&mut self, src: Ipv4Addr, hits: &[(Proto, u16)], gap_ms: u64) {
        for &(proto, port) in hits {
            self.wait(gap_ms);
            self.arrive(src, proto, port);
            self.server.receive();
        }
        self.server.housekeep();
    }

    /// One packet from `src` reaches the capture now, through the filter installed now; the
    /// loop does not look at it yet.
    fn arrive(&mut self, src: Ipv4Addr, proto: Proto, port: u16) {
        let l4 = match proto {
            Proto::Tcp => Transport::Tcp(TcpSegment::new(40000, port, TcpFlags::SYN)),
            Proto::Udp => Transport::Udp(UdpDatagram {
                src_port: 40000,
                dst_port: port,
                payload: b"k",
            }),
        };
        let data = ipv4_packet(&Ipv4Header::new(src, SERVER), &l4).unwrap();
        self.server.capture.push(ReplayFrame {
            ts_ns: self.wall() * 1_000_000,
            vlan: None,
            data,
        });
    }

    /// One loop turn after moving the clock on by `ms`.
    fn turn_after(&mut self, ms: u64) {
        self.wait(ms);
        self.server.receive();
        self.server.housekeep();
    }

    fn spawned(&self) -> Vec<String> {
        self.shell.borrow().spawned()
    }

    fn finish(&mut self, command: &str) {
        self.shell.borrow_mut().finish(command);
        self.server.housekeep();
    }

    /// The log's bodies, without their stamps.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("k.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once("] ").map_or(l, |(_, b)| b).to_string())
            .collect()
    }
}

const TCP: Proto = Proto::Tcp;
const UDP: Proto = Proto::Udp;

#[test]
fn a_one_time_line_is_marked_used_before_its_start_command_runs() {
    let list = " 7000,8000:udp\n 7001,8001:udp\n";
    let mut h = Harness::new(
        "[otp]\none_time_sequences = otp.list\nstart_command = open %IP%\n",
        &[("otp.list", list, 0o600)],
    );
    h.shell.borrow_mut().watch = Some(h.path("otp.list"));
    // The second line's knocks do nothing while the first line is the active one (the
    // filter passes them, the engine does not want them yet).
    h.knock(&[(TCP, 7001), (UDP, 8001)]);
    assert!(h.spawned().is_empty());
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    let seen = h.shell.borrow().seen.clone();
    assert_eq!(
        seen,
        [Seen::Spawned(
            "open 192.0.2.1".into(),
            Some("#7000,8000:udp\n 7001,8001:udp\n".into())
        )],
        "the command found its line already used"
    );
    let log = h.log();
    let opened = log.iter().position(|l| l == "192.0.2.1: otp: OPEN SESAME");
    let ran = log
        .iter()
        .position(|l| l == "otp: running command: open 192.0.2.1");
    assert!(opened.is_some() && opened < ran, "{log:#?}");
    // The next line is live now, through a filter rebuilt for it.
    h.knock(&[(TCP, 7001), (UDP, 8001)]);
    assert_eq!(h.spawned(), ["open 192.0.2.1", "open 192.0.2.1"]);
}

/// The conformance harness's `one_time` case failed now and then: the next line, knocked
/// right after one was used, was lost. The engine moves to the next line as the last hit
/// of the active one is read, but the filter made for it went into the kernel only at the
/// end of the loop turn, after the line was marked used with an fsync, which under disk
/// load took 0.7 s and more (strace). The next line's first hit arrived meanwhile and met
/// the old filter, which dropped it. Here every line's hits arrive in that window, before
/// the loop rebuilds the filter: the filter must already pass them.
#[test]
fn the_next_one_time_line_knocked_before_the_filter_is_rebuilt_opens() {
    let lines = 6u16;
    let list: String = (0..lines)
        .map(|i| format!(" {},{}:udp\n", 7000 + i, 8000 + i))
        .collect();
    let mut h = Harness::new(
        "[otp]\none_time_sequences = otp.list\nstart_command = open %IP%\n",
        &[("otp.list", &list, 0o600)],
    );
    h.knock(&[(TCP, 7000)]);
    for i in 0..lines {
        h.wait(100);
        h.arrive(CLIENT, UDP, 8000 + i);
        // The last hit of line i: the engine moves on and the line is marked used.
        h.server.receive();
        if i + 1 < lines {
            // The next line's first hit reaches the kernel before the filter is rebuilt.
            h.wait(1);
            h.arrive(CLIENT, TCP, 7000 + i + 1);
        }
        h.server.housekeep();
        h.server.receive();
        assert_eq!(h.spawned().len(), usize::from(i) + 1, "line {}", i + 1);
    }
    let marked = std::fs::read_to_string(h.path("otp.list")).unwrap();
    assert_eq!(marked.matches('#').count(), usize::from(lines), "{marked}");
}

/// The hostile run's findings: a list replaced on disk without SIGHUP got `#` written at
/// the old list's offsets; and a line that could not be marked (an immutable list) was
/// skipped in memory while the disk kept it unused, so after a restart server and client
/// disagreed. The server notices the replacement and writes nothing, and follows the list
/// as it is on disk.
#[test]
fn a_replaced_list_is_not_written_and_memory_follows_the_disk() {
    let list = " 7000,8000:udp\n 7001,8001:udp\n";
    let mut h = Harness::new(
        "[otp]\none_time_sequences = otp.list\nstart_command = open %IP%\n",
        &[("otp.list", list, 0o600)],
    );
    // Replaced by a copy with the same text: another file.
    std::fs::write(h.path("copy"), list).unwrap();
    std::fs::rename(h.path("copy"), h.path("otp.list")).unwrap();
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    assert!(h.spawned().is_empty());
    assert_eq!(std::fs::read_to_string(h.path("otp.list")).unwrap(), list);
    let log = h.log();
    assert!(
        log.iter().any(|l| l
            .ends_with("used, command not run: the list was replaced or edited since it was read")),
        "{log:#?}"
    );
    // Memory agrees with the disk: line 1 is still the one, line 2 is not yet.
    h.knock(&[(TCP, 7001), (UDP, 8001)]);
    assert!(h.spawned().is_empty());
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    assert_eq!(
        std::fs::read_to_string(h.path("otp.list")).unwrap(),
        "#7000,8000:udp\n 7001,8001:udp\n"
    );
}

#[test]
fn a_line_that_cannot_be_marked_stays_the_active_line() {
    let list = " 7000,8000:udp\n 7001,8001:udp\n";
    let mut h = Harness::new(
        "[otp]\none_time_sequences = otp.list\nstart_command = open %IP%\n",
        &[("otp.list", list, 0o600)],
    );
    // Someone holds the list locked (as an immutable list refuses the write): the mark
    // fails with the disk unchanged, and the server's view stays with the disk's.
    let held = std::fs::File::open(h.path("otp.list")).unwrap();
    held.lock().unwrap();
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    assert!(h.spawned().is_empty());
    assert!(
        h.log()
            .iter()
            .any(|l| l.contains("held locked by another process")),
        "{:#?}",
        h.log()
    );
    drop(held);
    h.knock(&[(TCP, 7001), (UDP, 8001)]);
    assert!(
        h.spawned().is_empty(),
        "line 2 is not next: line 1 is unused on disk"
    );
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
}

#[test]
fn a_line_that_cannot_be_marked_runs_neither_the_start_nor_its_stop() {
    let mut h = Harness::new(
        "[otp]\none_time_sequences = otp.list\nstart_command = open %IP%\n\
         stop_command = close %IP%\ncmd_timeout = 5\n",
        &[("otp.list", "7000,8000:udp\n", 0o600)],
    );
    // Someone else edits the list after it was read: the line is no longer where it was.
    std::fs::write(h.path("otp.list"), "#used\n").unwrap();
    h.knock(&[(TCP, 7000), (UDP, 8000)]);
    assert!(h.spawned().is_empty());
    let log = h.log();
    let want = format!(
        "otp: cannot mark line 1 of {} used, command not run: ",
        h.path("otp.list").display()
    );
    assert!(log.iter().any(|l| l.starts_with(&want)), "{log:#?}");
    assert!(
        !log.iter().any(|l| l.contains("running command")),
        "{log:#?}"
    );
    // Neither Cmd_Timeout nor shutdown brings the stop.
    h.turn_after(10_000);
    h.server.shutdown();
    assert!(h.spawned().is_empty(), "{:?}", h.spawned());
    assert_eq!(h.log().last().map(String::as_str), Some("shutting down"));
}

#[test]
fn an_hmac_counter_that_cannot_be_recorded_runs_no_command() {
    let conf = "[h]\nhmac_secret_file = h.key\nhmac_length = 2\nhmac_skew = 0\n\
                start_command = open %IP%\n";
    let mut h = Harness::new(conf, &[("h.key", "s3cret\n", 0o600)]);
    // The state folder cannot be made: a file has its name.
    std::fs::write(h.path("state"), "").unwrap();
    let hits = hmac_hits(&h, "h", "s3cret");
    h.knock(&hits);
    assert!(h.spawned().is_empty());
    let log = h.log();
    let want = format!(
        "h: cannot record HMAC counter {} in {}, command not run: ",
        h.wall() / 1000 / 30,
        h.server.settings.state_file.display()
    );
    assert!(log.iter().any(|l| l.starts_with(&want)), "{log:#?}");

    // Once the state can be written, the next window's sequence opens the door, and the
    // counter is on disk before the command runs.
    std::fs::remove_file(h.path("state")).unwrap();
    h.shell.borrow_mut().watch = Some(h.server.settings.state_file.clone());
    // The window moves on a timer, which also rebuilds the filter for the new sequence.
    h.turn_after(30_000);
    let hits = hmac_hits(&h, "h", "s3cret");
    h.knock(&hits);
    let seen = h.shell.borrow().seen.clone();
    let [Seen::Spawned(command, Some(state))] = &seen[..] else {
        panic!("{seen:?}")
    };
    assert_eq!(command, "open 192.0.2.1");
    let counter = h.wall() / 1000 / 30;
    assert!(state.contains(&format!("{counter}\th\n")), "{state:?}");
}

/// The hits of HMAC door `door` at the virtual clock's time.
fn hmac_hits(h: &Harness, door: &str, secret: &str) -> Vec<(Proto, u16)> {
    let d = h
        .server
        .config
        .doors
        .iter()
        .find(|d| d.name == door)
        .unwrap();
    let SequenceSource::Hmac(params) = &d.sequence else {
        panic!("{door} is not an HMAC door")
    };
    let hits: Vec<Hit> = params
        .params(door)
        .derive_at(&Secret::from_text(secret), h.wall() / 1000)
        .unwrap();
    hits.iter().map(|hit| (hit.proto, hit.port)).collect()
}

#[test]
fn a_stop_runs_cmd_timeout_after_its_start_finished() {
    let mut h = Harness::new(
        "[d]\nsequence = 7000,8000\nstart_command = open %IP%\nstop_command = close %IP%\n\
         cmd_timeout = 10\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    // The start takes 30 s: Cmd_Timeout counts from its end.
    h.turn_after(30_000);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    h.finish("open 192.0.2.1");
    h.turn_after(9_999);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    h.turn_after(1);
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);
    assert!(
        h.log()
            .contains(&"192.0.2.1: d: command timeout".to_string())
    );
}

#[test]
fn at_shutdown_a_stop_waits_behind_its_running_start() {
    let mut h = Harness::new(
        "[d]\nsequence = 7000,8000\nstart_command = open %IP%\nstop_command = close %IP%\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.shell.borrow_mut().finish_on_wait = true;
    h.server.shutdown();
    let seen = h.shell.borrow().seen.clone();
    let (open, close) = ("open 192.0.2.1".to_string(), "close 192.0.2.1".to_string());
    assert_eq!(
        seen,
        [
            Seen::Spawned(open.clone(), None),
            Seen::Finished(open),
            Seen::Spawned(close.clone(), None),
            Seen::Finished(close),
        ]
    );
    let log = h.log();
    assert!(
        log.contains(&"192.0.2.1: d: shutting down, running the stop command now".to_string()),
        "{log:#?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("shutting down"));
}

/// The hostile run's finding: with `start_command = sleep 27; echo open`, SIGTERM ran the
/// stop at 20 s while the start still ran, and the start finished afterwards: the door
/// was left open. Now the start is killed with its process group first.
#[test]
fn at_shutdown_a_start_that_runs_too_long_is_killed_before_its_stop() {
    let mut h = Harness::new(
        "[d]\nsequence = 7000,8000\nstart_command = open %IP%\nstop_command = close %IP%\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    {
        let mut sh = h.shell.borrow_mut();
        sh.finish_on_wait = true;
        sh.hang = vec!["open 192.0.2.1".into()];
        sh.clock = Some(Rc::clone(&h.clock));
    }
    let before = h.clock.get();
    h.server.shutdown();
    let seen = h.shell.borrow().seen.clone();
    let (open, close) = ("open 192.0.2.1".to_string(), "close 192.0.2.1".to_string());
    assert_eq!(
        seen,
        [
            Seen::Spawned(open.clone(), None),
            Seen::Killed(open.clone()),
            Seen::Finished(open),
            Seen::Spawned(close.clone(), None),
            Seen::Finished(close),
        ]
    );
    let waited = h.clock.get() - before;
    assert!(
        (SHUTDOWN_WAIT.as_millis() as u64..SHUTDOWN_WAIT.as_millis() as u64 + 1000)
            .contains(&waited),
        "{waited} ms"
    );
    let log = h.log();
    let at = |needle: &str| {
        log.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in {log:#?}"))
    };
    assert!(
        at("still running after 20 s at shutdown: killed with its process group")
            < at("d: command killed with its process group")
    );
    assert!(at("d: command killed with its process group") < at("running command: close"));
    assert_eq!(log.last().map(String::as_str), Some("shutting down"));
}

#[test]
fn a_stop_whose_start_finished_runs_at_once_at_shutdown() {
    let mut h = Harness::new(
        "[d]\nsequence = 7000,8000\nstart_command = open %IP%\nstop_command = close %IP%\n\
         cmd_timeout = 3600\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.finish("open 192.0.2.1");
    h.shell.borrow_mut().finish_on_wait = true;
    h.server.shutdown();
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);
}

/// The hostile run's finding: started while the wall clock was two hours ahead, then
/// corrected, the server ran no stop command until SIGTERM, let a late hit advance a
/// sequence, and refused the HMAC door's current sequence.
#[test]
fn a_wall_clock_set_back_freezes_no_timer_and_moves_the_hmac_window() {
    const HOUR: i64 = 3_600_000;
    let conf = "[d]\nsequence = 7000,8000\nseq_timeout = 5\nstart_command = open %IP%\n\
                stop_command = close %IP%\ncmd_timeout = 10\n\
                [h]\nhmac_secret_file = h.key\nhmac_length = 2\nhmac_skew = 0\n\
                start_command = hmac %IP%\n";
    let mut h = Harness::started_off(2 * HOUR, conf, &[("h.key", "s3cret\n", 0o600)]);
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.finish("open 192.0.2.1");
    h.step_wall(-2 * HOUR);

    // Seq_Timeout expires: a hit 8 s after the first advances nothing.
    h.knock(&[(TCP, 7000)]);
    h.turn_after(8000);
    h.knock(&[(TCP, 8000)]);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    assert!(
        h.log()
            .contains(&"192.0.2.1: d: sequence timeout (stage 1)".to_string())
    );

    // The stop is due 10 s after the start finished: 8.2 s have passed.
    h.turn_after(1_799);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    h.turn_after(1);
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);

    // The HMAC door listens for the corrected clock's sequence, through the kernel filter.
    let hits = hmac_hits(&h, "h", "s3cret");
    h.knock(&hits);
    assert_eq!(
        h.spawned(),
        ["open 192.0.2.1", "close 192.0.2.1", "hmac 192.0.2.1"]
    );
}

#[test]
fn a_wall_clock_a_day_ahead_during_a_reload_fires_nothing_early() {
    const DAY: i64 = 86_400_000;
    let mut h = Harness::new(
        "[d]\nsequence = 7000,8000\nstart_command = open %IP%\nstop_command = close %IP%\n\
         cmd_timeout = 10\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.finish("open 192.0.2.1");
    // A second a day ahead, with a loop turn (what a SIGHUP does to the engine is in the
    // engine's replay tests), then back.
    h.step_wall(DAY);
    h.turn_after(1000);
    h.step_wall(-DAY);
    h.turn_after(8_999);
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    h.turn_after(1);
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);
}

/// The hostile run's finding: about 1,365 distinct door ports made a filter the kernel
/// refused; the doors were deaf. They get a coarser filter now, said once in the log.
#[test]
fn doors_whose_filter_does_not_fit_get_a_coarser_one_and_still_open() {
    let mut conf = String::new();
    for i in 0..1500u16 {
        conf.push_str(&format!(
            "[d{i}]\nsequence = {},{}:udp\ntcpflags = syn\nstart_command = open {i}\n",
            10_000 + 3 * i,
            30_000 + 5 * i
        ));
    }
    let mut h = Harness::new(&conf, &[]);
    let log = h.log();
    let coarse: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("capture filter: the doors' 3000 rules need "))
        .collect();
    assert_eq!(coarse.len(), 1, "{log:#?}");
    assert!(
        coarse[0].contains("more than the kernel's 4096: using a coarser filter of "),
        "{}",
        coarse[0]
    );
    h.knock(&[(TCP, 10_000 + 3 * 1499), (UDP, 30_000 + 5 * 1499)]);
    h.knock(&[(TCP, 10_000), (UDP, 30_000)]);
    assert_eq!(h.spawned(), ["open 1499", "open 0"]);
    // A port between the doors' passes the coarse filter, and user space drops it.
    h.knock(&[(TCP, 10_001), (UDP, 30_000)]);
    assert_eq!(h.spawned(), ["open 1499", "open 0"]);
}

/// HMAC doors with long sequences and a wide skew outgrew the filter as the windows moved
/// (17 of 20 moves failed in one config), and their doors went deaf.
#[test]
fn hmac_windows_that_outgrow_the_filter_keep_their_doors_open() {
    let door = |name: &str| {
        format!(
            "[{name}]\nhmac_secret_file = {name}.key\nhmac_length = 32\nhmac_skew = 10\n\
             start_command = open {name}\n"
        )
    };
    // Three doors of 21 live sequences of 32 ports: about 2,000 ports at once.
    let conf = format!("{}{}{}", door("a"), door("b"), door("c"));
    let mut h = Harness::new(
        &conf,
        &[
            ("a.key", "secret a\n", 0o600),
            ("b.key", "secret b\n", 0o600),
            ("c.key", "secret c\n", 0o600),
        ],
    );
    for round in 0..3 {
        let hits = hmac_hits(&h, "b", "secret b");
        h.knock(&hits);
        assert_eq!(
            h.spawned().len(),
            round + 1,
            "round {round}: {:#?}",
            h.log()
        );
        // The next window: the filter is rebuilt for it.
        h.turn_after(30_000);
    }
    assert!(
        h.log().iter().any(|l| l.contains("using a coarser filter")),
        "{:#?}",
        h.log()
    );
}

#[test]
fn debug_lines_for_packets() {
    let p = KnockPacket {
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        proto: Proto::Tcp,
        dst_port: 7000,
        tcp_flags: TcpFlags::SYN | TcpFlags::ACK,
    };
    assert_eq!(
        describe(&p, None),
        "tcp 192.0.2.1 -> 192.0.2.2:7000 flags syn+ack"
    );
    let u = KnockPacket {
        src: "2001:db8::1".parse().unwrap(),
        dst: "2001:db8::2".parse().unwrap(),
        proto: Proto::Udp,
        dst_port: 53,
        tcp_flags: TcpFlags::NONE,
    };
    assert_eq!(
        describe(&u, Some(10)),
        "udp 2001:db8::1 -> [2001:db8::2]:53 vlan 10"
    );
}

#[test]
fn a_set_door_adds_the_knocker_and_a_clean_stop_takes_it_out() {
    let mut h = Harness::new(
        "[ssh]\nsequence = 7000,8000\nnft_set = inet filter ks\ncmd_timeout = 2.5\n\
         [gone]\nsequence = 7100,8100\nnft_set = inet filter ks2\ncmd_timeout = 0.001\n",
        &[],
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.knock(&[(TCP, 7100), (TCP, 8100)]);
    assert_eq!(
        h.kernel.borrow().calls,
        [
            "add inet filter ks 192.0.2.1 2500ms",
            "add inet filter ks2 192.0.2.1 1ms"
        ]
    );
    assert!(h.spawned().is_empty(), "no process for a set");
    std::thread::sleep(Duration::from_millis(5));
    h.server.shutdown();
    // Only the element still live is taken out (the other expired in the kernel).
    assert_eq!(
        h.kernel.borrow().calls[2..],
        ["delete inet filter ks 192.0.2.1"]
    );
    let log = h.log();
    for want in [
        "192.0.2.1: ssh: nft add inet filter ks 192.0.2.1 timeout 2.5s",
        "192.0.2.1: ssh: shutting down, nft delete inet filter ks 192.0.2.1",
    ] {
        assert!(log.contains(&want.to_string()), "{want}\n{log:#?}");
    }
}

#[test]
fn a_failed_add_is_logged_with_the_kernels_reason() {
    let mut h = Harness::new("[ssh]\nsequence = 7000\nnft_set = ip fw ks\n", &[]);
    h.kernel.borrow_mut().fail = Some(libc::ENOENT);
    h.knock(&[(TCP, 7000)]);
    let log = h.log();
    assert!(
        log.contains(
            &"192.0.2.1: ssh: nft add ip fw ks 192.0.2.1 timeout 10s: failed: \
              No such file or directory (os error 2)"
                .to_string()
        ),
        "{log:#?}"
    );
    h.server.shutdown();
    assert_eq!(h.kernel.borrow().calls.len(), 1, "nothing to take out");
}

const STOP_DOOR: &str = "[d]\nsequence = 7000,8000\nstart_command = open %IP%\n\
                         stop_command = close %IP%\ncmd_timeout = 10\n";

/// The stop journal's path in the harness's folder.
fn stops_file(h: &Harness) -> PathBuf {
    h.server.settings.stops_file.clone()
}

#[test]
fn a_pending_stop_is_on_disk_before_its_start_runs_and_gone_once_the_stop_ran() {
    let mut h = Harness::new(STOP_DOOR, &[]);
    let path = stops_file(&h);
    assert!(path.starts_with(h.path("state")));
    h.shell.borrow_mut().watch = Some(path.clone());
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    let seen = h.shell.borrow().seen.clone();
    let [Seen::Spawned(command, Some(journal))] = &seen[..] else {
        panic!("{seen:?}")
    };
    assert_eq!(command, "open 192.0.2.1");
    let knocked = h.clock.get();
    assert!(
        journal.ends_with(&format!(
            "\n{}\t10000\t192.0.2.1\td\tclose %IP%\n",
            knocked + 10_000
        )),
        "{journal:?}"
    );
    // The start takes 2 s: the stop is now due 10 s after it finished.
    h.turn_after(2_000);
    h.finish("open 192.0.2.1");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.ends_with(&format!(
            "\n{}\t10000\t192.0.2.1\td\tclose %IP%\n",
            knocked + 12_000
        )),
        "{text:?}"
    );
    h.turn_after(10_000);
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);
    assert!(path.exists(), "until the stop has finished");
    h.finish("close 192.0.2.1");
    assert!(!path.exists());
}

#[test]
fn a_pending_stop_that_cannot_be_recorded_keeps_the_door_shut() {
    let mut h = Harness::new(STOP_DOOR, &[]);
    std::fs::write(h.path("state"), "").unwrap();
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    assert!(h.spawned().is_empty());
    let want = format!(
        "d: cannot record the pending stop command in {}, command not run: ",
        stops_file(&h).display()
    );
    assert!(
        h.log().iter().any(|l| l.starts_with(&want)),
        "{:#?}",
        h.log()
    );
}

#[test]
fn after_a_crash_overdue_stops_run_at_once_and_later_ones_when_due() {
    let first = Harness::new(STOP_DOOR, &[]);
    let path = stops_file(&first);
    // Two stops from a process that died: one overdue, one due in 4 s, one whose clock
    // says an hour (the door's 10 s bound wins).
    let journal = format!(
        "# header\n{}\t10000\t192.0.2.7\td\tclose %IP%\n\
         {}\t10000\t2001:db8::7\tgone door\tbye %IP%\n\
         {}\t10000\t192.0.2.8\td\tclose %IP%\n",
        T0 - 60_000,
        T0 + 4_000,
        T0 + 3_600_000
    );
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &journal).unwrap();
    let Harness { dir, .. } = first;
    let mut h = Harness::in_dir(dir, STOP_DOOR, &[]);
    assert_eq!(h.spawned(), ["close 192.0.2.7"]);
    let log = h.log();
    let overdue = format!(
        "192.0.2.7: d: running overdue stop command (was due {})",
        crate::log::LocalTime::from_unix_ms(T0 - 60_000).second_stamp()
    );
    assert!(log.contains(&overdue), "{log:#?}");
    assert!(
        log.contains(
            &"2001:db8::7: gone door: stop command pending from before the restart, due in 4s"
                .to_string()
        ),
        "{log:#?}"
    );
    h.finish("close 192.0.2.7");
    h.turn_after(4_000);
    assert_eq!(h.spawned(), ["close 192.0.2.7", "bye 2001:db8::7"]);
    h.turn_after(6_000);
    assert_eq!(
        h.spawned(),
        ["close 192.0.2.7", "bye 2001:db8::7", "close 192.0.2.8"]
    );
    h.finish("bye 2001:db8::7");
    assert!(path.exists());
    h.finish("close 192.0.2.8");
    assert!(!path.exists(), "every stop ran");
}

#[test]
fn a_corrupt_journal_is_set_aside_and_the_server_starts() {
    let first = Harness::new(STOP_DOOR, &[]);
    let path = stops_file(&first);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "garbage\n").unwrap();
    let Harness { dir, .. } = first;
    let h = Harness::in_dir(dir, STOP_DOOR, &[]);
    let aside = format!("{}.corrupt-{}", path.display(), T0 / 1000);
    let log = h.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("stop journal ") && l.contains(&aside)),
        "{log:#?}"
    );
    assert!(!path.exists() && std::path::Path::new(&aside).exists());
}

/// The addresses of the stops in the journal, sorted.
fn journalled(h: &Harness) -> Vec<String> {
    let text = std::fs::read_to_string(stops_file(h)).unwrap_or_default();
    let mut addrs: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split('\t').nth(2).map(str::to_string))
        .collect();
    addrs.sort();
    addrs
}

/// Spoofed source `i` of 198.18.0.0/15.
fn spoofed(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xC612_0000 + i)
}

const PLAIN: &str = "[d]\nsequence = 7000,8000\nstart_command = open %IP%\n\
                     stop_command = close %IP%\ncmd_timeout = 10\n";

#[test]
fn a_replayed_sequence_starts_the_doors_rate_and_the_rest_is_dropped_and_counted() {
    let limits = Limits {
        max_running: 16,
        door_rate: 2,
    };
    let mut h = Harness::with_limits(PLAIN, &[], limits);
    h.hold_the_tick();
    for i in 0..10 {
        h.knock_from(spoofed(i), &[(TCP, 7000), (TCP, 8000)], 1);
    }
    assert_eq!(h.spawned(), ["open 198.18.0.0", "open 198.18.0.1"]);
    // Only the starts that run have their stop in the journal: a dropped one costs no write.
    assert_eq!(journalled(&h), ["198.18.0.0", "198.18.0.1"]);
    h.server.report_held_back(h.server.now());
    let log = h.log();
    // The dropped completions' OPEN SESAME lines are counted, not written one by one.
    let opened: Vec<&String> = log.iter().filter(|l| l.ends_with("OPEN SESAME")).collect();
    assert_eq!(
        opened,
        ["198.18.0.0: d: OPEN SESAME", "198.18.0.1: d: OPEN SESAME"]
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some(
            "d: start commands held back in the last second: 8 dropped over the door's rate \
             of 2/s (2 running, at most 16; 0 waiting); their OPEN SESAME lines are left \
             out: 198.18.0.2, 198.18.0.3, 198.18.0.4 and 5 more"
        )
    );
    // Only the two that ran get their stop, Cmd_Timeout after they finished; the dropped
    // ones get none, not even at shutdown.
    h.finish("open 198.18.0.0");
    h.finish("open 198.18.0.1");
    h.turn_after(10_000);
    h.shell.borrow_mut().finish_on_wait = true;
    h.server.shutdown();
    assert_eq!(
        h.spawned(),
        [
            "open 198.18.0.0",
            "open 198.18.0.1",
            "close 198.18.0.0",
            "close 198.18.0.1"
        ]
    );
}

/// The command flood's log: a plain door's sequence replayed from many spoofed sources. Each
/// completion used to write three lines (`Stage 2`, `Stage 3`, `OPEN SESAME`; `Stage 1` is
/// folded), a disk-filling lever. Now the completions whose start runs keep knockd's lines,
/// the dropped ones are counted in the door's line a second, and the stage lines of
/// attempts in progress are folded like first stages.
#[test]
fn a_replayed_sequence_costs_the_log_a_few_lines_a_second_not_lines_per_completion() {
    const THREE: &str = "[d]\nsequence = 7000,8000,9000\nstart_command = open %IP%\n";
    let limits = Limits {
        max_running: 1000,
        door_rate: 20,
    };
    let mut h = Harness::with_limits(THREE, &[], limits);
    h.hold_the_tick();
    let sources = 1000u32;
    // First all first hits, then all second hits, then all third, as the benchmark sends
    // them: within 30 ms.
    for (step, port) in [7000u16, 8000, 9000].into_iter().enumerate() {
        h.wait(10);
        for i in 0..sources {
            h.arrive(spoofed(i), TCP, port);
        }
        while h.server.capture.pending() > 0 {
            h.server.receive();
        }
        assert!(step < 2 || h.spawned().len() == 20);
    }
    h.turn_after(1000);
    h.server.report_held_back(h.server.now());
    h.server.journal.tick(h.server.now());
    let log = h.log();
    let runs = h.spawned();
    assert_eq!(runs.len(), 20, "the door's burst");
    // Each start that runs keeps knockd's lines.
    for run in &runs {
        let src = run.strip_prefix("open ").unwrap();
        for line in [
            format!("{src}: d: Stage 3"),
            format!("{src}: d: OPEN SESAME"),
            format!("d: running command: open {src}"),
        ] {
            assert!(log.contains(&line), "{line} missing: {log:#?}");
        }
    }
    assert_eq!(
        log.iter().filter(|l| l.ends_with("OPEN SESAME")).count(),
        20
    );
    assert!(
        log.contains(
            &"d: start commands held back in the last second: 980 dropped over the door's rate of \
          20/s (20 running, at most 1000; 0 waiting); their OPEN SESAME lines are left out: \
          198.18.0.20, 198.18.0.21, 198.18.0.22 and 977 more"
                .to_string()
        )
    );
    assert!(log.contains(&"990 more first-stage knocks suppressed".to_string()));
    assert!(log.contains(&"990 more later-stage knocks suppressed".to_string()));
    // starting up, 10 + 10 stage lines before folding, 20 x 3 lines of the runs, the
    // summaries and the door's line: 84 lines for 1,000 completions (3,000 before).
    assert_eq!(log.len(), 1 + 10 + 10 + 60 + 2 + 1, "{log:#?}");
}

#[test]
fn beyond_the_cap_starts_wait_in_order_and_run_as_commands_finish() {
    let limits = Limits {
        max_running: 1,
        door_rate: 0,
    };
    let mut h = Harness::with_limits(PLAIN, &[], limits);
    h.hold_the_tick();
    for i in 0..3 {
        h.knock_from(spoofed(i), &[(TCP, 7000), (TCP, 8000)], 1);
    }
    assert_eq!(h.spawned(), ["open 198.18.0.0"]);
    h.server.report_held_back(h.server.now());
    assert_eq!(
        h.log().last().map(String::as_str),
        Some(
            "d: start commands held back in the last second: 2 queued (1 running, at most 1; \
             2 waiting)"
        )
    );
    h.finish("open 198.18.0.0");
    assert_eq!(h.spawned(), ["open 198.18.0.0", "open 198.18.0.1"]);
    // Stops are never held back, even with the cap reached.
    h.turn_after(10_000);
    assert_eq!(
        h.spawned(),
        ["open 198.18.0.0", "open 198.18.0.1", "close 198.18.0.0"]
    );
    h.finish("open 198.18.0.1");
    h.finish("close 198.18.0.0");
    assert_eq!(h.spawned().len(), 4);
    assert_eq!(h.spawned()[3], "open 198.18.0.2");
}

#[test]
fn queued_starts_are_not_run_at_shutdown_and_neither_are_their_stops() {
    let limits = Limits {
        max_running: 1,
        door_rate: 0,
    };
    let mut h = Harness::with_limits(PLAIN, &[], limits);
    h.hold_the_tick();
    for i in 0..QUEUE_LEN as u32 + 3 {
        h.knock_from(spoofed(i), &[(TCP, 7000), (TCP, 8000)], 1);
    }
    assert_eq!(h.spawned(), ["open 198.18.0.0"]);
    h.shell.borrow_mut().finish_on_wait = true;
    h.server.shutdown();
    assert_eq!(h.spawned(), ["open 198.18.0.0", "close 198.18.0.0"]);
    // The queued starts' stops left the journal with them.
    assert!(journalled(&h).is_empty(), "{:?}", journalled(&h));
    let log = h.log();
    let not_run = format!("shutting down: {QUEUE_LEN} queued start command(s) not run");
    let counted = format!(
        "d: start commands held back in the last second: {QUEUE_LEN} queued, 2 dropped \
         with the queue full ({QUEUE_LEN}) (1 running, at most 1; 0 waiting); their OPEN \
         SESAME lines are left out: 198.18.0.{}, 198.18.0.{}",
        QUEUE_LEN + 1,
        QUEUE_LEN + 2
    );
    // Queued starts keep their lines: each was going to run.
    assert_eq!(
        log.iter().filter(|l| l.ends_with("OPEN SESAME")).count(),
        QUEUE_LEN + 1
    );
    let at = |want: &str| log.iter().position(|l| l == want);
    assert!(
        at(&not_run).is_some() && at(&not_run) < at(&counted),
        "{log:#?}"
    );
}

/// What the stop keeper was told after the greeting (`Hello`, `Log`) every keeper gets.
fn told(h: &Harness) -> Vec<Message> {
    h.told
        .borrow()
        .iter()
        .filter(|m| !matches!(m, Message::Hello { .. } | Message::Log { .. }))
        .cloned()
        .collect()
}

fn close_client(due_ms: u64) -> Pending {
    Pending {
        door: "d".into(),
        src: IpAddr::V4(CLIENT),
        template: "close %IP%".into(),
        due_ms,
        delay_ms: 10_000,
    }
}

#[test]
fn the_keeper_is_told_each_stop_as_the_journal_has_it_and_each_stop_that_ran() {
    let mut h = Harness::new(STOP_DOOR, &[]);
    assert!(
        matches!(
            h.told.borrow()[..],
            [
                Message::Hello {
                    limit_ms: 60_000,
                    ..
                },
                Message::Log { .. }
            ]
        ),
        "a config with stop commands has its keeper from the start: {:?}",
        h.told.borrow()
    );
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    let knocked = h.clock.get();
    let told_now = told(&h);
    let [Message::Schedule { id, .. }] = told_now[..] else {
        panic!("{told_now:?}")
    };
    // Both clocks read the same in the harness: the journal's wall-clock due time and
    // the keeper's monotonic one are equal numbers.
    let schedule = |due| Message::Schedule {
        id,
        due_ms: due,
        stop: close_client(due),
    };
    assert_eq!(told_now, [schedule(knocked + 10_000)]);
    // Before the start ran: the keeper knew of the stop when the journal did.
    assert_eq!(h.spawned(), ["open 192.0.2.1"]);
    h.turn_after(2_000);
    h.finish("open 192.0.2.1");
    assert_eq!(
        told(&h),
        [schedule(knocked + 10_000), schedule(knocked + 12_000)]
    );
    h.turn_after(10_000);
    assert_eq!(told(&h).len(), 2, "a stop running is not done yet");
    h.finish("close 192.0.2.1");
    assert_eq!(
        told(&h),
        [
            schedule(knocked + 10_000),
            schedule(knocked + 12_000),
            Message::Done { id }
        ]
    );
}

#[test]
fn a_clean_stop_runs_the_stops_then_says_goodbye() {
    let mut h = Harness::new(STOP_DOOR, &[]);
    h.knock(&[(TCP, 7000), (TCP, 8000)]);
    h.finish("open 192.0.2.1");
    h.shell.borrow_mut().finish_on_wait = true;
    h.server.shutdown();
    assert_eq!(h.spawned(), ["open 192.0.2.1", "close 192.0.2.1"]);
    let told = told(&h);
    assert!(
        matches!(
            told[..],
            [
                Message::Schedule { id: a, .. },
                Message::Schedule { id: b, .. },
                Message::Done { id: c },
                Message::Bye
            ] if a == b && b == c
        ),
        "{told:?}"
    );
}

#[test]
fn stops_taken_over_after_a_restart_go_to_the_keeper_too() {
    let first = Harness::new(STOP_DOOR, &[]);
    let path = stops_file(&first);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            "{}\t10000\t192.0.2.1\td\tclose %IP%\n{}\t10000\t192.0.2.1\td\tclose %IP%\n",
            T0 - 1_000,
            T0 + 4_000
        ),
    )
    .unwrap();
    let Harness { dir, .. } = first;
    let mut h = Harness::in_dir(dir, STOP_DOOR, &[]);
    assert_eq!(h.spawned(), ["close 192.0.2.1"]);
    let told_now = told(&h);
    let [
        Message::Schedule {
            id: overdue,
            due_ms: d1,
            ..
        },
        Message::Schedule {
            id: later,
            due_ms: d2,
            ..
        },
    ] = told_now[..]
    else {
        panic!("{told_now:?}")
    };
    assert_eq!((d1, d2), (T0, T0 + 4_000));
    h.finish("close 192.0.2.1");
    assert_eq!(told(&h)[2], Message::Done { id: overdue });
    h.turn_after(4_000);
    h.finish("close 192.0.2.1");
    assert_eq!(told(&h)[3], Message::Done { id: later });
}

#[test]
fn a_config_without_stop_commands_starts_no_keeper() {
    let mut h = Harness::new("[d]\nsequence = 7000\nstart_command = open %IP%\n", &[]);
    h.knock(&[(TCP, 7000)]);
    h.finish("open 192.0.2.1");
    assert!(h.told.borrow().is_empty());
}
