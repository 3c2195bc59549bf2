//! Loom models of baton.
//!
//! The models live in `tests/` and only exist under `--cfg baton_loom`, which
//! also switches the `baton-sync` facade (shared by the context, the executor
//! and the bridge) to loom's primitives, so the models run the production
//! code:
//!
//! ```sh
//! RUSTFLAGS="--cfg baton_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     CARGO_TARGET_DIR=target/loom cargo test -p baton-loom-tests --release
//! ```
//!
//! (`.ci/run` runs the context models at `LOOM_MAX_PREEMPTIONS=3`.)
//!
//! What is covered, and what is not, is listed in `loom-tests/README.md`.
