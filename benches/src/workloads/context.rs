//! Fixtures for the context-variable micro-benchmarks (`benches/context_ops.rs`).
//!
//! * `U64_VARS` / `STR_VARS`: 64 distinct `ContextVar`s each, so that a
//!   context with N bindings really holds N different keys;
//! * [`bound_context`] / [`bound_str_context`]: a fresh [`Context`] with the
//!   first N of them bound;
//! * [`NaiveContext`]: the obvious alternative — an
//!   `Arc<HashMap<u64, Arc<dyn Any>>>` copied on write, in a thread-local —
//!   for reference;
//! * tokio's `task_local!` ([`TOKIO_U64`], [`TOKIO_STR`]), which cannot be
//!   inherited by spawned tasks but is the cheapest task-scoped value Rust
//!   users know.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use baton_context::{Context, ContextVar};

/// The largest number of bound variables the fixtures support.
pub const MAX_VARS: usize = 64;

/// The bound-variable counts every `get` / `set` benchmark is run with.
pub const BOUND_COUNTS: [usize; 3] = [1, 8, 64];

/// 64 distinct `u64` variables.
pub static U64_VARS: [ContextVar<u64>; MAX_VARS] = [const { ContextVar::new("u64") }; MAX_VARS];

/// 64 distinct `Arc<str>` variables.
pub static STR_VARS: [ContextVar<Arc<str>>; MAX_VARS] =
    [const { ContextVar::new("str") }; MAX_VARS];

/// A variable that no fixture ever binds.
pub static UNBOUND: ContextVar<u64> = ContextVar::new("unbound");

/// The variable the `get` benchmarks read: the first one, bound in every
/// fixture.
pub fn probe_u64() -> &'static ContextVar<u64> {
    &U64_VARS[0]
}

/// See [`probe_u64`].
pub fn probe_str() -> &'static ContextVar<Arc<str>> {
    &STR_VARS[0]
}

/// A fresh context with `U64_VARS[0..n]` bound to `0..n`.
///
/// # Panics
///
/// If `n > MAX_VARS`, or if the bindings do not read back.
pub fn bound_context(n: usize) -> Context {
    assert!(n <= MAX_VARS);
    let ctx = Context::new();
    ctx.run(|| {
        for (i, var) in U64_VARS[..n].iter().enumerate() {
            let _ = var.set(i as u64);
        }
    });
    assert_eq!(ctx.len(), n);
    for (i, var) in U64_VARS[..n].iter().enumerate() {
        assert_eq!(ctx.get(var), Some(i as u64));
    }
    ctx
}

/// A fresh context with `STR_VARS[0..n]` bound to `"value-i"`.
///
/// # Panics
///
/// If `n > MAX_VARS`, or if the bindings do not read back.
pub fn bound_str_context(n: usize) -> Context {
    assert!(n <= MAX_VARS);
    let ctx = Context::new();
    ctx.run(|| {
        for (i, var) in STR_VARS[..n].iter().enumerate() {
            let _ = var.set(Arc::from(format!("value-{i}")));
        }
    });
    assert_eq!(ctx.len(), n);
    assert_eq!(ctx.get(&STR_VARS[0]).as_deref(), Some("value-0"));
    ctx
}

tokio::task_local! {
    /// tokio's closest equivalent of a `u64` context variable.
    pub static TOKIO_U64: u64;
    /// tokio's closest equivalent of an `Arc<str>` context variable.
    pub static TOKIO_STR: Arc<str>;
}

/// A value in a [`NaiveContext`].
pub type NaiveValue = Arc<dyn Any + Send + Sync>;

/// The obvious way to build a copyable context: a hash map behind an `Arc`,
/// cloned on write when shared. `copy` is O(1); `set` is O(1) when the map is
/// not shared and O(n) (a full clone) when it is.
#[derive(Clone, Default)]
pub struct NaiveContext {
    map: Arc<HashMap<u64, NaiveValue>>,
}

impl NaiveContext {
    /// A context with keys `0..n` bound to `0..n` (`u64`) and keys
    /// `1000..1000 + n` bound to `"value-i"` (`Arc<str>`).
    pub fn bound(n: usize) -> NaiveContext {
        let mut ctx = NaiveContext::default();
        for i in 0..n as u64 {
            ctx.set(i, i);
            ctx.set(1000 + i, Arc::<str>::from(format!("value-{i}")));
        }
        ctx
    }

    /// The value under `key`, cloned.
    #[inline]
    pub fn get<T: Clone + 'static>(&self, key: u64) -> Option<T> {
        self.map
            .get(&key)
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Binds `key`, returning the previous value (the "token").
    #[inline]
    pub fn set<T: Send + Sync + 'static>(&mut self, key: u64, value: T) -> Option<NaiveValue> {
        Arc::make_mut(&mut self.map).insert(key, Arc::new(value))
    }

    /// Restores `key` to `old` (a value returned by [`set`](Self::set)).
    #[inline]
    pub fn reset(&mut self, key: u64, old: Option<NaiveValue>) {
        let map = Arc::make_mut(&mut self.map);
        match old {
            Some(v) => {
                map.insert(key, v);
            }
            None => {
                map.remove(&key);
            }
        }
    }

    /// An O(1) copy.
    #[inline]
    pub fn copy(&self) -> NaiveContext {
        self.clone()
    }

    /// The number of bindings.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

thread_local! {
    static NAIVE_CURRENT: RefCell<NaiveContext> = RefCell::new(NaiveContext::default());
}

/// Thread-local access to the current [`NaiveContext`], as a context-variable
/// library built on it would do it.
pub mod naive {
    use super::{NAIVE_CURRENT, NaiveContext, NaiveValue};

    /// Makes `ctx` the current naive context, returning the previous one.
    pub fn enter(ctx: NaiveContext) -> NaiveContext {
        NAIVE_CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), ctx))
    }

    /// `VAR.get()`.
    #[inline]
    pub fn get<T: Clone + 'static>(key: u64) -> Option<T> {
        NAIVE_CURRENT.with(|c| c.borrow().get(key))
    }

    /// `VAR.set(value)`.
    #[inline]
    pub fn set<T: Send + Sync + 'static>(key: u64, value: T) -> Option<NaiveValue> {
        NAIVE_CURRENT.with(|c| c.borrow_mut().set(key, value))
    }

    /// `VAR.reset(token)`.
    #[inline]
    pub fn reset(key: u64, old: Option<NaiveValue>) {
        NAIVE_CURRENT.with(|c| c.borrow_mut().reset(key, old))
    }

    /// `copy_context()`.
    #[inline]
    pub fn copy() -> NaiveContext {
        NAIVE_CURRENT.with(|c| c.borrow().copy())
    }

    /// `ctx.run(f)`: swap in, run, swap back (no entered-flag check).
    #[inline]
    pub fn run<R>(ctx: &mut NaiveContext, f: impl FnOnce() -> R) -> R {
        let prev = enter(std::mem::take(ctx));
        let r = f();
        *ctx = enter(prev);
        r
    }
}
