//! A fault-injecting HTTP/1.1 proxy between the functions and the local DynamoDB server.
//!
//! It listens on `127.0.0.1:0`, counts every DynamoDB call it sees (per `X-Amz-Target` operation)
//! and keeps its request ([`FaultProxy::requests`]); a request that is no DynamoDB call (a
//! function's connection pre-open, `GET /`) is forwarded as it is and only counted
//! ([`FaultProxy::preopens`]); and for each call either forwards it to the server or injects a fault, as its [`Plan`] says:
//! throttling and 500s in DynamoDB's own wire shape, transaction conflicts, canned answers,
//! connection resets, added latency, hangs, and lost responses (the call reaches the server, the
//! answer never reaches the client).
//!
//! ```ignore
//! let proxy = FaultProxy::start().await;
//! proxy.set_plan(Plan::first(1, Fault::Throttle));
//! let app = harness.app_with_endpoint(&proxy.endpoint()).await;
//! // ... invoke a function with `app` ...
//! assert_eq!(proxy.calls("GetItem"), 2);
//! ```
//!
//! HTTP is hyper's on both sides: each client connection is served by hyper's HTTP/1.1 server, and a
//! forwarded call goes to the server through hyper's client, on a connection of its own, its whole
//! body read before it is sent back. Only the faults that are about the socket itself (a reset, a
//! lost response) act on the connection under hyper: the connection's task then drops it, after
//! setting a zero linger for a reset.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Incoming, header, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// What to do to one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `400 ThrottlingException`, as DynamoDB answers when it throttles.
    Throttle,
    /// `500 InternalServerError`.
    ServerError,
    /// `400 TransactionCanceledException`, the last item's reason `TransactionConflict`, the others
    /// `None`.
    TransactionConflict,
    /// `400 ValidationException`.
    Validation,
    /// This status and JSON body instead of the server's answer (e.g. `{}` for "no such item").
    Reply(u16, String),
    /// Reset the connection (RST) without answering.
    Reset,
    /// Wait this long, then forward.
    Latency(Duration),
    /// Never answer; keep the connection open.
    Hang,
    /// Forward the call, then close the client's connection without answering.
    LoseResponse,
}

/// When a rule applies, among the calls it matches.
#[derive(Debug, Clone, PartialEq)]
enum When {
    /// The first n matching calls.
    First(usize),
    /// Every matching call.
    Always,
    /// Each matching call with this probability (a seeded generator, so runs are comparable).
    Probability(f64),
}

#[derive(Debug, Clone)]
struct Rule {
    operation: Option<String>,
    when: When,
    fault: Fault,
    matched: usize,
}

/// What the proxy does to calls: rules tried in order, the first that fires wins; calls no rule
/// fires for are forwarded.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    rules: Vec<Rule>,
}

impl Plan {
    /// Forward everything.
    pub fn pass() -> Self {
        Self::default()
    }

    /// The first `n` calls get `fault`, then calls pass.
    pub fn first(n: usize, fault: Fault) -> Self {
        Self::pass().then_first(n, fault)
    }

    /// Every call gets `fault`.
    pub fn always(fault: Fault) -> Self {
        Self::pass().then_always(fault)
    }

    /// Each call gets `fault` with probability `percent`/100.
    pub fn percent(percent: u8, fault: Fault) -> Self {
        Self::pass().then_percent(percent, fault)
    }

    /// Adds a rule: the first `n` calls (that earlier rules let through) get `fault`.
    pub fn then_first(self, n: usize, fault: Fault) -> Self {
        self.push(When::First(n), fault)
    }

    /// Adds a rule: every call (that earlier rules let through) gets `fault`.
    pub fn then_always(self, fault: Fault) -> Self {
        self.push(When::Always, fault)
    }

    /// Adds a rule: each call (that earlier rules let through) gets `fault` with this probability.
    pub fn then_percent(self, percent: u8, fault: Fault) -> Self {
        self.push(
            When::Probability(f64::from(percent.min(100)) / 100.0),
            fault,
        )
    }

    /// Restricts the last rule to one operation (`GetItem`, `TransactWriteItems`, ...).
    pub fn only(mut self, operation: &str) -> Self {
        if let Some(rule) = self.rules.last_mut() {
            rule.operation = Some(operation.to_owned());
        }
        self
    }

    fn push(mut self, when: When, fault: Fault) -> Self {
        self.rules.push(Rule {
            operation: None,
            when,
            fault,
            matched: 0,
        });
        self
    }
}

#[derive(Debug)]
struct State {
    plan: Plan,
    /// Client connections accepted.
    connections: usize,
    preopens: usize,
    calls: HashMap<String, usize>,
    requests: Vec<(String, serde_json::Value)>,
    rng: u64,
}

impl State {
    /// Counts and keeps the call, and picks its fault.
    fn on_call(&mut self, operation: &str, body: &Bytes) -> Option<Fault> {
        *self.calls.entry(operation.to_owned()).or_default() += 1;
        self.requests.push((
            operation.to_owned(),
            serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
        ));
        for i in 0..self.plan.rules.len() {
            let roll = self.roll();
            let rule = &mut self.plan.rules[i];
            if rule.operation.as_deref().is_some_and(|op| op != operation) {
                continue;
            }
            let fires = match rule.when {
                When::First(n) => rule.matched < n,
                When::Always => true,
                When::Probability(p) => roll < p,
            };
            rule.matched += 1;
            if fires {
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// xorshift64: uniform in [0, 1).
    fn roll(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// The proxy. It stops when dropped (its tasks belong to the test's runtime).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of `AWS_ENDPOINT_URL_DYNAMODB`, forwarding everything until told otherwise.
    pub async fn start() -> Self {
        let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .expect("AWS_ENDPOINT_URL_DYNAMODB is set: run the tests with scripts/test.sh");
        Self::start_for(&upstream).await
    }

    /// A proxy in front of `upstream` (`http://127.0.0.1:port`).
    pub async fn start_for(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the upstream is http://<ip>:<port>");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a local address");
        let state = Arc::new(Mutex::new(State {
            plan: Plan::pass(),
            connections: 0,
            preopens: 0,
            calls: HashMap::new(),
            requests: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }));
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                shared.lock().expect("proxy state").connections += 1;
                let state = Arc::clone(&shared);
                connections.spawn(serve(client, upstream, state));
                // Reap finished connections as we go.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            state,
            accept,
        }
    }

    /// The endpoint URL to give the SDK.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the plan (rule counters start again).
    pub fn set_plan(&self, plan: Plan) {
        self.state.lock().expect("proxy state").plan = plan;
    }

    /// Calls seen for `operation` (`GetItem`), faulted or not.
    pub fn calls(&self, operation: &str) -> usize {
        self.state
            .lock()
            .expect("proxy state")
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Calls seen, all operations.
    pub fn total_calls(&self) -> usize {
        self.state.lock().expect("proxy state").calls.values().sum()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().expect("proxy state").connections
    }

    /// Requests seen that were no DynamoDB call: the functions' connection pre-opens (`GET /`).
    pub fn preopens(&self) -> usize {
        self.state.lock().expect("proxy state").preopens
    }

    /// Calls seen, per operation.
    pub fn calls_by_operation(&self) -> HashMap<String, usize> {
        self.state.lock().expect("proxy state").calls.clone()
    }

    /// Every call seen, in order: its operation and its request body (DynamoDB's JSON; `Null`
    /// when it is not JSON), faulted or not.
    pub fn requests(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().expect("proxy state").requests.clone()
    }

    /// Forgets the calls seen so far (e.g. after seeding through the proxy).
    pub fn reset_counts(&self) {
        let mut state = self.state.lock().expect("proxy state");
        state.calls.clear();
        state.requests.clear();
    }
}

/// What a call's fault does to its connection, beyond (or instead of) an answer.
#[derive(Debug, Clone, Copy)]
enum Severance {
    /// Close it with an RST.
    Reset,
    /// Close it without answering.
    Close,
}

/// Serves one client connection with hyper until the client closes it or a fault drops it.
async fn serve(client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    // A second handle on the same socket, to set its linger once hyper owns the first.
    let Ok(raw) = client
        .into_std()
        .and_then(|std| Ok((std.try_clone()?, std)))
        .and_then(|(clone, std)| Ok((TcpStream::from_std(clone)?, TcpStream::from_std(std)?)))
    else {
        return;
    };
    let (socket, client) = raw;
    let (drop_tx, mut drop_rx) = mpsc::unbounded_channel::<Severance>();
    let service = service_fn(move |request: Request<Incoming>| {
        let state = Arc::clone(&state);
        let drop_tx = drop_tx.clone();
        async move { Ok::<_, Infallible>(answer(request, upstream, &state, &drop_tx).await) }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(client), service);
    tokio::select! {
        _ = connection => {}
        fault = drop_rx.recv() => {
            if let Some(Severance::Reset) = fault {
                // A zero linger makes the close an RST; with zero there is nothing to block on,
                // which is what the deprecation warns about.
                #[allow(deprecated)]
                let _ = socket.set_linger(Some(Duration::ZERO));
            }
            // Leaving the select drops hyper's connection and so closes the socket.
        }
    }
}

/// The answer to one call: the server's, or the fault the plan picks for it.
async fn answer(
    request: Request<Incoming>,
    upstream: SocketAddr,
    state: &Mutex<State>,
    drop_connection: &mpsc::UnboundedSender<Severance>,
) -> Response<Full<Bytes>> {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_owned);
    let request = test_support::http_server::whole(request).await;
    let Some(operation) = operation else {
        // No DynamoDB call: the connection pre-open of a function's start-up (`GET /`).
        state.lock().expect("proxy state").preopens += 1;
        return forward(request, upstream).await;
    };
    let fault = state
        .lock()
        .expect("proxy state")
        .on_call(&operation, request.body());
    let error = |status: u16, kind: &str, message: &str| {
        json_answer(
            status,
            serde_json::json!({"__type": kind, "message": message}).to_string(),
        )
    };
    match fault {
        None => forward(request, upstream).await,
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            forward(request, upstream).await
        }
        Some(Fault::Throttle) => error(
            400,
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "Rate exceeded",
        ),
        Some(Fault::ServerError) => error(
            500,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "Internal server error",
        ),
        Some(Fault::Validation) => error(
            400,
            "com.amazon.coral.validate#ValidationException",
            "One or more parameter values were invalid",
        ),
        Some(Fault::TransactionConflict) => transaction_conflict(request.body()),
        Some(Fault::Reply(status, body)) => json_answer(status, body),
        Some(Fault::Reset) => never_answer(drop_connection, Severance::Reset).await,
        // Hold the connection open, answering nothing, until the client gives up on it.
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::LoseResponse) => {
            let _ = forward(request, upstream).await;
            never_answer(drop_connection, Severance::Close).await
        }
    }
}

/// Has the connection dropped, and waits for that (the answer is never sent).
async fn never_answer(
    drop_connection: &mpsc::UnboundedSender<Severance>,
    how: Severance,
) -> Response<Full<Bytes>> {
    let _ = drop_connection.send(how);
    std::future::pending().await
}

/// `400 TransactionCanceledException`: the last item's reason `TransactionConflict`, the others
/// `None`, as DynamoDB words it.
fn transaction_conflict(request_body: &Bytes) -> Response<Full<Bytes>> {
    let items = serde_json::from_slice::<serde_json::Value>(request_body)
        .ok()
        .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(1)
        .max(1);
    let mut reasons = vec![serde_json::json!({"Code": "None"}); items - 1];
    reasons.push(serde_json::json!({
        "Code": "TransactionConflict",
        "Message": "Transaction is ongoing for the item",
    }));
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        "CancellationReasons": reasons,
    });
    json_answer(400, body.to_string())
}

/// An answer in DynamoDB's JSON protocol.
fn json_answer(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = test_support::http_server::respond(status, body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert(
        "x-amzn-requestid",
        header::HeaderValue::from_static("fault-proxy"),
    );
    response
}

/// Sends `request` to the server with hyper's client, on a connection of its own, and returns
/// the server's answer with its whole body. A failure to reach the server is a 502 the SDK treats
/// as a server error.
async fn forward(request: Request<Bytes>, upstream: SocketAddr) -> Response<Full<Bytes>> {
    let sent = async {
        let stream = TcpStream::connect(upstream).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let (parts, body) = request.into_parts();
        let response = sender
            .send_request(Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(std::io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok::<_, std::io::Error>(Response::from_parts(parts, Full::new(body)))
    };
    match sent.await {
        Ok(mut response) => {
            // The body is whole now: hyper frames it again.
            let headers = response.headers_mut();
            for hop in [
                header::TRANSFER_ENCODING,
                header::CONNECTION,
                header::CONTENT_LENGTH,
            ] {
                headers.remove(hop);
            }
            response
        }
        Err(err) => json_answer(
            502,
            serde_json::json!({"__type": "FaultProxyUpstreamError", "message": err.to_string()})
                .to_string(),
        ),
    }
}
