//! Lowercase hex, the encoding of the ids and flags in a `traceparent`.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The value of one lowercase hex digit (`HEXDIGLC`); uppercase is not one.
fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` lowercase hex digits.
pub(super) fn decode<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Appends `bytes` as lowercase hex.
pub(super) fn encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// `bytes` as lowercase hex.
pub(super) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    encode_into(bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case() {
        assert_eq!(decode::<2>(b"00ff"), Some([0, 0xff]));
        assert_eq!(decode::<2>(b"00FF"), None);
        assert_eq!(decode::<2>(b"00f"), None);
        assert_eq!(decode::<1>(b"g0"), None);
        assert_eq!(encode(&[0x0a, 0xf7, 0x65]), "0af765");
    }
}
