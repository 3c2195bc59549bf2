//! Random trace-ids and parent-ids.
//!
//! The specification asks for ids that are random or pseudo-random, with at
//! least the right-most 7 bytes of a trace-id uniformly distributed (then the
//! random-trace-id flag may be set), and never all zeroes. `fastrand`'s
//! generator (wyrand, seeded per thread from the OS) gives that without a
//! system call per id.

/// 16 random bytes, not all zero.
pub(super) fn trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// 8 random bytes, not all zero.
pub(super) fn parent_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}
