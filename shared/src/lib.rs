//! What every function of the users API shares.
//!
//! # Layout
//! - [`error`]: the error contract, one enum rendered as the one JSON error body.
//! - [`runtime`]: [`runtime::run`], the few lines every `main.rs` calls, and the service that turns
//!   every outcome (panics included) into a contract response.
//! - [`request`] and [`json`]: what a handler sees of a request; body limits, content type, JSON
//!   parsing into domain types with per-field errors.
//! - [`response`]: JSON responses and the headers every response carries.
//! - [`auth`]: the bearer session behind every authenticated route, and "your own account only".
//! - [`idempotency`]: client `Idempotency-Key`s: one effect per key, the first answer replayed.
//! - [`login_guard`]: the login limits around every password check (login, password change).
//! - [`cors`]: which browser origins may read the answers (tower-http's CORS layer, configured).
//! - [`domain`]: emails, names, passwords (Argon2id), sessions, users, the login limit.
//! - [`store`]: the DynamoDB table, its client (made, and its connection opened, off the first
//!   answer's path), and how its failures are classified.
//! - [`deadline`]: when an invocation ends, which bounds every DynamoDB call.
//! - [`app`] and [`config`]: state built once per cold start.
//! - [`health`]: the check `/health` makes, cached per process.
//! - [`metric`]: every metric name and unit, defined once.
//! - [`telemetry`]: logs (JSON in Lambda, pretty locally), the EMF document that is each request's
//!   access line, Sentry, X-Ray, and the cold start's `init` line.

pub mod app;
pub mod auth;
pub mod config;
pub mod cors;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod json;
pub mod login_guard;
pub mod metric;
pub mod request;
pub mod response;
pub mod runtime;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use error::{ApiError, BoxError, FieldError};
pub use lambda_http::{Body, Response, http::StatusCode};
pub use request::{ApiRequest, Route};
pub use runtime::{HandlerResult, run};
