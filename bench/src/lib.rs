//! `lambda-bench`: the pieces of the benchmark tool (see BENCHMARKS.md at the workspace root).
//!
//! - [`runtime_api`]: a local Lambda Runtime API that timestamps the protocol's steps.
//! - [`process`]: a function binary run as Lambda runs it, its output counted.
//! - [`stats`], [`cost`], [`system`], [`template`]: percentiles, the cost formula, `/proc`, and
//!   each function's memory from template.yaml; unit-tested, never timed.

pub mod cost;
/// The loopback HTTP server the tests' stand-ins use, shared as source: one server for both.
#[allow(clippy::expect_used)]
#[path = "../../tests/src/http_server.rs"]
pub mod http_server;
pub mod process;
pub mod runtime_api;
pub mod stats;
pub mod system;
pub mod template;
