//! openapi.yaml itself: every operation documents every error a client can meet, the checks that
//! hold every response to it can fail, and template.yaml serves exactly its routes.

use std::collections::BTreeSet;

use api_tests::contract::{assert_documented, document};
use serde_json::json;

/// (method, path) of every operation in openapi.yaml.
fn openapi_routes() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            routes.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    routes
}

/// (method, path) of every API event in template.yaml.
fn template_routes() -> BTreeSet<(String, String)> {
    api_tests::template::functions()
        .into_iter()
        .flat_map(|f| f.routes)
        .map(|(route, _)| (route.method, route.path))
        .collect()
}

#[test]
fn template_and_openapi_serve_the_same_routes() {
    let documented = openapi_routes();
    // One operation per function crate (cargo metadata): an endpoint is one function.
    assert_eq!(
        documented.len(),
        test_support::functions::names().len(),
        "{documented:?}"
    );
    assert_eq!(template_routes(), documented);
}

#[test]
fn every_operation_documents_the_errors_a_client_can_meet() {
    let everywhere = ["403", "429", "500", "502", "503", "504"];
    let with_body = ["413", "415", "422"];
    for (method, path) in openapi_routes() {
        let operation = &document()["paths"][&path][method.to_ascii_lowercase()];
        let responses = operation["responses"].as_object().expect("responses");
        for status in everywhere {
            assert!(
                responses.contains_key(status),
                "{method} {path} lacks {status}"
            );
        }
        // Every operation that takes a body meets the body checks.
        if operation.get("requestBody").is_some() {
            for status in with_body {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }
    let responses = &document()["paths"]["/users/{id}"]["get"]["responses"];
    assert!(responses["401"]["headers"]["WWW-Authenticate"]["required"] == true);
    assert!(responses.get("404").is_some());
    assert!(
        document()["paths"]["/users"]["post"]["responses"]
            .get("409")
            .is_some()
    );
}

/// The statuses of template.yaml's gateway responses.
fn gateway_statuses() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(api_tests::root().join("template.yaml")).expect("template.yaml");
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).expect("template.yaml is YAML");
    let mut statuses = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().expect("Resources") {
        if let Some(responses) = resource["Properties"]["GatewayResponses"].as_mapping() {
            for (_, response) in responses {
                let status = &response["StatusCode"];
                statuses.insert(
                    status
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| status.as_u64().map(|n| n.to_string()))
                        .expect("a status code"),
                );
            }
        }
    }
    statuses
}

#[test]
fn every_status_the_gateway_can_answer_is_documented_for_every_operation() {
    let statuses = gateway_statuses();
    assert!(
        statuses.contains("429") && statuses.contains("403"),
        "{statuses:?}"
    );
    for (method, path) in openapi_routes() {
        let responses = &document()["paths"][&path][method.to_ascii_lowercase()]["responses"];
        for status in &statuses {
            // An unknown route (404) and a failed authorizer (401; the API has none) are not answers
            // of an operation.
            if status == "404" || status == "401" {
                continue;
            }
            assert!(
                responses.get(status).is_some(),
                "{method} {path}: the gateway can answer {status}, openapi.yaml does not say so"
            );
        }
    }
}

#[test]
#[should_panic(expected = "does not document 418")]
fn an_undocumented_status_fails() {
    let body =
        json!({"detail": "I'm a teapot", "status": 418, "code": "teapot", "request_id": "r"});
    assert_documented(
        "POST",
        "/users",
        418,
        &[("x-request-id".to_owned(), "r".to_owned())].into(),
        &body,
    );
}

#[test]
#[should_panic(expected = "does not match openapi.yaml")]
fn a_body_off_the_schema_fails() {
    let body = json!({"id": "not-a-user", "email": "ada@example.com"});
    assert_documented(
        "POST",
        "/users",
        201,
        &[
            ("x-request-id".to_owned(), "r".to_owned()),
            ("location".to_owned(), "/users/x".to_owned()),
        ]
        .into(),
        &body,
    );
}

#[test]
#[should_panic(expected = "Retry-After is missing")]
fn a_missing_documented_header_fails() {
    let body = json!({"detail": "Service temporarily unavailable, please retry", "status": 503, "code": "service_unavailable", "request_id": "r"});
    assert_documented(
        "GET",
        "/users/{id}",
        503,
        &[("x-request-id".to_owned(), "r".to_owned())].into(),
        &body,
    );
}
