//! Fault injection: what fraction of requests panic, are aborted, time out,
//! or panic inside their rayon closure; and the panic hook that keeps the
//! injected panics quiet (real ones are still printed).

use std::panic;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use crate::checks::Stats;
use crate::rng::Rng;

/// The prefix of every injected panic message.
pub(crate) const INJECTED: &str = "injected fault";

/// The fractions of requests given each fault (each in `[0, 1]`, summing to
/// at most 1).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct FaultRates {
    /// The request task panics at a random point.
    pub panic: f64,
    /// The request is aborted through its `JoinHandle` (half before it
    /// runs, half while it sleeps).
    pub abort: f64,
    /// The request runs under `timeout` and sleeps past it.
    pub timeout: f64,
    /// The request's rayon closure panics; the request catches the panic at
    /// the await and carries on.
    pub rayon_panic: f64,
}

impl FaultRates {
    /// Checks the rates are fractions that sum to at most 1.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [self.panic, self.abort, self.timeout, self.rayon_panic];
        if all.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("fault rates must be between 0 and 1".into());
        }
        if all.iter().sum::<f64>() > 1.0 {
            return Err("fault rates must sum to at most 1".into());
        }
        Ok(())
    }

    /// Draws one request's fate.
    pub(crate) fn draw(&self, rng: &mut Rng) -> Fate {
        let u = rng.unit();
        let mut edge = self.panic;
        if u < edge {
            return Fate::Panic;
        }
        edge += self.abort;
        if u < edge {
            return Fate::Abort {
                early: rng.below(2) == 0,
            };
        }
        edge += self.timeout;
        if u < edge {
            return Fate::Timeout;
        }
        edge += self.rayon_panic;
        if u < edge {
            return Fate::RayonPanic;
        }
        Fate::Normal
    }
}

/// What is injected into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Nothing: it must complete.
    Normal,
    /// It panics: its handle must report a panic.
    Panic,
    /// It is aborted, right after spawning (`early`) or once it is asleep:
    /// its handle must report cancellation.
    Abort {
        /// Abort before it has (probably) been polled.
        early: bool,
    },
    /// It sleeps past its `timeout`: it must report a timeout.
    Timeout,
    /// Its rayon closure panics; it catches that and must complete.
    RayonPanic,
}

/// How a request ended, as seen through its `JoinHandle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Returned normally.
    Completed,
    /// Panicked.
    Panicked,
    /// Aborted.
    Cancelled,
    /// Its `timeout` elapsed (the task itself returned normally).
    TimedOut,
}

impl Fate {
    /// The only outcome this fate allows.
    pub(crate) fn expected(self) -> Outcome {
        match self {
            Fate::Normal | Fate::RayonPanic => Outcome::Completed,
            Fate::Panic => Outcome::Panicked,
            Fate::Abort { .. } => Outcome::Cancelled,
            Fate::Timeout => Outcome::TimedOut,
        }
    }
}

/// Whether a panic payload is one of ours.
pub(crate) fn is_injected(payload: &(dyn std::any::Any + Send)) -> bool {
    payload_str(payload).is_some_and(|s| s.starts_with(INJECTED))
}

/// The message of a panic payload, if it is a string.
pub(crate) fn payload_str(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    if let Some(s) = payload.downcast_ref::<String>() {
        Some(s)
    } else {
        payload.downcast_ref::<&'static str>().copied()
    }
}

/// Installs a panic hook that counts injected panics instead of printing
/// them; every other panic goes to the default hook.
pub(crate) fn install_quiet_hook(stats: &'static Stats) {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if is_injected(info.payload()) {
            stats.quiet_panics.fetch_add(1, Relaxed);
        } else {
            default(info);
        }
    }));
}
