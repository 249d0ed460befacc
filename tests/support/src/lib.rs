//! `test-support`: what the black-box tests (`api-tests`, tests/) and the benchmarks
//! (`lambda-bench`, bench/) both need to run a function binary the way Lambda runs it, on
//! 127.0.0.1. Dev-only; never part of a function.
//!
//! # Layout
//!
//! - [`http_server`]: a small HTTP/1.1 server, one task per connection; the stand-ins (this Runtime
//!   API, the tests' Sentry sink) are handlers on it.
//! - [`runtime_api`]: a local Lambda Runtime API. It hands out queued events with their deadlines
//!   and collects the answers (what the tests invoke), and timestamps every `/next` poll and keeps
//!   what a function posts to `/init/error` (what the bench measures).
//! - [`process`]: a function binary started against a Runtime API with Lambda's environment
//!   variables, its stdout and stderr counted and kept.
//! - [`functions`]: which functions there are (the crates under `functions/`, from cargo
//!   metadata), so neither the tests nor the bench keep a list of them.
//!
//! Each caller keeps its own settings: `api_tests::runtime_api` holds every response to
//! openapi.yaml and runs the debug binaries with the suite's environment; the bench's
//! `lambda_bench::process` gives the release binaries Lambda's environment and nothing else.

pub mod functions;
pub mod http_server;
pub mod process;
pub mod runtime_api;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
