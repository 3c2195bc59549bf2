//! Misuse reports the caller's line, not one inside baton. (Its own test
//! binary: it installs a process-wide panic hook.)

use std::panic::{Location, catch_unwind};
use std::sync::Mutex;

use baton_executor::{Handle, spawn, spawn_with_context};

static LOCATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[test]
fn panics_outside_a_runtime_point_at_the_caller() {
    std::panic::set_hook(Box::new(|info| {
        if let Some(location) = info.location() {
            LOCATIONS.lock().unwrap().push(location.file().to_owned());
        }
    }));
    let here = Location::caller().file().to_owned();
    assert!(catch_unwind(|| drop(spawn(async {}))).is_err());
    assert!(
        catch_unwind(|| drop(spawn_with_context(baton_context::Context::new(), async {}))).is_err()
    );
    #[allow(clippy::redundant_closure)] // the closure is the caller
    let current = || Handle::current();
    assert!(catch_unwind(current).is_err());
    assert!(catch_unwind(|| drop(baton_executor::spawn_blocking(|| ()))).is_err());
    let _ = std::panic::take_hook();
    let locations = LOCATIONS.lock().unwrap().clone();
    assert_eq!(locations.len(), 4);
    for file in locations {
        assert_eq!(file, here, "a panic reported a location inside baton");
    }
}
