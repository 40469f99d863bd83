//! nftables doors: adding a knocker's address to a set with a timeout, so the kernel itself
//! closes the door, and checking that a set can take such elements.
//!
//! knockd-lite speaks nf_tables netlink itself, in [`msg`]: four request kinds (an element
//! batch, a delete batch, GETTABLE, GETSET) and their replies, with golden-byte tests. No
//! C library (libnftnl/libmnl would stop the static musl builds), no `nft` process per
//! knock, nothing built from text; the socket is `sys::NetlinkSocket`, behind
//! [`Transport`].

mod msg;
pub(crate) mod ruleset;

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use knock_core::conf::{Config, NftSet, SetDirective};

use crate::sys::NetlinkSocket;
pub(crate) use msg::SetInfo;
use msg::{Reply, Request};

/// How long one exchange waits for the kernel. Requests are handled while the kernel
/// takes them, so answers are there at once unless something is badly wrong.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Why an nftables request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NftError {
    #[error("table {family} {table} does not exist", family = .0.family.name(), table = .0.table)]
    NoTable(NftSet),
    #[error("set {} does not exist in table {} {}", .0.set, .0.family.name(), .0.table)]
    NoSet(NftSet),
    /// The set exists but cannot hold knockers: what is wrong, and what to do.
    #[error("{0}")]
    Unsuitable(String),
    /// The kernel refused: its reason (strerror), with a hint where one helps.
    #[error("{}", kernel_reason(*.0))]
    Kernel(i32),
    /// The socket failed (the message holds the OS error, so it is not also the source).
    #[error("netlink {op}: {error}")]
    Io { op: &'static str, error: io::Error },
    #[error("netlink: unexpected answer from the kernel: {0}")]
    Protocol(String),
}

impl NftError {
    /// Whether the request never got to say anything about the set (no privilege, no
    /// socket): `--check` then reports the set as not checked rather than wrong.
    pub(crate) fn not_checked(&self) -> bool {
        matches!(
            self,
            NftError::Kernel(_) | NftError::Io { .. } | NftError::Protocol(_)
        )
    }
}

/// The kernel's reason for `errno`, and what to do about it where that is not obvious.
fn kernel_reason(errno: i32) -> String {
    let reason = io::Error::from_raw_os_error(errno).to_string();
    let hint = match errno {
        libc::EPERM => " (nftables doors need CAP_NET_ADMIN: run knockd-lite as root)",
        libc::ENFILE => " (the set is full: raise its size)",
        _ => "",
    };
    format!("{reason}{hint}")
}

/// Datagrams to and from the kernel: the socket, or a script in tests.
pub(crate) trait Transport {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// One datagram; `TimedOut` if none came in time.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

impl Transport for NetlinkSocket {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        NetlinkSocket::send(self, bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        NetlinkSocket::recv(self, buf)
    }
}

/// What the daemon and `--check` do with sets: the seam its tests replace.
pub(crate) trait Sets {
    /// Puts `addr` in `set` for `timeout`, restarting the timeout if it is there already.
    fn add(&mut self, set: &NftSet, addr: IpAddr, timeout: Duration) -> Result<(), NftError>;
    /// Takes `addr` out of `set`; `Ok(false)` if it was not there (expired, or removed).
    fn delete(&mut self, set: &NftSet, addr: IpAddr) -> Result<bool, NftError>;
    /// What the set is (`NoTable` and `NoSet` when it is not there).
    fn describe(&mut self, set: &NftSet) -> Result<SetInfo, NftError>;
}

/// Checks that a set described as `info` can hold knockers of one family with a timeout.
pub(crate) fn check_set(info: &SetInfo, ipv6: bool) -> Result<(), NftError> {
    let (want, want_len) = if ipv6 {
        (msg::TYPE_IPV6_ADDR, 16)
    } else {
        (msg::TYPE_IPV4_ADDR, 4)
    };
    let unsuitable = NftError::Unsuitable;
    let want_name = type_name(want);
    if info.flags & (msg::NFT_SET_MAP | msg::NFT_SET_OBJECT) != 0 {
        return Err(unsuitable(format!(
            "is a map; a door needs a plain set of type {want_name}"
        )));
    }
    if info.flags & msg::NFT_SET_CONCAT != 0 || info.key_type != want || info.key_len != want_len {
        let found = match type_name(info.key_type) {
            "" => format!("key type {} of {} bytes", info.key_type, info.key_len),
            name => name.to_string(),
        };
        return Err(unsuitable(format!(
            "holds {found}, not {want_name} (the {} directive needs type {want_name})",
            if ipv6 { "Nft_Set_6" } else { "Nft_Set" }
        )));
    }
    if info.flags & msg::NFT_SET_TIMEOUT == 0 {
        return Err(unsuitable(
            "has no \"flags timeout\", so the kernel could not close the door \
             (add flags timeout to the set)"
                .to_string(),
        ));
    }
    if info.flags & msg::NFT_SET_INTERVAL != 0 {
        return Err(unsuitable(
            "has \"flags interval\"; knockd-lite adds single addresses (drop flags interval)"
                .to_string(),
        ));
    }
    if info.flags & msg::NFT_SET_CONSTANT != 0 {
        return Err(unsuitable(
            "is constant: nothing can be added to it".to_string(),
        ));
    }
    Ok(())
}

/// One `Nft_Set`/`Nft_Set_6` of a door.
pub(crate) struct DoorSet<'a> {
    pub(crate) door: &'a str,
    pub(crate) ipv6: bool,
    pub(crate) directive: &'a SetDirective,
}

impl DoorSet<'_> {
    pub(crate) fn name(&self) -> &'static str {
        if self.ipv6 { "Nft_Set_6" } else { "Nft_Set" }
    }

    /// `path:line: Nft_Set = inet filter ks: ` before what `e` says.
    pub(crate) fn error(&self, path: &Path, e: &NftError) -> String {
        let what = if e.not_checked() {
            "cannot check the set: "
        } else {
            ""
        };
        format!(
            "{}:{}: {} = {}: {what}{e}",
            path.display(),
            self.directive.line,
            self.name(),
            self.directive.set
        )
    }
}

/// Every set the doors of `config` name, in door order.
pub(crate) fn door_sets(config: &Config) -> Vec<DoorSet<'_>> {
    config
        .doors
        .iter()
        .flat_map(|door| {
            [false, true].into_iter().filter_map(move |ipv6| {
                door.nft_set_for(ipv6).map(|directive| DoorSet {
                    door: &door.name,
                    ipv6,
                    directive,
                })
            })
        })
        .collect()
}

/// Whether the set of `ds` exists and can hold its knockers.
pub(crate) fn check_door_set(sets: &mut dyn Sets, ds: &DoorSet<'_>) -> Result<(), NftError> {
    let info = sets.describe(&ds.directive.set)?;
    check_set(&info, ds.ipv6)
}

/// At start-up and on SIGHUP: every set must be usable. The error is `path:line: ...`, and
/// says whether the set is wrong (a config error) or could not be checked.
pub(crate) fn validate(
    config: &Config,
    path: &Path,
    sets: &mut dyn Sets,
) -> Result<(), (String, bool)> {
    for ds in door_sets(config) {
        if let Err(e) = check_door_set(sets, &ds) {
            return Err((ds.error(path, &e), e.not_checked()));
        }
    }
    Ok(())
}

/// `--check`'s section on nftables doors: each set and what was found, then the ruleset
/// lines to paste (also when sets are missing: that is when they are needed). A set that
/// could not be checked says so and why. The error is the first set that is wrong.
pub(crate) fn check_report(
    config: &Config,
    path: &Path,
    sets: &mut dyn Sets,
) -> (String, Option<String>) {
    let all = door_sets(config);
    if all.is_empty() {
        return (String::new(), None);
    }
    let mut wrong = None;
    let mut out = String::from(
        "\nnftables doors (the kernel removes each knocker Cmd_Timeout after the knock):\n",
    );
    for ds in &all {
        let status = match check_door_set(sets, ds) {
            Ok(()) => format!(
                "ok ({}, flags timeout)",
                if ds.ipv6 { "ipv6_addr" } else { "ipv4_addr" }
            ),
            Err(e) if e.not_checked() => format!("NOT CHECKED: {e}"),
            Err(e) => {
                wrong.get_or_insert_with(|| ds.error(path, &e));
                format!("WRONG: {e}")
            }
        };
        out.push_str(&format!(
            "  [{}] {:<9} {}: {status}\n",
            ds.door,
            ds.name(),
            ds.directive.set
        ));
    }
    out.push_str(&format!(
        "\nruleset for these doors (nft -f FILE; replace {} with the port each door guards; \
         policy drop closes everything the chain does not accept):\n",
        ruleset::PLACEHOLDER_PORT
    ));
    out.push_str(&ruleset::snippet(config));
    (out, wrong)
}

/// nft's name of a key type, or "" for one knockd-lite has no use for.
fn type_name(key_type: u32) -> &'static str {
    match key_type {
        msg::TYPE_IPV4_ADDR => "ipv4_addr",
        msg::TYPE_IPV6_ADDR => "ipv6_addr",
        _ => "",
    }
}

/// An nf_tables client over a transport.
pub(crate) struct Nft<T> {
    transport: T,
    seq: u32,
    buf: Vec<u8>,
}

impl Nft<NetlinkSocket> {
    /// A client on a new netlink socket.
    pub(crate) fn open() -> Result<Nft<NetlinkSocket>, NftError> {
        let socket = NetlinkSocket::netfilter(ANSWER_WAIT).map_err(|error| NftError::Io {
            op: "socket",
            error,
        })?;
        Ok(Nft::new(socket))
    }
}

impl<T: Transport> Nft<T> {
    pub(crate) fn new(transport: T) -> Nft<T> {
        Nft {
            transport,
            seq: 1,
            buf: vec![0; 64 * 1024],
        }
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(n);
        seq
    }

    /// Sends `req` and collects its answers: one for each acked message, or a lone error
    /// for the batch's begin message. Answers to earlier, abandoned requests are skipped.
    fn exchange(&mut self, req: Request) -> Result<Vec<Reply>, NftError> {
        self.transport
            .send(&req.bytes)
            .map_err(|error| NftError::Io { op: "send", error })?;
        let mut out = Vec::new();
        let mut answered = 0;
        while answered < req.acked.len() {
            let n = self
                .transport
                .recv(&mut self.buf)
                .map_err(|error| NftError::Io {
                    op: "receive",
                    error,
                })?;
            for reply in msg::parse_replies(&self.buf[..n]).map_err(NftError::Protocol)? {
                match reply {
                    Reply::Status { seq, errno } if Some(seq) == req.begin && errno != 0 => {
                        return Err(NftError::Kernel(errno));
                    }
                    Reply::Status { seq, .. } if req.acked.contains(&seq) => {
                        answered += 1;
                        out.push(reply);
                    }
                    Reply::Set { seq, .. } | Reply::Other { seq } if req.acked.contains(&seq) => {
                        out.push(reply)
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// The first error among `replies`, in the order the messages were sent.
    fn first_error(replies: &[Reply]) -> Option<i32> {
        replies.iter().find_map(|r| match r {
            Reply::Status { errno, .. } if *errno != 0 => Some(*errno),
            _ => None,
        })
    }
}

impl<T: Transport> Sets for Nft<T> {
    fn add(&mut self, set: &NftSet, addr: IpAddr, timeout: Duration) -> Result<(), NftError> {
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let req = msg::refresh_element(self.next_seq(5), set, addr, ms);
        let replies = self.exchange(req)?;
        match Self::first_error(&replies) {
            Some(errno) => Err(NftError::Kernel(errno)),
            None => Ok(()),
        }
    }

    fn delete(&mut self, set: &NftSet, addr: IpAddr) -> Result<bool, NftError> {
        let req = msg::delete_element(self.next_seq(3), set, addr);
        let replies = self.exchange(req)?;
        match Self::first_error(&replies) {
            Some(libc::ENOENT) => Ok(false),
            Some(errno) => Err(NftError::Kernel(errno)),
            None => Ok(true),
        }
    }

    fn describe(&mut self, set: &NftSet) -> Result<SetInfo, NftError> {
        let req = msg::get_table(self.next_seq(1), set);
        match Self::first_error(&self.exchange(req)?) {
            Some(libc::ENOENT) => return Err(NftError::NoTable(set.clone())),
            Some(errno) => return Err(NftError::Kernel(errno)),
            None => {}
        }
        let req = msg::get_set(self.next_seq(1), set);
        let replies = self.exchange(req)?;
        match Self::first_error(&replies) {
            Some(libc::ENOENT) => return Err(NftError::NoSet(set.clone())),
            Some(errno) => return Err(NftError::Kernel(errno)),
            None => {}
        }
        replies
            .iter()
            .find_map(|r| match r {
                Reply::Set { info, .. } => Some(*info),
                _ => None,
            })
            .ok_or_else(|| NftError::Protocol("no set description in the answer".into()))
    }
}

/// A socket opened on first use, so a config without nftables doors never opens one and a
/// failure to open is reported where it matters.
#[derive(Default)]
pub(crate) struct Netlink {
    client: Option<Nft<NetlinkSocket>>,
}

impl Netlink {
    fn client(&mut self) -> Result<&mut Nft<NetlinkSocket>, NftError> {
        if self.client.is_none() {
            self.client = Some(Nft::open()?);
        }
        Ok(self.client.as_mut().expect("opened above"))
    }

    /// After a failed exchange a late answer could still arrive: start afresh next time.
    fn settle<V>(&mut self, r: Result<V, NftError>) -> Result<V, NftError> {
        if matches!(r, Err(NftError::Io { .. } | NftError::Protocol(_))) {
            self.client = None;
        }
        r
    }
}

impl Sets for Netlink {
    fn add(&mut self, set: &NftSet, addr: IpAddr, timeout: Duration) -> Result<(), NftError> {
        let r = self.client().and_then(|c| c.add(set, addr, timeout));
        self.settle(r)
    }

    fn delete(&mut self, set: &NftSet, addr: IpAddr) -> Result<bool, NftError> {
        let r = self.client().and_then(|c| c.delete(set, addr));
        self.settle(r)
    }

    fn describe(&mut self, set: &NftSet) -> Result<SetInfo, NftError> {
        let r = self.client().and_then(|c| c.describe(set));
        self.settle(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::conf::NftFamily;
    use std::collections::VecDeque;

    /// Replies built from (seq offset from the request's first, errno or set info).
    struct Script {
        sent: Vec<Vec<u8>>,
        answers: VecDeque<Vec<u8>>,
    }

    impl Transport for Script {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent.push(bytes.to_vec());
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let a = self
                .answers
                .pop_front()
                .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no answer"))?;
            buf[..a.len()].copy_from_slice(&a);
            Ok(a.len())
        }
    }

    fn status(seq: u32, errno: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&20u32.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-errno).to_ne_bytes());
        m
    }

    fn set_reply(seq: u32, flags: u32, key_type: u32, key_len: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&44u32.to_ne_bytes()); // 16 + 4 + 3 * 8
        m.extend_from_slice(&0x0a09u16.to_ne_bytes()); // NFT_MSG_NEWSET
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[1, 0, 0, 0]);
        for (kind, v) in [(3u16, flags), (4, key_type), (5, key_len)] {
            m.extend_from_slice(&8u16.to_ne_bytes());
            m.extend_from_slice(&kind.to_ne_bytes());
            m.extend_from_slice(&v.to_be_bytes());
        }
        m
    }

    fn nft(answers: Vec<Vec<u8>>) -> Nft<Script> {
        Nft::new(Script {
            sent: Vec::new(),
            answers: answers.into(),
        })
    }

    fn set() -> NftSet {
        NftSet {
            family: NftFamily::Inet,
            table: "filter".into(),
            set: "ks".into(),
        }
    }

    const A: &str = "192.0.2.1";

    #[test]
    fn add_waits_for_every_ack_and_reports_the_first_error() {
        // Seqs: begin 1, add 2, delete 3, add 4, end 5; acks may come in several datagrams,
        // after a stale answer to an abandoned request.
        let mut n = nft(vec![
            status(99, 0),
            status(2, 0),
            [status(3, 0), status(4, 0)].concat(),
        ]);
        n.add(&set(), A.parse().unwrap(), Duration::from_secs(10))
            .unwrap();
        assert_eq!(n.transport.sent.len(), 1);
        assert!(n.transport.answers.is_empty());
        // The set is gone: every message of the batch says ENOENT.
        let mut n2 = nft(vec![[status(2, 2), status(3, 2), status(4, 2)].concat()]);
        let e = n2
            .add(&set(), A.parse().unwrap(), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
        // No privilege: one error, for the batch's begin message.
        let mut n3 = nft(vec![status(1, libc::EPERM)]);
        let e = n3
            .add(&set(), A.parse().unwrap(), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Operation not permitted (os error 1) (nftables doors need CAP_NET_ADMIN: run \
             knockd-lite as root)"
        );
        assert!(e.not_checked());
        // Silence: a timeout, named.
        let e = nft(vec![])
            .add(&set(), A.parse().unwrap(), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e.to_string(), "netlink receive: no answer");
    }

    #[test]
    fn delete_of_a_missing_element_is_not_an_error() {
        let mut n = nft(vec![status(2, 0), status(5, libc::ENOENT)]);
        assert!(n.delete(&set(), A.parse().unwrap()).unwrap());
        assert!(!n.delete(&set(), A.parse().unwrap()).unwrap());
    }

    #[test]
    fn describe_tells_a_missing_table_from_a_missing_set() {
        let mut n = nft(vec![status(1, libc::ENOENT)]);
        assert_eq!(
            n.describe(&set()).unwrap_err().to_string(),
            "table inet filter does not exist"
        );
        let mut n = nft(vec![status(1, 0), status(2, libc::ENOENT)]);
        assert_eq!(
            n.describe(&set()).unwrap_err().to_string(),
            "set ks does not exist in table inet filter"
        );
        let mut n = nft(vec![
            status(1, 0),
            [set_reply(2, 0x10, 7, 4), status(2, 0)].concat(),
        ]);
        let info = n.describe(&set()).unwrap();
        assert_eq!(
            info,
            SetInfo {
                flags: 0x10,
                key_type: 7,
                key_len: 4
            }
        );
        assert!(check_set(&info, false).is_ok());
    }

    #[test]
    fn unsuitable_sets_say_what_to_change() {
        let check = |flags, key_type, key_len, ipv6| {
            check_set(
                &SetInfo {
                    flags,
                    key_type,
                    key_len,
                },
                ipv6,
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(check(0x10, 8, 16, true), Ok(()));
        assert_eq!(check(0x30, 7, 4, false), Ok(()), "flags dynamic is fine");
        assert_eq!(
            check(0x10, 7, 4, true).unwrap_err(),
            "holds ipv4_addr, not ipv6_addr (the Nft_Set_6 directive \
             needs type ipv6_addr)"
        );
        assert_eq!(
            check(0x10, 13, 2, false).unwrap_err(),
            "holds key type 13 of 2 bytes, not ipv4_addr (the Nft_Set \
             directive needs type ipv4_addr)"
        );
        assert_eq!(
            check(0, 7, 4, false).unwrap_err(),
            "has no \"flags timeout\", so the kernel could not close the \
             door (add flags timeout to the set)"
        );
        assert_eq!(
            check(0x14, 7, 4, false).unwrap_err(),
            "has \"flags interval\"; knockd-lite adds single addresses \
             (drop flags interval)"
        );
        assert_eq!(
            check(0x18, 7, 4, false).unwrap_err(),
            "is a map; a door needs a plain set of type ipv4_addr"
        );
        assert_eq!(
            check(0x12, 7, 4, false).unwrap_err(),
            "is constant: nothing can be added to it"
        );
    }
}
