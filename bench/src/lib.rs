//! `lambda-bench`: the pieces of the benchmark tool (see BENCHMARKS.md at the workspace root).
//!
//! The instrument itself, a local Lambda Runtime API that timestamps the protocol's steps and a
//! function binary run against it, is `test_support` (tests/support/), shared with the black-box
//! tests. The runs, the warm paths and the report are in `main.rs`.
//!
//! - [`process`]: how the bench starts a function: Lambda's environment, nothing else of ours.
//! - [`tracing_cost`]: what X-Ray tracing adds on the warm path, sampled and unsampled.
//! - [`first_request`]: the first request after a cold start with DynamoDB behind TLS, with and
//!   without the connection opened during init; [`tls`] is the TLS terminator it runs behind.
//! - [`emf`]: the CloudWatch custom metrics the functions' EMF documents define.
//! - [`init_phases`]: a function's init, phase by phase, from the line it prints once.
//! - [`stats`], [`cost`], [`system`], [`template`]: percentiles, the cost formulas (Lambda,
//!   CloudWatch Logs, custom metrics, the CPU-share model), `/proc` (peak memory, CPU time), and
//!   each function's memory from template.yaml; unit-tested, never timed.

pub mod cost;
pub mod emf;
pub mod first_request;
pub mod init_phases;
pub mod process;
pub mod stats;
pub mod system;
pub mod template;
pub mod tls;
pub mod tracing_cost;
