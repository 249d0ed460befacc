//! A stand-in for Sentry's ingestion endpoint on 127.0.0.1: it receives the SDK's real envelopes
//! (`POST /api/<project>/envelope/`) and keeps the events they carry.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use test_support::http_server::{self, respond};

/// The sink and what it received.
#[derive(Debug, Clone)]
pub struct SentrySink {
    port: u16,
    events: Arc<Mutex<Vec<Value>>>,
    envelopes: Arc<Mutex<Vec<String>>>,
}

impl SentrySink {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let envelopes = Arc::new(Mutex::new(Vec::new()));
        let (e, raw) = (Arc::clone(&events), Arc::clone(&envelopes));
        let address = http_server::serve(move |request| {
            let (events, envelopes) = (Arc::clone(&e), Arc::clone(&raw));
            Box::pin(async move {
                if request.uri().path().ends_with("/envelope/") {
                    let text = String::from_utf8_lossy(request.body()).into_owned();
                    events.lock().expect("lock").extend(parse_events(&text));
                    envelopes.lock().expect("lock").push(text);
                }
                respond(200, r#"{"id":"00000000000000000000000000000000"}"#)
            })
        })
        .await
        .expect("bind a loopback port");
        Self {
            port: address.port(),
            events,
            envelopes,
        }
    }

    /// A DSN that points here.
    pub fn dsn(&self) -> String {
        self.dsn_with_key("publickey")
    }

    /// A DSN that points here, with `key` as its public key.
    pub fn dsn_with_key(&self, key: &str) -> String {
        format!("http://{key}@127.0.0.1:{}/42", self.port)
    }

    /// The events received so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    /// Every envelope received so far, as text.
    pub fn envelopes(&self) -> Vec<String> {
        self.envelopes.lock().expect("lock").clone()
    }

    /// Waits until `count` events arrived, at most 10 s, then a little longer (so an extra event
    /// would show), and returns them.
    pub async fn wait_for_events(&self, count: usize) -> Vec<Value> {
        let started = Instant::now();
        while self.events().len() < count && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.events()
    }
}

/// The `event` items of an envelope: a header line, then for each item a header line and a payload
/// line (or `length` bytes).
fn parse_events(envelope: &str) -> Vec<Value> {
    let mut lines = envelope.lines();
    let _envelope_header = lines.next();
    let mut events = Vec::new();
    while let Some(header) = lines.next() {
        let Ok(header) = serde_json::from_str::<Value>(header) else {
            continue;
        };
        let Some(payload) = lines.next() else { break };
        if header["type"] == "event"
            && let Ok(event) = serde_json::from_str::<Value>(payload)
        {
            events.push(event);
        }
    }
    events
}
