//! Abuse limits and hostile input (`scripts/test.sh -p api-tests security`): the login limits per
//! (email, address), per email and per address, answers that do not tell a known email from an unknown one (content and time), ids and
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

/// `sample` from the client address `ip` (API Gateway's `sourceIp`).
fn from(mut sample: Value, ip: &str) -> Value {
    sample["requestContext"]["identity"]["sourceIp"] = Value::from(ip);
    sample
}

/// `sample` from the client address `ip`, with address headers that claim something new each
/// time (`n`): they must change nothing.
fn spoofed(sample: Value, ip: &str, n: usize) -> Value {
    let claimed = format!("198.51.100.{}", n % 250);
    from(
        with_header(
            with_header(sample, "X-Forwarded-For", &claimed),
            "X-Real-IP",
            &claimed,
        ),
        ip,
    )
}

/// A login for `email` with `password` from the client address `ip`.
async fn login_from(h: &Harness, email: &str, password: &str, ip: &str) -> Reply {
    h.invoke(functions::login(), from(login_event(email, password), ip))
        .await
}

/// How many DynamoDB calls an invocation made (its EMF `DynamoDbLatency` values).
fn dynamodb_calls(reply: &Reply) -> usize {
    match &reply.emf["DynamoDbLatency"] {
        Value::Array(values) => values.len(),
        Value::Number(_) => 1,
        _ => 0,
    }
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

const ATTACKER: &str = "203.0.113.66";
const HOME: &str = "192.0.2.10";

#[tokio::test]
async fn an_attacker_at_the_limit_does_not_lock_the_owner_out_and_unknown_emails_look_the_same() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    let started = now_secs();
    for n in 0..12 {
        // Interleaved, so both windows see the same attempts; the address headers change every
        // time, the connection's address never does.
        let known = h
            .invoke(
                functions::login(),
                spoofed(
                    login_event("ada@example.com", "wrong horse battery"),
                    ATTACKER,
                    2 * n,
                ),
            )
            .await;
        let unknown = h
            .invoke(
                functions::login(),
                spoofed(
                    login_event("nobody@example.com", "wrong horse battery"),
                    ATTACKER,
                    2 * n + 1,
                ),
            )
            .await;
        if n < 5 {
            known.assert_error(401, "invalid_credentials");
            unknown.assert_error(401, "invalid_credentials");
            assert_eq!(known.header("retry-after"), None);
            assert_eq!(known.metric("LoginFailures"), Some(1.0), "{:#}", known.emf);
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
            // Refused before the user's reads and the hash: the address's failures read, then
            // the pair's reservation refused.
            assert_eq!(dynamodb_calls(&known), 2, "{:#}", known.emf);
            assert_eq!(dynamodb_calls(&unknown), 2, "{:#}", unknown.emf);
            assert_eq!(
                known.metric("LoginFailures"),
                None,
                "not a failure: no hash"
            );
        }
        assert_eq!(visible(&known), visible(&unknown), "attempt {n}");
    }

    // The right password from the attacker's address is refused too while the window lasts...
    let right = || login_event("ada@example.com", "correct horse battery");
    h.invoke(functions::login(), from(right(), ATTACKER))
        .await
        .assert_error(429, "too_many_attempts");
    // ...but the owner, from their own address, signs in.
    let owner = h.invoke(functions::login(), from(right(), HOME)).await;
    assert_eq!(owner.status, 200, "the owner is not locked out: {owner:#?}");
    assert_eq!(owner.metric("LoginFailures"), None, "no failure to count");

    // Per pair, a counter stopped at the limit (refused attempts are not counted), keyed by a
    // hash of the email and the address, gone when the window ends.
    let counters = h.items_with_prefix("LOGIN#pair#").await;
    let windows: Vec<&Item> = counters
        .iter()
        .filter(|c| string(c, "sk").is_some_and(|sk| sk.starts_with("WINDOW#")))
        .collect();
    assert_eq!(windows.len(), 2, "the attacker's two pairs: {counters:#?}");
    for counter in windows {
        let pk = string(counter, "pk").expect("a pk");
        assert_eq!(pk.len(), "LOGIN#pair#".len() + 64, "{pk}");
        let dump = format!("{counter:?}");
        assert!(!dump.contains("example.com") && !dump.contains("203.0.113"));
        assert_eq!(number(counter, "attempts"), 5);
        let expires_at = number(counter, "expires_at");
        assert!(
            (started..=now_secs() + 900).contains(&expires_at),
            "{expires_at}"
        );
    }
}

#[tokio::test]
async fn twenty_parallel_wrong_guesses_for_one_pair_get_at_most_the_limits_hashes() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    let replies = futures::future::join_all((0..20).map(|n| {
        let h = h.clone();
        async move {
            login_from(
                &h,
                "ada@example.com",
                &format!("guess number {n}"),
                ATTACKER,
            )
            .await
        }
    }))
    .await;
    // A hash happens only after the user's reads: a 401 had one, a 429 stopped two calls in.
    let hashed = replies.iter().filter(|r| r.status == 401).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(hashed, 5, "exactly the limit was hashed: {replies:#?}");
    assert_eq!(refused.len(), 15);
    for reply in refused {
        reply.assert_error(429, "too_many_attempts");
        assert_eq!(dynamodb_calls(reply), 2, "{:#}", reply.emf);
    }
    let counters = h.items_with_prefix("LOGIN#pair#").await;
    assert_eq!(counters.len(), 1);
    assert_eq!(number(&counters[0], "attempts"), 5);
}

#[tokio::test]
async fn the_email_ceiling_spares_the_addresses_the_owner_signed_in_from() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    // The owner signs in from home: that pair is trusted from now on.
    let home = login_from(&h, "ada@example.com", "correct horse battery", HOME).await;
    assert_eq!(home.status, 200, "{home:#?}");
    // The same first step for an unknown email (a failure, from the same address).
    login_from(&h, "nobody@example.com", "correct horse battery", HOME)
        .await
        .assert_error(401, "invalid_credentials");

    // A distributed attack: ten addresses, five guesses each, for both emails, interleaved.
    // Each email has one attempt counted already, so the 50th guess meets the ceiling.
    let mut statuses = Vec::new();
    for address in 0..10 {
        for guess in 0..5 {
            let ip = format!("198.51.100.{}", 10 + address);
            let password = format!("guess {address} {guess}");
            let known = login_from(&h, "ada@example.com", &password, &ip).await;
            let unknown = login_from(&h, "nobody@example.com", &password, &ip).await;
            assert_eq!(visible(&known), visible(&unknown), "{ip} guess {guess}");
            statuses.push(known.status);
        }
    }
    assert_eq!(&statuses[..49], &[401; 49][..], "{statuses:?}");
    assert_eq!(statuses[49], 429, "the ceiling: {statuses:?}");

    // Any new address is now refused for that email (known or not, alike)...
    let new_address = |email: &str| from(login_event(email, "correct horse battery"), "192.0.2.99");
    let known = h
        .invoke(functions::login(), new_address("ada@example.com"))
        .await;
    let unknown = h
        .invoke(functions::login(), new_address("nobody@example.com"))
        .await;
    known.assert_error(429, "too_many_attempts");
    assert_eq!(visible(&known), visible(&unknown));
    // ...while the owner, from home, still signs in.
    let again = login_from(&h, "ada@example.com", "correct horse battery", HOME).await;
    assert_eq!(again.status, 200, "{again:#?}");
    let trust = h.items_with_prefix("LOGIN#pair#").await;
    let marks: Vec<&Item> = trust
        .iter()
        .filter(|i| string(i, "sk") == Some("TRUSTED"))
        .collect();
    assert_eq!(marks.len(), 1, "one trusted pair: {trust:#?}");
    let until = number(marks[0], "expires_at");
    assert!((now_secs() + 29 * 86_400..=now_secs() + 30 * 86_400).contains(&until));
}

#[tokio::test]
async fn a_success_below_the_limit_resets_the_pairs_counter() {
    let h = Harness::new().await;
    sign_up(&h, "ada@example.com", "correct horse battery").await;
    let wrong = || from(login_event("ada@example.com", "wrong horse battery"), HOME);
    let right = || {
        from(
            login_event("ada@example.com", "correct horse battery"),
            HOME,
        )
    };
    for _ in 0..4 {
        h.invoke(functions::login(), wrong())
            .await
            .assert_error(401, "invalid_credentials");
    }
    let pair_counters = || async {
        h.items_with_prefix("LOGIN#pair#")
            .await
            .into_iter()
            .filter(|i| string(i, "sk").is_some_and(|sk| sk.starts_with("WINDOW#")))
            .count()
    };
    assert_eq!(pair_counters().await, 1);
    let ok = h.invoke(functions::login(), right()).await;
    assert_eq!(ok.status, 200, "{ok:#?}");
    assert_eq!(
        pair_counters().await,
        0,
        "a success deletes the pair's counter"
    );
    // A fresh count: five more failures are answered 401, the sixth attempt is refused.
    for _ in 0..5 {
        h.invoke(functions::login(), wrong())
            .await
            .assert_error(401, "invalid_credentials");
    }
    h.invoke(functions::login(), wrong())
        .await
        .assert_error(429, "too_many_attempts");
}

#[tokio::test]
async fn password_spraying_from_one_address_is_refused_and_reported_without_emails() {
    let h = Harness::new().await;
    for n in 0..3 {
        sign_up(&h, &format!("user{n}@example.com"), "correct horse battery").await;
    }
    let login = FunctionProcess::start(
        function_binary("login"),
        "login",
        &[("TABLE_NAME", h.table.as_str())],
    )
    .await;
    let spray = |n: usize, ip: &str| {
        with_request_id(
            from(
                login_event(&format!("user{n}@example.com"), "Summer2026!"),
                ip,
            ),
            &format!("spray-{n}"),
        )
    };
    // One common password against twenty accounts (three real), one try each: every try is a
    // 401, far below any per-account limit...
    for n in 0..20 {
        let invoked = login.api.invoke(spray(n, ATTACKER)).await;
        assert_eq!(invoked.status(), 401, "try {n}: {invoked:#?}");
    }
    // ...and then the address is refused for every email, known or not.
    for n in [0, 1, 20, 21] {
        let invoked = login.api.invoke(spray(n, ATTACKER)).await;
        assert_eq!(
            invoked.status(),
            429,
            "after the threshold, {n}: {invoked:#?}"
        );
    }
    // Another address is not affected.
    let elsewhere = login.api.invoke(spray(22, HOME)).await;
    assert_eq!(elsewhere.status(), 401, "{elsewhere:#?}");

    let lines = login.wait_for_emf_documents(25).await;
    let warnings: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "WARN")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one WARN when the threshold is met: {lines:#?}"
    );
    let warning = &warnings[0];
    assert!(
        warning["message"]
            .as_str()
            .is_some_and(|m| m.contains("password spraying")),
        "{warning:#}"
    );
    assert_eq!(warning["source_ip"], ATTACKER);
    assert_eq!(warning["failures"], 20);
    let text = warning.to_string();
    assert!(
        !text.contains("example.com") && !text.contains("u***"),
        "no emails: {text}"
    );
    let failures: f64 = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|d| d.get("_aws").is_some())
        .filter_map(|d| d["LoginFailures"].as_f64())
        .sum();
    assert_eq!(
        failures, 21.0,
        "LoginFailures counts every 401, none of the 429s"
    );
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
        // One address per try too, so no address nears the spraying threshold.
        let ip = format!("192.0.2.{}", 100 + n);
        let known_event = from(
            login_event(&format!("user{n}@example.com"), "wrong horse battery"),
            &ip,
        );
        let unknown_event = from(
            login_event(&format!("ghost{n}@example.com"), "wrong horse battery"),
            &ip,
        );
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
        ("a counter key prefix", "LOGIN#", 404),
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
    // The logs and EMF alone (responses and Sentry events name the email on purpose): no email,
    // masked or raw (the access lines name the user by id).
    let logs = output.join("\n");
    assert!(!logs.contains("***@example.com"), "not even masked");
    assert!(
        logs.contains("\"user_id\""),
        "the sign-up's access line names the user"
    );
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

#[tokio::test]
async fn at_trace_no_secret_reaches_the_output_while_our_own_lines_do() {
    const PASSWORD: &str = "Trace-Canary-Passw0rd-71c3";
    const API_KEY: &str = "TraceCanaryApiKey0123456789abcdefABCDEF";
    const EMAIL: &str = "trace.canary@example.com";
    let h = Harness::new().await;
    // As template.yaml's LogLevel parameter sets it.
    let env = [
        ("TABLE_NAME", h.table.as_str()),
        ("LOG_LEVEL", "TRACE"),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
        ("LOG_FORMAT", "json"),
    ];
    let create = FunctionProcess::start(function_binary("create_user"), "create_user", &env).await;
    let login = FunctionProcess::start(function_binary("login"), "login", &env).await;
    let get_user = FunctionProcess::start(function_binary("get_user"), "get_user", &env).await;
    // Every request carries the API key, as API Gateway passes it on.
    let keyed = |mut sample: Value| {
        sample["requestContext"]["identity"]["apiKey"] = Value::from(API_KEY);
        with_header(sample, "x-api-key", API_KEY)
    };
    let created = create
        .api
        .invoke(keyed(with_body(
            event("create_user", "ok"),
            json!({"email": EMAIL, "name": "Trace", "password": PASSWORD}).to_string(),
        )))
        .await;
    assert_eq!(created.status(), 201, "{created:#?}");
    let id = created.json_body()["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let wrong = login
        .api
        .invoke(keyed(login_event(EMAIL, "Trace-Wr0ng-Passw0rd")))
        .await;
    assert_eq!(wrong.status(), 401, "{wrong:#?}");
    let logged_in = login.api.invoke(keyed(login_event(EMAIL, PASSWORD))).await;
    assert_eq!(logged_in.status(), 200, "{logged_in:#?}");
    let token = logged_in.json_body()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let profile = get_user
        .api
        .invoke(keyed(with_user_id(
            with_authorization(event("get_user", "ok"), &format!("Bearer {token}")),
            &id,
        )))
        .await;
    assert_eq!(profile.status(), 200, "{profile:#?}");
    let user = h
        .items_with_prefix("USER#")
        .await
        .pop()
        .expect("the user item");
    let hash = string(&user, "password_hash").expect("a hash").to_owned();

    let mut output = Vec::new();
    for (process, documents) in [(&create, 1), (&login, 2), (&get_user, 1)] {
        output.extend(process.wait_for_emf_documents(documents).await);
        output.extend(process.stderr());
    }
    let text = output.join("\n");
    // The level reached our own crates: their debug lines are there.
    assert!(
        output.iter().any(|l| l.contains("invocation started")),
        "TRACE shows the functions' own debug lines: {text}"
    );
    for (what, canary) in [
        ("the password", PASSWORD),
        ("the API key", API_KEY),
        ("the bearer token", token.as_str()),
        ("the raw email", EMAIL),
        ("the password hash", hash.as_str()),
        (
            "the hash's salt and digest",
            hash.rsplit('$').next().unwrap_or(&hash),
        ),
    ] {
        assert!(!text.contains(canary), "{what} reached the output at TRACE");
    }
}
