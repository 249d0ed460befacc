//! Abuse limits and hostile input (`scripts/test.sh -p api-tests security`): the login throttle per
//! account, answers that do not tell a known email from an unknown one (content and time), ids and
//! bodies that try to reach other items, and secrets that must never leave through logs, metrics,
//! Sentry or responses.

use std::time::{Duration, Instant};

use api_tests::{
    Harness, Item, Reply, closed_endpoint, event, functions, median,
    runtime_api::{FunctionProcess, Invoked, function_binary},
    sentry_sink::SentrySink,
    string, visible, with_authorization, with_body, with_header, with_request_id, with_user_id,
};
use serde_json::{Value, json};

fn login_event(email: &str, password: &str) -> Value {
    with_body(
        event("login", "ok"),
        json!({"email": email, "password": password}).to_string(),
    )
}

/// A login event whose client-supplied address headers say something new each time.
fn spoofed(sample: Value, n: usize) -> Value {
    let ip = format!("198.51.100.{}", n % 250);
    let mut sample = with_header(
        with_header(sample, "X-Forwarded-For", &ip),
        "X-Real-IP",
        &ip,
    );
    sample["requestContext"]["identity"]["sourceIp"] = Value::from(ip);
    sample
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in whole seconds: {reply:#?}"))
}

fn number(item: &Item, name: &str) -> i64 {
    item[name]
        .as_n()
        .expect("a number")
        .parse()
        .expect("an integer")
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn sign_up(h: &Harness, email: &str, password: &str) -> String {
    let created = h
        .invoke(
            functions::create_user(),
            with_body(
                event("create_user", "ok"),
                json!({"email": email, "name": "Someone", "password": password}).to_string(),
            ),
        )
        .await;
    assert_eq!(created.status, 201, "{created:#?}");
    created.body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn thirty_wrong_passwords_then_the_right_one_are_throttled_like_an_unknown_email() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    let started = now_secs();
    for n in 0..30 {
        // Interleaved, so both windows start within one request of each other.
        let known = h
            .invoke(
                functions::login(),
                spoofed(login_event("ada@example.com", "wrong horse battery"), 2 * n),
            )
            .await;
        let unknown = h
            .invoke(
                functions::login(),
                spoofed(
                    login_event("nobody@example.com", "wrong horse battery"),
                    2 * n + 1,
                ),
            )
            .await;
        if n < 5 {
            known.assert_error(401, "invalid_credentials");
            unknown.assert_error(401, "invalid_credentials");
            assert_eq!(known.header("retry-after"), None);
        } else {
            known.assert_error(429, "too_many_attempts");
            unknown.assert_error(429, "too_many_attempts");
            assert_eq!(
                known.body["detail"],
                "Too many failed login attempts, please try again later"
            );
            let (k, u) = (retry_after(&known), retry_after(&unknown));
            assert!(k.abs_diff(u) <= 1, "Retry-After {k} vs {u}");
            assert!((1..=900).contains(&k), "inside the 15-minute window: {k}");
            // Refused before any hash: the counter's read is its only DynamoDB call.
            let calls = match &known.emf["DynamoDbLatency"] {
                Value::Array(values) => values.len(),
                Value::Number(_) => 1,
                _ => 0,
            };
            assert_eq!(calls, 1, "{:#}", known.emf);
        }
        assert_eq!(visible(&known), visible(&unknown), "attempt {n}");
    }

    // The right password is refused too while the window lasts, from yet another address.
    let right = h
        .invoke(
            functions::login(),
            spoofed(login_event("ada@example.com", "correct horse battery"), 99),
        )
        .await;
    right.assert_error(429, "too_many_attempts");
    assert!(retry_after(&right) >= 1);
    assert!(h.items_with_prefix("SESSION#").await.is_empty());

    // Two counters, keyed by a hash of the email, each stopped at the limit (refused attempts are
    // not counted), disappearing when the window ends.
    let counters = h.items_with_prefix("LOGINFAIL#").await;
    assert_eq!(counters.len(), 2, "{counters:#?}");
    for counter in &counters {
        let pk = string(counter, "pk").expect("a pk");
        assert_eq!(pk.len(), "LOGINFAIL#".len() + 64, "{pk}");
        assert_eq!(string(counter, "sk"), Some("LOGINFAIL"));
        assert!(!format!("{counter:?}").contains("example.com"));
        assert_eq!(number(counter, "failures"), 5);
        let expires_at = number(counter, "expires_at");
        assert!(
            (started + 900..=now_secs() + 900).contains(&expires_at),
            "{expires_at}"
        );
    }
}

#[tokio::test]
async fn a_success_below_the_limit_resets_the_counter() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    let wrong = || spoofed(login_event("ada@example.com", "wrong horse battery"), 7);
    for _ in 0..4 {
        h.invoke(functions::login(), wrong())
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert_eq!(h.items_with_prefix("LOGINFAIL#").await.len(), 1);
    let ok = h.invoke(functions::login(), event("login", "ok")).await;
    assert_eq!(ok.status, 200, "{ok:#?}");
    assert!(
        h.items_with_prefix("LOGINFAIL#").await.is_empty(),
        "a success deletes the counter"
    );
    // A fresh count: five more failures are answered 401, the sixth attempt is throttled.
    for _ in 0..5 {
        h.invoke(functions::login(), wrong())
            .await
            .assert_error(401, "invalid_credentials");
    }
    h.invoke(functions::login(), wrong())
        .await
        .assert_error(429, "too_many_attempts");
}

async fn timed(h: &Harness, sample: Value) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = h.invoke(functions::login(), sample).await;
    (reply, started.elapsed())
}

#[tokio::test]
async fn timing_an_unknown_email_and_a_wrong_password_take_the_same_time() {
    const TRIES: usize = 15;
    let h = Harness::new().await;
    // One account per try, so no counter reaches the limit and every try does the same work.
    let accounts = futures::future::join_all(
        (0..=TRIES).map(|n| sign_up_owned(h.clone(), format!("user{n}@example.com"))),
    )
    .await;
    assert_eq!(accounts.len(), TRIES + 1);
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    // Try 0 warms both paths up and is not measured.
    for n in 0..=TRIES {
        let known_event = login_event(&format!("user{n}@example.com"), "wrong horse battery");
        let unknown_event = login_event(&format!("ghost{n}@example.com"), "wrong horse battery");
        // Alternate which goes first, so neither pays for going first.
        let ((known, known_time), (unknown, unknown_time)) = if n % 2 == 0 {
            let known = timed(&h, known_event).await;
            (known, timed(&h, unknown_event).await)
        } else {
            let unknown = timed(&h, unknown_event).await;
            (timed(&h, known_event).await, unknown)
        };
        known.assert_error(401, "invalid_credentials");
        unknown.assert_error(401, "invalid_credentials");
        assert_eq!(visible(&known), visible(&unknown));
        if n > 0 {
            known_times.push(known_time);
            unknown_times.push(unknown_time);
        }
    }
    let (known, unknown) = (median(known_times), median(unknown_times));
    let gap = known.abs_diff(unknown);
    println!("median wrong password {known:?}, unknown email {unknown:?}");
    let allowed = Duration::from_millis(20).max(known.max(unknown) / 10);
    assert!(
        gap <= allowed,
        "median wrong password {known:?} vs unknown email {unknown:?}: {gap:?} apart (allowed {allowed:?})"
    );
}

async fn sign_up_owned(h: Harness, email: String) -> String {
    sign_up(&h, &email, "correct horse battery").await
}

#[tokio::test]
async fn hostile_ids_never_reach_another_item() {
    let h = Harness::new().await;
    let ada = sign_up(&h, "ada@example.com", "correct horse battery").await;
    let eve = sign_up(&h, "eve@example.com", "another fine password").await;
    let login = h.invoke(functions::login(), event("login", "ok")).await;
    let token = login.body["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let before = h.items().await.len();

    // Ada's id with its first a, c or e swapped for the Cyrillic letter that looks the same.
    let cyrillic = match ada.char_indices().find(|(_, c)| "ace".contains(*c)) {
        Some((at, c)) => {
            let lookalike = match c {
                'a' => "\u{0430}",
                'c' => "\u{0441}",
                _ => "\u{0435}",
            };
            format!("{}{lookalike}{}", &ada[..at], &ada[at + 1..])
        }
        None => format!("\u{0430}{}", &ada[1..]),
    };
    let fullwidth = ada.replacen(|c: char| c.is_ascii_digit(), "\u{FF10}", 1);
    let unicode_hyphen = ada.replace('-', "\u{2010}");
    let long = "a".repeat(10_000);
    let ada_twice = format!("{ada}{ada}");
    let upper = ada.to_uppercase();
    let padded = format!(" {ada} ");
    let nul = format!("{ada}\u{0}");
    let user_key = format!("USER#{ada}");
    let traversal = format!("../{ada}");
    let traversal_after = format!("{eve}/../{ada}");
    let query = format!("{ada}?id={eve}");
    let random = uuid::Uuid::new_v4().to_string();
    // (what, id as API Gateway passes it in pathParameters (decoded), expected status)
    let cases: Vec<(&str, &str, u16)> = vec![
        ("empty", "", 404),
        ("another user's id", &eve, 404),
        ("an id nobody has", &random, 404),
        ("a key prefix", "EMAIL#ada@example.com", 404),
        ("a user key", &user_key, 404),
        ("a session key prefix", "SESSION#", 404),
        ("a counter key prefix", "LOGINFAIL#", 404),
        ("traversal", &traversal, 404),
        ("traversal after an id", &traversal_after, 404),
        ("a query in the id", &query, 404),
        ("percent-encoded traversal, undecoded", "%2e%2e%2f", 404),
        ("double-encoded", "%252e%252e%252f", 404),
        ("a Cyrillic lookalike letter", &cyrillic, 404),
        ("a fullwidth digit", &fullwidth, 404),
        ("unicode hyphens", &unicode_hyphen, 404),
        ("uppercase", &upper, 404),
        ("padded", &padded, 404),
        ("a NUL byte", &nul, 404),
        ("10,000 characters", &long, 404),
        ("the id twice", &ada_twice, 404),
        ("a wildcard", "*", 404),
        ("injection-shaped", "' OR '1'='1", 404),
        ("the caller's own id", &ada, 200),
    ];
    for (what, id, status) in &cases {
        let sample = with_user_id(
            with_authorization(event("get_user", "ok"), &format!("Bearer {token}")),
            id,
        );
        let reply = h.invoke(functions::get_user(), sample).await;
        if *status == 200 {
            assert_eq!(reply.status, 200, "{what}: {reply:#?}");
            assert_eq!(reply.body["id"], ada.as_str());
        } else {
            assert_eq!(reply.status, *status, "{what}");
            reply.assert_error(*status, "not_found");
            assert!(!reply.text.contains(id) || id.is_empty(), "{what}: echoed");
        }
        // Without a session, every one of them is a 401, before the id is looked at.
        let anonymous = h
            .invoke(
                functions::get_user(),
                with_user_id(event("get_user", "ok"), id),
            )
            .await;
        anonymous.assert_error(401, "not_authenticated");
    }

    // Without path parameters (as `cargo lambda watch` sends them) the id comes from the raw path
    // and is percent-decoded once: the decoded value must still be exactly an id.
    let encoded_ada: String = ada.bytes().map(|b| format!("%{b:02X}")).collect();
    let raw_paths: Vec<(&str, String, u16)> = vec![
        (
            "encoded traversal",
            "/users/..%2F..%2Fusers".to_owned(),
            404,
        ),
        ("encoded slash and key", format!("/users/USER%23{ada}"), 404),
        ("encoded NUL", format!("/users/{ada}%00"), 404),
        ("a broken escape", "/users/%zz".to_owned(), 404),
        (
            "an escape of a non-UTF-8 byte",
            "/users/%FF%FE".to_owned(),
            404,
        ),
        ("a nested resource", format!("/users/{ada}/sessions"), 404),
        (
            "the own id, all escaped",
            format!("/users/{encoded_ada}"),
            200,
        ),
    ];
    for (what, path, status) in raw_paths {
        let mut sample = with_authorization(event("get_user", "ok"), &format!("Bearer {token}"));
        sample["pathParameters"] = Value::Null;
        sample["path"] = Value::from(path.as_str());
        let reply = h.invoke(functions::get_user(), sample).await;
        if status == 200 {
            assert_eq!(reply.status, 200, "{what}: {reply:#?}");
            assert_eq!(reply.body["id"], ada.as_str());
        } else {
            assert_eq!(reply.status, status, "{what}");
            reply.assert_error(status, "not_found");
        }
    }
    assert_eq!(h.items().await.len(), before, "nothing was stored");
}

/// (function, what, body, content type, expected status, fields a 422's `errors[]` must name)
type BodyCase = (
    &'static str,
    &'static str,
    String,
    &'static str,
    u16,
    Vec<&'static str>,
);

#[tokio::test]
async fn hostile_bodies_get_their_status_and_store_nothing() {
    let long_email = format!("{}@example.com", "a".repeat(300));
    let json_ct = "application/json";
    let cases: Vec<BodyCase> = vec![
        (
            "create_user",
            "mass assignment of internal fields",
            json!({"email": "eve@example.com", "name": "Eve", "password": "a fine password",
                   "id": "00000000-0000-4000-8000-000000000000", "created_at": "2000-01-01T00:00:00Z",
                   "password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", "pk": "USER#x",
                   "sk": "PROFILE", "entity": "user", "user_id": "x", "admin": true})
            .to_string(),
            json_ct,
            422,
            vec!["/id", "/created_at", "/password_hash", "/pk", "/sk", "/entity", "/user_id", "/admin"],
        ),
        (
            "create_user",
            "prototype pollution keys",
            r#"{"email":"eve@example.com","name":"Eve","password":"a fine password","__proto__":{"admin":true},"constructor":{}}"#.to_owned(),
            json_ct,
            422,
            vec!["/__proto__", "/constructor"],
        ),
        (
            "create_user",
            "a Cyrillic lookalike in the email",
            json!({"email": "\u{0430}da@example.com", "name": "Eve", "password": "a fine password"}).to_string(),
            json_ct,
            422,
            vec!["/email"],
        ),
        (
            "create_user",
            "a header injection in the email",
            json!({"email": "eve@example.com\r\nBcc: all@example.com", "name": "Eve", "password": "a fine password"}).to_string(),
            json_ct,
            422,
            vec!["/email"],
        ),
        (
            "create_user",
            "an email over 254 characters",
            json!({"email": long_email, "name": "Eve", "password": "a fine password"}).to_string(),
            json_ct,
            422,
            vec!["/email"],
        ),
        (
            "create_user",
            "a lone surrogate escape",
            r#"{"email":"eve@example.com","name":"\ud800","password":"a fine password"}"#.to_owned(),
            json_ct,
            422,
            vec![""],
        ),
        (
            "create_user",
            "a number out of range",
            r#"{"email":"eve@example.com","name":"Eve","password":"a fine password","x":1e999999}"#.to_owned(),
            json_ct,
            422,
            vec![""],
        ),
        (
            "create_user",
            "a byte order mark",
            "\u{feff}{\"email\":\"eve@example.com\",\"name\":\"Eve\",\"password\":\"a fine password\"}".to_owned(),
            json_ct,
            422,
            vec![""],
        ),
        (
            "create_user",
            "two content types",
            json!({"email": "eve@example.com", "name": "Eve", "password": "a fine password"}).to_string(),
            "application/json, text/plain",
            415,
            vec![],
        ),
        (
            "login",
            "a password over the cap (no hash is spent on it)",
            json!({"email": "ada@example.com", "password": "p".repeat(129)}).to_string(),
            json_ct,
            422,
            vec!["/password"],
        ),
        (
            "login",
            "an email given as an object",
            json!({"email": {"$ne": null}, "password": "x"}).to_string(),
            json_ct,
            422,
            vec!["/email"],
        ),
        (
            "login",
            "an extra field",
            json!({"email": "ada@example.com", "password": "x", "user_id": "x"}).to_string(),
            json_ct,
            422,
            vec!["/user_id"],
        ),
        (
            "login",
            "an empty password",
            json!({"email": "ada@example.com", "password": ""}).to_string(),
            json_ct,
            422,
            vec!["/password"],
        ),
    ];
    let h = Harness::new().await;
    for (function, what, body, content_type, status, fields) in cases {
        let sample = with_header(
            with_body(event(function, "ok"), body.clone()),
            "Content-Type",
            content_type,
        );
        let started = Instant::now();
        let reply = match function {
            "create_user" => h.invoke(functions::create_user(), sample).await,
            _ => h.invoke(functions::login(), sample).await,
        };
        let took = started.elapsed();
        let code = match status {
            415 => "unsupported_media_type",
            _ => "validation_error",
        };
        reply.assert_error(status, code);
        let named = reply.error_fields();
        for field in &fields {
            assert!(
                named.iter().any(|n| n == field),
                "{what}: {field} not in {named:?}"
            );
        }
        // Refused before the store, so before any hash (login hashes only after its reads).
        assert!(
            reply.emf.get("DynamoDbLatency").is_none(),
            "{what} reached DynamoDB: {:#}",
            reply.emf
        );
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
        assert!(h.items().await.is_empty(), "{what} stored something");
    }
}

/// A response header as the runtime posted it (`headers`, or the first of `multiValueHeaders`).
fn header(invoked: &Invoked, name: &str) -> String {
    for map in ["headers", "multiValueHeaders"] {
        if let Some(found) = invoked.body[map]
            .as_object()
            .and_then(|m| m.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)))
        {
            let value = found
                .1
                .as_array()
                .and_then(|v| v.first())
                .unwrap_or(found.1);
            return value.as_str().unwrap_or_default().to_owned();
        }
    }
    String::new()
}

/// Every response body and header the test saw, as text.
fn response_text(invoked: &Invoked) -> String {
    invoked.body.to_string()
}

#[tokio::test]
async fn canary_secrets_never_leave_through_logs_metrics_sentry_or_responses() {
    const PASSWORD: &str = "Canary-Passw0rd-5f1e2d";
    const WRONG: &str = "Canary-Wr0ng-9a8b7c";
    const DSN_KEY: &str = "c4a7e1d0canaryd5nkey0000feedbeef";
    let h = Harness::new().await;
    let sink = SentrySink::start().await;
    let dsn = sink.dsn_with_key(DSN_KEY);
    let env = [
        ("TABLE_NAME", h.table.as_str()),
        ("SENTRY_DSN", dsn.as_str()),
        // Every 4xx goes to Sentry too: more places for a secret to leak into.
        ("SENTRY_CAPTURE_4XX", "true"),
    ];
    let create = FunctionProcess::start(function_binary("create_user"), "create_user", &env).await;
    let login = FunctionProcess::start(function_binary("login"), "login", &env).await;
    let get_user = FunctionProcess::start(function_binary("get_user"), "get_user", &env).await;
    let closed = closed_endpoint();
    let broken_env = [
        ("TABLE_NAME", h.table.as_str()),
        ("SENTRY_DSN", dsn.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", closed.as_str()),
        ("DYNAMODB_MAX_ATTEMPTS", "1"),
    ];
    let broken_login = FunctionProcess::start(function_binary("login"), "login", &broken_env).await;

    let mut responses = Vec::new();
    let mut expect = |invoked: Invoked, status: u16, what: &str| -> Invoked {
        assert!(invoked.ok, "{what}: {invoked:#?}");
        assert_eq!(invoked.status(), status, "{what}: {invoked:#?}");
        assert_eq!(header(&invoked, "cache-control"), "no-store", "{what}");
        assert_eq!(
            header(&invoked, "x-content-type-options"),
            "nosniff",
            "{what}"
        );
        responses.push((what.to_owned(), invoked.clone()));
        invoked
    };
    let sign_up = with_body(
        event("create_user", "ok"),
        json!({"email": "canary@example.com", "name": "Canary", "password": PASSWORD}).to_string(),
    );
    let created = expect(create.api.invoke(sign_up.clone()).await, 201, "sign-up");
    let id = serde_json::from_str::<Value>(created.body["body"].as_str().expect("a body"))
        .expect("JSON")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    expect(
        create.api.invoke(with_request_id(sign_up, "dup-1")).await,
        409,
        "duplicate",
    );
    let hostile = with_body(
        event("create_user", "ok"),
        json!({"email": "canary@example.com", "name": "C", "password": PASSWORD, "password_hash": PASSWORD})
            .to_string(),
    );
    expect(create.api.invoke(hostile).await, 422, "mass assignment");
    // A value that would forge a log line if it were written raw: escaped, not obeyed.
    let forged = with_body(
        event("create_user", "ok"),
        r#"{"email":"x\n{\"level\":\"ERROR\"}@example.com","name":"Eve","password":"correct horse battery"}"#,
    );
    expect(
        create.api.invoke(forged).await,
        422,
        "a line-breaking email",
    );
    let wrong = with_body(
        event("login", "ok"),
        json!({"email": "canary@example.com", "password": WRONG}).to_string(),
    );
    expect(login.api.invoke(wrong).await, 401, "wrong password");
    for n in 0..6 {
        let ghost = with_request_id(
            with_body(
                event("login", "ok"),
                json!({"email": "ghost@example.com", "password": WRONG}).to_string(),
            ),
            &format!("ghost-{n}"),
        );
        expect(
            login.api.invoke(ghost).await,
            if n < 5 { 401 } else { 429 },
            "unknown email",
        );
    }
    let right = with_body(
        event("login", "ok"),
        json!({"email": "canary@example.com", "password": PASSWORD}).to_string(),
    );
    let logged_in = login.api.invoke(right.clone()).await;
    assert_eq!(logged_in.status(), 200, "{logged_in:#?}");
    let token = serde_json::from_str::<Value>(logged_in.body["body"].as_str().expect("a body"))
        .expect("JSON")["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let bearer = format!("Bearer {token}");
    expect(
        get_user
            .api
            .invoke(with_user_id(
                with_authorization(event("get_user", "ok"), &bearer),
                &id,
            ))
            .await,
        200,
        "own profile",
    );
    expect(
        get_user
            .api
            .invoke(with_user_id(
                with_authorization(event("get_user", "ok"), &bearer),
                &uuid::Uuid::new_v4().to_string(),
            ))
            .await,
        404,
        "another id",
    );
    let mut almost: Vec<char> = token.chars().collect();
    almost[0] = if almost[0] == 'A' { 'B' } else { 'A' };
    let almost: String = almost.into_iter().collect();
    expect(
        get_user
            .api
            .invoke(with_user_id(
                with_authorization(event("get_user", "ok"), &format!("Bearer {almost}")),
                &id,
            ))
            .await,
        401,
        "a token one character off",
    );
    // A 5xx with the password in the request: DynamoDB unreachable.
    expect(
        broken_login.api.invoke(right).await,
        503,
        "DynamoDB unreachable",
    );

    // One event per failure with 4xx capture on: 409, 422, 401, five 401s and a 429, 404, 401, 503.
    let events = sink.wait_for_events(12).await;
    assert!(
        events
            .iter()
            .any(|e| e["extra"]["status_code"] == 503 && e["tags"]["function"] == "login"),
        "the 5xx reached Sentry: {events:#?}"
    );
    assert!(
        events.iter().any(|e| e["extra"]["status_code"] == 429),
        "the 429 reached Sentry (4xx capture on): {events:#?}"
    );
    let mut output = Vec::new();
    for process in [&create, &login, &get_user, &broken_login] {
        let lines = process.wait_for_emf_documents(1).await;
        assert!(
            lines.iter().any(|l| l.contains("\"_aws\"")),
            "EMF documents are part of what is checked"
        );
        for line in &lines {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "every stdout line is one JSON object, whatever the input: {line}"
            );
        }
        output.extend(lines);
        output.extend(process.stderr());
    }
    // The logs and EMF alone (responses and Sentry events name the email on purpose): emails
    // appear masked, never raw.
    let logs = output.join("\n");
    assert!(logs.contains("c***@example.com"), "emails appear masked");
    assert!(
        !logs.contains("canary@example.com") && !logs.contains("ghost@example.com"),
        "a raw email reached the logs"
    );
    output.extend(sink.envelopes());
    for (what, invoked) in &responses {
        output.push(format!("{what}: {}", response_text(invoked)));
    }
    let everything = output.join("\n");
    for (name, canary) in [
        ("the password", PASSWORD),
        ("a wrong password", WRONG),
        ("the token", token.as_str()),
        ("the token's near miss", almost.as_str()),
        ("the DSN's key", DSN_KEY),
        ("the DSN", dsn.as_str()),
        ("a password hash", "$argon2id$"),
    ] {
        assert!(
            !everything.contains(canary),
            "{name} ({canary:?}) leaked into logs, EMF, Sentry or a response"
        );
    }
    for process in [create, login, get_user, broken_login] {
        process.stop().await;
    }
}
