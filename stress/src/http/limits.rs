//! The process's open files: the limit (raised to the hard one, since
//! each side holds a socket per connection) and the count (`/proc/self/fd`),
//! which must come back to where it was once the server has shut down.

use std::io;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
pub(crate) fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

/// The file descriptors this process has open now (`None` where
/// `/proc/self/fd` cannot be read). The directory's own descriptor is
/// counted, the same every time.
pub(crate) fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}
