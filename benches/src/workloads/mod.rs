//! The workloads, one module per benchmark file.

pub mod bridge;
pub mod context;
pub mod executor;
pub mod spans;
