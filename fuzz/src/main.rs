//! A fuzzer for request parsing and validation that runs on the stable toolchain (`make fuzz`).
//!
//! cargo-fuzz (libFuzzer) needs a nightly compiler for its coverage instrumentation, and only
//! stable is available here, so this is a coverage-free mutation fuzzer: it starts from a corpus
//! of real bodies, ids and tokens (the sample events among them), mutates them with byte edits,
//! splices and a dictionary of hostile fragments (JSON syntax, escapes, key prefixes, traversal,
//! percent-encoding, lookalike and control characters, huge values), and checks each result:
//!
//! - the domain parsers (`Email`, `UserName`, `Password`, `UserId`, `SessionToken`) and
//!   `JsonObject::parse` never panic, and what they accept keeps their invariants (an id is exactly
//!   a canonical UUID, an email is trimmed lowercase ASCII with one `@`, ...);
//! - the create_user, login and get_user handlers, run in-process through the same service as in
//!   Lambda, answer every input the parsers refuse with a 4xx in the contract shape (status, code,
//!   request id, `errors` on a 422 only), with `no-store` and `nosniff`, never a 5xx, and never
//!   echo a submitted value. Inputs the handlers' own parse functions accept (`create_user::parse`,
//!   `login::parse`, the very code `handle` runs) would reach DynamoDB: they are counted, not sent
//!   (the store points at a closed port, so a refused input that reached it would show as a 503
//!   and be reported).
//!
//! `FUZZ_SECONDS` (default 60) bounds the run, `FUZZ_SEED` repeats one. An input is data
//! ([`Input`]: the target, the bytes, the content type, the id), so a finding is shrunk (chunks cut
//! while it still fails) and saved as `fuzz/regressions/finding-<seed>.json`; every run replays
//! the saved regressions before anything new, so a fixed finding stays fixed once its file is
//! committed. The process exits with status 1 on a finding.
//!
//! Why not proptest or bolero, which shrink and keep regressions too: both would need the hostile
//! fragments and the splicing of real events rewritten as their generators, and bolero's coverage
//! guidance, its real gain, needs the nightly toolchain (as cargo-fuzz does). Shrinking and saved
//! regressions were the missing parts, and they are the few functions above `main`.

// A fuzzer: a broken expectation is a finding, reported by panicking with the input.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The handlers' futures, nested in the service's, are deep.
#![recursion_limit = "256"]

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use lambda_http::{Body, Request, RequestExt as _};
use serde_json::Value;
use shared::{
    App, Route,
    config::Config,
    domain::{Email, Password, SessionToken, UserId, UserName},
    json::JsonObject,
    request::{ApiRequest, Invocation, MAX_BODY_BYTES},
    runtime::{ApiService, Handler},
    store::{RetryPolicy, Store},
    telemetry::Scope,
};

/// xorshift64*: fast, deterministic for a seed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Fragments that tend to break parsers and validators.
const DICTIONARY: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\\",
    "\\\"",
    "\\u0000",
    "\\ud800",
    "\\udfff",
    "\\u00e9",
    "null",
    "true",
    "false",
    "-0",
    "1e999999",
    "123456789012345678901234567890",
    "\"email\"",
    "\"password\"",
    "\"name\"",
    "\"id\"",
    "\"__proto__\"",
    "\"password_hash\"",
    "\"created_at\"",
    "EMAIL#",
    "USER#",
    "SESSION#",
    "LOGIN#",
    "../",
    "..%2F",
    "%2e%2e%2f",
    "%00",
    "%",
    "%zz",
    "%FF",
    "@",
    "@@",
    ".",
    "..",
    " ",
    "\t",
    "\r\n",
    "\u{0}",
    "\u{7}",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\u{0430}",
    "\u{FF10}",
    "\u{2010}",
    "é",
    "李",
    "😀",
    "Bearer ",
    "bearer  ",
    "Basic ",
    "=",
    "-",
    "_",
    "+",
    "/",
    "?",
    "#",
    "*",
    "'",
    "' OR '1'='1",
];

/// Valid and near-valid starting points.
fn corpus() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = [
        r#"{"email":"ada@example.com","name":"Ada Lovelace","password":"correct horse battery"}"#,
        r#"{"email":"ada@example.com","password":"correct horse battery"}"#,
        r#"{"email":" Ada@Example.com ","password":"x"}"#,
        r#"{"email":"a@b.co","name":"Zoë 李","password":"12345678","id":"x"}"#,
        r#"{"email":"ada@example.com","email":"eve@example.com","password":"p"}"#,
        r#"{"email":["ada@example.com"],"name":{"a":1},"password":12345678}"#,
        r#"[{"email":"ada@example.com"}]"#,
        "",
        "ada@example.com",
        "Ada Lovelace",
        "correct horse battery",
        "7227c320-aeb5-419b-b88b-bacf58cdab80",
        "sBUGmswKEjSMPlJKbfw0x9o1x_NQRO-DP0Z_GGUHK2k",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // The sample events' bodies.
    let events = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    if let Ok(functions) = std::fs::read_dir(events) {
        for function in functions.flatten() {
            for case in std::fs::read_dir(function.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let event: Option<Value> = std::fs::read(case.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(body) = event.as_ref().and_then(|e| e["body"].as_str()) {
                    seeds.push(body.as_bytes().to_vec());
                }
            }
        }
    }
    seeds
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = rng.pick(seeds).clone();
    for _ in 0..=rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(9) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 if !data.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3..=5 => {
                let token = rng.pick(DICTIONARY).as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            6 => {
                let other = rng.pick(seeds);
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..to].iter().copied());
            }
            7 if rng.chance(20) => {
                // Occasionally huge: a long run, past the field caps or the body limit.
                let n = *rng.pick(&[101, 129, 255, 300, 5_000, MAX_BODY_BYTES + 1]);
                let byte = *rng.pick(b"a\"[{9\\");
                data.splice(at..at, std::iter::repeat_n(byte, n));
            }
            _ => {
                if !data.is_empty() {
                    let i = rng.below(data.len());
                    data[i] = *rng.pick(b"\"{}[],:\\ @.#%/\x00\x7f");
                }
            }
        }
    }
    data
}

/// The domain parsers: no panic, and their output keeps its invariants.
fn check_parsers(input: &str) {
    if let Ok(email) = Email::parse(input) {
        let s = email.as_str();
        assert!(
            s.is_ascii() && s == s.trim() && s == s.to_ascii_lowercase(),
            "{s:?}"
        );
        assert!(s.len() <= 254 && s.matches('@').count() == 1, "{s:?}");
        assert_eq!(Email::parse(s).ok().as_ref(), Some(&email), "idempotent");
    }
    if let Ok(name) = UserName::parse(input) {
        let s = name.as_str();
        assert!(s == s.trim() && !s.is_empty() && s.chars().count() <= UserName::MAX_CHARS);
        assert!(!s.chars().any(char::is_control), "{s:?}");
    }
    let new = Password::parse_new(input);
    let login = Password::parse_login(input);
    assert!(
        new.is_err() || login.is_ok(),
        "a sign-up password always passes at login"
    );
    if let Ok(p) = login {
        let shown = format!("{p:?}");
        assert!(
            !shown.contains(input) || "Password([redacted])".contains(input),
            "{shown}"
        );
    }
    if let Some(id) = UserId::parse(input) {
        let s = id.as_str();
        assert_eq!(s, input);
        assert!(
            s.len() == 36
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase() || b == b'-'),
            "{s:?}"
        );
        assert_eq!(shared::store::keys::user(&id).0, format!("USER#{s}"));
    }
    if let Some(token) = SessionToken::parse(input) {
        assert_eq!(token.expose().len(), 43);
        assert!(!format!("{token:?}").contains(input));
    }
}

/// What every refusal must look like. `values` are the strings the client sent.
fn check_refusal(what: &str, response: &lambda_http::Response<Body>, values: &[String]) {
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "{what}: status {status}");
    let headers = response.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/json", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    let body: Value = serde_json::from_slice(response.body().as_ref()).expect("a JSON body");
    assert_eq!(body["status"], status, "{what}");
    assert_eq!(
        body["request_id"].as_str(),
        Some(header("x-request-id")),
        "{what}"
    );
    let code = body["code"].as_str().expect("a code");
    assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let detail = body["detail"].as_str().expect("a detail");
    assert!(!detail.is_empty());
    assert_eq!(
        body.get("errors").is_some(),
        status == 422,
        "{what}: errors on 422 only"
    );
    let mut messages = vec![detail.to_owned()];
    for error in body["errors"].as_array().into_iter().flatten() {
        messages.push(error["message"].as_str().expect("a message").to_owned());
    }
    for value in values.iter().filter(|v| v.chars().count() >= 8) {
        for message in &messages {
            assert!(
                !message.contains(value.as_str()) || KNOWN_TEXT.contains(value.as_str()),
                "{what}: a message echoes the input: {message:?}"
            );
        }
    }
}

/// Text the messages are made of; an input that is part of it is not an echo.
const KNOWN_TEXT: &str = "this field is required must be a valid email address must be a string, \
    not a number a boolean an array an object null must not be empty must be at most 100 characters \
    128 characters must be at least 8 characters must not contain control characters unknown field: \
    not allowed here appears more than once body is not valid JSON body must be a JSON object, and \
    it is empty Request validation failed Content-Type must be application/json Not authenticated \
    User not found Request body is too large: the limit is 16384 bytes";

/// Every string a JSON body holds at its top level (values and, for completeness, the raw text).
fn submitted_values(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body).into_owned();
    let mut values = vec![text];
    if let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) {
        values.extend(
            members
                .values()
                .filter_map(|v| v.as_str().map(str::to_owned)),
        );
    }
    values
}

fn request(method: &str, path: &str, body: &[u8], headers: &[(&str, String)]) -> Option<Request> {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        let value = http::HeaderValue::from_str(value).ok()?;
        builder = builder.header(*name, value);
    }
    let body = match std::str::from_utf8(body) {
        Ok(text) if !text.is_empty() => Body::Text(text.to_owned()),
        Ok(_) => Body::Empty,
        Err(_) => Body::Binary(body.to_vec()),
    };
    builder.body(body).ok()
}

async fn serve<H: Handler>(
    app: &Arc<App>,
    name: &'static str,
    route: Route,
    handler: H,
    req: Request,
) -> lambda_http::Response<Body> {
    let service = ApiService::new(name, route, Ok(Arc::clone(app)), handler);
    // The invocation's telemetry scope, kept in memory (nothing is printed per input).
    let scope = Scope::new(name, "fuzz", None);
    scope.run(service.handle(req)).await
}

#[derive(Default)]
struct Stats {
    inputs: u64,
    refused: u64,
    valid_not_sent: u64,
    undeliverable: u64,
}

/// Which handler an input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Target {
    CreateUser,
    Login,
    GetUser,
}

/// One generated input, as data: what a finding saves (shrunk) and a regression replays.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Input {
    target: Target,
    /// The body (create_user, login) or the `Authorization` value (get_user).
    data: Vec<u8>,
    /// The body's content type (create_user, login).
    content_type: String,
    /// get_user: `Bearer ` before `data`.
    bearer: bool,
    /// get_user: the id in the path.
    id: Vec<u8>,
    /// get_user: the id also given as a path parameter, as API Gateway does.
    id_as_parameter: bool,
}

fn generate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Input {
    let data = mutate(rng, seeds);
    let content_type = (*rng.pick(&[
        "application/json",
        "application/json; charset=utf-8",
        "application/problem+json",
        "text/plain",
        "application/jsonp",
        "",
    ]))
    .to_owned();
    let target = *rng.pick(&[Target::CreateUser, Target::Login, Target::GetUser]);
    let bearer = rng.chance(2);
    let id = mutate(rng, seeds);
    let id_as_parameter = rng.chance(2);
    Input {
        target,
        data,
        content_type,
        bearer,
        id,
        id_as_parameter,
    }
}

/// Runs one input through the parsers and its handler; a broken expectation panics.
async fn check(app: &Arc<App>, input: &Input, stats: &mut Stats) {
    let data = &input.data;
    let text = String::from_utf8_lossy(data).into_owned();
    check_parsers(&text);
    let _ = JsonObject::parse(data);
    let content_type = input.content_type.clone();
    let too_large = data.len() > MAX_BODY_BYTES;
    let json = !content_type.is_empty()
        && content_type != "text/plain"
        && content_type != "application/jsonp";
    match input.target {
        Target::CreateUser => {
            // The handler's own parse: what it accepts would reach DynamoDB.
            let valid = !too_large
                && json
                && JsonObject::parse(data)
                    .ok()
                    .is_some_and(|body| create_user::parse(body).is_ok());
            if valid {
                stats.valid_not_sent += 1;
                return;
            }
            let Some(req) = request("POST", "/users", data, &[("content-type", content_type)])
            else {
                stats.undeliverable += 1;
                return;
            };
            let response = serve(
                app,
                "create_user",
                create_user::ROUTE,
                create_user::handle,
                req,
            )
            .await;
            check_refusal("create_user", &response, &submitted_values(data));
        }
        Target::Login => {
            let valid = !too_large
                && json
                && JsonObject::parse(data)
                    .ok()
                    .is_some_and(|body| login::parse(body).is_ok());
            if valid {
                stats.valid_not_sent += 1;
                return;
            }
            let Some(req) = request(
                "POST",
                "/auth/login",
                data,
                &[("content-type", content_type)],
            ) else {
                stats.undeliverable += 1;
                return;
            };
            let response = serve(app, "login", login::ROUTE, login::handle, req).await;
            check_refusal("login", &response, &submitted_values(data));
        }
        Target::GetUser => {
            // The header and the path id, both from the mutated input.
            let authorization = if input.bearer {
                format!("Bearer {text}")
            } else {
                text.clone()
            };
            let id = String::from_utf8_lossy(&input.id).into_owned();
            let raw_path = format!("/users/{}", id.replace(['?', '#', ' '], "%20"));
            let Some(mut req) = request(
                "GET",
                &raw_path,
                &[],
                &[("authorization", authorization.clone())],
            ) else {
                stats.undeliverable += 1;
                return;
            };
            if input.id_as_parameter {
                req = req.with_path_parameters(HashMap::from([("id".to_owned(), id.clone())]));
            }
            // The id as the handler sees it can only ever be one canonical UUID or nothing.
            let probe = ApiRequest::new(
                req_clone(&req),
                Invocation {
                    request_id: "fuzz".into(),
                    lambda_request_id: "fuzz".into(),
                    deadline: None,
                    xray_trace_id: None,
                    function: "get_user",
                    route: get_user::ROUTE,
                },
            );
            if let Some(param) = probe.path_param("id") {
                check_parsers(&param);
            }
            let token_shaped = probe.bearer_token().and_then(SessionToken::parse).is_some();
            if token_shaped {
                stats.valid_not_sent += 1;
                return;
            }
            let response = serve(app, "get_user", get_user::ROUTE, get_user::handle, req).await;
            assert_eq!(
                response.status().as_u16(),
                401,
                "get_user without a token-shaped bearer"
            );
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
            check_refusal("get_user", &response, &[authorization, id]);
        }
    }
    stats.refused += 1;
}

/// While set, the panic hook stays quiet: a finding's panic is reported by its message, once,
/// and the thousands of panics of a shrink are not printed at all.
static CHECKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn quiet_while_checking() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !CHECKING.load(std::sync::atomic::Ordering::Relaxed) {
            previous(info);
        }
    }));
}

/// The panic message if `input` breaks an expectation.
fn finding(
    runtime: &tokio::runtime::Runtime,
    app: &Arc<App>,
    input: &Input,
    stats: &mut Stats,
) -> Option<String> {
    CHECKING.store(true, std::sync::atomic::Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(check(app, input, stats));
    }));
    CHECKING.store(false, std::sync::atomic::Ordering::Relaxed);
    outcome.err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    })
}

/// A smaller input that still breaks an expectation: chunks of the body and of the id are cut
/// while the input keeps failing, halving the chunk size down to one byte (a bounded number of
/// tries, so a slow finding does not shrink forever).
fn shrink(
    runtime: &tokio::runtime::Runtime,
    app: &Arc<App>,
    mut input: Input,
    mut message: String,
) -> (Input, String) {
    let mut stats = Stats::default();
    let mut tries = 0;
    for field in [0, 1] {
        let len = |i: &Input| if field == 0 { i.data.len() } else { i.id.len() };
        let mut chunk = len(&input).max(1);
        while chunk > 0 && tries < 5_000 {
            let mut start = 0;
            while start < len(&input) && tries < 5_000 {
                let mut smaller = input.clone();
                let bytes = if field == 0 {
                    &mut smaller.data
                } else {
                    &mut smaller.id
                };
                let end = (start + chunk).min(bytes.len());
                bytes.drain(start..end);
                tries += 1;
                match finding(runtime, app, &smaller, &mut stats) {
                    Some(still) => {
                        input = smaller;
                        message = still;
                    }
                    None => start += chunk,
                }
            }
            chunk /= 2;
        }
    }
    (input, message)
}

fn regressions_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// Writes the (shrunk) input of a finding where every later run replays it first; commit the file
/// with the fix.
fn save_regression(input: &Input, message: &str, seed: u64) -> String {
    let dir = regressions_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("finding-{seed}.json"));
    let record = serde_json::json!({"seed": seed, "finding": message, "input": input});
    let _ = std::fs::write(
        &path,
        serde_json::to_string_pretty(&record).unwrap_or_default() + "\n",
    );
    path.display().to_string()
}

/// Runs every saved regression (`fuzz/regressions/*.json`) before any new input; a failing one is
/// a finding again. Returns how many ran.
fn replay_regressions(
    runtime: &tokio::runtime::Runtime,
    app: &Arc<App>,
    stats: &mut Stats,
) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(regressions_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in &files {
        let record: Value = serde_json::from_slice(&std::fs::read(path).expect("readable"))
            .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
        let input: Input = serde_json::from_value(record["input"].clone())
            .unwrap_or_else(|err| panic!("{} holds no input: {err}", path.display()));
        if let Some(message) = finding(runtime, app, &input, stats) {
            eprintln!("REGRESSION {} fails again: {message}", path.display());
            std::process::exit(1);
        }
    }
    files.len()
}

fn req_clone(req: &Request) -> Request {
    let mut copy = http::Request::builder().method(req.method()).uri(req.uri());
    for (name, value) in req.headers() {
        copy = copy.header(name, value);
    }
    let copy = copy.body(Body::Empty).expect("a copy");
    match req.path_parameters_ref() {
        Some(params) => copy.with_path_parameters(params.clone()),
        None => copy,
    }
}

fn app() -> Arc<App> {
    // A closed port: an input that reaches the store gets a 503, which the checks report.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    drop(listener);
    let sdk = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .http_client(shared::store::https_client())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "fuzz", "fuzz", None, None, "fuzz",
        ))
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(sdk);
    let config = Config {
        table_name: "fuzz".into(),
        stage: "fuzz".into(),
        retry: RetryPolicy::single_attempt(Duration::from_millis(200)),
        ..Config::default()
    };
    Arc::new(App::new(config, Store::new(client, "fuzz")))
}

fn main() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).expect("randomness");
            u64::from_le_bytes(bytes) | 1
        });
    println!("fuzzing request parsing for {seconds} s, FUZZ_SEED={seed}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let app = app();
    let seeds = corpus();
    quiet_while_checking();
    let mut stats = Stats::default();
    let replayed = replay_regressions(&runtime, &app, &mut stats);
    let mut rng = Rng(seed);
    let started = Instant::now();
    let limit = Duration::from_secs(seconds);
    while started.elapsed() < limit {
        let state = rng.0;
        let input = generate(&mut rng, &seeds);
        stats.inputs += 1;
        if let Some(message) = finding(&runtime, &app, &input, &mut stats) {
            let (input, message) = shrink(&runtime, &app, input, message);
            let path = save_regression(&input, &message, state);
            eprintln!(
                "FINDING after {} inputs: {message}\nreproduce with FUZZ_SEED={state}; the input, \
                 shrunk, is saved as {path} and replayed first by every later run",
                stats.inputs
            );
            std::process::exit(1);
        }
    }
    println!("{replayed} saved regressions replayed from fuzz/regressions/");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} inputs in {secs:.1} s ({:.0}/s): {} refused and checked, {} valid (not sent: they would \
         reach DynamoDB), {} not deliverable (a header value HTTP cannot carry); no finding",
        stats.inputs,
        stats.inputs as f64 / secs,
        stats.refused,
        stats.valid_not_sent,
        stats.undeliverable,
    );
}
