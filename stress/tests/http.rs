//! `--mode http` and its baseline, briefly, through the binary: the HTTP run
//! passes with faults on, the thread-local baseline is caught, and bad
//! flags are refused. No timing is asserted; each run is bounded by its
//! `--duration` and killed if it overstays.
#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Far beyond what a run may take (its duration, the drain, the shutdown).
const KILL_AFTER: Duration = Duration::from_secs(120);

/// Runs the binary with `args`; returns its exit code and its stdout.
fn run(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-stress"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start baton-stress");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).expect("read stdout");
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            panic!("baton-stress {args:?} ran past {KILL_AFTER:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code().unwrap_or(-1), reader.join().expect("reader"))
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn num(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

#[test]
fn http_mode_with_faults_finds_no_leak_and_loses_nothing() {
    let (code, out) = run(&[
        "--mode",
        "http",
        "--duration",
        "2",
        "--faults",
        "--connections",
        "32",
        "--workers",
        "2",
        "--json",
    ]);
    let report = json(&out);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["pass"], true);
    assert_eq!(report["mode"], "http");
    assert!(num(&report, "requests") > 0);
    assert_eq!(num(&report, "requests"), num(&report, "requests_ok"));
    assert!(num(&report, "observations") > 0);
    assert!(num(&report, "log_lines_checked") > 0);
    for key in [
        "leaks",
        "lost",
        "bad_answers",
        "failures",
        "handlers_unaccounted",
        "children_unfinished",
        "runtime_unfinished",
    ] {
        assert_eq!(num(&report, key), 0, "{key}: {report:#}");
    }
    assert!(num(&report, "fds_after") <= num(&report, "fds_before"));
}

#[test]
fn the_thread_local_baseline_is_caught() {
    let (code, out) = run(&[
        "--mode",
        "http-thread-local",
        "--duration",
        "1",
        "--connections",
        "32",
        "--workers",
        "2",
        "--json",
    ]);
    let report = json(&out);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["pass"], false);
    assert!(num(&report, "leaks") > 0, "{report:#}");
    assert!(num(&report, "leaks_client") > 0, "{report:#}");
    // Caught for its leaks, not for anything else.
    assert_eq!(num(&report, "lost"), 0);
    assert_eq!(num(&report, "runtime_unfinished"), 0);
}

#[test]
fn bad_http_flags_exit_2() {
    for args in [
        &["--mode", "http", "--connections", "0"][..],
        &["--mode", "http", "--malformed-rate", "2"][..],
        &["--mode", "http", "--connections", "1000000"][..],
    ] {
        let (code, _) = run(args);
        assert_eq!(code, 2, "{args:?}");
    }
}
