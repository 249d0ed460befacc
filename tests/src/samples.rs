//! The sample events (`events/<function>/<case>.json`) with what each must produce, declared
//! beside them in `events/<function>/expected.toml` (events/README.md has the format): status,
//! error code, how the number of items in the table changes, and what the table must hold first
//! (`given`). An event may hold placeholders the test fills in from that preparation:
//! `{{user_id}}` (given `signed_up` or `signed_in`) and `{{token}}` (given `signed_in`).
//!
//! A new endpoint's sample events need no Rust: tests/tests/api/events.rs runs every case of every
//! function through the function's binary ([`crate::Harness::call`]).

use std::{collections::BTreeMap, fmt, path::Path};

use serde_json::Value;

/// The sidecar file of each function's events.
pub const EXPECTED: &str = "expected.toml";

/// What the table holds before an event is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Given {
    /// Nothing: an empty table.
    #[default]
    Nothing,
    /// Ada signed up (`events/create_user/ok.json`): `{{user_id}}` is her id.
    SignedUp,
    /// Ada signed up with an `Idempotency-Key` (`events/create_user/idempotency_key.json`):
    /// `{{user_id}}` is her id, and the key's record is there to replay.
    SignedUpWithKey,
    /// Ada signed up and logged in (`events/login/ok.json`): `{{user_id}}` and `{{token}}`, her
    /// access token.
    SignedIn,
}

impl Given {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "nothing" => Some(Self::Nothing),
            "signed_up" => Some(Self::SignedUp),
            "signed_up_with_key" => Some(Self::SignedUpWithKey),
            "signed_in" => Some(Self::SignedIn),
            _ => None,
        }
    }

    /// The placeholders this preparation fills in.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::Nothing => &[],
            Self::SignedUp | Self::SignedUpWithKey => &[USER_ID],
            Self::SignedIn => &[USER_ID, TOKEN],
        }
    }
}

impl fmt::Display for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nothing => "nothing",
            Self::SignedUp => "signed_up",
            Self::SignedUpWithKey => "signed_up_with_key",
            Self::SignedIn => "signed_in",
        })
    }
}

/// The signed-up user's id.
pub const USER_ID: &str = "user_id";
/// The signed-in user's access token.
pub const TOKEN: &str = "token";
/// Every placeholder there is.
pub const PLACEHOLDERS: &[&str] = &[USER_ID, TOKEN];

/// What one sample event must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The HTTP status.
    pub status: u16,
    /// The error body's `code` (required for a 4xx or 5xx, absent otherwise).
    pub code: Option<String>,
    /// How many items the table gains (negative: loses).
    pub new_items: i64,
    /// What the table holds first.
    pub given: Given,
}

/// One sample event and its expectation.
#[derive(Debug, Clone)]
pub struct Case {
    /// The function (the directory under events/).
    pub function: String,
    /// The case (the file's name without `.json`).
    pub case: String,
    /// The event, placeholders unfilled.
    pub event: Value,
    /// What it must produce.
    pub expected: Expected,
}

impl Case {
    /// `events/<function>/<case>.json`, for messages.
    pub fn file(&self) -> String {
        format!("events/{}/{}.json", self.function, self.case)
    }
}

/// The cases of `events/<function>/`: every `.json` there with its entry in `expected.toml`.
/// `Err` names what is missing or wrong (a case without an entry, an entry without a file, an
/// unknown key, a placeholder its `given` does not provide).
pub fn cases_of(function: &str) -> Result<Vec<Case>, String> {
    let dir = crate::root().join("events").join(function);
    let sidecar = format!("events/{function}/{EXPECTED}");
    let mut expected = read_expected(&dir.join(EXPECTED), &sidecar)?;
    let mut cases = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|err| format!("events/{function}/: {err}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let case = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = format!("events/{function}/{case}.json");
        let Some(expectation) = expected.remove(&case) else {
            return Err(format!(
                "{file} has no [{case}] in {sidecar}: say what it must produce"
            ));
        };
        let text = std::fs::read_to_string(&path).map_err(|err| format!("{file}: {err}"))?;
        let event: Value =
            serde_json::from_str(&text).map_err(|err| format!("{file} is not JSON: {err}"))?;
        for name in placeholders_in(&event) {
            if !PLACEHOLDERS.contains(&name.as_str()) {
                return Err(format!(
                    "{file}: {{{{{name}}}}} is not a placeholder (there are {PLACEHOLDERS:?})"
                ));
            }
            if !expectation.given.placeholders().contains(&name.as_str()) {
                return Err(format!(
                    "{file} uses {{{{{name}}}}}, which [{case}] in {sidecar} does not provide: \
                     given = \"{}\" is needed",
                    if name == TOKEN {
                        "signed_in"
                    } else {
                        "signed_up"
                    }
                ));
            }
        }
        cases.push(Case {
            function: function.to_owned(),
            case,
            event,
            expected: expectation,
        });
    }
    if let Some(case) = expected.keys().next() {
        return Err(format!(
            "{sidecar}: [{case}] has no events/{function}/{case}.json"
        ));
    }
    Ok(cases)
}

/// Every function's cases (the directories under events/), sorted; panics with what is wrong.
pub fn all_cases() -> Vec<Case> {
    let mut functions: Vec<String> = std::fs::read_dir(crate::root().join("events"))
        .expect("events/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    functions.sort();
    functions
        .iter()
        .flat_map(|f| cases_of(f).unwrap_or_else(|err| panic!("{err}")))
        .collect()
}

fn read_expected(path: &Path, sidecar: &str) -> Result<BTreeMap<String, Expected>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        format!("{sidecar} is missing ({err}): it says what each sample event must produce")
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|err| format!("{sidecar} is not TOML: {err}"))?;
    table
        .iter()
        .map(|(case, entry)| {
            let what = format!("{sidecar}: [{case}]");
            let entry = entry
                .as_table()
                .ok_or_else(|| format!("{what} is not a table"))?;
            parse_expected(entry, &what).map(|e| (case.clone(), e))
        })
        .collect()
}

fn parse_expected(entry: &toml::Table, what: &str) -> Result<Expected, String> {
    for key in entry.keys() {
        if !["status", "code", "new_items", "given"].contains(&key.as_str()) {
            return Err(format!(
                "{what}: unknown key {key} (status, code, new_items, given)"
            ));
        }
    }
    let status = entry
        .get("status")
        .and_then(toml::Value::as_integer)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("{what}: status = <an HTTP status> is required"))?;
    let code = match entry.get("code") {
        None => None,
        Some(code) => Some(
            code.as_str()
                .ok_or_else(|| format!("{what}: code is a string"))?
                .to_owned(),
        ),
    };
    match (status >= 400, &code) {
        (true, None) => return Err(format!("{what}: a {status} needs its error code")),
        (false, Some(code)) => {
            return Err(format!("{what}: a {status} has no error code, not {code}"));
        }
        _ => {}
    }
    let new_items = entry
        .get("new_items")
        .and_then(toml::Value::as_integer)
        .ok_or_else(|| {
            format!("{what}: new_items = <how many items the table gains, negative for fewer> is required")
        })?;
    let given = match entry.get("given") {
        None => Given::Nothing,
        Some(given) => given.as_str().and_then(Given::parse).ok_or_else(|| {
            format!("{what}: given is \"nothing\", \"signed_up\" or \"signed_in\", not {given:?}")
        })?,
    };
    Ok(Expected {
        status,
        code,
        new_items,
        given,
    })
}

/// The names of the `{{...}}` placeholders in the strings of `value`.
pub fn placeholders_in(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    visit_strings(value, &mut |s| {
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(end) = rest[start..].find("}}") else {
                break;
            };
            found.push(rest[start + 2..start + end].to_owned());
            rest = &rest[start + end + 2..];
        }
    });
    found
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// `event` with every `{{name}}` in its strings replaced by its value in `values`.
pub fn fill(event: &Value, values: &[(&str, &str)]) -> Value {
    match event {
        Value::String(s) => {
            let mut s = s.clone();
            for (name, value) in values {
                s = s.replace(&format!("{{{{{name}}}}}"), value);
            }
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(text: &str) -> Result<Expected, String> {
        parse_expected(&text.parse::<toml::Table>().expect("TOML"), "[x]")
    }

    #[test]
    fn an_entry_says_status_code_items_and_what_is_given() {
        assert_eq!(
            entry("status = 404\ncode = \"not_found\"\nnew_items = 0\ngiven = \"signed_in\""),
            Ok(Expected {
                status: 404,
                code: Some("not_found".into()),
                new_items: 0,
                given: Given::SignedIn
            })
        );
        assert_eq!(
            entry("status = 204\nnew_items = -3").map(|e| (e.given, e.new_items)),
            Ok((Given::Nothing, -3))
        );
        for (text, problem) in [
            ("new_items = 0", "status = <an HTTP status> is required"),
            ("status = 401\nnew_items = 0", "a 401 needs its error code"),
            (
                "status = 200\ncode = \"x\"\nnew_items = 0",
                "a 200 has no error code",
            ),
            ("status = 200", "new_items"),
            ("status = 200\nnew_items = 0\ngiven = \"admin\"", "given is"),
            (
                "status = 200\nnew_items = 0\nitems = 1",
                "unknown key items",
            ),
        ] {
            let err = entry(text).expect_err(text);
            assert!(err.contains(problem), "{text}: {err}");
        }
    }

    #[test]
    fn placeholders_are_found_and_filled_in_every_string() {
        let event = json!({
            "path": "/users/{{user_id}}",
            "headers": {"Authorization": "Bearer {{token}}"},
            "multiValueHeaders": {"Authorization": ["Bearer {{token}}"]},
            "body": null,
        });
        let mut names = placeholders_in(&event);
        names.sort();
        assert_eq!(names, ["token", "token", "user_id"]);
        let filled = fill(&event, &[("user_id", "u1"), ("token", "t1")]);
        assert_eq!(filled["path"], "/users/u1");
        assert_eq!(filled["multiValueHeaders"]["Authorization"][0], "Bearer t1");
        assert!(placeholders_in(&filled).is_empty());
    }
}
