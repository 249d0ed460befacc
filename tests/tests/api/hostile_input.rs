//! Bodies a client should never send: each gets the right 4xx in the contract shape, quickly, and
//! nothing is stored.

use std::time::{Duration, Instant};

use api_tests::{Harness, event, functions, with_body, with_header, without_header};
use serde_json::{Value, json};

fn with_content_type(sample: Value, content_type: Option<&str>) -> Value {
    match content_type {
        Some(value) => with_header(sample, "Content-Type", value),
        None => without_header(sample, "Content-Type"),
    }
}

/// One hostile body and what it must get.
struct Case {
    what: &'static str,
    body: String,
    content_type: Option<&'static str>,
    status: u16,
    code: &'static str,
    /// Fields a 422's `errors[]` must name.
    fields: Vec<&'static str>,
}

impl Case {
    fn new(
        what: &'static str,
        body: String,
        content_type: Option<&'static str>,
        status: u16,
        code: &'static str,
        fields: Vec<&'static str>,
    ) -> Self {
        Self {
            what,
            body,
            content_type,
            status,
            code,
            fields,
        }
    }
}

#[tokio::test]
async fn hostile_bodies_are_refused_before_anything_is_stored() {
    let valid = json!({"email": "eve@example.com", "name": "Eve", "password": "a fine password"});
    let deep_closed = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_open_in_field = format!(r#"{{"email": {}"#, "[".repeat(10_000));
    let deep_within_limit = format!(
        r#"{{"email":"eve@example.com","name":"Eve","password":"a fine password","x":{}1{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let megabyte_password =
        json!({"email": "eve@example.com", "name": "Eve", "password": "p".repeat(1 << 20)})
            .to_string();
    let json_ct = Some("application/json");
    // (what, body, content type, status, code, fields named in errors[])
    let cases: Vec<Case> = vec![
        Case::new("malformed JSON", r#"{"email": "eve@example.com""#.into(), json_ct, 422, "validation_error", vec![""]),
        Case::new("trailing garbage", format!("{valid} x"), json_ct, 422, "validation_error", vec![""]),
        Case::new("empty body", String::new(), json_ct, 422, "validation_error", vec![""]),
        Case::new("not an object", "\"eve\"".into(), json_ct, 422, "validation_error", vec![""]),
        Case::new("null", "null".into(), json_ct, 422, "validation_error", vec![""]),
        Case::new("missing fields", "{}".into(), json_ct, 422, "validation_error", vec!["/email", "/name", "/password"]),
        Case::new(
            "wrong types",
            json!({"email": true, "name": 1, "password": {"a": 1}}).to_string(),
            json_ct,
            422,
            "validation_error",
            vec!["/email", "/name", "/password"],
        ),
        Case::new(
            "unknown fields (mass assignment)",
            json!({"email": "eve@example.com", "name": "Eve", "password": "a fine password",
                   "id": "x", "password_hash": "$argon2id$", "created_at": "2020-01-01T00:00:00Z"})
            .to_string(),
            json_ct,
            422,
            "validation_error",
            vec!["/id", "/password_hash", "/created_at"],
        ),
        Case::new(
            "a duplicated key",
            r#"{"email":"eve@example.com","email":"mallory@example.com","name":"Eve","password":"a fine password"}"#.into(),
            json_ct,
            422,
            "validation_error",
            vec!["/email"],
        ),
        Case::new(
            "a password over the cap",
            json!({"email": "eve@example.com", "name": "Eve", "password": "p".repeat(129)}).to_string(),
            json_ct,
            422,
            "validation_error",
            vec!["/password"],
        ),
        Case::new(
            "a name with a control character",
            json!({"email": "eve@example.com", "name": "Eve\u{0}", "password": "a fine password"}).to_string(),
            json_ct,
            422,
            "validation_error",
            vec!["/name"],
        ),
        Case::new("JSON nested 10,000 deep", deep_closed, json_ct, 413, "payload_too_large", vec![]),
        Case::new("a field nested 10,000 deep, unclosed", deep_open_in_field, json_ct, 422, "validation_error", vec![""]),
        Case::new("5,000 deep within the size limit", deep_within_limit, json_ct, 422, "validation_error", vec![""]),
        Case::new("a 1 MB password", megabyte_password, json_ct, 413, "payload_too_large", vec![]),
        Case::new("text/plain", valid.to_string(), Some("text/plain"), 415, "unsupported_media_type", vec![]),
        Case::new("no content type", valid.to_string(), None, 415, "unsupported_media_type", vec![]),
        Case::new("application/jsonp", valid.to_string(), Some("application/jsonp"), 415, "unsupported_media_type", vec![]),
    ];
    let h = Harness::new().await;
    for Case {
        what,
        body,
        content_type,
        status,
        code,
        fields,
    } in cases
    {
        let sample = with_content_type(with_body(event("create_user", "ok"), body), content_type);
        let started = Instant::now();
        let reply = h.invoke(functions::create_user(), sample).await;
        let took = started.elapsed();
        reply.assert_error(status, code);
        let named = reply.error_fields();
        for field in &fields {
            assert!(
                named.iter().any(|n| n == field),
                "{what}: {field} not in {named:?}"
            );
        }
        if status != 422 {
            assert!(named.is_empty(), "{what}");
        }
        // Refused before any hashing or DynamoDB call: far below one Argon2id hash plus a write.
        // (A generous bound; the benchmark gives the real figures.)
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
        assert!(h.items().await.is_empty(), "{what} stored something");
    }
}

#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    let h = Harness::new().await;
    let sample = with_content_type(
        event("create_user", "ok"),
        Some("application/json; charset=UTF-8"),
    );
    let reply = h.invoke(functions::create_user(), sample).await;
    assert_eq!(reply.status, 201, "{reply:#?}");
}

#[tokio::test]
async fn a_base64_encoded_json_body_is_decoded() {
    use base64::Engine as _;
    let h = Harness::new().await;
    let mut sample = event("create_user", "ok");
    let body = sample["body"].as_str().expect("a body").to_owned();
    sample["body"] = Value::from(base64::engine::general_purpose::STANDARD.encode(body));
    sample["isBase64Encoded"] = Value::from(true);
    let reply = h.invoke(functions::create_user(), sample).await;
    assert_eq!(reply.status, 201, "{reply:#?}");
}

#[tokio::test]
async fn login_refuses_the_same_bodies_the_same_way() {
    let h = Harness::new().await;
    for (body, content_type, status, code) in [
        (
            "{".to_owned(),
            Some("application/json"),
            422,
            "validation_error",
        ),
        (
            json!({"email": "eve@example.com", "password": "x", "remember": true}).to_string(),
            Some("application/json"),
            422,
            "validation_error",
        ),
        (
            json!({"email": "eve@example.com", "password": "p".repeat(1 << 20)}).to_string(),
            Some("application/json"),
            413,
            "payload_too_large",
        ),
        (
            json!({"email": "eve@example.com", "password": "x"}).to_string(),
            Some("text/plain"),
            415,
            "unsupported_media_type",
        ),
    ] {
        let sample = with_content_type(with_body(event("login", "ok"), body), content_type);
        h.invoke(functions::login(), sample)
            .await
            .assert_error(status, code);
    }
    assert!(h.items().await.is_empty());
}
