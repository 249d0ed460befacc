//! template.yaml, checked offline: cfn-lint; API Gateway's own errors on the contract; the
//! dashboard and alarms against the metrics the shared crate emits; routes against functions/ and
//! events/; function settings against the retry policy. Nothing here reaches AWS.
//!
//! The facts come from the code and the workspace (`shared::metric::ALL`, `shared::telemetry::emf`,
//! `RetryPolicy::default()`, the function crates cargo metadata lists, openapi.yaml, events/), not
//! from copies of them. Routes are the template's own (each function's `Api` event); the events
//! test holds each crate's `ROUTE` to them.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::Command,
    time::Duration,
};

use api_tests::{
    DEFAULT_INVOCATION_TIME, assert_valid_error_body, functions, root,
    template::{Route, TemplateFunction, resources, template, text},
};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use shared::{
    config::{DEFAULT_NAMESPACE, DEFAULT_SERVICE},
    metric,
    store::{RetryPolicy, retry::MIN_ATTEMPT_TIME},
    telemetry::emf::DIMENSION_SETS,
};

/// The DynamoDB actions a function's policy may grant: item reads and writes that IAM can limit to
/// item kinds by partition key (no Scan, which reads every kind; no table or stream actions).
const ITEM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
];

/// API Gateway's integration timeout (REST APIs, the default and usual maximum).
const API_GATEWAY_TIMEOUT: Duration = Duration::from_secs(29);

/// Every gateway response type API Gateway has (REST APIs). All are mapped, so the fixed status of
/// DEFAULT_4XX / DEFAULT_5XX never replaces the status of a type it would otherwise stand for.
const RESPONSE_TYPES: &[&str] = &[
    "ACCESS_DENIED",
    "API_CONFIGURATION_ERROR",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "AUTHORIZER_FAILURE",
    "BAD_REQUEST_BODY",
    "BAD_REQUEST_PARAMETERS",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "EXPIRED_TOKEN",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "INVALID_API_KEY",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "QUOTA_EXCEEDED",
    "REQUEST_TOO_LARGE",
    "RESOURCE_NOT_FOUND",
    "THROTTLED",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "WAF_FILTERED",
];

/// The headers every response carries, whatever produced it, with their values: what
/// shared/src/response.rs sets on the functions' answers (the API tests check those on every reply),
/// and what the README promises of every response.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
];

/// The request id API Gateway would put in `$context.requestId`.
const SAMPLE_REQUEST_ID: &str = "c6af9ac6-7b61-11e6-9a41-93e8deadb001";

/// `$context` variables a gateway response may use, with values API Gateway could give them.
const SAMPLE_CONTEXT: &[(&str, &str)] = &[
    ("$context.requestId", SAMPLE_REQUEST_ID),
    ("$context.extendedRequestId", "Ab1CdEfGhIjKlM="),
    ("$context.error.message", "Too Many Requests"),
    ("$context.error.messageString", "\"Too Many Requests\""),
    ("$context.error.responseType", "THROTTLED"),
    ("$context.stage", "dev"),
];

/// A short-form intrinsic (`!Ref X`) as (tag without `!`, value).
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        _ => None,
    }
}

fn ref_name(value: &Value) -> Option<&str> {
    match intrinsic(value) {
        Some((tag, target)) if tag == "Ref" => target.as_str(),
        _ => None,
    }
}

fn parameter_default(name: &str) -> String {
    text(&template()["Parameters"][name]["Default"])
}

/// Resources of one type, as (logical id, resource).
fn resources_of(kind: &str) -> Vec<(String, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (text(id), r))
        .collect()
}

/// A function property, falling back to Globals.Function.
fn function_property<'a>(function: &'a Value, name: &str) -> &'a Value {
    let own = &function["Properties"][name];
    if own.is_null() {
        &template()["Globals"]["Function"][name]
    } else {
        own
    }
}

/// The function crates, from cargo metadata (what the template must deploy).
fn crates() -> BTreeSet<String> {
    test_support::functions::names()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The functions template.yaml deploys.
fn template_functions() -> Vec<TemplateFunction> {
    api_tests::template::functions()
}

/// The route each deployed function serves, by function (its one `Api` event).
fn routes() -> BTreeMap<String, Route> {
    template_functions()
        .into_iter()
        .map(|f| match f.routes.as_slice() {
            [(route, _)] => (f.dir.clone(), route.clone()),
            other => panic!(
                "{}: one Api event per function, not {}",
                f.logical_id,
                other.len()
            ),
        })
        .collect()
}

#[test]
fn cfn_lint_passes() {
    let cfn_lint = root().join(".venv/bin/cfn-lint");
    assert!(
        cfn_lint.exists(),
        "{} is missing: run the tests with `make test` (scripts/venv.sh installs it)",
        cfn_lint.display()
    );
    let output = Command::new(&cfn_lint)
        .arg("template.yaml")
        .current_dir(root())
        .output()
        .expect("cfn-lint runs");
    assert!(
        output.status.success(),
        "cfn-lint template.yaml failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_gateway_response_renders_to_a_contract_body() {
    let responses = template()["Resources"]["UsersApi"]["Properties"]["GatewayResponses"]
        .as_mapping()
        .expect("UsersApi has GatewayResponses");
    let configured: BTreeSet<String> = responses.keys().map(text).collect();
    let expected: BTreeSet<String> = RESPONSE_TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(
        configured, expected,
        "every gateway response type is mapped"
    );

    for (kind, response) in responses {
        let kind = text(kind);
        let status: u16 = text(&response["StatusCode"])
            .parse()
            .unwrap_or_else(|_| panic!("{kind}: StatusCode is a number"));
        let headers = &response["ResponseParameters"]["Headers"];
        assert_eq!(
            headers["Content-Type"].as_str(),
            Some("'application/json'"),
            "{kind}: content-type"
        );
        assert_eq!(
            headers["x-request-id"].as_str(),
            Some("context.requestId"),
            "{kind}: x-request-id is API Gateway's request id"
        );
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                headers[*name].as_str(),
                Some(format!("'{value}'").as_str()),
                "{kind}: {name}: {value}, as on every response"
            );
        }
        let templates = response["ResponseTemplates"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{kind}: ResponseTemplates"));
        assert_eq!(templates.len(), 1, "{kind}: one template, application/json");
        let mut body = templates
            .get("application/json")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{kind}: an application/json template"))
            .to_owned();
        // API Gateway substitutes $context variables (the templates are not VTL).
        for (variable, value) in SAMPLE_CONTEXT {
            body = body.replace(variable, value);
        }
        assert!(
            !body.contains('$'),
            "{kind}: a variable this test cannot render: {body}"
        );
        let body: Json = serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("{kind}: the rendered body is not JSON ({err}): {body}"));
        assert_valid_error_body(&body);
        assert_eq!(body["status"], status, "{kind}: body status = HTTP status");
        assert_eq!(body["request_id"], SAMPLE_REQUEST_ID, "{kind}");

        if status == 429 || status == 503 {
            let retry_after = headers["Retry-After"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}: a {status} carries Retry-After"));
            let seconds = retry_after.trim_matches('\'');
            assert!(
                retry_after.starts_with('\'') && seconds.parse::<u32>().is_ok_and(|s| s > 0),
                "{kind}: Retry-After is a quoted number of seconds, not {retry_after}"
            );
        }
    }

    let status_of = |kind: &str| text(&responses[kind]["StatusCode"]);
    assert_eq!(status_of("THROTTLED"), "429");
    assert_eq!(status_of("QUOTA_EXCEEDED"), "429");
    // An unknown route: API Gateway says "Missing Authentication Token"; we say 404.
    assert_eq!(status_of("MISSING_AUTHENTICATION_TOKEN"), "404");
    assert_eq!(status_of("INTEGRATION_TIMEOUT"), "504");
}

#[test]
#[should_panic(expected = "not a contract error body")]
fn the_gateway_body_check_refuses_api_gateways_own_body() {
    // What API Gateway sends for a response type the template does not map: the check the test
    // above applies to every gateway response must refuse it.
    assert_valid_error_body(&serde_json::json!({"message": "Internal server error"}));
}

/// A metric the dashboard or an alarm reads: namespace, name and dimensions (name → value). A
/// dashboard SEARCH reads every metric of its schema: a dimension it does not restrict has the
/// value [`ANY`], one it matches partially `~<term>`.
#[derive(Debug, Clone)]
struct MetricUse {
    source: String,
    namespace: String,
    name: String,
    dimensions: BTreeMap<String, String>,
}

/// The value of a dimension a SEARCH expression does not restrict: every value.
const ANY: &str = "*";

/// The metrics a dashboard `SEARCH('{namespace,dimension,...} terms', 'stat', period)` reads.
/// Only the forms the dashboard uses are read: `MetricName="..."` (required) and
/// `Dimension="value"` (exact) or `Dimension=term` (partial) for dimensions of the schema;
/// anything else fails, rather than pass unread.
fn search_metric(expression: &str, source: &str) -> MetricUse {
    let what = format!("{source}: {expression}");
    let inner = expression
        .strip_prefix("SEARCH('")
        .and_then(|rest| rest.split_once("', '"))
        .map(|(query, _)| query)
        .unwrap_or_else(|| panic!("{what}: SEARCH('<query>', '<stat>', <period>)"));
    let (schema, terms) = inner
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
        .unwrap_or_else(|| panic!("{what}: a metric schema {{namespace,dimension,...}}"));
    let mut schema = schema
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned());
    let namespace = schema
        .next()
        .unwrap_or_else(|| panic!("{what}: a namespace"));
    let mut dimensions: BTreeMap<String, String> =
        schema.map(|name| (name, ANY.to_owned())).collect();
    let mut name = None;
    for term in terms.split_whitespace() {
        let (key, value) = term
            .split_once('=')
            .unwrap_or_else(|| panic!("{what}: {term} is not Key=value"));
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(exact) => exact.to_owned(),
            None => format!("~{value}"),
        };
        if key == "MetricName" {
            assert!(!value.starts_with('~'), "{what}: MetricName=\"<exact>\"");
            name = Some(value);
        } else {
            let slot = dimensions
                .get_mut(key)
                .unwrap_or_else(|| panic!("{what}: {key} is not a dimension of the schema"));
            *slot = value;
        }
    }
    MetricUse {
        source: source.to_owned(),
        namespace,
        name: name.unwrap_or_else(|| panic!("{what}: MetricName=\"...\"")),
        dimensions,
    }
}

/// What `${...}` in the template's !Sub strings stands for, for the checks: parameters at their
/// defaults, resources by logical id.
fn substitute(template_text: &str) -> String {
    let mut out = String::new();
    let mut rest = template_text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .expect("a closed ${...}");
        let name = &rest[start + 2..end];
        let value = if let Some(literal) = name.strip_prefix('!') {
            format!("${{{literal}}}")
        } else if name.starts_with("AWS::") {
            format!("pseudo-{}", name.trim_start_matches("AWS::"))
        } else if !template()["Parameters"][name].is_null() {
            parameter_default(name)
        } else {
            let logical = name.split('.').next().unwrap_or(name);
            assert!(
                resources().contains_key(logical),
                "${{{name}}} names no parameter or resource"
            );
            format!("resource-{name}")
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn dashboard() -> Json {
    let (_, dashboard) = resources_of("AWS::CloudWatch::Dashboard")
        .into_iter()
        .next()
        .expect("a dashboard");
    let body = &dashboard["Properties"]["DashboardBody"];
    let Some((tag, body)) = intrinsic(body) else {
        panic!("DashboardBody is a !Sub")
    };
    assert_eq!(tag, "Sub");
    let rendered = substitute(body.as_str().expect("!Sub of a string"));
    serde_json::from_str(&rendered)
        .unwrap_or_else(|err| panic!("the dashboard body is not JSON ({err}):\n{rendered}"))
}

fn dashboard_metrics() -> Vec<MetricUse> {
    let mut found = Vec::new();
    for widget in dashboard()["widgets"].as_array().expect("widgets") {
        if widget["type"] != "metric" {
            continue;
        }
        let title = widget["properties"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for row in widget["properties"]["metrics"]
            .as_array()
            .expect("a metric widget lists metrics")
        {
            let row = row.as_array().expect("a metric row is an array");
            let names: Vec<&str> = row.iter().map_while(Json::as_str).collect();
            if names.is_empty() {
                // An expression row: {"expression": ...}; a SEARCH reads metrics, which are checked
                // like the others.
                let expression = row[0]["expression"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{title}: {row:?}"));
                if expression.starts_with("SEARCH(") {
                    found.push(search_metric(
                        expression,
                        &format!("dashboard widget {title:?}"),
                    ));
                }
                continue;
            }
            assert!(
                !names.contains(&"."),
                "{title}: write metric rows in full, without the \".\" shorthand"
            );
            assert!(
                names.len() >= 2 && names.len().is_multiple_of(2),
                "{title}: [namespace, name, (dimension, value)*]: {row:?}"
            );
            found.push(MetricUse {
                source: format!("dashboard widget {title:?}"),
                namespace: names[0].to_owned(),
                name: names[1].to_owned(),
                dimensions: names[2..]
                    .chunks(2)
                    .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                    .collect(),
            });
        }
    }
    found
}

/// An alarm's scalar: a literal, a !Ref to a parameter (its default) or a resource, or a !Sub.
fn alarm_value(value: &Value) -> String {
    match intrinsic(value) {
        Some((tag, target)) if tag == "Ref" => {
            let name = target.as_str().expect("!Ref of a name");
            if template()["Parameters"][name].is_null() {
                format!("resource-{name}")
            } else {
                parameter_default(name)
            }
        }
        Some((tag, target)) if tag == "Sub" => substitute(target.as_str().expect("!Sub string")),
        Some((tag, _)) => panic!("an alarm uses !{tag}, which this test does not read"),
        None => text(value),
    }
}

fn alarm_metrics() -> Vec<MetricUse> {
    let mut found = Vec::new();
    for (id, alarm) in resources_of("AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let mut metrics: Vec<&Value> = Vec::new();
        if !p["MetricName"].is_null() {
            metrics.push(p);
        }
        for query in p["Metrics"].as_sequence().into_iter().flatten() {
            if !query["MetricStat"].is_null() {
                metrics.push(&query["MetricStat"]["Metric"]);
            }
        }
        assert!(!metrics.is_empty(), "{id} reads no metric");
        for m in metrics {
            found.push(MetricUse {
                source: format!("alarm {id}"),
                namespace: alarm_value(&m["Namespace"]),
                name: alarm_value(&m["MetricName"]),
                dimensions: m["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|d| (alarm_value(&d["Name"]), alarm_value(&d["Value"])))
                    .collect(),
            });
        }
    }
    found
}

#[test]
fn the_metrics_namespace_and_service_defaults_are_the_codes() {
    assert_eq!(parameter_default("MetricsNamespace"), DEFAULT_NAMESPACE);
    assert_eq!(parameter_default("ServiceName"), DEFAULT_SERVICE);
    let env = &template()["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(
        ref_name(&env["METRICS_NAMESPACE"]),
        Some("MetricsNamespace")
    );
    assert_eq!(ref_name(&env["SERVICE_NAME"]), Some("ServiceName"));
}

#[test]
fn dashboard_and_alarms_read_only_metrics_the_code_emits() {
    let functions = crates();
    let routes: BTreeSet<String> = routes().values().map(ToString::to_string).collect();
    assert!(
        functions.contains("health") && routes.contains("GET /health"),
        "{functions:?} {routes:?}"
    );
    let emitted: BTreeSet<&str> = metric::ALL.iter().map(|m| m.name).collect();
    let dimension_sets: Vec<BTreeSet<&str>> = DIMENSION_SETS
        .iter()
        .map(|set| set.iter().copied().collect())
        .collect();
    let aws: BTreeMap<&str, BTreeSet<&str>> = [
        ("AWS/ApiGateway", ["ApiName", "Stage"].into()),
        ("AWS/Lambda", ["FunctionName"].into()),
        ("AWS/DynamoDB", ["TableName", "Operation"].into()),
        ("AWS/WAFV2", ["WebACL", "Region", "Rule"].into()),
    ]
    .into();

    let dashboard = dashboard_metrics();
    let alarms = alarm_metrics();
    for m in dashboard.iter().chain(&alarms) {
        let what = format!("{}: {} {}", m.source, m.namespace, m.name);
        if m.namespace == DEFAULT_NAMESPACE {
            assert!(
                emitted.contains(m.name.as_str()),
                "{what}: not in shared::metric::ALL"
            );
            let names: BTreeSet<&str> = m.dimensions.keys().map(String::as_str).collect();
            assert!(
                dimension_sets.contains(&names),
                "{what}: dimensions {names:?} are not one of emf::DIMENSION_SETS"
            );
            assert_eq!(m.dimensions["Service"], DEFAULT_SERVICE, "{what}");
            if let Some(function) = m.dimensions.get("Function") {
                assert!(
                    function == ANY || functions.contains(function.as_str()),
                    "{what}: no function {function}"
                );
            }
            if let Some(route) = m.dimensions.get("Route") {
                assert!(
                    route == ANY || routes.contains(route),
                    "{what}: no route {route}"
                );
            }
        } else {
            let allowed = aws
                .get(m.namespace.as_str())
                .unwrap_or_else(|| panic!("{what}: neither the EMF namespace nor an AWS one"));
            for name in m.dimensions.keys() {
                assert!(allowed.contains(name.as_str()), "{what}: dimension {name}");
            }
        }
    }

    // The other way round: everything the code emits is on the dashboard, and each function's
    // requests, latency, 4xx, 5xx and cold starts are charted per function (a SEARCH over every
    // Function charts each of them, a new one included).
    let charted = |name: &str, function: Option<&str>| {
        dashboard.iter().any(|m| {
            m.namespace == DEFAULT_NAMESPACE
                && m.name == name
                && function.is_none_or(|f| {
                    m.dimensions
                        .get("Function")
                        .is_some_and(|charted| charted == f || charted == ANY)
                })
        })
    };
    for m in metric::ALL {
        assert!(charted(m.name, None), "{} is not on the dashboard", m.name);
    }
    for function in &functions {
        for m in [
            metric::LATENCY,
            metric::ERRORS_4XX,
            metric::ERRORS_5XX,
            metric::COLD_START,
            metric::DYNAMODB_RETRIES,
            metric::DYNAMODB_RETRIES_EXHAUSTED,
            metric::DYNAMODB_LATENCY,
        ] {
            assert!(charted(m.name, Some(function)), "{} of {function}", m.name);
        }
    }

    // The alarms the stack promises.
    let alarmed = |namespace: &str, name: &str| {
        alarms
            .iter()
            .any(|m| m.namespace == namespace && m.name == name)
    };
    assert!(
        alarmed("AWS/ApiGateway", "5XXError"),
        "an alarm on the 5xx rate"
    );
    assert!(
        alarmed("AWS/ApiGateway", "Latency"),
        "an alarm on p99 latency"
    );
    assert!(alarmed(
        DEFAULT_NAMESPACE,
        metric::DYNAMODB_RETRIES_EXHAUSTED.name
    ));
    assert!(alarmed(DEFAULT_NAMESPACE, metric::DYNAMODB_THROTTLES.name));
    assert!(alarmed("AWS/Lambda", "Errors"), "an alarm on Lambda errors");
}

/// The properties of the alarm `id`.
fn alarm(id: &str) -> &'static Value {
    let resource = resources()
        .get(id)
        .unwrap_or_else(|| panic!("template.yaml has no {id}"));
    assert_eq!(
        resource["Type"].as_str(),
        Some("AWS::CloudWatch::Alarm"),
        "{id} is an alarm"
    );
    &resource["Properties"]
}

/// A metric's dimensions (name → value, as `alarm_value` renders them).
fn dimensions(metric: &Value) -> BTreeMap<String, String> {
    metric["Dimensions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|d| (alarm_value(&d["Name"]), alarm_value(&d["Value"])))
        .collect()
}

/// The metrics a metric-math alarm sums: each `MetricStat` query's metric, after asserting that
/// the alarm watches `SUM(METRICS())` of them, each summed over `period` seconds.
fn summed_metrics(id: &str, period: u64) -> Vec<&'static Value> {
    let queries = alarm(id)["Metrics"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{id} is a metric-math alarm"));
    let watched: Vec<&Value> = queries
        .iter()
        .filter(|q| q["ReturnData"].as_bool() == Some(true))
        .collect();
    assert_eq!(watched.len(), 1, "{id} watches one expression");
    assert_eq!(
        watched[0]["Expression"].as_str(),
        Some("SUM(METRICS())"),
        "{id}"
    );
    let metrics: Vec<&Value> = queries
        .iter()
        .filter(|q| !q["MetricStat"].is_null())
        .map(|q| {
            assert_eq!(q["MetricStat"]["Stat"].as_str(), Some("Sum"), "{id}");
            assert_eq!(q["MetricStat"]["Period"].as_u64(), Some(period), "{id}");
            &q["MetricStat"]["Metric"]
        })
        .collect();
    // CloudWatch's hard limit for an alarm on metric math.
    assert!(
        metrics.len() <= 10,
        "{id} reads {} metrics; an alarm may read 10: split it",
        metrics.len()
    );
    metrics
}

/// The alarms on the dashboard's alarm widgets, by logical id.
fn dashboard_alarms() -> BTreeSet<String> {
    dashboard()["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| {
            w["properties"]["alarms"]
                .as_array()
                .expect("an alarm widget lists alarms")
        })
        .map(|arn| {
            let arn = arn.as_str().expect("an alarm ARN");
            arn.strip_prefix("resource-")
                .and_then(|a| a.strip_suffix(".Arn"))
                .unwrap_or_else(|| panic!("{arn} is not ${{<alarm>.Arn}}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn every_alarm_is_on_the_dashboard() {
    let alarms: BTreeSet<String> = resources_of("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| a["Condition"].is_null())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        dashboard_alarms(),
        alarms,
        "the dashboard's alarm widget shows every alarm"
    );
}

#[test]
fn the_alarms_issue_14_names_exist_on_aws_own_metrics() {
    // Metrics that need no log line, so they hold when Lambda drops the EMF documents (a JSON line
    // without `level` is INFO, dropped at LogLevel=WARN).
    let alarmed: BTreeSet<(String, String)> = alarm_metrics()
        .into_iter()
        .map(|m| (m.namespace, m.name))
        .collect();
    for (namespace, name) in [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/DynamoDB", "ThrottledRequests"),
        ("AWS/DynamoDB", "SystemErrors"),
    ] {
        assert!(
            alarmed.contains(&(namespace.to_owned(), name.to_owned())),
            "an alarm on {namespace} {name}"
        );
    }
    // API Gateway's for the stage, as clients see it.
    for id in ["ServerErrorRateAlarm", "LatencyP99Alarm"] {
        let p = alarm(id);
        let metrics: Vec<&Value> = if p["Metrics"].is_null() {
            vec![p]
        } else {
            p["Metrics"]
                .as_sequence()
                .expect("metrics")
                .iter()
                .filter(|q| !q["MetricStat"].is_null())
                .map(|q| &q["MetricStat"]["Metric"])
                .collect()
        };
        for m in metrics {
            assert_eq!(alarm_value(&m["Namespace"]), "AWS/ApiGateway", "{id}");
            assert_eq!(
                dimensions(m),
                BTreeMap::from([
                    ("ApiName".to_owned(), "pseudo-StackName-api".to_owned()),
                    ("Stage".to_owned(), parameter_default("Stage")),
                ]),
                "{id}: the stage of this stack's API"
            );
        }
    }
    assert_eq!(
        alarm_value(&resources()["UsersApi"]["Properties"]["Name"]),
        "pseudo-StackName-api",
        "the API's name is the ApiName the alarms read"
    );
}

#[test]
fn per_function_alarms_cover_every_function() {
    // The functions the template deploys: every function crate (cargo metadata), no other
    // (every_endpoint_has_its_four_pieces names a missing one).
    let deployed: Vec<TemplateFunction> = template_functions();
    assert_eq!(
        deployed
            .iter()
            .map(|f| f.dir.clone())
            .collect::<BTreeSet<_>>(),
        crates(),
        "the template deploys the function crates"
    );
    let functions: BTreeSet<String> = deployed
        .iter()
        .map(|f| format!("resource-{}", f.logical_id))
        .collect();
    for (id, name) in [
        ("LambdaErrorsAlarm", "Errors"),
        ("LambdaThrottlesAlarm", "Throttles"),
    ] {
        let mut covered = BTreeSet::new();
        for m in summed_metrics(id, 300) {
            assert_eq!(alarm_value(&m["Namespace"]), "AWS/Lambda", "{id}");
            assert_eq!(alarm_value(&m["MetricName"]), name, "{id}");
            let function = dimensions(m)
                .remove("FunctionName")
                .unwrap_or_else(|| panic!("{id}: a metric per FunctionName"));
            assert!(covered.insert(function.clone()), "{id}: {function} twice");
        }
        assert_eq!(covered, functions, "{id} sums {name} of every function");
    }
    // And no alarm reads a Lambda metric for only some of them.
    for (id, _) in resources_of("AWS::CloudWatch::Alarm") {
        let read: BTreeSet<String> = alarm_metrics()
            .into_iter()
            .filter(|m| m.source == format!("alarm {id}") && m.namespace == "AWS/Lambda")
            .filter_map(|m| m.dimensions.get("FunctionName").cloned())
            .collect();
        assert!(
            read.is_empty() || read == functions,
            "{id} reads Lambda metrics of {read:?}, not of every function"
        );
    }
}

#[test]
fn the_dashboard_charts_lambdas_own_metrics_of_every_function() {
    // Lambda's Errors, Throttles and Duration of the stack's functions, by a SEARCH on their
    // names, which all start with the stack's name: a new function is charted without an edit.
    let stack = substitute("${AWS::StackName}");
    for f in template_functions() {
        assert_eq!(
            alarm_value(&f.resource["Properties"]["FunctionName"]),
            format!("{stack}-{}", f.dir),
            "{}: FunctionName: !Sub \"${{AWS::StackName}}-{}\" (the dashboard finds the functions by it)",
            f.logical_id,
            f.dir
        );
    }
    for name in ["Errors", "Throttles", "Duration"] {
        let charted: Vec<MetricUse> = dashboard_metrics()
            .into_iter()
            .filter(|m| m.namespace == "AWS/Lambda" && m.name == name)
            .collect();
        assert!(!charted.is_empty(), "the dashboard charts Lambda {name}");
        for m in charted {
            assert_eq!(
                m.dimensions,
                BTreeMap::from([("FunctionName".to_owned(), format!("~{stack}"))]),
                "{}: Lambda {name} of the functions named after the stack",
                m.source
            );
        }
    }
}

/// DynamoDB operations and the name of their call in the Rust SDK's fluent client.
const DYNAMODB_OPERATIONS: &[(&str, &str)] = &[
    ("GetItem", "get_item"),
    ("PutItem", "put_item"),
    ("UpdateItem", "update_item"),
    ("DeleteItem", "delete_item"),
    ("Query", "query"),
    ("Scan", "scan"),
    ("BatchGetItem", "batch_get_item"),
    ("BatchWriteItem", "batch_write_item"),
    ("TransactGetItems", "transact_get_items"),
    ("TransactWriteItems", "transact_write_items"),
    ("ExecuteStatement", "execute_statement"),
    ("BatchExecuteStatement", "batch_execute_statement"),
    ("ExecuteTransaction", "execute_transaction"),
];

/// The DynamoDB operations the code calls: `.get_item()` and the like, in the shared crate and the
/// functions.
fn code_dynamodb_operations() -> BTreeSet<String> {
    fn rust_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("shared/src"), &mut files);
    rust_files(&root().join("functions"), &mut files);
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("a source file"))
        .collect();
    let operations: BTreeSet<String> = DYNAMODB_OPERATIONS
        .iter()
        .filter(|(_, call)| code.contains(&format!(".{call}()")))
        .map(|(operation, _)| (*operation).to_owned())
        .collect();
    assert!(
        operations.contains("GetItem") && operations.contains("TransactWriteItems"),
        "the store's calls are found: {operations:?}"
    );
    operations
}

#[test]
fn dynamodb_alarms_cover_every_operation_the_code_makes() {
    // DynamoDB publishes ThrottledRequests and SystemErrors per table and operation only.
    let operations = code_dynamodb_operations();
    for (id, name) in [
        ("DynamoDbThrottledRequestsAlarm", "ThrottledRequests"),
        ("DynamoDbSystemErrorsAlarm", "SystemErrors"),
    ] {
        let mut covered = BTreeSet::new();
        for m in summed_metrics(id, 300) {
            assert_eq!(alarm_value(&m["Namespace"]), "AWS/DynamoDB", "{id}");
            assert_eq!(alarm_value(&m["MetricName"]), name, "{id}");
            let mut dims = dimensions(m);
            assert_eq!(
                dims.remove("TableName").as_deref(),
                Some("resource-UsersTable"),
                "{id}: the stack's table"
            );
            let operation = dims
                .remove("Operation")
                .unwrap_or_else(|| panic!("{id}: a metric per Operation"));
            assert!(dims.is_empty(), "{id}: {dims:?}");
            assert!(covered.insert(operation.clone()), "{id}: {operation} twice");
        }
        assert_eq!(covered, operations, "{id} sums {name} of every operation");
        // Charted too, per operation.
        let charted: BTreeSet<String> = dashboard_metrics()
            .into_iter()
            .filter(|m| m.namespace == "AWS/DynamoDB" && m.name == name)
            .filter_map(|m| m.dimensions.get("Operation").cloned())
            .collect();
        assert_eq!(
            charted, operations,
            "the dashboard charts {name} per operation"
        );
    }
}

#[test]
fn failed_logins_have_an_alarm_for_spraying_and_stuffing() {
    let p = alarm("LoginFailuresAlarm");
    assert_eq!(alarm_value(&p["Namespace"]), DEFAULT_NAMESPACE);
    assert_eq!(p["MetricName"].as_str(), Some(metric::LOGIN_FAILURES.name));
    // Every function that checks a password together, from every client.
    assert_eq!(
        dimensions(p),
        BTreeMap::from([("Service".to_owned(), DEFAULT_SERVICE.to_owned())])
    );
    assert_eq!(p["Statistic"].as_str(), Some("Sum"));
    assert_eq!(p["Period"].as_u64(), Some(300));
    assert_eq!(p["EvaluationPeriods"].as_u64(), Some(1));
    assert_eq!(
        p["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold")
    );
    assert_eq!(ref_name(&p["Threshold"]), Some("LoginFailuresThreshold"));
    assert_eq!(parameter_default("LoginFailuresThreshold"), "50");
    // login emits 0 or 1 per attempt, so no data means no logins, not a broken pipeline.
    assert_eq!(p["TreatMissingData"].as_str(), Some("notBreaching"));
    assert!(
        dashboard_metrics()
            .iter()
            .any(|m| m.namespace == DEFAULT_NAMESPACE
                && m.name == metric::LOGIN_FAILURES.name
                && m.dimensions.get("Function").map(String::as_str)
                    == Some(functions::login().name)),
        "the dashboard charts login's failures"
    );
}

/// The operations of openapi.yaml, as routes.
fn openapi_routes() -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for (path, item) in api_tests::contract::document()["paths"]
        .as_object()
        .expect("openapi.yaml has paths")
    {
        for method in item.as_object().expect("a path item").keys() {
            routes.insert(Route {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
            });
        }
    }
    routes
}

/// What is missing for each endpoint: a function is its crate under functions/, its function in
/// template.yaml (with its one route), its operation in openapi.yaml and its sample events. Every
/// other list (workspace members, the dev gateway's routes, the build and bench lists, the tests'
/// function list) is derived from these four, so one missing piece is all this can find.
fn missing_pieces() -> Vec<String> {
    let mut missing = Vec::new();
    let crates = test_support::functions::crates().unwrap_or_else(|err| panic!("{err}"));
    let deployed = template_functions();
    let documented = openapi_routes();
    let events_dirs: BTreeSet<String> = std::fs::read_dir(root().join("events"))
        .expect("events/")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();

    for krate in crates {
        let dir = &krate.dir;
        if krate.name != *dir {
            missing.push(format!(
                "functions/{dir} is the package {}: name the directory like the package (the \
                 binary, CodeUri and the EMF Function dimension follow it)",
                krate.name
            ));
        }
        if krate.bins != [krate.name.clone()] {
            missing.push(format!(
                "functions/{dir} builds the binaries {:?}: one, named {}, its src/main.rs \
                 calling shared::run",
                krate.bins, krate.name
            ));
        }
        if !deployed.iter().any(|f| f.dir == *dir) {
            missing.push(format!(
                "functions/{dir} has no function in template.yaml (CodeUri: functions/{dir})"
            ));
        }
        if !events_dirs.contains(dir) {
            missing.push(format!(
                "events/{dir}/ is missing (each function needs at least an ok case and one per \
                 documented error, and method_not_allowed; events/README.md)"
            ));
        } else {
            match api_tests::samples::cases_of(dir) {
                Err(problem) => missing.push(problem),
                Ok(cases) => {
                    for (case, wanted) in [("ok", "a 2xx"), ("method_not_allowed", "405")] {
                        let found = cases.iter().find(|c| c.case == case);
                        let status_ok = found.is_some_and(|c| match case {
                            "ok" => (200..300).contains(&c.expected.status),
                            _ => c.expected.status == 405,
                        });
                        if !status_ok {
                            missing.push(format!(
                                "events/{dir}/{case}.json is missing or not {wanted} in \
                                 events/{dir}/expected.toml (each function needs an ok case and \
                                 method_not_allowed; events/README.md)"
                            ));
                        }
                    }
                }
            }
        }
    }
    let crate_dirs: BTreeSet<&str> = crates.iter().map(|c| c.dir.as_str()).collect();
    for f in &deployed {
        if !crate_dirs.contains(f.dir.as_str()) {
            missing.push(format!(
                "{} in template.yaml deploys functions/{}, which is no crate (functions/{}/Cargo.toml)",
                f.logical_id, f.dir, f.dir
            ));
        }
        if f.routes.len() != 1 {
            missing.push(format!(
                "{} (functions/{}) has {} Api events: one route per function (Events: <Name>: \
                 Type: Api, Properties: Path, Method)",
                f.logical_id,
                f.dir,
                f.routes.len()
            ));
        }
        for (route, _) in &f.routes {
            if !documented.contains(route) {
                missing.push(format!(
                    "{route} is in template.yaml ({}) but not in openapi.yaml",
                    f.logical_id
                ));
            }
        }
    }
    let deployed_routes: BTreeSet<&Route> = deployed
        .iter()
        .flat_map(|f| f.routes.iter().map(|(r, _)| r))
        .collect();
    for route in &documented {
        if !deployed_routes.contains(route) {
            missing.push(format!(
                "openapi operation {route} has no function in template.yaml (an Api event with \
                 Path {} and Method {})",
                route.path, route.method
            ));
        }
    }
    for dir in &events_dirs {
        if !crate_dirs.contains(dir.as_str()) {
            missing.push(format!(
                "events/{dir}/ belongs to no function (there is no functions/{dir})"
            ));
        }
    }
    missing.extend(missing_in_template(&deployed));
    missing
}

/// What a template function needs around it in template.yaml, beyond the resource itself: its
/// log group, its place in the two Lambda alarms (an alarm cannot SEARCH) and, for its path, the
/// API's own OPTIONS and ANY mocks naming its method. Other tests check each in depth; this says
/// what to add.
fn missing_in_template(deployed: &[TemplateFunction]) -> Vec<String> {
    let mut missing = Vec::new();
    let paths = &resources()["UsersApi"]["Properties"]["DefinitionBody"]["paths"];
    for f in deployed {
        let id = &f.logical_id;
        let p = &f.resource["Properties"];
        if p["FunctionName"].is_null() {
            missing.push(format!(
                "{id} has no FunctionName: !Sub \"${{AWS::StackName}}-{}\" (its log group, the \
                 dashboard and the alarms find it by that name)",
                f.dir
            ));
            continue;
        }
        let own_log_group = format!("/aws/lambda/{}", alarm_value(&p["FunctionName"]));
        let has_log_group = ref_name(&p["LoggingConfig"]["LogGroup"])
            .and_then(|group| resources().get(group))
            .is_some_and(|r| {
                r["Type"].as_str() == Some("AWS::Logs::LogGroup")
                    && alarm_value(&r["Properties"]["LogGroupName"]) == own_log_group
            });
        if !has_log_group {
            missing.push(format!(
                "{id} has no log group of its own: LoggingConfig: LogGroup: !Ref <an \
                 AWS::Logs::LogGroup named /aws/lambda/${{AWS::StackName}}-{}>",
                f.dir
            ));
        }
        for alarm in ["LambdaErrorsAlarm", "LambdaThrottlesAlarm"] {
            let summed = resources()[alarm]["Properties"]["Metrics"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|q| {
                    q["MetricStat"]["Metric"]["Dimensions"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|d| ref_name(&d["Value"]) == Some(id.as_str()))
                });
            if !summed {
                missing.push(format!(
                    "{alarm} does not sum {id}: add a MetricStat query with FunctionName: !Ref {id}"
                ));
            }
        }
        for (route, _) in &f.routes {
            let item = &paths[route.path.as_str()];
            if item["options"].is_null() || item["x-amazon-apigateway-any-method"].is_null() {
                missing.push(format!(
                    "{route}: UsersApi's DefinitionBody has no options and \
                     x-amazon-apigateway-any-method mocks for {} (copy another path's)",
                    route.path
                ));
                continue;
            }
            let allow = text(
                &item["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]["responses"]
                    ["default"]["responseParameters"]["method.response.header.Allow"],
            );
            if !allow
                .trim_matches('\'')
                .split(',')
                .any(|m| m == route.method)
            {
                missing.push(format!(
                    "{route}: the Allow of {}'s ANY mock ({allow}) lacks {}; its preflight's \
                     Access-Control-Allow-Methods too",
                    route.path, route.method
                ));
            }
        }
    }
    missing
}

#[test]
fn every_endpoint_has_its_four_pieces() {
    let missing = missing_pieces();
    assert!(
        missing.is_empty(),
        "an endpoint is its crate, its template function, its openapi operation and its events \
         (README, \"Add an endpoint\"); missing:\n- {}",
        missing.join("\n- ")
    );
}

#[test]
fn api_keys_and_usage_plan_cover_every_route_but_health() {
    let api = &template()["Resources"]["UsersApi"]["Properties"];
    assert_eq!(api["Auth"]["ApiKeyRequired"].as_bool(), Some(true));
    for f in template_functions() {
        for (route, key) in &f.routes {
            let open = route.method == "GET" && route.path == "/health";
            assert_eq!(
                key.unwrap_or(true),
                !open,
                "{route}: an API key is required on every route but GET /health"
            );
        }
    }
    // Every plan: its own rate and burst, and stricter per-key limits on sign-up and login (each
    // costs an Argon2id hash), naming real routes only.
    let number = |v: &Value| -> f64 { alarm_value(v).parse().expect("a number") };
    let plans = resources_of("AWS::ApiGateway::UsagePlan");
    assert!(!plans.is_empty(), "a usage plan");
    for (id, plan) in &plans {
        let plan = &plan["Properties"];
        let (rate, burst) = (
            number(&plan["Throttle"]["RateLimit"]),
            number(&plan["Throttle"]["BurstLimit"]),
        );
        let stage = &plan["ApiStages"][0];
        assert_eq!(ref_name(&stage["ApiId"]), Some("UsersApi"), "{id}");
        let throttles = stage["Throttle"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{id}: per-method throttles"));
        for route in [functions::login().route, functions::create_user().route] {
            let key = format!("{}/{}", route.path, route.method);
            let t = throttles
                .get(key.as_str())
                .unwrap_or_else(|| panic!("{id}: a per-method throttle for {key}"));
            assert!(
                number(&t["RateLimit"]) < rate && number(&t["BurstLimit"]) < burst,
                "{id}: {key} is throttled more strictly than reads"
            );
        }
        for key in throttles.keys().map(text) {
            let (path, method) = key.rsplit_once('/').expect("<path>/<METHOD>");
            assert!(
                routes()
                    .values()
                    .any(|r| r.path == path && r.method == method),
                "{id}: throttle {key} names no route"
            );
        }
    }
}

/// The usage plan each API key is on (key logical id → plan logical id), from the UsagePlanKeys.
fn plans_of_keys() -> BTreeMap<String, String> {
    let mut plans = BTreeMap::new();
    for (id, link) in resources_of("AWS::ApiGateway::UsagePlanKey") {
        let p = &link["Properties"];
        assert_eq!(p["KeyType"].as_str(), Some("API_KEY"), "{id}");
        let key = ref_name(&p["KeyId"]).unwrap_or_else(|| panic!("{id}: KeyId is a !Ref"));
        let plan =
            ref_name(&p["UsagePlanId"]).unwrap_or_else(|| panic!("{id}: UsagePlanId is a !Ref"));
        assert!(
            plans.insert(key.to_owned(), plan.to_owned()).is_none(),
            "{key} is on one plan"
        );
    }
    plans
}

#[test]
fn the_browser_key_has_no_quota_by_default_and_server_consumers_have_their_own_plan() {
    // Issue 14: the key in every browser is anyone's to copy; with a quota on it, one copier uses
    // up the period for every user. Quotas are for server-side consumers, on a plan of their own.
    let plans = plans_of_keys();
    let keys: BTreeSet<String> = resources_of("AWS::ApiGateway::ApiKey")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        plans.keys().cloned().collect::<BTreeSet<_>>(),
        keys,
        "every key is on a plan"
    );
    let browser_plan = plans
        .get("ApiKey")
        .expect("the browser-facing key, ApiKey, on a plan");
    let server_plan = plans
        .get("ServerApiKey")
        .expect("a server-side key, ServerApiKey, on a plan");
    assert_ne!(
        browser_plan, server_plan,
        "the server-side key has a plan of its own"
    );

    // As CloudFormation gets it, at the defaults: no quota on the browser-facing plan.
    let deployed = translated(&[]);
    let quota =
        |plan: &str, deployed: &Json| deployed["Resources"][plan]["Properties"]["Quota"].clone();
    assert_eq!(
        quota(browser_plan, &deployed),
        Json::Null,
        "{browser_plan}: no quota by default"
    );
    let server = &deployed["Resources"][server_plan]["Properties"];
    assert_eq!(
        server["Quota"],
        serde_json::json!({"Limit": parameter_default("QuotaLimit").parse::<u64>().expect("a number"), "Period": parameter_default("QuotaPeriod")}),
        "{server_plan}: the quota parameters"
    );
    assert!(
        server["Throttle"]["RateLimit"].is_number(),
        "{server_plan}: a per-key throttle"
    );
    // The browser-facing quota is there only when asked for.
    let with_quota = translated(&["BrowserQuotaLimit=500000"]);
    assert_eq!(
        quota(browser_plan, &with_quota)["Limit"]
            .to_string()
            .trim_matches('"'),
        "500000",
        "{browser_plan}: BrowserQuotaLimit turns a quota on"
    );
    assert_eq!(parameter_default("BrowserQuotaLimit"), "0");
}

#[test]
fn functions_are_built_run_and_limited_as_documented() {
    // The worst a retried DynamoDB call can take (shared/src/store/retry.rs): every attempt timing
    // out, the widest backoff before each retry, and the margin kept before the deadline.
    let policy = RetryPolicy::default();
    let mut backoff = Duration::ZERO;
    for retry in 1..policy.max_attempts {
        backoff += (policy.backoff_base * 2u32.pow(retry - 1)).min(policy.backoff_max);
    }
    let worst_call =
        policy.attempt_timeout * policy.max_attempts + backoff + policy.deadline_margin;

    let globals = &template()["Globals"]["Function"];
    let global_timeout = globals["Timeout"].as_u64().expect("Globals Timeout");
    assert_eq!(
        Duration::from_secs(global_timeout),
        DEFAULT_INVOCATION_TIME,
        "the tests' invocation time is the functions' timeout"
    );

    for f in template_functions() {
        let id = &f.logical_id;
        let p = &f.resource["Properties"];
        assert_eq!(
            function_property(f.resource, "Runtime").as_str(),
            Some("provided.al2023")
        );
        assert_eq!(
            function_property(f.resource, "Architectures")[0].as_str(),
            Some("arm64"),
            "{id}"
        );
        assert_eq!(
            function_property(f.resource, "Tracing").as_str(),
            Some("Active")
        );
        assert_eq!(
            f.resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert!(
            p["MemorySize"].as_u64().is_some(),
            "{id}: memory sized per function"
        );

        let timeout = Duration::from_secs(
            function_property(f.resource, "Timeout")
                .as_u64()
                .expect("a timeout"),
        );
        assert!(
            timeout < API_GATEWAY_TIMEOUT,
            "{id}: the function answers before API Gateway gives up"
        );
        assert!(
            timeout > worst_call + MIN_ATTEMPT_TIME,
            "{id}: {timeout:?} leaves no room for one retried DynamoDB call ({worst_call:?})"
        );

        // Its log group: /aws/lambda/<FunctionName>, with retention, referenced so it comes first.
        let function_name = alarm_value(&p["FunctionName"]);
        let log_group_id = ref_name(&p["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is a !Ref"));
        let log_group = &resources()[log_group_id];
        assert_eq!(log_group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
        assert_eq!(
            alarm_value(&log_group["Properties"]["LogGroupName"]),
            format!("/aws/lambda/{function_name}"),
            "{id}"
        );
        assert!(
            !log_group["Properties"]["RetentionInDays"].is_null(),
            "{id}: retention"
        );

        // Least privilege: DynamoDB item actions only, on the table only, each statement scoped
        // to the item kinds it touches. Which actions and kinds: exactly the calls the function
        // makes (tests/tests/api/iam.rs holds each policy to what its sample events make it do).
        let mut actions = BTreeSet::new();
        for policy in p["Policies"].as_sequence().expect("inline policies") {
            for statement in policy["Statement"].as_sequence().expect("statements") {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                let resource = &statement["Resource"];
                assert!(
                    matches!(intrinsic(resource), Some((ref tag, t)) if tag == "GetAtt" && t.as_str() == Some("UsersTable.Arn")),
                    "{id}: a policy on the table only, not {resource:?}"
                );
                for action in statement["Action"]
                    .as_sequence()
                    .expect("a list of actions")
                {
                    let action = text(action);
                    assert!(
                        ITEM_ACTIONS.contains(&action.as_str()),
                        "{id}: {action} is not one of the item actions {ITEM_ACTIONS:?}"
                    );
                    actions.insert(action);
                }
                let kinds = statement["Condition"]["ForAllValues:StringLike"]
                    ["dynamodb:LeadingKeys"]
                    .as_sequence()
                    .unwrap_or_else(|| {
                        panic!("{id}: every statement is limited to item kinds (ForAllValues:StringLike dynamodb:LeadingKeys)")
                    });
                assert!(!kinds.is_empty(), "{id}: item kinds");
                for kind in kinds {
                    let kind = text(kind);
                    let prefix = kind.strip_suffix("#*").unwrap_or_default();
                    assert!(
                        !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_uppercase()),
                        "{id}: {kind} is not an item kind (KIND#*)"
                    );
                }
            }
        }
        assert!(!actions.is_empty(), "{id}: a policy for its store calls");
    }

    let env = &globals["Environment"]["Variables"];
    for name in [
        "TABLE_NAME",
        "STAGE",
        "SERVICE_NAME",
        "METRICS_NAMESPACE",
        "SENTRY_DSN",
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH",
    ] {
        assert!(!env[name].is_null(), "{name} is set for every function");
    }
    // Without it lambda_http puts the stage in the path the functions see (and in `Location`).
    assert_eq!(
        env["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"].as_str(),
        Some("true")
    );
    assert_eq!(ref_name(&env["SENTRY_DSN"]), Some("SentryDsn"));
    assert_eq!(
        template()["Parameters"]["SentryDsn"]["NoEcho"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_table_is_kept_and_protected_on_production_stages() {
    let table = &template()["Resources"]["UsersTable"];
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
    assert_eq!(
        p["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expires_at")
    );
    assert_eq!(
        p["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true)
    );
    let on_prod = |value: &Value, then: &str| {
        let Some((tag, args)) = intrinsic(value) else {
            panic!("{value:?} is not an !If")
        };
        assert_eq!(tag, "If");
        assert_eq!(args[0].as_str(), Some("IsProd"));
        assert_eq!(text(&args[1]), then);
    };
    on_prod(&table["DeletionPolicy"], "Retain");
    on_prod(&table["UpdateReplacePolicy"], "Retain");
    on_prod(&p["DeletionProtectionEnabled"], "true");
    let (tag, args) = intrinsic(&template()["Conditions"]["IsProd"]).expect("an IsProd condition");
    assert_eq!(tag, "Equals");
    assert_eq!(ref_name(&args[0]), Some("Stage"));
}

#[test]
fn outputs_say_where_the_api_the_key_and_the_dashboard_are() {
    let outputs = &template()["Outputs"];
    assert!(alarm_value(&outputs["ApiUrl"]["Value"]).starts_with("https://"));
    assert!(alarm_value(&outputs["DashboardUrl"]["Value"]).contains("#dashboards:name="));
    for (output, key) in [
        ("GetApiKeyCommand", "ApiKey"),
        ("GetServerApiKeyCommand", "ServerApiKey"),
    ] {
        let command = alarm_value(&outputs[output]["Value"]);
        assert!(
            command.starts_with(&format!(
                "aws apigateway get-api-key --api-key resource-{key} "
            )) && command.contains("--include-value"),
            "{output}: {command}"
        );
    }
    for (output, resource) in [
        ("ApiKeyId", "ApiKey"),
        ("ServerApiKeyId", "ServerApiKey"),
        ("UsagePlanId", "UsagePlan"),
        ("ServerUsagePlanId", "ServerUsagePlan"),
    ] {
        assert_eq!(
            ref_name(&outputs[output]["Value"]),
            Some(resource),
            "{output}"
        );
    }
}

#[test]
fn release_builds_keep_unwinding() {
    // `cargo lambda build --release` (what `sam build` runs) adds `panic = "abort"` unless the
    // release profile sets `panic` itself; a panic must unwind to become a 500 in the contract shape.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml"))
            .expect("Cargo.toml is TOML");
    assert_eq!(
        manifest["profile"]["release"]
            .get("panic")
            .and_then(|p| p.as_str()),
        Some("unwind"),
        "[profile.release] sets panic = \"unwind\" explicitly"
    );
}

#[test]
fn argon2_memory_is_returned_after_each_hash() {
    // Without a fixed threshold glibc raises its mmap threshold after the first free and keeps each
    // freed hash block resident: create_user peaked at 220 MiB in BENCHMARKS.md's run. A fixed
    // threshold below one hash's block makes every block an mmap, returned to the OS when freed;
    // one at or above glibc's default (128 KiB) keeps small allocations off mmap.
    let variables = &template()["Globals"]["Function"]["Environment"]["Variables"];
    let threshold: u64 = variables["MALLOC_MMAP_THRESHOLD_"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("MALLOC_MMAP_THRESHOLD_ is a number of bytes for every function");
    let block = u64::from(shared::domain::MEMORY_KIB) * 1024;
    assert!(
        (128 * 1024..block).contains(&threshold),
        "MALLOC_MMAP_THRESHOLD_ {threshold} must be at least 128 KiB and below one Argon2id block ({block} bytes)"
    );
}

/// template.yaml as CloudFormation gets it, with `parameters` (Name=Value) overriding the defaults:
/// SAM's transform applied offline by scripts/sam_translate.py (the functions' methods merged into
/// the REST API's body, conditions resolved).
fn translated(parameters: &[&str]) -> Json {
    let python = root().join(".venv/bin/python");
    let mut command = Command::new(&python);
    command
        .arg(root().join("scripts/sam_translate.py"))
        .current_dir(root());
    for parameter in parameters {
        command.args(["--parameter", parameter]);
    }
    let output = command.output().expect("scripts/sam_translate.py runs");
    assert!(
        output.status.success(),
        "SAM could not translate template.yaml with {parameters:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the translated template is JSON")
}

/// The REST API's OpenAPI body in a translated template.
fn rest_api_body(translated: &Json) -> &Json {
    translated["Resources"]
        .as_object()
        .expect("Resources")
        .values()
        .find(|r| r["Type"] == "AWS::ApiGateway::RestApi")
        .map(|r| &r["Properties"]["Body"])
        .expect("one AWS::ApiGateway::RestApi")
}

/// `path`'s methods that a function serves, uppercase, sorted (the functions' routes).
fn served_methods(path: &str) -> Vec<String> {
    let mut methods: Vec<String> = routes()
        .into_values()
        .filter(|r| r.path == path)
        .map(|r| r.method)
        .collect();
    methods.sort_unstable();
    methods
}

/// The lines of a mapping template that override response headers: header name -> value.
fn overridden_headers(mapping_template: &str) -> BTreeMap<String, String> {
    mapping_template
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("#set($context.responseOverride.header.")?;
            let (name, value) = rest.split_once(" = ")?;
            Some((
                name.to_owned(),
                value.trim_end_matches(')').trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// Asserts that `operation` is a mock API Gateway answers itself with `status`, needing no API key;
/// returns its integration response and that response's mapping template.
fn keyless_mock<'a>(operation: &'a Json, status: &str, what: &str) -> (&'a Json, &'a str) {
    assert!(
        operation["security"].as_array().is_none_or(Vec::is_empty),
        "{what} must not need an API key: {operation:#}"
    );
    let integration = &operation["x-amazon-apigateway-integration"];
    assert_eq!(integration["type"], "mock", "{what}");
    let response = &integration["responses"]["default"];
    assert_eq!(response["statusCode"], status, "{what}");
    let template = response["responseTemplates"]["application/json"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: a mapping template"));
    (response, template)
}

#[test]
fn every_resource_answers_preflights_and_undeclared_methods_itself() {
    let origins = "https://app.example.com,https://admin.example.com";
    let translated = translated(&[&format!("CorsAllowOrigins={origins}")]);
    let body = rest_api_body(&translated);
    let paths = body["paths"].as_object().expect("paths");
    let function_paths: BTreeSet<String> = routes().into_values().map(|r| r.path).collect();
    assert_eq!(
        paths.keys().cloned().collect::<BTreeSet<_>>(),
        function_paths,
        "the API's resources are the functions' paths"
    );
    for (path, methods) in paths {
        let served = served_methods(path);
        let allow = format!("{},OPTIONS", served.join(","));
        for method in &served {
            let operation = &methods[method.to_ascii_lowercase()];
            assert_eq!(
                operation["x-amazon-apigateway-integration"]["type"], "aws_proxy",
                "{method} {path} is the function's"
            );
        }

        // The preflight: a mock, no API key, 204, the allow headers only for a listed origin.
        let (_, template) = keyless_mock(&methods["options"], "204", &format!("OPTIONS {path}"));
        assert!(
            template.contains(&format!("#set($allowed = \"{origins}\")"))
                && template.contains("$candidate == $origin"),
            "OPTIONS {path}: the origin is compared with the exact list:\n{template}"
        );
        let overridden = overridden_headers(template);
        assert_eq!(
            overridden
                .get("Access-Control-Allow-Origin")
                .map(String::as_str),
            Some("$origin"),
            "OPTIONS {path}"
        );
        assert_eq!(
            overridden.get("Access-Control-Allow-Methods"),
            Some(&allow),
            "OPTIONS {path}"
        );
        assert_eq!(
            overridden
                .get("Access-Control-Allow-Headers")
                .map(String::as_str),
            Some(shared::cors::ALLOWED_REQUEST_HEADERS.join(",").as_str()),
            "OPTIONS {path}"
        );
        assert_eq!(
            overridden.get("Access-Control-Max-Age"),
            Some(&shared::cors::MAX_AGE.as_secs().to_string()),
            "OPTIONS {path}"
        );
        // Set inside the origin check only: an unlisted origin gets none of them.
        let inside_check = template
            .split_once("$candidate == $origin)")
            .map(|(_, after)| after)
            .unwrap_or_default();
        for name in overridden.keys() {
            assert!(
                inside_check.contains(name.as_str()),
                "OPTIONS {path}: {name} is set outside the origin check"
            );
        }

        // Every other method: 405, Allow, the contract body, no API key needed.
        let (response, template) = keyless_mock(
            &methods["x-amazon-apigateway-any-method"],
            "405",
            &format!("ANY {path}"),
        );
        let parameters = &response["responseParameters"];
        assert_eq!(
            parameters["method.response.header.Allow"],
            format!("'{allow}'"),
            "ANY {path}"
        );
        assert_eq!(
            parameters["method.response.header.Content-Type"],
            "'application/json'"
        );
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                parameters[format!("method.response.header.{name}")],
                format!("'{value}'"),
                "ANY {path}: {name}"
            );
            assert!(
                methods["x-amazon-apigateway-any-method"]["responses"]["405"]["headers"]
                    .get(*name)
                    .is_some(),
                "ANY {path}: the 405 method response declares {name}"
            );
        }
        let overridden = overridden_headers(template);
        assert_eq!(
            overridden.get("x-request-id").map(String::as_str),
            Some("$context.requestId")
        );
        assert_eq!(
            overridden
                .get("Access-Control-Expose-Headers")
                .map(String::as_str),
            Some(shared::cors::EXPOSED_HEADERS.join(",").as_str()),
            "ANY {path}"
        );
        let rendered: String = template
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("")
            .replace("$context.requestId", SAMPLE_REQUEST_ID);
        let error: Json = serde_json::from_str(&rendered)
            .unwrap_or_else(|err| panic!("ANY {path}: the body is not JSON ({err}): {rendered}"));
        assert_valid_error_body(&error);
        assert_eq!(error["status"], 405);
        assert_eq!(error["code"], "method_not_allowed");
        assert_eq!(error["request_id"], SAMPLE_REQUEST_ID);
    }
}

#[test]
fn gateway_responses_carry_cors_headers_as_the_origin_list_allows() {
    let exposed = format!("'{}'", shared::cors::EXPOSED_HEADERS.join(","));
    for (origins, allow_origin) in [
        ("", None),
        ("https://app.example.com", Some("'https://app.example.com'")),
        (
            "https://app.example.com,https://admin.example.com",
            Some("'*'"),
        ),
    ] {
        let translated = translated(&[&format!("CorsAllowOrigins={origins}")]);
        let responses = rest_api_body(&translated)["x-amazon-apigateway-gateway-responses"]
            .as_object()
            .expect("gateway responses");
        assert_eq!(responses.len(), RESPONSE_TYPES.len());
        for (kind, response) in responses {
            let headers = &response["responseParameters"];
            assert_eq!(
                headers["gatewayresponse.header.Access-Control-Allow-Origin"].as_str(),
                allow_origin,
                "{kind} with CorsAllowOrigins={origins:?}"
            );
            assert_eq!(
                headers["gatewayresponse.header.Access-Control-Expose-Headers"].as_str(),
                allow_origin.map(|_| exposed.as_str()),
                "{kind} with CorsAllowOrigins={origins:?}"
            );
            assert!(
                headers
                    .get("gatewayresponse.header.Access-Control-Allow-Credentials")
                    .is_none(),
                "{kind}: no credentials"
            );
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(
                    headers[format!("gatewayresponse.header.{name}")],
                    format!("'{value}'"),
                    "{kind}: {name} as SAM hands it to API Gateway"
                );
            }
            let body = response["responseTemplates"]["application/json"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}: a JSON template"))
                .replace("$context.requestId", SAMPLE_REQUEST_ID);
            let body: Json = serde_json::from_str(&body)
                .unwrap_or_else(|err| panic!("{kind}: SAM's body is not JSON ({err}): {body}"));
            assert_valid_error_body(&body);
            assert_eq!(
                body["status"].to_string(),
                response["statusCode"].as_str().unwrap_or_default(),
                "{kind}: the body's status is the one SAM sends"
            );
        }
        // The functions read the same list (CloudFormation resolves the Ref).
        for (id, resource) in translated["Resources"].as_object().expect("Resources") {
            if resource["Type"] == "AWS::Lambda::Function" {
                assert_eq!(
                    resource["Properties"]["Environment"]["Variables"]["CORS_ALLOW_ORIGINS"],
                    serde_json::json!({"Ref": "CorsAllowOrigins"}),
                    "{id}"
                );
            }
        }
    }
}

#[test]
fn the_dev_gateway_answers_preflights_as_the_template_does() {
    let gateway = std::fs::read_to_string(root().join("scripts/dev_gateway.py"))
        .expect("scripts/dev_gateway.py");
    for (name, value) in [
        (
            "ALLOWED_REQUEST_HEADERS",
            shared::cors::ALLOWED_REQUEST_HEADERS.join(","),
        ),
        ("EXPOSED_HEADERS", shared::cors::EXPOSED_HEADERS.join(",")),
        ("MAX_AGE", shared::cors::MAX_AGE.as_secs().to_string()),
    ] {
        assert!(
            gateway.contains(&format!("{name} = \"{value}\"")),
            "scripts/dev_gateway.py: {name} must be \"{value}\", as in shared/src/cors.rs and template.yaml"
        );
    }
}

#[test]
fn the_dev_gateway_routes_what_the_template_deploys() {
    // scripts/dev_gateway.py reads its routes from template.yaml (make dev has no list of its own);
    // this holds its reading of the template to this test's.
    let output = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/dev_gateway.py"))
        .arg("--routes")
        .current_dir(root())
        .output()
        .expect("scripts/dev_gateway.py runs");
    assert!(
        output.status.success(),
        "dev_gateway.py --routes failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let served: BTreeSet<(String, String, String)> =
        serde_json::from_slice(&output.stdout).expect("the routes, as JSON");
    let deployed: BTreeSet<(String, String, String)> = template_functions()
        .into_iter()
        .flat_map(|f| {
            f.routes
                .into_iter()
                .map(move |(route, _)| (route.method, route.path, f.dir.clone()))
        })
        .collect();
    assert!(!deployed.is_empty(), "template.yaml deploys routes");
    assert_eq!(served, deployed, "make dev serves the deployed routes");
}

/// Evaluates `value` from the template for the parameters `parameters` (others at their
/// defaults): scalars, `!Ref` of a parameter, `!Sub` of parameters, `!If`, `!Equals`, `!Or`, `!And`, `!Not` and
/// conditions by name. Enough for the settings a test runs a function with.
fn evaluate(value: &Value, parameters: &BTreeMap<&str, &str>) -> String {
    let condition = |name: &str| evaluate(&template()["Conditions"][name], parameters) == "true";
    let items = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .expect("a list")
            .iter()
            .map(|item| evaluate(item, parameters))
            .collect()
    };
    match intrinsic(value) {
        None => text(value),
        Some((tag, target)) => match tag.as_str() {
            "Ref" => {
                let name = target.as_str().expect("a name");
                parameters
                    .get(name)
                    .map_or_else(|| parameter_default(name), |v| (*v).to_owned())
            }
            "Condition" => condition(target.as_str().expect("a name")).to_string(),
            "If" => {
                let args = target.as_sequence().expect("!If takes a list");
                let name = args[0].as_str().expect("a condition name");
                evaluate(&args[if condition(name) { 1 } else { 2 }], parameters)
            }
            "Equals" => {
                let args = items(target);
                (args[0] == args[1]).to_string()
            }
            "Or" => items(target).iter().any(|v| v == "true").to_string(),
            "And" => items(target).iter().all(|v| v == "true").to_string(),
            "Not" => (items(target)[0] != "true").to_string(),
            "Sub" => {
                let mut rest = target.as_str().expect("!Sub of a string");
                let mut out = String::new();
                while let Some(start) = rest.find("${") {
                    let end = rest[start..].find('}').expect("a closing brace") + start;
                    out.push_str(&rest[..start]);
                    let name = &rest[start + 2..end];
                    out.push_str(
                        &parameters
                            .get(name)
                            .map_or_else(|| parameter_default(name), |v| (*v).to_owned()),
                    );
                    rest = &rest[end + 1..];
                }
                out + rest
            }
            other => panic!("evaluate: !{other} is not supported"),
        },
    }
}

/// The value template.yaml gives every function for the variable `name` under `parameters`
/// (others at their defaults).
pub(crate) fn global_env(name: &str, parameters: &[(&str, &str)]) -> String {
    let parameters: BTreeMap<&str, &str> = parameters.iter().copied().collect();
    evaluate(
        &template()["Globals"]["Function"]["Environment"]["Variables"][name],
        &parameters,
    )
}

/// The log settings Lambda and the template give every function for `LogLevel=level`: the
/// functions' environment (`LOG_LEVEL`, ...) plus the variables Lambda derives from
/// `LoggingConfig` (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT`).
pub(crate) fn log_settings_for(level: &str) -> Vec<(String, String)> {
    let parameters = BTreeMap::from([("LogLevel", level)]);
    let globals = &template()["Globals"]["Function"];
    let logging = &globals["LoggingConfig"];
    let mut settings = vec![
        (
            "AWS_LAMBDA_LOG_LEVEL".to_owned(),
            evaluate(&logging["ApplicationLogLevel"], &parameters),
        ),
        (
            "AWS_LAMBDA_LOG_FORMAT".to_owned(),
            evaluate(&logging["LogFormat"], &parameters),
        ),
    ];
    if let Some(variables) = globals["Environment"]["Variables"].as_mapping() {
        for (name, value) in variables {
            let name = name.as_str().expect("a variable name");
            if name.starts_with("LOG") {
                settings.push((name.to_owned(), evaluate(value, &parameters)));
            }
        }
    }
    settings
}

#[test]
fn lambdas_own_log_filter_never_drops_a_line_without_a_level() {
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
        let settings: BTreeMap<String, String> = log_settings_for(level).into_iter().collect();
        let lambda = settings["AWS_LAMBDA_LOG_LEVEL"].as_str();
        assert!(
            ["TRACE", "DEBUG", "INFO"].contains(&lambda),
            "LogLevel={level}: Lambda's level {lambda} would drop the EMF documents (no level = INFO)"
        );
        if level != "WARN" && level != "ERROR" {
            assert_eq!(
                lambda, level,
                "Lambda passes what the functions log at {level}"
            );
        }
        assert_eq!(
            settings.get("LOG_LEVEL").map(String::as_str),
            Some(level),
            "the functions apply LogLevel themselves"
        );
        assert_eq!(settings["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    }
}

/// A resource of a translated template by type: (logical id, resource); exactly one.
fn only_resource<'a>(translated: &'a Json, kind: &str) -> (&'a str, &'a Json) {
    let found: Vec<(&str, &Json)> = translated["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind}: {:?}",
        found.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    found[0]
}

/// A condition of a translated template, evaluated: the language extensions have put the
/// parameters' values in, so an `Fn::Equals` compares two literals.
fn condition_holds(translated: &Json, name: &str) -> bool {
    let condition = &translated["Conditions"][name];
    let equals = condition["Fn::Equals"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is an Fn::Equals: {condition}"));
    let literal = |v: &Json| match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        other => panic!("{name}: {other} is not a literal"),
    };
    literal(&equals[0]) == literal(&equals[1])
}

#[test]
fn the_waf_exists_only_when_enabled_and_is_off_by_default() {
    assert_eq!(parameter_default("EnableWaf"), "false");
    let (tag, args) =
        intrinsic(&template()["Conditions"]["WafEnabled"]).expect("a WafEnabled condition");
    assert_eq!(tag, "Equals");
    assert_eq!(ref_name(&args[0]), Some("EnableWaf"));
    assert_eq!(text(&args[1]), "true");
    let waf: Vec<(String, &Value)> = resources()
        .iter()
        .filter(|(_, r)| {
            r["Type"]
                .as_str()
                .is_some_and(|t| t.starts_with("AWS::WAFv2::"))
        })
        .map(|(id, r)| (text(id), r))
        .collect();
    let kinds: BTreeSet<&str> = waf.iter().filter_map(|(_, r)| r["Type"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["AWS::WAFv2::WebACL", "AWS::WAFv2::WebACLAssociation"]),
        "a web ACL and its association"
    );
    for (id, resource) in &waf {
        assert_eq!(
            resource["Condition"].as_str(),
            Some("WafEnabled"),
            "{id} exists only with EnableWaf=true"
        );
    }
    // Nothing that always exists refers to them (a false condition would break the stack).
    let ids: Vec<&str> = waf.iter().map(|(id, _)| id.as_str()).collect();
    let translated_off = translated(&[]);
    assert!(
        !condition_holds(&translated_off, "WafEnabled"),
        "off at the defaults"
    );
    for (id, resource) in translated_off["Resources"].as_object().expect("Resources") {
        if resource.get("Condition").is_some() {
            continue;
        }
        let rendered = resource.to_string();
        for waf_id in &ids {
            assert!(
                !rendered.contains(&format!("\"{waf_id}\"")),
                "{id} refers to {waf_id}, which exists only with EnableWaf=true"
            );
        }
    }
    assert!(condition_holds(
        &translated(&["EnableWaf=true"]),
        "WafEnabled"
    ));
}

/// A request as AWS WAF inspects it.
#[derive(Debug)]
struct WafRequest {
    method: String,
    uri_path: String,
}

/// `%XX` decoded, as WAF's URL_DECODE does.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Repeated slashes, `.` and inner `..` segments removed, as WAF's NORMALIZE_PATH does.
fn normalize_path(text: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." if !segments.is_empty() => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = if text.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    format!("/{}{trailing}", segments.join("/"))
}

/// Whether a WAF statement matches `request`: the statements the web ACL's scope-downs use,
/// evaluated as WAF documents them; any other statement fails the test rather than guessing.
fn waf_matches(statement: &Json, request: &WafRequest) -> bool {
    let (kind, body) = statement
        .as_object()
        .and_then(|o| o.iter().next())
        .unwrap_or_else(|| panic!("a statement: {statement}"));
    let all = |key: &str| {
        body[key]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}.{key}"))
    };
    match kind.as_str() {
        "AndStatement" => all("Statements").iter().all(|s| waf_matches(s, request)),
        "OrStatement" => all("Statements").iter().any(|s| waf_matches(s, request)),
        "NotStatement" => !waf_matches(&body["Statement"], request),
        "ByteMatchStatement" => {
            let field = &body["FieldToMatch"];
            let mut value = if field.get("Method").is_some() {
                request.method.clone()
            } else if field.get("UriPath").is_some() {
                request.uri_path.clone()
            } else {
                panic!("a field this test cannot inspect: {field}")
            };
            let mut transformations: Vec<&Json> = body["TextTransformations"]
                .as_array()
                .expect("TextTransformations")
                .iter()
                .collect();
            transformations.sort_by_key(|t| t["Priority"].as_u64());
            for t in transformations {
                value = match t["Type"].as_str() {
                    Some("NONE") => value,
                    Some("URL_DECODE") => url_decode(&value),
                    Some("NORMALIZE_PATH") => normalize_path(&value),
                    Some("LOWERCASE") => value.to_lowercase(),
                    other => panic!("a text transformation this test cannot apply: {other:?}"),
                };
            }
            let search = body["SearchString"].as_str().expect("SearchString");
            match body["PositionalConstraint"].as_str() {
                Some("EXACTLY") => value == search,
                Some("STARTS_WITH") => value.starts_with(search),
                Some("ENDS_WITH") => value.ends_with(search),
                Some("CONTAINS") => value.contains(search),
                other => panic!("a positional constraint this test cannot apply: {other:?}"),
            }
        }
        other => panic!("a statement this test cannot evaluate: {other}"),
    }
}

#[test]
fn the_waf_limits_each_client_address_on_login_sign_up_and_everything() {
    let deployed = translated(&["EnableWaf=true"]);
    let (acl_id, acl) = only_resource(&deployed, "AWS::WAFv2::WebACL");
    let acl = &acl["Properties"];
    assert_eq!(
        acl["Scope"], "REGIONAL",
        "API Gateway's web ACLs are regional"
    );
    assert!(
        acl["DefaultAction"]["Allow"].is_object(),
        "what no rule blocks is allowed"
    );
    assert_eq!(
        acl["VisibilityConfig"]["CloudWatchMetricsEnabled"], true,
        "{acl_id}: metrics"
    );
    let rules = acl["Rules"].as_array().expect("rules");
    for rule in rules {
        let name = &rule["Name"];
        assert_eq!(
            rule["VisibilityConfig"]["CloudWatchMetricsEnabled"], true,
            "{name}: metrics"
        );
        assert!(
            rule["VisibilityConfig"]["MetricName"].is_string(),
            "{name}: a metric name"
        );
    }
    let number = |v: &Json| v.as_f64().unwrap_or_else(|| panic!("a number: {v}"));
    let window = number(&rules[0]["Statement"]["RateBasedStatement"]["EvaluationWindowSec"]);
    // Rate-based, per client address, blocking: the contract's 403 request_blocked.
    let rate_rules: Vec<&Json> = rules
        .iter()
        .filter(|r| r["Statement"].get("RateBasedStatement").is_some())
        .collect();
    for rule in &rate_rules {
        let rate = &rule["Statement"]["RateBasedStatement"];
        let name = &rule["Name"];
        assert_eq!(
            rate["AggregateKeyType"], "IP",
            "{name}: per client address, never a header"
        );
        assert!(rule["Action"]["Block"].is_object(), "{name} blocks");
        assert_eq!(
            number(&rate["EvaluationWindowSec"]),
            window,
            "{name}: one window for all"
        );
    }
    let stage = parameter_default("Stage");
    let sample_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let request = |method: &str, uri_path: String| WafRequest {
        method: method.to_owned(),
        uri_path,
    };
    for (route, limit) in [
        (functions::login().route, "WafLoginRateLimit"),
        (functions::create_user().route, "WafSignUpRateLimit"),
    ] {
        let what = format!("{} {}", route.method, route.path);
        // WAF sees the stage in the path of the execute-api URL.
        let canonical = request(route.method, format!("/{stage}{}", route.path));
        let scoped: Vec<&&Json> = rate_rules
            .iter()
            .filter(|r| {
                r["Statement"]["RateBasedStatement"]
                    .get("ScopeDownStatement")
                    .is_some_and(|s| waf_matches(s, &canonical))
            })
            .collect();
        assert_eq!(
            scoped.len(),
            1,
            "one rate-based rule for {what} per address"
        );
        let rate = &scoped[0]["Statement"]["RateBasedStatement"];
        assert_eq!(
            number(&rate["Limit"]).to_string(),
            parameter_default(limit),
            "{what}: {limit}"
        );
        let scope = &rate["ScopeDownStatement"];
        // The spellings API Gateway routes to the same method, and the paths of a custom domain.
        let (head, last) = route.path.split_at(route.path.len() - 1);
        let last = last.as_bytes()[0];
        for path in [
            format!("/{stage}{}/", route.path),
            format!("/{stage}/{}", route.path),
            format!("/{stage}{head}%{last:02X}"),
            route.path.to_owned(),
            format!("/v1{}", route.path),
        ] {
            let r = request(route.method, path);
            assert!(waf_matches(scope, &r), "{what}'s rule misses {r:?}");
        }
        // Nothing else: no other method on the path, no other route.
        for method in ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let r = request(method, format!("/{stage}{}", route.path));
            assert!(!waf_matches(scope, &r), "{what}'s rule counts {r:?}");
        }
        for other in routes()
            .into_values()
            .filter(|r| (r.method.as_str(), r.path.as_str()) != (route.method, route.path))
        {
            let r = request(
                &other.method,
                format!("/{stage}{}", other.path.replace("{id}", sample_id)),
            );
            assert!(!waf_matches(scope, &r), "{what}'s rule counts {r:?}");
        }
    }

    // A ceiling per address on everything, GET /health included: low enough that one address alone
    // cannot use up a stage bucket (StageRateLimit per second, shared by every caller).
    let ceilings: Vec<&&Json> = rate_rules
        .iter()
        .filter(|r| {
            r["Statement"]["RateBasedStatement"]
                .get("ScopeDownStatement")
                .is_none()
        })
        .collect();
    assert_eq!(
        ceilings.len(),
        1,
        "one per-address ceiling on every request"
    );
    let ceiling = number(&ceilings[0]["Statement"]["RateBasedStatement"]["Limit"]);
    assert_eq!(ceiling.to_string(), parameter_default("WafIpRateLimit"));
    let stage_rate: f64 = parameter_default("StageRateLimit")
        .parse()
        .expect("a number");
    assert!(
        ceiling / window < stage_rate,
        "one address may send {ceiling} per {window} s, more than the stage's {stage_rate}/s"
    );

    // AWS's common rule set, its blocks in force.
    let common: Vec<&Json> = rules
        .iter()
        .filter(|r| {
            r["Statement"]["ManagedRuleGroupStatement"]["Name"] == "AWSManagedRulesCommonRuleSet"
        })
        .collect();
    assert_eq!(common.len(), 1, "AWSManagedRulesCommonRuleSet");
    assert_eq!(
        common[0]["Statement"]["ManagedRuleGroupStatement"]["VendorName"],
        "AWS"
    );
    assert!(
        common[0]["OverrideAction"]["None"].is_object(),
        "the rule set's own actions apply"
    );
    let max_rate_priority = rate_rules
        .iter()
        .map(|r| number(&r["Priority"]))
        .fold(0.0, f64::max);
    assert!(
        number(&common[0]["Priority"]) > max_rate_priority,
        "a flooding address is stopped by the cheap rate rules first"
    );

    // What the client sees: API Gateway's WAF_FILTERED response, on the contract.
    let blocked =
        &rest_api_body(&deployed)["x-amazon-apigateway-gateway-responses"]["WAF_FILTERED"];
    assert_eq!(blocked["statusCode"], "403");
    let body: Json = serde_json::from_str(
        &blocked["responseTemplates"]["application/json"]
            .as_str()
            .expect("a body")
            .replace("$context.requestId", SAMPLE_REQUEST_ID),
    )
    .expect("JSON");
    assert_valid_error_body(&body);
    assert_eq!(body["code"], "request_blocked");
    assert!(
        acl.get("CustomResponseBodies").is_none()
            && rules
                .iter()
                .all(|r| r["Action"]["Block"].get("CustomResponse").is_none()),
        "no WAF custom response: it would replace the contract body"
    );

    // The dashboard charts what each rule blocks.
    let metric_names: BTreeSet<String> = rules
        .iter()
        .map(|r| {
            r["VisibilityConfig"]["MetricName"]
                .as_str()
                .expect("a name")
                .to_owned()
        })
        .collect();
    let charted: Vec<MetricUse> = dashboard_metrics()
        .into_iter()
        .filter(|m| m.namespace == "AWS/WAFV2")
        .collect();
    let acl_metric =
        alarm_value(&resources()[acl_id]["Properties"]["VisibilityConfig"]["MetricName"]);
    for m in &charted {
        assert_eq!(m.dimensions["WebACL"], acl_metric, "{}", m.source);
        let rule = &m.dimensions["Rule"];
        assert!(
            metric_names.contains(rule) || rule == "ALL",
            "{}: no rule {rule}",
            m.source
        );
    }
    let charted_rules: BTreeSet<String> = charted
        .iter()
        .map(|m| m.dimensions["Rule"].clone())
        .collect();
    assert!(
        metric_names.is_subset(&charted_rules),
        "every rule's blocks are charted: {metric_names:?} vs {charted_rules:?}"
    );
}

#[test]
fn the_web_acl_protects_the_stage_whatever_its_name() {
    // SAM names the stage resource after the stage (UsersApiprodStage): the association refers to
    // it through SAM's UsersApi.Stage, so it follows the name and is created after the stage.
    let deployed = translated(&["EnableWaf=true", "Stage=prod"]);
    let stages: Vec<(&String, &Json)> = deployed["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::ApiGateway::Stage")
        .collect();
    assert_eq!(stages.len(), 1, "one stage");
    let (stage_id, stage) = stages[0];
    assert_eq!(stage["Properties"]["StageName"], "prod");
    let (acl_id, _) = only_resource(&deployed, "AWS::WAFv2::WebACL");
    let (_, association) = only_resource(&deployed, "AWS::WAFv2::WebACLAssociation");
    let p = &association["Properties"];
    let arn = p["ResourceArn"]["Fn::Sub"]
        .as_str()
        .unwrap_or_else(|| panic!("ResourceArn is an Fn::Sub: {}", p["ResourceArn"]));
    let (rest_api_id, _) = only_resource(&deployed, "AWS::ApiGateway::RestApi");
    assert_eq!(
        arn,
        format!(
            "arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{rest_api_id}}}/stages/${{{stage_id}}}"
        ),
        "the association targets the stage resource"
    );
    assert_eq!(
        p["WebACLArn"],
        serde_json::json!({"Fn::GetAtt": [acl_id, "Arn"]})
    );
}

#[test]
fn health_is_throttled_no_tighter_than_the_stage() {
    // GET /health has no key, so no usage plan: a stage throttle on it is shared by every caller,
    // and a tight one lets one client make every uptime checker see 429. It may be generous (the
    // function caches its check); one noisy client is the WAF ceiling's (the test above).
    let deployed = translated(&[]);
    let (_, stage) = only_resource(&deployed, "AWS::ApiGateway::Stage");
    let settings = stage["Properties"]["MethodSettings"]
        .as_array()
        .expect("MethodSettings");
    let limits = |s: &Json| {
        (
            s["ThrottlingRateLimit"].as_f64(),
            s["ThrottlingBurstLimit"].as_f64(),
        )
    };
    let everything = settings
        .iter()
        .find(|s| s["ResourcePath"] == "/*" && s["HttpMethod"] == "*")
        .expect("a throttle for every method of the stage");
    let (Some(rate), Some(burst)) = limits(everything) else {
        panic!("the stage's throttle has a rate and a burst: {everything}")
    };
    let health = functions::health().route;
    let resource_path = format!("/{}", health.path.replace('/', "~1"));
    let mut applying = 0;
    for s in settings {
        let on_path = s["ResourcePath"] == "/*" || s["ResourcePath"] == resource_path.as_str();
        let on_method = s["HttpMethod"] == "*" || s["HttpMethod"] == health.method;
        if on_path && on_method {
            applying += 1;
            let (r, b) = limits(s);
            assert!(
                r.is_none_or(|r| r >= rate) && b.is_none_or(|b| b >= burst),
                "{s}: GET /health is throttled tighter than the stage ({rate}/s, burst {burst})"
            );
        }
    }
    assert!(applying >= 1, "a stage throttle applies to GET /health");
}

#[test]
fn every_function_may_send_traces_and_the_dashboard_links_to_them() {
    // As CloudFormation gets it: SAM gives each function with active tracing X-Ray's write policy
    // (the daemon Lambda runs forwards our segments under the function's role).
    let deployed = translated(&[]);
    let resources = deployed["Resources"].as_object().expect("resources");
    for (id, resource) in resources {
        if resource["Type"] != "AWS::Lambda::Function" {
            continue;
        }
        let properties = &resource["Properties"];
        assert_eq!(properties["TracingConfig"]["Mode"], "Active", "{id}");
        let role = properties["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: a role of the stack"));
        let policies = resources[role]["Properties"]["ManagedPolicyArns"].to_string();
        assert!(
            policies.contains("AWSXrayWriteOnlyAccess"),
            "{id}: its role {role} may put trace segments: {policies}"
        );
    }
    let markdown: String = dashboard()["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .filter(|w| w["type"] == "text")
        .map(|w| {
            w["properties"]["markdown"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for link in ["#xray:service-map/map", "#xray:traces/query"] {
        assert!(markdown.contains(link), "the dashboard links to {link}");
    }
}
