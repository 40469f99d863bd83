//! The stable driver's input generator: a seeded pseudo-random generator and a small
//! mutator in the manner of libFuzzer's (bit flips, byte changes, cuts, inserts, dictionary
//! words, numbers, whole-line edits, splices), with no coverage feedback.

/// xorshift64*: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's one fixed point.
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that mean something in most of the formats (separators, comment and section
/// marks, line ends) and at the edges of integer types.
const SPECIAL_BYTES: &[u8] = b"\n\r\t #=:,+![]<>/\\\"'.-0\x00\x7f\x80\xff";

/// Numbers at the edges of what the parsers accept: ports, u16, u32, u64, and beyond.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "00",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "0.5",
    "0.001",
    "0.0001",
    "1e3",
    "+1",
];

/// Mutates inputs for one target.
pub struct Mutator {
    dict: Vec<Vec<u8>>,
    max_len: usize,
}

impl Mutator {
    /// `dict` holds the target's words; inputs never grow past `max_len` bytes.
    pub fn new(dict: Vec<Vec<u8>>, max_len: usize) -> Mutator {
        Mutator { dict, max_len }
    }

    /// Applies one to four mutations to `input`; `pool` supplies the other half of splices.
    pub fn mutate(&self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        for _ in 0..1 + rng.below(4) {
            self.mutate_once(rng, input, pool);
        }
        input.truncate(self.max_len);
    }

    fn mutate_once(&self, rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        let len = input.len();
        match rng.below(14) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = *rng.pick(SPECIAL_BYTES);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next_u64() as u8;
            }
            3 if len > 0 => {
                // Cut a short range.
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                input.drain(at..at + n);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        if rng.chance(50) {
                            *rng.pick(SPECIAL_BYTES)
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect();
                input.splice(at..at, bytes);
            }
            5 | 6 if !self.dict.is_empty() => {
                let word = rng.pick(&self.dict).clone();
                let at = rng.below(len + 1);
                if rng.chance(50) {
                    input.splice(at..at, word);
                } else {
                    let end = (at + word.len()).min(len);
                    input.splice(at..end, word);
                }
            }
            7 => self.number(rng, input),
            8 if len > 0 => {
                // Copy a range of the input elsewhere in it (a repeated field or header).
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(64));
                let chunk = input[from..from + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            9 if !pool.is_empty() => {
                // Crossover: a prefix of this input and a suffix of another.
                let other = rng.pick(pool);
                let keep = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(keep);
                input.extend_from_slice(&other[from..]);
            }
            10 | 11 => self.line_edit(rng, input),
            12 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                // Repeat one byte a few times (runs of spaces, zeros, separators), now and
                // then thousands of times: a long name or value, the 30 MB line in small.
                let at = rng.below(len + 1);
                let byte = input.get(at).copied().unwrap_or(b' ');
                let n = if rng.chance(5) {
                    64 + rng.below(3000)
                } else {
                    1 + rng.below(32)
                };
                input.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }

    /// Replaces a run of ASCII digits (or inserts a number) with an edge-case number.
    fn number(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let number = rng.pick(NUMBERS).as_bytes().to_vec();
        let digits: Vec<usize> = (0..input.len())
            .filter(|&i| input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit()))
            .collect();
        if digits.is_empty() {
            let at = rng.below(input.len() + 1);
            input.splice(at..at, number);
            return;
        }
        let start = *rng.pick(&digits);
        let end = (start..input.len())
            .find(|&i| !input[i].is_ascii_digit())
            .unwrap_or(input.len());
        input.splice(start..end, number);
    }

    /// Deletes, repeats or swaps whole lines: most of the formats are line-based.
    fn line_edit(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        let mut lines: Vec<Vec<u8>> = input
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        if lines.is_empty() {
            return;
        }
        let a = rng.below(lines.len());
        let b = rng.below(lines.len());
        match rng.below(3) {
            0 => {
                lines.remove(a);
            }
            1 => {
                let mut line = lines[a].clone();
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                lines.insert(b, line);
            }
            _ => lines.swap(a, b),
        }
        *input = lines.concat();
    }
}

/// Reads a dictionary in libFuzzer's format (`name="value"` or `"value"` a line, with `\\`,
/// `\"` and `\xNN` escapes; `#` comments), the file cargo-fuzz is given with `-dict=`.
pub fn parse_dict(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut words = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let start = line.find('"').ok_or_else(|| bad("no opening quote"))?;
        let body = line[start + 1..]
            .strip_suffix('"')
            .ok_or_else(|| bad("no closing quote"))?;
        let mut word = Vec::new();
        let mut bytes = body.bytes();
        while let Some(b) = bytes.next() {
            if b != b'\\' {
                word.push(b);
                continue;
            }
            match bytes.next() {
                Some(b'\\') => word.push(b'\\'),
                Some(b'"') => word.push(b'"'),
                Some(b'x') => {
                    let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                    let hex = std::str::from_utf8(&hex).map_err(|_| bad("bad \\x escape"))?;
                    word.push(u8::from_str_radix(hex, 16).map_err(|_| bad("bad \\x escape"))?);
                }
                _ => return Err(bad("unknown escape")),
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_read_libfuzzer_escapes() {
        let words = parse_dict("# c\nkw1=\"Seq\\x5fTimeout\"\n\"a\\\\b\\\"\"\n\n").unwrap();
        assert_eq!(words, [b"Seq_Timeout".to_vec(), b"a\\b\"".to_vec()]);
        assert_eq!(parse_dict("x\n").unwrap_err(), "line 1: no opening quote");
        assert_eq!(parse_dict("\"\\q\"").unwrap_err(), "line 1: unknown escape");
    }

    #[test]
    fn mutation_is_deterministic_and_bounded() {
        let m = Mutator::new(vec![b"[options]".to_vec()], 64);
        let run = || {
            let mut rng = Rng::new(7);
            let mut input = b"[door]\nsequence = 1,2\n".to_vec();
            let pool = vec![b"[x]\n".to_vec()];
            let mut seen = Vec::new();
            for _ in 0..500 {
                m.mutate(&mut rng, &mut input, &pool);
                assert!(input.len() <= 64);
                seen.push(input.clone());
            }
            seen
        };
        let first = run();
        assert_eq!(first, run());
        // It goes somewhere: many distinct inputs.
        let mut distinct = first.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 400, "{}", distinct.len());
    }
}
