//! [`TraceError`]: what was wrong with a `traceparent` or `baggage` value.

use std::fmt;

/// Why a `traceparent` or `baggage` header value was rejected.
///
/// Returned by [`TraceContext::parse`](super::TraceContext::parse) and
/// [`Baggage::parse`](super::Baggage::parse). A `tracestate` never causes an
/// error: an invalid one is dropped and the `traceparent` is kept, as the
/// W3C Trace Context specification requires.
///
/// ```
/// use baton_http::trace::{TraceContext, TraceError};
///
/// let err = TraceContext::parse("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None)
///     .unwrap_err();
/// assert_eq!(err, TraceError::ForbiddenVersion);
/// assert_eq!(err.to_string(), "traceparent version ff is forbidden");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TraceError {
    /// The `traceparent` does not start with a version: two lowercase hex
    /// digits followed by `-`.
    Version,
    /// The `traceparent` version is `ff`, which the specification forbids.
    ForbiddenVersion,
    /// The `traceparent` is shorter than the 55 characters of version `00`.
    TooShort,
    /// A version `00` `traceparent` goes on after its trace-flags (only a
    /// higher version may carry more fields).
    TrailingData,
    /// The trace-id is not 32 lowercase hex digits followed by `-`.
    TraceId,
    /// The trace-id is all zeroes.
    ZeroTraceId,
    /// The parent-id is not 16 lowercase hex digits followed by `-`.
    ParentId,
    /// The parent-id is all zeroes.
    ZeroParentId,
    /// The trace-flags are not 2 lowercase hex digits at the end of the value
    /// (or, in a higher version, followed by `-`).
    Flags,
    /// A baggage list-member has no `=` between its key and its value.
    BaggageMember,
    /// A baggage key (of a list-member or of a property) is not an RFC 7230
    /// `token`.
    BaggageKey,
    /// A baggage value (of a list-member or of a property) has a character
    /// outside `baggage-octet` (a space, `"`, `,`, `;`, `\`, a control or a
    /// non-ASCII character): such characters must be percent-encoded.
    BaggageValue,
    /// A baggage property is empty (`key=value;` or `;;`).
    BaggageProperty,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceError::Version => {
                "traceparent does not start with a version of two lowercase hex digits and '-'"
            }
            TraceError::ForbiddenVersion => "traceparent version ff is forbidden",
            TraceError::TooShort => "traceparent is shorter than 55 characters",
            TraceError::TrailingData => "version 00 traceparent has data after its trace-flags",
            TraceError::TraceId => {
                "traceparent trace-id is not 32 lowercase hex digits followed by '-'"
            }
            TraceError::ZeroTraceId => "traceparent trace-id is all zeroes",
            TraceError::ParentId => {
                "traceparent parent-id is not 16 lowercase hex digits followed by '-'"
            }
            TraceError::ZeroParentId => "traceparent parent-id is all zeroes",
            TraceError::Flags => "traceparent trace-flags are not 2 lowercase hex digits",
            TraceError::BaggageMember => "baggage list-member has no '=' after its key",
            TraceError::BaggageKey => "baggage key is not an RFC 7230 token",
            TraceError::BaggageValue => {
                "baggage value has a character that must be percent-encoded"
            }
            TraceError::BaggageProperty => "baggage property is empty",
        })
    }
}

impl std::error::Error for TraceError {}
