//! A local Lambda Runtime API on 127.0.0.1, one per function process, that timestamps each step of
//! the protocol: the function's `GET /2018-06-01/runtime/invocation/next`, the event handed out,
//! the `POST .../invocation/{id}/response` (or `/error`), and `POST .../init/error`.
//!
//! The bench's own instrument: like the test suite's stand-in, but it records when the function
//! first asked for work (the end of its init) and when it asks again after each response (the end
//! of the work it does after the client has its answer), and it hands an event out the moment one
//! is queued.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde_json::Value;

use crate::http_server::{self, HttpResponse, respond};
use tokio::sync::{Notify, oneshot};

/// The Runtime API's path prefix.
pub const PREFIX: &str = "/2018-06-01/runtime/";

/// What the function posted back for one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `true` for `/response`, `false` for `/error`.
    pub ok: bool,
    /// The posted body (for a response: `statusCode`, `headers`, `body`).
    pub body: Value,
    /// When the event was handed to the function (its `/next` answered).
    pub handed_out: Instant,
    /// When the function's post arrived.
    pub answered: Instant,
}

impl Answer {
    /// The HTTP status of a response (0 when there is none).
    pub fn status(&self) -> u16 {
        self.body["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0)
    }

    /// The response body, parsed as JSON.
    pub fn json_body(&self) -> Value {
        self.body["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null)
    }

    /// Event handed out to response posted: what the client waits for.
    pub fn latency(&self) -> Duration {
        self.answered.saturating_duration_since(self.handed_out)
    }
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<(String, Value)>>,
    queued: Notify,
    /// Every `/next` the function has made, in order.
    polls: Mutex<Vec<Instant>>,
    /// `/next` calls waiting for an event right now.
    waiting_polls: Mutex<usize>,
    polled: Notify,
    handed_out: Mutex<HashMap<String, Instant>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Runtime API of one function process.
#[derive(Clone)]
pub struct RuntimeApi {
    address: SocketAddr,
    state: Arc<State>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Serves on a free loopback port until the bench ends.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let address = http_server::serve(move |request| {
            let state = Arc::clone(&shared);
            Box::pin(async move { route(&state, request).await })
        })
        .await;
        Ok(Self { address, state })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Queues `event`; the receiver gets the function's answer.
    pub fn enqueue(&self, event: Value) -> oneshot::Receiver<Answer> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.state.answers).insert(id.clone(), tx);
        lock(&self.state.queue).push_back((id, event));
        self.state.queued.notify_one();
        rx
    }

    /// Queues `event` and waits (at most `timeout`) for the answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Answer, String> {
        let rx = self.enqueue(event);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the runtime API dropped the invocation".to_owned()),
            Err(_) => Err(match self.init_error() {
                Some(error) => format!("no answer; the function reported an init error: {error}"),
                None => format!("no answer within {timeout:?}"),
            }),
        }
    }

    /// Waits (at most `timeout`) until the function is blocked in `/next`, ready for an event, and
    /// returns when that `/next` arrived.
    pub async fn wait_until_polling(&self, timeout: Duration) -> Option<Instant> {
        let wait = async {
            loop {
                let polled = self.state.polled.notified();
                if *lock(&self.state.waiting_polls) > 0 {
                    return lock(&self.state.polls).last().copied();
                }
                polled.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// When the function first asked for an event.
    pub fn first_poll(&self) -> Option<Instant> {
        lock(&self.state.polls).first().copied()
    }

    /// What the function posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.state.init_error).clone()
    }
}

async fn route(state: &State, request: Request<Bytes>) -> HttpResponse {
    let arrived = Instant::now();
    let Some(rest) = request.uri().path().strip_prefix(PREFIX) else {
        return respond(404, "not found");
    };
    if rest == "invocation/next" {
        return next(state, arrived).await;
    }
    if rest == "init/error" {
        *lock(&state.init_error) = Some(String::from_utf8_lossy(request.body()).into_owned());
        return respond(202, "{}");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if let ["invocation", id, kind @ ("response" | "error")] = parts.as_slice() {
        let handed_out = lock(&state.handed_out).remove(*id).unwrap_or(arrived);
        let answer = Answer {
            ok: *kind == "response",
            body: serde_json::from_slice(request.body()).unwrap_or(Value::Null),
            handed_out,
            answered: arrived,
        };
        if let Some(tx) = lock(&state.answers).remove(*id) {
            let _ = tx.send(answer);
        }
        return respond(202, "{}");
    }
    respond(404, "not found")
}

/// Decrements the waiting count when a `/next` ends, however it ends.
struct Waiting<'a>(&'a State);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.0.waiting_polls);
        *waiting = waiting.saturating_sub(1);
    }
}

async fn next(state: &State, arrived: Instant) -> HttpResponse {
    lock(&state.polls).push(arrived);
    *lock(&state.waiting_polls) += 1;
    let _waiting = Waiting(state);
    state.polled.notify_waiters();
    loop {
        let queued = state.queued.notified();
        let pending = lock(&state.queue).pop_front();
        if let Some((id, event)) = pending {
            let deadline_ms = (SystemTime::now() + Duration::from_secs(10))
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            lock(&state.handed_out).insert(id.clone(), Instant::now());
            let response = Response::builder()
                .status(200)
                .header("lambda-runtime-aws-request-id", &id)
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-6564a2b0-5f0c1d2e3a4b5c6d7e8f9a0b;Parent=53995c3f42cd8ad8;Sampled=1",
                )
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(event.to_string())));
            return response.unwrap_or_else(|_| respond(500, "bad event"));
        }
        queued.await;
    }
}
