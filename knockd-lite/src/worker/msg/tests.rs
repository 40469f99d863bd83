//! Golden bytes for every message, both ways, and what the decoders refuse.

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v4() -> IpAddr {
    "192.0.2.10".parse().unwrap()
}

fn v6() -> IpAddr {
    "2001:db8::2".parse().unwrap()
}

/// Each message, its bytes in hex, and back.
fn golden_up(message: Up, expected: &str) {
    let bytes = encode_up(&message);
    assert_eq!(hex(&bytes), expected, "{message:?}");
    assert_eq!(decode_up(&bytes), Ok(message));
}

fn golden_down(message: Down, expected: &str) {
    let bytes = encode_down(&message);
    assert_eq!(hex(&bytes), expected, "{message:?}");
    assert_eq!(decode_down(&bytes), Ok(message));
}

#[test]
fn worker_messages_have_pinned_bytes() {
    golden_up(
        Up::Ready {
            version: VERSION,
            generation: 7,
        },
        "01000100000007",
    );
    golden_up(
        Up::Completed {
            generation: 1,
            door: "ssh".into(),
            src: v4(),
            proof: Proof::Fixed,
        },
        "02000000010000000373736804c000020a00",
    );
    golden_up(
        Up::Completed {
            generation: 2,
            door: "otp".into(),
            src: v6(),
            proof: Proof::OneTime { line_no: 3 },
        },
        "0200000002000000036f7470062001\
         0db8000000000000000000000002010000000000000003",
    );
    golden_up(
        Up::Completed {
            generation: 3,
            door: "h".into(),
            src: v4(),
            proof: Proof::Hmac { counter: 0x0102 },
        },
        "02000000030000000168 04c000020a020000000000000102"
            .replace(' ', "")
            .as_str(),
    );
    golden_up(
        Up::Stage {
            src: v4(),
            door: "ssh".into(),
            stage: 2,
        },
        "0304c000020a0000000373736800000002",
    );
    golden_up(
        Up::Timeout {
            src: v4(),
            door: "ssh".into(),
            stage: 1,
        },
        "0404c000020a0000000373736800000001",
    );
    golden_up(
        Up::Replay {
            src: v4(),
            door: "ssh".into(),
            counter: 9,
        },
        "0504c000020a000000037373680000000000000009",
    );
    golden_up(
        Up::Packet {
            packet: KnockPacket {
                src: v4(),
                dst: "192.0.2.2".parse().unwrap(),
                proto: Proto::Tcp,
                dst_port: 7000,
                tcp_flags: TcpFlags::SYN,
            },
            vlan: Some(10),
        },
        "06060204c000020a04c00002021b5801000a",
    );
    golden_up(Up::Refused(ParseError::Fragment), "070c");
    // The filter's notes are gone: the monitor works them out from its own rules.
    assert_eq!(decode_up(&[8]), Err(DecodeError::UnknownTag(8)));
    assert_eq!(decode_up(&[9]), Err(DecodeError::UnknownTag(9)));
    golden_up(Up::FilterFailed("no".into()), "0a000000026e6f");
    golden_up(Up::CaptureFailed("x".into()), "0b0000000178");
    golden_up(Up::LinkDown, "0c");
    golden_up(Up::Failed("x".into()), "0d0000000178");
    golden_up(
        Up::Suppressed {
            knocks: 5,
            timeouts: 2,
        },
        "0e00000000000000050000000000000002",
    );
}

#[test]
fn monitor_messages_have_pinned_bytes() {
    golden_down(
        Down::Chunk {
            last: true,
            bytes: vec![0xab, 0xcd],
        },
        "650100000002abcd",
    );
    golden_down(
        Down::Capture {
            ifindex: 4,
            link: link_code(knock_core::wire::LinkType::Ethernet),
        },
        "660000000401",
    );
    golden_down(Down::DropCapture, "67");
    golden_down(
        Down::LocalAddrs(vec![v4(), v6()]),
        "680000000204c000020a0620010db8000000000000000000000002",
    );
    golden_down(
        Down::OneTimeBack {
            door: "otp".into(),
            line_no: 2,
            offset: 10,
            hits: "1,2".into(),
        },
        "69000000036f747000000002000000000000000a00000003312c32",
    );
    golden_down(Down::Shutdown, "6a");
    golden_down(
        Down::HmacWindow {
            door: "h".into(),
            center: 2,
            sequences: vec![(1, "7,8".into()), (2, "9:udp".into())],
        },
        "6c0000000168000000000000000200000002\
         000000000000000100000003372c38\
         000000000000000200000005393a756470",
    );
    golden_down(
        Down::Clock {
            mono_ms: 1000,
            wall_ms: 1_700_000_000_000,
        },
        "6b00000000000003e80000018bcfe56800",
    );
}

fn load() -> Load {
    Load {
        generation: 1,
        config_name: "k.conf".into(),
        config_text: b"[ssh]\nsequence = 7000\n".to_vec(),
        max_attempts: 20_000,
        first_step_memory: 8 << 20,
        seed: 42,
        only_ipv4: false,
        debug: true,
        local_addrs: vec![v4()],
        one_time: vec![("otp".into(), " 11\n".into())],
        hmac: vec![HmacLoad {
            door: "h".into(),
            used: vec![5],
        }],
    }
}

#[test]
fn a_load_has_pinned_bytes_and_travels_in_chunks() {
    let bytes = encode_load(&load());
    assert_eq!(
        hex(&bytes),
        "00000001\
         000000066b2e636f6e66\
         000000165b7373685d0a73657175656e6365203d20373030300a\
         0000000000004e20\
         0000000000800000\
         000000000000002a\
         0001\
         0000000104c000020a\
         00000001000000036f7470000000042031310a\
         00000001000000016800000001\
         0000000000000005"
    );
    assert_eq!(decode_load(&bytes), Ok(load()));
    let parts = chunks(&bytes);
    assert_eq!(parts.len(), 1);
    assert!(matches!(&parts[0], Down::Chunk { last: true, bytes: b } if *b == bytes));

    let mut big = load();
    big.config_text = vec![b'#'; CHUNK * 2 + 1];
    let bytes = encode_load(&big);
    let parts = chunks(&bytes);
    assert_eq!(parts.len(), 3);
    let mut joined = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let Down::Chunk { last, bytes } = p else {
            panic!("{p:?}");
        };
        assert_eq!(*last, i == 2);
        assert!(encode_down(p).len() <= MAX_MESSAGE);
        joined.extend_from_slice(bytes);
    }
    assert_eq!(decode_load(&joined), Ok(big));
    assert_eq!(
        chunks(&[]),
        [Down::Chunk {
            last: true,
            bytes: vec![]
        }]
    );
}

#[test]
fn a_load_never_prints_its_lists() {
    let shown = format!("{:?}", load());
    assert!(!shown.contains("11"), "{shown}");
}

#[test]
fn the_decoders_refuse_what_is_not_a_message() {
    let cases: [(&[u8], DecodeError); 12] = [
        (b"", DecodeError::Empty),
        (&[0xff], DecodeError::UnknownTag(0xff)),
        (&[READY, 0, 2, 0, 0, 0, 1], DecodeError::BadVersion(2)),
        (&[READY, 0, 1, 0], DecodeError::Truncated("generation")),
        (&[LINK_DOWN, 0], DecodeError::Trailing(1)),
        (&[COMPLETED, 0, 0, 0, 1, 0, 0, 0, 0], DecodeError::NoDoor),
        (
            &[COMPLETED, 0, 0, 0, 1, 0, 0, 0, 1, b'a', 5, 1, 2, 3, 4, 0],
            DecodeError::BadFamily(5),
        ),
        (
            &[COMPLETED, 0, 0, 0, 1, 0, 0, 0, 1, b'a', 4, 1, 2, 3, 4, 3],
            DecodeError::BadProof(3),
        ),
        (
            &[STAGE, 4, 1, 2, 3, 4, 0, 0, 0, 1, 0xff, 0, 0, 0, 1],
            DecodeError::NotUtf8("door"),
        ),
        (&[REFUSED, 18], DecodeError::BadReason(18)),
        (
            &[PACKET, 17, 2, 4, 1, 2, 3, 4, 4, 1, 2, 3, 4, 0, 1, 0],
            DecodeError::BadFlag(2),
        ),
        (
            &[FILTER_FAILED, 0, 0, 0x10, 1],
            DecodeError::Oversized("error"),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode_up(bytes), Err(expected), "{bytes:?}");
    }
    assert_eq!(
        decode_up(&vec![LINK_DOWN; MAX_MESSAGE + 1]),
        Err(DecodeError::TooLong(MAX_MESSAGE + 1))
    );
    // A message from the monitor is not one from the worker, and the other way round.
    assert_eq!(
        decode_up(&encode_down(&Down::Shutdown)),
        Err(DecodeError::UnknownTag(SHUTDOWN))
    );
    assert_eq!(
        decode_down(&encode_up(&Up::LinkDown)),
        Err(DecodeError::UnknownTag(LINK_DOWN))
    );
    assert_eq!(
        decode_down(&[CAPTURE, 0, 0, 0, 1, 9]),
        Err(DecodeError::BadFlag(9))
    );
    assert_eq!(
        decode_down(&[LOCAL_ADDRS, 0, 0, 0x10, 1]),
        Err(DecodeError::Oversized("address list"))
    );
    // A count the bytes left cannot hold allocates nothing.
    let mut huge = encode_load(&load());
    let at = huge.len() - (4 + 4 + 1 + 4 + 8);
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode_load(&huge),
        Err(DecodeError::Truncated("HMAC count"))
    );
}

#[test]
fn long_texts_are_cut_at_a_character_boundary() {
    let text = "é".repeat(MAX_TEXT);
    let Up::CaptureFailed(back) = decode_up(&encode_up(&Up::CaptureFailed(text))).unwrap() else {
        panic!();
    };
    assert_eq!(back.len(), MAX_TEXT);
    assert!(back.chars().all(|c| c == 'é'));
}
