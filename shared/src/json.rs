//! Reading a JSON request body into domain types, collecting every problem into one 422.
//!
//! A handler takes each field it knows with a parser from the domain (`Email::parse`), then calls
//! [`JsonObject::finish`]: fields it did not take are reported as unknown (which also rejects mass
//! assignment of `id`, `created_at` or `password_hash`), and all problems are answered at once.
//! Messages never repeat the submitted value, so a mistyped password does not end up in a response.
//!
//! ```
//! # use shared::json::JsonObject;
//! let mut body = JsonObject::parse(br#"{"email": 3, "extra": true}"#).unwrap();
//! let email = body.required("email", |s| Ok::<_, &str>(s.to_owned()));
//! let err = body.finish((email,)).unwrap_err();
//! assert_eq!(err.to_string(), "Request validation failed");
//! ```

use std::fmt::Display;

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};

/// A request body whose top level is a JSON object.
#[derive(Debug)]
pub struct JsonObject {
    members: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl JsonObject {
    /// Parses `bytes` as a JSON object. serde_json's recursion limit (128) turns a deeply nested
    /// document into an error, never a stack overflow.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|err| {
            let message = if err.is_eof() && bytes.iter().all(u8::is_ascii_whitespace) {
                "body must be a JSON object, and it is empty".to_owned()
            } else {
                // serde_json's syntax messages only name a position, never the input.
                format!(
                    "body is not valid JSON: {} at line {} column {}",
                    syntax_reason(&err),
                    err.line(),
                    err.column()
                )
            };
            ApiError::Validation(vec![FieldError::body(message)])
        })?;
        match value {
            Value::Object(members) => {
                // A member given twice is ambiguous (parsers disagree on which one wins): refuse it.
                let errors = serde_json::from_slice::<DuplicateMembers>(bytes)
                    .map(|found| {
                        found
                            .0
                            .into_iter()
                            .map(|name| FieldError::member(&name, "appears more than once"))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if !errors.is_empty() {
                    return Err(ApiError::Validation(errors));
                }
                Ok(Self {
                    members,
                    errors: Vec::new(),
                })
            }
            other => Err(ApiError::Validation(vec![FieldError::body(format!(
                "body must be a JSON object, not {}",
                type_name(&other)
            ))])),
        }
    }

    /// Takes the string member `name` and parses it; a missing member, a non-string or a parse error
    /// is recorded, and `None` returned.
    pub fn required<T, E: Display>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match self.members.remove(name) {
            None => {
                self.errors
                    .push(FieldError::member(name, "this field is required"));
                None
            }
            Some(Value::String(s)) => match parse(&s) {
                Ok(value) => Some(value),
                Err(err) => {
                    self.errors.push(FieldError::member(name, err.to_string()));
                    None
                }
            },
            Some(other) => {
                self.errors.push(FieldError::member(
                    name,
                    format!("must be a string, not {}", type_name(&other)),
                ));
                None
            }
        }
    }

    /// Ends parsing: every member not taken is an unknown field. Returns the parsed values when there
    /// was no problem at all, else one 422 listing them all.
    pub fn finish<T: AllParsed>(mut self, values: T) -> Result<T::Output, ApiError> {
        let mut unknown: Vec<&String> = self.members.keys().collect();
        unknown.sort();
        for name in unknown {
            self.errors
                .push(FieldError::member(name, "unknown field: not allowed here"));
        }
        match values.all_parsed() {
            Some(values) if self.errors.is_empty() => Ok(values),
            _ => Err(ApiError::Validation(self.errors)),
        }
    }
}

/// The top-level member names that occur more than once in an object, in order of first repeat.
struct DuplicateMembers(Vec<String>);

impl<'de> serde::Deserialize<'de> for DuplicateMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DuplicateMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut repeated = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if !seen.insert(name.clone()) && !repeated.contains(&name) {
                        repeated.push(name);
                    }
                }
                Ok(DuplicateMembers(repeated))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short reason from serde_json's error without the position it appends.
fn syntax_reason(err: &serde_json::Error) -> String {
    let full = err.to_string();
    match full.rfind(" at line ") {
        Some(at) => full[..at].to_owned(),
        None => full,
    }
}

/// A tuple of `Option`s that are all `Some` when parsing succeeded.
pub trait AllParsed {
    /// The tuple without the `Option`s.
    type Output;
    /// `Some` when every element is.
    fn all_parsed(self) -> Option<Self::Output>;
}

macro_rules! all_parsed {
    ($($name:ident),+) => {
        impl<$($name),+> AllParsed for ($(Option<$name>,)+) {
            type Output = ($($name,)+);
            #[allow(non_snake_case)]
            fn all_parsed(self) -> Option<Self::Output> {
                let ($($name,)+) = self;
                Some(($($name?,)+))
            }
        }
    };
}
all_parsed!(A);
all_parsed!(A, B);
all_parsed!(A, B, C);
all_parsed!(A, B, C, D);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn errors(err: ApiError) -> Vec<(String, String)> {
        match err {
            ApiError::Validation(errors) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn parse_two(body: &str) -> Result<(String, String), ApiError> {
        let mut obj = JsonObject::parse(body.as_bytes())?;
        let a = obj.required("a", |s| Ok::<_, &str>(s.to_owned()));
        let b = obj.required("b", |s| {
            if s.len() > 3 {
                Err("must be at most 3 characters")
            } else {
                Ok(s.to_owned())
            }
        });
        obj.finish((a, b))
    }

    #[test]
    fn a_valid_body_parses() {
        assert_eq!(
            parse_two(r#"{"a": "x", "b": "y"}"#).unwrap(),
            ("x".into(), "y".into())
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let err = parse_two(r#"{"b": "toolong", "c": 1, "d/e": null}"#).unwrap_err();
        assert_eq!(
            errors(err),
            vec![
                ("/a".into(), "this field is required".into()),
                ("/b".into(), "must be at most 3 characters".into()),
                ("/c".into(), "unknown field: not allowed here".into()),
                ("/d~1e".into(), "unknown field: not allowed here".into()),
            ]
        );
    }

    #[test]
    fn wrong_types_are_named_without_echoing_the_value() {
        let err = parse_two(r#"{"a": 12345678, "b": ["x"]}"#).unwrap_err();
        let errors = errors(err);
        assert_eq!(
            errors[0],
            ("/a".into(), "must be a string, not a number".into())
        );
        assert_eq!(
            errors[1],
            ("/b".into(), "must be a string, not an array".into())
        );
        assert!(!format!("{errors:?}").contains("12345678"));
    }

    #[test]
    fn not_json_or_not_an_object() {
        for (body, starts_with) in [
            ("", "body must be a JSON object, and it is empty"),
            ("{\"a\": ", "body is not valid JSON"),
            ("{'a': 1}", "body is not valid JSON"),
            ("[1, 2]", "body must be a JSON object, not an array"),
            ("\"text\"", "body must be a JSON object, not a string"),
            ("null", "body must be a JSON object, not null"),
        ] {
            let errors = errors(JsonObject::parse(body.as_bytes()).unwrap_err());
            assert_eq!(errors.len(), 1, "{body}");
            assert_eq!(errors[0].0, "", "{body}");
            assert!(
                errors[0].1.starts_with(starts_with),
                "{body}: {}",
                errors[0].1
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let errors = errors(JsonObject::parse(body.as_bytes()).unwrap_err());
        assert!(errors[0].1.contains("recursion limit"), "{}", errors[0].1);
    }

    #[test]
    fn invalid_utf8_is_a_validation_error() {
        let errors = errors(JsonObject::parse(b"{\"a\": \"\xff\"}").unwrap_err());
        assert!(errors[0].1.starts_with("body is not valid JSON"));
    }

    #[test]
    fn a_member_given_twice_is_refused() {
        let errors = errors(JsonObject::parse(br#"{"a": 1, "b": 2, "a": 3, "a": 4}"#).unwrap_err());
        assert_eq!(
            errors,
            vec![("/a".to_owned(), "appears more than once".to_owned())]
        );
        // Nested objects are values the handler never takes; only the top level matters.
        assert!(JsonObject::parse(br#"{"a": {"x": 1, "x": 2}}"#).is_ok());
    }
}
