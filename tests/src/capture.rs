//! What reached the server: tcpdump run in the server namespace, its lines parsed into
//! [`Record`]s. Deliberately independent of the suite's own packet parser, so tests that
//! use it check our code against a second opinion.
//!
//! The parser reads tcpdump's default one-line output (`-nn -tt`): TCP lines carry
//! `Flags [S]`, UDP lines `UDP, length N`. For the few UDP ports tcpdump decodes further
//! (53, 123, 7000-7009 and the like) the line has no such summary and the record's `proto`
//! is `"other"`, so tests send UDP hits to ports tcpdump leaves alone.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{CLIENT_V4, CLIENT_V6, Pair, SERVER_V4, SERVER_V6, WAIT};

/// One captured packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Capture time, seconds since the epoch (tcpdump `-tt`).
    pub time: f64,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `tcp`, `udp`, or `other` (ICMP, and anything tcpdump printed differently).
    pub proto: String,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// tcpdump's flags string for TCP: `S`, `R.`, `F`, `FP`, `none`, ...
    pub tcp_flags: Option<String>,
    /// UDP payload length.
    pub udp_len: Option<usize>,
    /// The line as tcpdump printed it, for failure messages.
    pub line: String,
}

impl Record {
    /// TCP or UDP from `src` to `dst`.
    pub fn is_from_to(&self, src: &str, dst: &str) -> bool {
        (self.proto == "tcp" || self.proto == "udp")
            && self.src.to_string() == src
            && self.dst.to_string() == dst
    }

    /// TCP or UDP from one of the client's addresses to one of the server's.
    pub fn is_client_to_server(&self) -> bool {
        [CLIENT_V4, CLIENT_V6]
            .iter()
            .any(|c| [SERVER_V4, SERVER_V6].iter().any(|s| self.is_from_to(c, s)))
    }

    /// How the packet looked, for comparing sequences: `tcp 7000 S`, `udp 8000 len=1`, or
    /// tcpdump's whole line for anything else.
    pub fn summary(&self) -> String {
        match (
            self.proto.as_str(),
            &self.tcp_flags,
            self.dport,
            self.udp_len,
        ) {
            ("tcp", Some(flags), Some(port), _) => format!("tcp {port} {flags}"),
            ("udp", _, Some(port), Some(len)) => format!("udp {port} len={len}"),
            _ => self.line.clone(),
        }
    }
}

/// Parses one line of `tcpdump -nn -tt` output for an IPv4 or IPv6 packet; `None` for
/// anything else (ARP, tcpdump's own messages).
pub fn parse_line(line: &str) -> Option<Record> {
    let mut words = line.splitn(3, ' ');
    let time: f64 = words.next()?.parse().ok()?;
    let family = words.next()?;
    if family != "IP" && family != "IP6" {
        return None;
    }
    let rest = words.next()?;
    let (addrs, payload) = rest.split_once(": ")?;
    let (src, dst) = addrs.split_once(" > ")?;
    let mut record = Record {
        time,
        src: src
            .parse()
            .ok()
            .or_else(|| host_port(src).map(|(a, _)| a))?,
        dst: dst
            .parse()
            .ok()
            .or_else(|| host_port(dst).map(|(a, _)| a))?,
        proto: "other".to_string(),
        sport: None,
        dport: None,
        tcp_flags: None,
        udp_len: None,
        line: line.to_string(),
    };
    let ports = host_port(src).zip(host_port(dst));
    if let (Some(flags), Some(((_, sp), (_, dp)))) = (
        payload
            .strip_prefix("Flags [")
            .and_then(|f| f.split_once(']'))
            .map(|(f, _)| f),
        ports,
    ) {
        record.proto = "tcp".into();
        record.tcp_flags = Some(flags.to_string());
        (record.sport, record.dport) = (Some(sp), Some(dp));
    } else if let (Some(len), Some(((_, sp), (_, dp)))) = (
        payload
            .strip_prefix("UDP, length ")
            .and_then(|n| n.trim().parse().ok()),
        ports,
    ) {
        record.proto = "udp".into();
        record.udp_len = Some(len);
        (record.sport, record.dport) = (Some(sp), Some(dp));
    }
    Some(record)
}

/// `192.0.2.1.49690` or `2001:db8::1.49690`: the address and the port after the last dot.
fn host_port(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.rsplit_once('.')?;
    Some((addr.parse().ok()?, port.parse().ok()?))
}

/// A running tcpdump on the server's interface. Stopped (SIGINT) by [`Capture::stop`], or
/// killed on drop.
pub struct Capture {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    stdout_reader: Option<thread::JoinHandle<()>>,
}

impl Capture {
    /// Starts `tcpdump -i SERVER_IF -nn -l -U -tt --immediate-mode FILTER...` in the
    /// server namespace, and returns once tcpdump says it is listening.
    pub fn start(pair: &Pair, filter: &[&str]) -> Capture {
        let mut cmd = pair.server_cmd("tcpdump");
        cmd.args([
            "-i",
            &pair.server_if,
            "-nn",
            "-l",
            "-U",
            "-tt",
            "--immediate-mode",
        ])
        .args(filter)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&lines);
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr_text);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("listening on") {
                    let _ = ready_tx.send(());
                }
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut capture = Capture {
            child,
            lines,
            stderr: stderr_text,
            stdout_reader: Some(stdout_reader),
        };
        if ready_rx.recv_timeout(WAIT).is_err() {
            let _ = capture.child.kill();
            let _ = capture.child.wait();
            panic!(
                "tcpdump did not start listening within {WAIT:?}; stderr:\n{}",
                capture.stderr.lock().unwrap()
            );
        }
        capture
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<Record> {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter_map(|l| parse_line(l)).collect()
    }

    /// Waits until `n` records satisfy `pred`; panics with everything captured after
    /// `timeout`. Only for waiting: assertions belong on [`Capture::stop`]'s answer.
    pub fn wait_for(&self, n: usize, timeout: Duration, pred: impl Fn(&Record) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.records().iter().filter(|r| pred(r)).count() >= n {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for {n} matching packets; captured:\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `timeout`) until `n` records satisfy `pred`, keeps capturing `settle`
    /// longer so a late extra (a retransmitted SYN) would be seen too, stops, and returns
    /// the matching records and every record. Panics, with `context` (the command that
    /// sent) and everything captured, unless exactly `n` match.
    pub fn stop_after(
        self,
        n: usize,
        timeout: Duration,
        settle: Duration,
        pred: impl Fn(&Record) -> bool,
        context: &str,
    ) -> (Vec<Record>, Vec<Record>) {
        self.wait_for(n, timeout, &pred);
        thread::sleep(settle);
        let all = self.stop();
        let matching: Vec<Record> = all.iter().filter(|r| pred(r)).cloned().collect();
        assert_eq!(
            matching.len(),
            n,
            "{context}: expected {n} matching packets; captured:\n{}",
            show(&all)
        );
        (matching, all)
    }

    /// Stops tcpdump with SIGINT, so it flushes what it has, and returns every record.
    pub fn stop(mut self) -> Vec<Record> {
        interrupt(self.child.id());
        let _ = self.child.wait();
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        self.records()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn interrupt(pid: u32) {
    // SAFETY: kill() with a pid we spawned and still own (not yet waited for) and a
    // valid signal number has no memory-safety preconditions.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    assert_eq!(
        rc,
        0,
        "kill -INT {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// Renders records one per line, for assertion messages.
pub fn show(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| r.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcpdump_lines() {
        let r = parse_line("1795323135.141079 IP 192.0.2.1.49690 > 192.0.2.2.7000: Flags [S], seq 2537444957, win 64240, options [mss 1460,sackOK,TS val 2826135841 ecr 0,nop,wscale 10], length 0").unwrap();
        assert_eq!(r.time, 1795323135.141079);
        assert_eq!(r.src.to_string(), "192.0.2.1");
        assert_eq!(r.dst.to_string(), "192.0.2.2");
        assert_eq!(
            (r.proto.as_str(), r.sport, r.dport),
            ("tcp", Some(49690), Some(7000))
        );
        assert_eq!(r.tcp_flags.as_deref(), Some("S"));
        assert_eq!(r.udp_len, None);
        assert!(r.is_from_to("192.0.2.1", "192.0.2.2"));
        assert!(r.is_client_to_server());
        assert_eq!(r.summary(), "tcp 7000 S");

        let r =
            parse_line("1795323135.145962 IP6 2001:db8::1.33846 > 2001:db8::2.8000: UDP, length 1")
                .unwrap();
        assert_eq!(
            (r.proto.as_str(), r.sport, r.dport, r.udp_len),
            ("udp", Some(33846), Some(8000), Some(1))
        );
        assert_eq!(r.src.to_string(), "2001:db8::1");
        assert!(r.is_client_to_server());
        assert_eq!(r.summary(), "udp 8000 len=1");
        assert_eq!(r.tcp_flags, None);

        let r = parse_line("1795323135.145682 IP6 2001:db8::2.7000 > 2001:db8::1.39440: Flags [R.], seq 0, ack 244084952, win 0, length 0").unwrap();
        assert_eq!(r.tcp_flags.as_deref(), Some("R."));
        assert!(r.is_from_to("2001:db8::2", "2001:db8::1"));
        assert!(!r.is_client_to_server());

        let r = parse_line("1795323135.141495 IP 192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 udp port 8000 unreachable, length 37").unwrap();
        assert_eq!((r.proto.as_str(), r.dport), ("other", None));
        assert_eq!(r.summary(), r.line);
        assert_eq!(r.dst.to_string(), "192.0.2.1");

        let r = parse_line("1795323135.145601 IP6 2001:db8::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:db8::2, length 32").unwrap();
        assert_eq!(r.proto, "other");

        assert_eq!(
            parse_line(
                "1795323135.141045 ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28"
            ),
            None
        );
        assert_eq!(parse_line("listening on x, link-type EN10MB"), None);
        assert_eq!(parse_line(""), None);
    }
}
