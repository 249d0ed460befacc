//! The DynamoDB client of a process, made off the path of the first answer.
//!
//! Making the client is the most expensive part of a cold start: aws-config reads the AWS config
//! files and resolves the region, and the SDK's HTTPS client loads the whole system CA store (the
//! bundle, then every file in `/etc/ssl/certs`) to build its TLS configuration. On AWS the first
//! request of a sandbox also pays a TLS handshake, which at 128 MB runs on a fraction of a vCPU
//! once init is over. So [`Connection::open`] does all of it on a background thread started during
//! init, at the lowest CPU priority: it builds the client and, unless told not to, opens the first
//! connection with one bounded request whose answer is ignored. The runtime asks Lambda for the
//! first event at the same time, so a request that never touches DynamoDB never waits for any of
//! this, nor shares its CPU with it, and one that does waits only for what is left of it
//! ([`Connection::client`]). Where init runs ahead of any
//! request (provisioned concurrency, `AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`), no
//! client waits on init, so [`crate::run`] lets it finish first ([`Connection::settle`]): the
//! handshake is then paid entirely in init, at init's CPU.
//!
//! The connection is opened with `GET /` on the DynamoDB endpoint, sent through the SDK's own
//! HTTP client (a GetItem whose request is rewritten before it is signed), so the connection lands
//! in the pool the real calls use. DynamoDB answers `GET /` without authorisation (`healthy:
//! dynamodb.<region>.amazonaws.com`), so the pre-open needs no IAM permission, reads no item and is
//! no API call in CloudTrail. The SDK has no "connect now" of its own, and a real read would need
//! a key every function may read.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_dynamodb::{Client, config::retry::ReconnectMode, types::AttributeValue};
use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};

use super::{Deadline, ErrorKind, StoreError};
use crate::telemetry::millis;

/// How the process's client is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The connect timeout, and the bound of the pre-open request.
    pub connect_timeout: Duration,
    /// Open the first connection during init (`DYNAMODB_PREOPEN`, default `true`).
    pub preopen: bool,
}

/// What making the client took, for the process's `init` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opened {
    /// aws-config's provider chain and the client, with its TLS configuration, in ms.
    pub client_ms: f64,
    /// The pre-open request, in ms; `None` when it was not made.
    pub connect_ms: Option<f64>,
    /// Whether the pre-open got an HTTP answer (any status): the connection is pooled.
    pub connected: bool,
}

type Pending = Shared<BoxFuture<'static, Result<Client, Arc<str>>>>;

/// The client: ready, or being made by the background thread [`Connection::open`] started.
#[derive(Clone)]
pub(crate) enum Connection {
    Ready(Client),
    Pending(Pending),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ready(_) => "Connection::Ready",
            Self::Pending(_) => "Connection::Pending",
        })
    }
}

/// The background thread that makes the client could not start, or ended without it.
#[derive(Debug, thiserror::Error)]
#[error("the DynamoDB client could not be made: {0}")]
struct NotMade(Arc<str>);

impl Connection {
    /// Starts making the client on a background thread of its own, at the lowest CPU priority
    /// ([`spawn_idle`]), driven by the process's runtime (the SDK's own retries off: the store's
    /// retry policy is the only layer). `opened` is told what it took, once it is done.
    pub(crate) fn open(
        options: ConnectOptions,
        opened: impl FnOnce(Opened) + Send + 'static,
    ) -> Self {
        let (made, receiver) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let spawned = spawn_idle(move || {
            // The futures are polled on this thread, but in the runtime's context: the socket the
            // pre-open opens, and the connection task hyper spawns for it, belong to the
            // runtime, so the pooled connection outlives this thread.
            let client = runtime.block_on(async move {
                let started = Instant::now();
                let client = make_client(options.connect_timeout).await;
                let client_ms = millis(started.elapsed());
                let (connect_ms, connected) = if options.preopen {
                    let started = Instant::now();
                    let connected = preopen(&client, options.connect_timeout).await;
                    (Some(millis(started.elapsed())), connected)
                } else {
                    (None, false)
                };
                opened(Opened {
                    client_ms,
                    connect_ms,
                    connected,
                });
                client
            });
            let _ = made.send(client);
        });
        let pending: BoxFuture<'static, Result<Client, Arc<str>>> = match spawned {
            // A thread that panicked drops `made`: the receiver then reports it.
            Ok(()) => Box::pin(receiver.map(|received| {
                received.map_err(|_| Arc::from("its background thread ended without it"))
            })),
            Err(err) => {
                let err: Arc<str> =
                    Arc::from(format!("its background thread could not start: {err}"));
                Box::pin(futures::future::ready(Err(err)))
            }
        };
        Self::Pending(pending.shared())
    }

    /// The client, waiting for the background thread if it is still at work, at most until
    /// `deadline` (the invocation's, less the retry policy's margin).
    pub(crate) async fn client(
        &self,
        operation: &'static str,
        deadline: Deadline,
    ) -> Result<Client, StoreError> {
        let pending = match self {
            Self::Ready(client) => return Ok(client.clone()),
            Self::Pending(pending) => pending.clone(),
        };
        let made = match deadline.instant() {
            Some(end) => tokio::time::timeout_at(end, pending)
                .await
                .map_err(|_| StoreError::deadline(operation))?,
            None => pending.await,
        };
        made.map_err(|err| StoreError::permanent(operation, ErrorKind::Construction, NotMade(err)))
    }
}

impl Connection {
    /// Waits, at most `bound`, for the background thread to have made the client and opened its
    /// connection; never fails (a client not made by then is waited for by the first call).
    pub(crate) async fn settle(&self, bound: Duration) {
        if let Self::Pending(pending) = self {
            let _ = tokio::time::timeout(bound, pending.clone()).await;
        }
    }
}

/// Runs `work` on a new thread at the lowest CPU priority (Linux's `SCHED_IDLE`, through the
/// `thread-priority` crate, since this workspace forbids `unsafe`): it gets only CPU time that no
/// other thread of the sandbox wants. During a cold start caused by a request, the runtime's
/// threads are answering that request at the same time; at Lambda's fraction of a vCPU, making the
/// client (aws-config, the CA store, the TLS configuration) and the pre-open's handshake would
/// otherwise take their share of its CPU. A priority that cannot be set is not an error: the
/// thread then runs at the normal one.
///
/// The price: a request that needs the client waits for this thread, and the thread runs only
/// when a CPU is free. In a sandbox serving one invocation at a time, that is as soon as the
/// request waits. Where a process serves several at once (Lambda Managed Instances), requests
/// busy with CPU (a sign-up hashes before it writes) delay the client until they finish or wait
/// themselves; the delay is bounded by that work, and every wait by the request's own deadline.
/// On a loaded development machine other processes slow it the same way (`make dev`: hundreds of
/// milliseconds while cargo compiles).
fn spawn_idle(work: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadBuilder, ThreadPriority, ThreadSchedulePolicy,
    };
    ThreadBuilder::default()
        .name("dynamodb-open")
        .policy(ThreadSchedulePolicy::Normal(
            NormalThreadSchedulePolicy::Idle,
        ))
        .priority(ThreadPriority::Min)
        .spawn(move |lowered| {
            if let Err(err) = lowered {
                tracing::debug!(error = ?err, "the DynamoDB client is made at normal priority");
            }
            work();
        })
        .map(drop)
}

/// The HTTPS client every SDK client here uses: the SDK's own (hyper, rustls, the system's CA
/// store), with ring as rustls' crypto. The SDK's default is aws-lc-rs, whose first random draw
/// in a process gathers jitter entropy: about 45 ms of CPU on the first TLS handshake, measured
/// here (`make bench`), which at 128 MB's share of a vCPU is most of a second. ring reads the
/// kernel's random source instead.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK client (its credentials, region and the standard `AWS_ENDPOINT_URL_DYNAMODB` are the
/// SDK's own to read). The SDK keeps a connect timeout, so an unreachable endpoint fails fast
/// rather than at the attempt timeout.
async fn make_client(connect_timeout: Duration) -> Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect_timeout)
                .build(),
        )
        .load()
        .await;
    Client::new(&sdk)
}

/// Opens the first connection with `GET /`, within `bound`; true when an HTTP answer came back.
/// Never fails: a client that could not connect now connects on its first real call.
async fn preopen(client: &Client, bound: Duration) -> bool {
    let request = client
        .get_item()
        .table_name("preopen")
        .key("pk", AttributeValue::S("preopen".to_owned()))
        .customize()
        // The answer is no GetItem's, so the SDK takes it for a transient failure, and by default
        // it then closes the connection ("poisons" it): keep it, it is sound (the exchange was
        // whole), and keeping it is the point.
        .config_override(aws_sdk_dynamodb::config::Builder::default().retry_config(
            RetryConfig::disabled().with_reconnect_mode(ReconnectMode::ReuseAllConnections),
        ))
        .mutate_request(|request| {
            let _ = request.set_method("GET");
            let root = request.uri().split_once("://").and_then(|(scheme, rest)| {
                let host = rest.split('/').next()?;
                Some(format!("{scheme}://{host}/"))
            });
            if let Some(root) = root {
                let _ = request.set_uri(root.as_str());
            }
            *request.body_mut() = aws_smithy_types::body::SdkBody::empty();
            request.headers_mut().remove("x-amz-target");
            request.headers_mut().remove("content-type");
            request.headers_mut().remove("content-length");
        })
        .send();
    match tokio::time::timeout(bound, request).await {
        // Any HTTP answer (its body is not a GetItem's, so the SDK reports it as an error) means
        // the connection is open and back in the pool.
        Ok(Ok(_)) => true,
        Ok(Err(err)) => err.raw_response().is_some(),
        Err(_) => false,
    }
}
