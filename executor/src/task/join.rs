//! [`JoinHandle`] and [`JoinError`].

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::coop;
use crate::task::raw::RawTask;

/// An owned permission to await a spawned task's output.
///
/// `JoinHandle<T>` is a future resolving to `Result<T, JoinError>`: `Ok` with
/// the task's output, or a [`JoinError`] if the task panicked or was
/// cancelled ([`abort`](JoinHandle::abort), or runtime shutdown). Dropping
/// the handle *detaches* the task: it keeps running, and its output is
/// dropped when it finishes.
///
/// ```
/// let rt = baton_executor::Runtime::new();
/// let answer = rt.block_on(async {
///     let handle = baton_executor::spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    /// A poll returned the output: it is out of the task's slot. Only the
    /// handle needs to know, so it is kept here, not in the state word.
    output_taken: bool,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves the output (T: Send) between threads; all
// shared task state is synchronised by the state word.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only allows `abort` and `is_finished`, which touch
// the atomic state word alone.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `raw` is a task whose output is `T`, and the caller gives the handle
    /// its JOIN_INTEREST and one reference.
    pub(super) unsafe fn from_raw(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            output_taken: false,
            _output: PhantomData,
        }
    }

    /// Cancels the task. If it is waiting, its future is dropped (inside its
    /// context) by a worker soon; if it is being polled right now, that
    /// happens when the poll returns. A task that already finished is not
    /// affected. Awaiting the handle of a cancelled task gives a
    /// [`JoinError`] for which [`is_cancelled`](JoinError::is_cancelled) is
    /// true.
    ///
    /// ```
    /// let rt = baton_executor::Runtime::new();
    /// rt.block_on(async {
    ///     let handle = baton_executor::spawn(std::future::pending::<()>());
    ///     handle.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        // SAFETY: the handle's reference keeps the task alive.
        if unsafe { self.raw.state() }.transition_to_notified_and_cancel() {
            // SAFETY: a reference was made for the Notified, and is handed
            // over.
            unsafe { self.raw.schedule() };
        }
    }

    /// Whether the task has finished (returned, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        // SAFETY: the handle's reference keeps the task alive.
        unsafe { self.raw.state() }.load().is_complete()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(
            !self.output_taken,
            "baton: JoinHandle polled after it returned its output"
        );
        std::task::ready!(coop::poll_proceed(cx));
        let mut ret: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: `ret` has the type the vtable's task writes (the handle was
        // made for this task), we hold JOIN_INTEREST, and the output has not
        // been taken (checked above).
        unsafe {
            self.raw
                .try_read_output(&mut ret as *mut _ as *mut (), cx.waker())
        };
        self.output_taken = ret.is_ready();
        ret
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: we give up JOIN_INTEREST and our reference, and say
        // truly whether the output is still in the slot.
        unsafe { self.raw.drop_join_handle(self.output_taken) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task did not produce its output: it panicked, or it was cancelled.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    // A Mutex makes the error Sync while the payload is only Send.
    Panic(std::sync::Mutex<Box<dyn Any + Send + 'static>>),
}

impl JoinError {
    pub(super) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    pub(super) fn panic(payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            repr: Repr::Panic(std::sync::Mutex::new(payload)),
        }
    }

    /// True if the task was cancelled (aborted, or killed by runtime
    /// shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume it with `std::panic::resume_unwind`.
    ///
    /// # Panics
    ///
    /// If the error is not a panic (see [`try_into_panic`](Self::try_into_panic)).
    ///
    /// ```
    /// let rt = baton_executor::Runtime::new();
    /// let err = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
    /// let payload = err.into_panic();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("baton: JoinError::into_panic called on a cancellation error")
    }

    /// The panic payload, or the error itself if it is not a panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner())),
            repr => Err(JoinError { repr }),
        }
    }

    fn panic_message(&self) -> Option<String> {
        match &self.repr {
            Repr::Panic(p) => {
                let p = p.lock().unwrap_or_else(|e| e.into_inner());
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
            }
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(_) => match self.panic_message() {
                Some(msg) => write!(f, "task panicked with message {msg:?}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(_) => match self.panic_message() {
                Some(msg) => write!(f, "JoinError::Panic({msg:?})"),
                None => f.write_str("JoinError::Panic(..)"),
            },
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> std::io::Error {
        std::io::Error::other(err.to_string())
    }
}
