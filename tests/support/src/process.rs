//! A function binary run as Lambda runs it: against a [`RuntimeApi`], with Lambda's environment
//! variables, its stdout and stderr read on threads of their own (never on the async runtime that
//! serves the Runtime API, so reading them cannot delay a timestamp), counted byte for byte (what
//! CloudWatch Logs would ingest) and kept.
//!
//! ```ignore
//! let api = RuntimeApi::start().await?;
//! let process = Launch::new(binary, "health")
//!     .memory_mb(128)
//!     .env("LOG_FORMAT", "json")
//!     .spawn(api)?;
//! let invoked = process.api.invoke(event).await;
//! ```

use std::{
    ffi::{OsStr, OsString},
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use crate::runtime_api::RuntimeApi;

/// How much of an output [`Keep::Tail`] keeps.
pub const TAIL_BYTES: usize = 8 * 1024;

/// How much of its output a process keeps (every byte is counted either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// All of it, for reading line by line.
    All,
    /// The last [`TAIL_BYTES`] of each stream, for error messages.
    Tail,
}

/// How to start a function process. Its environment is built in this order: ours (or, after
/// [`Launch::only_env`], none of ours but the variables passed through), then Lambda's own
/// variables, then the [`Launch::env`] and [`Launch::env_remove`] calls in the order they were made.
#[derive(Debug, Clone)]
pub struct Launch {
    binary: PathBuf,
    name: String,
    memory_mb: u32,
    log_stream: String,
    pass_through: Option<Vec<String>>,
    vars: Vec<(OsString, Option<OsString>)>,
    keep: Keep,
}

impl Launch {
    /// `binary` as function `name`, with 256 MB, our whole environment and all of its output kept.
    pub fn new(binary: impl Into<PathBuf>, name: &str) -> Self {
        Self {
            binary: binary.into(),
            name: name.to_owned(),
            memory_mb: 256,
            log_stream: "local".to_owned(),
            pass_through: None,
            vars: Vec::new(),
            keep: Keep::All,
        }
    }

    /// The configured memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    #[must_use]
    pub fn memory_mb(mut self, memory_mb: u32) -> Self {
        self.memory_mb = memory_mb;
        self
    }

    /// The log stream's name (`AWS_LAMBDA_LOG_STREAM_NAME`).
    #[must_use]
    pub fn log_stream(mut self, name: &str) -> Self {
        name.clone_into(&mut self.log_stream);
        self
    }

    /// Starts from an empty environment: of ours, only these variables (those that are set) reach
    /// the function.
    #[must_use]
    pub fn only_env(mut self, pass_through: &[&str]) -> Self {
        self.pass_through = Some(pass_through.iter().map(|&key| key.to_owned()).collect());
        self
    }

    /// Sets a variable.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.vars
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes a variable.
    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.vars.push((key.as_ref().to_owned(), None));
        self
    }

    /// How much output to keep ([`Keep::All`] unless said otherwise).
    #[must_use]
    pub fn keep(mut self, keep: Keep) -> Self {
        self.keep = keep;
        self
    }

    /// Starts the process against `api`. Events queued on `api` before this are waiting for the
    /// function's first `/next` (a cold start).
    pub fn spawn(self, api: RuntimeApi) -> std::io::Result<FunctionProcess> {
        let name = &self.name;
        let mut command = Command::new(&self.binary);
        if let Some(pass_through) = &self.pass_through {
            command.env_clear();
            for key in pass_through {
                if let Some(value) = std::env::var_os(key) {
                    command.env(key, value);
                }
            }
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &self.log_stream);
        for (key, value) in &self.vars {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = command.spawn()?;
        let stdout = Output::read(child.stdout.take(), self.keep);
        let stderr = Output::read(child.stderr.take(), self.keep);
        Ok(FunctionProcess {
            api,
            spawned,
            child,
            stdout,
            stderr,
        })
    }
}

/// A running function process; dropping it ends the process.
#[derive(Debug)]
pub struct FunctionProcess {
    /// Its Runtime API.
    pub api: RuntimeApi,
    spawned: Instant,
    child: Child,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
}

impl FunctionProcess {
    /// When it was spawned (just before the `spawn` call).
    pub fn spawned(&self) -> Instant {
        self.spawned
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes written to stdout so far.
    pub fn stdout_bytes(&self) -> u64 {
        self.stdout.bytes.load(Ordering::Relaxed)
    }

    /// Bytes written to stderr so far.
    pub fn stderr_bytes(&self) -> u64 {
        self.stderr.bytes.load(Ordering::Relaxed)
    }

    /// The stdout lines kept so far (complete lines; the last one too once the stream has ended).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines()
    }

    /// The stderr lines kept so far, as [`FunctionProcess::stdout_lines`].
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// The last few kB of stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        self.stderr.tail()
    }

    /// Ends the process (the one its caller started) and reaps it.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.end();
    }
}

/// One output stream of a process: its byte count and what is kept of it.
#[derive(Debug)]
struct Output {
    bytes: AtomicU64,
    kept: Mutex<Kept>,
    keep: Keep,
}

#[derive(Debug, Default)]
struct Kept {
    data: Vec<u8>,
    ended: bool,
}

impl Output {
    /// Reads `stream` to its end on a thread of its own.
    fn read<R: Read + Send + 'static>(stream: Option<R>, keep: Keep) -> Arc<Self> {
        let output = Arc::new(Self {
            bytes: AtomicU64::new(0),
            kept: Mutex::new(Kept::default()),
            keep,
        });
        let Some(mut stream) = stream else {
            output.kept().ended = true;
            return output;
        };
        let reader = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 64 * 1024];
            while let Ok(n @ 1..) = stream.read(&mut buffer) {
                reader.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let mut kept = reader.kept();
                kept.data.extend_from_slice(&buffer[..n]);
                if reader.keep == Keep::Tail {
                    let excess = kept.data.len().saturating_sub(TAIL_BYTES);
                    kept.data.drain(..excess);
                }
            }
            reader.kept().ended = true;
        });
        output
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lines(&self) -> Vec<String> {
        let kept = self.kept();
        let complete = if kept.ended {
            &kept.data[..]
        } else {
            let end = kept
                .data
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1);
            &kept.data[..end]
        };
        String::from_utf8_lossy(complete)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn tail(&self) -> String {
        let kept = self.kept();
        let start = kept.data.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&kept.data[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::{os::unix::fs::PermissionsExt as _, time::Duration};

    use super::*;

    /// A shell script standing in for a function binary (written to the temp dir, removed on drop).
    struct Script(PathBuf);

    impl Script {
        fn new(body: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("test-support-{}.sh", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            Self(path)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Spawns `launch`, again while another test's fork still holds the just-written script open.
    async fn spawn(launch: Launch) -> FunctionProcess {
        let api = RuntimeApi::start().await.unwrap();
        for _ in 0..50 {
            match launch.clone().spawn(api.clone()) {
                Err(err) if err.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                spawned => return spawned.unwrap(),
            }
        }
        panic!("the script stayed busy");
    }

    /// Runs `launch` to its end; returns the process with all its output read.
    async fn run_to_end(launch: Launch) -> FunctionProcess {
        let process = spawn(launch).await;
        let started = Instant::now();
        while !(process.stdout.kept().ended && process.stderr.kept().ended) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "it never ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        process
    }

    #[tokio::test]
    async fn lambda_variables_then_the_callers_in_order() {
        let script = Script::new("env");
        let launch = Launch::new(&script.0, "health")
            .memory_mb(128)
            .log_stream("unit")
            .env("A", "1")
            .env("A", "2")
            .env("B", "gone")
            .env_remove("B")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "7");
        let process = run_to_end(launch).await;
        let lines = process.stdout_lines();
        for want in [
            format!("AWS_LAMBDA_RUNTIME_API={}", process.api.address()),
            "AWS_LAMBDA_FUNCTION_NAME=health".to_owned(),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128".to_owned(),
            "AWS_LAMBDA_FUNCTION_VERSION=7".to_owned(),
            "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/health".to_owned(),
            "AWS_LAMBDA_LOG_STREAM_NAME=unit".to_owned(),
            "A=2".to_owned(),
        ] {
            assert!(lines.contains(&want), "{want} not in {lines:#?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("B=")), "{lines:#?}");
    }

    #[tokio::test]
    async fn only_env_passes_on_only_what_it_names() {
        // Only reads this process's environment: PATH is set wherever cargo runs.
        let script = Script::new("env");
        let launch = Launch::new(&script.0, "f").only_env(&["PATH", "TEST_SUPPORT_UNSET_1234"]);
        let process = run_to_end(launch).await;
        let lines = process.stdout_lines();
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once('=').map(|(name, _)| name))
            // What the shell itself sets.
            .filter(|name| {
                !name.starts_with("AWS_LAMBDA_") && !["PWD", "SHLVL", "_"].contains(name)
            })
            .collect();
        assert_eq!(names, vec!["PATH"], "{lines:#?}");
    }

    #[tokio::test]
    async fn output_is_counted_and_kept_line_by_line() {
        let script = Script::new("printf 'one\\ntwo\\nlast'; printf 'oops\\n' >&2");
        let process = run_to_end(Launch::new(&script.0, "f")).await;
        assert_eq!(process.stdout_lines(), ["one", "two", "last"]);
        assert_eq!(process.stdout_bytes(), 12);
        assert_eq!(process.stderr_lines(), ["oops"]);
        assert_eq!(process.stderr_bytes(), 5);
        assert_eq!(process.stderr_tail(), "oops\n");
    }

    #[tokio::test]
    async fn a_tail_keeps_the_last_bytes_and_counts_them_all() {
        let script = Script::new("head -c 20000 /dev/zero | tr '\\0' x >&2; printf 'end' >&2");
        let process = run_to_end(Launch::new(&script.0, "f").keep(Keep::Tail)).await;
        assert_eq!(process.stderr_bytes(), 20_003);
        let tail = process.stderr_tail();
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with("xxend"), "{}", &tail[tail.len() - 10..]);
    }

    #[test]
    fn a_line_is_complete_at_its_newline_or_at_the_end_of_the_stream() {
        let output = Output {
            bytes: AtomicU64::new(0),
            kept: Mutex::new(Kept {
                data: b"a\nb".to_vec(),
                ended: false,
            }),
            keep: Keep::All,
        };
        assert_eq!(output.lines(), ["a"]);
        output.kept().ended = true;
        assert_eq!(output.lines(), ["a", "b"]);
    }

    #[tokio::test]
    async fn stop_ends_the_process() {
        let script = Script::new("sleep 30");
        let process = spawn(Launch::new(&script.0, "f")).await;
        let pid = process.pid();
        process.stop();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
