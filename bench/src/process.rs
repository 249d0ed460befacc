//! How the bench starts a function's release binary (test_support's runner): Lambda's environment
//! as Lambda sets it for a JSON-logging function, plus the local DynamoDB's settings, and nothing
//! else of the bench's own environment; output counted byte for byte, only its tail kept.

use std::path::{Path, PathBuf};

use test_support::process::{Keep, Launch};

/// The environment the bench passes on to the functions (the local DynamoDB's endpoint, table and
/// dummy credentials, as `scripts/env.sh` sets them), and glibc's `MALLOC_ARENA_MAX` when set, to
/// try allocator settings a function's environment in template.yaml could carry; nothing else of
/// the bench's own environment reaches a function.
pub const PASSED_THROUGH: &[&str] = &[
    "TABLE_NAME",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_EC2_METADATA_DISABLED",
    "MALLOC_ARENA_MAX",
    "MALLOC_MMAP_THRESHOLD_",
];

/// `binary` as function `name` with `memory_mb`, as the bench runs it; spawn it against a
/// Runtime API.
pub fn launch(binary: &Path, name: &str, memory_mb: u32) -> Launch {
    Launch::new(binary, name)
        .memory_mb(memory_mb)
        .log_stream("bench")
        .only_env(PASSED_THROUGH)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("LOG_FORMAT", "json")
        .env("STAGE", "bench")
        .env("SERVICE_NAME", "users-api")
        .keep(Keep::Tail)
}

/// A release binary of the workspace.
pub fn release_binary(target_dir: &Path, name: &str) -> PathBuf {
    target_dir.join("release").join(name)
}
