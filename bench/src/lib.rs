//! `lambda-bench`: the pieces of the benchmark tool (see BENCHMARKS.md at the workspace root).
//!
//! - [`runtime_api`]: a local Lambda Runtime API that timestamps the protocol's steps.
//! - [`process`]: a function binary run as Lambda runs it, its output counted.
//! - [`stats`], [`cost`], [`system`], [`template`]: percentiles, the cost formula, `/proc`, and
//!   each function's memory from template.yaml; unit-tested, never timed.

pub mod cost;
pub mod process;
pub mod runtime_api;
pub mod stats;
pub mod system;
pub mod template;
