//! [`ContextError`]: what can go wrong when entering a context or resetting a
//! variable.

use std::fmt;

/// The ways entering a [`Context`](crate::Context) or resetting a
/// [`ContextVar`](crate::ContextVar) can fail.
///
/// ```
/// use baton_context::{Context, ContextError};
///
/// let ctx = Context::new();
/// let inner = ctx.run(|| ctx.try_run(|| ()));
/// assert_eq!(inner, Err(ContextError::AlreadyEntered));
/// assert!(ContextError::AlreadyEntered.to_string().contains("already entered"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// The context is already entered, by this thread (recursively) or by
    /// another one. A context is entered by at most one thread at a time.
    AlreadyEntered,
    /// The token passed to `reset` was created by a different `ContextVar`.
    WrongVar,
    /// The token passed to `reset` was created in a different `Context` than
    /// the current one.
    WrongContext,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::AlreadyEntered => {
                "context is already entered (a context can be entered by one thread at a time, and never recursively)"
            }
            ContextError::WrongVar => "token was created by a different ContextVar",
            ContextError::WrongContext => "token was created in a different Context",
        })
    }
}

impl std::error::Error for ContextError {}
