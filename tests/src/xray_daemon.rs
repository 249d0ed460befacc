//! A stand-in for the X-Ray daemon: a UDP socket on loopback that keeps every segment document
//! it is sent (each datagram is the daemon header line, then one JSON document).

use std::{sync::Arc, time::Duration};

use serde_json::Value;
use tokio::{net::UdpSocket, sync::Mutex};

/// The daemon header every datagram starts with.
pub const HEADER: &str = "{\"format\": \"json\", \"version\": 1}\n";

/// A listening stand-in; the documents it received so far.
#[derive(Debug, Clone)]
pub struct XrayDaemon {
    /// `127.0.0.1:<port>`, for `AWS_XRAY_DAEMON_ADDRESS`.
    pub address: String,
    documents: Arc<Mutex<Vec<Value>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for XrayDaemon {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl XrayDaemon {
    /// Listens on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind a UDP port");
        let address = socket.local_addr().expect("its address").to_string();
        let documents = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&documents);
        let task = tokio::spawn(async move {
            let mut buf = vec![0_u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let body = text
                    .strip_prefix(HEADER)
                    .unwrap_or_else(|| panic!("a datagram without the daemon header: {text:?}"));
                let document: Value = serde_json::from_str(body).unwrap_or_else(|e| {
                    panic!("a segment document that is not JSON ({e}): {body}")
                });
                kept.lock().await.push(document);
            }
        });
        Self {
            address,
            documents,
            task: Arc::new(task),
        }
    }

    /// Every document received so far.
    pub async fn documents(&self) -> Vec<Value> {
        self.documents.lock().await.clone()
    }

    /// The documents, once `n` or more have arrived (or after `wait`, whatever has).
    pub async fn wait_for(&self, n: usize, wait: Duration) -> Vec<Value> {
        let end = tokio::time::Instant::now() + wait;
        loop {
            let documents = self.documents().await;
            if documents.len() >= n || tokio::time::Instant::now() >= end {
                return documents;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every subsegment in `documents`, the nested ones included, each with its parent's id (`None`
/// for a top-level document).
pub fn subsegments(documents: &[Value]) -> Vec<(Option<String>, Value)> {
    fn walk(parent: Option<String>, document: &Value, out: &mut Vec<(Option<String>, Value)>) {
        let id = document["id"].as_str().map(str::to_owned);
        out.push((parent, document.clone()));
        if let Some(children) = document["subsegments"].as_array() {
            for child in children {
                walk(id.clone(), child, out);
            }
        }
    }
    let mut out = Vec::new();
    for document in documents {
        walk(None, document, &mut out);
    }
    out
}
