//! The first request after a cold start, with DynamoDB behind TLS ([`crate::tls`]), with and
//! without the DynamoDB connection opened during init (issue 16).
//!
//! Each case is a function and its first event; each is cold-started `cold` times per variant,
//! the variants interleaved (their order rotating from one repetition to the next). The variants:
//! the default (each function opens its DynamoDB connection on a background thread at start) and
//! `DYNAMODB_PREOPEN=false` (it does not), each with the first event queued before the process
//! exists (a cold start caused by a request, as on Lambda) and with the event sent
//! [`LATE_EVENT`] after the function's first `/next` (a sandbox whose background start-up work
//! had time to end first). A case without DynamoDB shows whether the pre-open delays a first
//! answer that does not need it.

use std::{path::PathBuf, time::Duration};

use serde_json::Value;
use test_support::runtime_api::{DEFAULT_DEADLINE, RuntimeApi};

use crate::{process::launch, stats::median, tls::Terminator};

/// How long a cold start may take to answer before it counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after its first `/next` a late first event is sent.
pub const LATE_EVENT: Duration = Duration::from_millis(250);

/// One way of starting a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// How the report names it.
    pub label: &'static str,
    /// The value of `DYNAMODB_PREOPEN` (unset: the default, pre-opened).
    pub preopen: Option<&'static str>,
    /// Whether the first event is sent [`LATE_EVENT`] after the first `/next` rather than queued
    /// before the process exists.
    pub late: bool,
}

/// The variants: the first two are the cold starts a request causes, the last two the same
/// functions given time to finish their start-up work before the first event.
pub const VARIANTS: [Variant; 4] = [
    Variant {
        label: "default (connection pre-opened)",
        preopen: None,
        late: false,
    },
    Variant {
        label: "DYNAMODB_PREOPEN=false",
        preopen: Some("false"),
        late: false,
    },
    Variant {
        label: "default, event late",
        preopen: None,
        late: true,
    },
    Variant {
        label: "DYNAMODB_PREOPEN=false, event late",
        preopen: Some("false"),
        late: true,
    },
];

/// A function and its first event.
#[derive(Debug, Clone)]
pub struct Case {
    /// How the report names it.
    pub label: String,
    /// The function's name.
    pub function: &'static str,
    /// Its release binary.
    pub binary: PathBuf,
    /// Its configured memory.
    pub memory_mb: u32,
    /// The first event.
    pub event: Value,
    /// The status the first event must get.
    pub status: u16,
    /// Whether the first event reads or writes DynamoDB.
    pub db: bool,
}

/// One case's samples, per variant (in [`VARIANTS`]' order).
#[derive(Debug, Clone)]
pub struct Samples {
    /// Spawn to the first response, ms (for a late event: the wait before it included).
    pub cold_ms: Vec<Vec<f64>>,
    /// The first request alone: event handed out to response posted, ms.
    pub first_request_ms: Vec<Vec<f64>>,
    /// What went wrong, if anything (the first failure of each variant).
    pub failures: Vec<Option<String>>,
}

impl Default for Samples {
    fn default() -> Self {
        Self {
            cold_ms: vec![Vec::new(); VARIANTS.len()],
            first_request_ms: vec![Vec::new(); VARIANTS.len()],
            failures: vec![None; VARIANTS.len()],
        }
    }
}

impl Samples {
    /// A variant's median cold start.
    pub fn cold_median(&self, variant: usize) -> Option<f64> {
        median(self.cold_ms.get(variant)?)
    }

    /// A variant's median first request.
    pub fn first_request_median(&self, variant: usize) -> Option<f64> {
        median(self.first_request_ms.get(variant)?)
    }
}

/// Cold-starts every case `cold` times per variant against `terminator`; a failed cold start is
/// noted in its case's samples, never fatal.
pub async fn measure(cases: &[Case], cold: usize, terminator: &Terminator) -> Vec<Samples> {
    let mut samples = vec![Samples::default(); cases.len()];
    let endpoint = terminator.endpoint();
    for rep in 0..cold {
        for (case, samples) in cases.iter().zip(samples.iter_mut()) {
            for turn in 0..VARIANTS.len() {
                let index = (turn + rep) % VARIANTS.len();
                let Some(variant) = VARIANTS.get(index) else {
                    continue;
                };
                match once(case, *variant, &endpoint, terminator).await {
                    Ok((cold_ms, first_ms)) => {
                        if let (Some(cold), Some(first)) = (
                            samples.cold_ms.get_mut(index),
                            samples.first_request_ms.get_mut(index),
                        ) {
                            cold.push(cold_ms);
                            first.push(first_ms);
                        }
                    }
                    Err(err) => {
                        if let Some(failure) = samples.failures.get_mut(index) {
                            failure.get_or_insert(err);
                        }
                    }
                }
            }
        }
    }
    samples
}

/// One cold start: spawn → first response, and the first request alone, ms.
async fn once(
    case: &Case,
    variant: Variant,
    endpoint: &str,
    terminator: &Terminator,
) -> Result<(f64, f64), String> {
    let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let queued = (!variant.late).then(|| api.enqueue(case.event.clone(), DEFAULT_DEADLINE));
    let mut launched = launch(&case.binary, case.function, case.memory_mb)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .env("SSL_CERT_FILE", terminator.ca_file());
    if let Some(preopen) = variant.preopen {
        launched = launched.env("DYNAMODB_PREOPEN", preopen);
    }
    let process = launched.spawn(api).map_err(|e| e.to_string())?;
    let first = match queued {
        Some(queued) => queued,
        None => {
            process
                .api
                .wait_until_polling(ANSWER_TIMEOUT)
                .await
                .ok_or_else(|| format!("never polled: {}", process.stderr_tail()))?;
            tokio::time::sleep(LATE_EVENT).await;
            process.api.enqueue(case.event.clone(), DEFAULT_DEADLINE)
        }
    };
    let answer = process
        .api
        .answer(first, ANSWER_TIMEOUT)
        .await
        .map_err(|err| format!("no answer ({err}): {}", process.stderr_tail()))?;
    if !answer.ok || answer.status() != case.status {
        return Err(format!(
            "{} instead of {}: {}",
            answer.status(),
            case.status,
            answer.json_body()
        ));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let figures = (
        ms(answer.answered - process.spawned()),
        ms(answer.response_time()),
    );
    process.stop();
    Ok(figures)
}

/// The report's section.
pub fn report(cases: &[Case], samples: &[Samples], cold: usize, terminator: &Terminator) -> String {
    let fmt = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".to_owned(),
    };
    let late_ms = LATE_EVENT.as_millis();
    let mut text = format!(
        "\n### First request after a cold start, DynamoDB over TLS\n\n\
         A TLS terminator on 127.0.0.1 (a CA made for this run; the functions trust it through \
         `SSL_CERT_FILE`) in front of the local DynamoDB, speaking HTTP/1.1 with keep-alive as \
         DynamoDB does; `AWS_ENDPOINT_URL_DYNAMODB` is `https://localhost:<port>`. {cold} cold \
         starts per case and variant, the variants interleaved; medians. Cold start: spawn → \
         first response, the first event queued before the process exists (a cold start caused \
         by a request); first request: event handed out → response. Default: the function \
         opens its DynamoDB connection on a background thread at start; off: \
         `DYNAMODB_PREOPEN=false`.\n\n\
         | first request | DB | cold start, default, ms | cold start, off, ms | default / off | first request, default, ms | first request, off, ms | default / off |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for (case, s) in cases.iter().zip(samples) {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            case.label,
            if case.db { "yes" } else { "no" },
            fmt(s.cold_median(0)),
            fmt(s.cold_median(1)),
            ratio(s.cold_median(0), s.cold_median(1)),
            fmt(s.first_request_median(0)),
            fmt(s.first_request_median(1)),
            ratio(s.first_request_median(0), s.first_request_median(1)),
        ));
    }
    text.push_str(&format!(
        "\nThe same first requests sent {late_ms} ms after the function's first `/next` (its \
         start-up work on its background thread has ended by then):\n\n\
         | first request | DB | first request, default, ms | first request, off, ms | default / off |\n\
         |---|---|---|---|---|\n"
    ));
    for (case, s) in cases.iter().zip(samples) {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            case.label,
            if case.db { "yes" } else { "no" },
            fmt(s.first_request_median(2)),
            fmt(s.first_request_median(3)),
            ratio(s.first_request_median(2), s.first_request_median(3)),
        ));
    }
    text.push_str(&format!(
        "\nThe terminator: {} TLS connections, {} requests through them; {} handshakes refused \
         (a client that does not trust the CA), {} left unfinished (a process stopped while it \
         was opening a connection: the pre-open of a no-DB case, ended after its first answer).\n",
        terminator.handshakes(),
        terminator.requests(),
        terminator.refused(),
        terminator.cut_off()
    ));
    for (case, s) in cases.iter().zip(samples) {
        for (failure, variant) in s.failures.iter().zip(VARIANTS) {
            if let Some(failure) = failure {
                text.push_str(&format!(
                    "\n**{}, {}: failed**: {}\n",
                    case.label,
                    variant.label,
                    failure.chars().take(400).collect::<String>()
                ));
            }
        }
    }
    text
}
