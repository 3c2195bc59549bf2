//! [`Token`]: the receipt of a `set`, which `reset` takes back (S5).

use std::any::Any;
use std::fmt;

use std::marker::PhantomData;

use crate::map::{Value, downcast};

/// Returned by [`ContextVar::set`](crate::ContextVar::set); give it to
/// [`ContextVar::reset`](crate::ContextVar::reset) to restore the previous
/// binding.
///
/// A token is consumed by `reset`, so it cannot be used twice. It may be held
/// across `.await` points and moved between threads; it only works in the
/// context it was made in.
///
/// ```
/// use baton_context::ContextVar;
///
/// static LEVEL: ContextVar<u32> = ContextVar::new("level");
///
/// let first = LEVEL.set(1);
/// assert_eq!(first.old_value(), None); // Python's Token.MISSING
/// let second = LEVEL.set(2);
/// assert_eq!(second.old_value(), Some(&1));
/// LEVEL.reset(second).unwrap();
/// LEVEL.reset(first).unwrap();
/// assert_eq!(LEVEL.get(), None);
/// ```
///
/// Using a token twice does not compile:
///
/// ```compile_fail
/// use baton_context::ContextVar;
/// static VAR: ContextVar<i32> = ContextVar::new("v");
/// let token = VAR.set(1);
/// VAR.reset(token).unwrap();
/// VAR.reset(token).unwrap(); // error[E0382]: use of moved value
/// ```
#[must_use = "a token does nothing unless given to `reset`; to keep the new value, drop it with `let _ = ...`"]
pub struct Token<T> {
    var_key: u64,
    var_name: &'static str,
    context: u64,
    old: Option<Value>,
    _type: TypeMarker<T>,
}

impl<T: Any> Token<T> {
    pub(crate) fn new(
        var_key: u64,
        var_name: &'static str,
        context: u64,
        old: Option<Value>,
    ) -> Self {
        Token {
            var_key,
            var_name,
            context,
            old,
            _type: TypeMarker::default(),
        }
    }

    /// The value the variable had before the `set`; `None` if it was unbound
    /// (Python's `Token.MISSING`).
    pub fn old_value(&self) -> Option<&T> {
        self.old.as_ref().map(|value| {
            // SAFETY: (downcast) the token was made by a `ContextVar<T>` from
            // the value that variable had bound, which is a `T`.
            unsafe { downcast::<T>(value) }
        })
    }

    /// The name of the variable that made this token.
    pub fn var_name(&self) -> &'static str {
        self.var_name
    }

    pub(crate) fn var_key(&self) -> u64 {
        self.var_key
    }

    pub(crate) fn into_parts(self) -> (u64, Option<Value>) {
        (self.context, self.old)
    }
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var_name)
            .field("had_old_value", &self.old.is_some())
            .finish()
    }
}

/// A zero-sized marker so that `Token<T>` is `Send + Sync` for every `T` the
/// variable accepts, whatever `T`'s auto traits.
type TypeMarker<T> = PhantomData<fn() -> T>;
