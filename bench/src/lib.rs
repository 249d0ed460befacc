//! `lambda-bench`: the pieces of the benchmark tool (see BENCHMARKS.md at the workspace root).
//!
//! The instrument itself, a local Lambda Runtime API that timestamps the protocol's steps and a
//! function binary run against it, is `test_support` (tests/support/), shared with the black-box
//! tests.
//!
//! - [`process`]: how the bench starts a function: Lambda's environment, nothing else of ours.
//! - [`tracing_cost`]: what X-Ray tracing adds on the warm path, sampled and unsampled.
//! - [`stats`], [`cost`], [`system`], [`template`]: percentiles, the cost formula, `/proc`, and
//!   each function's memory from template.yaml; unit-tested, never timed.

pub mod cost;
pub mod process;
pub mod stats;
pub mod system;
pub mod template;
pub mod tracing_cost;
