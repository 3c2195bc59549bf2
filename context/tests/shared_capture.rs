//! Copies made in a row share what the first one captured: within one run
//! of a context, copies made from the same bindings while the same
//! mirrored value is current get one set of bindings (`hook.rs`,
//! `shared_capture`). What is shared must be exactly what a fresh capture
//! would have stored, and it must not outlive the run that made it.
//!
//! Its own test binary: only one mirror is installed here, as in a service
//! with `tracing` alone (a memo is kept only when every installed mirror's
//! value is bound).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};

use baton_context::{Context, ContextCell, ContextVar, Mirror, copy_context, install_mirror};

/// A value whose lifetime can be counted: a probe's strong count.
#[derive(Clone)]
struct Handle(Arc<()>);

/// What the next `Handle` dropped on this thread does (user code at the
/// point where a run lets go of what its copies shared).
#[derive(Clone, Copy, PartialEq)]
enum OnDrop {
    Nothing,
    Panic,
    /// Enters, writes and copies contexts.
    ReEnter,
}

impl Drop for Handle {
    fn drop(&mut self) {
        match ON_DROP.with(|d| d.replace(OnDrop::Nothing)) {
            OnDrop::Nothing => {}
            OnDrop::Panic => panic!("a shared value's drop panics"),
            OnDrop::ReEnter => {
                let other = Context::new();
                other.run(|| {
                    let _ = ID.set(7);
                    let copy = ContextCell::copy_current();
                    assert_eq!(copy.run(|| ID.get()), Some(7));
                });
                assert_eq!(other.get(&ID), Some(7));
            }
        }
    }
}

thread_local! {
    /// The "third-party" current value.
    static CURRENT: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static ON_DROP: std::cell::Cell<OnDrop> = const { std::cell::Cell::new(OnDrop::Nothing) };
    /// What was mirrored in, innermost last.
    static ENTERED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

static HANDLE: ContextVar<Handle> = ContextVar::new("handle");
static ID: ContextVar<u32> = ContextVar::new("id");

struct HandleMirror;

impl Mirror for HandleMirror {
    type Value = Handle;
    fn var(&self) -> &'static ContextVar<Handle> {
        &HANDLE
    }
    fn capture(&self) -> Option<Handle> {
        CURRENT.with(|c| c.borrow().clone())
    }
    fn enter(&self, h: &Handle) {
        ENTERED.with(|e| e.borrow_mut().push(Arc::as_ptr(&h.0) as usize));
    }
    fn exit(&self, h: &Handle) {
        let top = ENTERED.with(|e| e.borrow_mut().pop());
        assert_eq!(top, Some(Arc::as_ptr(&h.0) as usize), "exits nest");
    }
    fn is_current(&self, inherited: &Handle) -> bool {
        CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .is_some_and(|h| Arc::ptr_eq(&h.0, &inherited.0))
        })
    }
}

static MIRROR: HandleMirror = HandleMirror;

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| install_mirror(&MIRROR));
}

fn make_current(probe: Option<&Arc<()>>) {
    CURRENT.with(|c| *c.borrow_mut() = probe.map(|p| Handle(p.clone())));
}

/// The handle a cell holds, as the probe it counts.
fn handle_in(cell: &ContextCell) -> Option<Arc<()>> {
    cell.run(|| HANDLE.get().map(|h| h.0.clone()))
}

#[test]
fn copies_in_one_run_share_a_capture_that_lives_until_the_run_ends() {
    install();
    let probe = Arc::new(());
    let outer = Context::new();
    outer.run(|| {
        make_current(Some(&probe));
        let first = ContextCell::copy_current();
        let second = ContextCell::copy_current();
        assert!(Arc::ptr_eq(&handle_in(&first).unwrap(), &probe));
        assert!(Arc::ptr_eq(&handle_in(&second).unwrap(), &probe));
        // probe, current, and the one captured value the copies share.
        assert_eq!(Arc::strong_count(&probe), 3);
        make_current(None);
        drop((first, second));
        // The run still remembers what its copies were given...
        assert_eq!(Arc::strong_count(&probe), 2);
    });
    // ... and lets go of it when it ends.
    assert_eq!(Arc::strong_count(&probe), 1);
    assert!(ENTERED.with(|e| e.borrow().is_empty()));
}

#[test]
fn shared_copies_share_too() {
    install();
    let probe = Arc::new(());
    Context::new().run(|| {
        make_current(Some(&probe));
        let _one = ID.set(1);
        let first = copy_context();
        let second = copy_context();
        let _two = ID.set(2);
        let third = copy_context();
        make_current(None);
        for (copy, id) in [(&first, 1), (&second, 1), (&third, 2)] {
            assert_eq!(copy.get(&ID), Some(id));
            assert!(Arc::ptr_eq(&copy.get(&HANDLE).unwrap().0, &probe));
        }
        drop((first, second, third));
        assert_eq!(Arc::strong_count(&probe), 2, "kept by the run alone");
    });
    assert_eq!(Arc::strong_count(&probe), 1);
}

#[test]
fn a_copy_made_after_a_set_sees_the_set() {
    install();
    let probe = Arc::new(());
    Context::new().run(|| {
        make_current(Some(&probe));
        let _one = ID.set(1);
        let first = ContextCell::copy_current();
        let _two = ID.set(2);
        let second = ContextCell::copy_current();
        assert_eq!(first.run(|| ID.get()), Some(1));
        assert_eq!(second.run(|| ID.get()), Some(2));
        for copy in [&first, &second] {
            assert!(Arc::ptr_eq(&handle_in(copy).unwrap(), &probe));
        }
        make_current(None);
    });
    assert_eq!(Arc::strong_count(&probe), 1);
}

#[test]
fn a_copy_made_under_another_value_captures_that_one() {
    install();
    let (a, b) = (Arc::new(()), Arc::new(()));
    Context::new().run(|| {
        make_current(Some(&a));
        let first = ContextCell::copy_current();
        make_current(Some(&b));
        let second = ContextCell::copy_current();
        make_current(Some(&a));
        let third = ContextCell::copy_current();
        make_current(None);
        let fourth = ContextCell::copy_current();
        assert!(Arc::ptr_eq(&handle_in(&first).unwrap(), &a));
        assert!(Arc::ptr_eq(&handle_in(&second).unwrap(), &b));
        assert!(Arc::ptr_eq(&handle_in(&third).unwrap(), &a));
        assert!(
            handle_in(&fourth).is_none(),
            "nothing current, nothing captured"
        );
    });
    assert_eq!((Arc::strong_count(&a), Arc::strong_count(&b)), (1, 1));
}

#[test]
fn an_inner_run_keeps_its_own_and_the_outer_run_gets_its_own_back() {
    install();
    let probe = Arc::new(());
    let inner = Context::new();
    inner.run(|| {
        let _ = ID.set(5);
    });
    Context::new().run(|| {
        make_current(Some(&probe));
        let outer_copy = ContextCell::copy_current();
        let inner_copy = inner.run(ContextCell::copy_current);
        let outer_again = ContextCell::copy_current();
        assert_eq!(inner_copy.run(|| ID.get()), Some(5));
        assert_eq!(outer_copy.run(|| ID.get()), None);
        assert_eq!(outer_again.run(|| ID.get()), None);
        for copy in [&outer_copy, &inner_copy, &outer_again] {
            assert!(Arc::ptr_eq(&handle_in(copy).unwrap(), &probe));
        }
        make_current(None);
    });
    assert_eq!(Arc::strong_count(&probe), 1);
}

#[test]
fn a_run_that_panics_lets_go_too() {
    install();
    let probe = Arc::new(());
    let outer = Context::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        outer.run(|| {
            make_current(Some(&probe));
            let copy = ContextCell::copy_current();
            make_current(None);
            drop(copy);
            panic!("the run panics");
        })
    }));
    assert!(result.is_err());
    assert_eq!(Arc::strong_count(&probe), 1);
}

#[test]
fn outside_any_run_nothing_is_kept() {
    install();
    let probe = Arc::new(());
    make_current(Some(&probe));
    let copies = [ContextCell::copy_current(), ContextCell::copy_current()];
    make_current(None);
    drop(copies);
    assert_eq!(Arc::strong_count(&probe), 1);
}

#[test]
fn a_shared_copy_runs_on_another_thread_with_its_value_mirrored_in() {
    install();
    let probe = Arc::new(());
    let copies: Vec<ContextCell> = Context::new().run(|| {
        make_current(Some(&probe));
        let copies = (0..3).map(|_| ContextCell::copy_current()).collect();
        make_current(None);
        copies
    });
    let expected = Arc::as_ptr(&probe) as usize;
    std::thread::spawn(move || {
        for copy in &copies {
            copy.run(|| {
                assert_eq!(ENTERED.with(|e| e.borrow().last().copied()), Some(expected));
            });
        }
        // A write in one copy lands in that copy alone.
        copies[0].run(|| {
            let _ = ID.set(9);
        });
        let ids: Vec<_> = copies.iter().map(|c| c.run(|| ID.get())).collect();
        assert_eq!(ids, [Some(9), None, None]);
        assert!(ENTERED.with(|e| e.borrow().is_empty()));
    })
    .join()
    .unwrap();
    assert_eq!(Arc::strong_count(&probe), 1);
}

/// A run that made copies under `probe` and dropped them, with `on_drop`
/// armed for the moment it lets go of what they shared.
fn run_letting_go(outer: &Context, probe: &Arc<()>, on_drop: OnDrop) {
    outer.run(|| {
        make_current(Some(probe));
        drop(ContextCell::copy_current());
        make_current(None);
        assert_eq!(Arc::strong_count(probe), 2, "kept by the run alone");
        ON_DROP.with(|d| d.set(on_drop));
    });
}

#[test]
fn a_shared_value_whose_drop_panics_panics_from_run_after_the_context_was_left() {
    install();
    let probe = Arc::new(());
    let outer = Context::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_letting_go(&outer, &probe, OnDrop::Panic)
    }));
    let panic = result.expect_err("the drop's panic reaches the caller");
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"a shared value's drop panics")
    );
    assert_eq!(Arc::strong_count(&probe), 1);
    assert!(!outer.is_entered(), "left");
    // Everything still works: the same context, and copies made in it.
    run_letting_go(&outer, &probe, OnDrop::Nothing);
    assert_eq!(Arc::strong_count(&probe), 1);
    assert!(ENTERED.with(|e| e.borrow().is_empty()));
}

#[test]
fn a_shared_value_whose_drop_runs_contexts_works() {
    install();
    let probe = Arc::new(());
    let outer = Context::new();
    run_letting_go(&outer, &probe, OnDrop::ReEnter);
    assert!(ON_DROP.with(|d| d.get()) == OnDrop::Nothing, "it ran");
    assert_eq!(Arc::strong_count(&probe), 1);
    assert_eq!(outer.get(&ID), None, "its writes went to its own context");
}
