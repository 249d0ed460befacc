//! A fault-injecting HTTP/1.1 proxy between the functions and the local DynamoDB server.
//!
//! It listens on `127.0.0.1:0`, counts every DynamoDB call it sees (per `X-Amz-Target` operation),
//! and for each call either forwards it to the server or injects a fault, as its [`Plan`] says:
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
//! Forwarding is deliberately simple: requests carry a `Content-Length` (the AWS SDK always sends
//! one for DynamoDB), each is sent to the server on a connection of its own with `Connection: close`,
//! and the answer is read to its end and sent back with a `Content-Length`, on the client's
//! keep-alive connection.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
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
    calls: HashMap<String, usize>,
    rng: u64,
}

impl State {
    /// Counts the call and picks its fault.
    fn on_call(&mut self, operation: &str) -> Option<Fault> {
        *self.calls.entry(operation.to_owned()).or_default() += 1;
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
            calls: HashMap::new(),
            rng: 0x9E37_79B9_7F4A_7C15,
        }));
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                connections.spawn(async move {
                    let _ = serve(client, upstream, state).await;
                });
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

    /// Calls seen, per operation.
    pub fn calls_by_operation(&self) -> HashMap<String, usize> {
        self.state.lock().expect("proxy state").calls.clone()
    }

    /// Forgets the calls seen so far (e.g. after seeding through the proxy).
    pub fn reset_counts(&self) {
        self.state.lock().expect("proxy state").calls.clear();
    }
}

/// One HTTP/1.1 message head and body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// Serves one client connection: request after request until the client closes it or a fault does.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut client, &mut buffer).await? else {
            return Ok(());
        };
        let operation = request
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        let fault = state.lock().expect("proxy state").on_call(&operation);
        match fault {
            None => {
                let answer = forward(&request, upstream).await?;
                client.write_all(&answer).await?;
            }
            Some(Fault::Latency(delay)) => {
                tokio::time::sleep(delay).await;
                let answer = forward(&request, upstream).await?;
                client.write_all(&answer).await?;
            }
            Some(Fault::Throttle) => {
                client
                    .write_all(&json_answer(
                        400,
                        &aws_error(
                            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                            "Rate exceeded",
                        ),
                    ))
                    .await?;
            }
            Some(Fault::ServerError) => {
                client
                    .write_all(&json_answer(
                        500,
                        &aws_error(
                            "com.amazonaws.dynamodb.v20120810#InternalServerError",
                            "Internal server error",
                        ),
                    ))
                    .await?;
            }
            Some(Fault::Validation) => {
                client
                    .write_all(&json_answer(
                        400,
                        &aws_error(
                            "com.amazon.coral.validate#ValidationException",
                            "One or more parameter values were invalid",
                        ),
                    ))
                    .await?;
            }
            Some(Fault::TransactionConflict) => {
                let items = serde_json::from_slice::<serde_json::Value>(&request.body)
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
                client
                    .write_all(&json_answer(400, &body.to_string()))
                    .await?;
            }
            Some(Fault::Reply(status, body)) => {
                client.write_all(&json_answer(status, &body)).await?;
            }
            Some(Fault::Reset) => {
                // A zero linger makes the close an RST; with zero there is nothing to block on,
                // which is what the deprecation warns about.
                #[allow(deprecated)]
                client.set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Some(Fault::Hang) => {
                // Hold the connection until the client gives up on it.
                let mut sink = [0_u8; 1024];
                while client.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            Some(Fault::LoseResponse) => {
                let _answer = forward(&request, upstream).await?;
                return Ok(());
            }
        }
    }
}

fn aws_error(kind: &str, message: &str) -> String {
    serde_json::json!({"__type": kind, "message": message}).to_string()
}

fn json_answer(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.0\r\n\
         x-amzn-requestid: fault-proxy\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

/// Reads one request (head and `Content-Length` body); `None` when the client closed the
/// connection between requests.
async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Message>> {
    let Some(head_end) = read_head(stream, buffer).await? else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut message = Message {
        head,
        body: Vec::new(),
    };
    let length: usize = message
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < length {
        let mut chunk = [0_u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    message.body = buffer.drain(..length).collect();
    Ok(Some(message))
}

/// Reads until the end of a message head; returns its length (without the blank line).
async fn read_head(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(end));
        }
        let mut chunk = [0_u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `request` to the server on a connection of its own and returns the answer, re-framed with a
/// `Content-Length`.
async fn forward(request: &Message, upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut head = String::new();
    for (i, line) in request.head.lines().enumerate() {
        let name = line.split(':').next().unwrap_or_default().trim();
        if i > 0
            && (name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive"))
        {
            continue;
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("connection: close\r\n\r\n");
    server.write_all(head.as_bytes()).await?;
    server.write_all(&request.body).await?;
    let mut raw = Vec::new();
    server.read_to_end(&mut raw).await?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let answer = Message {
        head: String::from_utf8_lossy(&raw[..head_end]).into_owned(),
        body: raw[head_end + 4..].to_vec(),
    };
    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = if chunked {
        dechunk(&answer.body)?
    } else {
        answer.body.clone()
    };
    if let Some(length) = answer.header("content-length").and_then(|v| v.parse().ok()) {
        body.truncate(length);
    }
    let mut out = String::new();
    for (i, line) in answer.head.lines().enumerate() {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if i > 0
            && matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            )
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let invalid = || std::io::Error::from(std::io::ErrorKind::InvalidData);
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(invalid)?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(invalid());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
