//! VLAN-tagged knock frames, hand-made and sent from the client namespace by a small python3
//! AF_PACKET program: TCP segments with any flags and UDP datagrams, from 192.0.2.1 to the
//! test server only. (Untagged knocks with any flags come from `knock` itself.)

use std::process::Command;

use crate::{CLIENT_V4, Pair, SERVER_V4, check};

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;

/// One hit: `tcp` with its flags byte, or `udp`.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub proto: &'static str,
    pub port: u16,
    pub flags: u8,
}

pub fn tcp(port: u16, flags: u8) -> Hit {
    Hit {
        proto: "tcp",
        port,
        flags,
    }
}

pub fn udp(port: u16) -> Hit {
    Hit {
        proto: "udp",
        port,
        flags: 0,
    }
}

fn items(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| format!("{}:{}:{}", h.proto, h.port, h.flags))
        .collect()
}

/// Sends IPv4 `PROTO:PORT:FLAGS` items from SRC to DST as Ethernet frames with the VLAN
/// tags `TPID:VID,...` through an AF_PACKET socket on IFACE, 10 ms apart.
const TAGGED_SENDER: &str = r#"
import socket, struct, sys, time
iface, dstmac, tags, src, dst = sys.argv[1:6]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
head = bytes.fromhex(dstmac.replace(":", "")) + s.getsockname()[4]
for t in filter(None, tags.split(",")):
    tpid, vid = t.split(":")
    head += struct.pack("!HH", int(tpid, 16), int(vid))
def csum(b):
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xffff)
    return ~(n + (n >> 16)) & 0xffff
for i, item in enumerate(sys.argv[6:]):
    if i:
        time.sleep(0.01)
    proto, port, flags = item.split(":")
    port, flags = int(port), int(flags)
    if proto == "udp":
        l4, p = struct.pack("!HHHH", 40000, port, 9, 0) + b"x", 17
    else:
        l4, p = struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 5 << 4, flags, 1024, 0, 0), 6
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, p, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(head + struct.pack("!H", 0x0800) + ip + l4)
"#;

/// The MAC address of `ifname` in namespace `ns`.
pub fn mac_of(ns: &str, ifname: &str) -> String {
    let out = check(Command::new("ip").args(["-n", ns, "-br", "link", "show", "dev", ifname]));
    out.split_whitespace()
        .find(|w| w.len() == 17 && w.matches(':').count() == 5)
        .unwrap_or_else(|| panic!("no MAC in {out:?}"))
        .to_string()
}

/// Sends `hits` from 192.0.2.1 to 192.0.2.2 in Ethernet frames carrying `tags`
/// (`"8100:10"`, `"88a8:100,8100:20"`), out of the client's interface to the server's MAC.
pub fn send_tagged(pair: &Pair, tags: &str, hits: &[Hit]) {
    let mac = mac_of(&pair.server, &pair.server_if);
    check(
        pair.client_cmd("python3")
            .args([
                "-c",
                TAGGED_SENDER,
                &pair.client_if,
                &mac,
                tags,
                CLIENT_V4,
                SERVER_V4,
            ])
            .args(items(hits)),
    );
}
