//! The `tracestate` header value: validation and its canonical form.
//!
//! The key grammar is the current specification's:
//!
//! ```text
//! key      = ( lcalpha / DIGIT ) 0*255( keychar )
//! keychar  = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
//! value    = 0*255( chr ) nblk-chr
//! nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
//! chr      = %x20 / nblk-chr
//! ```

use super::traceparent::trim_ows;

/// The most list-members a `tracestate` may have.
pub(super) const MAX_MEMBERS: usize = 32;
/// The longest key and the longest value, in characters.
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;

/// Validates a `tracestate` header value (several headers already combined
/// with `,`) and returns its canonical form: the list-members joined by `,`
/// without optional whitespace, empty list-members left out. An empty result
/// means an empty `tracestate`.
///
/// `None` when the value is invalid as a whole — a malformed list-member, or
/// more than [`MAX_MEMBERS`] list-members — so that the caller drops it.
///
/// Of list-members with the same key only the first (left-most, the most
/// recent) is kept: the specification lets a vendor either pass duplicates
/// on or drop them, and the W3C validation suite accepts both.
pub(super) fn canonical(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut keys: Vec<&str> = Vec::new();
    let mut members = 0;
    for member in value.split(',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !is_key(key) || !is_value(value) {
            return None;
        }
        members += 1;
        if members > MAX_MEMBERS {
            return None;
        }
        if keys.contains(&key) {
            continue;
        }
        keys.push(key);
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    Some(out)
}

fn is_key(key: &str) -> bool {
    let b = key.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= MAX_KEY_LEN
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest
                    .iter()
                    .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(&c))
        }
        None => false,
    }
}

fn is_value(value: &str) -> bool {
    let b = value.as_bytes();
    let nblk = |c: u8| matches!(c, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match b.last() {
        Some(&last) => {
            b.len() <= MAX_VALUE_LEN && nblk(last) && b.iter().all(|&c| c == b' ' || nblk(c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_key("a"));
        assert!(is_key("0a"));
        assert!(is_key("a@b"));
        assert!(is_key("a@"));
        assert!(is_key(&"z".repeat(256)));
        assert!(!is_key(&"z".repeat(257)));
        assert!(!is_key(""));
        assert!(!is_key("@a"));
        assert!(!is_key("_a"));
        assert!(!is_key("A"));
        assert!(!is_key("a.b"));
        assert!(!is_key("a b"));
    }

    #[test]
    fn values() {
        assert!(is_value("1"));
        assert!(is_value(" 1"));
        assert!(is_value(&"v".repeat(256)));
        assert!(!is_value(&"v".repeat(257)));
        assert!(!is_value(""));
        assert!(!is_value("1 "));
        assert!(!is_value("a,b"));
        assert!(!is_value("a=b"));
        assert!(!is_value("a\tb"));
        assert!(!is_value("é"));
    }
}
