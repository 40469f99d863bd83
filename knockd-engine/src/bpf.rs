//! Classic BPF for the capture socket: compiles capture rules into the in-kernel filter, and
//! runs such a program in user space (for the replay source, to refilter frames that were
//! queued under the previous filter when the rules change, and to test the filter).
//!
//! The program keeps a frame exactly when `knock_core::wire::parse_frame` accepts it and
//! some rule matches the packet (and, with [`Families::V4Only`], it is IPv4):
//! [`crate::filter::wanted`] says the same in Rust, and a property test and a fuzz target
//! hold the two against each other. So it checks what the parser checks, in the parser's
//! terms: up to [`vlan::MAX_TAGS`] in-band VLAN tags of the [`ethertype::VLAN_TPIDS`], the
//! IP version, IPv4 header and total lengths against the bytes captured, fragments, up to
//! [`MAX_IPV6_EXTENSIONS`] IPv6 extension headers within the payload length (hop-by-hop
//! only first), and the TCP data offset and UDP length. Every offset, type and number
//! comes from `knock_core::wire::field`.
//!
//! Rules whose exact program would not fit the kernel's [`MAX_INSNS`] get a coarser one
//! from [`compile_fitting`]: no TCP flag tests, and port ranges bridged until it fits. It
//! keeps a superset of those frames, and user space (the parser, then the engine) drops the
//! rest; a door is never deaf for want of filter space.
//!
//! The outer tag of a received frame is usually already stripped by the kernel into
//! metadata before the filter runs, so the filter sees such a frame as untagged and tagged
//! knocks match like plain ones.

use std::fmt;

use knock_core::hit::Proto;
use knock_core::wire::LinkType;
use knock_core::wire::field::{
    ethernet, ethertype, ip_proto, ipv4, ipv6, ipv6_ext, ipv6_fragment, tcp, udp, vlan,
};
use knock_core::wire::parse::MAX_IPV6_EXTENSIONS;

use crate::filter::CaptureRule;

/// How many bytes of an accepted frame the kernel hands up: all of it, since knock packets
/// are small and the parser checks IP lengths against what it got.
pub const SNAP_LEN: u32 = 0xffff;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// One instruction, laid out exactly like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Opcode parts, as in `<linux/filter.h>`.
mod op {
    pub(super) const LD: u16 = 0x00;
    pub(super) const LDX: u16 = 0x01;
    pub(super) const ST: u16 = 0x02;
    pub(super) const STX: u16 = 0x03;
    pub(super) const ALU: u16 = 0x04;
    pub(super) const JMP: u16 = 0x05;
    pub(super) const RET: u16 = 0x06;
    pub(super) const MISC: u16 = 0x07;

    pub(super) const W: u16 = 0x00;
    pub(super) const H: u16 = 0x08;
    pub(super) const B: u16 = 0x10;

    pub(super) const IMM: u16 = 0x00;
    pub(super) const ABS: u16 = 0x20;
    pub(super) const IND: u16 = 0x40;
    pub(super) const MEM: u16 = 0x60;
    pub(super) const LEN: u16 = 0x80;
    pub(super) const MSH: u16 = 0xa0;

    pub(super) const ADD: u16 = 0x00;
    pub(super) const SUB: u16 = 0x10;
    pub(super) const MUL: u16 = 0x20;
    pub(super) const DIV: u16 = 0x30;
    pub(super) const OR: u16 = 0x40;
    pub(super) const AND: u16 = 0x50;
    pub(super) const LSH: u16 = 0x60;
    pub(super) const RSH: u16 = 0x70;
    pub(super) const NEG: u16 = 0x80;
    pub(super) const MOD: u16 = 0x90;
    pub(super) const XOR: u16 = 0xa0;

    pub(super) const JA: u16 = 0x00;
    pub(super) const JEQ: u16 = 0x10;
    pub(super) const JGT: u16 = 0x20;
    pub(super) const JGE: u16 = 0x30;
    pub(super) const JSET: u16 = 0x40;

    pub(super) const K: u16 = 0x00;
    pub(super) const X: u16 = 0x08;
    pub(super) const A: u16 = 0x10;

    pub(super) const TAX: u16 = 0x00;
    pub(super) const TXA: u16 = 0x80;
}

/// Which IP versions the filter lets through (`-4` restricts it to IPv4, as knockd's does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Families {
    Both,
    V4Only,
}

/// Why no filter could be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The rules need more instructions than the kernel accepts.
    #[error(
        "capture filter for {rules} rules needs {insns} BPF instructions, more than the kernel's {MAX_INSNS}"
    )]
    TooLarge { rules: usize, insns: usize },
    /// Frames of this link type never come from a capture socket (they are pcap formats).
    #[error("no capture filter for {0:?} frames")]
    Link(LinkType),
}

/// A classic BPF program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
}

impl Program {
    /// A program that accepts nothing.
    pub fn reject_all() -> Program {
        Program {
            insns: vec![ret(0)],
        }
    }

    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Runs the program over a frame the way the kernel does: the return value is how many
    /// bytes to keep, 0 meaning drop. Loads past the end of the frame drop it.
    pub fn run(&self, frame: &[u8]) -> u32 {
        run(&self.insns, frame)
    }

    /// Whether the program accepts this frame.
    pub fn accepts(&self, frame: &[u8]) -> bool {
        self.run(frame) != 0
    }
}

/// One instruction per line, in the style of `tcpdump -d`.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, insn) in self.insns.iter().enumerate() {
            writeln!(f, "({pc:03}) {}", disassemble(pc, insn))?;
        }
        Ok(())
    }
}

/// The scratch memory cells the program uses.
mod cell {
    /// The transport protocol (IPv4 protocol, or the IPv6 next header being walked).
    pub(super) const PROTO: u32 = 0;
    /// Where the header being read starts (the IP header, an extension, the segment).
    pub(super) const OFF: u32 = 1;
    /// Bytes of IP payload from `OFF` on: what the transport header must fit in.
    pub(super) const LEFT: u32 = 2;
    /// Non-zero when more fragments follow (a UDP length may then reach past the packet).
    pub(super) const FRAG: u32 = 3;
    pub(super) const TMP: u32 = 4;
    pub(super) const ALL: [u32; 5] = [PROTO, OFF, LEFT, FRAG, TMP];
}

/// A 16-bit field's offset, as the BPF `k` of a load.
fn at(field: std::ops::Range<usize>) -> u32 {
    field.start as u32
}

/// Compiles `rules` into a filter for frames of this link type. No rules: a program that
/// drops everything.
pub fn compile(
    rules: &[CaptureRule],
    link: LinkType,
    families: Families,
) -> Result<Program, FilterError> {
    let (tcp, udp) = (groups(rules, Proto::Tcp), groups(rules, Proto::Udp));
    compile_groups(&tcp, &udp, link, families, rules.len())
}

/// A program for the kernel made from `rules`, exact when it fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fitted {
    pub program: Program,
    /// `None` when the program keeps exactly the frames [`crate::filter::wanted`] says.
    pub coarse: Option<Coarse>,
}

/// A program coarser than the rules: the exact one would not fit the kernel's
/// [`MAX_INSNS`], so this one ignores TCP flags and keeps whole port ranges, a superset of
/// the frames the rules want; user space (the parser, then the engine) checks the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coarse {
    /// Instructions the exact program needs.
    pub needed: usize,
    /// What the program keeps, tcpdump-style (`tcp dst portrange 1000-2000`).
    pub keeps: Vec<String>,
}

/// [`compile`], except that rules whose exact program would not fit the kernel get a
/// coarser one that does ([`Coarse`]): a filter that keeps too much costs some CPU, a
/// filter the kernel refuses leaves doors deaf. The only error is a link type no capture
/// socket has.
pub fn compile_fitting(
    rules: &[CaptureRule],
    link: LinkType,
    families: Families,
) -> Result<Fitted, FilterError> {
    let needed = match compile(rules, link, families) {
        Ok(program) => {
            return Ok(Fitted {
                program,
                coarse: None,
            });
        }
        Err(FilterError::TooLarge { insns, .. }) => insns,
        Err(e) => return Err(e),
    };
    let (tcp, udp) = (groups(rules, Proto::Tcp), groups(rules, Proto::Udp));
    let attempt = |gap: u32| {
        let (t, u) = (coarsen(&tcp, gap), coarsen(&udp, gap));
        compile_groups(&t, &u, link, families, rules.len())
            .ok()
            .map(|p| (p, t, u))
    };
    // The smallest gap between ports that, bridged, makes the program fit: bridging every
    // gap leaves one range per protocol, which always fits.
    let (mut lo, mut hi) = (0u32, 65_535u32);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if attempt(mid).is_some() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (program, t, u) = attempt(lo).ok_or(FilterError::TooLarge {
        rules: rules.len(),
        insns: needed,
    })?;
    let keeps = [(Proto::Tcp, &t), (Proto::Udp, &u)]
        .iter()
        .flat_map(|(proto, groups)| {
            groups.iter().map(move |g| match g.lo == g.hi {
                true => format!("{proto} dst port {}", g.lo),
                false => format!("{proto} dst portrange {}-{}", g.lo, g.hi),
            })
        })
        .collect();
    Ok(Fitted {
        program,
        coarse: Some(Coarse { needed, keeps }),
    })
}

/// `groups` with the TCP flag tests dropped and every gap of at most `gap` ports between
/// two groups bridged, so the groups become fewer, wider ranges.
fn coarsen(groups: &[PortGroup], gap: u32) -> Vec<PortGroup> {
    let mut out: Vec<PortGroup> = Vec::new();
    for g in groups {
        match out.last_mut() {
            Some(last) if u32::from(g.lo) <= u32::from(last.hi) + 1 + gap => last.hi = g.hi,
            _ => out.push(PortGroup {
                lo: g.lo,
                hi: g.hi,
                flags: Vec::new(),
            }),
        }
    }
    out
}

/// The program for these port groups (TCP and UDP); `rules` is only for the error.
fn compile_groups(
    tcp: &[PortGroup],
    udp: &[PortGroup],
    link: LinkType,
    families: Families,
    rules: usize,
) -> Result<Program, FilterError> {
    if tcp.is_empty() && udp.is_empty() {
        return Ok(Program::reject_all());
    }
    let mut a = Asm::default();
    let (v4, v6) = (a.label(), a.label());
    // The kernel's checker wants every cell stored before anything reads it, and its
    // analysis runs on through a return into the code after it; cells that start at zero
    // satisfy it whatever the layout.
    a.emit(ld_imm(0));
    for c in cell::ALL {
        a.emit(st(c));
    }

    // Link layer: the IP header offset in X, and which IP the link layer says it is.
    match link {
        LinkType::Ethernet => {
            let l3 = a.label();
            a.emit(ldx_imm(ethernet::HEADER_LEN as u32));
            a.emit(ld_abs(op::H, at(ethernet::ETHERTYPE)));
            for t in 0..vlan::MAX_TAGS {
                let tag = a.label();
                for tpid in ethertype::VLAN_TPIDS {
                    a.jeq(u32::from(tpid), Some(tag), None);
                }
                a.ja(l3);
                a.bind(tag);
                // A tag is the TCI, then the EtherType of what follows it.
                let tag_start = (ethernet::HEADER_LEN + t * vlan::TAG_LEN) as u32;
                a.emit(ldx_imm(tag_start + vlan::TAG_LEN as u32));
                a.emit(ld_abs(op::H, tag_start + at(vlan::ETHERTYPE)));
            }
            // Past the last tag a TPID is one tag too many, and not IP.
            a.bind(l3);
            a.dispatch(&[
                (u32::from(ethertype::IPV4), v4),
                (u32::from(ethertype::IPV6), v6),
            ]);
        }
        LinkType::RawIp => {
            a.emit(ldx_imm(0));
            a.emit(ld_abs(op::B, ipv4::VER_IHL as u32));
            a.emit(alu_k(op::RSH, 4));
            a.dispatch(&[
                (u32::from(ipv4::VERSION), v4),
                (u32::from(ipv6::VERSION), v6),
            ]);
        }
        LinkType::Loopback | LinkType::LinuxSll => return Err(FilterError::Link(link)),
    }

    let l4 = a.label();
    a.bind(v4);
    ipv4_header(&mut a, l4);
    a.bind(v6);
    if families == Families::V4Only {
        a.emit(ret(0));
    } else {
        ipv6_header(&mut a, l4);
    }

    // Transport: X and OFF are the TCP/UDP header offset.
    let (tcp_entry, udp_entry) = (a.label(), a.label());
    a.bind(l4);
    a.emit(ld_mem(cell::PROTO));
    a.dispatch(&[
        (u32::from(ip_proto::TCP), tcp_entry),
        (u32::from(ip_proto::UDP), udp_entry),
    ]);
    a.bind(tcp_entry);
    tcp_header(&mut a);
    port_table(&mut a, tcp);
    a.bind(udp_entry);
    udp_header(&mut a);
    port_table(&mut a, udp);

    let insns = a.finish();
    if insns.len() > MAX_INSNS {
        return Err(FilterError::TooLarge {
            rules,
            insns: insns.len(),
        });
    }
    Ok(Program { insns })
}

/// IPv4 at X: the version, a header length of at least 20 bytes, a total length from the
/// header length to the bytes captured, the first fragment only. Leaves the protocol,
/// the segment's offset (also in X) and length, and the more-fragments flag in the cells,
/// and goes to `l4`.
fn ipv4_header(a: &mut Asm, l4: Label) {
    let drop = a.label();
    a.emit(stx(cell::OFF));
    // The fixed header is there: its last byte loads.
    a.emit(ld_ind(op::B, ipv4::MIN_HEADER_LEN as u32 - 1));
    a.emit(ld_ind(op::B, ipv4::VER_IHL as u32));
    a.emit(alu_k(op::RSH, 4));
    a.jeq(u32::from(ipv4::VERSION), None, Some(drop));
    a.emit(ld_ind(op::B, ipv4::VER_IHL as u32));
    a.emit(alu_k(op::AND, 0x0f));
    a.emit(alu_k(op::LSH, 2));
    a.jge(ipv4::MIN_HEADER_LEN as u32, None, Some(drop));
    a.emit(st(cell::TMP)); // header length
    a.emit(ld_len());
    a.emit(alu_x(op::SUB));
    a.emit(st(cell::LEFT)); // bytes from the IP header on
    a.emit(ld_ind(op::H, at(ipv4::TOTAL_LEN)));
    a.emit(ldx_mem(cell::TMP));
    a.jge_x(None, Some(drop));
    a.emit(ldx_mem(cell::LEFT));
    a.jgt_x(Some(drop), None);
    a.emit(ldx_mem(cell::TMP));
    a.emit(alu_x(op::SUB));
    a.emit(st(cell::LEFT)); // the payload: total length less the header
    a.emit(ldx_mem(cell::OFF));
    a.emit(ld_ind(op::H, at(ipv4::FLAGS_FRAG)));
    a.jset(u32::from(ipv4::FRAG_OFFSET_MASK), Some(drop), None);
    a.emit(alu_k(op::AND, u32::from(ipv4::MORE_FRAGMENTS)));
    a.emit(st(cell::FRAG));
    a.take_proto(ipv4::PROTOCOL as u32);
    a.advance_by_tmp();
    a.ja(l4);
    a.bind(drop);
    a.emit(ret(0));
}

/// IPv6 at X: the version, a payload length within the bytes captured, then up to
/// MAX_IPV6_EXTENSIONS extension headers within the payload (hop-by-hop only first, the
/// first fragment only), to TCP or UDP at `l4`, with the cells as [`ipv4_header`] leaves
/// them.
fn ipv6_header(a: &mut Asm, l4: Label) {
    let drop = a.label();
    a.emit(stx(cell::OFF));
    a.emit(ld_ind(op::B, ipv6::HEADER_LEN as u32 - 1));
    a.emit(ld_ind(op::B, at(ipv6::VER_TC_FLOW)));
    a.emit(alu_k(op::RSH, 4));
    a.jeq(u32::from(ipv6::VERSION), None, Some(drop));
    a.emit(ld_len());
    a.emit(alu_x(op::SUB));
    a.emit(alu_k(op::SUB, ipv6::HEADER_LEN as u32));
    a.emit(st(cell::TMP)); // bytes after the fixed header
    a.emit(ld_ind(op::H, at(ipv6::PAYLOAD_LEN)));
    a.emit(ldx_mem(cell::TMP));
    a.jgt_x(Some(drop), None);
    a.emit(st(cell::LEFT));
    a.emit(ldx_mem(cell::OFF));
    a.take_proto(ipv6::NEXT_HEADER as u32);
    a.emit(ld_imm(0));
    a.emit(st(cell::FRAG));
    a.advance(ipv6::HEADER_LEN as u32);
    let first = a.label();
    a.ja(first);
    a.bind(drop);
    a.emit(ret(0));
    a.bind(first);
    for step in 0..=MAX_IPV6_EXTENSIONS {
        let (generic, fragment, next, drop) = (a.label(), a.label(), a.label(), a.label());
        a.emit(ld_mem(cell::PROTO));
        let transport = a.label();
        a.jeq(u32::from(ip_proto::TCP), Some(transport), None);
        a.jeq(u32::from(ip_proto::UDP), Some(transport), None);
        if step == MAX_IPV6_EXTENSIONS {
            // One extension too many, or no transport the parser reads.
            a.emit(ret(0));
            a.bind(transport);
            a.ja(l4);
            break;
        }
        // Hop-by-hop options come only right after the fixed header.
        let hop_by_hop = if step == 0 { generic } else { drop };
        a.jeq(u32::from(ip_proto::HOP_BY_HOP), Some(hop_by_hop), None);
        a.jeq(u32::from(ip_proto::IPV6_ROUTING), Some(generic), None);
        a.jeq(u32::from(ip_proto::IPV6_DEST_OPTIONS), Some(generic), None);
        a.jeq(
            u32::from(ip_proto::IPV6_FRAGMENT),
            Some(fragment),
            Some(drop),
        );
        a.bind(transport);
        a.ja(l4);

        // Next header and length, then (length + 1) units, all within the payload.
        a.bind(generic);
        a.emit(ld_mem(cell::LEFT));
        a.jge(ipv6_ext::MIN_LEN as u32, None, Some(drop));
        a.emit(ld_ind(op::B, ipv6_ext::LENGTH as u32));
        a.emit(alu_k(op::ADD, 1));
        a.emit(alu_k(op::MUL, ipv6_ext::UNIT as u32));
        a.emit(st(cell::TMP));
        a.emit(ldx_mem(cell::TMP));
        a.emit(ld_mem(cell::LEFT));
        a.jge_x(None, Some(drop));
        a.emit(alu_x(op::SUB));
        a.emit(st(cell::LEFT));
        a.emit(ldx_mem(cell::OFF));
        a.take_proto(ipv6_ext::NEXT_HEADER as u32);
        a.advance_by_tmp();
        a.ja(next);

        // A fragment header: the first fragment only; remember whether more follow.
        a.bind(fragment);
        a.emit(ld_mem(cell::LEFT));
        a.jge(ipv6_fragment::HEADER_LEN as u32, None, Some(drop));
        a.emit(alu_k(op::SUB, ipv6_fragment::HEADER_LEN as u32));
        a.emit(st(cell::LEFT));
        a.emit(ld_ind(op::H, at(ipv6_fragment::OFFSET_FLAGS)));
        a.jset(u32::from(ipv6_fragment::OFFSET_MASK), Some(drop), None);
        a.emit(alu_k(op::AND, u32::from(ipv6_fragment::MORE_FRAGMENTS)));
        a.emit(ldx_mem(cell::FRAG));
        a.emit(alu_x(op::OR));
        a.emit(st(cell::FRAG));
        a.emit(ldx_mem(cell::OFF));
        a.take_proto(ipv6_fragment::NEXT_HEADER as u32);
        a.advance(ipv6_fragment::HEADER_LEN as u32);
        a.ja(next);

        a.bind(drop);
        a.emit(ret(0));
        a.bind(next);
    }
}

/// TCP at X: a header of at least 20 bytes whose data offset fits the segment.
fn tcp_header(a: &mut Asm) {
    let (drop, ok) = (a.label(), a.label());
    a.emit(ld_mem(cell::LEFT));
    a.jge(tcp::MIN_HEADER_LEN as u32, None, Some(drop));
    a.emit(ld_ind(op::B, tcp::DATA_OFFSET as u32));
    a.emit(alu_k(op::RSH, 4));
    a.emit(alu_k(op::LSH, 2));
    a.jge(tcp::MIN_HEADER_LEN as u32, None, Some(drop));
    a.emit(ldx_mem(cell::LEFT));
    a.jgt_x(Some(drop), Some(ok));
    a.bind(drop);
    a.emit(ret(0));
    a.bind(ok);
    a.emit(ldx_mem(cell::OFF));
}

/// UDP at X: 8 bytes of header and a length of at least 8 that, unless more fragments
/// follow, fits the segment.
fn udp_header(a: &mut Asm) {
    let (drop, ok) = (a.label(), a.label());
    a.emit(ld_mem(cell::LEFT));
    a.jge(udp::HEADER_LEN as u32, None, Some(drop));
    a.emit(ld_ind(op::H, at(udp::LENGTH)));
    a.jge(udp::HEADER_LEN as u32, None, Some(drop));
    a.emit(st(cell::TMP));
    a.emit(ld_mem(cell::FRAG));
    a.jeq(0, None, Some(ok));
    a.emit(ld_mem(cell::TMP));
    a.emit(ldx_mem(cell::LEFT));
    a.jgt_x(Some(drop), Some(ok));
    a.bind(drop);
    a.emit(ret(0));
    a.bind(ok);
    a.emit(ldx_mem(cell::OFF));
}

/// Ports `lo..=hi` that share the same list of flag tests; `flags` empty means any flags.
#[derive(Debug, PartialEq, Eq)]
struct PortGroup {
    lo: u16,
    hi: u16,
    flags: Vec<(u8, u8)>,
}

/// Groups the rules of one protocol by port, as (mask, value) flag tests, merging runs of
/// consecutive ports with the same tests into ranges.
fn groups(rules: &[CaptureRule], proto: Proto) -> Vec<PortGroup> {
    // Per port: its (mask, value) tests, or None for "any flags".
    type Tests = Option<Vec<(u8, u8)>>;
    let mut ports: Vec<(u16, Tests)> = Vec::new();
    let mut sorted: Vec<&CaptureRule> = rules.iter().filter(|r| r.proto == proto).collect();
    sorted.sort_by_key(|r| r.port);
    for rule in sorted {
        // None stands for "any flags", which absorbs every other test on the port.
        let test = if proto == Proto::Udp || rule.flags.is_any() {
            None
        } else {
            let mask = rule.flags.set.bits() | rule.flags.clear.bits();
            Some((mask, rule.flags.set.bits()))
        };
        match ports.last_mut() {
            Some((port, tests)) if *port == rule.port => match (tests.as_mut(), test) {
                (Some(list), Some(t)) => {
                    if !list.contains(&t) {
                        list.push(t);
                    }
                }
                _ => *tests = None,
            },
            _ => ports.push((rule.port, test.map(|t| vec![t]))),
        }
    }
    let mut out: Vec<PortGroup> = Vec::new();
    for (port, tests) in ports {
        let mut flags = tests.unwrap_or_default();
        flags.sort_unstable();
        match out.last_mut() {
            Some(g) if u32::from(g.hi) + 1 == u32::from(port) && g.flags == flags => g.hi = port,
            _ => out.push(PortGroup {
                lo: port,
                hi: port,
                flags,
            }),
        }
    }
    out
}

/// Dispatch on the destination port, then one block per group testing the flags. Every
/// conditional jump is local; the long ones are `ja`, whose offset is 32 bits.
fn port_table(a: &mut Asm, groups: &[PortGroup]) {
    if groups.is_empty() {
        a.emit(ret(0));
        return;
    }
    a.emit(ld_ind(op::H, at(tcp::DST_PORT)));
    let blocks: Vec<Label> = groups.iter().map(|_| a.label()).collect();
    for (g, &block) in groups.iter().zip(&blocks) {
        let next = a.label();
        if g.lo == g.hi {
            a.jeq(u32::from(g.lo), None, Some(next));
        } else {
            a.jge(u32::from(g.lo), None, Some(next));
            a.jgt(u32::from(g.hi), Some(next), None);
        }
        a.ja(block);
        a.bind(next);
    }
    a.emit(ret(0));
    for (g, &block) in groups.iter().zip(&blocks) {
        a.bind(block);
        if g.flags.is_empty() {
            a.emit(ret(SNAP_LEN));
            continue;
        }
        for &(mask, value) in &g.flags {
            let next = a.label();
            a.emit(ld_ind(op::B, tcp::FLAGS as u32));
            a.emit(alu_k(op::AND, u32::from(mask)));
            a.jeq(u32::from(value), None, Some(next));
            a.emit(ret(SNAP_LEN));
            a.bind(next);
        }
        a.emit(ret(0));
    }
}

const fn insn(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
const fn ret(k: u32) -> Insn {
    insn(op::RET | op::K, k)
}
const fn ld_abs(size: u16, k: u32) -> Insn {
    insn(op::LD | size | op::ABS, k)
}
const fn ld_ind(size: u16, k: u32) -> Insn {
    insn(op::LD | size | op::IND, k)
}
const fn ld_mem(slot: u32) -> Insn {
    insn(op::LD | op::MEM, slot)
}
const fn ld_imm(k: u32) -> Insn {
    insn(op::LD | op::W | op::IMM, k)
}
const fn ld_len() -> Insn {
    insn(op::LD | op::W | op::LEN, 0)
}
const fn ldx_mem(slot: u32) -> Insn {
    insn(op::LDX | op::W | op::MEM, slot)
}
const fn stx(slot: u32) -> Insn {
    insn(op::STX, slot)
}
const fn st(slot: u32) -> Insn {
    insn(op::ST, slot)
}
const fn ldx_imm(k: u32) -> Insn {
    insn(op::LDX | op::W | op::IMM, k)
}
const fn alu_k(alu: u16, k: u32) -> Insn {
    insn(op::ALU | alu | op::K, k)
}
const fn alu_x(alu: u16) -> Insn {
    insn(op::ALU | alu | op::X, 0)
}
const fn misc(m: u16) -> Insn {
    insn(op::MISC | m, 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// A tiny assembler: jumps name labels, resolved to forward offsets by `finish`.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, jt label, jf label); `None` means the next instruction.
    jumps: Vec<(usize, Option<Label>, Option<Label>)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn bind(&mut self, l: Label) {
        debug_assert!(self.labels[l.0].is_none(), "label bound twice");
        self.labels[l.0] = Some(self.insns.len());
    }
    fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }
    fn cond(&mut self, jmp: u16, k: u32, jt: Option<Label>, jf: Option<Label>) {
        self.jumps.push((self.insns.len(), jt, jf));
        self.emit(insn(op::JMP | jmp | op::K, k));
    }
    fn jeq(&mut self, k: u32, jt: Option<Label>, jf: Option<Label>) {
        self.cond(op::JEQ, k, jt, jf);
    }
    fn jgt(&mut self, k: u32, jt: Option<Label>, jf: Option<Label>) {
        self.cond(op::JGT, k, jt, jf);
    }
    fn jge(&mut self, k: u32, jt: Option<Label>, jf: Option<Label>) {
        self.cond(op::JGE, k, jt, jf);
    }
    fn jset(&mut self, k: u32, jt: Option<Label>, jf: Option<Label>) {
        self.cond(op::JSET, k, jt, jf);
    }
    /// A conditional jump comparing A with X.
    fn cond_x(&mut self, jmp: u16, jt: Option<Label>, jf: Option<Label>) {
        self.jumps.push((self.insns.len(), jt, jf));
        self.emit(insn(op::JMP | jmp | op::X, 0));
    }
    fn jgt_x(&mut self, jt: Option<Label>, jf: Option<Label>) {
        self.cond_x(op::JGT, jt, jf);
    }
    fn jge_x(&mut self, jt: Option<Label>, jf: Option<Label>) {
        self.cond_x(op::JGE, jt, jf);
    }
    /// Goes to the target whose value A equals, through `ja`s (targets may be far); drops
    /// the frame if none does.
    fn dispatch(&mut self, cases: &[(u32, Label)]) {
        for &(value, target) in cases {
            let next = self.label();
            self.jeq(value, None, Some(next));
            self.ja(target);
            self.bind(next);
        }
        self.emit(ret(0));
    }
    /// The byte at X + `k` is the next protocol.
    fn take_proto(&mut self, k: u32) {
        self.emit(ld_ind(op::B, k));
        self.emit(st(cell::PROTO));
    }
    /// Moves X and the OFF cell on by the header length in TMP.
    fn advance_by_tmp(&mut self) {
        self.emit(ld_mem(cell::OFF));
        self.emit(ldx_mem(cell::TMP));
        self.emit(alu_x(op::ADD));
        self.emit(st(cell::OFF));
        self.emit(misc(op::TAX));
    }
    /// Moves X and the OFF cell `n` bytes on (X holds OFF).
    fn advance(&mut self, n: u32) {
        self.emit(misc(op::TXA));
        self.emit(alu_k(op::ADD, n));
        self.emit(st(cell::OFF));
        self.emit(misc(op::TAX));
    }
    fn ja(&mut self, to: Label) {
        self.jumps.push((self.insns.len(), Some(to), None));
        self.emit(insn(op::JMP | op::JA, 0));
    }

    fn finish(mut self) -> Vec<Insn> {
        for &(at, jt, jf) in &self.jumps {
            let offset = |l: Option<Label>| -> u32 {
                let Some(l) = l else { return 0 };
                let target = self.labels[l.0].expect("jump to an unbound label");
                assert!(target > at, "classic BPF jumps only forward");
                u32::try_from(target - at - 1).expect("program fits u32")
            };
            let insn = &mut self.insns[at];
            if insn.code == op::JMP | op::JA {
                insn.k = offset(jt);
            } else {
                // The layout keeps conditional targets within a few instructions.
                insn.jt = u8::try_from(offset(jt)).expect("conditional jump within 255");
                insn.jf = u8::try_from(offset(jf)).expect("conditional jump within 255");
            }
        }
        self.insns
    }
}

/// The classic BPF machine, as the kernel runs it for socket filters (without the
/// ancillary loads, which these programs don't use).
fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: u32, size: u16| -> Option<u32> {
        let off = usize::try_from(off).ok()?;
        let n = match size {
            op::W => 4,
            op::H => 2,
            _ => 1,
        };
        let bytes = pkt.get(off..off.checked_add(n)?)?;
        Some(bytes.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let class = i.code & 0x07;
        let size = i.code & 0x18;
        let mode = i.code & 0xe0;
        match class {
            op::LD | op::LDX => {
                let v = match mode {
                    op::IMM => Some(i.k),
                    op::ABS => load(i.k, size),
                    op::IND => load(x.wrapping_add(i.k), size),
                    op::MEM => mem.get(i.k as usize).copied(),
                    op::LEN => u32::try_from(pkt.len()).ok(),
                    op::MSH if class == op::LDX => load(i.k, op::B).map(|b| (b & 0x0f) << 2),
                    _ => None,
                };
                let Some(v) = v else { return 0 };
                if class == op::LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            op::ST | op::STX => {
                let Some(slot) = mem.get_mut(i.k as usize) else {
                    return 0;
                };
                *slot = if class == op::ST { a } else { x };
            }
            op::ALU => {
                let src = if i.code & op::X != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    op::ADD => a.wrapping_add(src),
                    op::SUB => a.wrapping_sub(src),
                    op::MUL => a.wrapping_mul(src),
                    op::DIV | op::MOD if src == 0 => return 0,
                    op::DIV => a / src,
                    op::MOD => a % src,
                    op::OR => a | src,
                    op::AND => a & src,
                    op::XOR => a ^ src,
                    op::LSH => a.checked_shl(src).unwrap_or(0),
                    op::RSH => a.checked_shr(src).unwrap_or(0),
                    op::NEG => a.wrapping_neg(),
                    _ => return 0,
                };
            }
            op::JMP => {
                let src = if i.code & op::X != 0 { x } else { i.k };
                let taken = match i.code & 0xf0 {
                    op::JA => {
                        pc = pc.saturating_add(i.k as usize);
                        continue;
                    }
                    op::JEQ => a == src,
                    op::JGT => a > src,
                    op::JGE => a >= src,
                    op::JSET => a & src != 0,
                    _ => return 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            op::RET => return if i.code & op::A != 0 { a } else { i.k },
            op::MISC => {
                if i.code & 0xf8 == op::TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
            _ => return 0,
        }
    }
    0
}

fn disassemble(pc: usize, i: &Insn) -> String {
    let class = i.code & 0x07;
    let size = match i.code & 0x18 {
        op::H => "h",
        op::B => "b",
        _ => "",
    };
    let target = |off: u32| pc + 1 + off as usize;
    match class {
        op::LD | op::LDX => {
            let reg = if class == op::LD { "ld" } else { "ldx" };
            match i.code & 0xe0 {
                op::IMM => format!("{reg} #{}", i.k),
                op::ABS => format!("{reg}{size} [{}]", i.k),
                op::IND => format!("{reg}{size} [x + {}]", i.k),
                op::MEM => format!("{reg} M[{}]", i.k),
                op::LEN => format!("{reg} #pktlen"),
                op::MSH => format!("{reg} 4*([{}]&0xf)", i.k),
                _ => format!("{reg} ?{:#06x}", i.code),
            }
        }
        op::ST => format!("st M[{}]", i.k),
        op::STX => format!("stx M[{}]", i.k),
        op::ALU => {
            let name = match i.code & 0xf0 {
                op::ADD => "add",
                op::SUB => "sub",
                op::MUL => "mul",
                op::DIV => "div",
                op::MOD => "mod",
                op::OR => "or",
                op::AND => "and",
                op::XOR => "xor",
                op::LSH => "lsh",
                op::RSH => "rsh",
                op::NEG => return "neg".to_string(),
                _ => "alu?",
            };
            if i.code & op::X != 0 {
                format!("{name} x")
            } else {
                format!("{name} #{:#x}", i.k)
            }
        }
        op::JMP => {
            let name = match i.code & 0xf0 {
                op::JA => return format!("ja {}", target(i.k)),
                op::JEQ => "jeq",
                op::JGT => "jgt",
                op::JGE => "jge",
                op::JSET => "jset",
                _ => "j?",
            };
            format!(
                "{name} #{:#x} jt {} jf {}",
                i.k,
                target(u32::from(i.jt)),
                target(u32::from(i.jf))
            )
        }
        op::RET if i.code & op::A != 0 => "ret a".to_string(),
        op::RET => format!("ret #{}", i.k),
        op::MISC if i.code & 0xf8 == op::TXA => "txa".to_string(),
        op::MISC => "tax".to_string(),
        _ => format!("?{:#06x}", i.code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knock_core::hit::{FlagRule, TcpFlags};

    // Hand-built frames: only the fields the filter reads are meaningful.

    fn tcp(dport: u16, flags: u8) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0..2].copy_from_slice(&40000u16.to_be_bytes()); // source port
        h[2..4].copy_from_slice(&dport.to_be_bytes()); // destination port
        h[12] = 5 << 4; // data offset
        h[13] = flags;
        h
    }

    fn udp(dport: u16) -> Vec<u8> {
        let mut h = vec![0u8; 8];
        h[0..2].copy_from_slice(&40000u16.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[4..6].copy_from_slice(&8u16.to_be_bytes()); // length
        h
    }

    /// IPv4 with `options` 32-bit words of options and this fragment field.
    fn ipv4_opts(proto: u8, options: usize, frag: u16, l4: &[u8]) -> Vec<u8> {
        let ihl = 5 + options;
        let mut h = vec![0u8; ihl * 4];
        h[0] = 0x40 | ihl as u8;
        let total = (h.len() + l4.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 64; // ttl
        h[9] = proto;
        h[12..16].copy_from_slice(&[192, 0, 2, 1]);
        h[16..20].copy_from_slice(&[192, 0, 2, 2]);
        h.extend_from_slice(l4);
        h
    }

    fn ipv4(proto: u8, l4: &[u8]) -> Vec<u8> {
        ipv4_opts(proto, 0, 0x4000, l4) // DF set, offset 0
    }

    fn ipv6(next: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        h[6] = next;
        h[7] = 64;
        h[8..10].copy_from_slice(&[0x20, 0x01]);
        h[24..26].copy_from_slice(&[0x20, 0x01]);
        h.extend_from_slice(l4);
        h
    }

    /// Ethernet with these VLAN tags (TPID, VID) before the ethertype.
    fn eth_tagged(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for &(tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        eth_tagged(&[], ethertype, payload)
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const PSH: u8 = 0x08;

    fn rule(proto: Proto, port: u16, flags: FlagRule) -> CaptureRule {
        CaptureRule { proto, port, flags }
    }

    fn syn_not_ack(port: u16) -> CaptureRule {
        rule(
            Proto::Tcp,
            port,
            FlagRule {
                set: TcpFlags::SYN,
                clear: TcpFlags::ACK,
            },
        )
    }

    fn door_rules() -> Vec<CaptureRule> {
        vec![
            syn_not_ack(7000),
            rule(Proto::Udp, 8000, FlagRule::ANY),
            rule(
                Proto::Tcp,
                9000,
                FlagRule::exact(TcpFlags::FIN | TcpFlags::PSH),
            ),
        ]
    }

    fn prog(link: LinkType) -> Program {
        compile(&door_rules(), link, Families::Both).unwrap()
    }

    /// Every transport case of `door_rules`, with whether it must pass.
    fn transport_cases() -> Vec<(&'static str, u8, Vec<u8>, bool)> {
        vec![
            ("syn to 7000", 6, tcp(7000, SYN), true),
            ("syn+ack to 7000", 6, tcp(7000, SYN | ACK), false),
            ("fin to 7000", 6, tcp(7000, FIN), false),
            ("syn to 7001", 6, tcp(7001, SYN), false),
            ("udp to 8000", 17, udp(8000), true),
            ("udp to 7000", 17, udp(7000), false),
            ("tcp syn to udp port 8000", 6, tcp(8000, SYN), false),
            ("fin+psh to 9000", 6, tcp(9000, FIN | PSH), true),
            ("fin+psh+ack to 9000", 6, tcp(9000, FIN | PSH | ACK), false),
            ("fin to 9000", 6, tcp(9000, FIN), false),
            ("icmp", 1, vec![8, 0, 0, 0, 0, 0, 0, 0], false),
        ]
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        let p = prog(LinkType::Ethernet);
        for (name, proto, l4, want) in transport_cases() {
            assert_eq!(
                p.accepts(&eth(0x0800, &ipv4(proto, &l4))),
                want,
                "v4 {name}"
            );
            let proto6 = if proto == 1 { 58 } else { proto };
            assert_eq!(
                p.accepts(&eth(0x86dd, &ipv6(proto6, &l4))),
                want,
                "v6 {name}"
            );
        }
    }

    #[test]
    fn raw_ip_link() {
        let p = prog(LinkType::RawIp);
        for (name, proto, l4, want) in transport_cases() {
            assert_eq!(p.accepts(&ipv4(proto, &l4)), want, "v4 {name}");
            let proto6 = if proto == 1 { 58 } else { proto };
            assert_eq!(p.accepts(&ipv6(proto6, &l4)), want, "v6 {name}");
        }
        // An Ethernet frame read as raw IP starts with a MAC address, not an IP version.
        assert!(!p.accepts(&eth(0x0800, &ipv4(6, &tcp(7000, SYN)))));
    }

    #[test]
    fn ipv4_options_move_the_transport_header() {
        let p = prog(LinkType::Ethernet);
        for words in [1, 3, 10] {
            let ok = eth(0x0800, &ipv4_opts(6, words, 0, &tcp(7000, SYN)));
            let bad = eth(0x0800, &ipv4_opts(6, words, 0, &tcp(7001, SYN)));
            assert!(p.accepts(&ok), "{words} option words");
            assert!(!p.accepts(&bad), "{words} option words, wrong port");
        }
    }

    #[test]
    fn later_fragments_are_dropped_first_fragments_pass() {
        let p = prog(LinkType::Ethernet);
        let more_fragments = 0x2000;
        assert!(p.accepts(&eth(
            0x0800,
            &ipv4_opts(6, 0, more_fragments, &tcp(7000, SYN))
        )));
        // Offset 8 bytes: the "TCP header" here is payload of the datagram.
        assert!(!p.accepts(&eth(0x0800, &ipv4_opts(6, 0, 1, &tcp(7000, SYN)))));
    }

    #[test]
    fn vlan_tags_in_band_are_skipped() {
        let p = prog(LinkType::Ethernet);
        let v4 = ipv4(6, &tcp(7000, SYN));
        let v6 = ipv6(17, &udp(8000));
        for tags in [
            vec![(0x8100, 10)],
            vec![(0x88a8, 100), (0x8100, 10)],
            vec![(0x8100, 100), (0x8100, 10)],
        ] {
            assert!(p.accepts(&eth_tagged(&tags, 0x0800, &v4)), "{tags:?}");
            assert!(p.accepts(&eth_tagged(&tags, 0x86dd, &v6)), "{tags:?}");
            let wrong = ipv4(6, &tcp(7000, SYN | ACK));
            assert!(!p.accepts(&eth_tagged(&tags, 0x0800, &wrong)), "{tags:?}");
        }
        // As many tags as the parser unwraps, and not one more.
        let mut tags: Vec<(u16, u16)> = (0..vlan::MAX_TAGS as u16).map(|i| (0x8100, i)).collect();
        assert!(p.accepts(&eth_tagged(&tags, 0x0800, &v4)));
        tags.push((0x8100, 99));
        assert!(!p.accepts(&eth_tagged(&tags, 0x0800, &v4)));
        // The pre-standard 0x9100 is not a VLAN tag to the parser, so not to the filter.
        assert!(!p.accepts(&eth_tagged(&[(0x9100, 10)], 0x0800, &v4)));
    }

    /// An extension header of 8 bytes (length field 0) or, for `units`, 8 * (units + 1).
    fn ext(next: u8, units: u8) -> Vec<u8> {
        let mut h = vec![0u8; 8 * (usize::from(units) + 1)];
        h[0] = next;
        h[1] = units;
        h
    }

    fn frag_header(next: u8, offset_units: u16) -> Vec<u8> {
        let mut h = vec![next, 0, 0, 0, 0, 0, 0, 1];
        h[2..4].copy_from_slice(&(offset_units << 3).to_be_bytes());
        h
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        let p = prog(LinkType::Ethernet);
        let v6 = |first: u8, chain: Vec<Vec<u8>>| eth(0x86dd, &ipv6(first, &chain.concat()));
        // hop-by-hop -> TCP
        assert!(p.accepts(&v6(0, vec![ext(6, 0), tcp(7000, SYN)])));
        assert!(!p.accepts(&v6(0, vec![ext(6, 0), tcp(7000, ACK)])));
        assert!(!p.accepts(&v6(0, vec![ext(6, 0), tcp(1234, SYN)])));
        // An MLD report: hop-by-hop -> ICMPv6.
        assert!(!p.accepts(&v6(0, vec![ext(58, 0), vec![143, 0, 0, 0]])));
        // destination options (24 bytes) -> routing -> UDP
        assert!(p.accepts(&v6(60, vec![ext(43, 2), ext(17, 0), udp(8000)])));
        assert!(!p.accepts(&v6(60, vec![ext(43, 2), ext(17, 0), udp(8001)])));
        // First fragment -> UDP passes; a later fragment carries no UDP header.
        assert!(p.accepts(&v6(44, vec![frag_header(17, 0), udp(8000)])));
        assert!(!p.accepts(&v6(44, vec![frag_header(17, 1), udp(8000)])));
        // As many extension headers as the parser walks, and not one more.
        let chain = |n: usize, l4: Vec<u8>| {
            let mut c: Vec<Vec<u8>> = (1..n).map(|_| ext(60, 0)).collect();
            c.push(ext(17, 0));
            c.push(l4);
            v6(0, c)
        };
        assert!(p.accepts(&chain(MAX_IPV6_EXTENSIONS, udp(8000))));
        assert!(!p.accepts(&chain(MAX_IPV6_EXTENSIONS + 1, udp(8000))));
        assert!(!p.accepts(&chain(MAX_IPV6_EXTENSIONS, udp(8001))));
        // Hop-by-hop options anywhere but first.
        assert!(!p.accepts(&v6(60, vec![ext(0, 0), ext(17, 0), udp(8000)])));
        // An extension header that reaches past the payload length.
        let mut cut = eth(0x86dd, &ipv6(60, &[ext(17, 0), udp(8000)].concat()));
        let at = 14 + 4;
        cut[at..at + 2].copy_from_slice(&8u16.to_be_bytes());
        cut[14 + 40 + 1] = 1;
        assert!(!p.accepts(&cut));
        // No-next-header and ICMPv6 are not passed.
        assert!(!p.accepts(&eth(0x86dd, &ipv6(59, &[]))));
        assert!(!p.accepts(&eth(0x86dd, &ipv6(58, &[128, 0, 0, 0]))));
    }

    #[test]
    fn only_v4_drops_ipv6() {
        let p = compile(&door_rules(), LinkType::Ethernet, Families::V4Only).unwrap();
        assert!(p.accepts(&eth(0x0800, &ipv4(6, &tcp(7000, SYN)))));
        assert!(!p.accepts(&eth(0x86dd, &ipv6(6, &tcp(7000, SYN)))));
        assert!(!p.accepts(&eth(0x86dd, &ipv6(0, &[6, 0, 0, 0, 0, 0, 0, 0]))));
    }

    #[test]
    fn other_ethertypes_and_truncated_frames_are_dropped() {
        let p = prog(LinkType::Ethernet);
        let arp = eth(0x0806, &[0u8; 28]);
        assert!(!p.accepts(&arp));
        let full = eth(0x0800, &ipv4(6, &tcp(7000, SYN)));
        assert!(p.accepts(&full));
        // Cut inside the TCP header before the flags byte, and inside the IP header.
        for len in [0, 10, 13, 20, 34, 14 + 20 + 13] {
            assert!(!p.accepts(&full[..len]), "truncated to {len}");
        }
        assert_eq!(p.run(&full), SNAP_LEN);
    }

    #[test]
    fn no_rules_accepts_nothing() {
        let p = compile(&[], LinkType::Ethernet, Families::Both).unwrap();
        assert_eq!(p, Program::reject_all());
        assert!(!p.accepts(&eth(0x0800, &ipv4(6, &tcp(7000, SYN)))));
    }

    #[test]
    fn several_flag_rules_on_one_port_any_wins() {
        let rules = vec![
            syn_not_ack(7000),
            rule(Proto::Tcp, 7000, FlagRule::exact(TcpFlags::FIN)),
        ];
        let p = compile(&rules, LinkType::Ethernet, Families::Both).unwrap();
        let f = |flags| eth(0x0800, &ipv4(6, &tcp(7000, flags)));
        assert!(p.accepts(&f(SYN)));
        assert!(p.accepts(&f(FIN)));
        assert!(!p.accepts(&f(FIN | ACK)));
        assert!(!p.accepts(&f(ACK)));

        let mut with_any = rules.clone();
        with_any.push(rule(Proto::Tcp, 7000, FlagRule::ANY));
        let p = compile(&with_any, LinkType::Ethernet, Families::Both).unwrap();
        assert!(p.accepts(&f(ACK)));
    }

    #[test]
    fn consecutive_ports_become_ranges() {
        let rules: Vec<CaptureRule> = (1024..=65535)
            .map(|port| rule(Proto::Tcp, port, FlagRule::ANY))
            .chain([syn_not_ack(80)])
            .collect();
        let g = groups(&rules, Proto::Tcp);
        assert_eq!(
            g,
            vec![
                PortGroup {
                    lo: 80,
                    hi: 80,
                    flags: vec![(0x12, 0x02)]
                },
                PortGroup {
                    lo: 1024,
                    hi: 65535,
                    flags: vec![]
                },
            ]
        );
        let p = compile(&rules, LinkType::Ethernet, Families::Both).unwrap();
        // As small as the program for two single ports, plus one instruction for the range.
        let two = [syn_not_ack(80), rule(Proto::Tcp, 1024, FlagRule::ANY)];
        let two = compile(&two, LinkType::Ethernet, Families::Both).unwrap();
        assert_eq!(p.insns().len(), two.insns().len() + 1);
        let f = |port, flags| eth(0x0800, &ipv4(6, &tcp(port, flags)));
        assert!(p.accepts(&f(1024, ACK)));
        assert!(p.accepts(&f(65535, ACK)));
        assert!(p.accepts(&f(30000, ACK)));
        assert!(!p.accepts(&f(1023, SYN)));
        assert!(p.accepts(&f(80, SYN)));
        assert!(!p.accepts(&f(81, SYN)));
    }

    #[test]
    fn many_scattered_ports_use_long_jumps() {
        // Every third port: no ranges, a dispatch table far longer than 255 instructions.
        let rules: Vec<CaptureRule> = (0..400u16).map(|i| syn_not_ack(10_000 + 3 * i)).collect();
        let p = compile(&rules, LinkType::Ethernet, Families::Both).unwrap();
        assert!(p.insns().len() > 1000);
        for i in [0u16, 1, 299, 399] {
            let port = 10_000 + 3 * i;
            assert!(p.accepts(&eth(0x0800, &ipv4(6, &tcp(port, SYN)))), "{port}");
            assert!(!p.accepts(&eth(0x0800, &ipv4(6, &tcp(port + 1, SYN)))));
            assert!(!p.accepts(&eth(0x0800, &ipv4(6, &tcp(port, SYN | ACK)))));
        }
    }

    #[test]
    fn too_many_rules_is_an_error() {
        let rules: Vec<CaptureRule> = (0..3000u16).map(|i| syn_not_ack(2 * i + 1)).collect();
        let err = compile(&rules, LinkType::Ethernet, Families::Both).unwrap_err();
        let FilterError::TooLarge { rules: n, insns } = err else {
            panic!("{err:?}")
        };
        assert_eq!(n, 3000);
        assert!(insns > MAX_INSNS);
        assert!(
            err.to_string()
                .starts_with("capture filter for 3000 rules needs")
        );
    }

    #[test]
    fn rules_that_fit_compile_exactly() {
        let fitted = compile_fitting(&door_rules(), LinkType::Ethernet, Families::Both).unwrap();
        assert_eq!(fitted.coarse, None);
        assert_eq!(fitted.program, prog(LinkType::Ethernet));
    }

    /// The hostile run's finding: about 1,365 distinct door ports made a filter the kernel
    /// refuses, and the doors went deaf. Too many rules now get a coarser filter that fits
    /// and keeps every frame the rules want (and some more, which user space drops).
    #[test]
    fn too_many_rules_get_a_coarser_filter_that_keeps_all_they_want() {
        let rules: Vec<CaptureRule> = (0..3000u16)
            .map(|i| syn_not_ack(2 * i + 1))
            .chain((0..3000u16).map(|i| rule(Proto::Udp, 20_000 + 7 * i, FlagRule::ANY)))
            .collect();
        for link in [LinkType::Ethernet, LinkType::RawIp] {
            let fitted = compile_fitting(&rules, link, Families::Both).unwrap();
            let coarse = fitted.coarse.as_ref().expect("coarse");
            assert!(coarse.needed > MAX_INSNS, "{}", coarse.needed);
            let p = &fitted.program;
            assert!(p.insns().len() <= MAX_INSNS, "{}", p.insns().len());
            kernel_check(p.insns()).unwrap();
            let frame = |l4: Vec<u8>, proto: u8| match link {
                LinkType::Ethernet => eth(0x0800, &ipv4(proto, &l4)),
                _ => ipv4(proto, &l4),
            };
            for r in &rules {
                let f = match r.proto {
                    Proto::Tcp => frame(tcp(r.port, SYN), 6),
                    Proto::Udp => frame(udp(r.port), 17),
                };
                assert!(p.accepts(&f), "{r}");
            }
            // Coarser, not open: ports far from every rule are still dropped.
            assert!(!p.accepts(&frame(tcp(60_000, SYN), 6)));
            assert!(!p.accepts(&frame(udp(1), 17)));
            assert!(
                coarse
                    .keeps
                    .iter()
                    .any(|k| k.starts_with("tcp dst portrange 1-"))
            );
            assert!(
                coarse
                    .keeps
                    .iter()
                    .any(|k| k.starts_with("udp dst portrange 20000-"))
            );
        }
    }

    #[test]
    fn even_the_widest_spread_of_rules_fits() {
        // Every other port of both protocols, each with its own flags: nothing merges
        // until every gap is bridged.
        let rules: Vec<CaptureRule> = (0..32_000u16)
            .flat_map(|i| {
                let port = 2 * i + 1;
                [
                    rule(
                        Proto::Tcp,
                        port,
                        FlagRule::exact(TcpFlags::from_bits(i as u8)),
                    ),
                    rule(Proto::Udp, port, FlagRule::ANY),
                ]
            })
            .collect();
        let fitted = compile_fitting(&rules, LinkType::Ethernet, Families::V4Only).unwrap();
        let coarse = fitted.coarse.unwrap();
        assert!(fitted.program.insns().len() <= MAX_INSNS);
        assert!(
            coarse.keeps.len() <= 2 * (MAX_INSNS / 3),
            "{}",
            coarse.keeps.len()
        );
        kernel_check(fitted.program.insns()).unwrap();
    }

    /// What the kernel's classic BPF checker (`bpf_check_classic`) refuses, restated: an
    /// opcode outside the socket-filter set, a memory cell out of range or read before every
    /// path has stored it, a shift by 32 or more, a division by a zero constant, a jump out
    /// of the program, a last instruction that is not a return.
    fn kernel_check(prog: &[Insn]) -> Result<(), String> {
        let n = prog.len();
        if n == 0 || n > MAX_INSNS {
            return Err(format!("{n} instructions"));
        }
        let x_or_k = |base: u16| [base | op::K, base | op::X];
        let mut allowed: Vec<u16> = Vec::new();
        for alu in [
            op::ADD,
            op::SUB,
            op::MUL,
            op::DIV,
            op::MOD,
            op::AND,
            op::OR,
            op::XOR,
            op::LSH,
            op::RSH,
        ] {
            allowed.extend(x_or_k(op::ALU | alu));
        }
        allowed.push(op::ALU | op::NEG);
        for size in [op::W, op::H, op::B] {
            allowed.extend([op::LD | size | op::ABS, op::LD | size | op::IND]);
        }
        allowed.extend([
            op::LD | op::W | op::LEN,
            op::LD | op::IMM,
            op::LD | op::MEM,
            op::LDX | op::W | op::LEN,
            op::LDX | op::B | op::MSH,
            op::LDX | op::IMM,
            op::LDX | op::MEM,
            op::ST,
            op::STX,
            op::MISC | op::TAX,
            op::MISC | op::TXA,
            op::RET | op::K,
            op::RET | op::A,
            op::JMP | op::JA,
        ]);
        for j in [op::JEQ, op::JGE, op::JGT, op::JSET] {
            allowed.extend(x_or_k(op::JMP | j));
        }
        let mut masks = vec![u16::MAX; n];
        let mut valid: u16 = 0;
        for (pc, i) in prog.iter().enumerate() {
            if !allowed.contains(&i.code) {
                return Err(format!("pc {pc}: opcode {:#06x}", i.code));
            }
            let far = n - pc - 1;
            valid &= masks[pc];
            let c = i.code;
            let divide = c == op::ALU | op::DIV | op::K || c == op::ALU | op::MOD | op::K;
            let shift = c == op::ALU | op::LSH | op::K || c == op::ALU | op::RSH | op::K;
            let read = c == op::LD | op::MEM || c == op::LDX | op::MEM;
            if divide && i.k == 0 {
                return Err(format!("pc {pc}: division by zero"));
            } else if shift && i.k >= 32 {
                return Err(format!("pc {pc}: shift by {}", i.k));
            } else if read && (i.k >= 16 || valid & (1 << i.k) == 0) {
                return Err(format!("pc {pc}: M[{}] read before it is stored", i.k));
            } else if c == op::ST || c == op::STX {
                if i.k >= 16 {
                    return Err(format!("pc {pc}: M[{}]", i.k));
                }
                valid |= 1 << i.k;
            } else if c == op::JMP | op::JA {
                if i.k as usize >= far {
                    return Err(format!("pc {pc}: ja out of the program"));
                }
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            } else if c & 0x07 == op::JMP {
                let (jt, jf) = (usize::from(i.jt), usize::from(i.jf));
                if jt >= far || jf >= far {
                    return Err(format!("pc {pc}: jump out of the program"));
                }
                masks[pc + 1 + jt] &= valid;
                masks[pc + 1 + jf] &= valid;
                valid = u16::MAX;
            }
        }
        if prog[n - 1].code & 0x07 != op::RET {
            return Err("the last instruction is not a return".into());
        }
        Ok(())
    }

    #[test]
    fn the_kernel_checker_would_take_every_program() {
        let big: Vec<CaptureRule> = (0..400u16).map(|i| syn_not_ack(10_000 + 3 * i)).collect();
        for rules in [door_rules(), big, vec![rule(Proto::Udp, 53, FlagRule::ANY)]] {
            for link in [LinkType::Ethernet, LinkType::RawIp] {
                for families in [Families::Both, Families::V4Only] {
                    let p = compile(&rules, link, families).unwrap();
                    if let Err(e) = kernel_check(p.insns()) {
                        panic!("{link:?} {families:?}: {e}\n{p}");
                    }
                }
            }
        }
        assert!(kernel_check(Program::reject_all().insns()).is_ok());
        // The checker itself refuses what the kernel does.
        assert!(kernel_check(&[ld_mem(0), ret(0)]).is_err());
        assert!(kernel_check(&[ld_imm(1), st(0), ld_mem(0), insn(op::RET | op::A, 0)]).is_ok());
        assert!(kernel_check(&[alu_k(op::LSH, 32), ret(0)]).is_err());
        assert!(kernel_check(&[ld_imm(1)]).is_err());
    }

    #[test]
    fn every_jump_lands_inside_and_the_program_ends_in_ret() {
        for link in [LinkType::Ethernet, LinkType::RawIp] {
            let p = prog(link);
            let n = p.insns().len();
            for (pc, i) in p.insns().iter().enumerate() {
                if i.code & 0x07 == op::JMP {
                    let far = if i.code & 0xf0 == op::JA {
                        i.k as usize
                    } else {
                        usize::from(i.jt.max(i.jf))
                    };
                    assert!(pc + 1 + far < n, "{link:?} pc {pc}");
                }
            }
            assert_eq!(p.insns()[n - 1].code & 0x07, op::RET);
        }
    }

    #[test]
    fn disassembly_reads_like_tcpdump() {
        let p = compile(&[syn_not_ack(7000)], LinkType::RawIp, Families::V4Only).unwrap();
        let text = p.to_string();
        assert!(
            text.starts_with(
                "(000) ld #0\n(001) st M[0]\n(002) st M[1]\n(003) st M[2]\n(004) st M[3]\n\
                 (005) st M[4]\n(006) ldx #0\n(007) ldb [0]\n(008) rsh #0x4\n"
            ),
            "{text}"
        );
        assert!(text.contains("ldh [x + 2]"));
        assert!(text.contains("and #0x12"));
        assert!(text.contains("ret #65535"));
    }

    #[test]
    fn interpreter_basics() {
        // ld len; ret a  -> the frame length.
        let len = [insn(op::LD | op::W | op::LEN, 0), insn(op::RET | op::A, 0)];
        assert_eq!(run(&len, &[1, 2, 3]), 3);
        // ldx msh, txa, ret a -> 4 * low nibble.
        let msh = [
            insn(op::LDX | op::B | op::MSH, 0),
            misc(op::TXA),
            insn(op::RET | op::A, 0),
        ];
        assert_eq!(run(&msh, &[0x46]), 24);
        // Division by zero drops, like the kernel.
        let div = [ldx_imm(0), alu_x(op::DIV), ret(1)];
        assert_eq!(run(&div, &[]), 0);
        // Word loads are big-endian.
        let w = [ld_abs(op::W, 0), insn(op::RET | op::A, 0)];
        assert_eq!(run(&w, &[1, 2, 3, 4]), 0x0102_0304);
        assert_eq!(run(&w, &[1, 2, 3]), 0);
        // Falling off the end drops.
        assert_eq!(run(&[ldx_imm(1)], &[]), 0);
    }
}
