//! Resident memory, from `/proc/self/status` (Linux; `None` elsewhere).

/// Resident set sizes in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rss {
    /// Now (`VmRSS`).
    pub current: u64,
    /// The peak so far (`VmHWM`).
    pub peak: u64,
}

/// Reads the process's resident set sizes.
pub(crate) fn rss() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some(Rss {
        current: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}
