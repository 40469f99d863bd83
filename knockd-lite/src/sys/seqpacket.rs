//! The monitor/worker channel's socket: a `SOCK_SEQPACKET` Unix socket pair (each send is
//! one message, read whole or not at all), with a descriptor passed alongside a message
//! (SCM_RIGHTS) when the monitor hands the worker a capture socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// One end of the channel (close-on-exec, blocking unless a call says otherwise).
#[derive(Debug)]
pub(crate) struct SeqPacket(OwnedFd);

/// What one receive got.
#[derive(Debug)]
pub(crate) enum Received {
    /// A message of this many bytes, and a descriptor if one came with it.
    Message(usize, Option<OwnedFd>),
    /// The other end is closed.
    Closed,
    /// Nothing waiting (a non-blocking receive).
    Empty,
}

impl SeqPacket {
    /// A connected pair.
    pub(crate) fn pair() -> io::Result<(SeqPacket, SeqPacket)> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into the array we pass; checked.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        super::check(rc)?;
        // SAFETY: both are fresh descriptors that nothing else owns.
        Ok(unsafe {
            (
                SeqPacket(OwnedFd::from_raw_fd(fds[0])),
                SeqPacket(OwnedFd::from_raw_fd(fds[1])),
            )
        })
    }

    /// A socket made elsewhere (tests of the sandbox put one at the channel's descriptor).
    #[cfg(test)]
    pub(crate) fn from_fd(fd: OwnedFd) -> SeqPacket {
        SeqPacket(fd)
    }

    /// The worker's channel: its stdin ([`super::sandbox::CHANNEL_FD`], the one
    /// descriptor the seccomp allow-list lets the worker send on), taken over as it is.
    pub(crate) fn from_stdin() -> SeqPacket {
        // SAFETY: the descriptor is open for the process's life (the monitor made it the
        // channel); std never closes it, and the worker takes it over for good.
        SeqPacket(unsafe { OwnedFd::from_raw_fd(super::sandbox::CHANNEL_FD as RawFd) })
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// Makes a blocking send give up (EAGAIN) after `timeout`.
    pub(crate) fn set_send_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        // Seconds as the target's time_t (a few, here: no overflow), microseconds below 10^6.
        let tv = libc::timeval {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        // SAFETY: passes a live timeval of its exact size; the kernel only copies it.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        super::check(rc).map(|_| ())
    }

    /// Sends `bytes` as one message, with `fd` passed alongside when given.
    pub(crate) fn send(&self, bytes: &[u8], fd: Option<RawFd>) -> io::Result<()> {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        // Room for one descriptor's control message, aligned for cmsghdr.
        let mut control = [0u64; 4];
        // SAFETY: a zeroed msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            // SAFETY: CMSG_SPACE is pure arithmetic.
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) };
            msg.msg_control = control.as_mut_ptr().cast();
            // msg_controllen and cmsg_len are size_t in glibc, socklen_t in musl (the static
            // builds): `as _` takes whichever the target has.
            msg.msg_controllen = space as _;
            // SAFETY: the control buffer (32 bytes) holds CMSG_SPACE(4) bytes, so the first
            // header and its data are inside it; the data is written unaligned.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
            }
        }
        loop {
            // SAFETY: msg points at live buffers of the lengths it states; MSG_NOSIGNAL
            // turns a closed peer into EPIPE instead of SIGPIPE.
            let rc = unsafe { libc::sendmsg(self.0.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
            match super::check(rc as i64) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one message into `buf` (without waiting, unless `wait`). A message longer
    /// than `buf` is an error (`InvalidData`): the sender broke the size limit.
    pub(crate) fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<Received> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: a zeroed msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let flags = libc::MSG_CMSG_CLOEXEC | if wait { 0 } else { libc::MSG_DONTWAIT };
        let n = loop {
            // SAFETY: msg points at live buffers of the lengths it states.
            let rc = unsafe { libc::recvmsg(self.0.as_raw_fd(), &mut msg, flags) };
            match super::check(rc as i64) {
                Ok(n) => break n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Empty),
                Err(e) => return Err(e),
            }
        };
        // Descriptors first, so one that came with a bad message is still closed.
        let mut fds = Vec::new();
        // SAFETY: the kernel filled msg_controllen bytes of well-formed cmsgs into our
        // buffer; CMSG_FIRSTHDR/NXTHDR stay inside it, and SCM_RIGHTS data is an array of
        // descriptors now ours, each read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c);
                    let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a message longer than the channel allows",
            ));
        }
        if n == 0 && fds.is_empty() {
            return Ok(Received::Closed);
        }
        if fds.len() > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "more than one descriptor with a message",
            ));
        }
        Ok(Received::Message(n, fds.pop()))
    }
}

impl AsRawFd for SeqPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn messages_keep_their_boundaries_and_carry_a_descriptor() {
        let (a, b) = SeqPacket::pair().unwrap();
        let mut file = tempfile_fd();
        file.write_all(b"passed").unwrap();
        a.send(b"one", None).unwrap();
        a.send(b"two!", Some(file.as_raw_fd())).unwrap();
        let mut buf = [0u8; 16];
        match b.recv(&mut buf, true).unwrap() {
            Received::Message(3, None) => assert_eq!(&buf[..3], b"one"),
            other => panic!("{other:?}"),
        }
        let Received::Message(4, Some(fd)) = b.recv(&mut buf, true).unwrap() else {
            panic!()
        };
        assert_eq!(&buf[..4], b"two!");
        let mut got = std::fs::File::from(fd);
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "passed");
        assert!(matches!(b.recv(&mut buf, false).unwrap(), Received::Empty));
        // Too long for the buffer: refused, not cut.
        a.send(&[7u8; 32], None).unwrap();
        assert_eq!(
            b.recv(&mut buf, true).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        drop(a);
        assert!(matches!(b.recv(&mut buf, true).unwrap(), Received::Closed));
    }

    #[test]
    fn a_send_the_peer_does_not_take_gives_up_after_its_timeout() {
        let (a, _b) = SeqPacket::pair().unwrap();
        a.set_send_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let chunk = vec![0u8; 32 * 1024];
        let started = std::time::Instant::now();
        let err = loop {
            if let Err(e) = a.send(&chunk, None) {
                break e;
            }
            assert!(started.elapsed().as_secs() < 10, "the buffer never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    fn tempfile_fd() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("seqpacket-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let _ = std::fs::remove_file(&path);
        f
    }
}
