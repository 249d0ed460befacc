//! template.yaml, read once with serde_yaml_ng (CloudFormation's short tags, `!Ref` and `!Sub`,
//! kept as tagged values): its functions and the routes their `Api` events serve. The routes the
//! tests check against are these, the deployed ones; nothing keeps a copy of them.

use std::{fmt, sync::OnceLock};

use serde_yaml_ng::{Mapping, Value};

/// template.yaml.
pub fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = crate::root().join("template.yaml");
        let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
        serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
    })
}

/// Its `Resources`.
pub fn resources() -> &'static Mapping {
    template()["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources")
}

/// A scalar as text (a string, a number or a boolean).
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A route a function's `Api` event serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// The method, uppercase.
    pub method: String,
    /// The path, as API Gateway writes it (`/users/{id}`).
    pub path: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// An `AWS::Serverless::Function` of template.yaml.
#[derive(Debug, Clone)]
pub struct TemplateFunction {
    /// Its logical id (`GetUserFunction`).
    pub logical_id: String,
    /// The crate directory its `CodeUri: functions/<dir>` names.
    pub dir: String,
    /// The resource.
    pub resource: &'static Value,
    /// Its `Api` events: route and `Auth.ApiKeyRequired` (when it says).
    pub routes: Vec<(Route, Option<bool>)>,
}

/// Every function of template.yaml, in the template's order.
pub fn functions() -> Vec<TemplateFunction> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, resource)| {
            let logical_id = text(id);
            let code_uri = resource["Properties"]["CodeUri"]
                .as_str()
                .unwrap_or_else(|| panic!("{logical_id}: CodeUri is a path"));
            let dir = code_uri
                .trim_end_matches('/')
                .strip_prefix("functions/")
                .filter(|dir| !dir.contains('/'))
                .unwrap_or_else(|| {
                    panic!("{logical_id}: CodeUri {code_uri} is not functions/<name>")
                })
                .to_owned();
            let routes = resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(_, e)| e["Type"].as_str() == Some("Api"))
                .map(|(_, e)| {
                    let p = &e["Properties"];
                    let route = Route {
                        method: text(&p["Method"]).to_ascii_uppercase(),
                        path: text(&p["Path"]),
                    };
                    (route, p["Auth"]["ApiKeyRequired"].as_bool())
                })
                .collect();
            TemplateFunction {
                logical_id,
                dir,
                resource,
                routes,
            }
        })
        .collect()
}

/// The one route the function deployed from `functions/<dir>` serves; panics when the template
/// deploys no such function or gives it another number of routes.
pub fn route_of(dir: &str) -> Route {
    let found: Vec<TemplateFunction> = functions().into_iter().filter(|f| f.dir == dir).collect();
    match found.as_slice() {
        [f] => match f.routes.as_slice() {
            [(route, _)] => route.clone(),
            routes => panic!(
                "{}: one Api event (one route per function), not {}",
                f.logical_id,
                routes.len()
            ),
        },
        [] => panic!("functions/{dir} has no function in template.yaml (CodeUri: functions/{dir})"),
        _ => panic!("functions/{dir} is deployed by more than one function in template.yaml"),
    }
}
