//! What one request carries and what its response echoes: the contract
//! between the client process and the gateway.
//!
//! Every request has a unique id, a unique user (or, one request in four,
//! none at all) and a `traceparent` with a unique trace id, all derived
//! from `--seed` and the id. The server sets its request-scoped values from
//! these headers and answers with what it *saw* in its context at the end
//! ([`Echo`]); the client compares that with what it sent.

use std::fmt::Write as _;

use http::HeaderMap;

use crate::rng::mix;

/// The request's id (decimal).
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// The authenticated user (`user-<n>`); absent from one request in four.
pub(crate) const USER: &str = "x-user";
/// The W3C trace header.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The gateway's one route.
pub(crate) const PATH: &str = "/api";

/// The identity of one request: what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ident {
    /// Unique per request.
    pub id: u64,
    /// Unique per request, or `None` (no `x-user` header).
    pub user: Option<u64>,
    /// The trace id of its `traceparent`: unique per request.
    pub trace: [u8; 16],
}

impl Ident {
    /// The identity of request `id` of a run with `seed`.
    pub(crate) fn new(seed: u64, id: u64) -> Ident {
        let h = mix(seed ^ mix(id));
        let user = if h % 4 == 0 {
            None
        } else {
            // Unique: a bijection of the id.
            Some(mix(id ^ 0x05E4_0000_0000_0000))
        };
        let mut trace = [0; 16];
        // The high half from the seed (never all zero: the low half is the
        // id, which starts at 1), the low half the id itself, so a trace id
        // seen in the wrong place names the request it belongs to.
        trace[..8].copy_from_slice(&mix(seed ^ 0x7ACE).to_be_bytes());
        trace[8..].copy_from_slice(&id.to_be_bytes());
        Ident { id, user, trace }
    }

    /// The `traceparent` header: version 00, this trace id, a parent id
    /// derived from the id, sampled.
    pub(crate) fn traceparent(&self) -> String {
        format!(
            "00-{}-{:016x}-01",
            hex(&self.trace),
            mix(self.id ^ 0x9A7E) | 1
        )
    }

    /// The header lines of a request to [`PATH`] (without the request line
    /// and the final blank line), for clients writing raw bytes.
    pub(crate) fn header_lines(&self) -> String {
        let mut s = format!(
            "host: stress\r\n{REQUEST_ID}: {}\r\n{TRACEPARENT}: {}\r\n",
            self.id,
            self.traceparent()
        );
        if let Some(user) = self.user {
            let _ = write!(s, "{USER}: user-{user}\r\n");
        }
        s
    }

    /// Reads the identity back from a request's headers (the server's
    /// middleware). An error names what is missing or malformed.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Ident, String> {
        let text = |name: &str| -> Result<Option<&str>, String> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => v
                    .to_str()
                    .map(Some)
                    .map_err(|_| format!("{name} is not ASCII")),
            }
        };
        let id = text(REQUEST_ID)?
            .ok_or_else(|| format!("no {REQUEST_ID}"))?
            .parse()
            .map_err(|_| format!("bad {REQUEST_ID}"))?;
        let user = match text(USER)? {
            None => None,
            Some(u) => Some(
                u.strip_prefix("user-")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("bad {USER}"))?,
            ),
        };
        let traceparent = text(TRACEPARENT)?.ok_or_else(|| format!("no {TRACEPARENT}"))?;
        let trace = baton::trace::TraceContext::parse(traceparent, None)
            .map_err(|e| format!("bad {TRACEPARENT}: {e}"))?
            .trace_id();
        Ok(Ident { id, user, trace })
    }
}

/// What the gateway saw in its context when it answered, as its response
/// body: `id=<n|-> user=<n|-> trace=<32 hex|-> hash=<16 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    /// The request id the handler read from its context.
    pub id: Option<u64>,
    /// The user it read.
    pub user: Option<u64>,
    /// The trace id of `baton::trace::CURRENT`.
    pub trace: Option<[u8; 16]>,
    /// [`work_hash`] as computed by its offloaded job.
    pub hash: u64,
}

impl Echo {
    /// The response body.
    pub(crate) fn encode(&self) -> String {
        let num = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        format!(
            "id={} user={} trace={} hash={:016x}",
            num(self.id),
            num(self.user),
            self.trace.map_or_else(|| "-".to_owned(), |t| hex(&t)),
            self.hash
        )
    }

    /// Parses a response body; `None` if it is not one.
    pub(crate) fn parse(body: &str) -> Option<Echo> {
        let mut fields = body.split(' ');
        let mut field = |key: &str| -> Option<Option<&str>> {
            let value = fields.next()?.strip_prefix(key)?.strip_prefix('=')?;
            Some((value != "-").then_some(value))
        };
        let num = |v: Option<&str>| -> Option<Option<u64>> {
            match v {
                None => Some(None),
                Some(v) => v.parse().ok().map(Some),
            }
        };
        let id = num(field("id")?)?;
        let user = num(field("user")?)?;
        let trace = match field("trace")? {
            None => None,
            Some(t) => Some(unhex16(t)?),
        };
        let hash = u64::from_str_radix(field("hash")??, 16).ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(Echo {
            id,
            user,
            trace,
            hash,
        })
    }
}

/// The gateway's offloaded work for a request: a hash over a few KiB
/// derived from its identity (the client recomputes it).
pub(crate) fn work_hash(ident: &Ident) -> u64 {
    // FNV-1a over 4 KiB of bytes generated from the identity.
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut state = ident.id ^ ident.user.unwrap_or(0);
    for _ in 0..512 {
        state = mix(state);
        for byte in state.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    hash
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for id in 1..200 {
            let ident = Ident::new(7, id);
            let raw = ident.header_lines();
            let mut headers = HeaderMap::new();
            for line in raw.split("\r\n").filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(": ").unwrap();
                headers.insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            assert_eq!(Ident::from_headers(&headers), Ok(ident));
        }
    }

    #[test]
    fn about_one_in_four_has_no_user_and_ids_are_unique() {
        let idents: Vec<_> = (1..=4000).map(|id| Ident::new(47728, id)).collect();
        let anonymous = idents.iter().filter(|i| i.user.is_none()).count();
        assert!((800..1200).contains(&anonymous), "{anonymous}");
        let mut users: Vec<_> = idents.iter().filter_map(|i| i.user).collect();
        users.sort_unstable();
        users.dedup();
        assert_eq!(users.len(), 4000 - anonymous);
        let mut traces: Vec<_> = idents.iter().map(|i| i.trace).collect();
        traces.sort_unstable();
        traces.dedup();
        assert_eq!(traces.len(), 4000);
    }

    #[test]
    fn echo_round_trip() {
        let ident = Ident::new(1, 42);
        for echo in [
            Echo {
                id: Some(42),
                user: ident.user,
                trace: Some(ident.trace),
                hash: work_hash(&ident),
            },
            Echo {
                id: None,
                user: None,
                trace: None,
                hash: 0,
            },
        ] {
            assert_eq!(Echo::parse(&echo.encode()), Some(echo));
        }
        assert_eq!(Echo::parse("id=1 user=- trace=- hash=0 extra"), None);
        assert_eq!(Echo::parse("internal server error\n"), None);
    }
}
