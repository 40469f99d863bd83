//! Base64 encoding (RFC 4648, standard alphabet, with padding) for printing new secrets.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes`: every 3 bytes become 4 characters, and a final 1 or 2 bytes are padded
/// with `==` or `=`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[(n >> shift & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn rfc4648_section_10_vectors() {
        let table = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in table {
            assert_eq!(encode(input.as_bytes()), want, "input {input:?}");
        }
    }

    #[test]
    fn every_sextet_and_the_last_two_characters() {
        // 0x00 0x10 0x83 0x10 0x51 0x87 ... spells the alphabet in order: 48 bytes, 64 chars.
        let mut bits = Vec::new();
        for i in 0u32..64 {
            bits.extend((0..6).rev().map(|k| (i >> k) & 1));
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |acc, &b| acc << 1 | b as u8))
            .collect();
        assert_eq!(encode(&bytes).as_bytes(), super::ALPHABET);
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encode(&[0xff; 3]), "////");
        assert_eq!(encode(&[0; 32]).len(), 44);
    }
}
