//! A local Lambda Runtime API on 127.0.0.1, one per function process: the runtime's own HTTP
//! protocol (`GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response` or
//! `/error`, `POST .../init/error`).
//!
//! It hands a queued event out the moment the function asks for one, with the event's deadline in
//! `lambda-runtime-deadline-ms`, and passes the function's answer back to whoever queued the event.
//! It also records when each `/next` arrived (the first one ends the function's init; the one after
//! a response ends the work the function does once the client has its answer) and whatever the
//! function posts to `/init/error`.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::http_server::{self, HttpRequest, HttpResponse, respond};

/// The Runtime API's path prefix.
pub const PREFIX: &str = "/2018-06-01/runtime/";

/// The trace header (`lambda-runtime-trace-id`) an event is handed out with unless it was queued
/// with its own ([`RuntimeApi::enqueue_traced`]): sampled, as Lambda's header is for a traced
/// request.
pub const DEFAULT_TRACE: &str =
    "Root=1-6564a2b0-5f0c1d2e3a4b5c6d7e8f9a0b;Parent=53995c3f42cd8ad8;Sampled=1";

/// The deadline [`RuntimeApi::invoke`] gives an event (the functions' timeout in template.yaml).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// How long [`RuntimeApi::invoke`] waits for an answer before it fails the test.
pub const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// The function ARN every invocation carries.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:local";

/// What the function posted back for one invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The Lambda request id given to the invocation.
    pub lambda_request_id: String,
    /// `true` for `/response`, `false` for `/error`.
    pub ok: bool,
    /// The posted body, as JSON (for a response: `statusCode`, `headers`, `body`).
    pub body: Value,
    /// When the function took the event (its `/next` was answered).
    pub handed_out: Instant,
    /// When the function's post arrived.
    pub answered: Instant,
}

impl Invoked {
    /// The time the client waited: event handed out to result posted.
    pub fn response_time(&self) -> Duration {
        self.answered.saturating_duration_since(self.handed_out)
    }

    /// The HTTP status of a response (0 when there is none).
    pub fn status(&self) -> u16 {
        self.body["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0)
    }

    /// The response's own body, parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json_body(&self) -> Value {
        self.body["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null)
    }
}

/// Why an invocation has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoAnswer {
    /// The Runtime API went away before the function answered.
    #[error("invocation {id}: the runtime API dropped it")]
    Dropped {
        /// The invocation's Lambda request id.
        id: String,
    },
    /// The function did not answer in time.
    #[error("invocation {id}: no answer within {waited:?}{}", init_error.as_ref().map(|e| format!("; the function reported an init error: {e}")).unwrap_or_default())]
    TimedOut {
        /// The invocation's Lambda request id.
        id: String,
        /// How long we waited.
        waited: Duration,
        /// What the function posted to `/init/error`, if anything.
        init_error: Option<String>,
    },
}

/// An event queued with [`RuntimeApi::enqueue`], its answer not yet taken.
#[derive(Debug)]
pub struct Queued {
    id: String,
    /// The event, kept only when the API has a check to hold the answer to.
    event: Option<Value>,
    answer: oneshot::Receiver<Invoked>,
}

impl Queued {
    /// The Lambda request id the event will be handed out with.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A check every answer taken from this API is held to: the event and what the function posted.
pub type Check = Arc<dyn Fn(&Value, &Invoked) + Send + Sync>;

struct Pending {
    id: String,
    event: Value,
    deadline: Duration,
    trace: String,
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<Pending>>,
    queued: Notify,
    /// When each `/next` arrived, in order.
    polls: Mutex<Vec<Instant>>,
    /// `/next` calls waiting for an event right now.
    waiting_polls: Mutex<usize>,
    polled: Notify,
    handed_out: Mutex<HashMap<String, Instant>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Invoked>>>,
    init_error: Mutex<Option<String>>,
}

/// A lock that survives a panic elsewhere (a failed assertion must not hide behind a poisoned lock).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Runtime API of one function process. Clones share it.
#[derive(Clone)]
pub struct RuntimeApi {
    address: String,
    state: Arc<State>,
    check: Option<Check>,
}

impl fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address)
            .field("checked", &self.check.is_some())
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Serves on a free loopback port until the process ends.
    pub async fn start() -> std::io::Result<Self> {
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let address = http_server::serve(move |request| {
            let state = Arc::clone(&shared);
            Box::pin(async move { route(&state, request).await })
        })
        .await?;
        Ok(Self {
            address: address.to_string(),
            state,
            check: None,
        })
    }

    /// Holds every answer this handle (and its clones) takes to `check`, which panics on a
    /// failure (the tests hold each response to openapi.yaml).
    #[must_use]
    pub fn with_check(mut self, check: impl Fn(&Value, &Invoked) + Send + Sync + 'static) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues `event` with `deadline` (from when it is handed out); the function gets it at its next
    /// `/next`, or at once if it is waiting in one. Take the answer with [`RuntimeApi::answer`].
    pub fn enqueue(&self, event: Value, deadline: Duration) -> Queued {
        self.enqueue_traced(event, deadline, DEFAULT_TRACE)
    }

    /// As [`RuntimeApi::enqueue`], handed out with the trace header `trace`.
    pub fn enqueue_traced(&self, event: Value, deadline: Duration, trace: &str) -> Queued {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.state.answers).insert(id.clone(), tx);
        let kept = self.check.as_ref().map(|_| event.clone());
        lock(&self.state.queue).push_back(Pending {
            id: id.clone(),
            event,
            deadline,
            trace: trace.to_owned(),
        });
        self.state.queued.notify_one();
        Queued {
            id,
            event: kept,
            answer: rx,
        }
    }

    /// Waits (at most `timeout`) for the answer to `queued`, and holds it to the check, if any.
    pub async fn answer(&self, queued: Queued, timeout: Duration) -> Result<Invoked, NoAnswer> {
        let Queued { id, event, answer } = queued;
        let invoked = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(invoked)) => invoked,
            Ok(Err(_)) => return Err(NoAnswer::Dropped { id }),
            Err(_) => {
                lock(&self.state.answers).remove(&id);
                return Err(NoAnswer::TimedOut {
                    id,
                    waited: timeout,
                    init_error: self.init_error(),
                });
            }
        };
        if let (Some(check), Some(event)) = (&self.check, &event) {
            check(event, &invoked);
        }
        Ok(invoked)
    }

    /// Queues `event` with `deadline` and waits (at most `timeout`) for the function's answer.
    pub async fn try_invoke(
        &self,
        event: Value,
        deadline: Duration,
        timeout: Duration,
    ) -> Result<Invoked, NoAnswer> {
        let queued = self.enqueue(event, deadline);
        self.answer(queued, timeout).await
    }

    /// Queues `event` with a [`DEFAULT_DEADLINE`] and waits for the function's answer; panics if
    /// none comes within [`ANSWER_WAIT`].
    pub async fn invoke(&self, event: Value) -> Invoked {
        self.invoke_with_deadline(event, DEFAULT_DEADLINE).await
    }

    /// Queues `event` with the given deadline and waits for the function's answer; panics if none
    /// comes within [`ANSWER_WAIT`].
    pub async fn invoke_with_deadline(&self, event: Value, deadline: Duration) -> Invoked {
        self.try_invoke(event, deadline, ANSWER_WAIT)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
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

    /// When the function first asked for an event (the end of its init).
    pub fn first_poll(&self) -> Option<Instant> {
        lock(&self.state.polls).first().copied()
    }

    /// What the function posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.state.init_error).clone()
    }
}

async fn route(state: &State, request: HttpRequest) -> HttpResponse {
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
        let invoked = Invoked {
            lambda_request_id: (*id).to_owned(),
            ok: *kind == "response",
            body: serde_json::from_slice(request.body()).unwrap_or(Value::Null),
            handed_out,
            answered: arrived,
        };
        if let Some(tx) = lock(&state.answers).remove(*id) {
            let _ = tx.send(invoked);
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
        if let Some(Pending {
            id,
            event,
            deadline,
            trace,
        }) = pending
        {
            let deadline_ms = (SystemTime::now() + deadline)
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            lock(&state.handed_out).insert(id.clone(), Instant::now());
            let response = Response::builder()
                .status(200)
                .header("lambda-runtime-aws-request-id", &id)
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
                .header("lambda-runtime-trace-id", trace)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(event.to_string())));
            return response.unwrap_or_else(|_| respond(500, "bad event"));
        }
        queued.await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read as _, Write as _};

    use super::*;

    /// One HTTP/1.1 exchange on a connection of its own, as the runtime client makes it (blocking,
    /// so run it off the async runtime): the status line, headers and body, as text.
    fn exchange(address: &str, method: &str, path: &str, body: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    async fn call(api: &RuntimeApi, method: &str, path: &str, body: &str) -> String {
        let (address, method, path, body) = (
            api.address().to_owned(),
            method.to_owned(),
            format!("{PREFIX}{path}"),
            body.to_owned(),
        );
        tokio::task::spawn_blocking(move || exchange(&address, &method, &path, &body))
            .await
            .unwrap()
    }

    fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
        answer.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test]
    async fn an_event_is_handed_out_with_its_deadline_and_its_answer_returned() {
        let api = RuntimeApi::start().await.unwrap();
        assert_eq!(api.first_poll(), None);
        let queued = api.enqueue(serde_json::json!({"n": 1}), Duration::from_secs(3));
        let id = queued.id().to_owned();

        let next = call(&api, "GET", "invocation/next", "").await;
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        assert_eq!(
            header(&next, "lambda-runtime-aws-request-id"),
            Some(id.as_str())
        );
        assert!(next.ends_with(r#"{"n":1}"#), "{next}");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let deadline_ms: u128 = header(&next, "lambda-runtime-deadline-ms")
            .unwrap()
            .parse()
            .unwrap();
        assert!((now_ms + 2_000..=now_ms + 3_000).contains(&deadline_ms));
        assert!(api.first_poll().is_some());

        let body = r#"{"statusCode":201,"body":"{\"id\":\"x\"}"}"#;
        let posted = call(&api, "POST", &format!("invocation/{id}/response"), body).await;
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        let invoked = api.answer(queued, Duration::from_secs(5)).await.unwrap();
        assert!(invoked.ok);
        assert_eq!(invoked.lambda_request_id, id);
        assert_eq!(invoked.status(), 201);
        assert_eq!(invoked.json_body()["id"], "x");
        assert!(invoked.answered >= invoked.handed_out);
    }

    #[tokio::test]
    async fn a_function_waiting_in_next_is_seen_polling_and_gets_the_next_event() {
        let api = RuntimeApi::start().await.unwrap();
        let poller = {
            let api = api.clone();
            tokio::spawn(async move { call(&api, "GET", "invocation/next", "").await })
        };
        let polled = api.wait_until_polling(Duration::from_secs(5)).await;
        assert_eq!(polled, api.first_poll());
        assert!(polled.is_some());
        let queued = api.enqueue(Value::from("late"), DEFAULT_DEADLINE);
        let next = poller.await.unwrap();
        assert_eq!(
            header(&next, "lambda-runtime-aws-request-id"),
            Some(queued.id())
        );
    }

    #[tokio::test]
    async fn an_error_post_is_an_answer_and_the_check_sees_event_and_answer() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let api = {
            let seen = Arc::clone(&seen);
            RuntimeApi::start()
                .await
                .unwrap()
                .with_check(move |event, invoked| {
                    lock(&seen).push((event.clone(), invoked.ok));
                })
        };
        let queued = api.enqueue(Value::from("event"), DEFAULT_DEADLINE);
        let id = queued.id().to_owned();
        call(&api, "GET", "invocation/next", "").await;
        call(&api, "POST", &format!("invocation/{id}/error"), "{}").await;
        let invoked = api.answer(queued, Duration::from_secs(5)).await.unwrap();
        assert!(!invoked.ok);
        assert_eq!(*lock(&seen), vec![(Value::from("event"), false)]);
    }

    #[tokio::test]
    async fn no_answer_in_time_says_so_with_the_init_error() {
        let api = RuntimeApi::start().await.unwrap();
        call(&api, "POST", "init/error", "bad config").await;
        assert_eq!(api.init_error().as_deref(), Some("bad config"));
        let err = api
            .try_invoke(Value::Null, DEFAULT_DEADLINE, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, NoAnswer::TimedOut { init_error: Some(e), .. } if e == "bad config"),
            "{err:?}"
        );
        assert!(err.to_string().contains("bad config"), "{err}");
        let unknown = call(&api, "GET", "elsewhere", "").await;
        assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    }
}
