//! The contract, openapi.yaml, applied to every response the suite sees: the status is documented
//! for the operation, the body matches the documented schema, the required headers are present.
//! The error body's schema is the document's `Error` component: there is one copy of it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, OnceLock},
};

use jsonschema::{Registry, Validator};
use serde_json::{Value, json};

const BASE: &str = "urn:users-api:openapi";

/// openapi.yaml as JSON.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let path = crate::root().join("openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("openapi.yaml");
        let mut value: Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML");
        value["$id"] = Value::from(BASE);
        value
    })
}

fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        Registry::new()
            .add(BASE, document().clone())
            .expect("openapi.yaml registers")
            .prepare()
            .expect("openapi.yaml resolves")
    })
}

/// A validator for the schema at `pointer` (a JSON pointer into openapi.yaml), built once.
fn validator(pointer: &str) -> &'static Validator {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static Validator>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(found) = cache.lock().expect("lock").get(pointer) {
        return found;
    }
    let built = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_registry(registry())
        .build(&json!({ "$ref": format!("{BASE}#{}", pointer.replace('{', "%7B").replace('}', "%7D")) }))
        .unwrap_or_else(|err| panic!("openapi.yaml#{pointer} is not a usable schema: {err}"));
    let leaked: &'static Validator = Box::leak(Box::new(built));
    cache
        .lock()
        .expect("lock")
        .insert(pointer.to_owned(), leaked);
    leaked
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Follows `$ref`s inside openapi.yaml; returns the target and its pointer.
fn resolve(mut value: &'static Value, mut pointer: String) -> (&'static Value, String) {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let target = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs in openapi.yaml: {reference}"));
        value = document()
            .pointer(target)
            .unwrap_or_else(|| panic!("openapi.yaml: {reference} points nowhere"));
        pointer = target.to_owned();
    }
    (value, pointer)
}

/// Asserts that `body` is a valid error body of the contract.
pub fn assert_valid_error_body(body: &Value) {
    let errors: Vec<String> = validator("/components/schemas/Error")
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a contract error body: {errors:?}\n{body:#}"
    );
}

/// Asserts that a response to `method path_template` is documented in openapi.yaml: its status,
/// its body's schema, and its required headers (names in `headers` are lowercase).
pub fn assert_documented(
    method: &str,
    path_template: &str,
    status: u16,
    headers: &BTreeMap<String, String>,
    body: &Value,
) {
    let doc = document();
    let path_pointer = format!("/paths/{}", escape(path_template));
    let operation_pointer = format!("{path_pointer}/{}", method.to_ascii_lowercase());
    let (response, response_pointer) = match doc.pointer(&operation_pointer) {
        Some(operation) => {
            let response = operation["responses"]
                .get(status.to_string())
                .unwrap_or_else(|| {
                    panic!(
                        "openapi.yaml does not document {status} for {method} {path_template}: {body}"
                    )
                });
            resolve(response, format!("{operation_pointer}/responses/{status}"))
        }
        // A method the path does not declare: the one documented answer is the 405.
        None => {
            assert!(
                doc.pointer(&path_pointer).is_some(),
                "openapi.yaml has no path {path_template}"
            );
            assert_eq!(
                status, 405,
                "{method} {path_template} is not an operation of openapi.yaml: only 405 is documented for it: {body}"
            );
            let pointer = "/components/responses/MethodNotAllowed".to_owned();
            let response = doc
                .pointer(&pointer)
                .expect("openapi.yaml documents the 405 as components/responses/MethodNotAllowed");
            (response, pointer)
        }
    };
    if response
        .pointer("/content/application~1json/schema")
        .is_some()
    {
        let pointer = format!("{response_pointer}/content/application~1json/schema");
        let errors: Vec<String> = validator(&pointer)
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path_template} {status}: the body does not match openapi.yaml: {errors:?}\n{body:#}"
        );
    }
    if let Some(documented) = response["headers"].as_object() {
        for (name, header) in documented {
            let (header, _) = resolve(
                header,
                format!("{response_pointer}/headers/{}", escape(name)),
            );
            if header["required"] == true {
                assert!(
                    headers.contains_key(&name.to_ascii_lowercase()),
                    "{method} {path_template} {status}: the documented header {name} is missing: {headers:?}"
                );
            }
        }
    }
}
