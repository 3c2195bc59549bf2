//! [`ContextVar`]: a variable whose value depends on the current context (S2, S5).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::current::{self, Write};
use crate::error::ContextError;
use crate::id;
use crate::map::{Value, downcast};
use crate::token::Token;

/// A variable whose value is looked up in the current [`Context`](crate::Context).
///
/// The equivalent of Python's `contextvars.ContextVar`. Declare it as a
/// `static`; its identity is assigned on first use, so two variables with the
/// same name are still different variables.
///
/// ```
/// use baton_context::ContextVar;
///
/// static USER: ContextVar<String> = ContextVar::with_default_fn("user", || "guest".to_string());
///
/// assert_eq!(USER.get().as_deref(), Some("guest"));
/// let token = USER.set("alice".to_string());
/// assert_eq!(USER.get().as_deref(), Some("alice"));
/// USER.reset(token).unwrap();
/// assert_eq!(USER.get().as_deref(), Some("guest"));
/// ```
///
/// Values are stored behind an `Arc` and shared by copies of the context:
/// `get` clones the value, so for large values bind an `Arc<T>` (cloning it
/// is a reference-count increment) or read through [`ContextVar::with`].
pub struct ContextVar<T: Send + Sync + 'static> {
    name: &'static str,
    /// Assigned lazily; 0 = not yet.
    key: AtomicU64,
    default: Default<T>,
}

enum Default<T> {
    None,
    Value(T),
    Fn(fn() -> T),
}

impl<T: Send + Sync + 'static> ContextVar<T> {
    /// A variable without a default: `get` returns `None` where it is unbound.
    pub const fn new(name: &'static str) -> Self {
        Self::build(name, Default::None)
    }

    /// A variable whose `get` returns `value` where it is unbound.
    pub const fn with_default(name: &'static str, value: T) -> Self {
        Self::build(name, Default::Value(value))
    }

    /// A variable whose default is built by `default` each time it is needed,
    /// for defaults no `const` can build (a `String`, a map, …).
    pub const fn with_default_fn(name: &'static str, default: fn() -> T) -> Self {
        Self::build(name, Default::Fn(default))
    }

    const fn build(name: &'static str, default: Default<T>) -> Self {
        ContextVar {
            name,
            key: AtomicU64::new(0),
            default,
        }
    }

    /// The name given at construction.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The variable's identity in context maps.
    #[inline(always)]
    pub(crate) fn key(&self) -> u64 {
        match self.key.load(Ordering::Relaxed) {
            0 => self.assign_key(),
            key => key,
        }
    }

    #[cold]
    fn assign_key(&self) -> u64 {
        let fresh = id::next_var_id();
        match self
            .key
            .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => fresh,
            Err(winner) => winner,
        }
    }

    /// The value in the current context, else the variable's default, else
    /// `None` (S2).
    #[inline]
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        let key = self.key();
        let bound = current::with_map(|map| {
            map.get(key).map(|value| {
                // SAFETY: (downcast) values bound under this variable's key
                // are `T`s.
                unsafe { downcast::<T>(value) }.clone()
            })
        });
        match bound {
            Some(value) => Some(value),
            None => self.default_value(),
        }
    }

    /// The value in the current context, else `default` — which wins over the
    /// variable's own default, as in Python's `var.get(default)`.
    #[inline]
    pub fn get_or(&self, default: T) -> T
    where
        T: Clone,
    {
        let key = self.key();
        current::with_map(|map| {
            map.get(key).map(|value| {
                // SAFETY: (downcast) values bound under this variable's key
                // are `T`s.
                unsafe { downcast::<T>(value) }.clone()
            })
        })
        .unwrap_or(default)
    }

    /// Calls `f` with a reference to what [`get`](ContextVar::get) would
    /// return, without cloning the value.
    ///
    /// `f` may freely read and set context variables.
    pub fn with<R>(&self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let key = self.key();
        let bound: Option<Value> = current::with_map(|map| map.get(key).cloned());
        match bound {
            Some(value) => {
                // SAFETY: (downcast) values bound under this variable's key
                // are `T`s.
                let typed = unsafe { downcast::<T>(&value) };
                f(Some(typed))
            }
            None => match &self.default {
                Default::None => f(None),
                Default::Value(value) => f(Some(value)),
                Default::Fn(make) => f(Some(&make())),
            },
        }
    }

    fn default_value(&self) -> Option<T>
    where
        T: Clone,
    {
        match &self.default {
            Default::None => None,
            Default::Value(value) => Some(value.clone()),
            Default::Fn(make) => Some(make()),
        }
    }

    /// Binds `value` in the current context only (S2), and returns a token
    /// that [`reset`](ContextVar::reset) takes to restore the previous binding.
    ///
    /// Dropping the token keeps the new value; nothing is undone.
    ///
    /// # Panics
    ///
    /// On a thread sealed by [`seal_thread`](crate::seal_thread), in the
    /// thread's own base context (no task's context, no entered context),
    /// where the value would leak into everything that later runs on the
    /// thread. The message names the fix.
    #[inline]
    pub fn set(&self, value: T) -> Token<T> {
        let key = self.key();
        let value: Value = Arc::new(value);
        current::with_mut(Write::Set(&self.name), |current| {
            let context = current.id();
            let old = current.map_mut().insert(key, self.name, value);
            Token::new(key, self.name, context, old)
        })
    }

    /// Binds an already shared `value` (a `T`) in the current context, with
    /// no token: how a mirror stores a value it captured (`mirror.rs`).
    pub(crate) fn bind_shared(&self, value: Value) {
        debug_assert!(value.is::<T>());
        let key = self.key();
        let old = current::with_mut(Write::Set(&self.name), |current| {
            current.map_mut().insert(key, self.name, value)
        });
        // Dropped after the thread-local borrow ends (as in `reset`).
        drop(old);
    }

    /// Restores the binding from before the `set` that made `token`: the old
    /// value, or no binding if the variable was unbound then (S5).
    ///
    /// # Errors
    ///
    /// [`ContextError::WrongVar`] if `token` was made by another variable (this
    /// check comes first), [`ContextError::WrongContext`] if it was made in
    /// another context than the current one. Nothing changes on error.
    #[inline]
    pub fn reset(&self, token: Token<T>) -> Result<(), ContextError> {
        let key = self.key();
        if token.var_key() != key {
            return Err(ContextError::WrongVar);
        }
        let (context, old) = token.into_parts();
        // The replaced value is dropped after the thread-local borrow ends:
        // its destructor may use context variables itself. (An out-parameter
        // rather than the closure's result: a value returned through the
        // thread-local's closure is copied whole after being stored in
        // halves, which stalls store forwarding.)
        let mut replaced = None;
        let reset = current::with_mut(Write::Reset, |current| {
            if current.id() != context {
                return false;
            }
            let mut map = current.map_mut();
            replaced = match old {
                Some(value) => map.insert(key, self.name, value),
                None => map.remove(key),
            };
            true
        });
        if !reset {
            return Err(ContextError::WrongContext);
        }
        // `replaced` is dropped here, in place (moving it out to drop it
        // would copy it whole, and stall as above).
        Ok(())
    }

    /// Binds `value` while `f` runs, then restores the previous binding — also
    /// if `f` panics.
    ///
    /// ```
    /// use baton_context::ContextVar;
    ///
    /// static ROLE: ContextVar<&str> = ContextVar::with_default("role", "user");
    ///
    /// let inside = ROLE.scope("admin", || ROLE.get());
    /// assert_eq!(inside, Some("admin"));
    /// assert_eq!(ROLE.get(), Some("user"));
    /// ```
    pub fn scope<R>(&self, value: T, f: impl FnOnce() -> R) -> R {
        struct Restore<'a, T: Send + Sync + 'static> {
            var: &'a ContextVar<T>,
            token: Option<Token<T>>,
        }
        impl<T: Send + Sync + 'static> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                if let Some(token) = self.token.take() {
                    let reset = self.var.reset(token);
                    debug_assert!(reset.is_ok(), "scope's reset failed: {reset:?}");
                }
            }
        }
        let _restore = Restore {
            var: self,
            token: Some(self.set(value)),
        };
        f()
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
