//! Whole runs of `knock` with a recording sender and clock: exit codes, what is printed
//! where, and what would have been sent.

mod connect;
mod import;
mod keygen;
mod otp;
mod profile;

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use knock_core::hit::Hit;
use knock_core::secret::source::Prompt;
use knock_core::send::{Dest, Grant, KnockSender, Privilege, SendOptions, Sender};

use crate::execute::testing::{Door, Event, FakeNet, Recorder};
use crate::output::Out;
use crate::{Ctx, run_with};

/// A string value as TOML writes it: a basic string, or a literal one (`'C:\x'`) when it
/// holds backslashes, as Windows paths do.
pub(crate) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(crate) struct Outcome {
    pub code: i32,
    pub out: String,
    pub err: String,
    pub events: Vec<Event>,
    /// The prompts shown on the terminal.
    pub asked: Vec<String>,
    /// What the sender was made with; `None` when the run made none.
    pub options: Option<SendOptions>,
}

/// An ordinary user on Linux: no CAP_NET_RAW.
pub(crate) const USER: Privilege = Privilege::Missing(Grant::RootOrCapNetRaw);

/// Everything around a run besides its command line: the sender (the real router over a
/// plain and a raw recorder, the raw one checking as a process with `privilege`),
/// environment variables, the clock and the terminal.
pub(crate) struct World {
    /// The plain recorder; the raw one shares its timeline and failure.
    pub sender: Recorder,
    pub privilege: Privilege,
    pub vars: Vec<(String, String)>,
    /// Unix seconds.
    pub now: u64,
    /// `Some(answer)`: stdin is a terminal and this is typed at the prompt.
    pub terminal: Option<String>,
    /// The services database, as the text of `/etc/services`.
    pub services: &'static str,
    /// Ctrl-C is pressed once this many pauses were taken.
    pub interrupt_at: Option<usize>,
    /// Whether stderr is a terminal (a bar is drawn, to a hidden target).
    pub stderr_terminal: bool,
    /// When the port of `--wait` and `--proxy` opens.
    pub door: Door,
}

/// The services database of the tests: a few lines as Debian's netbase has them (ssh for
/// tcp only, domain for both, ntp for udp only, http with its alias www).
pub(crate) const SERVICES: &str = "\
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
domain\t\t53/tcp\t\t\t\t# Domain Name Server
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
ntp\t\t123/udp\t\t\t\t# Network Time Protocol
";

impl Default for World {
    /// An ordinary user, nothing set, the clock at 0, no terminal, a door that drops.
    fn default() -> World {
        World {
            sender: Recorder::default(),
            privilege: USER,
            vars: Vec::new(),
            now: 0,
            terminal: None,
            services: SERVICES,
            interrupt_at: None,
            stderr_terminal: false,
            door: Door::default(),
        }
    }
}

/// What a run did besides printing.
pub(crate) struct Done {
    pub code: i32,
    pub err: String,
    pub events: Vec<Event>,
    pub asked: Vec<String>,
    pub options: Option<SendOptions>,
}

/// A terminal that answers from a script and remembers what it was asked.
struct Script {
    answer: Option<String>,
    asked: Rc<RefCell<Vec<String>>>,
}

impl Prompt for Script {
    fn available(&self) -> bool {
        self.answer.is_some()
    }

    fn read_hidden(&mut self, message: &str) -> io::Result<String> {
        self.asked.borrow_mut().push(message.to_string());
        self.answer
            .clone()
            .ok_or_else(|| io::Error::other("no terminal"))
    }
}

impl World {
    /// Runs `knock ARGS...`, stdout into `out`.
    pub(crate) fn run_to(self, args: &[&str], out: &mut dyn Write) -> Done {
        let args = std::iter::once("knock").chain(args.iter().copied());
        let args: Vec<OsString> = args.map(Into::into).collect();
        let World {
            sender,
            privilege,
            vars,
            now,
            terminal,
            services,
            interrupt_at,
            stderr_terminal,
            door,
        } = self;
        let services = crate::services::Services::from_text("/etc/services", services);
        let timeline = sender.timeline.clone();
        let mut net = FakeNet::new(timeline.clone(), door);
        let options = Rc::new(Cell::new(None));
        let made = Rc::clone(&options);
        // Every plan gets its own router; all of them record into the one timeline.
        let mut make = move |o: SendOptions| -> Box<dyn Sender> {
            made.set(Some(o));
            let mut plain = sender.clone();
            plain.source_port = o.source_port;
            plain.low_ports = privilege.has_raw();
            let raw = plain.raw(privilege);
            Box::new(KnockSender::with_senders(plain, raw, o.raw_tcp))
        };
        let mut sleep = timeline.sleeper();
        let asked = Rc::new(RefCell::new(Vec::new()));
        let mut prompt = Script {
            answer: terminal,
            asked: asked.clone(),
        };
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        };
        // The wall clock moves with the virtual one (HMAC sequences sent again).
        let virtual_clock = timeline.clone();
        let clock = move || now + virtual_clock.now().as_secs();
        let pauses = timeline.clone();
        let interrupted = move || interrupt_at.is_some_and(|n| pauses.slept() >= n);
        let mut err = Vec::new();
        let code = run_with(
            args,
            Ctx {
                out: Out::new(out),
                err: &mut err,
                sender: &mut make,
                sleep: &mut sleep,
                vars: &lookup,
                now: &clock,
                prompt: &mut prompt,
                stderr_terminal,
                services: &services,
                interrupted: &interrupted,
                dial: &mut net,
            },
        );
        let asked = asked.borrow().clone();
        Done {
            code,
            err: String::from_utf8(err).unwrap(),
            events: timeline.events(),
            asked,
            options: options.get(),
        }
    }

    pub(crate) fn run(self, args: &[&str]) -> Outcome {
        let mut out = Vec::new();
        let done = self.run_to(args, &mut out);
        Outcome {
            code: done.code,
            out: String::from_utf8(out).unwrap(),
            err: done.err,
            events: done.events,
            asked: done.asked,
            options: done.options,
        }
    }
}

fn run_line(line: &str, world: World, out: &mut dyn Write) -> Done {
    let args: Vec<&str> = line.split_whitespace().collect();
    world.run_to(&args, out)
}

fn knock_in(line: &str, world: World) -> Outcome {
    let args: Vec<&str> = line.split_whitespace().collect();
    world.run(&args)
}

/// `knock LINE` as an ordinary user.
fn knock(line: &str) -> Outcome {
    knock_in(line, World::default())
}

/// A world with this privilege.
fn with(privilege: Privilege) -> World {
    World {
        privilege,
        ..World::default()
    }
}

/// A scratch directory for one test, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "knock-cli-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The scratch path as a string, for command lines.
    pub(crate) fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks a table of rejected command lines: each is refused with that clap error kind,
/// exit code 2, and a message that contains the text.
pub(crate) fn assert_rejected<T: std::fmt::Debug>(
    table: &[(&[&str], clap::error::ErrorKind, &str)],
    parse: impl Fn(&[&str]) -> Result<T, clap::Error>,
) {
    for (line, kind, text) in table {
        let err = parse(line).expect_err(&format!("{line:?}"));
        assert_eq!(err.kind(), *kind, "{line:?}: {err}");
        assert_eq!(err.exit_code(), 2, "{line:?}");
        let rendered = err.to_string();
        assert!(rendered.contains(text), "{line:?}: {rendered}");
    }
}

/// The destination of a hit to this address, without a scope.
pub(crate) fn ip(s: &str) -> Dest {
    Dest::from(s.parse::<IpAddr>().unwrap())
}

pub(crate) fn sent(events: &[Event]) -> Vec<(Hit, Dest)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(h, a) | Event::SentRaw(h, a) => Some((*h, *a)),
            _ => None,
        })
        .collect()
}

#[test]
fn exit_codes_and_messages() {
    // (command line, exit code, stderr: exact, or a prefix when it ends with "...")
    let table: &[(&str, i32, &str)] = &[
        ("192.0.2.2 7000", 0, ""),
        ("192.0.2.2 7000,8000:udp 9000", 0, ""),
        ("-u -d 5 -v 192.0.2.2 7000", 0, ""),
        ("-6 2001:db8::2 7000", 0, ""),
        ("-6 [2001:db8::2] 7000", 0, ""),
        ("-4 192.0.2.2 7000", 0, ""),
        ("192.0.2.2 7000 --dry-run --json", 0, ""),
        ("--help", 0, ""),
        ("-V", 0, ""),
        (
            "192.0.2.2 7000 abc",
            2,
            "knock: bad hit \"abc\": port \"abc\" is neither a number (1-65535) nor a \
             service name for tcp in /etc/services\n",
        ),
        (
            "192.0.2.2 tcp/22",
            2,
            "knock: bad hit \"tcp/22\": not a hit; write it as 22:tcp (PORT:PROTO)\n",
        ),
        (
            "192.0.2.999 7000",
            2,
            "knock: 192.0.2.999 is not an IPv4 address (four numbers 0-255 joined by dots), \
             nor a host name\n",
        ),
        (
            "--dry-run 2001:db8::zz 7000",
            2,
            "knock: 2001:db8::zz is not an IPv6 address, nor a host name\n",
        ),
        (
            "192.0.2.2 7000,",
            2,
            "knock: bad hit \"\": empty item (a stray or trailing comma?)\n",
        ),
        (
            "192.0.2.2 -1",
            2,
            "knock: bad hit \"-1\": port -1 is negative (expected 1-65535)\n",
        ),
        (
            "192.0.2.2 0",
            2,
            "knock: bad hit \"0\": port 0 is out of range (expected 1-65535)\n",
        ),
        (
            "192.0.2.2 7000:sctp",
            2,
            "knock: bad hit \"7000:sctp\": unknown protocol \"sctp\" (expected tcp or udp)\n",
        ),
        (
            "192.0.2.2 8000:udp:syn",
            2,
            "knock: bad hit \"8000:udp:syn\": flags are only for tcp hits, not udp\n",
        ),
        (
            "192.0.2.2 7000:tcp:fin+psh",
            2,
            "knock: hit 1 of 1 (7000:tcp:fin+psh): exact TCP flags need a raw socket, which \
             needs root or CAP_NET_RAW\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             the flags\n",
        ),
        (
            "--raw 192.0.2.2 7000",
            2,
            "knock: hit 1 of 1 (7000:tcp): sending a TCP hit raw needs a raw socket, which \
             needs root or CAP_NET_RAW\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             --raw\n",
        ),
        ("--source-port 40000 192.0.2.2 7000,8000:udp", 0, ""),
        ("-u --raw 192.0.2.2 8000", 0, ""),
        (
            "--source-port 0 192.0.2.2 7000",
            2,
            "error: invalid value '0' for '--source-port <PORT>': 0 is not in 1..=65535...",
        ),
        // The reserved words are subcommands, with their own usage errors.
        (
            "profile",
            2,
            "error: the following required arguments were not provided:\n  <NAME>...",
        ),
        (
            "otp generate",
            2,
            "error: the following required arguments were not provided:\n  --count <N>...",
        ),
        (
            "keygen --length 0",
            2,
            "error: invalid value '0' for '--length <N>'...",
        ),
        (
            "-v profile 7000",
            2,
            "error: invalid value 'profile' for '<HOST>': \"profile\" is reserved...",
        ),
        (
            "-4 2001:db8::2 7000",
            1,
            "knock: resolve 2001:db8::2: no IPv4 address\n",
        ),
        (
            "-6 192.0.2.2 7000",
            1,
            "knock: resolve 192.0.2.2: no IPv6 address\n",
        ),
        (
            "",
            2,
            "error: the following required arguments were not provided...",
        ),
        (
            "192.0.2.2",
            2,
            "error: the following required arguments were not provided...",
        ),
        (
            "-4 -6 192.0.2.2 7000",
            2,
            "error: the argument '--ipv4' cannot be used with '--ipv6'...",
        ),
        (
            "--json 192.0.2.2 7000",
            2,
            "error: the following required arguments were not provided:\n  --dry-run...",
        ),
        (
            "-d soon 192.0.2.2 7000",
            2,
            "error: invalid value 'soon' for '--delay <MS>'...",
        ),
    ];
    for &(line, code, err) in table {
        let o = knock(line);
        assert_eq!(o.code, code, "`knock {line}`: stderr {:?}", o.err);
        match err.strip_suffix("...") {
            Some(prefix) => assert!(o.err.starts_with(prefix), "`knock {line}`: {:?}", o.err),
            None => assert_eq!(o.err, err, "`knock {line}`"),
        }
        if code != 0 {
            assert!(o.events.is_empty(), "`knock {line}` sent {:?}", o.events);
            assert_eq!(o.out, "", "`knock {line}` printed on stdout");
        }
    }
}

#[test]
fn every_hit_goes_to_the_one_address_in_order() {
    let o = knock("192.0.2.2 7000,8000:udp 9000 tcp:1:i");
    assert_eq!(o.code, 0);
    let a = ip("192.0.2.2");
    let any = Hit::parse("tcp:1:i", knock_core::hit::Proto::Tcp).unwrap();
    assert_eq!(
        sent(&o.events),
        [
            (Hit::tcp(7000), a),
            (Hit::udp(8000), a),
            (Hit::tcp(9000), a),
            (any, a)
        ]
    );
    assert_eq!(o.out, "");
}

#[test]
fn udp_flag_and_delay() {
    let o = knock("-u -d 40 2001:db8::2 7000 8000:tcp");
    assert_eq!(o.code, 0);
    let a = ip("2001:db8::2");
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::udp(7000), a),
            Event::Slept(Duration::from_millis(40)),
            Event::Sent(Hit::tcp(8000), a),
        ]
    );
}

#[test]
fn verbose_lines_on_stdout() {
    let o = knock("-v 2001:db8::2 7000,8000:udp");
    assert_eq!(o.code, 0);
    assert_eq!(
        o.out,
        "hitting tcp [2001:db8::2]:7000\nhitting udp [2001:db8::2]:8000\n"
    );
    assert_eq!(o.err, "");
}

#[test]
fn dry_run_text_sends_nothing() {
    let o = knock("--dry-run -d 100 192.0.2.2 7000,8000:udp 9000:tcp:fin+psh");
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(o.events.is_empty());
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:7000\n\
         wait 100 ms\n\
         would hit udp 192.0.2.2:8000\n\
         wait 100 ms\n\
         would hit tcp 192.0.2.2:9000 [fin,psh]\n"
    );
}

#[test]
fn dry_run_json_is_one_object() {
    let o = knock("--dry-run --json -v [2001:db8::2] 7000,8000:udp tcp:110:up");
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(o.events.is_empty());
    assert_eq!(
        o.out,
        "{\"host\":\"[2001:db8::2]\",\"address\":\"2001:db8::2\",\"delay_ms\":0,\"hits\":[\
         {\"port\":7000,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null},\
         {\"port\":8000,\"proto\":\"udp\",\"flags\":[],\"raw\":false,\"refused\":null},\
         {\"port\":110,\"proto\":\"tcp\",\"flags\":[\"psh\",\"urg\"],\"raw\":true,\
         \"refused\":\"exact TCP flags need a raw socket, which needs root or CAP_NET_RAW\"}]}\n"
    );
}

#[test]
fn refused_hits_are_all_named_and_nothing_is_sent() {
    let o = knock("192.0.2.2 7000 8000:tcp:fin tcp:9000:x 10000:tcp:syn");
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert_eq!(o.out, "");
    let why = "exact TCP flags need a raw socket, which needs root or CAP_NET_RAW";
    assert_eq!(
        o.err,
        format!(
            "knock: hit 2 of 4 (8000:tcp:fin): {why}\n\
             knock: hit 3 of 4 (9000:tcp:fin+syn+rst+psh+ack+urg): {why}\n\
             knock: nothing was sent; to send these hits, run knock as root, give it \
             CAP_NET_RAW once with `sudo setcap cap_net_raw+ep $(command -v knock)`, or drop \
             the flags\n"
        )
    );
}

#[test]
fn with_raw_privilege_flagged_hits_go_raw_and_the_rest_plain() {
    let o = knock_in(
        "-v -d 5 192.0.2.2 7000 8000:tcp:fin+psh 9000:udp tcp:110:up",
        with(Privilege::Raw),
    );
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let a = ip("192.0.2.2");
    let d = Duration::from_millis(5);
    let fin_psh = Hit::parse("8000:tcp:fin+psh", knock_core::hit::Proto::Tcp).unwrap();
    let up = Hit::parse("tcp:110:up", knock_core::hit::Proto::Tcp).unwrap();
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), a),
            Event::Slept(d),
            Event::SentRaw(fin_psh, a),
            Event::Slept(d),
            Event::Sent(Hit::udp(9000), a),
            Event::Slept(d),
            Event::SentRaw(up, a),
        ]
    );
    assert_eq!(
        o.out,
        "hitting tcp 192.0.2.2:7000\n\
         hitting tcp 192.0.2.2:8000 [fin,psh]\n\
         hitting udp 192.0.2.2:9000\n\
         hitting tcp 192.0.2.2:110 [psh,urg]\n"
    );
    assert_eq!(o.options, Some(SendOptions::default()));
}

#[test]
fn raw_sends_plain_tcp_hits_raw_and_udp_plain() {
    let o = knock_in(
        "--raw 2001:db8::2 7000,8000:udp,9000:tcp:rst",
        with(Privilege::Raw),
    );
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let a = ip("2001:db8::2");
    let rst = Hit::parse("9000:tcp:rst", knock_core::hit::Proto::Tcp).unwrap();
    assert_eq!(
        o.events,
        [
            Event::SentRaw(Hit::tcp(7000), a),
            Event::Sent(Hit::udp(8000), a),
            Event::SentRaw(rst, a),
        ]
    );
    let want = SendOptions {
        raw_tcp: true,
        source_port: None,
    };
    assert_eq!(o.options, Some(want));
}

#[test]
fn source_port_reaches_the_sender() {
    let o = knock("--source-port 40000 192.0.2.2 7000");
    assert_eq!(o.code, 0, "{}", o.err);
    let want = SendOptions {
        raw_tcp: false,
        source_port: Some(40000),
    };
    assert_eq!(o.options, Some(want));
    // A dry run makes the sender only to check the hits, and sends nothing; a usage error
    // makes none at all.
    let o = knock_in("--dry-run --raw 192.0.2.2 7000", with(Privilege::Raw));
    assert_eq!(o.options.map(|s| s.raw_tcp), Some(true));
    assert!(o.events.is_empty());
    assert_eq!(knock("--raw 192.0.2.2 0").options, None);
}

#[test]
fn a_lone_syn_goes_through_connect_without_privileges() {
    let o = knock("-v 192.0.2.2 7000:tcp:syn tcp:8000:s");
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let a = ip("192.0.2.2");
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), a),
            Event::Sent(Hit::tcp(8000), a)
        ]
    );
    assert_eq!(
        o.out,
        "hitting tcp 192.0.2.2:7000 [syn]\nhitting tcp 192.0.2.2:8000 [syn]\n"
    );
}

#[test]
fn windows_names_flagged_hits_and_sends_nothing() {
    let windows = || {
        with(Privilege::Unsupported(
            "Windows does not send TCP through raw sockets",
        ))
    };
    let o = knock_in("192.0.2.2 7000 8000:tcp:fin 9000:tcp:syn", windows());
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert_eq!(
        o.err,
        "knock: hit 2 of 3 (8000:tcp:fin): exact TCP flags need a raw socket, but Windows \
         does not send TCP through raw sockets\n\
         knock: nothing was sent; to knock from this system, drop the flags (hits without \
         flags, and a lone syn, go out through an ordinary connect)\n"
    );
    let o = knock_in("192.0.2.2 7000 9000:tcp:syn 10000:udp", windows());
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(sent(&o.events).len(), 3);
}

#[test]
fn dry_runs_show_flags_and_note_what_a_real_run_would_refuse() {
    let line = "--dry-run --raw 192.0.2.2 7000,8000:tcp:fin+psh,tcp:110:x,9000:udp";
    let listing = "would hit tcp 192.0.2.2:7000\n\
                   would hit tcp 192.0.2.2:8000 [fin,psh]\n\
                   would hit tcp 192.0.2.2:110 [fin,syn,rst,psh,ack,urg]\n\
                   would hit udp 192.0.2.2:9000\n";
    // With the privilege: the listing alone.
    let o = knock_in(line, with(Privilege::Raw));
    assert_eq!((o.code, o.out.as_str(), o.err.as_str()), (0, listing, ""));
    // Without it: the same listing, and a note per hit the real run would refuse.
    let o = knock(line);
    assert_eq!((o.code, o.out.as_str()), (0, listing));
    assert!(o.events.is_empty());
    let why = "needs a raw socket, which needs root or CAP_NET_RAW";
    assert_eq!(
        o.err,
        format!(
            "knock: note: a real run would refuse hit 1 of 4 (7000:tcp): sending a TCP hit \
             raw {why}\n\
             knock: note: a real run would refuse hit 2 of 4 (8000:tcp:fin+psh): exact TCP \
             flags need a raw socket, which needs root or CAP_NET_RAW\n\
             knock: note: a real run would refuse hit 3 of 4 \
             (110:tcp:fin+syn+rst+psh+ack+urg): exact TCP flags need a raw socket, which \
             needs root or CAP_NET_RAW\n"
        )
    );
    // On Windows, with the reason of its own; stdout stays one JSON object.
    let windows = with(Privilege::Unsupported(
        "Windows does not send TCP through raw sockets",
    ));
    let o = knock_in(
        "--dry-run --json 192.0.2.2 tcp:110:n,1:tcp:ece+cwr,2",
        windows,
    );
    assert_eq!(o.code, 0);
    let why = "exact TCP flags need a raw socket, but Windows does not send TCP through raw \
               sockets";
    assert_eq!(
        o.out,
        "{\"host\":\"192.0.2.2\",\"address\":\"192.0.2.2\",\"delay_ms\":0,\"hits\":[\
         {\"port\":110,\"proto\":\"tcp\",\"flags\":[],\"raw\":true,\"refused\":\"{why}\"},\
         {\"port\":1,\"proto\":\"tcp\",\"flags\":[\"ece\",\"cwr\"],\"raw\":true,\
         \"refused\":\"{why}\"},\
         {\"port\":2,\"proto\":\"tcp\",\"flags\":[\"syn\"],\"raw\":false,\"refused\":null}]}\n"
            .replace("{why}", why)
    );
    assert_eq!(
        o.err,
        format!(
            "knock: note: a real run would refuse hit 1 of 3 (110:tcp:none): {why}\n\
             knock: note: a real run would refuse hit 2 of 3 (1:tcp:ece+cwr): {why}\n"
        )
    );
}

#[test]
fn a_failed_send_exits_1_naming_the_hit() {
    let world = World {
        sender: Recorder::failing_at(1),
        ..World::default()
    };
    let o = knock_in("2001:db8::2 7000,8000:udp,9000", world);
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "knock: hit 2 of 3 (8000:udp): sendto [2001:db8::2]:8000: permission denied\n"
    );
    assert_eq!(sent(&o.events), [(Hit::tcp(7000), ip("2001:db8::2"))]);
}

#[test]
fn help_and_version_go_to_stdout() {
    let o = knock("--help");
    assert!(o.out.starts_with("Knock on a host's ports"), "{}", o.out);
    assert!(o.out.contains("Usage: knock [OPTIONS] <HOST> <HIT>..."));
    let o = knock("--version");
    assert_eq!(o.out, format!("knock {}\n", env!("CARGO_PKG_VERSION")));
}

/// stdout whose reader has gone away.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_broken_pipe_on_stdout_is_success() {
    let o = run_line("-v 192.0.2.2 1,2,3", World::default(), &mut ClosedPipe);
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(sent(&o.events).len(), 3, "every hit is still sent");
    for line in [
        "--dry-run 192.0.2.2 1",
        "--dry-run --json 192.0.2.2 1",
        "--help",
    ] {
        let o = run_line(line, World::default(), &mut ClosedPipe);
        assert_eq!((o.code, o.err.as_str()), (0, ""), "{line}");
    }
}

#[test]
fn options_may_stand_anywhere_as_knock_1_takes_them() {
    let first = knock("-4 -u -d 50 -v 192.0.2.2 7000 8000:tcp");
    assert_eq!((first.code, first.err.as_str()), (0, ""));
    assert_eq!(first.events.len(), 3, "{:?}", first.events);
    for line in [
        "192.0.2.2 7000 8000:tcp -4 -u -d 50 -v",
        "192.0.2.2 -u 7000 -d50 8000:tcp -v -4",
        "-v 192.0.2.2 7000 -4 8000:tcp --udp --delay=50",
        "-4 -u -d 50 -v -- 192.0.2.2 7000 8000:tcp",
    ] {
        let o = knock(line);
        assert_eq!((o.code, o.err.as_str()), (0, ""), "`knock {line}`");
        assert_eq!(o.events, first.events, "`knock {line}`");
        assert_eq!(o.out, first.out, "`knock {line}`");
    }
    // After `--`, -4 is a hit, and a negative one.
    let o = knock("192.0.2.2 7000 -- -4");
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        "knock: bad hit \"-4\": port -4 is negative (expected 1-65535)\n"
    );
    assert!(o.events.is_empty());
}

#[test]
fn service_names_are_sent_as_their_ports_and_shown_as_numbers() {
    let o = knock("-v -d 5 192.0.2.2 ssh http:udp domain,www:tcp:fin --dry-run");
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            0,
            "knock: note: a real run would refuse hit 4 of 4 (80:tcp:fin): exact TCP flags need a raw socket, which needs root or CAP_NET_RAW\n"
        )
    );
    assert_eq!(
        o.out,
        "would hit tcp 192.0.2.2:22\n\
         wait 5 ms\n\
         would hit udp 192.0.2.2:80\n\
         wait 5 ms\n\
         would hit tcp 192.0.2.2:53\n\
         wait 5 ms\n\
         would hit tcp 192.0.2.2:80 [fin]\n"
    );
    // knock(1) sends `-u ssh` to 22 over UDP, though ssh is listed for tcp only.
    let o = knock("-v -u 192.0.2.2 ssh ntp domain:tcp");
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let a = ip("192.0.2.2");
    assert_eq!(
        sent(&o.events),
        [(Hit::udp(22), a), (Hit::udp(123), a), (Hit::tcp(53), a)]
    );
    assert_eq!(
        o.out,
        "hitting udp 192.0.2.2:22\nhitting udp 192.0.2.2:123\nhitting tcp 192.0.2.2:53\n"
    );
    let o = knock("--dry-run --json 192.0.2.2 ssh");
    assert!(o.out.contains("\"port\":22"), "{}", o.out);
    // A name the database lacks is refused whole, before anything is sent; so is a name
    // when the database cannot be read, which the message says.
    let o = knock("192.0.2.2 ssh nosuch");
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    let missing = World {
        services: "",
        ..World::default()
    };
    let o = missing.run(&["192.0.2.2", "ssh"]);
    assert_eq!(o.code, 2);
    assert_eq!(
        o.err,
        "knock: bad hit \"ssh\": port \"ssh\" is neither a number (1-65535) nor a service \
         name for tcp in /etc/services\n"
    );
}

#[test]
fn a_zone_is_kept_through_sending_and_every_listing() {
    // A numeric zone needs no interface of that name on the test machine.
    let o = knock("-v fe80::1%7 7000 8000:udp");
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let zoned = Dest {
        ip: "fe80::1".parse().unwrap(),
        scope_id: 7,
    };
    assert_eq!(
        sent(&o.events),
        [(Hit::tcp(7000), zoned), (Hit::udp(8000), zoned)]
    );
    assert_eq!(
        o.out,
        "hitting tcp [fe80::1%7]:7000\nhitting udp [fe80::1%7]:8000\n"
    );
    let o = knock_in("--raw -v [fe80::1%7] 7000", with(Privilege::Raw));
    assert_eq!(o.events, [Event::SentRaw(Hit::tcp(7000), zoned)]);
    let o = knock("--dry-run fe80::1%7 7000");
    assert_eq!(o.out, "would hit tcp [fe80::1%7]:7000\n");
    let o = knock("--dry-run --json fe80::1%7 7000");
    assert!(
        o.out
            .starts_with("{\"host\":\"fe80::1%7\",\"address\":\"fe80::1%7\","),
        "{}",
        o.out
    );
    // An interface by name keeps its name in every listing (Linux: lo always exists).
    #[cfg(target_os = "linux")]
    {
        let o = knock("-v -6 fe80::2%lo 7000");
        assert_eq!((o.code, o.err.as_str()), (0, ""));
        assert_eq!(o.out, "hitting tcp [fe80::2%lo]:7000\n");
        let [Event::Sent(_, dest)] = o.events.as_slice() else {
            panic!("{:?}", o.events)
        };
        assert_ne!(dest.scope_id, 0);
    }
}

#[test]
fn ctrl_c_stops_the_knock_and_says_how_far_it_got() {
    let world = World {
        interrupt_at: Some(1),
        ..World::default()
    };
    let o = world.run(&["-d", "1000", "192.0.2.2", "7000", "8000", "9000"]);
    assert_eq!(o.code, 130);
    assert_eq!(o.err, "knock: interrupted after hit 1 of 3\n");
    assert_eq!(
        o.events,
        [
            Event::Sent(Hit::tcp(7000), ip("192.0.2.2")),
            Event::Slept(Duration::from_millis(1000)),
        ]
    );
    // Under a bar (a terminal), the same: the bar is gone before the line is printed,
    // and no "knocked" line follows.
    let world = World {
        interrupt_at: Some(2),
        stderr_terminal: true,
        ..World::default()
    };
    let o = world.run(&["-d", "250", "192.0.2.2", "7000", "8000", "9000"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (130, "knock: interrupted after hit 1 of 3\n")
    );
    // Pressed before the first hit (a lookup or a prompt failed because of it).
    let world = World {
        interrupt_at: Some(0),
        ..World::default()
    };
    let o = world.run(&["192.0.2.2", "7000"]);
    assert_eq!(
        (o.code, o.err.as_str()),
        (
            130,
            "knock: interrupted before hit 1 of 1; nothing was sent\n"
        )
    );
    assert!(o.events.is_empty());
}

#[test]
fn an_interactive_knock_leaves_one_line_and_quiet_ones_none() {
    let terminal = || World {
        stderr_terminal: true,
        ..World::default()
    };
    let o = terminal().run(&["192.0.2.2", "7000,8000:udp", "9000"]);
    assert_eq!((o.code, o.err.as_str()), (0, "knocked 192.0.2.2: 3 hits\n"));
    assert_eq!(o.out, "");
    let o = terminal().run(&["[2001:db8::2]", "7000"]);
    assert_eq!(o.err, "knocked 2001:db8::2: 1 hit\n");
    let o = terminal().run(&["fe80::1%7", "7000"]);
    assert_eq!(o.err, "knocked fe80::1%7: 1 hit\n");
    // -q and -v draw no bar, so there is no line to leave; nor without a terminal.
    for line in [
        &["-q", "192.0.2.2", "7000"][..],
        &["-v", "192.0.2.2", "7000"],
    ] {
        let o = terminal().run(line);
        assert_eq!((o.code, o.err.as_str()), (0, ""), "{line:?}");
    }
    assert_eq!(knock("192.0.2.2 7000").err, "");
}

#[test]
fn a_source_port_that_cannot_be_bound_is_found_before_anything_is_sent() {
    let o = knock("--source-port 80 192.0.2.2 7000 8000:udp");
    assert_eq!(o.code, 2);
    assert!(o.events.is_empty());
    assert_eq!(
        o.err,
        "knock: --source-port: source port 80 cannot be bound: permission denied\n\
         knock: nothing was sent; to send from that port, run knock as root, or choose \
         another --source-port (1024 or more needs no privileges)\n"
    );
    // Raw hits write the port into their header and bind nothing; root binds any port.
    let o = knock_in(
        "--source-port 80 --raw 192.0.2.2 7000",
        with(Privilege::Raw),
    );
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    let o = knock_in("--source-port 80 192.0.2.2 7000", with(Privilege::Raw));
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(knock("--source-port 1024 192.0.2.2 7000").code, 0);
    // A dry run lists the hits and notes what a real run would refuse.
    let o = knock("--dry-run --source-port 80 192.0.2.2 7000");
    assert_eq!(
        (o.code, o.out.as_str()),
        (0, "would hit tcp 192.0.2.2:7000\n")
    );
    assert_eq!(
        o.err,
        "knock: note: a real run would refuse --source-port: source port 80 cannot be \
         bound: permission denied\n"
    );
    let o = knock("--dry-run --json --source-port 80 192.0.2.2 7000");
    assert!(
        o.out.contains(
            "\"refused\":\"--source-port: source port 80 cannot be bound: permission denied\""
        ),
        "{}",
        o.out
    );
}

#[test]
fn a_missing_host_is_named_and_nothing_is_sent() {
    for (line, word) in [
        ("7000 8000", "7000"),
        ("-v 7000 8000 9000", "7000"),
        ("7000", "7000"),
    ] {
        let o = knock(line);
        assert_eq!(o.code, 2, "`knock {line}`");
        assert!(o.events.is_empty(), "`knock {line}`");
        assert!(
            o.err.starts_with(&format!(
                "error: invalid value '{word}' for '<HOST>': \"{word}\" looks like a port, \
                 not a host: HOST comes first"
            )),
            "`knock {line}`: {}",
            o.err
        );
    }
    // Written as an address, the same number is a host.
    let o = knock("0.0.27.88 8000");
    assert_eq!(o.code, 0, "{}", o.err);
    assert_eq!(sent(&o.events), [(Hit::tcp(8000), ip("0.0.27.88"))]);
}

#[test]
fn help_works_at_every_level() {
    let main = knock("--help");
    assert_eq!((main.code, main.err.as_str()), (0, ""));
    // (command line, the line whose output it must equal)
    let table: &[(&str, &str)] = &[
        ("help", "--help"),
        ("help --help", "--help"),
        ("help profile", "profile --help"),
        ("profile help", "profile --help"),
        ("help profile save", "profile save --help"),
        ("profile help save", "profile save --help"),
        ("profile help import", "profile import --help"),
        ("help otp", "otp --help"),
        ("otp help", "otp --help"),
        ("otp help generate", "otp generate --help"),
        ("help otp generate", "otp generate --help"),
        ("help keygen", "keygen --help"),
        ("keygen help", "keygen --help"),
    ];
    for (line, same_as) in table {
        let o = knock(line);
        assert_eq!((o.code, o.err.as_str()), (0, ""), "`knock {line}`");
        assert!(!o.out.is_empty(), "`knock {line}`");
        assert_eq!(
            o.out,
            knock(same_as).out,
            "`knock {line}` vs `knock {same_as}`"
        );
    }
    assert!(
        knock("profile help")
            .out
            .contains("Usage: knock profile [OPTIONS] <NAME>")
    );
    let o = knock("help nosuch");
    assert_eq!(o.code, 2);
    assert!(
        o.err.starts_with("error: unrecognized subcommand 'nosuch'"),
        "{}",
        o.err
    );
}

#[test]
fn every_reserved_word_is_a_subcommand() {
    // (`help` prints the help of other commands: `help_works_at_every_level`.)
    for word in crate::args::RESERVED.iter().filter(|w| **w != "help") {
        let o = knock(&format!("{word} --help"));
        assert_eq!((o.code, o.err.as_str()), (0, ""), "{word}");
        assert!(
            o.out.contains(&format!("Usage: knock {word}")),
            "{word}:\n{}",
            o.out
        );
    }
    // And every word knock_core reserves under `profile` is one of its subcommands.
    for word in knock_core::profile::store::RESERVED
        .iter()
        .filter(|w| **w != "help")
    {
        let o = knock(&format!("profile {word} --help"));
        assert_eq!((o.code, o.err.as_str()), (0, ""), "{word}");
        assert!(
            o.out.contains(&format!("Usage: knock profile {word}")),
            "{word}:\n{}",
            o.out
        );
    }
}
