//! The `traceparent` header value: the processing model of W3C Trace Context
//! (version `00`, and higher versions read as far as version `00` goes).

use super::error::TraceError;
use super::hex;

/// The trace-flags bit that says the caller may have recorded trace data.
pub(super) const SAMPLED: u8 = 0x01;
/// The trace-flags bit that says the trace-id's right-most 7 bytes are random
/// (Trace Context Level 2).
pub(super) const RANDOM: u8 = 0x02;
/// The flags this implementation knows; the others are set to zero, as the
/// specification requires.
pub(super) const KNOWN_FLAGS: u8 = SAMPLED | RANDOM;

/// The length of a version `00` value: `vv-<32>-<16>-ff`.
pub(super) const LEN: usize = 55;

/// The fields of a valid `traceparent`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Traceparent {
    pub(super) trace_id: [u8; 16],
    pub(super) parent_id: [u8; 8],
    /// Only the known flags.
    pub(super) flags: u8,
}

/// Optional whitespace (`OWS`: spaces and horizontal tabs) around a value.
pub(super) fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Parses a `traceparent` header value, ignoring `OWS` around it.
///
/// Version `00` must be exactly `00-<trace-id>-<parent-id>-<flags>`. A higher
/// version (other than the forbidden `ff`) is read as the specification's
/// versioning rules say: at least 55 characters, the first four fields in
/// version `00`'s format, and after the flags either the end or a `-` that
/// starts fields this implementation does not know and ignores.
pub(super) fn parse(value: &str) -> Result<Traceparent, TraceError> {
    let b = trim_ows(value).as_bytes();
    let version = match b {
        [v0, v1, b'-', ..] => hex::decode::<1>(&[*v0, *v1]).ok_or(TraceError::Version)?[0],
        _ => return Err(TraceError::Version),
    };
    if version == 0xff {
        return Err(TraceError::ForbiddenVersion);
    }
    if b.len() < LEN {
        return Err(TraceError::TooShort);
    }
    let trace_id = field::<16>(&b[3..35], b[35]).ok_or(TraceError::TraceId)?;
    let parent_id = field::<8>(&b[36..52], b[52]).ok_or(TraceError::ParentId)?;
    let flags = hex::decode::<1>(&b[53..55]).ok_or(TraceError::Flags)?[0];
    if b.len() > LEN {
        if version == 0 {
            return Err(TraceError::TrailingData);
        }
        if b[LEN] != b'-' {
            return Err(TraceError::Flags);
        }
    }
    if trace_id == [0; 16] {
        return Err(TraceError::ZeroTraceId);
    }
    if parent_id == [0; 8] {
        return Err(TraceError::ZeroParentId);
    }
    Ok(Traceparent {
        trace_id,
        parent_id,
        flags: flags & KNOWN_FLAGS,
    })
}

/// A hex field followed by the `-` delimiter.
fn field<const N: usize>(hex: &[u8], delimiter: u8) -> Option<[u8; N]> {
    if delimiter != b'-' {
        return None;
    }
    hex::decode::<N>(hex)
}

/// Formats a version `00` value.
pub(super) fn format(trace_id: &[u8; 16], parent_id: &[u8; 8], flags: u8) -> String {
    let mut out = String::with_capacity(LEN);
    out.push_str("00-");
    hex::encode_into(trace_id, &mut out);
    out.push('-');
    hex::encode_into(parent_id, &mut out);
    out.push('-');
    hex::encode_into(&[flags], &mut out);
    out
}
