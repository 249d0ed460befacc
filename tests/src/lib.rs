//! The black-box test harness: each function's real service, fed the sample events from `events/`
//! exactly as the Lambda runtime would feed them, against the local DynamoDB-compatible server.
//!
//! `make test` starts that server and exports `AWS_ENDPOINT_URL_DYNAMODB` and `TABLE_NAME` (a table
//! created from template.yaml). [`Harness::new`] clones that table's key schema and TTL into a
//! fresh table of its own, so tests run in parallel and "nothing was stored" means an empty table.
//! A test that never looks at the table's contents and writes no fixed key (no sample user) takes
//! [`Harness::shared`] instead: one table for the whole test binary, made once (the local server
//! serialises every request, so each table made costs every test a little).
//!
//! Two ways to run a function: [`Harness::invoke`] runs one of the first four functions' service
//! in-process ([`functions`]), and [`Harness::call`] runs *any* function by name through its real
//! binary against a local Lambda Runtime API, one process per (harness, function, extra
//! environment), started on first use and reused. Both return the same [`Reply`], held to
//! openapi.yaml, with the invocation's EMF document. A new endpoint's tests use
//! [`Harness::call`], which needs no dependency on its crate.

// A test harness: a failed expectation is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod contract;
pub mod fault_proxy;
pub mod runtime_api;
pub mod samples;
pub mod sentry_sink;
pub mod template;
pub mod xray_daemon;

pub use fault_proxy::{Fault, FaultProxy, Plan};
pub use test_support::root;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, BillingMode, TimeToLiveSpecification},
};
use lambda_http::{Adapter, request::LambdaRequest};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::{
    App, Route,
    config::Config,
    cors::AllowedOrigins,
    idempotency::{FINGERPRINT_KEY_ENV, FingerprintKey},
    runtime::Handler,
    store::Store,
    telemetry::Scope,
};
use tower::ServiceExt as _;

/// A stored item.
pub type Item = std::collections::HashMap<String, AttributeValue>;

/// A sample event from `events/<function>/<case>.json`.
pub fn event(function: &str, case: &str) -> Value {
    let path = root()
        .join("events")
        .join(function)
        .join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()))
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `make test`, which starts the local DynamoDB")
    })
}

async fn sdk_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared::store::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        // One retry layer, the functions' own (shared::store::retry), as in Lambda.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

/// The function processes a harness has started, by function name and extra environment.
type Processes = tokio::sync::Mutex<
    BTreeMap<(String, Vec<(String, String)>), Arc<runtime_api::FunctionProcess>>,
>;

/// A fresh table on the local server, an [`App`] pointed at it, and the function processes
/// [`Harness::call`] started for it (ended when the last clone of the harness is dropped).
#[derive(Debug, Clone)]
pub struct Harness {
    /// A client of the local server (for seeding and inspecting the table).
    pub client: Client,
    /// This harness's own table.
    pub table: String,
    /// The state every function gets, pointed at [`Harness::table`].
    pub app: Arc<App>,
    processes: Arc<Processes>,
}

impl Harness {
    /// Creates a table like `TABLE_NAME` (keys, attribute definitions, TTL) under a new name.
    pub async fn new() -> Self {
        let client = Self::client().await;
        let table = Self::create_table(&client).await;
        let app = Self::app_for(client.clone(), &table);
        Self::with(client, table, app)
    }

    fn with(client: Client, table: String, app: Arc<App>) -> Self {
        Self {
            client,
            table,
            app,
            processes: Arc::default(),
        }
    }

    /// The test binary's shared table (made by the first caller), with a client of this test's
    /// own: for tests that do not inspect the table and use only keys of their own.
    pub async fn shared() -> Self {
        static SHARED: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let client = Self::client().await;
        let table = SHARED
            .get_or_init(|| Self::create_table(&client))
            .await
            .clone();
        let app = Self::app_for(client.clone(), &table);
        Self::with(client, table, app)
    }

    /// Deletes every item of this harness's table (for a test that runs cases one after another).
    pub async fn clear(&self) {
        for item in self.items().await {
            let key = ["pk", "sk"]
                .into_iter()
                .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
                .collect();
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .expect("delete an item");
        }
    }

    async fn client() -> Client {
        let endpoint = required_env("AWS_ENDPOINT_URL_DYNAMODB");
        Client::new(&sdk_config(Some(&endpoint)).await)
    }

    async fn create_table(client: &Client) -> String {
        let template_table = required_env("TABLE_NAME");
        let described = client
            .describe_table()
            .table_name(&template_table)
            .send()
            .await
            .unwrap_or_else(|err| panic!("describe {template_table}: {err:?}"))
            .table
            .expect("a table description");
        let table = format!("test-{}", uuid::Uuid::new_v4().simple());
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(described.key_schema)
            .set_attribute_definitions(described.attribute_definitions)
            .send()
            .await
            .expect("create the test table");
        let ttl = client
            .describe_time_to_live()
            .table_name(&template_table)
            .send()
            .await
            .expect("describe TTL")
            .time_to_live_description
            .and_then(|d| d.attribute_name);
        if let Some(attribute) = ttl {
            client
                .update_time_to_live()
                .table_name(&table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()
                        .expect("a TTL specification"),
                )
                .send()
                .await
                .expect("enable TTL");
        }
        table
    }

    fn app_for(client: Client, table: &str) -> Arc<App> {
        let config = Config {
            table_name: table.to_owned(),
            stage: "test".to_owned(),
            fingerprint_key: FingerprintKey::parse(TEST_FINGERPRINT_KEY).ok(),
            ..Config::default()
        };
        Arc::new(App::new(config, Store::new(client, table)))
    }

    /// An app whose DynamoDB endpoint is `endpoint` (e.g. a closed port), same table name.
    pub async fn app_with_endpoint(&self, endpoint: &str) -> Arc<App> {
        let client = Client::new(&sdk_config(Some(endpoint)).await);
        Self::app_for(client, &self.table)
    }

    /// Every item in this harness's table.
    pub async fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .expect("scan the test table");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Items whose `pk` starts with `prefix` (`USER#`, `EMAIL#`, `SESSION#`).
    pub async fn items_with_prefix(&self, prefix: &str) -> Vec<Item> {
        self.items()
            .await
            .into_iter()
            .filter(|item| string(item, "pk").is_some_and(|pk| pk.starts_with(prefix)))
            .collect()
    }

    /// Runs `event` through `handler` served the way `shared::run` serves it.
    pub async fn invoke<H: Handler>(&self, function: Function<H>, event: Value) -> Reply {
        invoke_with(self.app.clone(), function, event).await
    }

    /// Runs `event` through the real binary of `function` (any crate under functions/, by name),
    /// as Lambda runs it, against this harness's table: what it answers, held to openapi.yaml like
    /// every reply, with the invocation's EMF document from the process's stdout. The process gets
    /// what the in-process [`App`] has: `TABLE_NAME`, the local server's endpoint (this process's
    /// `AWS_ENDPOINT_URL_DYNAMODB`), stage `test` and [`TEST_ALLOWED_ORIGINS`]. It is started on
    /// the first call and reused; calls to one process are served one at a time, as Lambda does.
    pub async fn call(&self, function: &str, event: Value) -> Reply {
        self.call_with_env(function, &[], event).await
    }

    /// As [`Harness::call`], the process started with `env` on top of the usual environment (e.g.
    /// `AWS_ENDPOINT_URL_DYNAMODB` pointed at a [`FaultProxy`], `DYNAMODB_MAX_ATTEMPTS`). Each
    /// distinct `env` has its own process.
    pub async fn call_with_env(&self, function: &str, env: &[(&str, &str)], event: Value) -> Reply {
        let process = self.process(function, env).await;
        let before = process.emf_documents();
        let invoked = process.api.invoke(event.clone()).await;
        assert!(
            invoked.ok,
            "{function} answered the runtime with an error, which API Gateway turns into its own 502: {:#?}\nstderr: {:?}",
            invoked.body,
            process.stderr()
        );
        let origins = env
            .iter()
            .find(|(key, _)| *key == "CORS_ALLOW_ORIGINS")
            .map_or(TEST_ALLOWED_ORIGINS, |(_, value)| value);
        let (origins, invalid) = AllowedOrigins::parse(origins);
        assert!(invalid.is_empty(), "{invalid:?}");
        let emf = process.emf_document(before, &invoked).await;
        let mut reply = Reply::from_wire(invoked.body, event, invoked.lambda_request_id, &origins);
        reply.emf = emf;
        reply
    }

    /// The process [`Harness::call_with_env`] runs `function` in with `env`, started on first use.
    pub async fn process(
        &self,
        function: &str,
        env: &[(&str, &str)],
    ) -> Arc<runtime_api::FunctionProcess> {
        let key = (
            function.to_owned(),
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
        );
        let mut processes = self.processes.lock().await;
        if let Some(process) = processes.get(&key) {
            return Arc::clone(process);
        }
        let mut settings = vec![
            ("TABLE_NAME", self.table.as_str()),
            ("CORS_ALLOW_ORIGINS", TEST_ALLOWED_ORIGINS),
            (FINGERPRINT_KEY_ENV, TEST_FINGERPRINT_KEY),
        ];
        settings.extend_from_slice(env);
        let process = Arc::new(
            runtime_api::FunctionProcess::start(
                runtime_api::function_binary(function),
                function,
                &settings,
            )
            .await,
        );
        processes.insert(key, Arc::clone(&process));
        process
    }
}

/// A string attribute of an item.
pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A function under test: its name, route and handler.
#[derive(Debug, Clone, Copy)]
pub struct Function<H> {
    /// The function's name (its crate).
    pub name: &'static str,
    /// The route it serves.
    pub route: Route,
    /// Its handler.
    pub handler: H,
}

/// The first four functions, in-process, for the tests written before [`Harness::call`] (which
/// runs any function by name through its binary, and is what a new endpoint's tests use: it
/// needs no dependency on the function's crate).
pub mod functions {
    use super::Function;
    use shared::{ApiRequest, App, HandlerResult};
    use std::{future::Future, sync::Arc};

    /// `GET /health`.
    pub fn health() -> Function<impl shared::runtime::Handler> {
        f("health", health::ROUTE, health::handle)
    }
    /// `POST /users`.
    pub fn create_user() -> Function<impl shared::runtime::Handler> {
        f("create_user", create_user::ROUTE, create_user::handle)
    }
    /// `POST /auth/login`.
    pub fn login() -> Function<impl shared::runtime::Handler> {
        f("login", login::ROUTE, login::handle)
    }
    /// `GET /users/{id}`.
    pub fn get_user() -> Function<impl shared::runtime::Handler> {
        f("get_user", get_user::ROUTE, get_user::handle)
    }

    fn f<F, Fut>(name: &'static str, route: shared::Route, handler: F) -> Function<F>
    where
        F: Fn(Arc<App>, ApiRequest) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Function {
            name,
            route,
            handler,
        }
    }
}

/// How long an invocation has in the tests unless a test says otherwise (the function's timeout in
/// template.yaml).
pub const DEFAULT_INVOCATION_TIME: Duration = Duration::from_secs(10);

/// Runs one event through the function's service with `app`, as the runtime would, and returns
/// what the runtime would send back to API Gateway.
pub async fn invoke_with<H: Handler>(app: Arc<App>, function: Function<H>, event: Value) -> Reply {
    invoke_with_deadline(app, function, event, DEFAULT_INVOCATION_TIME).await
}

/// The `IDEMPOTENCY_FINGERPRINT_KEY` of every test app and function process.
pub const TEST_FINGERPRINT_KEY: &str = "test-only-fingerprint-key-0123456789abcdef";

/// The origin list every in-process invocation is served with (as `CORS_ALLOW_ORIGINS`).
pub const TEST_ALLOWED_ORIGINS: &str = "https://app.example.com,http://localhost:*";

/// As [`invoke_with`], with the Lambda context's deadline `time_left` from now.
pub async fn invoke_with_deadline<H: Handler>(
    app: Arc<App>,
    function: Function<H>,
    event: Value,
    time_left: Duration,
) -> Reply {
    serve(Ok(app), function, event, time_left, TEST_ALLOWED_ORIGINS).await
}

/// Runs one event through `shared::runtime::service`, as `shared::run` builds it: `app` is the
/// outcome of start-up (an `Err` is a misconfigured function), `origins` its `CORS_ALLOW_ORIGINS`.
pub async fn serve<H: Handler>(
    app: shared::runtime::Started,
    function: Function<H>,
    event: Value,
    time_left: Duration,
    origins: &str,
) -> Reply {
    let request: LambdaRequest =
        serde_json::from_value(event.clone()).expect("the event is an API Gateway event");
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline = u64::try_from(
        (SystemTime::now() + time_left)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    context.invoked_function_arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        function.name
    );
    let lambda_request_id = context.request_id.clone();
    let (origins, invalid) = AllowedOrigins::parse(origins);
    assert!(invalid.is_empty(), "{invalid:?}");
    let service = shared::runtime::service(
        function.name,
        function.route,
        app,
        function.handler,
        &origins,
    );
    let adapter = Adapter::from(service);
    // The scope the runtime layer would open; its EMF document is kept instead of printed.
    let scope = Scope::new(function.name, &lambda_request_id, None);
    let response = scope
        .run(adapter.oneshot(LambdaEvent::new(request, context)))
        .await
        .unwrap_or_else(|never| match never {});
    let wire = serde_json::to_value(&response).expect("the response serialises");
    let mut reply = Reply::from_wire(wire, event, lambda_request_id, &origins);
    reply.emf = scope.document();
    reply
}

/// Sends `n` concurrent sign-ups with one email through `app` and returns how many got 201 and how
/// many 409 (each 409 checked against the contract); any other answer fails the test.
pub async fn same_email_sign_ups(app: Arc<App>, n: usize) -> (usize, usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let app = Arc::clone(&app);
        let body = serde_json::json!({
            "email": "race@example.com",
            "name": format!("Racer {i}"),
            "password": format!("password number {i}"),
        });
        let sample = with_request_id(
            with_body(event("create_user", "ok"), body.to_string()),
            &format!("race-{i}"),
        );
        tasks.spawn(async move { invoke_with(app, functions::create_user(), sample).await });
    }
    let (mut created, mut conflicts) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("no task panicked");
        match reply.status {
            201 => created += 1,
            409 => {
                reply.assert_error(409, "user_exists");
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {reply:#?}"),
        }
    }
    (created, conflicts)
}

/// The headers of a response as the runtime sends it to API Gateway (`headers` and
/// `multiValueHeaders`), names lowercased.
pub fn wire_headers(wire: &Value) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    if let Some(map) = wire["headers"].as_object() {
        for (name, value) in map {
            headers.insert(
                name.to_ascii_lowercase(),
                value.as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    if let Some(map) = wire["multiValueHeaders"].as_object() {
        for (name, values) in map {
            if let Some(first) = values.as_array().and_then(|v| v.first()) {
                headers
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| first.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    headers
}

/// What the function handed back to API Gateway, decoded.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// The `requestContext.requestId` of the event, if any.
    pub gateway_request_id: Option<String>,
    /// The Lambda request id of the invocation.
    pub lambda_request_id: String,
    /// The invocation's EMF document.
    pub emf: Value,
}

impl Reply {
    fn from_wire(
        wire: Value,
        event: Value,
        lambda_request_id: String,
        origins: &AllowedOrigins,
    ) -> Self {
        let status = wire["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .expect("statusCode");
        let headers = wire_headers(&wire);
        assert_eq!(
            wire["isBase64Encoded"].as_bool(),
            Some(false),
            "JSON responses go out as text"
        );
        // Every response, whatever produced it, is never cached and never sniffed.
        assert_eq!(
            headers.get("cache-control").map(String::as_str),
            Some("no-store"),
            "{headers:#?}"
        );
        assert_eq!(
            headers.get("x-content-type-options").map(String::as_str),
            Some("nosniff"),
            "{headers:#?}"
        );
        assert_cors(&event, &headers, origins);
        let text = wire["body"].as_str().unwrap_or_default().to_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        // Every response the suite sees is held to openapi.yaml.
        contract::assert_documented(
            event["httpMethod"].as_str().unwrap_or_default(),
            event["resource"].as_str().unwrap_or_default(),
            status,
            &headers,
            &body,
        );
        let gateway_request_id = event["requestContext"]["requestId"]
            .as_str()
            .map(str::to_owned);
        Self {
            status,
            headers,
            text,
            body,
            gateway_request_id,
            lambda_request_id,
            emf: Value::Null,
        }
    }

    /// A metric's value in the invocation's EMF document (the sum when it has several values).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match &self.emf[name] {
            Value::Number(n) => n.as_f64(),
            Value::Array(values) => Some(values.iter().filter_map(Value::as_f64).sum()),
            _ => None,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The request id the contract promises: the gateway's when the event had one.
    pub fn expected_request_id(&self) -> &str {
        self.gateway_request_id
            .as_deref()
            .unwrap_or(&self.lambda_request_id)
    }

    /// Asserts the headers every response carries (a 204 has no body, so no content type).
    pub fn assert_common_headers(&self) {
        let content_type = (self.status != 204).then_some("application/json");
        assert_eq!(self.header("content-type"), content_type, "{self:#?}");
        assert_eq!(
            self.header("x-request-id"),
            Some(self.expected_request_id()),
            "{self:#?}"
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("cache-control"), Some("no-store"));
    }

    /// Asserts an error response in the contract shape: the status, the code, a body valid against
    /// the contract's JSON schema, its request id equal to the header's.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{self:#?}");
        self.assert_common_headers();
        assert_valid_error_body(&self.body);
        assert_eq!(self.body["status"], status, "{self:#?}");
        assert_eq!(self.body["code"], code, "{self:#?}");
        assert_eq!(self.body["request_id"], self.expected_request_id());
        self
    }

    /// The `field`s of a 422's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The request's `Origin` header, if the event has one.
pub fn origin_of(event: &Value) -> Option<&str> {
    event["headers"]
        .as_object()?
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("origin"))
        .and_then(|(_, value)| value.as_str())
}

/// Asserts the CORS headers of a response to `event`: an allowed `Origin` is echoed and can read
/// every contract header; any other origin, or none, gets no allow header; no credentials ever;
/// and with an empty list, no CORS header at all.
pub fn assert_cors(event: &Value, headers: &BTreeMap<String, String>, origins: &AllowedOrigins) {
    let origin = origin_of(event);
    let allow_origin = headers
        .get("access-control-allow-origin")
        .map(String::as_str);
    assert!(
        !headers.contains_key("access-control-allow-credentials"),
        "bearer tokens, not cookies: {headers:#?}"
    );
    if origins.is_empty() {
        let cors: Vec<_> = headers
            .keys()
            .filter(|name| name.starts_with("access-control-"))
            .collect();
        assert!(
            cors.is_empty(),
            "no CORS headers when no origin is allowed: {cors:?}"
        );
        return;
    }
    match origin {
        Some(origin) if origins.allows(origin.as_bytes()) => {
            assert_eq!(allow_origin, Some(origin), "{headers:#?}");
            let exposed = headers
                .get("access-control-expose-headers")
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for name in shared::cors::EXPOSED_HEADERS {
                assert!(
                    exposed.iter().any(|e| e == name),
                    "{name} is not exposed: {headers:#?}"
                );
            }
        }
        _ => assert_eq!(
            allow_origin, None,
            "{origin:?} is not allowed: {headers:#?}"
        ),
    }
    assert!(
        headers
            .get("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "the answer depends on Origin: {headers:#?}"
    );
}

/// Asserts that `body` is a valid error body of the contract (openapi.yaml's `Error`).
pub fn assert_valid_error_body(body: &Value) {
    contract::assert_valid_error_body(body);
}

/// Sets the `Authorization` header of a REST event (both header maps).
pub fn with_authorization(mut event: Value, value: &str) -> Value {
    event["headers"]["Authorization"] = Value::from(value);
    event["multiValueHeaders"]["Authorization"] = Value::from(vec![value]);
    event
}

/// Sets the `{id}` of a `GET /users/{id}` REST event (path, resource path and path parameters).
pub fn with_user_id(mut event: Value, id: &str) -> Value {
    event["path"] = Value::from(format!("/users/{id}"));
    event["requestContext"]["path"] = Value::from(format!("/dev/users/{id}"));
    event["pathParameters"] = serde_json::json!({ "id": id });
    event
}

/// Sets a request header of a REST event (both header maps), replacing any value it had.
pub fn with_header(event: Value, name: &str, value: &str) -> Value {
    let mut event = without_header(event, name);
    event["headers"][name] = Value::from(value);
    event["multiValueHeaders"][name] = Value::from(vec![value]);
    event
}

/// Replaces the body of a REST event.
pub fn with_body(mut event: Value, body: impl Into<String>) -> Value {
    event["body"] = Value::from(body.into());
    event
}

/// Gives a REST event a new gateway request id (concurrent tests send the same event many times).
pub fn with_request_id(mut event: Value, id: &str) -> Value {
    event["requestContext"]["requestId"] = Value::from(id);
    event
}

/// Removes a request header from a REST event (both header maps), whatever its case.
pub fn without_header(mut event: Value, name: &str) -> Value {
    for map in ["headers", "multiValueHeaders"] {
        if let Some(headers) = event[map].as_object_mut() {
            headers.retain(|n, _| !n.eq_ignore_ascii_case(name));
        }
    }
    event
}

/// A loopback HTTP endpoint nobody listens on (a DynamoDB or Sentry that is down).
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The median of some durations (the upper one of an even count).
pub fn median(mut values: Vec<Duration>) -> Duration {
    assert!(!values.is_empty(), "a median of nothing");
    values.sort();
    values[values.len() / 2]
}

/// Everything a client can see of a reply but the per-request id and `Retry-After` (which the
/// tests that need them compare on their own): for "these two answers are the same" checks.
pub fn visible(reply: &Reply) -> (u16, Value, Vec<(String, String)>) {
    let mut body = reply.body.clone();
    body["request_id"] = Value::Null;
    let headers = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "retry-after"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    (reply.status, body, headers)
}

/// What Lambda keeps of `lines` (a function's stdout) when its application log level is `level`,
/// by its documented rule: a JSON line's `level` decides, and a line whose `level` is missing or
/// not a level name (an EMF document, say) counts as INFO.
pub fn lambda_keeps(lines: &[String], level: &str) -> Vec<String> {
    const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |name: &str| ORDER.iter().position(|l| l.eq_ignore_ascii_case(name));
    let threshold = rank(level).unwrap_or_else(|| panic!("{level} is not a Lambda log level"));
    lines
        .iter()
        .filter(|line| {
            let own = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("level").and_then(Value::as_str).and_then(rank));
            own.unwrap_or(2) >= threshold
        })
        .cloned()
        .collect()
}
