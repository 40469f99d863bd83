//! The flood's frames: Ethernet + IPv4 + TCP SYN from every address of 198.18.0.0/15.

use std::net::Ipv4Addr;

use knock_core::hit::TcpFlags;
use knock_core::wire::{Ipv4Header, TcpSegment, Transport, ipv4_packet};

/// The benchmark range (RFC 2544) the spoofed sources come from.
pub const SOURCE_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// Prefix length of [`SOURCE_NET`]: 131,072 sources.
pub const SOURCE_PREFIX: u8 = 15;
/// Ethernet (14) + IPv4 (20) + TCP (20).
pub const FRAME_LEN: usize = 54;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

/// Where the flood goes and which link it leaves from.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub dst: Ipv4Addr,
    pub dst_port: u16,
}

/// A small, fast generator for ports, sequence numbers and the source order. The flood
/// needs variety, not secrecy; it is seeded from the OS once.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed; a zero seed (xorshift's fixed point) is replaced.
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// How many sources [`SOURCE_NET`] holds.
pub fn source_count() -> u32 {
    1 << (32 - SOURCE_PREFIX)
}

/// The `index`-th address of [`SOURCE_NET`] (wrapping around the range).
pub fn source(index: u32) -> Ipv4Addr {
    let offset = index % source_count();
    Ipv4Addr::from(u32::from(SOURCE_NET) + offset)
}

/// The `i`-th of `count` sources spread evenly over the whole of [`SOURCE_NET`]: with
/// 2^15 of them, every fourth address. `count` is between 1 and [`source_count`].
pub fn spread(i: u32, count: u32) -> Ipv4Addr {
    let offset = u64::from(i) * u64::from(source_count()) / u64::from(count.max(1));
    source(offset as u32)
}

/// `count` sources spread over [`SOURCE_NET`] ([`spread`]), in a shuffled order (Fisher-Yates),
/// so consecutive packets do not come from neighbouring addresses.
pub fn shuffled_sources(count: u32, rng: &mut XorShift) -> Vec<Ipv4Addr> {
    let mut order: Vec<Ipv4Addr> = (0..count).map(|i| spread(i, count)).collect();
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// One frame per source of `sources`, in that order, each a SYN to `target` with a random
/// source port (1024-65535), sequence number and IP identification, laid end to end.
pub fn build_all(
    target: &Target,
    sources: &[Ipv4Addr],
    rng: &mut XorShift,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(sources.len() * FRAME_LEN);
    for &src in sources {
        let random = rng.next_u64();
        let port = 1024 + (random % (65536 - 1024)) as u16;
        let frame = build_one(target, src, port, (random >> 16) as u32)?;
        out.extend_from_slice(&frame);
    }
    Ok(out)
}

/// A whole knock from every source: the frames of `ports[0]` from all of them, then those
/// of `ports[1]`, and so on, so every source completes the sequence in the same round.
pub fn build_rounds(
    target: &Target,
    sources: &[Ipv4Addr],
    ports: &[u16],
    rng: &mut XorShift,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(sources.len() * ports.len() * FRAME_LEN);
    for &port in ports {
        let round = Target {
            dst_port: port,
            ..*target
        };
        out.extend_from_slice(&build_all(&round, sources, rng)?);
    }
    Ok(out)
}

/// One SYN frame from `src:src_port`; `noise` picks the sequence number and the IP
/// identification.
pub fn build_one(
    target: &Target,
    src: Ipv4Addr,
    src_port: u16,
    noise: u32,
) -> anyhow::Result<[u8; FRAME_LEN]> {
    let mut ip = Ipv4Header::new(src, target.dst);
    ip.ident = noise as u16;
    let mut tcp = TcpSegment::new(src_port, target.dst_port, TcpFlags::SYN);
    tcp.seq = noise.rotate_left(7);
    let packet = ipv4_packet(&ip, &Transport::Tcp(tcp))?;
    let mut frame = [0u8; FRAME_LEN];
    if packet.len() != FRAME_LEN - 14 {
        anyhow::bail!(
            "knock_core built a {}-byte IPv4 packet, expected {}",
            packet.len(),
            FRAME_LEN - 14
        );
    }
    frame[0..6].copy_from_slice(&target.dst_mac);
    frame[6..12].copy_from_slice(&target.src_mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_IPV4);
    frame[14..].copy_from_slice(&packet);
    Ok(frame)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> anyhow::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .ok_or_else(|| anyhow::anyhow!("MAC address {text:?} has fewer than 6 bytes"))?;
        if part.is_empty() || part.len() > 2 {
            anyhow::bail!("MAC address {text:?}: {part:?} is not a hex byte");
        }
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| anyhow::anyhow!("MAC address {text:?}: {part:?} is not a hex byte"))?;
    }
    if parts.next().is_some() {
        anyhow::bail!("MAC address {text:?} has more than 6 bytes");
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::IpAddr;

    use knock_core::hit::Proto;
    use knock_core::wire::{LinkType, parse_frame};

    use super::*;

    const TARGET: Target = Target {
        src_mac: [0x02, 0, 0, 0, 0, 1],
        dst_mac: [0x02, 0, 0, 0, 0, 2],
        dst: Ipv4Addr::new(192, 0, 2, 2),
        dst_port: 7000,
    };

    #[test]
    fn one_frame_is_ethernet_ipv4_syn_with_the_given_fields() {
        let frame = build_one(&TARGET, Ipv4Addr::new(198, 19, 1, 2), 40000, 0x1234_5678).unwrap();
        // Ethernet: destination MAC, source MAC, EtherType IPv4.
        assert_eq!(&frame[0..6], &[0x02, 0, 0, 0, 0, 2]);
        assert_eq!(&frame[6..12], &[0x02, 0, 0, 0, 0, 1]);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        // IPv4: version 4 / IHL 5, total length 40, identification from the noise,
        // protocol TCP, source and destination.
        assert_eq!(frame[14], 0x45);
        assert_eq!(&frame[16..18], &[0, 40]);
        assert_eq!(&frame[18..20], &[0x56, 0x78]);
        assert_eq!(frame[23], 6);
        assert_eq!(&frame[26..30], &[198, 19, 1, 2]);
        assert_eq!(&frame[30..34], &[192, 0, 2, 2]);
        // TCP: ports 40000 -> 7000, flags SYN only.
        assert_eq!(&frame[34..36], &40000u16.to_be_bytes());
        assert_eq!(&frame[36..38], &7000u16.to_be_bytes());
        assert_eq!(frame[47], 0x02);

        let parsed = parse_frame(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(parsed.src, IpAddr::from([198, 19, 1, 2]));
        assert_eq!(parsed.dst, IpAddr::from([192, 0, 2, 2]));
        assert_eq!(parsed.proto, Proto::Tcp);
        assert_eq!(parsed.dst_port, 7000);
        assert_eq!(parsed.tcp_flags, TcpFlags::SYN);
    }

    #[test]
    fn all_frames_cover_the_benchmark_range_once_each() {
        let mut rng = XorShift::new(42);
        let sources = shuffled_sources(source_count(), &mut rng);
        let frames = build_all(&TARGET, &sources, &mut rng).unwrap();
        assert_eq!(frames.len(), 131_072 * FRAME_LEN);
        let mut sources = HashSet::new();
        let mut ports = HashSet::new();
        for frame in frames.chunks_exact(FRAME_LEN) {
            let p = parse_frame(LinkType::Ethernet, frame).unwrap();
            let IpAddr::V4(src) = p.src else {
                panic!("IPv6 source in {frame:?}")
            };
            assert_eq!(u32::from(src) >> 17, u32::from(SOURCE_NET) >> 17, "{src}");
            assert_eq!(p.dst_port, 7000);
            sources.insert(src);
            ports.insert(u16::from_be_bytes([frame[34], frame[35]]));
        }
        assert_eq!(sources.len(), 131_072);
        assert!(ports.iter().all(|&p| p >= 1024));
        // Random ports: far more than a handful of distinct values.
        assert!(
            ports.len() > 50_000,
            "{} distinct source ports",
            ports.len()
        );
        // Shuffled: the first frames do not come from consecutive addresses.
        let first: Vec<_> = frames
            .chunks_exact(FRAME_LEN)
            .take(4)
            .map(|f| u32::from_be_bytes([f[26], f[27], f[28], f[29]]))
            .collect();
        assert!(first.windows(2).any(|w| w[1] != w[0] + 1), "{first:?}");
    }

    #[test]
    fn fewer_sources_spread_over_the_whole_range() {
        let n = 1 << 15;
        let all: HashSet<Ipv4Addr> = (0..n).map(|i| spread(i, n)).collect();
        assert_eq!(all.len(), n as usize);
        assert_eq!(spread(0, n), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(spread(1, n), Ipv4Addr::new(198, 18, 0, 4));
        assert_eq!(spread(n - 1, n), Ipv4Addr::new(198, 19, 255, 252));
        // An odd count still covers both halves of the /15, without repeats.
        let odd: HashSet<Ipv4Addr> = (0..1000).map(|i| spread(i, 1000)).collect();
        assert_eq!(odd.len(), 1000);
        assert!(odd.contains(&Ipv4Addr::new(198, 19, 255, 124)));
        let shuffled = shuffled_sources(1000, &mut XorShift::new(1));
        assert_eq!(shuffled.iter().copied().collect::<HashSet<_>>(), odd);
    }

    #[test]
    fn rounds_send_every_sources_first_hit_before_any_second_hit() {
        let sources = [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 2)];
        let frames = build_rounds(
            &TARGET,
            &sources,
            &[7000, 8000, 9000],
            &mut XorShift::new(3),
        )
        .unwrap();
        let seen: Vec<(IpAddr, u16)> = frames
            .chunks_exact(FRAME_LEN)
            .map(|f| {
                let p = parse_frame(LinkType::Ethernet, f).unwrap();
                (p.src, p.dst_port)
            })
            .collect();
        let (a, b) = (IpAddr::V4(sources[0]), IpAddr::V4(sources[1]));
        assert_eq!(
            seen,
            [
                (a, 7000),
                (b, 7000),
                (a, 8000),
                (b, 8000),
                (a, 9000),
                (b, 9000)
            ]
        );
    }

    #[test]
    fn sources_wrap_inside_the_range() {
        assert_eq!(source(0), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(source(131_071), Ipv4Addr::new(198, 19, 255, 255));
        assert_eq!(source(131_072), Ipv4Addr::new(198, 18, 0, 0));
    }

    #[test]
    fn mac_addresses_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_mac("0a:1B:02:ff:00:9\n").unwrap(),
            [0x0a, 0x1b, 0x02, 0xff, 0x00, 0x09]
        );
        let cases = [
            (
                "0a:1b:02:ff:00",
                "MAC address \"0a:1b:02:ff:00\" has fewer than 6 bytes",
            ),
            (
                "0a:1b:02:ff:00:01:02",
                "MAC address \"0a:1b:02:ff:00:01:02\" has more than 6 bytes",
            ),
            (
                "0a:1b:zz:ff:00:01",
                "MAC address \"0a:1b:zz:ff:00:01\": \"zz\" is not a hex byte",
            ),
            (
                "0a::02:ff:00:01",
                "MAC address \"0a::02:ff:00:01\": \"\" is not a hex byte",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse_mac(text).unwrap_err().to_string(), message, "{text}");
        }
    }
}
