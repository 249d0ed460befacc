//! A function's binary run as Lambda runs it: its own Runtime API, Lambda's environment variables,
//! stdout and stderr counted byte for byte (what CloudWatch Logs would ingest).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use crate::runtime_api::RuntimeApi;

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

/// A running function process.
#[derive(Debug)]
pub struct FunctionProcess {
    /// Its Runtime API.
    pub api: RuntimeApi,
    /// When it was spawned (just before the `spawn` call).
    pub spawned: Instant,
    child: Child,
    stdout_bytes: Arc<AtomicU64>,
    stderr_bytes: Arc<AtomicU64>,
    stderr_tail: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl FunctionProcess {
    /// Starts `binary` as function `name` with `memory_mb`; `first_event`, when given, is queued
    /// before the process exists, so its first `/next` gets it at once (a cold start).
    pub async fn start(
        binary: &Path,
        name: &str,
        memory_mb: u32,
        first_event: Option<serde_json::Value>,
    ) -> std::io::Result<(
        Self,
        Option<tokio::sync::oneshot::Receiver<crate::runtime_api::Answer>>,
    )> {
        let api = RuntimeApi::start().await?;
        let first = first_event.map(|event| api.enqueue(event));
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("LOG_FORMAT", "json")
            .env("STAGE", "bench")
            .env("SERVICE_NAME", "users-api")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let spawned = Instant::now();
        let mut child = command.spawn()?;
        let stdout_bytes = Arc::new(AtomicU64::new(0));
        let stderr_bytes = Arc::new(AtomicU64::new(0));
        let stderr_tail = Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            count(stdout, Arc::clone(&stdout_bytes), None);
        }
        if let Some(stderr) = child.stderr.take() {
            count(
                stderr,
                Arc::clone(&stderr_bytes),
                Some(Arc::clone(&stderr_tail)),
            );
        }
        Ok((
            Self {
                api,
                spawned,
                child,
                stdout_bytes,
                stderr_bytes,
                stderr_tail,
            },
            first,
        ))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes written to stdout so far.
    pub fn stdout_bytes(&self) -> u64 {
        self.stdout_bytes.load(Ordering::Relaxed)
    }

    /// Bytes written to stderr so far.
    pub fn stderr_bytes(&self) -> u64 {
        self.stderr_bytes.load(Ordering::Relaxed)
    }

    /// The last few kB of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&tail).into_owned()
    }

    /// Peak resident memory so far, in kB (`VmHWM`).
    pub fn peak_rss_kb(&self) -> Option<u64> {
        crate::system::vm_hwm_kb(self.pid())
    }

    /// Ends the process this bench started.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn count<R: std::io::Read + Send + 'static>(
    mut stream: R,
    total: Arc<AtomicU64>,
    tail: Option<Arc<std::sync::Mutex<Vec<u8>>>>,
) {
    std::thread::spawn(move || {
        let mut buffer = [0_u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            total.fetch_add(n as u64, Ordering::Relaxed);
            if let Some(tail) = &tail {
                let mut tail = tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tail.extend_from_slice(&buffer[..n]);
                let excess = tail.len().saturating_sub(8 * 1024);
                tail.drain(..excess);
            }
        }
    });
}

/// A release binary of the workspace.
pub fn release_binary(target_dir: &Path, name: &str) -> PathBuf {
    target_dir.join("release").join(name)
}
