//! `lambda-bench`: runs each function's release binary under a local Lambda Runtime API, beside a
//! bare lambda_http baseline, against the local DynamoDB, and reports cold start, init, warm
//! latency per path, throughput, peak memory, binary size, log bytes per request and the cost per
//! million requests. `make bench` runs it; BENCHMARKS.md explains the figures.
//!
//! ```text
//! lambda-bench [--runs 3] [--cold 5] [--rounds 20] [--target-dir target] [--out target/bench]
//! ```
//!
//! Needs `TABLE_NAME` and `AWS_ENDPOINT_URL_DYNAMODB` (a local DynamoDB with the table), as
//! `scripts/bench.sh` sets them. Functions and the baseline are measured interleaved, in short
//! alternating batches, so that the noise of a shared machine hits both alike; every figure is the
//! median over the runs.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lambda_bench::{
    cost,
    process::{launch, release_binary},
    stats::{Summary, median},
    system,
    template::MemorySizes,
};
use serde_json::{Value, json};
use test_support::{
    process::FunctionProcess,
    runtime_api::{DEFAULT_DEADLINE, Invoked, RuntimeApi},
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
const FUNCTIONS: [&str; 4] = ["health", "create_user", "login", "get_user"];
const BARE: &str = "bare";
/// The password of the user the bench signs up and logs in as.
const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
struct Options {
    runs: usize,
    cold: usize,
    rounds: usize,
    target_dir: PathBuf,
    out: PathBuf,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        runs: 3,
        cold: 5,
        rounds: 20,
        target_dir: root().join("target"),
        out: root().join("target").join("bench"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => options.runs = value()?.parse()?,
            "--cold" => options.cold = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse()?,
            "--target-dir" => options.target_dir = value()?.into(),
            "--out" => options.out = value()?.into(),
            "-h" | "--help" => {
                println!(
                    "lambda-bench [--runs N] [--cold N] [--rounds N] [--target-dir DIR] [--out DIR]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if options.runs == 0 || options.cold == 0 || options.rounds == 0 {
        return Err("--runs, --cold and --rounds must be at least 1".into());
    }
    Ok(options)
}

fn root() -> PathBuf {
    test_support::root()
}

fn event(function: &str, case: &str) -> Result<Value, Error> {
    let path = root()
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

/// A path measured warm: which process, which event, what status it must answer.
#[derive(Debug, Clone)]
struct PathSpec {
    key: &'static str,
    process: &'static str,
    status: u16,
    /// Invocations per round.
    batch: usize,
    db: bool,
}

/// The warm paths, in the order of a round. The baseline's batch comes before each no-DB batch, so
/// every no-DB sample has a baseline sample next to it in time.
const PATHS: &[PathSpec] = &[
    path("bare 422", BARE, 422, 40, false),
    path(
        "create_user 422 (invalid fields)",
        "create_user",
        422,
        40,
        false,
    ),
    path("bare 422", BARE, 422, 40, false),
    path("login 422 (invalid body)", "login", 422, 40, false),
    path("bare 422", BARE, 422, 40, false),
    path("get_user 401 (no token)", "get_user", 401, 40, false),
    path("health 200", "health", 200, 20, true),
    path(
        "create_user 201 (unique email)",
        "create_user",
        201,
        2,
        true,
    ),
    path("login 200", "login", 200, 2, true),
    path("get_user 200 (real token)", "get_user", 200, 20, true),
];

const fn path(
    key: &'static str,
    process: &'static str,
    status: u16,
    batch: usize,
    db: bool,
) -> PathSpec {
    PathSpec {
        key,
        process,
        status,
        batch,
        db,
    }
}

/// The no-DB paths compared with the baseline.
const NO_DB_COMPARED: [&str; 2] = [
    "create_user 422 (invalid fields)",
    "login 422 (invalid body)",
];

/// Each function's main (success) path, for the cost table.
const MAIN_PATH: [(&str, &str); 4] = [
    ("health", "health 200"),
    ("create_user", "create_user 201 (unique email)"),
    ("login", "login 200"),
    ("get_user", "get_user 200 (real token)"),
];

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
}

/// One run's figures: name to value; the report takes the median of each over the runs.
type Figures = BTreeMap<String, f64>;

#[derive(Debug)]
struct Target {
    name: &'static str,
    binary: PathBuf,
    memory_mb: u32,
}

impl Target {
    /// Starts it against `api`.
    fn spawn(&self, api: RuntimeApi) -> std::io::Result<FunctionProcess> {
        launch(&self.binary, self.name, self.memory_mb).spawn(api)
    }
}

struct Seed {
    id: String,
    email: String,
    token: String,
}

fn cold_event<'a>(events: &'a Events, name: &str) -> &'a Value {
    match name {
        "health" => &events.health,
        "login" => &events.login_invalid,
        "get_user" => &events.get_user_no_token,
        _ => &events.create_invalid,
    }
}

fn expected_cold_status(name: &str) -> u16 {
    match name {
        "health" => 200,
        "get_user" => 401,
        _ => 422,
    }
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

/// Cold starts: each target spawned `cold` times, targets in a rotating order, the first event
/// queued before the process exists.
async fn cold_starts(
    targets: &[Target],
    events: &Events,
    cold: usize,
    figures: &mut Figures,
) -> Result<(), Error> {
    let mut cold_ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut init_ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for rep in 0..cold {
        for i in 0..targets.len() {
            let target = &targets[(i + rep) % targets.len()];
            let api = RuntimeApi::start().await?;
            let first = api.enqueue(cold_event(events, target.name).clone(), DEFAULT_DEADLINE);
            let process = target.spawn(api)?;
            let answer = process
                .api
                .answer(first, ANSWER_TIMEOUT)
                .await
                .map_err(|err| {
                    format!(
                        "{}: no first answer ({err}): {}",
                        target.name,
                        process.stderr_tail()
                    )
                })?;
            check(
                &answer,
                expected_cold_status(target.name),
                &format!("{} cold", target.name),
            )?;
            let init = process.api.first_poll().ok_or("no /next")?;
            cold_ms
                .entry(target.name)
                .or_default()
                .push(ms(answer.answered - process.spawned()));
            init_ms
                .entry(target.name)
                .or_default()
                .push(ms(init - process.spawned()));
            process.stop();
        }
    }
    for (name, samples) in &cold_ms {
        figures.insert(
            format!("cold_ms/{name}"),
            median(samples).unwrap_or(f64::NAN),
        );
    }
    for (name, samples) in &init_ms {
        figures.insert(
            format!("init_ms/{name}"),
            median(samples).unwrap_or(f64::NAN),
        );
    }
    let bare = figures.get(&format!("cold_ms/{BARE}")).copied();
    for name in FUNCTIONS {
        if let (Some(bare), Some(f)) = (bare, figures.get(&format!("cold_ms/{name}")).copied()) {
            figures.insert(format!("cold_ratio/{name}"), f / bare);
        }
    }
    Ok(())
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

/// One batch of sequential invocations: each event is queued once the function waits in `/next`.
async fn batch(
    process: &FunctionProcess,
    spec: &PathSpec,
    events: &Events,
    seed: &Seed,
    samples: &mut PathSamples,
) -> Result<(), Error> {
    let stdout_before = process.stdout_bytes();
    let stderr_before = process.stderr_bytes();
    process
        .api
        .wait_until_polling(POLL_TIMEOUT)
        .await
        .ok_or_else(|| format!("{}: not polling: {}", spec.key, process.stderr_tail()))?;
    let started = Instant::now();
    for _ in 0..spec.batch {
        let event = match spec.key {
            k if k.starts_with("create_user 201") => events.create_unique().0,
            k if k.starts_with("login 200") => events.login(&seed.email),
            k if k.starts_with("get_user 200") => events.get_user(&seed.id, &seed.token),
            k if k.starts_with("login 422") => events.login_invalid.clone(),
            k if k.starts_with("get_user 401") => events.get_user_no_token.clone(),
            k if k.starts_with("health") => events.health.clone(),
            _ => events.create_invalid.clone(),
        };
        let answer = process
            .api
            .try_invoke(event, DEFAULT_DEADLINE, ANSWER_TIMEOUT)
            .await?;
        check(&answer, spec.status, spec.key)?;
        let next = process
            .api
            .wait_until_polling(POLL_TIMEOUT)
            .await
            .ok_or_else(|| format!("{}: no next poll: {}", spec.key, process.stderr_tail()))?;
        samples.latency_ms.push(ms(answer.response_time()));
        samples
            .after_ms
            .push(ms(next.saturating_duration_since(answer.answered)));
    }
    samples.wall += started.elapsed();
    // Let the pipe readers catch up before counting (outside the timed part).
    tokio::time::sleep(Duration::from_millis(20)).await;
    samples.stdout_bytes += process.stdout_bytes() - stdout_before;
    samples.stderr_bytes += process.stderr_bytes() - stderr_before;
    Ok(())
}

async fn warm(
    targets: &[Target],
    events: &Events,
    rounds: usize,
    figures: &mut Figures,
) -> Result<(), Error> {
    let mut processes: BTreeMap<&str, FunctionProcess> = BTreeMap::new();
    for target in targets {
        let process = target.spawn(RuntimeApi::start().await?)?;
        processes.insert(target.name, process);
    }
    let get = |name: &str| {
        processes
            .get(name)
            .ok_or_else(|| format!("no process {name}"))
    };

    // The user the DB paths act as, signed up and logged in through the functions themselves.
    let (create, email) = events.create_unique();
    let user = invoke(get("create_user")?, create, 201, "seed sign-up").await?;
    let id = user["id"].as_str().ok_or("no user id")?.to_owned();
    let login = invoke(get("login")?, events.login(&email), 200, "seed login").await?;
    let token = login["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    let seed = Seed { id, email, token };

    // Warm-up: every path a few times (connections open, caches and allocators settled).
    let mut discard = PathSamples::default();
    for spec in PATHS {
        let warmup = PathSpec {
            batch: spec.batch.min(10),
            ..spec.clone()
        };
        batch(get(spec.process)?, &warmup, events, &seed, &mut discard).await?;
    }

    let mut samples: BTreeMap<&str, PathSamples> = BTreeMap::new();
    for _ in 0..rounds {
        for spec in PATHS {
            let entry = samples.entry(spec.key).or_default();
            batch(get(spec.process)?, spec, events, &seed, entry).await?;
        }
    }

    for (name, process) in &processes {
        if let Some(kb) = system::vm_hwm_kb(process.pid()) {
            figures.insert(format!("peak_rss_mib/{name}"), kb as f64 / 1024.0);
        }
    }
    for (_, process) in processes {
        process.stop();
    }

    for spec in PATHS {
        let Some(s) = samples.get(spec.key) else {
            continue;
        };
        let key = spec.key;
        if let Some(l) = Summary::of(&s.latency_ms) {
            figures.insert(format!("latency_ms/{key}/p50"), l.p50);
            figures.insert(format!("latency_ms/{key}/p90"), l.p90);
            figures.insert(format!("latency_ms/{key}/p99"), l.p99);
            figures.insert(format!("latency_ms/{key}/n"), l.n as f64);
        }
        if let Some(a) = Summary::of(&s.after_ms) {
            figures.insert(format!("after_ms/{key}/p50"), a.p50);
        }
        let n = s.latency_ms.len().max(1) as f64;
        figures.insert(
            format!("throughput/{key}"),
            n / s.wall.as_secs_f64().max(1e-9),
        );
        figures.insert(format!("log_bytes/{key}"), s.stdout_bytes as f64 / n);
        figures.insert(format!("stderr_bytes/{key}"), s.stderr_bytes as f64 / n);
        let process = spec.process;
        let memory = targets
            .iter()
            .find(|t| t.name == process)
            .map_or(256, |t| t.memory_mb);
        if let Some(c) = cost::per_million(&s.latency_ms, memory, &cost::ARM64_US_EAST_1) {
            figures.insert(format!("cost_arm64/{key}"), c);
        }
        let scaled: Vec<f64> = s
            .latency_ms
            .iter()
            .map(|d| cost::cpu_share_scaled_ms(*d, memory))
            .collect();
        if let Some(c) = cost::per_million(&scaled, memory, &cost::ARM64_US_EAST_1) {
            figures.insert(format!("cost_arm64_cpu_scaled/{key}"), c);
        }
        let billed: f64 = s
            .latency_ms
            .iter()
            .map(|d| cost::billed_ms(*d) as f64)
            .sum::<f64>()
            / n;
        figures.insert(format!("billed_ms/{key}"), billed);
    }
    if let Some(bare) = figures.get("latency_ms/bare 422/p50").copied() {
        for key in NO_DB_COMPARED {
            if let Some(f) = figures.get(&format!("latency_ms/{key}/p50")).copied() {
                figures.insert(format!("p50_over_bare_us/{key}"), (f - bare) * 1000.0);
            }
        }
    }
    if let Some(bare) = figures.get("after_ms/bare 422/p50").copied() {
        for key in NO_DB_COMPARED {
            if let Some(f) = figures.get(&format!("after_ms/{key}/p50")).copied() {
                figures.insert(format!("after_over_bare_us/{key}"), (f - bare) * 1000.0);
            }
        }
    }
    Ok(())
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn medians(runs: &[Figures]) -> Figures {
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.get(k).copied()).collect();
            median(&values).map(|m| (k.clone(), m))
        })
        .collect()
}

fn spread(runs: &[Figures], key: &str) -> String {
    let values: Vec<f64> = runs.iter().filter_map(|r| r.get(key).copied()).collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 {
        String::new()
    } else {
        format!(" ({min:.2}–{max:.2})")
    }
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
    targets: &[Target],
    memory: &MemorySizes,
    runs: &[Figures],
    elapsed: Duration,
) -> String {
    let m = medians(runs);
    let get = |k: &str| m.get(k).copied();
    let (cpu, cpus) = system::machine();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {cpus} CPUs available, {cpu}, shared with other builds (noisy). \
         {} runs, each: {} cold starts per target, {} rounds of interleaved warm batches; \
         every figure is the median over the runs (min–max over runs in brackets). \
         Bench time {:.0} s.\n",
        runs.len(),
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
    for target in targets {
        let name = target.name;
        let first = match name {
            "health" => "200 (reads DynamoDB)",
            "get_user" => "401 no token",
            _ => "422",
        };
        let x86 = file_size(&release_binary(&options.target_dir, name));
        let arm = file_size(
            &options
                .target_dir
                .join("lambda")
                .join(name)
                .join("bootstrap"),
        );
        let mib = |b: Option<u64>| b.map(|b| b as f64 / 1_048_576.0);
        let _ = writeln!(
            out,
            "| {name} | {first} | {}{} | {}{} | {} | {} | {} | {} |",
            fmt_opt(get(&format!("init_ms/{name}")), 2),
            spread(runs, &format!("init_ms/{name}")),
            fmt_opt(get(&format!("cold_ms/{name}")), 2),
            spread(runs, &format!("cold_ms/{name}")),
            if name == BARE {
                "1".to_owned()
            } else {
                fmt_opt(get(&format!("cold_ratio/{name}")), 2)
            },
            fmt_opt(get(&format!("peak_rss_mib/{name}")), 1),
            fmt_opt(mib(x86), 2),
            mib(arm).map_or_else(|| "not built".to_owned(), |v| format!("{v:.2}")),
        );
    }

    let _ = writeln!(out, "\n### Warm latency, per path\n");
    let _ = writeln!(
        out,
        "Latency: event handed out → response posted (what the client waits for). After: response \
         posted → the function's next `/next` (work done once the client has its answer). \
         Throughput: sequential invocations per second of wall time. Log bytes: stdout per invocation.\n"
    );
    let _ = writeln!(
        out,
        "| path | DB | samples/run | p50, ms | p90, ms | p99, ms | after p50, ms | invocations/s | log bytes/req |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let mut seen = Vec::new();
    for spec in PATHS {
        if seen.contains(&spec.key) {
            continue;
        }
        seen.push(spec.key);
        let k = spec.key;
        let _ = writeln!(
            out,
            "| {k} | {} | {} | {}{} | {} | {} | {} | {} | {} |",
            if spec.db { "yes" } else { "no" },
            fmt_opt(get(&format!("latency_ms/{k}/n")), 0),
            fmt_opt(get(&format!("latency_ms/{k}/p50")), 3),
            spread(runs, &format!("latency_ms/{k}/p50")),
            fmt_opt(get(&format!("latency_ms/{k}/p90")), 3),
            fmt_opt(get(&format!("latency_ms/{k}/p99")), 3),
            fmt_opt(get(&format!("after_ms/{k}/p50")), 3),
            fmt_opt(get(&format!("throughput/{k}")), 0),
            fmt_opt(get(&format!("log_bytes/{k}")), 0),
        );
    }
    let stderr_total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("stderr_bytes/"))
        .map(|(_, v)| v)
        .sum();
    let _ = writeln!(
        out,
        "\nstderr bytes per invocation, all paths summed: {stderr_total:.0}."
    );

    let _ = writeln!(out, "\n### Cost per million requests (arm64, us-east-1)\n");
    let _ = writeln!(
        out,
        "Prices: ${:.10} per GB-second, ${:.2} per million requests ({}). Billed duration: each \
         invocation's measured latency rounded up to 1 ms. \"Local\" takes this machine's durations \
         as Lambda's; \"CPU-share bound\" stretches them by {} MB / memory, Lambda's CPU share below \
         one vCPU (pessimistic: DynamoDB waits do not stretch). No free tier, no init billing, no \
         API Gateway or DynamoDB charges.\n",
        cost::ARM64_US_EAST_1.per_gb_second,
        cost::ARM64_US_EAST_1.per_million_requests,
        cost::ARM64_US_EAST_1.label,
        cost::FULL_VCPU_MB
    );
    let _ = writeln!(
        out,
        "| function | memory, MB (from) | path | mean billed ms | $/1M, local | $/1M, CPU-share bound |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (function, key) in MAIN_PATH.iter().copied().chain(
        NO_DB_COMPARED
            .iter()
            .map(|k| (k.split(' ').next().unwrap_or(k), *k)),
    ) {
        let (mb, source) = memory.memory_mb(function);
        let _ = writeln!(
            out,
            "| {function} | {mb} ({}) | {key} | {} | {} | {} |",
            source.as_str(),
            fmt_opt(get(&format!("billed_ms/{key}")), 2),
            fmt_opt(get(&format!("cost_arm64/{key}")), 3),
            fmt_opt(get(&format!("cost_arm64_cpu_scaled/{key}")), 3),
        );
    }

    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | measured | verdict |");
    let _ = writeln!(out, "|---|---|---|");
    for name in FUNCTIONS {
        if let Some(r) = get(&format!("cold_ratio/{name}")) {
            let _ = writeln!(
                out,
                "| cold start of {name} within 1.5× bare | {r:.2}×{} | {} |",
                spread(runs, &format!("cold_ratio/{name}")),
                verdict(r <= 1.5)
            );
        }
    }
    for key in NO_DB_COMPARED {
        if let Some(us) = get(&format!("p50_over_bare_us/{key}")) {
            let _ = writeln!(
                out,
                "| warm p50 of {key} within 50 µs of bare | +{us:.1} µs{} | {} |",
                spread(runs, &format!("p50_over_bare_us/{key}")),
                verdict(us <= 50.0)
            );
        }
    }
    for name in FUNCTIONS {
        if let Some(mib) = get(&format!("peak_rss_mib/{name}")) {
            let _ = writeln!(
                out,
                "| peak RSS of {name} under 25 MiB | {mib:.1} MiB | {} |",
                verdict(mib < 25.0)
            );
        }
    }
    for key in NO_DB_COMPARED {
        if let Some(us) = get(&format!("after_over_bare_us/{key}")) {
            let _ = writeln!(
                out,
                "| {key}: work after the response beyond bare's (EMF document, flush) | +{us:.1} µs | off the client's path |"
            );
        }
    }
    out
}

fn json_report(runs: &[Figures]) -> Value {
    json!({
        "median": medians(runs),
        "runs": runs,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let options = options()?;
    for required in ["TABLE_NAME", "AWS_ENDPOINT_URL_DYNAMODB"] {
        if std::env::var_os(required).is_none() {
            return Err(format!(
                "{required} is not set: run `make bench`, which starts a local DynamoDB"
            )
            .into());
        }
    }
    let (memory, unreadable) = MemorySizes::read(&root().join("template.yaml"));
    if let Some(error) = unreadable {
        eprintln!("memory sizes: the defaults apply, the template is unreadable: {error}");
    }
    let mut targets = Vec::new();
    for name in std::iter::once(BARE).chain(FUNCTIONS) {
        let binary = release_binary(&options.target_dir, name);
        if !binary.exists() {
            return Err(format!("{} is missing: build with `make bench`", binary.display()).into());
        }
        // The baseline gets create_user's memory: it stands in for that function.
        let (memory_mb, _) = memory.memory_mb(if name == BARE { "create_user" } else { name });
        targets.push(Target {
            name,
            binary,
            memory_mb,
        });
    }
    let events = Events::load()?;
    let started = Instant::now();
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        eprintln!("run {run}/{}: cold starts ...", options.runs);
        let mut figures = Figures::new();
        cold_starts(&targets, &events, options.cold, &mut figures).await?;
        eprintln!("run {run}/{}: warm paths ...", options.runs);
        warm(&targets, &events, options.rounds, &mut figures).await?;
        runs.push(figures);
    }
    let text = report(&options, &targets, &memory, &runs, started.elapsed());
    std::fs::create_dir_all(&options.out)?;
    std::fs::write(options.out.join("report.md"), &text)?;
    std::fs::write(
        options.out.join("results.json"),
        serde_json::to_string_pretty(&json_report(&runs))?,
    )?;
    println!("{text}");
    eprintln!(
        "written: {} and {}",
        options.out.join("report.md").display(),
        options.out.join("results.json").display()
    );
    Ok(())
}
