//! The field layout both of knockd-lite's process channels use (the stop keeper's and the
//! sandboxed worker's): fixed-width integers big-endian, byte strings as a 4-byte length and
//! the bytes, an address as its family (4 or 6) and its octets; every read checks the length
//! left before it takes anything, so decoding never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a field could not be read; each channel's `DecodeError` takes these in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// The message ended inside this field.
    Truncated(&'static str),
    /// A string or list longer than its field allows.
    Oversized(&'static str),
    NotUtf8(&'static str),
    /// A flag byte other than 0 or 1.
    BadFlag(u8),
    /// An address family other than 4 or 6.
    BadFamily(u8),
    /// Bytes left after the last field.
    Trailing(usize),
}

/// Reads fields off the front of a message.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], FieldError> {
        if self.rest.len() < n {
            return Err(FieldError::Truncated(field));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], FieldError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, FieldError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, FieldError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, FieldError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, FieldError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, FieldError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(FieldError::BadFlag(other)),
        }
    }

    /// A count of items that each take at least `min` bytes: more than the bytes left could
    /// hold is refused before anything is allocated for them.
    pub(crate) fn count(&mut self, field: &'static str, min: usize) -> Result<usize, FieldError> {
        let n = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        if n.saturating_mul(min) > self.rest.len() {
            return Err(FieldError::Truncated(field));
        }
        Ok(n)
    }

    /// A byte string of at most `max` bytes.
    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], FieldError> {
        let n = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        if n > max {
            return Err(FieldError::Oversized(field));
        }
        self.take(n, field)
    }

    /// A UTF-8 string of at most `max` bytes.
    pub(crate) fn text(&mut self, field: &'static str, max: usize) -> Result<String, FieldError> {
        let bytes = self.bytes(field, max)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| FieldError::NotUtf8(field))
    }

    pub(crate) fn addr(&mut self, field: &'static str) -> Result<IpAddr, FieldError> {
        match self.u8(field)? {
            4 => Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>(field)?))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>(field)?))),
            other => Err(FieldError::BadFamily(other)),
        }
    }

    /// Every byte must belong to a field.
    pub(crate) fn finish(&self) -> Result<(), FieldError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(FieldError::Trailing(n)),
        }
    }
}

/// A length prefix (a count or a byte string's length).
pub(crate) fn put_len(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

pub(crate) fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    put_len(b, bytes.len());
    b.extend_from_slice(bytes);
}

pub(crate) fn put_str(b: &mut Vec<u8>, s: &str) {
    put_bytes(b, s.as_bytes());
}

pub(crate) fn put_addr(b: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            b.push(4);
            b.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b.push(6);
            b.extend_from_slice(&a.octets());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_and_every_cut_is_named() {
        let mut b = vec![1];
        b.extend_from_slice(&0x0203u16.to_be_bytes());
        put_str(&mut b, "door");
        put_addr(&mut b, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        put_addr(&mut b, "2001:db8::1".parse().unwrap());
        let read = |bytes: &[u8]| -> Result<(bool, u16, String, IpAddr, IpAddr), FieldError> {
            let mut r = Reader::new(bytes);
            let out = (
                r.flag("flag")?,
                r.u16("number")?,
                r.text("name", 8)?,
                r.addr("v4")?,
                r.addr("v6")?,
            );
            r.finish()?;
            Ok(out)
        };
        let (flag, n, name, v4, v6) = read(&b).unwrap();
        assert!(flag);
        assert_eq!((n, name.as_str()), (0x0203, "door"));
        assert_eq!(v4.to_string(), "192.0.2.1");
        assert_eq!(v6.to_string(), "2001:db8::1");
        for cut in 0..b.len() {
            assert!(
                matches!(read(&b[..cut]), Err(FieldError::Truncated(_))),
                "cut {cut}"
            );
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(read(&longer), Err(FieldError::Trailing(1)));
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(Reader::new(&[2]).flag("f"), Err(FieldError::BadFlag(2)));
        assert_eq!(Reader::new(&[5]).addr("a"), Err(FieldError::BadFamily(5)));
        let mut b = Vec::new();
        put_str(&mut b, "long");
        assert_eq!(
            Reader::new(&b).text("t", 3),
            Err(FieldError::Oversized("t"))
        );
        let mut b = Vec::new();
        put_bytes(&mut b, &[0xff]);
        assert_eq!(Reader::new(&b).text("t", 3), Err(FieldError::NotUtf8("t")));
        // A count no bytes left could hold is refused before anything is allocated.
        assert_eq!(
            Reader::new(&u32::MAX.to_be_bytes()).count("n", 1),
            Err(FieldError::Truncated("n"))
        );
    }
}
