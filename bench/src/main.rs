//! `lambda-bench`: runs each function's release binary under a local Lambda Runtime API, beside a
//! bare lambda_http baseline, against the local DynamoDB, and reports cold start, init (phase by
//! phase, from the functions' init line), warm latency and CPU time per path, throughput, peak
//! memory, binary size, log bytes per request, the whole bill per million requests (Lambda, log
//! ingestion) and the custom metrics the EMF documents define, the cost of sign-ups and logins at
//! 256, 512 and 1024 MB, the first request after a cold start with DynamoDB behind TLS, and a
//! summary against the baseline. `make bench` runs it; BENCHMARKS.md explains the figures;
//! `--help` lists the flags.
//!
//! Needs `TABLE_NAME` and `AWS_ENDPOINT_URL_DYNAMODB` (a local DynamoDB with the table), as
//! `scripts/bench.sh` sets them. Functions and the baseline are measured interleaved, in short
//! alternating batches, so that the noise of a shared machine hits both alike; every figure is the
//! median over the runs.
//!
//! What lives where: this file holds the paths, the runs and the report; the formulas, parsers
//! and the TLS terminator are in the library (`lambda_bench`, src/lib.rs lists its modules).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Parser;
use lambda_bench::{
    cost::{self, Bill},
    emf::Metrics,
    first_request,
    init_phases::{self, Phases},
    process::{launch, release_binary},
    stats::{Summary, median},
    system::{self, CpuSnapshot},
    template::MemorySizes,
    tls,
};
use serde_json::{Value, json};
use test_support::{
    process::{FunctionProcess, Keep},
    runtime_api::{DEFAULT_DEADLINE, Invoked, RuntimeApi},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// The password of the user the bench signs up and logs in as.
const PASSWORD: &str = "correct horse battery staple";
/// How long a cold start waits, after its first response, for the function's init line (it may
/// come after the first response: the DynamoDB client is built on a background thread).
const INIT_LINE_WAIT: Duration = Duration::from_secs(2);
/// How long a cold start waits, after its first response, for the function's EMF document.
const EMF_WAIT: Duration = Duration::from_secs(1);
/// The memory sizes the Argon2 paths are costed at.
const SIZING_MB: [u32; 3] = [256, 512, 1024];
/// Issue 16's ceiling on stdout bytes per request, EMF included.
const LOG_BYTES_TARGET: f64 = 600.0;

/// Runs each function's release binary under a local Lambda Runtime API, beside a bare lambda_http
/// baseline, and reports cold start, warm latency per path, memory and cost (BENCHMARKS.md).
///
/// Needs TABLE_NAME and AWS_ENDPOINT_URL_DYNAMODB (a local DynamoDB with the table) and the release
/// binaries: run it with `make bench` (extra flags in BENCH_ARGS), which sets up all three. Writes
/// report.md and results.json to --out and prints the report.
#[derive(Debug, Clone, Parser)]
#[command(name = "lambda-bench", version)]
struct Options {
    /// Measured runs (at least 1); every figure is the median over them.
    #[arg(long, value_name = "N", default_value = "3")]
    runs: NonZeroUsize,
    /// Cold starts per target in each run (at least 1). A cold start is a few milliseconds, so
    /// one outlier moves a median of 5 by a third; 15 keep the 1.5× verdict off the noise.
    #[arg(long, value_name = "N", default_value = "15")]
    cold: NonZeroUsize,
    /// Rounds of interleaved warm batches in each run (at least 1).
    #[arg(long, value_name = "N", default_value = "20")]
    rounds: NonZeroUsize,
    /// Cold starts per first request and variant with DynamoDB behind TLS, with and without the
    /// connection opened during init (0 skips that measurement).
    #[arg(long, value_name = "N", default_value = "5")]
    tls_cold: usize,
    /// Where the release binaries are (and lambda/<name>/bootstrap, the arm64 ones whose sizes are
    /// reported) [default: the workspace's target/]
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Where report.md and results.json are written [default: the workspace's target/bench/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Options {
    fn target_dir(&self) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| test_support::root().join("target"))
    }

    fn out(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| test_support::root().join("target").join("bench"))
    }
}

fn event(function: &str, case: &str) -> Result<Value, Error> {
    let path = test_support::root()
        .join("events")
        .join(function)
        .join(format!("{case}.json"));
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?,
    )?)
}

/// The events of the paths, built from the sample events in `events/`.
#[derive(Debug, Clone)]
struct Events {
    create_invalid: Value,
    login_invalid: Value,
    get_user_no_token: Value,
    health: Value,
    create_ok: Value,
    login_ok: Value,
    get_user_ok: Value,
    /// Every function's `method_not_allowed` sample, by function.
    method_not_allowed: BTreeMap<&'static str, Value>,
}

impl Events {
    fn load() -> Result<Self, Error> {
        Ok(Self {
            create_invalid: event("create_user", "invalid_fields")?,
            login_invalid: event("login", "invalid_fields")?,
            get_user_no_token: event("get_user", "no_token")?,
            health: event("health", "ok")?,
            create_ok: event("create_user", "ok")?,
            login_ok: event("login", "ok")?,
            get_user_ok: event("get_user", "ok")?,
            method_not_allowed: Target::functions()
                .into_iter()
                .map(|f| Ok((f.name(), event(f.name(), "method_not_allowed")?)))
                .collect::<Result<_, Error>>()?,
        })
    }

    fn create_unique(&self) -> (Value, String) {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let mut event = self.create_ok.clone();
        event["body"] = Value::from(
            json!({"email": email, "name": "Bench Mark", "password": PASSWORD}).to_string(),
        );
        (event, email)
    }

    fn login(&self, email: &str) -> Value {
        let mut event = self.login_ok.clone();
        event["body"] = Value::from(json!({"email": email, "password": PASSWORD}).to_string());
        event
    }

    fn get_user(&self, id: &str, token: &str) -> Value {
        let mut event = self.get_user_ok.clone();
        let bearer = format!("Bearer {token}");
        event["path"] = Value::from(format!("/users/{id}"));
        event["pathParameters"] = json!({"id": id});
        event["requestContext"]["path"] = Value::from(format!("/dev/users/{id}"));
        event["headers"]["Authorization"] = Value::from(bearer.as_str());
        event["multiValueHeaders"]["Authorization"] = json!([bearer]);
        event
    }
}

/// What the bench runs: the baseline and every function (the crates under functions/, from cargo
/// metadata: a new endpoint is built, cold-started and measured for memory without an edit here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Bare,
    /// A function, by its crate's (and binary's) name.
    Function(&'static str),
}

/// The functions whose paths the warm batches measure (named there; see [`WarmPath`]).
const CREATE_USER: Target = Target::Function("create_user");
const LOGIN: Target = Target::Function("login");
const GET_USER: Target = Target::Function("get_user");
const HEALTH: Target = Target::Function("health");

impl Target {
    /// The functions, in the report's order (by name), read against the baseline.
    fn functions() -> Vec<Self> {
        test_support::functions::crates()
            .map(|crates| crates.iter().map(|c| Self::Function(&c.name)).collect())
            .unwrap_or_default()
    }

    /// Every target, in the report's order: the baseline, then the functions.
    fn all() -> Vec<Self> {
        std::iter::once(Self::Bare)
            .chain(Self::functions())
            .collect()
    }

    /// Its binary's name (and, for a function, its crate's).
    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Function(name) => name,
        }
    }

    /// Whose memory size it runs with: the baseline stands in for create_user.
    fn memory_of(self) -> &'static str {
        match self {
            Self::Bare => CREATE_USER.name(),
            other => other.name(),
        }
    }

    /// The first event of a cold start, its status and the report's description of it: a path
    /// without DynamoDB, but for health. The first four functions keep the paths BENCHMARKS.md
    /// was measured with; any other function starts with its `method_not_allowed` sample, which
    /// every function has (the template tests require it) and which the shared runtime answers
    /// before the handler, without DynamoDB.
    fn cold_start(self, events: &Events) -> (&Value, u16, &'static str) {
        match self {
            HEALTH => (&events.health, 200, "200 (reads DynamoDB)"),
            LOGIN => (&events.login_invalid, 422, "422"),
            GET_USER => (&events.get_user_no_token, 401, "401 no token"),
            Self::Bare | CREATE_USER => (&events.create_invalid, 422, "422"),
            Self::Function(name) => (
                events
                    .method_not_allowed
                    .get(name)
                    .unwrap_or(&events.create_invalid),
                405,
                "405 (a method it does not serve)",
            ),
        }
    }

    /// Whether its cold start's first event reads DynamoDB (only health's: it has no other path).
    fn first_event_reads_db(self) -> bool {
        self == HEALTH
    }

    /// Whether a warm path runs on it (a process of its own, its peak memory read).
    fn warm_measured(self) -> bool {
        WarmPath::ALL.iter().any(|p| p.target() == self)
    }
}

/// A path measured warm. These are chosen measurements, not "every function": each of the first
/// four functions' main path and the cheap refusals compared with the baseline, so they are named
/// here on purpose. A new function gets its cold start, init and peak memory measured without an
/// edit ([`Target::functions`]); a warm path of its own is added here when it is worth measuring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum WarmPath {
    Bare422,
    CreateInvalid,
    LoginInvalid,
    GetUserNoToken,
    Health,
    CreateUnique,
    Login,
    GetUserToken,
}

/// The batches of a round, in order. The baseline's batch comes before each no-DB batch, so every
/// no-DB sample has a baseline sample next to it in time.
const ROUND: [WarmPath; 10] = [
    WarmPath::Bare422,
    WarmPath::CreateInvalid,
    WarmPath::Bare422,
    WarmPath::LoginInvalid,
    WarmPath::Bare422,
    WarmPath::GetUserNoToken,
    WarmPath::Health,
    WarmPath::CreateUnique,
    WarmPath::Login,
    WarmPath::GetUserToken,
];

/// The no-DB paths compared with the baseline (each batch has a baseline batch just before it).
const NO_DB_COMPARED: [WarmPath; 3] = [
    WarmPath::CreateInvalid,
    WarmPath::LoginInvalid,
    WarmPath::GetUserNoToken,
];

/// The Argon2 paths, costed at each of [`SIZING_MB`].
const SIZING_PATHS: [WarmPath; 2] = [WarmPath::CreateUnique, WarmPath::Login];

/// Each function's main (success) path, for the cost table.
const MAIN_PATHS: [WarmPath; 4] = [
    WarmPath::Health,
    WarmPath::CreateUnique,
    WarmPath::Login,
    WarmPath::GetUserToken,
];

impl WarmPath {
    /// Every path, in the report's order (that of their first batch in a round).
    const ALL: [Self; 8] = [
        Self::Bare422,
        Self::CreateInvalid,
        Self::LoginInvalid,
        Self::GetUserNoToken,
        Self::Health,
        Self::CreateUnique,
        Self::Login,
        Self::GetUserToken,
    ];

    /// How the report and results.json name it.
    fn label(self) -> &'static str {
        match self {
            Self::Bare422 => "bare 422",
            Self::CreateInvalid => "create_user 422 (invalid fields)",
            Self::LoginInvalid => "login 422 (invalid body)",
            Self::GetUserNoToken => "get_user 401 (no token)",
            Self::Health => "health 200",
            Self::CreateUnique => "create_user 201 (unique email)",
            Self::Login => "login 200",
            Self::GetUserToken => "get_user 200 (real token)",
        }
    }

    /// The process that serves it.
    fn target(self) -> Target {
        match self {
            Self::Bare422 => Target::Bare,
            Self::CreateInvalid | Self::CreateUnique => CREATE_USER,
            Self::LoginInvalid | Self::Login => LOGIN,
            Self::GetUserNoToken | Self::GetUserToken => GET_USER,
            Self::Health => HEALTH,
        }
    }

    /// The status it must answer with.
    fn status(self) -> u16 {
        match self {
            Self::Bare422 | Self::CreateInvalid | Self::LoginInvalid => 422,
            Self::GetUserNoToken => 401,
            Self::Health | Self::Login | Self::GetUserToken => 200,
            Self::CreateUnique => 201,
        }
    }

    /// Invocations per batch.
    fn batch(self) -> usize {
        match self {
            Self::Bare422 | Self::CreateInvalid | Self::LoginInvalid | Self::GetUserNoToken => 40,
            Self::Health | Self::GetUserToken => 20,
            Self::CreateUnique | Self::Login => 2,
        }
    }

    /// Whether it reads or writes DynamoDB.
    fn db(self) -> bool {
        matches!(
            self,
            Self::Health | Self::CreateUnique | Self::Login | Self::GetUserToken
        )
    }

    /// The event of one invocation.
    fn event(self, events: &Events, seed: &Seed) -> Value {
        match self {
            Self::CreateUnique => events.create_unique().0,
            Self::Login => events.login(&seed.email),
            Self::GetUserToken => events.get_user(&seed.id, &seed.token),
            Self::LoginInvalid => events.login_invalid.clone(),
            Self::GetUserNoToken => events.get_user_no_token.clone(),
            Self::Health => events.health.clone(),
            Self::Bare422 | Self::CreateInvalid => events.create_invalid.clone(),
        }
    }
}

/// One warm path's samples in one run.
#[derive(Debug, Default, Clone)]
struct PathSamples {
    /// Event handed out to response posted, ms.
    latency_ms: Vec<f64>,
    /// Response posted to the next `/next`: the work done after the client has its answer, ms.
    after_ms: Vec<f64>,
    /// Wall time of the batches.
    wall: Duration,
    stdout_bytes: u64,
    stderr_bytes: u64,
    /// CPU time of the serving process over the batches whose CPU time could be read.
    cpu: Duration,
    /// The invocations of those batches.
    cpu_invocations: usize,
}

/// One target's cold starts in one run: medians over them.
#[derive(Debug, Clone)]
struct Cold {
    /// Spawn to the first `/next`, ms.
    init_ms: f64,
    /// Spawn to the first response, ms.
    cold_ms: f64,
    /// Each phase of the function's init line, median over the cold starts that printed one.
    phases: Phases,
}

/// An Argon2 path at one memory size, the CPU-share model ([`cost::modelled_ms`]).
#[derive(Debug, Clone, Copy)]
struct Sizing {
    /// Median modelled duration (what the client waits), ms.
    modelled_p50_ms: Option<f64>,
    /// Mean billed ms of the modelled durations.
    billed_ms: Option<f64>,
    /// USD per million: requests and compute.
    cost: Option<f64>,
}

/// One warm path's figures in one run.
#[derive(Debug, Clone, Copy)]
struct Warm {
    /// Event handed out to response posted, ms.
    latency_ms: Option<Summary>,
    /// Median of response posted to the next `/next`, ms.
    after_p50_ms: Option<f64>,
    /// Sequential invocations per second of wall time.
    throughput: f64,
    /// stdout bytes per invocation.
    log_bytes: f64,
    /// stderr bytes per invocation.
    stderr_bytes: f64,
    /// Mean billed ms per invocation.
    billed_ms: f64,
    /// USD per million, this machine's durations as Lambda's.
    cost_arm64: Option<f64>,
    /// CPU time of the serving process per invocation, ms (its work after the response included).
    cpu_ms: Option<f64>,
    /// USD per million, the CPU-share model at the function's memory: CPU time stretched to
    /// Lambda's CPU share, DynamoDB waits as measured.
    cost_arm64_model: Option<f64>,
    /// The CPU-share model at each of [`SIZING_MB`].
    sizing: [Sizing; SIZING_MB.len()],
}

/// One run's figures; the report takes the median of each over the runs.
#[derive(Debug, Default, Clone)]
struct Run {
    cold: BTreeMap<Target, Cold>,
    /// Peak RSS of the warm process, MiB.
    peak_rss_mib: BTreeMap<Target, f64>,
    warm: BTreeMap<WarmPath, Warm>,
    /// The custom metrics each target's EMF documents defined (warm processes and cold starts).
    metrics: BTreeMap<Target, Metrics>,
}

impl Run {
    fn init_ms(&self, target: Target) -> Option<f64> {
        self.cold.get(&target).map(|c| c.init_ms)
    }

    fn cold_ms(&self, target: Target) -> Option<f64> {
        self.cold.get(&target).map(|c| c.cold_ms)
    }

    fn phases(&self, target: Target) -> Option<&Phases> {
        self.cold.get(&target).map(|c| &c.phases)
    }

    fn phase_ms(&self, target: Target, phase: &str) -> Option<f64> {
        init_phases::get(self.phases(target)?, phase)
    }

    /// A function's cold start over the baseline's, in the same run.
    fn cold_ratio(&self, target: Target) -> Option<f64> {
        Some(self.cold_ms(target)? / self.cold_ms(Target::Bare)?)
    }

    fn peak_rss_mib(&self, target: Target) -> Option<f64> {
        self.peak_rss_mib.get(&target).copied()
    }

    fn latency(&self, path: WarmPath) -> Option<Summary> {
        self.warm.get(&path)?.latency_ms
    }

    fn after_p50_ms(&self, path: WarmPath) -> Option<f64> {
        self.warm.get(&path)?.after_p50_ms
    }

    fn warm(&self, path: WarmPath, figure: impl Fn(&Warm) -> Option<f64>) -> Option<f64> {
        figure(self.warm.get(&path)?)
    }

    /// A path's warm p50 beyond the baseline's, in the same run, µs.
    fn p50_over_bare_us(&self, path: WarmPath) -> Option<f64> {
        let bare = self.latency(WarmPath::Bare422)?.p50;
        Some((self.latency(path)?.p50 - bare) * 1000.0)
    }

    /// A path's work after the response beyond the baseline's, in the same run, µs.
    fn after_over_bare_us(&self, path: WarmPath) -> Option<f64> {
        let bare = self.after_p50_ms(WarmPath::Bare422)?;
        Some((self.after_p50_ms(path)? - bare) * 1000.0)
    }

    /// The figures as results.json names them: `<figure>/<target or path>[/<statistic>]`.
    fn named(&self) -> BTreeMap<String, f64> {
        let mut named = BTreeMap::new();
        let mut put = |name: String, value: Option<f64>| {
            if let Some(value) = value {
                named.insert(name, value);
            }
        };
        for target in Target::all() {
            let name = target.name();
            put(format!("cold_ms/{name}"), self.cold_ms(target));
            put(format!("init_ms/{name}"), self.init_ms(target));
            put(format!("peak_rss_mib/{name}"), self.peak_rss_mib(target));
        }
        for target in Target::functions() {
            put(
                format!("cold_ratio/{}", target.name()),
                self.cold_ratio(target),
            );
        }
        for (path, warm) in &self.warm {
            let key = path.label();
            if let Some(l) = warm.latency_ms {
                put(format!("latency_ms/{key}/p50"), Some(l.p50));
                put(format!("latency_ms/{key}/p90"), Some(l.p90));
                put(format!("latency_ms/{key}/p99"), Some(l.p99));
                put(format!("latency_ms/{key}/n"), Some(l.n as f64));
            }
            put(format!("after_ms/{key}/p50"), warm.after_p50_ms);
            put(format!("throughput/{key}"), Some(warm.throughput));
            put(format!("log_bytes/{key}"), Some(warm.log_bytes));
            put(format!("stderr_bytes/{key}"), Some(warm.stderr_bytes));
            put(format!("cost_arm64/{key}"), warm.cost_arm64);
            put(format!("cpu_ms/{key}"), warm.cpu_ms);
            put(format!("cost_arm64_model/{key}"), warm.cost_arm64_model);
            put(
                format!("log_ingestion_cost/{key}"),
                Some(cost::log_ingestion_per_million(warm.log_bytes)),
            );
            put(format!("billed_ms/{key}"), Some(warm.billed_ms));
            if SIZING_PATHS.contains(path) {
                for (mb, sizing) in SIZING_MB.iter().zip(&warm.sizing) {
                    put(
                        format!("modelled_p50_ms/{key}/{mb}"),
                        sizing.modelled_p50_ms,
                    );
                    put(format!("cost_arm64_model/{key}/{mb}"), sizing.cost);
                }
            }
        }
        for (target, cold) in &self.cold {
            for (phase, ms) in &cold.phases {
                put(
                    format!("init_phase_ms/{}/{phase}", target.name()),
                    Some(*ms),
                );
            }
        }
        for (target, metrics) in &self.metrics {
            put(
                format!("custom_metrics/{}", target.name()),
                Some(metrics.count() as f64),
            );
        }
        for path in NO_DB_COMPARED {
            let key = path.label();
            put(
                format!("p50_over_bare_us/{key}"),
                self.p50_over_bare_us(path),
            );
            put(
                format!("after_over_bare_us/{key}"),
                self.after_over_bare_us(path),
            );
        }
        named
    }
}

/// The runs, read figure by figure.
#[derive(Debug, Clone, Copy)]
struct Runs<'a>(&'a [Run]);

impl Runs<'_> {
    /// A figure's values over the runs that have it.
    fn values(&self, figure: impl Fn(&Run) -> Option<f64>) -> Vec<f64> {
        self.0.iter().filter_map(figure).collect()
    }

    /// A figure's median over the runs.
    fn median(&self, figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
        median(&self.values(figure))
    }

    /// A figure's min–max over the runs, in brackets (empty for a single run).
    fn spread(&self, figure: impl Fn(&Run) -> Option<f64>) -> String {
        let values = self.values(figure);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.len() < 2 {
            String::new()
        } else {
            format!(" ({min:.2}–{max:.2})")
        }
    }
}

/// A target ready to run: its binary and its memory.
#[derive(Debug)]
struct Binary {
    target: Target,
    path: PathBuf,
    memory_mb: u32,
}

impl Binary {
    /// Starts it against `api`, all of its stdout kept (the init line, the EMF documents).
    fn spawn(&self, api: RuntimeApi) -> std::io::Result<FunctionProcess> {
        launch(&self.path, self.target.name(), self.memory_mb)
            .keep(Keep::All)
            .spawn(api)
    }
}

/// The user the DB paths act as.
#[derive(Debug)]
struct Seed {
    id: String,
    email: String,
    token: String,
}

fn check(answer: &Invoked, want: u16, what: &str) -> Result<(), Error> {
    if !answer.ok || answer.status() != want {
        return Err(format!(
            "{what}: wanted {want}, got {} ({})",
            answer.status(),
            answer.body
        )
        .into());
    }
    Ok(())
}

/// After a cold start's first answer: waits (reading stdout) for the init line, up to
/// [`INIT_LINE_WAIT`] when `init` is expected, and for an EMF document, up to [`EMF_WAIT`] when
/// `emf` is expected; returns the stdout lines by then.
async fn settle(process: &FunctionProcess, init: bool, emf: bool) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = process.stdout_lines();
        let waited = started.elapsed();
        let init_done = !init || waited >= INIT_LINE_WAIT || init_phases::find(&lines).is_some();
        let emf_done =
            !emf || waited >= EMF_WAIT || lines.iter().any(|line| line.contains("\"_aws\""));
        if init_done && emf_done {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Cold starts: each target spawned `cold` times, targets in a rotating order, the first event
/// queued before the process exists. After the first answer, the process is kept until it has
/// printed its init line and EMF document (see [`settle`]); a target that printed no init line
/// in a cold start is put in `no_init_line` and not waited for again.
async fn cold_starts(
    binaries: &[Binary],
    events: &Events,
    cold: usize,
    no_init_line: &mut BTreeSet<Target>,
    run: &mut Run,
) -> Result<(), Error> {
    let mut cold_ms: BTreeMap<Target, Vec<f64>> = BTreeMap::new();
    let mut init_ms: BTreeMap<Target, Vec<f64>> = BTreeMap::new();
    let mut phases: BTreeMap<Target, Vec<Phases>> = BTreeMap::new();
    for rep in 0..cold {
        for i in 0..binaries.len() {
            let binary = &binaries[(i + rep) % binaries.len()];
            let target = binary.target;
            let (event, status, _) = target.cold_start(events);
            let api = RuntimeApi::start().await?;
            let first = api.enqueue(event.clone(), DEFAULT_DEADLINE);
            let process = binary.spawn(api)?;
            let answer = process
                .api
                .answer(first, ANSWER_TIMEOUT)
                .await
                .map_err(|err| {
                    format!(
                        "{}: no first answer ({err}): {}",
                        target.name(),
                        process.stderr_tail()
                    )
                })?;
            check(&answer, status, &format!("{} cold", target.name()))?;
            let init = process.api.first_poll().ok_or("no /next")?;
            cold_ms
                .entry(target)
                .or_default()
                .push(ms(answer.answered - process.spawned()));
            init_ms
                .entry(target)
                .or_default()
                .push(ms(init - process.spawned()));
            let function = target != Target::Bare;
            let lines = settle(
                &process,
                function && !no_init_line.contains(&target),
                function,
            )
            .await;
            process.stop();
            match init_phases::find(&lines) {
                Some(found) => phases.entry(target).or_default().push(found),
                None => {
                    no_init_line.insert(target);
                }
            }
            run.metrics
                .entry(target)
                .or_default()
                .merge(&Metrics::read(&lines));
        }
    }
    for (target, cold_ms) in &cold_ms {
        let init_ms = init_ms.get(target).map_or(&[][..], Vec::as_slice);
        let readings = phases.get(target).map_or(&[][..], Vec::as_slice);
        run.cold.insert(
            *target,
            Cold {
                init_ms: median(init_ms).unwrap_or(f64::NAN),
                cold_ms: median(cold_ms).unwrap_or(f64::NAN),
                phases: median_phases(readings),
            },
        );
    }
    Ok(())
}

/// Each phase's median over `readings`, the phases in the order they ran.
fn median_phases(readings: &[Phases]) -> Phases {
    init_phases::names(readings)
        .into_iter()
        .filter_map(|name| {
            let values: Vec<f64> = readings
                .iter()
                .filter_map(|phases| init_phases::get(phases, &name))
                .collect();
            median(&values).map(|m| (name, m))
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn invoke(
    process: &FunctionProcess,
    event: Value,
    want: u16,
    what: &str,
) -> Result<Value, Error> {
    process
        .api
        .wait_until_polling(POLL_TIMEOUT)
        .await
        .ok_or_else(|| {
            format!(
                "{what}: the function is not polling: {}",
                process.stderr_tail()
            )
        })?;
    let answer = process
        .api
        .try_invoke(event, DEFAULT_DEADLINE, ANSWER_TIMEOUT)
        .await?;
    check(&answer, want, what)?;
    Ok(answer.json_body())
}

/// One batch of `count` sequential invocations of `path`: each event is queued once the function
/// waits in `/next`.
async fn batch(
    process: &FunctionProcess,
    path: WarmPath,
    count: usize,
    events: &Events,
    seed: &Seed,
    samples: &mut PathSamples,
) -> Result<(), Error> {
    let what = path.label();
    let stdout_before = process.stdout_bytes();
    let stderr_before = process.stderr_bytes();
    process
        .api
        .wait_until_polling(POLL_TIMEOUT)
        .await
        .ok_or_else(|| format!("{what}: not polling: {}", process.stderr_tail()))?;
    let cpu_before = CpuSnapshot::read(process.pid());
    let started = Instant::now();
    for _ in 0..count {
        let event = path.event(events, seed);
        let answer = process
            .api
            .try_invoke(event, DEFAULT_DEADLINE, ANSWER_TIMEOUT)
            .await?;
        check(&answer, path.status(), what)?;
        let next = process
            .api
            .wait_until_polling(POLL_TIMEOUT)
            .await
            .ok_or_else(|| format!("{what}: no next poll: {}", process.stderr_tail()))?;
        samples.latency_ms.push(ms(answer.response_time()));
        samples
            .after_ms
            .push(ms(next.saturating_duration_since(answer.answered)));
    }
    samples.wall += started.elapsed();
    if let Some(cpu) = cpu_before.cpu_until(&CpuSnapshot::read(process.pid())) {
        samples.cpu += cpu;
        samples.cpu_invocations += count;
    }
    // Let the pipe readers catch up before counting (outside the timed part).
    tokio::time::sleep(Duration::from_millis(20)).await;
    samples.stdout_bytes += process.stdout_bytes() - stdout_before;
    samples.stderr_bytes += process.stderr_bytes() - stderr_before;
    Ok(())
}

/// A warm path's figures from its samples, at the memory of the process that served it.
fn warm_figures(samples: &PathSamples, memory_mb: u32) -> Warm {
    let n = samples.latency_ms.len().max(1) as f64;
    let cpu_ms =
        (samples.cpu_invocations > 0).then(|| ms(samples.cpu) / samples.cpu_invocations as f64);
    let model = |memory_mb: u32| {
        cpu_ms.and_then(|cpu| {
            cost::per_million_modelled(&samples.latency_ms, cpu, memory_mb, &cost::ARM64_US_EAST_1)
        })
    };
    let sizing = SIZING_MB.map(|mb| {
        let modelled: Option<Vec<f64>> = cpu_ms.map(|cpu| {
            samples
                .latency_ms
                .iter()
                .map(|latency| cost::modelled_ms(cpu, *latency, mb))
                .collect()
        });
        let modelled = modelled.unwrap_or_default();
        Sizing {
            modelled_p50_ms: Summary::of(&modelled).map(|s| s.p50),
            billed_ms: (!modelled.is_empty()).then(|| {
                modelled
                    .iter()
                    .map(|d| cost::billed_ms(*d) as f64)
                    .sum::<f64>()
                    / modelled.len() as f64
            }),
            cost: model(mb),
        }
    });
    Warm {
        latency_ms: Summary::of(&samples.latency_ms),
        after_p50_ms: Summary::of(&samples.after_ms).map(|a| a.p50),
        throughput: n / samples.wall.as_secs_f64().max(1e-9),
        log_bytes: samples.stdout_bytes as f64 / n,
        stderr_bytes: samples.stderr_bytes as f64 / n,
        billed_ms: samples
            .latency_ms
            .iter()
            .map(|d| cost::billed_ms(*d) as f64)
            .sum::<f64>()
            / n,
        cost_arm64: cost::per_million(&samples.latency_ms, memory_mb, &cost::ARM64_US_EAST_1),
        cpu_ms,
        cost_arm64_model: model(memory_mb),
        sizing,
    }
}

/// The warm paths, `rounds` rounds of interleaved batches; returns the user the DB paths acted as.
async fn warm(
    binaries: &[Binary],
    events: &Events,
    rounds: usize,
    run: &mut Run,
) -> Result<Seed, Error> {
    let mut processes: BTreeMap<Target, FunctionProcess> = BTreeMap::new();
    // A process for each target a warm path measures (peak memory is read on these).
    let measured = binaries
        .iter()
        .filter(|b| WarmPath::ALL.iter().any(|p| p.target() == b.target));
    for binary in measured {
        let process = binary.spawn(RuntimeApi::start().await?)?;
        processes.insert(binary.target, process);
    }
    let get = |target: Target| {
        processes
            .get(&target)
            .ok_or_else(|| format!("no process {}", target.name()))
    };

    // The user the DB paths act as, signed up and logged in through the functions themselves.
    let (create, email) = events.create_unique();
    let user = invoke(get(CREATE_USER)?, create, 201, "seed sign-up").await?;
    let id = user["id"].as_str().ok_or("no user id")?.to_owned();
    let login = invoke(get(LOGIN)?, events.login(&email), 200, "seed login").await?;
    let token = login["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    let seed = Seed { id, email, token };

    // Warm-up: every path a few times (connections open, caches and allocators settled).
    let mut discard = PathSamples::default();
    for path in ROUND {
        let count = path.batch().min(10);
        batch(
            get(path.target())?,
            path,
            count,
            events,
            &seed,
            &mut discard,
        )
        .await?;
    }

    let mut samples: BTreeMap<WarmPath, PathSamples> = BTreeMap::new();
    for _ in 0..rounds {
        for path in ROUND {
            let entry = samples.entry(path).or_default();
            batch(
                get(path.target())?,
                path,
                path.batch(),
                events,
                &seed,
                entry,
            )
            .await?;
        }
    }

    for (target, process) in &processes {
        if let Some(kb) = system::vm_hwm_kb(process.pid()) {
            run.peak_rss_mib.insert(*target, kb as f64 / 1024.0);
        }
    }
    // Let the pipe readers take the last EMF documents, then read every line.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (target, process) in &processes {
        run.metrics
            .entry(*target)
            .or_default()
            .merge(&Metrics::read(&process.stdout_lines()));
    }
    for (_, process) in processes {
        process.stop();
    }

    for (path, samples) in &samples {
        let memory_mb = binaries
            .iter()
            .find(|b| b.target == path.target())
            .map_or(256, |b| b.memory_mb);
        run.warm.insert(*path, warm_figures(samples, memory_mb));
    }
    Ok(seed)
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

#[allow(clippy::too_many_lines)]
fn report(
    options: &Options,
    events: &Events,
    binaries: &[Binary],
    memory: &MemorySizes,
    runs: Runs<'_>,
    elapsed: Duration,
) -> String {
    let target_dir = options.target_dir();
    let (cpu, cpus) = system::machine();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {cpus} CPUs available, {cpu}, shared with other builds (noisy). \
         {} runs, each: {} cold starts per target, {} rounds of interleaved warm batches; \
         every figure is the median over the runs (min–max over runs in brackets). \
         Bench time {:.0} s.\n",
        runs.0.len(),
        options.cold,
        options.rounds,
        elapsed.as_secs_f64()
    );

    let _ = writeln!(out, "### Cold start and memory\n");
    let _ = writeln!(
        out,
        "| target | first event | init (spawn → first /next), ms | cold start (spawn → first response), ms | × bare | peak RSS (VmHWM), MiB | binary x86_64, MiB | binary arm64, MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for binary in binaries {
        let target = binary.target;
        let name = target.name();
        let x86 = file_size(&release_binary(&target_dir, name));
        let arm = file_size(&target_dir.join("lambda").join(name).join("bootstrap"));
        let mib = |b: Option<u64>| b.map(|b| b as f64 / 1_048_576.0);
        let _ = writeln!(
            out,
            "| {name} | {} | {}{} | {}{} | {} | {} | {} | {} |",
            target.cold_start(events).2,
            fmt_opt(runs.median(|r| r.init_ms(target)), 2),
            runs.spread(|r| r.init_ms(target)),
            fmt_opt(runs.median(|r| r.cold_ms(target)), 2),
            runs.spread(|r| r.cold_ms(target)),
            if target == Target::Bare {
                "1".to_owned()
            } else {
                fmt_opt(runs.median(|r| r.cold_ratio(target)), 2)
            },
            fmt_opt(runs.median(|r| r.peak_rss_mib(target)), 1),
            fmt_opt(mib(x86), 2),
            mib(arm).map_or_else(|| "not built".to_owned(), |v| format!("{v:.2}")),
        );
    }
    let _ = writeln!(
        out,
        "\nPeak RSS: the warm process after all its paths (functions without a warm path: –), with \
         MALLOC_MMAP_THRESHOLD_={} in the functions' environment.",
        std::env::var("MALLOC_MMAP_THRESHOLD_")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unset (glibc's default)".to_owned())
    );

    init_phase_table(&mut out, binaries, runs);

    let _ = writeln!(out, "\n### Warm latency, per path\n");
    let _ = writeln!(
        out,
        "Latency: event handed out → response posted (what the client waits for). After: response \
         posted → the function's next `/next` (work done once the client has its answer). CPU: \
         the serving process's CPU time per invocation (utime + stime of all its threads, from \
         /proc schedstat, read before and after each batch), the work after the response \
         included. Throughput: sequential invocations per second of wall time. Log bytes: stdout \
         per invocation.\n"
    );
    let _ = writeln!(
        out,
        "| path | DB | samples/run | p50, ms | p90, ms | p99, ms | CPU ms/req | after p50, ms | invocations/s | log bytes/req |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for path in WarmPath::ALL {
        let latency =
            |statistic: fn(&Summary) -> f64| move |r: &Run| r.latency(path).as_ref().map(statistic);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} |",
            path.label(),
            if path.db() { "yes" } else { "no" },
            fmt_opt(runs.median(latency(|l| l.n as f64)), 0),
            fmt_opt(runs.median(latency(|l| l.p50)), 3),
            runs.spread(latency(|l| l.p50)),
            fmt_opt(runs.median(latency(|l| l.p90)), 3),
            fmt_opt(runs.median(latency(|l| l.p99)), 3),
            fmt_opt(runs.median(|r| r.warm(path, |w| w.cpu_ms)), 3),
            fmt_opt(runs.median(|r| r.after_p50_ms(path)), 3),
            fmt_opt(runs.median(|r| r.warm(path, |w| Some(w.throughput))), 0),
            fmt_opt(runs.median(|r| r.warm(path, |w| Some(w.log_bytes))), 0),
        );
    }
    let stderr_total: f64 = WarmPath::ALL
        .into_iter()
        .filter_map(|path| runs.median(|r| r.warm(path, |w| Some(w.stderr_bytes))))
        .sum();
    let _ = writeln!(
        out,
        "\nstderr bytes per invocation, all paths summed: {stderr_total:.0}."
    );

    cost_table(&mut out, memory, runs);
    metrics_section(&mut out, runs);
    sizing_table(&mut out, runs);
    targets_table(&mut out, events, runs);
    out
}

/// Each function's init line, phase by phase, beside init and cold start.
fn init_phase_table(out: &mut String, binaries: &[Binary], runs: Runs<'_>) {
    let _ = writeln!(out, "\n### Init, phase by phase\n");
    let readings: Vec<&Phases> = runs
        .0
        .iter()
        .flat_map(|r| r.cold.values().map(|c| &c.phases))
        .collect();
    let names = init_phases::names(readings);
    let _ = writeln!(
        out,
        "From the line each function prints once per process (`\"message\":\"init\"`, \
         `phases_ms`), median of each phase over the cold starts, ms; phases as the functions \
         name them, in the order they ran. A phase may end after the first `/next` (work on a \
         background thread). –: no init line{}.\n",
        if names.is_empty() {
            " (no function printed one)"
        } else {
            ""
        }
    );
    let mut header = String::from("| target | init (spawn → first /next), ms | cold start, ms |");
    let mut rule = String::from("|---|---|---|");
    for name in &names {
        header.push_str(&format!(" {name} |"));
        rule.push_str("---|");
    }
    header.push_str(" sum of phases |");
    rule.push_str("---|");
    let _ = writeln!(out, "{header}\n{rule}");
    for binary in binaries {
        let target = binary.target;
        let mut row = format!(
            "| {} | {} | {} |",
            target.name(),
            fmt_opt(runs.median(|r| r.init_ms(target)), 2),
            fmt_opt(runs.median(|r| r.cold_ms(target)), 2),
        );
        let mut sum = None;
        for name in &names {
            let value = runs.median(|r| r.phase_ms(target, name));
            if let Some(v) = value {
                *sum.get_or_insert(0.0) += v;
            }
            row.push_str(&format!(" {} |", fmt_opt(value, 2)));
        }
        row.push_str(&format!(" {} |", fmt_opt(sum, 2)));
        let _ = writeln!(out, "{row}");
    }
}

/// The whole bill per path: Lambda (local durations and the CPU-share model) and log ingestion.
fn cost_table(out: &mut String, memory: &MemorySizes, runs: Runs<'_>) {
    let prices = cost::ARM64_US_EAST_1;
    let _ = writeln!(
        out,
        "\n### Cost per million requests, the whole bill (arm64, us-east-1)\n"
    );
    let _ = writeln!(
        out,
        "Lambda: ${:.10} per GB-second, ${:.2} per million requests ({}); billed duration: each \
         invocation's duration rounded up to 1 ms. \"Local\" takes this machine's latencies as \
         Lambda's; the \"CPU-share model\" stretches each request's CPU time by {} MB / memory \
         (Lambda's share of a vCPU below {} MB) and keeps the rest of its latency (DynamoDB \
         waits) as measured. CloudWatch Logs ingestion: ${:.2} per GB (2^30 bytes) of stdout, \
         standard log class ({}). Whole bill = CPU-share model + log ingestion; the dominant part \
         is the largest of requests, compute and log ingestion. No free tier, no init billing, \
         no API Gateway or DynamoDB charges; Lambda's own START/END/REPORT lines are not counted \
         in the log bytes.\n",
        prices.per_gb_second,
        prices.per_million_requests,
        prices.label,
        cost::FULL_VCPU_MB,
        cost::FULL_VCPU_MB,
        cost::LOG_INGESTION_PER_GB,
        cost::CLOUDWATCH_PRICES_AS_OF,
    );
    let _ = writeln!(
        out,
        "| function | memory, MB (from) | path | CPU ms/req | mean billed ms, local | $/1M Lambda, local | $/1M Lambda, CPU-share model | log bytes/req | $/1M log ingestion | $/1M whole bill | dominant part |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    let paths = MAIN_PATHS
        .into_iter()
        .chain(NO_DB_COMPARED)
        .chain([WarmPath::Bare422]);
    for path in paths {
        let target = path.target();
        let (mb, source) = memory.memory_mb(target.memory_of());
        let model = runs.median(|r| r.warm(path, |w| w.cost_arm64_model));
        let log_bytes = runs.median(|r| r.warm(path, |w| Some(w.log_bytes)));
        let bill = model.map(|model| Bill::new(model, log_bytes.unwrap_or(0.0), &prices));
        let function = match target {
            Target::Bare => "bare (as create_user)",
            other => other.name(),
        };
        let _ = writeln!(
            out,
            "| {function} | {mb} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            source.as_str(),
            path.label(),
            fmt_opt(runs.median(|r| r.warm(path, |w| w.cpu_ms)), 3),
            fmt_opt(runs.median(|r| r.warm(path, |w| Some(w.billed_ms))), 2),
            fmt_opt(runs.median(|r| r.warm(path, |w| w.cost_arm64)), 3),
            fmt_opt(model, 3),
            fmt_opt(log_bytes, 0),
            fmt_opt(log_bytes.map(cost::log_ingestion_per_million), 3),
            fmt_opt(bill.map(|b| b.total()), 3),
            bill.map_or_else(
                || "–".to_owned(),
                |b| format!(
                    "{} ({:.0}%)",
                    b.dominant().as_str(),
                    b.dominant_share() * 100.0
                )
            ),
        );
    }
}

/// The custom metrics the EMF documents define, per function and for the service.
fn metrics_section(out: &mut String, runs: Runs<'_>) {
    let mut per_target: BTreeMap<Target, Metrics> = BTreeMap::new();
    for run in runs.0 {
        for (target, metrics) in &run.metrics {
            per_target.entry(*target).or_default().merge(metrics);
        }
    }
    let mut service = Metrics::default();
    for metrics in per_target.values() {
        service.merge(metrics);
    }
    let _ = writeln!(out, "\n### CloudWatch custom metrics\n");
    let _ = writeln!(
        out,
        "Every stdout line with an `_aws` key (Embedded Metric Format) of the warm processes and \
         of the cold starts, over all runs: each metric `Name` of each directive × each dimension \
         set, with the values the document gives the dimensions, is one metric (namespace, name, \
         dimension values). ${:.2} per metric per month (the first {} metrics; {}). The whole \
         service counts each metric once: those without a `Function` dimension are shared by \
         every function. A lower bound: a metric recorded only on a path not run here (DynamoDB \
         retries or throttles, say) is not counted; a function without a warm path is counted \
         from its cold start's first event only.\n",
        cost::CUSTOM_METRIC_PER_MONTH,
        cost::CUSTOM_METRICS_FIRST_TIER,
        cost::CLOUDWATCH_PRICES_AS_OF,
    );
    let _ = writeln!(
        out,
        "| function | measured on | EMF documents read | dimension sets | metrics | of them without Function | $/month |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (target, metrics) in &per_target {
        if *target == Target::Bare {
            continue;
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            target.name(),
            if target.warm_measured() {
                "warm paths and cold starts"
            } else {
                "cold starts (first event) only"
            },
            metrics.documents,
            metrics
                .dimension_sets()
                .into_iter()
                .collect::<Vec<_>>()
                .join(" "),
            metrics.count(),
            metrics.service_wide(),
            cost::custom_metrics_per_month(metrics.count()),
        );
    }
    let _ = writeln!(
        out,
        "| **whole service** | all functions | {} | {} | **{}** | {} | **{:.2}** |",
        service.documents,
        service
            .dimension_sets()
            .into_iter()
            .collect::<Vec<_>>()
            .join(" "),
        service.count(),
        service.service_wide(),
        cost::custom_metrics_per_month(service.count()),
    );
    if service.invalid_sets > 0 {
        let _ = writeln!(
            out,
            "\n**{} dimension sets named a field the document does not have as a string** \
             (CloudWatch rejects them; not counted).",
            service.invalid_sets
        );
    }
    if service.count() > cost::CUSTOM_METRICS_FIRST_TIER {
        let _ = writeln!(
            out,
            "\nMore than {} metrics: the tiers beyond the first are cheaper than this says.",
            cost::CUSTOM_METRICS_FIRST_TIER
        );
    }
}

/// The Argon2 paths at 256, 512 and 1024 MB, the CPU-share model.
fn sizing_table(out: &mut String, runs: Runs<'_>) {
    let _ = writeln!(
        out,
        "\n### Sign-ups and logins at {} MB (CPU-share model)\n",
        SIZING_MB.map(|mb| mb.to_string()).join(", ")
    );
    let _ = writeln!(
        out,
        "Modelled duration of each request = CPU ms × max(1, {} / memory) + (latency − CPU ms, at \
         least 0), the CPU time per request measured here on a whole core and the rest (DynamoDB \
         waits) as measured against the local DynamoDB (slower than DynamoDB: the waits here are \
         pessimistic). Cost = requests + each modelled duration billed (rounded up to 1 ms) × \
         memory × ${:.10} per GB-second (arm64); + logs adds log ingestion.\n",
        cost::FULL_VCPU_MB,
        cost::ARM64_US_EAST_1.per_gb_second,
    );
    let _ = writeln!(
        out,
        "| path | CPU ms/req | latency p50 here, ms | memory, MB | modelled duration p50 (the client waits), ms | mean billed ms | $/1M | $/1M + logs |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for path in SIZING_PATHS {
        let cpu = runs.median(|r| r.warm(path, |w| w.cpu_ms));
        let p50 = runs.median(|r| r.latency(path).map(|l| l.p50));
        let logs = runs
            .median(|r| r.warm(path, |w| Some(w.log_bytes)))
            .map_or(0.0, cost::log_ingestion_per_million);
        for (i, mb) in SIZING_MB.iter().enumerate() {
            let sizing = |figure: fn(&Sizing) -> Option<f64>| {
                move |r: &Run| r.warm(path, |w| w.sizing.get(i).and_then(figure))
            };
            let cost = runs.median(sizing(|s| s.cost));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {mb} | {} | {} | {} | {} |",
                path.label(),
                fmt_opt(cpu, 2),
                fmt_opt(p50, 2),
                fmt_opt(runs.median(sizing(|s| s.modelled_p50_ms)), 1),
                fmt_opt(runs.median(sizing(|s| s.billed_ms)), 1),
                fmt_opt(cost, 3),
                fmt_opt(cost.map(|c| c + logs), 3),
            );
        }
    }
    let rss: Vec<String> = [CREATE_USER, LOGIN, Target::Bare]
        .into_iter()
        .map(|t| {
            format!(
                "{} {} MiB",
                t.name(),
                fmt_opt(runs.median(|r| r.peak_rss_mib(t)), 1)
            )
        })
        .collect();
    let _ = writeln!(out, "\nPeak RSS (VmHWM): {}.", rss.join(", "));
}

/// Issue 16's targets, and the earlier ones still measured, as verdicts.
fn targets_table(out: &mut String, events: &Events, runs: Runs<'_>) {
    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "|---|---|---|");
    for (text, measured, ok) in targets(events, runs) {
        let _ = writeln!(
            out,
            "| {text} | {measured} | {} |",
            ok.map_or("not applicable", verdict)
        );
    }
    for target in Target::functions() {
        if let Some(mib) = runs.median(|r| r.peak_rss_mib(target)) {
            let _ = writeln!(
                out,
                "| peak RSS of {} under 25 MiB | {mib:.1} MiB | {} |",
                target.name(),
                verdict(mib < 25.0)
            );
        }
    }
    for path in NO_DB_COMPARED {
        if let Some(us) = runs.median(|r| r.after_over_bare_us(path)) {
            let _ = writeln!(
                out,
                "| {}: work after the response beyond bare's (EMF document, flush) | {us:+.1} µs | off the client's path |",
                path.label()
            );
        }
    }
}

/// Issue 16's targets: what, the measured figure, and whether it is met (`None`: does not apply).
fn targets(events: &Events, runs: Runs<'_>) -> Vec<(String, String, Option<bool>)> {
    let mut rows = Vec::new();
    for target in Target::functions() {
        if let Some(r) = runs.median(|run| run.cold_ratio(target)) {
            let (_, _, first) = target.cold_start(events);
            let measured = format!("{r:.2}×{}", runs.spread(|run| run.cold_ratio(target)));
            if target.first_event_reads_db() {
                rows.push((
                    format!(
                        "cold start of {} within 1.5× bare (its first request reads DynamoDB, not a no-DB first request)",
                        target.name()
                    ),
                    measured,
                    None,
                ));
            } else {
                rows.push((
                    format!(
                        "cold start of {} within 1.5× bare (no-DB first request: {first})",
                        target.name()
                    ),
                    measured,
                    Some(r <= 1.5),
                ));
            }
        }
    }
    for path in NO_DB_COMPARED {
        if let Some(us) = runs.median(|r| r.p50_over_bare_us(path)) {
            rows.push((
                format!("warm p50 of {} within 50 µs of bare", path.label()),
                format!("{us:+.1} µs{}", runs.spread(|r| r.p50_over_bare_us(path))),
                Some(us <= 50.0),
            ));
        }
    }
    for path in WarmPath::ALL {
        if path.target() == Target::Bare {
            continue;
        }
        if let Some(bytes) = runs.median(|r| r.warm(path, |w| Some(w.log_bytes))) {
            rows.push((
                format!(
                    "log bytes per request of {} at most {LOG_BYTES_TARGET:.0} (EMF included)",
                    path.label()
                ),
                format!("{bytes:.0} B"),
                Some(bytes <= LOG_BYTES_TARGET),
            ));
        }
    }
    rows
}

/// The closing summary: ratios to bare, and how many of issue 16's targets are met.
fn summary(events: &Events, runs: Runs<'_>) -> String {
    let cold: Vec<String> = Target::functions()
        .into_iter()
        .filter_map(|t| {
            runs.median(|r| r.cold_ratio(t))
                .map(|x| format!("{} ×{x:.2}", t.name()))
        })
        .collect();
    let p50: Vec<String> = NO_DB_COMPARED
        .into_iter()
        .filter_map(|p| {
            runs.median(|r| r.p50_over_bare_us(p))
                .map(|us| format!("{} {us:+.0} µs", p.label()))
        })
        .collect();
    let logs: Vec<String> = WarmPath::ALL
        .into_iter()
        .filter_map(|p| {
            runs.median(|r| r.warm(p, |w| Some(w.log_bytes)))
                .map(|b| format!("{} {b:.0}", p.label()))
        })
        .collect();
    let bare_rss = runs.median(|r| r.peak_rss_mib(Target::Bare));
    let rss: Vec<String> = Target::functions()
        .into_iter()
        .filter_map(|t| {
            let mib = runs.median(|r| r.peak_rss_mib(t))?;
            Some(match bare_rss {
                Some(bare) if bare > 0.0 => {
                    format!("{} {mib:.1} MiB (×{:.1})", t.name(), mib / bare)
                }
                _ => format!("{} {mib:.1} MiB", t.name()),
            })
        })
        .collect();
    let verdicts: Vec<bool> = targets(events, runs)
        .into_iter()
        .filter_map(|(_, _, ok)| ok)
        .collect();
    format!(
        "\nsummary against bare, same runs: cold start {}; warm p50 over bare {}; log bytes/req {}; \
         peak RSS {} (bare {} MiB); issue 16 targets met: {} of {} (Targets table)\n",
        cold.join(", "),
        p50.join(", "),
        logs.join(", "),
        rss.join(", "),
        fmt_opt(bare_rss, 1),
        verdicts.iter().filter(|ok| **ok).count(),
        verdicts.len(),
    )
}

/// results.json: every run's figures by name, each figure's median over the runs, and the first
/// requests over TLS (medians per case and variant).
fn json_report(runs: &[Run], first: &[(first_request::Case, first_request::Samples)]) -> Value {
    let named: Vec<BTreeMap<String, f64>> = runs.iter().map(Run::named).collect();
    let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (name, value) in named.iter().flatten() {
        values.entry(name).or_default().push(*value);
    }
    let medians: BTreeMap<&str, f64> = values
        .into_iter()
        .filter_map(|(name, values)| median(&values).map(|m| (name, m)))
        .collect();
    let first: Vec<Value> = first
        .iter()
        .flat_map(|(case, samples)| {
            first_request::VARIANTS
                .iter()
                .enumerate()
                .map(move |(i, variant)| {
                    json!({
                        "first_request": case.label,
                        "variant": variant.label,
                        "event_late_ms": variant
                            .late
                            .then(|| first_request::LATE_EVENT.as_millis() as u64),
                        "cold_starts": samples.cold_ms.get(i).map_or(0, Vec::len),
                        "cold_ms": samples.cold_median(i),
                        "first_request_ms": samples.first_request_median(i),
                        "failure": samples.failures.get(i).cloned().flatten(),
                    })
                })
        })
        .collect();
    json!({
        "median": medians,
        "runs": named,
        "first_request_tls": first,
    })
}

/// The first requests measured over TLS: health's (reads DynamoDB), get_user's with a real token
/// (reads DynamoDB) and create_user's 422 (no DynamoDB).
fn tls_cases(binaries: &[Binary], events: &Events, seed: &Seed) -> Vec<first_request::Case> {
    let cases = [
        (
            HEALTH,
            "health 200 (reads DynamoDB)",
            events.health.clone(),
            200,
            true,
        ),
        (
            GET_USER,
            "get_user 200, real token (reads DynamoDB)",
            events.get_user(&seed.id, &seed.token),
            200,
            true,
        ),
        (
            CREATE_USER,
            "create_user 422 (invalid fields, no DynamoDB)",
            events.create_invalid.clone(),
            422,
            false,
        ),
    ];
    cases
        .into_iter()
        .filter_map(|(target, label, event, status, db)| {
            let binary = binaries.iter().find(|b| b.target == target)?;
            Some(first_request::Case {
                label: label.to_owned(),
                function: target.name(),
                binary: binary.path.clone(),
                memory_mb: binary.memory_mb,
                event,
                status,
                db,
            })
        })
        .collect()
}

/// The TLS section: starts the terminator in front of the local DynamoDB and measures the first
/// requests; a failure to start is reported in the section, never fatal.
async fn tls_first_requests(
    binaries: &[Binary],
    events: &Events,
    seed: &Seed,
    cold: usize,
) -> (String, Vec<(first_request::Case, first_request::Samples)>) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    let Some(upstream) = tls::upstream_address(&endpoint) else {
        return (
            format!(
                "\n### First request after a cold start, DynamoDB over TLS\n\nNot measured:                  AWS_ENDPOINT_URL_DYNAMODB ({endpoint}) is not a plain http:// endpoint.\n"
            ),
            Vec::new(),
        );
    };
    let terminator = match tls::Terminator::start(&upstream).await {
        Ok(terminator) => terminator,
        Err(err) => {
            return (
                format!(
                    "\n### First request after a cold start, DynamoDB over TLS\n\nNot measured:                      the TLS terminator did not start: {err}\n"
                ),
                Vec::new(),
            );
        }
    };
    let cases = tls_cases(binaries, events, seed);
    let samples = first_request::measure(&cases, cold, &terminator).await;
    let text = first_request::report(&cases, &samples, cold, &terminator);
    (text, cases.into_iter().zip(samples).collect())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let options = Options::parse();
    for required in ["TABLE_NAME", "AWS_ENDPOINT_URL_DYNAMODB"] {
        if std::env::var_os(required).is_none() {
            return Err(format!(
                "{required} is not set: run `make bench`, which starts a local DynamoDB"
            )
            .into());
        }
    }
    let (memory, unreadable) = MemorySizes::read(&test_support::root().join("template.yaml"));
    if let Some(error) = unreadable {
        eprintln!("memory sizes: the defaults apply, the template is unreadable: {error}");
    }
    let target_dir = options.target_dir();
    // The functions come from cargo metadata; the warm paths name four of them.
    test_support::functions::crates()?;
    let functions = Target::functions();
    for path in WarmPath::ALL {
        let target = path.target();
        if target != Target::Bare && !functions.contains(&target) {
            return Err(format!(
                "{}: there is no function {} under functions/",
                path.label(),
                target.name()
            )
            .into());
        }
    }
    let mut binaries = Vec::new();
    for target in Target::all() {
        let path = release_binary(&target_dir, target.name());
        if !path.exists() {
            return Err(format!("{} is missing: build with `make bench`", path.display()).into());
        }
        let (memory_mb, _) = memory.memory_mb(target.memory_of());
        binaries.push(Binary {
            target,
            path,
            memory_mb,
        });
    }
    let events = Events::load()?;
    let started = Instant::now();
    let mut runs = Vec::new();
    let total = options.runs.get();
    let mut no_init_line = BTreeSet::new();
    let mut seed = None;
    for run in 1..=total {
        eprintln!("run {run}/{total}: cold starts ...");
        let mut figures = Run::default();
        cold_starts(
            &binaries,
            &events,
            options.cold.get(),
            &mut no_init_line,
            &mut figures,
        )
        .await?;
        eprintln!("run {run}/{total}: warm paths ...");
        seed = Some(warm(&binaries, &events, options.rounds.get(), &mut figures).await?);
        runs.push(figures);
    }
    let (tls_text, first) = match (&seed, options.tls_cold) {
        (Some(seed), cold @ 1..) => {
            eprintln!("first requests over TLS, with and without the pre-opened connection ...");
            tls_first_requests(&binaries, &events, seed, cold).await
        }
        _ => (String::new(), Vec::new()),
    };
    eprintln!("tracing: off, sampled, unsampled ...");
    let bare = binaries
        .iter()
        .find(|b| b.target == Target::Bare)
        .ok_or("no bare binary")?;
    let create = binaries
        .iter()
        .find(|b| b.target == CREATE_USER)
        .ok_or("no create_user binary")?;
    let per_round = 20;
    let (tracing, datagrams) = lambda_bench::tracing_cost::measure(
        &bare.path,
        &create.path,
        create.memory_mb,
        &events.create_invalid,
        options.rounds.get(),
        per_round,
    )
    .await?;
    let mut text = report(
        &options,
        &events,
        &binaries,
        &memory,
        Runs(&runs),
        started.elapsed(),
    );
    text.push_str(&tls_text);
    text.push_str(&lambda_bench::tracing_cost::report(
        &tracing,
        datagrams,
        // Round 0 (the warm-up, not timed) sends its sampled segments too.
        (options.rounds.get() + 1) * per_round,
    ));
    text.push_str(&summary(&events, Runs(&runs)));
    let out = options.out();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &text)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&json_report(&runs, &first))?,
    )?;
    println!("{text}");
    eprintln!(
        "written: {} and {}",
        out.join("report.md").display(),
        out.join("results.json").display()
    );
    Ok(())
}
