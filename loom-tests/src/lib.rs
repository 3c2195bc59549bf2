//! Loom models of baton.
//!
//! The models live in `tests/` and only exist under `--cfg loom`, which also
//! switches every crate's `sync` facade to loom's primitives, so the models
//! run the production code:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target/loom cargo test -p baton-loom-tests --release
//! ```
//!
//! What is covered, and what is not, is listed in `loom-tests/README.md`.
