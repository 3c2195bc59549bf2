//! [`Executor`] and [`Timer`]: hyper's runtime traits on baton.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use baton_executor::Handle;

/// `hyper::rt::Executor` on baton: each future hyper hands over (an HTTP/2
/// stream, a client connection) becomes a baton task in a copy of the
/// context current when hyper spawns it, as [`baton_executor::spawn`] does.
///
/// Made inside a runtime, it spawns there even when hyper calls it from
/// another thread; made outside, it uses the runtime of the calling thread.
#[derive(Clone, Debug, Default)]
pub struct Executor {
    handle: Option<Handle>,
}

impl Executor {
    /// An executor for the current runtime (if any; see the type's docs).
    pub fn new() -> Executor {
        Executor {
            handle: Handle::try_current(),
        }
    }
}

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        match Handle::try_current().or_else(|| self.handle.clone()) {
            Some(handle) => drop(handle.spawn(future)),
            None => panic!(
                "baton: http::Executor used outside a baton runtime, and not made in one: \
                 create it inside Runtime::block_on or a task"
            ),
        }
    }
}

/// `hyper::rt::Timer` on baton's timers (the runtime's driver; no timer
/// thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer {
    _private: (),
}

impl Timer {
    /// A timer on the runtime of whichever task polls its sleeps.
    pub fn new() -> Timer {
        Timer { _private: () }
    }
}

/// A baton sleep as a `hyper::rt::Sleep`.
struct HyperSleep(baton_executor::Sleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(baton_executor::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(baton_executor::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(mut ours) => ours.0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
