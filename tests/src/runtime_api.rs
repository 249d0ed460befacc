//! The function binaries under test, run as Lambda runs them (test_support's Runtime API and
//! process runner) with the suite's settings: the debug build, JSON logs at `info`, stage `test`,
//! our environment without a Sentry DSN unless a test gives one, every line of stdout and stderr
//! kept, and every response a function posts held to openapi.yaml.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use test_support::process::Launch;

pub use test_support::runtime_api::{Invoked, RuntimeApi};

/// The workspace's debug binary `name` (built by `make test` before the tests run).
pub fn function_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `make test`, which builds every function first",
        path.display()
    );
    path
}

/// What every EMF document (every access line) holds, and no other line.
const EMF_MARKER: &str = "\"_aws\"";

/// A function process served by its own [`RuntimeApi`], with its output captured.
#[derive(Debug)]
pub struct FunctionProcess {
    /// The Runtime API it polls; every response taken from it is held to openapi.yaml.
    pub api: RuntimeApi,
    process: test_support::process::FunctionProcess,
}

impl FunctionProcess {
    /// Starts `binary` as Lambda would (its Runtime API, its function settings) with JSON logs and
    /// the given extra environment (`TABLE_NAME`, `SENTRY_DSN`, ...).
    pub async fn start(binary: PathBuf, name: &str, env: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start()
            .await
            .expect("start a Runtime API")
            .with_check(assert_documented);
        let mut launch = Launch::new(binary, name)
            .log_stream("test")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("STAGE", "test")
            .env_remove("SENTRY_DSN")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env_remove("AWS_XRAY_DAEMON_ADDRESS");
        for (key, value) in env {
            launch = launch.env(key, value);
        }
        let process = launch.spawn(api.clone()).expect("start the function");
        Self { api, process }
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.process.stdout_lines()
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.process.stderr_lines()
    }

    /// Waits until stdout holds `count` EMF documents (each is written after its response), at
    /// most 10 s, and returns every stdout line.
    pub async fn wait_for_emf_documents(&self, count: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.stdout();
            let documents = lines.iter().filter(|l| l.contains(EMF_MARKER)).count();
            if documents >= count || started.elapsed() > Duration::from_secs(10) {
                // A little longer, so a wrong extra document would show up too.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return self.stdout();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process's one `init` line (its start-up phases, function and route: written once the
    /// DynamoDB client is made, which may be after the first answer): waits for it at most 10 s.
    pub async fn init_line(&self) -> Value {
        self.the_one_line("init lines", "\"init\"", 0, |line| {
            line["message"] == "init"
        })
        .await
    }

    /// How many EMF documents stdout holds so far (for [`FunctionProcess::emf_document`]).
    pub fn emf_documents(&self) -> usize {
        self.stdout()
            .iter()
            .filter(|line| line.contains(EMF_MARKER))
            .count()
    }

    /// The EMF document (the access line) of `invoked`, the one invocation this process served
    /// since it held `before` documents, found by the request id its response carries
    /// (`x-request-id`; the document is written to stdout after the response, and sample events
    /// share request ids, hence `before`): waits for it at most 10 s, and fails the test when
    /// there is none, or more than one.
    pub async fn emf_document(&self, before: usize, invoked: &Invoked) -> Value {
        let headers = crate::wire_headers(&invoked.body);
        let request_id = headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("a response without x-request-id: {invoked:#?}"));
        let what = format!("EMF documents of request {request_id}");
        self.the_one_line(&what, EMF_MARKER, before, |doc| {
            doc["request_id"] == request_id.as_str()
        })
        .await
    }

    /// The one JSON line of stdout that `matches`, among those holding `marker` after the first
    /// `skip` of them: waits for it at most 10 s, and fails the test when there is none, or more
    /// than one (`what` names them in the failure).
    async fn the_one_line(
        &self,
        what: &str,
        marker: &str,
        skip: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let found: Vec<Value> = self
                .stdout()
                .iter()
                .filter(|line| line.contains(marker))
                .skip(skip)
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|line| matches(line))
                .collect();
            match found.as_slice() {
                [line] => return line.clone(),
                [] if started.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                _ => panic!(
                    "{} {what}, one expected; stdout: {:#?}",
                    found.len(),
                    self.stdout()
                ),
            }
        }
    }

    /// The process's threads now: each one's name and Linux scheduling policy (0 normal,
    /// 5 `SCHED_IDLE`), from `/proc/<pid>/task/*/stat`.
    pub fn threads(&self) -> Vec<(String, u32)> {
        let tasks = format!("/proc/{}/task", self.process.pid());
        let Ok(entries) = std::fs::read_dir(tasks) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path().join("stat")).ok())
            .filter_map(|stat| {
                // `tid (name) state ...`: the name may hold spaces and parentheses, so it ends at
                // the last `)`; the policy is the 41st field, the 39th after the name.
                let (head, rest) = stat.rsplit_once(')')?;
                let name = head.split_once('(')?.1.to_owned();
                let policy = rest.split_whitespace().nth(38)?.parse().ok()?;
                Some((name, policy))
            })
            .collect()
    }

    /// Stops the process (the one this harness started).
    pub async fn stop(self) {
        self.process.stop();
    }
}

/// Every response the suite sees is held to openapi.yaml.
fn assert_documented(event: &Value, invoked: &Invoked) {
    if !invoked.ok {
        return;
    }
    crate::contract::assert_documented(
        event["httpMethod"].as_str().unwrap_or_default(),
        event["resource"].as_str().unwrap_or_default(),
        invoked.status(),
        &crate::wire_headers(&invoked.body),
        &invoked.json_body(),
    );
}
