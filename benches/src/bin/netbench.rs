//! Network benchmarks: baton vs tokio vs smol on loopback, each server in a
//! process of its own with 2 workers, driven by one load generator process
//! that is the same for all; plus timer create + cancel, timer resolution
//! and idle CPU.
//!
//! ```text
//! cargo run --release -p baton-benches --bin netbench -- run                  # echo, http, idle
//! cargo run --release -p baton-benches --bin netbench -- run --workloads echo --duration 10 --rounds 3
//! cargo run --release -p baton-benches --bin netbench -- timers
//! cargo run --release -p baton-benches --bin netbench -- resolution --samples 500
//! cargo run --release -p baton-benches --bin netbench -- idle-cpu --seconds 10
//! cargo run --release -p baton-benches --features baton-net --bin netbench -- run   # with baton
//! ```
//!
//! See `baton_benches::net` for what each workload does and measures.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use baton_benches::net::cli::main_with;
use baton_benches::net::run::Exe;

fn main() -> ExitCode {
    let exe = match Exe::current(&[]) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("netbench: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    main_with(std::env::args_os().skip(1), exe)
}
