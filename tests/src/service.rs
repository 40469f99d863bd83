//! A real TCP service in a test namespace, and connections to it from another: sockets
//! made by a thread that has entered the namespace (a network namespace is per thread, and
//! a socket stays in the one it was made in), so no extra process is needed.
//!
//! The service greets each connection with [`GREETING`] and then echoes every line: a door
//! is proven open by a connection and that answer, and a connection kept open shows that an
//! established connection outlives its door. [`OneShot`] serves one connection and ends it
//! in a chosen order, for relays that must pass each end on.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The line the service sends first.
pub const GREETING: &str = "knock-e2e guarded service";

/// Runs `f` on a thread that has joined network namespace `ns` (`/run/netns/NS`).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns() with a descriptor this thread owns and a valid flag; it only
        // moves the calling thread into that network namespace.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// The service, listening on every address of its namespace; stopped on drop.
pub struct Service {
    stop: Arc<AtomicBool>,
}

impl Service {
    /// Listens on `[::]:port` (IPv4 too) in namespace `ns`.
    pub fn start(ns: &str, port: u16) -> Service {
        let listener = in_netns(ns, move || {
            TcpListener::bind(("::", port)).unwrap_or_else(|e| panic!("bind [::]:{port}: {e}"))
        });
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let stopped = Arc::clone(&stopped);
                        thread::spawn(move || serve(conn, &stopped));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Service { stop }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(conn: TcpStream, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    if writeln!(writer, "{GREETING}").is_err() {
        return;
    }
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                if writer.write_all(line.as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A connection to the service.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Sends `text` as a line and returns the line that comes back.
    pub fn echo(&mut self, text: &str) -> io::Result<String> {
        writeln!(self.reader.get_mut(), "{text}")?;
        read_line(&mut self.reader)
    }
}

fn read_line(r: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
    }
    Ok(line.trim_end().to_string())
}

/// Connects from namespace `ns` (from address `from` if given) to `to`, waiting at most
/// `timeout` for the handshake, and reads the greeting. An error if the connection or the
/// greeting does not come: a door that is shut drops the SYN, so this times out.
pub fn connect(
    ns: &str,
    from: Option<IpAddr>,
    to: SocketAddr,
    timeout: Duration,
) -> io::Result<Conn> {
    let stream = in_netns(ns, move || -> io::Result<TcpStream> {
        let domain = if to.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        if let Some(from) = from {
            s.bind(&SocketAddr::new(from, 0).into())?;
        }
        s.connect_timeout(&to.into(), timeout)?;
        Ok(s.into())
    })?;
    stream.set_read_timeout(Some(timeout.max(Duration::from_secs(2))))?;
    let mut reader = BufReader::new(stream);
    let greeting = read_line(&mut reader)?;
    if greeting != GREETING {
        return Err(io::Error::other(format!(
            "unexpected greeting {greeting:?}"
        )));
    }
    Ok(Conn { reader })
}

/// How a [`OneShot`] service ends its one connection, to show what a relay does with each
/// end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    /// Sends `banner\n` and ends its sending side at once, then reads to the end.
    BannerFirst,
    /// Reads to the end, then answers `got N\n` (N bytes read) and closes.
    ReplyAtEnd,
}

/// A service for one connection; [`OneShot::got`] says what it read.
pub struct OneShot {
    done: mpsc::Receiver<io::Result<Vec<u8>>>,
}

impl OneShot {
    /// Listens on `[::]:port` (IPv4 too) in namespace `ns` for one connection.
    pub fn start(ns: &str, port: u16, ends: Ends) -> OneShot {
        let listener = in_netns(ns, move || {
            TcpListener::bind(("::", port)).unwrap_or_else(|e| panic!("bind [::]:{port}: {e}"))
        });
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let exchange = || -> io::Result<Vec<u8>> {
                let (mut conn, _) = listener.accept()?;
                let mut got = Vec::new();
                match ends {
                    Ends::BannerFirst => {
                        conn.write_all(b"banner\n")?;
                        conn.shutdown(Shutdown::Write)?;
                        conn.read_to_end(&mut got)?;
                    }
                    Ends::ReplyAtEnd => {
                        conn.read_to_end(&mut got)?;
                        writeln!(conn, "got {}", got.len())?;
                    }
                }
                Ok(got)
            };
            let _ = tx.send(exchange());
        });
        OneShot { done }
    }

    /// What the connection brought, once it has ended; panics after `timeout`.
    pub fn got(&self, timeout: Duration) -> Vec<u8> {
        self.done
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("the one-shot service had no connection end: {e}"))
            .unwrap_or_else(|e| panic!("the one-shot service failed: {e}"))
    }
}
