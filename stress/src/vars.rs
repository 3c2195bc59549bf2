//! The request-scoped variables and the two ways of storing them: baton
//! `ContextVar`s (the subject) or plain thread-locals (the baseline, see
//! `baseline.rs`). The workload calls [`Mode`]'s methods, so both modes run
//! exactly the same code.

use baton_context::{Context, ContextError, ContextVar, Token, copy_context};
use serde::Serialize;

use crate::baseline;

/// The simulated request id (unique per request).
pub(crate) static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
/// The authenticated user of the request.
pub(crate) static USER: ContextVar<u64> = ContextVar::new("user");
/// A step marker that requests and children change with tokens.
pub(crate) static STEP: ContextVar<u64> = ContextVar::new("step");

/// Where the request-scoped values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    /// baton `ContextVar`s: every task, child and rayon job sees its own.
    Context,
    /// A plain `thread_local!` (Python's `threading.local` mistake): values
    /// are shared by everything that runs on a thread. Must report leaks.
    ThreadLocal,
}

/// One of the three variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// [`REQUEST_ID`].
    Id,
    /// [`USER`].
    User,
    /// [`STEP`].
    Step,
}

impl Var {
    /// The variable's name, for leak descriptions.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::Id => "request_id",
            Var::User => "user",
            Var::Step => "step",
        }
    }

    fn context_var(self) -> &'static ContextVar<u64> {
        match self {
            Var::Id => &REQUEST_ID,
            Var::User => &USER,
            Var::Step => &STEP,
        }
    }
}

/// The values of the three variables as seen at one point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// [`REQUEST_ID`].
    pub id: Option<u64>,
    /// [`USER`].
    pub user: Option<u64>,
    /// [`STEP`].
    pub step: Option<u64>,
}

impl Snapshot {
    /// Nothing bound.
    pub(crate) const EMPTY: Snapshot = Snapshot {
        id: None,
        user: None,
        step: None,
    };

    /// The value of `var`.
    pub(crate) fn get(&self, var: Var) -> Option<u64> {
        match var {
            Var::Id => self.id,
            Var::User => self.user,
            Var::Step => self.step,
        }
    }

    /// Sets the value of `var`.
    pub(crate) fn put(&mut self, var: Var, value: Option<u64>) {
        match var {
            Var::Id => self.id = value,
            Var::User => self.user = value,
            Var::Step => self.step = value,
        }
    }

    /// The bindings stored in `ctx` (read from outside it).
    pub(crate) fn of(ctx: &Context) -> Snapshot {
        Snapshot {
            id: ctx.get(&REQUEST_ID),
            user: ctx.get(&USER),
            step: ctx.get(&STEP),
        }
    }
}

/// What `reset` needs to undo a `set`.
pub(crate) enum Restore {
    /// A baton token.
    Token(Var, Token<u64>),
    /// The thread-local baseline's saved old value.
    Old(Var, Option<u64>),
}

impl Restore {
    /// The variable that was set.
    pub(crate) fn var(&self) -> Var {
        match self {
            Restore::Token(var, _) | Restore::Old(var, _) => *var,
        }
    }

    /// The value before the `set` (`None`: was unbound).
    pub(crate) fn old_value(&self) -> Option<u64> {
        match self {
            Restore::Token(_, token) => token.old_value().copied(),
            Restore::Old(_, old) => *old,
        }
    }
}

impl Mode {
    /// Reads the three variables.
    pub(crate) fn read(self) -> Snapshot {
        match self {
            Mode::Context => Snapshot {
                id: REQUEST_ID.get(),
                user: USER.get(),
                step: STEP.get(),
            },
            Mode::ThreadLocal => baseline::read(),
        }
    }

    /// Sets `var` to `value` in the current context (or thread).
    pub(crate) fn set(self, var: Var, value: u64) -> Restore {
        match self {
            Mode::Context => Restore::Token(var, var.context_var().set(value)),
            Mode::ThreadLocal => Restore::Old(var, baseline::set(var, Some(value))),
        }
    }

    /// Undoes the `set` that made `restore`.
    pub(crate) fn reset(self, restore: Restore) -> Result<(), ContextError> {
        match restore {
            Restore::Token(var, token) => var.context_var().reset(token),
            Restore::Old(var, old) => {
                baseline::set(var, old);
                Ok(())
            }
        }
    }

    /// Runs `f` in a copy of the current context (`copy_context().run(f)`)
    /// and returns what the copy holds afterwards. The baseline does what a
    /// careful thread-local user would: save the cells, run `f`, restore.
    pub(crate) fn run_in_copy<R>(self, f: impl FnOnce() -> R) -> (R, Snapshot) {
        match self {
            Mode::Context => {
                let ctx = copy_context();
                let r = ctx.run(f);
                (r, Snapshot::of(&ctx))
            }
            Mode::ThreadLocal => {
                let saved = baseline::read();
                let r = f();
                let after = baseline::read();
                for var in [Var::Id, Var::User, Var::Step] {
                    baseline::set(var, saved.get(var));
                }
                (r, after)
            }
        }
    }

    /// Whether the current context (or thread) holds any binding at all,
    /// including variables this program does not know.
    pub(crate) fn anything_bound(self) -> bool {
        match self {
            Mode::Context => !copy_context().is_empty(),
            Mode::ThreadLocal => baseline::read() != Snapshot::EMPTY,
        }
    }
}
