//! Percent-encoding of baggage values (RFC 3986 section 2.1, as the W3C
//! Baggage specification applies it).

/// `baggage-octet`: the US-ASCII characters a baggage value may carry as
/// they are — no controls, whitespace, `"`, `,`, `;` or `\`.
pub(super) fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Appends `value`, percent-encoding every byte outside `baggage-octet` and
/// `%` itself (the two the specification requires), in uppercase hex.
pub(super) fn encode_into(value: &str, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }
}

/// Decodes `%XX` sequences (either case of hex). Decoded bytes that are not
/// UTF-8 become U+FFFD, as the specification requires. A `%` not followed by
/// two hex digits is not an escape and stays as it is.
pub(super) fn decode(value: &str) -> String {
    if !value.contains('%') {
        return value.to_owned();
    }
    let b = value.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(hi), Some(lo)) = (hex_digit(b.get(i + 1)), hex_digit(b.get(i + 2))) {
                bytes.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_digit(b: Option<&u8>) -> Option<u8> {
    char::from(*b?).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &str) -> String {
        let mut out = String::new();
        encode_into(value, &mut out);
        out
    }

    #[test]
    fn encodes_only_what_must_be() {
        assert_eq!(encode("DF 28"), "DF%2028");
        assert_eq!(encode("Amélie"), "Am%C3%A9lie");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("a,b;c\\d\"e\tf"), "a%2Cb%3Bc%5Cd%22e%09f");
        assert_eq!(encode("a=b/c!~"), "a=b/c!~");
    }

    #[test]
    fn decodes() {
        assert_eq!(decode("DF%2028"), "DF 28");
        assert_eq!(decode("Am%c3%a9lie"), "Amélie");
        assert_eq!(decode("50%"), "50%");
        assert_eq!(decode("50%zz"), "50%zz");
        assert_eq!(decode("%ff%41"), "\u{fffd}A");
    }
}
