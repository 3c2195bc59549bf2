//! The gateway's observations: what a handler, its offloaded job, its
//! child and its log lines read from their context, compared with what the
//! request's headers said.
//!
//! The request id and the user live where `--mode` puts them (baton
//! `ContextVar`s, or the baseline's plain thread-locals, through
//! [`Mode`]); the trace id is always `baton::trace::CURRENT`, which `serve`
//! extracts from the `traceparent` into each request's own context.

use std::sync::atomic::Ordering::Relaxed;

use baton::trace::CURRENT;

use crate::checks::{Stats, Who};
use crate::http::protocol::{Ident, hex};
use crate::vars::Mode;

/// The request-scoped values as read at one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The request id.
    pub id: Option<u64>,
    /// The user.
    pub user: Option<u64>,
    /// The trace id of `CURRENT`.
    pub trace: Option<[u8; 16]>,
}

impl Seen {
    /// Reads the values now, from where `mode` keeps them.
    pub(crate) fn now(mode: Mode) -> Seen {
        let vars = mode.read();
        Seen {
            id: vars.id,
            user: vars.user,
            trace: CURRENT.with(|t| t.map(|t| t.trace_id())),
        }
    }
}

/// Counts observations locally and adds them to [`Stats`] when dropped (so
/// a cancelled handler's observations still count).
pub(crate) struct HttpChecker {
    stats: &'static Stats,
    who: Who,
    observed: u64,
}

impl HttpChecker {
    /// A checker for `who`'s observations.
    pub(crate) fn new(stats: &'static Stats, who: Who) -> HttpChecker {
        HttpChecker {
            stats,
            who,
            observed: 0,
        }
    }

    /// Three observations: id, user and trace must be the request's.
    pub(crate) fn seen(&mut self, site: &'static str, expected: &Ident, seen: Seen) {
        self.id(site, "request_id", Some(expected.id), seen.id);
        self.id(site, "user", expected.user, seen.user);
        self.trace(site, expected, seen.trace);
    }

    /// At a request's start, before its middleware ran: no request id and
    /// no user yet (nothing of an earlier request on the connection), and
    /// the trace already extracted from its own headers.
    pub(crate) fn fresh(&mut self, site: &'static str, expected: &Ident, seen: Seen) {
        self.id(site, "request_id", None, seen.id);
        self.id(site, "user", None, seen.user);
        self.trace(site, expected, seen.trace);
    }

    fn id(&mut self, site: &'static str, name: &str, expected: Option<u64>, got: Option<u64>) {
        self.observed += 1;
        if expected != got {
            let who = self.who;
            self.stats.leak(site, || {
                format!(
                    "{who}: {site}: {name} expected {} but saw {}",
                    show(expected),
                    show(got)
                )
            });
        }
    }

    fn trace(&mut self, site: &'static str, expected: &Ident, got: Option<[u8; 16]>) {
        self.observed += 1;
        if got != Some(expected.trace) {
            let who = self.who;
            self.stats.leak(site, || {
                format!(
                    "{who}: {site}: trace id expected {} but saw {}",
                    hex(&expected.trace),
                    got.map_or_else(|| "(unset)".to_owned(), |t| hex(&t))
                )
            });
        }
    }
}

impl Drop for HttpChecker {
    fn drop(&mut self) {
        self.stats.observations.fetch_add(self.observed, Relaxed);
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), |v| v.to_string())
}
