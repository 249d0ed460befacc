//! A cold start, phase by phase: [`crate::run`] times each phase of its set-up, the DynamoDB
//! connection ([`crate::store`]) times its own on the background thread that makes it, and once both
//! are done the process writes one `init` line with them:
//!
//! ```json
//! {"timestamp":"…","level":"INFO","target":"shared::telemetry::startup","message":"init",
//!  "function":"create_user","route":"POST /users","phases_ms":{"app":0.03,"config":0.05,"dynamodb_client":2.9,"dynamodb_connect":1.4,
//!  "runtime":0.02,"telemetry":0.21},"dynamodb_connected":true}
//! ```
//!
//! One line per sandbox, at INFO, written when the last phase ends (the DynamoDB phases may end
//! after the first answer, since nothing waits for them). `make bench` reads it to show where a
//! cold start goes (BENCHMARKS.md). No crate offers this: the phases are ours.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Map, Value};

use super::logs;

#[derive(Debug, Default)]
struct Phases {
    /// The function and its route: the sandbox's identity, said once here rather than on every
    /// line.
    sandbox: Option<(&'static str, String)>,
    done: Vec<(&'static str, f64)>,
    connected: Option<bool>,
    /// Parts still running; the line is written when the last one ends.
    waiting: u32,
    written: bool,
}

static PHASES: Mutex<Phases> = Mutex::new(Phases {
    sandbox: None,
    done: Vec::new(),
    connected: None,
    waiting: 0,
    written: false,
});

fn phases() -> std::sync::MutexGuard<'static, Phases> {
    PHASES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` as the phase `name`, and records its time.
pub fn time<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let value = f();
    record(name, started.elapsed());
    value
}

/// Records that the phase `name` took `took`.
pub fn record(name: &'static str, took: Duration) {
    phases().done.push((name, super::millis(took)));
}

/// Names the sandbox's function and route, for the `init` line.
pub fn sandbox(function: &'static str, route: String) {
    phases().sandbox = Some((function, route));
}

/// A part of start-up that ends later (the DynamoDB connection) has begun; [`end`] it.
pub fn begin() {
    phases().waiting += 1;
}

/// The DynamoDB client was made in `client_ms` and its connection opened in `connect_ms` (when it
/// was tried), `connected` or not; ends the part [`begin`] started.
pub fn dynamodb(client_ms: f64, connect_ms: Option<f64>, connected: bool) {
    {
        let mut phases = phases();
        phases.done.push(("dynamodb_client", client_ms));
        if let Some(ms) = connect_ms {
            phases.done.push(("dynamodb_connect", ms));
            phases.connected = Some(connected);
        }
    }
    end();
}

/// One part of start-up is over; the last one writes the `init` line.
pub fn end() {
    let line = {
        let mut phases = phases();
        phases.waiting = phases.waiting.saturating_sub(1);
        if phases.waiting > 0 || phases.written {
            return;
        }
        phases.written = true;
        let mut ms = Map::new();
        for (name, took) in &phases.done {
            ms.insert((*name).to_owned(), Value::from(*took));
        }
        (phases.sandbox.clone(), ms, phases.connected)
    };
    write(line.0, line.1, line.2);
}

fn write(
    sandbox: Option<(&'static str, String)>,
    phases_ms: Map<String, Value>,
    connected: Option<bool>,
) {
    if !logs::info_enabled() {
        return;
    }
    if logs::json() {
        let mut line = Map::new();
        line.insert("timestamp".into(), logs::timestamp());
        line.insert("level".into(), Value::from("INFO"));
        line.insert("target".into(), Value::from(module_path!()));
        line.insert("message".into(), Value::from("init"));
        if let Some((function, route)) = &sandbox {
            line.insert("function".into(), Value::from(*function));
            line.insert("route".into(), Value::from(route.as_str()));
        }
        line.insert("phases_ms".into(), Value::Object(phases_ms));
        if let Some(connected) = connected {
            line.insert("dynamodb_connected".into(), Value::from(connected));
        }
        logs::write_stdout_line(&Value::Object(line));
    } else {
        let phases: Vec<String> = phases_ms
            .iter()
            .map(|(name, ms)| format!("{name} {ms} ms"))
            .collect();
        tracing::info!(
            function = sandbox.as_ref().map(|(f, _)| *f),
            route = sandbox.as_ref().map(|(_, r)| r.as_str()),
            phases = %phases.join(", "),
            dynamodb_connected = connected,
            "init"
        );
    }
}
