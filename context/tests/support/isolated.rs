//! Runs a test in a child process, on a fresh thread, with a deadline: for
//! tests whose failure would hang or abort the whole test binary (shared by
//! the soundness tests of the context, executor and bridge crates, which
//! include it with `#[path]`).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const CHILD: &str = "BATON_ISOLATED_CHILD";
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `body` on a fresh thread — in a child process running only the test
/// `name` (this test binary, run again), unless this is that child (or
/// Miri, which cannot start processes: then in-process).
pub(crate) fn isolated(name: &str, body: fn()) {
    if cfg!(miri) || std::env::var(CHILD).as_deref() == Ok(name) {
        if let Err(panic) = thread::spawn(body).join() {
            std::panic::resume_unwind(panic);
        }
        return;
    }
    let log =
        std::env::temp_dir().join(format!("baton-isolated-{}-{name}.log", std::process::id()));
    let out = std::fs::File::create(&log).expect("create the child's log");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, name)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log handle"))
        .stderr(out)
        .spawn()
        .expect("start the child process");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // A deadline, not a synchronisation: the child's exit is the signal.
        thread::sleep(Duration::from_millis(5));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    match status {
        None => panic!("`{name}` hung (killed after {DEADLINE:?}):\n{output}"),
        Some(status) => {
            assert!(
                status.success(),
                "`{name}` failed in its child process ({status}):\n{output}"
            );
            assert!(
                output.contains("1 passed"),
                "the child did not run `{name}`:\n{output}"
            );
        }
    }
}

/// `#[test]` functions, each run by [`isolated`].
macro_rules! isolated_tests {
    ($($(#[doc = $doc:literal])* fn $name:ident() $body:block)*) => {$(
        $(#[doc = $doc])*
        #[test]
        fn $name() {
            fn body() $body
            isolated::isolated(stringify!($name), body);
        }
    )*};
}
pub(crate) use isolated_tests;
