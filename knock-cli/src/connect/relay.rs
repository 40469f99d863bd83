//! Carrying a connection over stdin and stdout (`--proxy`): one thread per direction, so
//! nothing polls stdin (a console or a pipe on Windows, where that is not possible), and
//! each direction passes on the end of its input: stdin's end shuts down the socket's
//! sending side, the socket's end closes stdout. The relay is over when both ends were
//! passed on, or at the first error.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Bytes moved per read: large enough that a bulk copy (scp) costs few system calls.
const CHUNK: usize = 256 * 1024;

/// How many bytes went each way, and whether Ctrl-C ended the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Relayed {
    /// From stdin to the connection.
    pub sent: u64,
    /// From the connection to stdout.
    pub received: u64,
    /// Ctrl-C ended it (the counts are then not known).
    pub interrupted: bool,
}

/// How often the relay looks at the Ctrl-C flag.
const LOOK: Duration = Duration::from_millis(50);

/// What failed while relaying, and which way. The message holds the OS error, so it is
/// not also the `source()`.
#[derive(Debug, thiserror::Error)]
#[error("relay: {way}: {error}")]
pub(crate) struct RelayError {
    /// `stdin to 192.0.2.2:22`, `192.0.2.2:22 to stdout`, ...
    pub way: String,
    pub error: io::Error,
}

enum Done {
    Up(io::Result<u64>),
    Down(io::Result<u64>),
}

/// Relays between `stream` and `input`/`output` until both directions have ended.
///
/// `output` is dropped (closed) when the connection's sending side ends, so whoever reads
/// it sees the end; `input`'s end shuts down the connection's sending side. A thread still
/// blocked reading `input` after an error is left behind: the process ends soon after.
///
/// Ends that are not failures: the reader of `output` going away (a broken pipe) ends the
/// relay, since nobody is left to hear the connection; a failed send once the connection
/// has ended its own side (the peer closed entirely) ends it too. Ctrl-C (`interrupted`)
/// ends it within [`LOOK`].
pub(crate) fn relay<I, O>(
    stream: TcpStream,
    input: I,
    output: O,
    interrupted: &dyn Fn() -> bool,
) -> Result<Relayed, RelayError>
where
    I: Read + Send + 'static,
    O: Write + Send + 'static,
{
    let peer = stream.peer_addr().map_err(|error| RelayError {
        way: "the connection's address".into(),
        error,
    })?;
    let writer = stream.try_clone().map_err(|error| RelayError {
        way: format!("a second handle on the socket of {peer}"),
        error,
    })?;
    // Keystrokes go out at once; bulk data comes in chunks anyway.
    let _ = stream.set_nodelay(true);
    let (tx, rx) = mpsc::channel();
    let up = tx.clone();
    thread::spawn(move || {
        let mut input = input;
        let mut writer = writer;
        let result = pump(&mut input, &mut writer).and_then(|n| {
            writer.shutdown(Shutdown::Write)?;
            Ok(n)
        });
        let _ = up.send(Done::Up(result));
    });
    thread::spawn(move || {
        let mut reader = stream;
        let mut output = output;
        let result = pump(&mut reader, &mut output).and_then(|n| {
            output.flush()?;
            drop(output);
            Ok(n)
        });
        let _ = tx.send(Done::Down(result));
    });
    let mut sent = None;
    let mut received = None;
    while sent.is_none() || received.is_none() {
        let done = match rx.recv_timeout(LOOK) {
            Ok(done) => done,
            Err(mpsc::RecvTimeoutError::Timeout) if interrupted() => {
                return Ok(Relayed {
                    interrupted: true,
                    ..Relayed::default()
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Both threads are gone without a word: only a panic does that.
                return Err(RelayError {
                    way: "a relay thread".into(),
                    error: io::Error::other("ended without a result"),
                });
            }
        };
        match done {
            Done::Up(Ok(n)) => sent = Some(n),
            Done::Up(Err(e)) if received.is_some() && peer_gone(&e) => {
                // The peer closed entirely after its end: nobody is left to send to.
                sent = Some(0);
            }
            Done::Up(Err(error)) => {
                return Err(RelayError {
                    way: format!("stdin to {peer}"),
                    error,
                });
            }
            Done::Down(Ok(n)) => received = Some(n),
            // Reading a socket never says this; writing stdout does once its reader has
            // gone, and then nothing more can be delivered.
            Done::Down(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(Relayed {
                    sent: sent.unwrap_or(0),
                    ..Relayed::default()
                });
            }
            Done::Down(Err(error)) => {
                return Err(RelayError {
                    way: format!("{peer} to stdout"),
                    error,
                });
            }
        }
    }
    Ok(Relayed {
        sent: sent.unwrap_or(0),
        received: received.unwrap_or(0),
        interrupted: false,
    })
}

/// Whether a send failed because the peer has closed the connection.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

/// Copies `from` to `to` until `from` ends, a large chunk at a time.
///
/// Plain reads and writes everywhere. The standard library's `io::copy` would move bytes
/// between a socket and a pipe with splice(2) on Linux; on Linux 6.18 that left ssh asleep
/// on a ProxyCommand pipe that held data (the reader was never woken), so the relay does
/// not use it.
fn pump<R: Read, W: Write>(from: &mut R, to: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A Windows pipe whose writer closed says so with this error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(total),
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A connected pair on loopback: (the relay's side, the far side).
    fn connection() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    /// stdout's stand-in: what was written, and whether it was closed (dropped).
    #[derive(Clone, Default)]
    struct Captured {
        bytes: Arc<Mutex<Vec<u8>>>,
        closed: Arc<Mutex<bool>>,
    }

    struct CaptureWriter(Captured);

    impl Write for CaptureWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for CaptureWriter {
        fn drop(&mut self) {
            *self.0.closed.lock().unwrap() = true;
        }
    }

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("waited 5 s for {what}");
    }

    #[test]
    fn bytes_cross_both_ways_and_both_ends_are_passed_on() {
        let (near, mut far) = connection();
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let captured = Captured::default();
        let out = CaptureWriter(captured.clone());
        let want = input.clone();
        let relay = thread::spawn(move || relay(near, io::Cursor::new(input), out, &|| false));
        // The far side reads everything up to the end stdin's end passed on...
        let mut got = Vec::new();
        far.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes arrived changed");
        // ...and still sends after it: a half-closed connection goes on the other way.
        assert!(!*captured.closed.lock().unwrap());
        far.write_all(b"reply after your end").unwrap();
        far.shutdown(Shutdown::Write).unwrap();
        let done = relay.join().unwrap().unwrap();
        assert_eq!(
            done,
            Relayed {
                sent: 300_000,
                received: 20,
                interrupted: false
            }
        );
        assert_eq!(*captured.bytes.lock().unwrap(), b"reply after your end");
        assert!(*captured.closed.lock().unwrap(), "stdout was closed");
    }

    #[test]
    fn the_connections_end_closes_stdout_while_stdin_goes_on() {
        let (near, mut far) = connection();
        let (input, mut typing) = io::pipe().unwrap();
        let captured = Captured::default();
        let out = CaptureWriter(captured.clone());
        let relay = thread::spawn(move || relay(near, input, out, &|| false));
        far.write_all(b"banner\n").unwrap();
        far.shutdown(Shutdown::Write).unwrap();
        wait_until("stdout to close", || *captured.closed.lock().unwrap());
        assert_eq!(*captured.bytes.lock().unwrap(), b"banner\n");
        // The other way is still open: what is typed now still arrives.
        typing.write_all(b"typed later").unwrap();
        drop(typing);
        let mut got = Vec::new();
        far.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"typed later");
        assert_eq!(
            relay.join().unwrap().unwrap(),
            Relayed {
                sent: 11,
                received: 7,
                interrupted: false
            }
        );
    }

    #[test]
    fn a_reader_that_went_away_ends_the_relay() {
        let (near, mut far) = connection();
        let (input, _typing) = io::pipe().unwrap();
        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let relay = thread::spawn(move || relay(near, input, Gone, &|| false));
        far.write_all(b"anyone?").unwrap();
        // stdin is still open, yet the relay is over.
        assert_eq!(relay.join().unwrap().unwrap(), Relayed::default());
    }

    #[test]
    fn ctrl_c_ends_the_relay() {
        let (near, _far) = connection();
        let (input, _typing) = io::pipe().unwrap();
        let pressed = std::sync::atomic::AtomicBool::new(false);
        let relay = thread::scope(|s| {
            let relay = s.spawn(|| {
                relay(near, input, io::sink(), &|| {
                    pressed.load(std::sync::atomic::Ordering::SeqCst)
                })
            });
            thread::sleep(Duration::from_millis(100));
            pressed.store(true, std::sync::atomic::Ordering::SeqCst);
            relay.join().unwrap()
        });
        assert!(relay.unwrap().interrupted);
    }

    #[test]
    fn a_failing_stdin_is_an_error_that_names_it() {
        let (near, _far) = connection();
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("the disk caught fire"))
            }
        }
        let err = relay(near, Broken, io::sink(), &|| false).unwrap_err();
        assert!(
            err.to_string().starts_with("relay: stdin to 127.0.0.1:"),
            "{err}"
        );
        assert!(err.to_string().ends_with(": the disk caught fire"), "{err}");
    }
}
