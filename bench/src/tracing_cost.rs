//! What X-Ray tracing costs on the warm path (issue 17): create_user's no-DB 422 with tracing off,
//! on with the request sampled, and on with it unsampled, beside the bare baseline, the four
//! interleaved in one run. A UDP socket on loopback stands in for the daemon and counts what it
//! gets, so the sampled figure includes building and sending the segment document.

use std::{
    net::UdpSocket,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use test_support::runtime_api::{DEFAULT_DEADLINE, RuntimeApi};

use crate::{process::launch, stats::median};

/// One variant's figures: p50 of the time the client waits, and of the work after the response.
#[derive(Debug, Clone)]
pub struct Figures {
    /// What was measured.
    pub label: &'static str,
    /// Event handed out to response posted, p50, µs.
    pub p50_us: f64,
    /// Response posted to the next `/next` (the EMF document, the trace), p50, µs.
    pub after_p50_us: f64,
}

/// The variants, in the report's order.
const VARIANTS: [(&str, bool, bool); 4] = [
    ("bare 422", false, true),
    (
        "create_user 422, tracing off (no daemon address)",
        false,
        true,
    ),
    ("create_user 422, traced, request sampled", true, true),
    ("create_user 422, traced, request not sampled", true, false),
];

/// A trace header of now (X-Ray refuses trace ids older than 30 days), sampled or not.
fn header(n: u64, sampled: bool) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "Root=1-{secs:08x}-{n:024x};Parent={n:016x};Sampled={}",
        u8::from(sampled)
    )
}

/// Runs `rounds` rounds of `batch` invocations of `event` per variant: `bare` and `create_user`
/// are the release binaries. Also returns the datagrams the stand-in daemon received.
pub async fn measure(
    bare: &Path,
    create_user: &Path,
    memory_mb: u32,
    event: &Value,
    rounds: usize,
    batch: usize,
) -> Result<(Vec<Figures>, u64), Box<dyn std::error::Error + Send + Sync>> {
    let daemon = UdpSocket::bind("127.0.0.1:0")?;
    let address = daemon.local_addr()?.to_string();
    let received = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&received);
    std::thread::spawn(move || {
        let mut buf = vec![0_u8; 65_536];
        while daemon.recv(&mut buf).is_ok() {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut processes = Vec::new();
    for (i, (label, traced, _)) in VARIANTS.iter().enumerate() {
        let (binary, name) = if i == 0 {
            (bare, "bare")
        } else {
            (create_user, "create_user")
        };
        let mut launched = launch(binary, name, memory_mb);
        if *traced {
            launched = launched.env("AWS_XRAY_DAEMON_ADDRESS", &address);
        }
        let process = launched.spawn(RuntimeApi::start().await?)?;
        processes.push((*label, process));
    }
    let mut latency: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut after: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let mut n = 0_u64;
    // Round 0 warms every process up and is not kept.
    for round in 0..=rounds {
        for (i, (label, process)) in processes.iter().enumerate() {
            for _ in 0..batch {
                n += 1;
                process
                    .api
                    .wait_until_polling(Duration::from_secs(30))
                    .await
                    .ok_or_else(|| format!("{label}: not polling: {}", process.stderr_tail()))?;
                let queued = process.api.enqueue_traced(
                    event.clone(),
                    DEFAULT_DEADLINE,
                    &header(n, VARIANTS[i].2),
                );
                let answer = process
                    .api
                    .answer(queued, Duration::from_secs(30))
                    .await
                    .map_err(|_| format!("{label}: no answer"))?;
                if answer.status() != 422 {
                    return Err(format!("{label}: {} instead of 422", answer.status()).into());
                }
                let next = process
                    .api
                    .wait_until_polling(Duration::from_secs(30))
                    .await
                    .ok_or_else(|| format!("{label}: no next poll"))?;
                if round > 0 {
                    latency[i].push(answer.response_time().as_secs_f64() * 1e6);
                    after[i].push(
                        next.saturating_duration_since(answer.answered)
                            .as_secs_f64()
                            * 1e6,
                    );
                }
            }
        }
    }
    let figures = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, (label, _, _))| Figures {
            label,
            p50_us: median(&latency[i]).unwrap_or(f64::NAN),
            after_p50_us: median(&after[i]).unwrap_or(f64::NAN),
        })
        .collect();
    for (_, process) in processes {
        process.stop();
    }
    // Let the last datagrams arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok((figures, received.load(Ordering::Relaxed)))
}

/// The report's section for `figures`.
pub fn report(figures: &[Figures], datagrams: u64, invocations: usize) -> String {
    let mut text = String::from(
        "\n### Tracing (X-Ray) on the warm path\n\n| variant | p50 the client waits, µs | vs bare | after the response, p50 µs |\n|---|---|---|---|\n",
    );
    let bare = figures.first().map_or(f64::NAN, |f| f.p50_us);
    for f in figures {
        text.push_str(&format!(
            "| {} | {:.0} | {:+.0} µs | {:.0} |\n",
            f.label,
            f.p50_us,
            f.p50_us - bare,
            f.after_p50_us
        ));
    }
    text.push_str(&format!(
        "\nThe stand-in daemon received {datagrams} segment documents for {invocations} sampled invocations (one each).\n"
    ));
    if let [_, off, sampled, unsampled] = figures {
        text.push_str(&format!(
            "\nsummary: tracing, sampled {:+.1} µs and unsampled {:+.1} µs on the client's wait against tracing off; sampled {:+.1} µs after the response\n",
            sampled.p50_us - off.p50_us,
            unsampled.p50_us - off.p50_us,
            sampled.after_p50_us - off.after_p50_us
        ));
    }
    text
}
