//! The side-by-side report (`cargo run --release -p baton-benches --bin
//! report`): interleaved timing ([`measure`]), the groups of workloads
//! ([`groups`]), markdown tables ([`table`]) and PNG plots ([`plot`]).

pub mod groups;
pub mod measure;
pub mod plot;
pub mod table;

/// The CPU model from `/proc/cpuinfo` (`model name`), if any.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `/proc/loadavg`'s first three fields, if readable.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unavailable".into())
}
