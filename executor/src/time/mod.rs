//! Timers: [`sleep`], [`sleep_until`], [`timeout`].
//!
//! `driver.rs` holds the deadlines (an ordered map, so a cancelled timer is
//! removed at once) and the timer thread; `sleep.rs` and `timeout.rs` are the
//! futures.

mod driver;
mod sleep;
mod timeout;

pub(crate) use driver::Driver;
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout};
