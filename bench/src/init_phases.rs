//! A function's init, phase by phase: the JSON stdout line it prints once per process whose
//! `message` is `"init"`, with `phases_ms`, an object of phase name → milliseconds in the order
//! the phases ran. The phase names are the function's to choose; they are read as they come, in
//! their order (serde_json's map would sort them, so the object is read with a visitor of its own).

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor},
};

/// Phase name → milliseconds, in the order the line gives them.
pub type Phases = Vec<(String, f64)>;

/// The `phases_ms` object, its order kept; values that are not numbers are skipped.
#[derive(Debug, Default)]
struct Ordered(Phases);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;

        impl<'de> Visitor<'de> for InOrder {
            type Value = Ordered;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of phase name to milliseconds")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut phases = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if let Some(ms) = value.as_f64() {
                        phases.push((name, ms));
                    }
                }
                Ok(Ordered(phases))
            }
        }

        deserializer.deserialize_map(InOrder)
    }
}

/// The fields of a log line that matter here; the others are skipped unread.
#[derive(Debug, Deserialize)]
struct Line {
    message: Option<String>,
    phases_ms: Option<Ordered>,
}

/// The phases of `line` if it is the init line, else `None`.
pub fn parse(line: &str) -> Option<Phases> {
    if !line.contains("\"phases_ms\"") {
        return None;
    }
    let parsed: Line = serde_json::from_str(line).ok()?;
    (parsed.message.as_deref() == Some("init"))
        .then_some(parsed.phases_ms)
        .flatten()
        .map(|ordered| ordered.0)
}

/// The phases of the first init line among `lines`.
pub fn find<S: AsRef<str>>(lines: &[S]) -> Option<Phases> {
    lines.iter().find_map(|line| parse(line.as_ref()))
}

/// The phase names of several readings, each name once, in the order they first appear (a name
/// that only some readings have comes after the names before it in the reading that has it).
pub fn names<'a>(readings: impl IntoIterator<Item = &'a Phases>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for phases in readings {
        let mut at = 0;
        for (name, _) in phases {
            match names.iter().position(|n| n == name) {
                Some(found) => at = found + 1,
                None => {
                    names.insert(at, name.clone());
                    at += 1;
                }
            }
        }
    }
    names
}

/// A phase's value in `phases`.
pub fn get(phases: &Phases, name: &str) -> Option<f64> {
    phases.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the functions print it: fields in the logger's order, the phases in the order they ran
    /// (not alphabetical).
    const LINE: &str = r#"{"timestamp":"2026-12-01T10:00:00.000Z","level":"INFO","target":"shared::runtime","message":"init","function":"health","phases_ms":{"telemetry":0.4,"config":0.1,"app":0.02,"dynamodb_client":3.1,"dynamodb_connect":1.2}}"#;

    #[test]
    fn the_init_line_gives_its_phases_in_order() {
        let phases = parse(LINE).unwrap_or_default();
        assert_eq!(
            phases,
            [
                ("telemetry".to_owned(), 0.4),
                ("config".to_owned(), 0.1),
                ("app".to_owned(), 0.02),
                ("dynamodb_client".to_owned(), 3.1),
                ("dynamodb_connect".to_owned(), 1.2),
            ]
        );
        assert_eq!(get(&phases, "dynamodb_client"), Some(3.1));
        assert_eq!(get(&phases, "sentry"), None);
    }

    #[test]
    fn other_lines_are_not_the_init_line() {
        assert_eq!(parse(r#"{"level":"INFO","message":"init"}"#), None);
        assert_eq!(
            parse(r#"{"message":"request","phases_ms":{"a":1}}"#),
            None,
            "not the init message"
        );
        assert_eq!(parse(r#"{"message":"init","phases_ms":[1,2]}"#), None);
        assert_eq!(parse("\"phases_ms\" in plain text"), None);
        // Integers count; what is not a number is skipped.
        assert_eq!(
            parse(r#"{"message":"init","phases_ms":{"a":2,"b":"x","c":0.5}}"#),
            Some(vec![("a".to_owned(), 2.0), ("c".to_owned(), 0.5)])
        );
    }

    #[test]
    fn the_first_init_line_among_others_is_found() {
        let lines = [
            r#"{"message":"request","status":200}"#.to_owned(),
            LINE.to_owned(),
            LINE.replace("0.4", "9.9"),
        ];
        assert_eq!(find(&lines).and_then(|p| get(&p, "telemetry")), Some(0.4));
        assert_eq!(find::<&str>(&[]), None);
    }

    #[test]
    fn names_keep_the_order_they_first_ran_in() {
        let a: Phases = vec![("telemetry".into(), 1.0), ("app".into(), 1.0)];
        let b: Phases = vec![
            ("telemetry".into(), 1.0),
            ("config".into(), 1.0),
            ("app".into(), 1.0),
            ("dynamodb".into(), 1.0),
        ];
        assert_eq!(names([&a, &b]), ["telemetry", "config", "app", "dynamodb"]);
    }
}
