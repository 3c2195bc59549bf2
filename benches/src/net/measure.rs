//! What a benchmark process measures about itself: CPU time (`getrusage`),
//! resident set and thread count (`/proc/self/status`), and the open-file
//! limit it raises before holding thousands of sockets. Linux only.

use std::io;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::time::TimeValLike;
use serde_json::{Value, json};

/// User + system CPU time of this process so far, in seconds (all threads;
/// microsecond resolution).
pub fn cpu_seconds() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage(RUSAGE_SELF)");
    (u.user_time().num_microseconds() + u.system_time().num_microseconds()) as f64 / 1e6
}

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The resident set in bytes (`VmRSS` in `/proc/self/status`); 0 where it
/// cannot be read.
pub fn rss_bytes() -> u64 {
    status_field("VmRSS:").map_or(0, |kb| kb * 1024)
}

/// The number of threads of this process (`Threads` in
/// `/proc/self/status`); 0 where it cannot be read.
pub fn threads() -> u64 {
    status_field("Threads:").unwrap_or(0)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// One reading of a server process, taken when the orchestrator asks
/// (`mark` on the server's stdin) and printed as a JSON line.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// [`cpu_seconds`].
    pub cpu_s: f64,
    /// [`rss_bytes`].
    pub rss_bytes: u64,
    /// [`threads`].
    pub threads: u64,
    /// Connections accepted so far.
    pub accepted: u64,
}

impl Snapshot {
    /// Reads this process now; `accepted` is the server's own count.
    pub fn take(accepted: u64) -> Snapshot {
        Snapshot {
            cpu_s: cpu_seconds(),
            rss_bytes: rss_bytes(),
            threads: threads(),
            accepted,
        }
    }

    /// As a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "cpu_s": self.cpu_s,
            "rss_bytes": self.rss_bytes,
            "threads": self.threads,
            "accepted": self.accepted,
        })
    }

    /// From [`Snapshot::to_json`]'s object.
    pub fn from_json(v: &Value) -> Option<Snapshot> {
        Some(Snapshot {
            cpu_s: v.get("cpu_s")?.as_f64()?,
            rss_bytes: v.get("rss_bytes")?.as_u64()?,
            threads: v.get("threads")?.as_u64()?,
            accepted: v.get("accepted")?.as_u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_through_json() {
        let s = Snapshot::take(7);
        assert!(s.rss_bytes > 0 && s.threads >= 1 && s.cpu_s >= 0.0);
        assert_eq!(Snapshot::from_json(&s.to_json()), Some(s));
    }
}
