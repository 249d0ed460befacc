//! Configuration: everything a function reads from its environment, read here and nowhere else,
//! once per cold start ([`crate::run`]), and handed to what needs it.
//!
//! | variable | field | default |
//! |---|---|---|
//! | `TABLE_NAME` | [`Config::table_name`] | none: required |
//! | `STAGE` | [`Config::stage`] | `local` |
//! | `SERVICE_NAME` | [`Config::service`] | `users-api` |
//! | `METRICS_NAMESPACE` | [`Config::metrics_namespace`] | `UsersApi` |
//! | `DYNAMODB_*`, `DEADLINE_MARGIN_MS` | [`Config::retry`] ([`crate::store::retry`]) | the policy's |
//! | `DYNAMODB_PREOPEN` (`true` or `false`) | [`Config::dynamodb_preopen`] ([`crate::store`]'s connection) | `true` |
//! | `AWS_LAMBDA_INITIALIZATION_TYPE` (set by Lambda) | [`Config::init_ahead_of_requests`] | `false` (on-demand) |
//! | `BASE_PATH` | [`Config::base_path`]: the path clients reach the API under | empty: the domain's root |
//! | `CORS_ALLOW_ORIGINS` | [`Config::cors`] ([`crate::cors`]) | none allowed |
//! | `LOG_FORMAT`, `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_RUNTIME_API`, `CARGO_LAMBDA_VERSION` | [`Config::log_format`] | JSON in Lambda, pretty elsewhere |
//! | `LOG_LEVEL`, then `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG` (a level) | [`Config::log_levels`]: our crates | `info` |
//! | `DEPENDENCY_LOG_LEVEL` | [`Config::log_levels`]: every other crate | the level above, at most `info` |
//! | `IDEMPOTENCY_FINGERPRINT_KEY` | [`Config::fingerprint_key`] ([`crate::idempotency`]) | none: `Idempotency-Key` requests get a 500 |
//! | `AWS_XRAY_DAEMON_ADDRESS` | [`Config::xray_daemon`] ([`crate::telemetry::xray`]) | none: no traces (Lambda sets it when tracing is active) |
//! | `SENTRY_DSN`, `SENTRY_CAPTURE_4XX` | [`Config::sentry_dsn`], [`Config::sentry_capture_4xx`] | off, `false` |
//!
//! A value that is set but invalid (no table, a bad retry setting, an entry of the CORS list that
//! is not an origin) does not stop the process: [`Config::from_env`] returns the rest of the
//! configuration with the [`ConfigError`], every request is then a 500 in the contract shape, and
//! the log says which variable is wrong.

use std::fmt;

use crate::{
    cors::AllowedOrigins,
    error::BoxError,
    idempotency::{FINGERPRINT_KEY_ENV, FingerprintKey},
    store::RetryPolicy,
    telemetry::{LogFormat, LogLevels},
};

/// The `Service` dimension and the service name in logs when `SERVICE_NAME` is not set
/// (template.yaml's `ServiceName` default).
pub const DEFAULT_SERVICE: &str = "users-api";
/// The metrics namespace when `METRICS_NAMESPACE` is not set (template.yaml's `MetricsNamespace`
/// default).
pub const DEFAULT_NAMESPACE: &str = "UsersApi";

/// What a function knows about where it runs. `Debug` leaves the Sentry DSN and the fingerprint key
/// out.
#[derive(Clone)]
pub struct Config {
    /// The DynamoDB table.
    pub table_name: String,
    /// The deployment stage: Sentry's environment.
    pub stage: String,
    /// The service's name: the EMF `Service` dimension.
    pub service: String,
    /// The EMF namespace.
    pub metrics_namespace: String,
    /// The code's version, from Cargo.
    pub version: &'static str,
    /// The path prefix clients call the API under, for the URLs we hand out (`Location`): empty
    /// at a domain's root, `/prod` on API Gateway's own domain, `/v1` behind a custom domain's
    /// `v1` mapping. Never ends with `/`. Request paths never carry it
    /// (`AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`).
    pub base_path: String,
    /// How DynamoDB calls are retried.
    pub retry: RetryPolicy,
    /// Open the DynamoDB connection during init, on a background thread.
    pub dynamodb_preopen: bool,
    /// Init runs before any request needs the function (provisioned concurrency), so it may wait
    /// for the DynamoDB connection without anyone waiting on it.
    pub init_ahead_of_requests: bool,
    /// Which browser origins may read the answers.
    pub cors: AllowedOrigins,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The log levels: ours, and the dependencies' (never below `info` unless asked).
    pub log_levels: LogLevels,
    /// The key payload fingerprints are keyed with, for `Idempotency-Key` records; `None`: a
    /// request with an `Idempotency-Key` is refused with a 500 (the stack always provides one).
    pub fingerprint_key: Option<FingerprintKey>,
    /// Where X-Ray segments go (`host:port`, UDP); `None`: tracing is off.
    pub xray_daemon: Option<String>,
    /// Where Sentry events go; `None`: Sentry is off.
    pub sentry_dsn: Option<String>,
    /// Also send 4xx answers to Sentry.
    pub sentry_capture_4xx: bool,
}

/// What is wrong with the environment: every problem found (at least one), the first one as the
/// source.
#[derive(Debug)]
pub struct ConfigError {
    problems: Vec<BoxError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "the function's configuration is invalid ({n} problem{}): ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, problem) in self.problems.iter().enumerate() {
            let separator = if i == 0 { "" } else { "; " };
            write!(f, "{separator}{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.problems
            .first()
            .map(|p| &**p as &(dyn std::error::Error + 'static))
    }
}

impl Config {
    /// Reads the process's environment.
    pub fn from_env() -> (Self, Option<ConfigError>) {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass their own). A variable set to blanks
    /// counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Self, Option<ConfigError>) {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems: Vec<BoxError> = Vec::new();
        let table_name = var("TABLE_NAME").unwrap_or_else(|| {
            problems.push(
                "TABLE_NAME is not set: the function does not know its DynamoDB table".into(),
            );
            String::new()
        });
        let retry = RetryPolicy::from_lookup(var).unwrap_or_else(|err| {
            problems.push(err);
            RetryPolicy::default()
        });
        let dynamodb_preopen = match var("DYNAMODB_PREOPEN").map(|v| v.trim().to_ascii_lowercase())
        {
            None => true,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                problems.push(format!("DYNAMODB_PREOPEN must be true or false, not {v:?}").into());
                true
            }
        };
        let base_path = match var("BASE_PATH").map(|v| parse_base_path(&v)) {
            None => String::new(),
            Some(Ok(path)) => path,
            Some(Err(err)) => {
                problems.push(err.into());
                String::new()
            }
        };
        let fingerprint_key = var(FINGERPRINT_KEY_ENV).and_then(|value| {
            FingerprintKey::parse(&value)
                .map_err(|err| problems.push(err.into()))
                .ok()
        });
        let (cors, invalid) =
            AllowedOrigins::parse(&var(crate::cors::ALLOW_ORIGINS_ENV).unwrap_or_default());
        problems.extend(invalid.into_iter().map(BoxError::from));
        let config = Self {
            table_name,
            stage: var("STAGE").unwrap_or_else(|| "local".to_owned()),
            service: var("SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE.to_owned()),
            metrics_namespace: var("METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            version: env!("CARGO_PKG_VERSION"),
            base_path,
            retry,
            dynamodb_preopen,
            init_ahead_of_requests: var("AWS_LAMBDA_INITIALIZATION_TYPE")
                .is_some_and(|v| v.trim() == "provisioned-concurrency"),
            cors,
            log_format: LogFormat::from_lookup(var),
            log_levels: LogLevels::from_lookup(var),
            fingerprint_key,
            xray_daemon: var(crate::telemetry::xray::DAEMON_ADDRESS_ENV),
            sentry_dsn: var("SENTRY_DSN").map(|dsn| dsn.trim().to_owned()),
            sentry_capture_4xx: var("SENTRY_CAPTURE_4XX")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        };
        let error = (!problems.is_empty()).then_some(ConfigError { problems });
        (config, error)
    }
}

/// The defaults, with no table: what tests start from.
/// `BASE_PATH` as stored: `/` and empty are the root (empty), a trailing `/` is dropped; only
/// unreserved URL characters between the slashes.
fn parse_base_path(value: &str) -> Result<String, String> {
    let path = value.trim().trim_end_matches('/');
    let valid = path.is_empty()
        || (path.starts_with('/')
            && path[1..].split('/').all(|segment| {
                !segment.is_empty()
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            }));
    if valid {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "BASE_PATH {value:?} is not a path like /v1 (letters, digits, -._~ between slashes)"
        ))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None).0
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("stage", &self.stage)
            .field("service", &self.service)
            .field("metrics_namespace", &self.metrics_namespace)
            .field("version", &self.version)
            .field("base_path", &self.base_path)
            .field("retry", &self.retry)
            .field("dynamodb_preopen", &self.dynamodb_preopen)
            .field("init_ahead_of_requests", &self.init_ahead_of_requests)
            .field("cors", &self.cors)
            .field("log_format", &self.log_format)
            .field("log_levels", &self.log_levels)
            .field(
                "fingerprint_key",
                &self.fingerprint_key.as_ref().map(|_| "set"),
            )
            .field("xray_daemon", &self.xray_daemon)
            .field("sentry", &self.sentry_dsn.as_ref().map(|_| "on"))
            .field("sentry_capture_4xx", &self.sentry_capture_4xx)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> (Config, Option<ConfigError>) {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_apply_to_unset_and_blank_variables() {
        let (config, error) = load(&[("TABLE_NAME", "users"), ("STAGE", "  ")]);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(config.table_name, "users");
        assert_eq!(config.stage, "local");
        assert_eq!(config.service, DEFAULT_SERVICE);
        assert_eq!(config.metrics_namespace, DEFAULT_NAMESPACE);
        assert_eq!(config.log_levels, LogLevels::default());
        assert_eq!(
            config.log_levels.directive("login"),
            "info,shared=info,login=info"
        );
        assert!(config.cors.is_empty() && config.sentry_dsn.is_none());
    }

    #[test]
    fn the_dynamodb_preopen_is_on_unless_turned_off_and_a_typo_is_named() {
        assert!(load(&[("TABLE_NAME", "users")]).0.dynamodb_preopen);
        let (config, error) = load(&[("TABLE_NAME", "users"), ("DYNAMODB_PREOPEN", "False")]);
        assert!(error.is_none() && !config.dynamodb_preopen, "{error:?}");
        let (config, error) = load(&[("TABLE_NAME", "users"), ("DYNAMODB_PREOPEN", "no")]);
        let text = error.expect("only true and false").to_string();
        assert!(
            text.contains("DYNAMODB_PREOPEN") && text.contains("\"no\""),
            "{text}"
        );
        assert!(config.dynamodb_preopen);
        assert!(!config.init_ahead_of_requests, "on-demand by default");
        let (config, _) = load(&[
            ("TABLE_NAME", "users"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency"),
        ]);
        assert!(config.init_ahead_of_requests);
        let (config, _) = load(&[
            ("TABLE_NAME", "users"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]);
        assert!(!config.init_ahead_of_requests);
    }

    #[test]
    fn the_fingerprint_key_is_checked_and_never_shown() {
        let secret = "k".repeat(40);
        let (config, error) = load(&[("TABLE_NAME", "users"), (FINGERPRINT_KEY_ENV, &secret)]);
        assert!(error.is_none(), "{error:?}");
        assert!(config.fingerprint_key.is_some());
        assert!(!format!("{config:?}").contains(&secret));
        let (config, error) = load(&[("TABLE_NAME", "users"), (FINGERPRINT_KEY_ENV, "short")]);
        assert!(config.fingerprint_key.is_none());
        let text = error.expect("a short key is refused").to_string();
        assert!(text.contains(FINGERPRINT_KEY_ENV), "{text}");
        assert!(!text.contains("short"), "the value is not repeated: {text}");
    }

    #[test]
    fn every_problem_is_reported_and_the_rest_is_kept() {
        let (config, error) = load(&[
            ("DYNAMODB_MAX_ATTEMPTS", "many"),
            ("CORS_ALLOW_ORIGINS", "https://ok.example.com,not an origin"),
            ("SERVICE_NAME", "svc"),
        ]);
        let error = error.expect("three problems");
        let text = error.to_string();
        assert!(text.contains("(3 problems)"), "{text}");
        for variable in ["TABLE_NAME", "DYNAMODB_MAX_ATTEMPTS", "CORS_ALLOW_ORIGINS"] {
            assert!(text.contains(variable), "{variable} is named: {text}");
        }
        assert!(
            std::error::Error::source(&error).is_some_and(|s| s.to_string().contains("TABLE_NAME"))
        );
        assert_eq!(config.service, "svc");
        assert!(config.cors.allows(b"https://ok.example.com"));
    }

    #[test]
    fn trace_and_debug_reach_our_crates_only_unless_dependencies_are_asked_for() {
        for level in ["TRACE", "trace", "Debug"] {
            let (config, _) = load(&[("AWS_LAMBDA_LOG_LEVEL", level)]);
            let ours = level.to_ascii_lowercase();
            assert_eq!(
                config.log_levels.directive("create_user"),
                format!("info,shared={ours},create_user={ours}"),
                "{level}"
            );
        }
        let (config, _) = load(&[("RUST_LOG", "debug")]);
        assert_eq!(
            config.log_levels.directive("login"),
            "info,shared=debug,login=debug"
        );
        let (config, _) = load(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]);
        assert_eq!(
            config.log_levels.directive("login"),
            "warn,shared=warn,login=warn"
        );
        let (config, _) = load(&[
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
            ("DEPENDENCY_LOG_LEVEL", "debug"),
        ]);
        assert_eq!(
            config.log_levels.directive("login"),
            "debug,shared=trace,login=trace"
        );
        // Not a level (a directive that would open every crate): the default.
        let (config, _) = load(&[("RUST_LOG", "trace,aws_smithy_runtime=trace")]);
        assert_eq!(config.log_levels, LogLevels::default());
    }

    #[test]
    fn base_paths_are_normalised_and_checked() {
        for (value, expected) in [
            ("/prod", "/prod"),
            ("/v1/", "/v1"),
            ("/", ""),
            ("/a/b-c.d", "/a/b-c.d"),
        ] {
            let (config, error) = load(&[("TABLE_NAME", "t"), ("BASE_PATH", value)]);
            assert!(error.is_none(), "{value}: {error:?}");
            assert_eq!(config.base_path, expected, "{value}");
        }
        for bad in ["v1", "/v1//x", "/v 1", "/v1?x=1", "https://api.example.com"] {
            let (config, error) = load(&[("TABLE_NAME", "t"), ("BASE_PATH", bad)]);
            assert!(
                error.is_some_and(|e| e.to_string().contains("BASE_PATH")),
                "{bad}"
            );
            assert_eq!(config.base_path, "");
        }
    }

    #[test]
    fn lambda_log_levels_and_the_dsn() {
        let (config, _) = load(&[
            ("AWS_LAMBDA_LOG_LEVEL", "FATAL"),
            ("RUST_LOG", "debug"),
            ("SENTRY_DSN", " https://key@sentry.example.com/1 "),
        ]);
        assert_eq!(
            config.log_levels.directive("login"),
            "error,shared=error,login=error"
        );
        assert_eq!(
            config.sentry_dsn.as_deref(),
            Some("https://key@sentry.example.com/1")
        );
        assert!(
            !format!("{config:?}").contains("key@"),
            "Debug leaves the DSN out"
        );
    }
}
