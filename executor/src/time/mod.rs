//! Timers: [`sleep`], [`sleep_until`], [`timeout`].
//!
//! There is no timer thread: the runtime's driver (`driver.rs`) sleeps in
//! epoll until the earliest deadline and fires what is due. `store.rs` keeps
//! the deadlines (a heap per worker; cancelling is O(1) with no lock),
//! `entry.rs` is one deadline and its waker; `sleep.rs` and `timeout.rs` are
//! the futures.

mod entry;
mod sleep;
mod store;
mod timeout;

pub(crate) use entry::TimerEntry;
pub use sleep::{Sleep, sleep, sleep_until};
pub(crate) use store::TimerStore;
pub use timeout::{Elapsed, Timeout, timeout};
