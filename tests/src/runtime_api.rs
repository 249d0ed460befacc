//! A local Lambda Runtime API (the runtime's own HTTP protocol: next invocation, response, error)
//! on 127.0.0.1, and a function binary run against it as Lambda would run it, with its real stdout
//! and stderr captured line by line.

use std::{
    collections::{HashMap, VecDeque},
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    sync::{Notify, oneshot},
};

use crate::http_server::{self, HttpRequest, respond};

/// What the function posted back for one invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The Lambda request id given to the invocation.
    pub lambda_request_id: String,
    /// `true` for `/response`, `false` for `/error`.
    pub ok: bool,
    /// The posted body, as JSON (for a response: `statusCode`, `headers`, `body`).
    pub body: Value,
    /// When the function took the event (its `/next` returned).
    pub handed_out: Instant,
    /// When the function posted the result.
    pub answered: Instant,
}

impl Invoked {
    /// The time the client waited: event handed out to result posted.
    pub fn response_time(&self) -> Duration {
        self.answered - self.handed_out
    }

    /// The HTTP status of a response.
    pub fn status(&self) -> u16 {
        self.body["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0)
    }
}

struct Pending {
    id: String,
    event: Value,
    deadline: Duration,
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<Pending>>,
    ready: Notify,
    handed_out: Mutex<HashMap<String, Instant>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Invoked>>>,
}

/// The Runtime API stand-in.
#[derive(Clone)]
pub struct RuntimeApi {
    address: String,
    state: Arc<State>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish()
    }
}

impl RuntimeApi {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let address = http_server::serve(move |request| {
            let state = Arc::clone(&shared);
            Box::pin(async move { route(&state, request).await })
        })
        .await;
        Self {
            address: address.to_string(),
            state,
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues `event` with a 10 s deadline and waits for the function's answer.
    pub async fn invoke(&self, event: Value) -> Invoked {
        self.invoke_with_deadline(event, Duration::from_secs(10))
            .await
    }

    /// Queues `event` with the given deadline and waits (at most 60 s) for the function's answer.
    pub async fn invoke_with_deadline(&self, event: Value, deadline: Duration) -> Invoked {
        let invoked_event = event.clone();
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.state
            .waiting
            .lock()
            .expect("lock")
            .insert(id.clone(), tx);
        self.state.queue.lock().expect("lock").push_back(Pending {
            id: id.clone(),
            event,
            deadline,
        });
        self.state.ready.notify_one();
        let invoked = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("invocation {id} got no answer within 60 s"))
            .expect("the runtime API stays up");
        if invoked.ok {
            // Every response the suite sees is held to openapi.yaml.
            let headers = crate::wire_headers(&invoked.body);
            let body = invoked.body["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            crate::contract::assert_documented(
                event_method(&invoked_event),
                invoked_event["resource"].as_str().unwrap_or_default(),
                invoked.status(),
                &headers,
                &body,
            );
        }
        invoked
    }
}

fn event_method(event: &Value) -> &str {
    event["httpMethod"].as_str().unwrap_or_default()
}

async fn route(state: &State, request: HttpRequest) -> http_server::HttpResponse {
    let path = request.uri().path().to_owned();
    let prefix = "/2018-06-01/runtime/";
    let Some(rest) = path.strip_prefix(prefix) else {
        return respond(404, "not found");
    };
    if rest == "invocation/next" {
        return next(state).await;
    }
    if rest == "init/error" {
        eprintln!(
            "function init error: {}",
            String::from_utf8_lossy(request.body())
        );
        return respond(202, "{}");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if let ["invocation", id, kind @ ("response" | "error")] = parts.as_slice() {
        let handed_out = state
            .handed_out
            .lock()
            .expect("lock")
            .remove(*id)
            .unwrap_or_else(Instant::now);
        let invoked = Invoked {
            lambda_request_id: (*id).to_owned(),
            ok: *kind == "response",
            body: serde_json::from_slice(request.body()).unwrap_or(Value::Null),
            handed_out,
            answered: Instant::now(),
        };
        if let Some(tx) = state.waiting.lock().expect("lock").remove(*id) {
            let _ = tx.send(invoked);
        }
        return respond(202, "{}");
    }
    respond(404, "not found")
}

async fn next(state: &State) -> http_server::HttpResponse {
    loop {
        let notified = state.ready.notified();
        let pending = state.queue.lock().expect("lock").pop_front();
        if let Some(pending) = pending {
            let deadline_ms = (SystemTime::now() + pending.deadline)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            state
                .handed_out
                .lock()
                .expect("lock")
                .insert(pending.id.clone(), Instant::now());
            return http::Response::builder()
                .status(200)
                .header("lambda-runtime-aws-request-id", &pending.id)
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:test",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-6564a2b0-5f0c1d2e3a4b5c6d7e8f9a0b;Parent=53995c3f42cd8ad8;Sampled=1",
                )
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    pending.event.to_string(),
                )))
                .expect("a valid response");
        }
        notified.await;
    }
}

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

/// A function process served by a [`RuntimeApi`], with its output captured.
pub struct FunctionProcess {
    /// The Runtime API it polls.
    pub api: RuntimeApi,
    child: tokio::process::Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for FunctionProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionProcess")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl FunctionProcess {
    /// Starts `binary` as Lambda would (its Runtime API, its function settings) with JSON logs and
    /// the given extra environment (`TABLE_NAME`, `SENTRY_DSN`, ...).
    pub async fn start(binary: PathBuf, name: &str, env: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start().await;
        let mut command = tokio::process::Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("STAGE", "test")
            .env_remove("SENTRY_DSN")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start the function");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(
            child.stdout.take().expect("piped stdout"),
            Arc::clone(&stdout),
        );
        collect(
            child.stderr.take().expect("piped stderr"),
            Arc::clone(&stderr),
        );
        Self {
            api,
            child,
            stdout,
            stderr,
        }
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("lock").clone()
    }

    /// Every stderr line so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().expect("lock").clone()
    }

    /// Waits until stdout holds `count` EMF documents (each is written after its response), at
    /// most 10 s, and returns every stdout line.
    pub async fn wait_for_emf_documents(&self, count: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.stdout();
            let documents = lines.iter().filter(|l| l.contains("\"_aws\"")).count();
            if documents >= count || started.elapsed() > Duration::from_secs(10) {
                // A little longer, so a wrong extra document would show up too.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return self.stdout();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process (the one this harness started).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn collect<R>(stream: R, into: Arc<Mutex<Vec<String>>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().expect("lock").push(line);
        }
    });
}
