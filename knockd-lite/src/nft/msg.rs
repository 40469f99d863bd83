//! The nf_tables netlink messages knockd-lite sends, built byte by byte, and the replies it
//! reads; no I/O. Numbers are the kernel's (linux/netlink.h, linux/netfilter/nfnetlink.h,
//! linux/netfilter/nf_tables.h); netlink headers and attribute headers are in host byte
//! order, nf_tables values in network byte order.

use std::net::IpAddr;

use knock_core::conf::{NftFamily, NftSet};

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

// linux/netfilter/nfnetlink.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNETLINK_V0: u8 = 0;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;

// linux/netfilter/nf_tables.h: messages
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
// attributes
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;

/// Set flags (`enum nft_set_flags`).
pub(crate) const NFT_SET_CONSTANT: u32 = 0x2;
pub(crate) const NFT_SET_INTERVAL: u32 = 0x4;
pub(crate) const NFT_SET_MAP: u32 = 0x8;
pub(crate) const NFT_SET_TIMEOUT: u32 = 0x10;
pub(crate) const NFT_SET_OBJECT: u32 = 0x40;
pub(crate) const NFT_SET_CONCAT: u32 = 0x80;

/// The key types nft records for its `ipv4_addr` and `ipv6_addr` (nftables' datatype
/// numbers; the kernel stores them for userspace).
pub(crate) const TYPE_IPV4_ADDR: u32 = 7;
pub(crate) const TYPE_IPV6_ADDR: u32 = 8;

/// The `NFPROTO_*` number of a family (linux/netfilter.h).
fn nfproto(family: NftFamily) -> u8 {
    match family {
        NftFamily::Inet => 1,
        NftFamily::Ip => 2,
        NftFamily::Arp => 3,
        NftFamily::Netdev => 5,
        NftFamily::Bridge => 7,
        NftFamily::Ip6 => 10,
    }
}

/// Datagram bytes for the kernel, with the sequence numbers that will be answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) bytes: Vec<u8>,
    /// Messages sent with NLM_F_ACK: each gets an ack or an error.
    pub(crate) acked: Vec<u32>,
    /// The batch's begin message: an error for it (no CAP_NET_ADMIN, say) ends the batch
    /// with no other answer.
    pub(crate) begin: Option<u32>,
}

/// Builds one datagram of netlink messages.
struct Builder {
    buf: Vec<u8>,
    acked: Vec<u32>,
    begin: Option<u32>,
    seq: u32,
}

impl Builder {
    fn new(first_seq: u32) -> Builder {
        Builder {
            buf: Vec::with_capacity(256),
            acked: Vec::new(),
            begin: None,
            seq: first_seq,
        }
    }

    /// One message: header, nfgenmsg, then what `body` writes as attributes.
    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, below
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills ours
        self.buf.push(family);
        self.buf.push(NFNETLINK_V0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        body(&mut self.buf);
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        if flags & NLM_F_ACK != 0 {
            self.acked.push(seq);
        }
        seq
    }

    /// An nf_tables message in the batch or on its own.
    fn nft(&mut self, msg: u16, flags: u16, family: u8, body: impl FnOnce(&mut Vec<u8>)) {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
        self.message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, family, 0, body);
    }

    fn begin_batch(&mut self) {
        let seq = self.message(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
        self.begin = Some(seq);
    }

    fn end_batch(&mut self) {
        self.message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            NFNL_SUBSYS_NFTABLES,
            |_| {},
        );
    }

    fn finish(self) -> Request {
        Request {
            bytes: self.buf,
            acked: self.acked,
            begin: self.begin,
        }
    }
}

/// Appends one attribute, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = (4 + data.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    pad(buf);
}

/// A NUL-terminated string attribute.
fn attr_str(buf: &mut Vec<u8>, kind: u16, s: &str) {
    let mut data = Vec::with_capacity(s.len() + 1);
    data.extend_from_slice(s.as_bytes());
    data.push(0);
    attr(buf, kind, &data);
}

/// A nested attribute holding what `f` writes.
fn nest(buf: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 2]);
    buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    f(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The key bytes of an address: 4 or 16 bytes in network order.
fn key(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `NFTA_SET_ELEM_LIST_*` for one element of `set`, with a timeout or without.
fn element_list(buf: &mut Vec<u8>, set: &NftSet, addr: IpAddr, timeout_ms: Option<u64>) {
    attr_str(buf, NFTA_SET_ELEM_LIST_TABLE, &set.table);
    attr_str(buf, NFTA_SET_ELEM_LIST_SET, &set.set);
    nest(buf, NFTA_SET_ELEM_LIST_ELEMENTS, |buf| {
        nest(buf, NFTA_LIST_ELEM, |buf| {
            nest(buf, NFTA_SET_ELEM_KEY, |buf| {
                attr(buf, NFTA_DATA_VALUE, &key(addr));
            });
            if let Some(ms) = timeout_ms {
                attr(buf, NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
            }
        });
    });
}

/// Puts `addr` in `set` with a fresh `timeout_ms`, whether or not it is there already: one
/// batch (one transaction, so the address never drops out in between) of add, delete, add.
///
/// The first add makes sure the delete finds the element; the delete and the second add
/// restart its timeout. Adding an element that exists, without NLM_F_EXCL, succeeds and
/// leaves its expiry alone on kernels before 6.10, and on later ones too when the timeout
/// is the same (checked on 6.18), so an add alone would not refresh an open door.
pub(crate) fn refresh_element(seq: u32, set: &NftSet, addr: IpAddr, timeout_ms: u64) -> Request {
    let family = nfproto(set.family);
    let mut b = Builder::new(seq);
    b.begin_batch();
    b.nft(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, |buf| {
        element_list(buf, set, addr, Some(timeout_ms))
    });
    b.nft(NFT_MSG_DELSETELEM, 0, family, |buf| {
        element_list(buf, set, addr, None)
    });
    b.nft(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, |buf| {
        element_list(buf, set, addr, Some(timeout_ms))
    });
    b.end_batch();
    b.finish()
}

/// Removes `addr` from `set` (ENOENT if it is not there).
pub(crate) fn delete_element(seq: u32, set: &NftSet, addr: IpAddr) -> Request {
    let mut b = Builder::new(seq);
    b.begin_batch();
    b.nft(NFT_MSG_DELSETELEM, 0, nfproto(set.family), |buf| {
        element_list(buf, set, addr, None)
    });
    b.end_batch();
    b.finish()
}

/// Asks for the table of `set` (ENOENT if there is no such table).
pub(crate) fn get_table(seq: u32, set: &NftSet) -> Request {
    let mut b = Builder::new(seq);
    b.nft(NFT_MSG_GETTABLE, 0, nfproto(set.family), |buf| {
        attr_str(buf, NFTA_TABLE_NAME, &set.table)
    });
    b.finish()
}

/// Asks for `set` itself: its flags and key type come back in an NFT_MSG_NEWSET.
pub(crate) fn get_set(seq: u32, set: &NftSet) -> Request {
    let mut b = Builder::new(seq);
    b.nft(NFT_MSG_GETSET, 0, nfproto(set.family), |buf| {
        attr_str(buf, NFTA_SET_TABLE, &set.table);
        attr_str(buf, NFTA_SET_NAME, &set.set);
    });
    b.finish()
}

/// What a set is, as the kernel describes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SetInfo {
    pub(crate) flags: u32,
    pub(crate) key_type: u32,
    pub(crate) key_len: u32,
}

/// One message from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// An ack (`error` 0) or an error (a positive errno) for the request `seq`.
    Status { seq: u32, errno: i32 },
    /// A set's description, answering GETSET `seq`.
    Set { seq: u32, info: SetInfo },
    /// Anything else (the table GETTABLE asked for, the end of a dump).
    Other { seq: u32 },
}

/// Reads every message in one datagram from the kernel; `Err` says what was malformed.
pub(crate) fn parse_replies(mut data: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < NLMSG_HDRLEN {
            return Err(format!("{} stray bytes after the last message", data.len()));
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(format!(
                "message length {len} with {} bytes left",
                data.len()
            ));
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes"));
        let payload = &data[NLMSG_HDRLEN..len];
        out.push(match kind {
            NLMSG_ERROR => {
                let code = payload
                    .get(0..4)
                    .ok_or("an error message without its code")?;
                let code = i32::from_ne_bytes(code.try_into().expect("4 bytes"));
                Reply::Status {
                    seq,
                    errno: code.saturating_neg(),
                }
            }
            k if k == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSET => Reply::Set {
                seq,
                info: set_info(payload)?,
            },
            _ => Reply::Other { seq },
        });
        let next = len.next_multiple_of(4).min(data.len());
        data = &data[next..];
    }
    Ok(out)
}

/// The flags, key type and key length in an NFT_MSG_NEWSET payload.
fn set_info(payload: &[u8]) -> Result<SetInfo, String> {
    let mut attrs = payload
        .get(NFGENMSG_LEN..)
        .ok_or("a set description without its header")?;
    let mut info = SetInfo::default();
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            return Err(format!(
                "attribute length {len} with {} bytes left",
                attrs.len()
            ));
        }
        let value = &attrs[4..len];
        let be32 = || -> Result<u32, String> {
            let b: [u8; 4] = value
                .try_into()
                .map_err(|_| format!("attribute {kind} has {} bytes, not 4", value.len()))?;
            Ok(u32::from_be_bytes(b))
        };
        match kind {
            NFTA_SET_FLAGS => info.flags = be32()?,
            NFTA_SET_KEY_TYPE => info.key_type = be32()?,
            NFTA_SET_KEY_LEN => info.key_len = be32()?,
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    Ok(info)
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    fn set() -> NftSet {
        NftSet {
            family: NftFamily::Inet,
            table: "filter".into(),
            set: "ks".into(),
        }
    }

    /// Hex, one message per line, for readable golden bytes.
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn refresh_is_one_batch_of_add_delete_add() {
        let r = refresh_element(100, &set(), "192.0.2.1".parse().unwrap(), 10_000);
        // len 20, BATCH_BEGIN, REQUEST, seq 100; family 0, v0, res_id NFTABLES (big-endian)
        let begin = "14000000100001006400000000000000 0000000a";
        let add = concat!(
            "48000000 0c0a 0504 65000000 00000000", // len 72, NEWSETELEM, REQ|ACK|CREATE, seq 101
            "01 00 0000",                           // inet, v0, res_id 0
            "0b00 0100 66696c74657200 00",          // table "filter"
            "0700 0200 6b7300 00",                  // set "ks"
            "2000 0380",                            // elements (nested)
            "1c00 0180",                            //   one element (nested)
            "0c00 0180 0800 0100 c0000201",         //     key: value 192.0.2.1 (nested)
            "0c00 0400 0000000000002710",           //     timeout 10000 ms, big-endian
        );
        let del = concat!(
            "3c000000 0e0a 0500 66000000 00000000", // len 60, DELSETELEM, REQ|ACK, seq 102
            "01000000",
            "0b00 0100 66696c74657200 00",
            "0700 0200 6b7300 00",
            "1400 0380 1000 0180 0c00 0180 0800 0100 c0000201",
        );
        let add2 = add.replace("65000000", "67000000");
        let end = "14000000110001006800000000000000 0000000a";
        let want = [begin, add, del, &add2, end].concat().replace(' ', "");
        assert_eq!(hex(&r.bytes), want);
        assert_eq!(r.acked, [101, 102, 103]);
        assert_eq!(r.begin, Some(100));
    }

    #[test]
    fn ipv6_keys_and_families() {
        let mut s = set();
        s.family = NftFamily::Ip6;
        let r = delete_element(7, &s, "2001:db8::1".parse().unwrap());
        let del = &r.bytes[20..r.bytes.len() - 20];
        assert_eq!(del[16], 10, "NFPROTO_IPV6");
        let key = hex(&del[del.len() - 20..]);
        assert_eq!(key, "1400010020010db8000000000000000000000001");
        assert_eq!(r.acked, [8]);
    }

    #[test]
    fn queries() {
        let t = get_table(5, &set());
        assert_eq!(
            hex(&t.bytes),
            "20000000 010a 0500 05000000 00000000 01000000 0b00 0100 66696c74657200 00"
                .replace(' ', "")
        );
        assert_eq!((t.acked.as_slice(), t.begin), (&[5][..], None));
        let s = get_set(6, &set());
        assert_eq!(
            hex(&s.bytes),
            "28000000 0a0a 0500 06000000 00000000 01000000 0b00 0100 66696c74657200 00 \
             0700 0200 6b7300 00"
                .replace(' ', "")
        );
    }

    fn msg(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        pad(&mut m);
        m
    }

    #[test]
    fn replies_are_read_and_never_panic() {
        let mut data = msg(NLMSG_ERROR, 3, &(-2i32).to_ne_bytes());
        data.extend(msg(NLMSG_ERROR, 4, &0i32.to_ne_bytes()));
        let mut set = vec![1, 0, 0, 0];
        for (kind, v) in [
            (NFTA_SET_FLAGS, 0x13u32),
            (NFTA_SET_KEY_TYPE, 7),
            (NFTA_SET_KEY_LEN, 4),
        ] {
            attr(&mut set, kind, &v.to_be_bytes());
        }
        attr_str(&mut set, NFTA_SET_NAME, "ks");
        data.extend(msg(0x0a09, 5, &set));
        data.extend(msg(3, 6, &[])); // NLMSG_DONE
        assert_eq!(
            parse_replies(&data).unwrap(),
            [
                Reply::Status { seq: 3, errno: 2 },
                Reply::Status { seq: 4, errno: 0 },
                Reply::Set {
                    seq: 5,
                    info: SetInfo {
                        flags: 0x13,
                        key_type: 7,
                        key_len: 4
                    }
                },
                Reply::Other { seq: 6 },
            ]
        );
        // Every truncation and a corrupt length: an error or fewer messages, never a panic.
        for cut in 0..data.len() {
            let _ = parse_replies(&data[..cut]);
        }
        let mut bad = data.clone();
        bad[0] = 3;
        assert!(parse_replies(&bad).is_err());
        let mut bad_attr = msg(0x0a09, 5, &[1, 0, 0, 0, 0xff, 0, 3, 0]);
        assert!(parse_replies(&bad_attr).is_err());
        bad_attr = msg(0x0a09, 5, &[1, 0, 0, 0, 6, 0, 3, 0, 1, 2]);
        assert!(
            parse_replies(&bad_attr).is_err(),
            "a 2-byte flags attribute"
        );
    }
}
