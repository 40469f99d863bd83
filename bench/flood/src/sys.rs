//! The OS edge: an AF_PACKET socket that sends whole Ethernet frames with `sendmmsg`,
//! and the checks that keep the flood inside a test namespace.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

/// `ETH_P_IP`, the protocol the frames carry.
const ETH_P_IP: u16 = 0x0800;

/// Fails unless this process runs in a named network namespace (one that `ip netns add`
/// created under /run/netns), so the flood can only reach the veth of a test namespace,
/// never the host's network.
pub fn require_test_namespace() -> anyhow::Result<()> {
    let own = std::fs::metadata("/proc/self/ns/net")
        .map_err(|e| anyhow::anyhow!("stat /proc/self/ns/net: {e}"))?;
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .any(|m| (m.dev(), m.ino()) == (own.dev(), own.ino()));
    if !named {
        anyhow::bail!(
            "refusing to flood outside a test namespace: run it under `ip netns exec NS` \
             (this network namespace is not one of /run/netns)"
        );
    }
    Ok(())
}

/// The MAC address of an interface, from sysfs (which `ip netns exec` mounts for the
/// namespace).
pub fn interface_mac(name: &str) -> anyhow::Result<String> {
    let path = format!("/sys/class/net/{name}/address");
    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("read {path}: {e}"))
}

/// An AF_PACKET socket bound to nothing that receives nothing (protocol 0) and sends
/// frames out of one interface.
pub struct FrameSocket {
    fd: OwnedFd,
    addr: libc::sockaddr_ll,
    ifname: String,
}

impl FrameSocket {
    pub fn open(ifname: &str) -> anyhow::Result<FrameSocket> {
        let cname = CString::new(ifname)
            .map_err(|_| anyhow::anyhow!("interface name {ifname:?} contains a NUL"))?;
        // SAFETY: cname is a valid NUL-terminated string for the duration of the call.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            anyhow::bail!("interface {ifname}: {}", io::Error::last_os_error());
        }
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            anyhow::bail!(
                "socket(AF_PACKET, SOCK_RAW): {}",
                io::Error::last_os_error()
            );
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: the option value points at a c_int that outlives the call, with its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            anyhow::bail!(
                "setsockopt PACKET_QDISC_BYPASS on {ifname}: {}",
                io::Error::last_os_error()
            );
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_IP.to_be();
        addr.sll_ifindex = index as libc::c_int;
        addr.sll_halen = 6;
        Ok(FrameSocket {
            fd,
            addr,
            ifname: ifname.to_string(),
        })
    }

    /// A batch sender over `frames` (frames of `frame_len` bytes laid end to end).
    pub fn batch<'a>(&'a self, frames: &'a [u8], frame_len: usize) -> Batch<'a> {
        let mut iovs: Vec<libc::iovec> = frames
            .chunks_exact(frame_len)
            .map(|f| libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            })
            .collect();
        let name = (&self.addr as *const libc::sockaddr_ll).cast_mut();
        let msgs = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = name.cast();
                m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        Batch {
            socket: self,
            _iovs: iovs,
            msgs,
            _frames: frames,
        }
    }
}

/// Pre-built message headers for `sendmmsg`, one per frame, pointing into the frames.
pub struct Batch<'a> {
    socket: &'a FrameSocket,
    /// The iovecs the headers point at; their heap buffer never moves.
    _iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// Ties the iovecs' pointers to the frames' lifetime.
    _frames: &'a [u8],
}

impl Batch<'_> {
    /// How many frames the batch cycles through.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Sends up to `count` frames starting at frame `first` (without wrapping) in one
    /// `sendmmsg` call, and returns how many the kernel took. `ENOBUFS` (the device
    /// queue is full) counts as zero sent.
    pub fn send(&mut self, first: usize, count: usize) -> anyhow::Result<usize> {
        let end = (first + count).min(self.msgs.len());
        if first >= end {
            return Ok(0);
        }
        let msgs = &mut self.msgs[first..end];
        // SAFETY: msgs holds msgs.len() initialised headers whose name points at the
        // socket's sockaddr_ll and whose iovecs (in `_iovs`) point into the frames; the
        // Batch borrows the socket and the frames and owns the iovecs, and the kernel only reads them (and
        // writes msg_len).
        let sent = unsafe {
            libc::sendmmsg(
                self.socket.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                0,
            )
        };
        if sent < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOBUFS) {
                return Ok(0);
            }
            anyhow::bail!("sendmmsg on {}: {err}", self.socket.ifname);
        }
        Ok(sent as usize)
    }
}
