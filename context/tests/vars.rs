//! ContextVar, Token and reset: the behaviours of CPython's
//! `Lib/test/test_context.py` (`test_context_getset_*`, `test_context_var_*`),
//! one test each.

use std::sync::Arc;

use baton_context::{Context, ContextError, ContextVar, copy_context};

#[test]
fn get_set_reset_round_trip() {
    static VAR: ContextVar<i32> = ContextVar::new("a");
    Context::new().run(|| {
        assert_eq!(VAR.get(), None);
        let t1 = VAR.set(42);
        assert_eq!(VAR.get(), Some(42));
        let t2 = VAR.set(43);
        assert_eq!(VAR.get(), Some(43));
        VAR.reset(t2).unwrap();
        assert_eq!(VAR.get(), Some(42));
        VAR.reset(t1).unwrap();
        assert_eq!(VAR.get(), None);
    });
}

#[test]
fn default_precedence_context_value_then_argument_then_var_default_then_none() {
    static WITH_DEFAULT: ContextVar<&str> = ContextVar::with_default("d", "var-default");
    static NO_DEFAULT: ContextVar<&str> = ContextVar::new("n");
    Context::new().run(|| {
        assert_eq!(NO_DEFAULT.get(), None);
        assert_eq!(NO_DEFAULT.get_or("arg"), "arg");
        assert_eq!(WITH_DEFAULT.get(), Some("var-default"));
        // The call-time default wins over the variable's default, as in Python.
        assert_eq!(WITH_DEFAULT.get_or("arg"), "arg");
        let _t = WITH_DEFAULT.set("bound");
        assert_eq!(WITH_DEFAULT.get(), Some("bound"));
        assert_eq!(WITH_DEFAULT.get_or("arg"), "bound");
    });
}

#[test]
fn default_fn_is_called_when_needed() {
    static USER: ContextVar<Vec<String>> =
        ContextVar::with_default_fn("user", || vec!["guest".to_string()]);
    Context::new().run(|| {
        assert_eq!(USER.get(), Some(vec!["guest".to_string()]));
        USER.with(|v| assert_eq!(v.map(Vec::len), Some(1)));
        let t = USER.set(vec!["alice".into()]);
        assert_eq!(USER.get(), Some(vec!["alice".to_string()]));
        USER.reset(t).unwrap();
        assert_eq!(USER.get(), Some(vec!["guest".to_string()]));
    });
}

#[test]
fn with_sees_exactly_what_get_returns() {
    static A: ContextVar<u64> = ContextVar::new("a");
    static B: ContextVar<u64> = ContextVar::with_default("b", 7);
    Context::new().run(|| {
        assert_eq!(A.with(|v| v.copied()), A.get());
        assert_eq!(B.with(|v| v.copied()), Some(7));
        let _t = A.set(1);
        assert_eq!(A.with(|v| v.copied()), Some(1));
        // `with`'s closure may set variables, even the one it reads.
        A.with(|v| {
            let _ = A.set(v.unwrap() + 1);
        });
        assert_eq!(A.get(), Some(2));
    });
}

#[test]
fn old_value_is_none_when_var_was_unset() {
    static VAR: ContextVar<String> = ContextVar::new("v");
    Context::new().run(|| {
        let t1 = VAR.set("one".into());
        assert_eq!(t1.old_value(), None);
        assert_eq!(t1.var_name(), "v");
        let t2 = VAR.set("two".into());
        assert_eq!(t2.old_value().map(String::as_str), Some("one"));
        VAR.reset(t2).unwrap();
        VAR.reset(t1).unwrap();
    });
}

#[test]
fn reset_to_missing_removes_the_var() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    let ctx = Context::new();
    let token = ctx.run(|| VAR.set(1));
    assert!(ctx.contains(&VAR));
    assert_eq!(ctx.len(), 1);
    ctx.run(|| VAR.reset(token)).unwrap();
    assert!(!ctx.contains(&VAR));
    assert_eq!(ctx.len(), 0);
    assert!(ctx.is_empty());
}

#[test]
fn resetting_an_older_token_restores_that_tokens_old_value() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    Context::new().run(|| {
        let _t0 = VAR.set(0);
        let t1 = VAR.set(1);
        let _t2 = VAR.set(2);
        // Order is not enforced: resetting t1 restores t1's old value.
        VAR.reset(t1).unwrap();
        assert_eq!(VAR.get(), Some(0));
    });
}

#[test]
fn reset_with_another_vars_token_is_wrong_var_and_changes_nothing() {
    static A: ContextVar<i32> = ContextVar::new("a");
    static B: ContextVar<i32> = ContextVar::new("b");
    Context::new().run(|| {
        let _ta = A.set(1);
        let tb = B.set(2);
        assert_eq!(A.reset(tb), Err(ContextError::WrongVar));
        assert_eq!(A.get(), Some(1));
        assert_eq!(B.get(), Some(2));
    });
}

#[test]
fn two_vars_with_the_same_name_are_different_vars() {
    static FIRST: ContextVar<i32> = ContextVar::new("same");
    static SECOND: ContextVar<i32> = ContextVar::new("same");
    Context::new().run(|| {
        let t = FIRST.set(1);
        assert_eq!(SECOND.get(), None);
        assert_eq!(SECOND.reset(t), Err(ContextError::WrongVar));
        assert_eq!(FIRST.name(), SECOND.name());
    });
}

#[test]
fn token_made_inside_run_reset_outside_is_wrong_context() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    let ctx = Context::new();
    let token = ctx.run(|| VAR.set(1));
    assert_eq!(VAR.reset(token), Err(ContextError::WrongContext));
    assert_eq!(ctx.get(&VAR), Some(1));
    assert_eq!(VAR.get(), None);
}

#[test]
fn token_made_in_a_copy_is_wrong_context_in_the_original() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    let original = Context::new();
    let copy = original.copy();
    let token = copy.run(|| VAR.set(1));
    assert_eq!(
        original.run(|| VAR.reset(token)),
        Err(ContextError::WrongContext)
    );
}

#[test]
fn wrong_var_wins_over_wrong_context() {
    static A: ContextVar<i32> = ContextVar::new("a");
    static B: ContextVar<i32> = ContextVar::new("b");
    let token = Context::new().run(|| B.set(1));
    assert_eq!(A.reset(token), Err(ContextError::WrongVar));
}

#[test]
fn values_are_stored_by_reference() {
    static VAR: ContextVar<Arc<Vec<i32>>> = ContextVar::new("list");
    let value = Arc::new(vec![1, 2, 3]);
    Context::new().run(|| {
        let _t = VAR.set(value.clone());
        let read = VAR.get().unwrap();
        assert!(Arc::ptr_eq(&read, &value));
        let copied = copy_context().get(&VAR).unwrap();
        assert!(Arc::ptr_eq(&copied, &value));
    });
}

#[test]
fn scope_sets_for_the_closure_and_restores() {
    static VAR: ContextVar<&str> = ContextVar::with_default("v", "outer");
    Context::new().run(|| {
        assert_eq!(VAR.scope("inner", || VAR.get()), Some("inner"));
        assert_eq!(VAR.get(), Some("outer"));
        let _t = VAR.set("bound");
        VAR.scope("nested", || assert_eq!(VAR.get(), Some("nested")));
        assert_eq!(VAR.get(), Some("bound"));
    });
}

#[test]
fn scope_restores_on_panic() {
    static VAR: ContextVar<&str> = ContextVar::new("v");
    let ctx = Context::new();
    ctx.run(|| {
        let _t = VAR.set("before");
        let result = std::panic::catch_unwind(|| VAR.scope("during", || panic!("boom")));
        assert!(result.is_err());
        assert_eq!(VAR.get(), Some("before"));
    });
}

#[test]
fn dropping_a_token_keeps_the_value() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    Context::new().run(|| {
        drop(VAR.set(5));
        assert_eq!(VAR.get(), Some(5));
    });
}

#[test]
fn token_can_be_moved_to_another_thread_and_reset_there_in_the_same_context() {
    static VAR: ContextVar<i32> = ContextVar::new("v");
    let ctx = Context::new();
    let token = ctx.run(|| VAR.set(9));
    let ctx2 = ctx.clone();
    std::thread::spawn(move || ctx2.run(|| VAR.reset(token)).unwrap())
        .join()
        .unwrap();
    assert!(!ctx.contains(&VAR));
}

#[test]
fn error_messages_are_readable() {
    assert!(
        ContextError::AlreadyEntered
            .to_string()
            .contains("already entered")
    );
    assert!(
        ContextError::WrongVar
            .to_string()
            .contains("different ContextVar")
    );
    assert!(
        ContextError::WrongContext
            .to_string()
            .contains("different Context")
    );
    let boxed: Box<dyn std::error::Error> = Box::new(ContextError::WrongVar);
    assert!(!boxed.to_string().is_empty());
}

#[test]
fn many_vars_bound_and_reset_in_one_context() {
    const N: usize = 100;
    static VARS: [ContextVar<usize>; N] = [const { ContextVar::new("many") }; N];
    let ctx = Context::new();
    let tokens: Vec<_> = ctx.run(|| VARS.iter().enumerate().map(|(i, v)| v.set(i)).collect());
    assert_eq!(ctx.len(), N);
    for (i, var) in VARS.iter().enumerate() {
        assert_eq!(ctx.get(var), Some(i));
    }
    ctx.run(|| {
        for (var, token) in VARS.iter().zip(tokens).rev() {
            var.reset(token).unwrap();
        }
    });
    assert!(ctx.is_empty());
}
