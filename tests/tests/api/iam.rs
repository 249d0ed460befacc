//! Each function's IAM policy in template.yaml is what its code needs, derived from what it does:
//! every sample event is sent to the function's binary through the fault proxy, which keeps every
//! DynamoDB request, and each request is read as IAM reads it (the action, and the item's
//! partition key, which `dynamodb:LeadingKeys` conditions on). Every call must be allowed by the
//! policy, and everything the policy allows must be something the function did. A write is also
//! replayed with its answer lost (the retry path, where create_user reads the email item), which
//! must give the same answer.
//!
//! So a new endpoint's policy needs no expectation written down anywhere: its sample events are
//! the expectation.

use std::collections::{BTreeMap, BTreeSet};

use api_tests::{
    Fault, FaultProxy, Harness, Plan,
    samples::{self, Case},
    template::{self, text},
};
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use crate::events::{assert_outcome, prepare};

/// An item a request touches, as IAM sees it: the action it needs and the item's partition key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    action: String,
    key: String,
}

/// The partition key attribute of the table (its HASH key in template.yaml).
fn partition_key() -> String {
    let table = template::resources()
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .expect("a table");
    table["Properties"]["KeySchema"]
        .as_sequence()
        .expect("a key schema")
        .iter()
        .find(|k| k["KeyType"].as_str() == Some("HASH"))
        .map(|k| text(&k["AttributeName"]))
        .expect("a HASH key")
}

/// What one DynamoDB request needs from IAM: one access per item it reads or writes
/// (TransactWriteItems is authorised item by item, as PutItem, UpdateItem, DeleteItem and
/// ConditionCheckItem). An operation this test cannot read fails it, rather than pass unread.
fn accesses(operation: &str, request: &Value, pk: &str) -> Vec<Access> {
    let key_of = |item: &Value| -> String {
        item[pk]["S"]
            .as_str()
            .unwrap_or_else(|| panic!("{operation}: no string {pk} in {item}"))
            .to_owned()
    };
    let access = |action: &str, item: &Value| Access {
        action: format!("dynamodb:{action}"),
        key: key_of(item),
    };
    match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => vec![access(operation, &request["Key"])],
        "PutItem" => vec![access(operation, &request["Item"])],
        "TransactWriteItems" | "TransactGetItems" => request["TransactItems"]
            .as_array()
            .expect("TransactItems")
            .iter()
            .map(|item| {
                let (kind, body) = item
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .expect("a transaction item");
                match kind.as_str() {
                    "Put" => access("PutItem", &body["Item"]),
                    "Update" => access("UpdateItem", &body["Key"]),
                    "Delete" => access("DeleteItem", &body["Key"]),
                    "ConditionCheck" => access("ConditionCheckItem", &body["Key"]),
                    "Get" => access("GetItem", &body["Key"]),
                    other => panic!("{operation}: a {other} item this test cannot read"),
                }
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => request["RequestItems"]
            .as_object()
            .expect("RequestItems")
            .values()
            .flat_map(|requests| {
                let items: Vec<&Value> = if operation == "BatchGetItem" {
                    requests["Keys"].as_array().expect("Keys").iter().collect()
                } else {
                    requests
                        .as_array()
                        .expect("write requests")
                        .iter()
                        .map(|r| {
                            if r["PutRequest"].is_object() {
                                &r["PutRequest"]["Item"]
                            } else {
                                &r["DeleteRequest"]["Key"]
                            }
                        })
                        .collect()
                };
                items.into_iter().map(|item| access(operation, item))
            })
            .collect(),
        "Query" => vec![Access {
            action: "dynamodb:Query".to_owned(),
            key: query_partition(request, pk),
        }],
        other => panic!(
            "a {other} call: this test cannot read which items it touches (teach accesses() its \
             request, as IAM's dynamodb:LeadingKeys sees it)"
        ),
    }
}

/// The partition key value of a Query (`pk = :v` in its key condition, by name or through
/// `#name`).
fn query_partition(request: &Value, pk: &str) -> String {
    let condition = request["KeyConditionExpression"]
        .as_str()
        .expect("Query: KeyConditionExpression");
    for part in condition.split(" AND ").chain(condition.split(" and ")) {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let name = request["ExpressionAttributeNames"][name]
            .as_str()
            .unwrap_or(name);
        if name == pk {
            return request["ExpressionAttributeValues"][value]["S"]
                .as_str()
                .unwrap_or_else(|| panic!("Query: no string value {value}"))
                .to_owned();
        }
    }
    panic!("Query: no `{pk} = :value` in {condition}")
}

/// One statement of a function's policy: its actions and the partition keys it allows
/// (`dynamodb:LeadingKeys` patterns; `None`: any key).
#[derive(Debug)]
struct Statement {
    actions: Vec<String>,
    keys: Option<Vec<String>>,
}

/// The statements of the template's policy for the function deployed from `functions/<dir>`.
fn policy(dir: &str) -> (String, Vec<Statement>) {
    let f = template::functions()
        .into_iter()
        .find(|f| f.dir == dir)
        .unwrap_or_else(|| panic!("functions/{dir} has no function in template.yaml"));
    let mut statements = Vec::new();
    for policy in f.resource["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let list = |v: &Yaml| -> Vec<String> {
                match v {
                    Yaml::Sequence(items) => items.iter().map(text).collect(),
                    other => vec![text(other)],
                }
            };
            let keys = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            statements.push(Statement {
                actions: list(&statement["Action"]),
                keys: (!keys.is_null()).then(|| list(keys)),
            });
        }
    }
    (f.logical_id, statements)
}

/// IAM's StringLike: `*` matches any run of characters, `?` any one.
fn like(pattern: &str, value: &str) -> bool {
    match pattern.chars().next() {
        None => value.is_empty(),
        Some('*') => (0..=value.len())
            .filter(|i| value.is_char_boundary(*i))
            .any(|i| like(&pattern[1..], &value[i..])),
        Some(c) => {
            value.chars().next().is_some_and(|v| c == '?' || c == v) && {
                let (p, v) = (c.len_utf8(), value.chars().next().map_or(0, char::len_utf8));
                like(&pattern[p..], &value[v..])
            }
        }
    }
}

const WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

/// Sends `case` to its function through `proxy` (the table prepared without it, so only the
/// function's own calls are seen) and returns the reply and the requests.
async fn through_proxy(
    h: &Harness,
    proxy: &FaultProxy,
    case: &Case,
) -> (api_tests::Reply, Vec<(String, Value)>) {
    h.clear().await;
    let sample = prepare(h, case).await;
    proxy.reset_counts();
    let endpoint = proxy.endpoint();
    let reply = h
        .call_with_env(
            &case.function,
            &[("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str())],
            sample,
        )
        .await;
    (reply, proxy.requests())
}

#[tokio::test]
async fn each_policy_allows_what_its_function_does_and_nothing_more() {
    let pk = partition_key();
    let h = Harness::new().await;
    let proxy = FaultProxy::start().await;
    // What each function did, with the case that did it first.
    let mut done: BTreeMap<String, BTreeMap<Access, String>> = BTreeMap::new();
    for case in samples::all_cases() {
        let (reply, requests) = through_proxy(&h, &proxy, &case).await;
        assert_outcome(&case, &reply);
        let mut seen: Vec<Access> = requests
            .iter()
            .flat_map(|(op, request)| accesses(op, request, &pk))
            .collect();
        // The same event with the answer to its first write lost: the retry path.
        if let Some((write, _)) = requests
            .iter()
            .find(|(op, _)| WRITES.contains(&op.as_str()))
        {
            proxy.set_plan(Plan::first(1, Fault::LoseResponse).only(write));
            let (retried, requests) = through_proxy(&h, &proxy, &case).await;
            proxy.set_plan(Plan::pass());
            assert_eq!(
                (retried.status, retried.body.get("code")),
                (reply.status, reply.body.get("code")),
                "{}: with the answer to its {write} lost, the retry gives another answer",
                case.file()
            );
            seen.extend(
                requests
                    .iter()
                    .flat_map(|(op, request)| accesses(op, request, &pk)),
            );
        }
        let by_function = done.entry(case.function.clone()).or_default();
        for access in seen {
            by_function.entry(access).or_insert_with(|| case.file());
        }
    }

    let mut problems = Vec::new();
    for krate in test_support::functions::names() {
        let (id, statements) = policy(krate);
        let did = done.get(krate).cloned().unwrap_or_default();
        for (access, file) in &did {
            let allowed = statements.iter().any(|s| {
                s.actions.contains(&access.action)
                    && s.keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| like(k, &access.key)))
            });
            if !allowed {
                let kind = access.key.split_once('#').map_or("", |(kind, _)| kind);
                problems.push(format!(
                    "{krate} calls {} on {} ({file}), which {id}'s policy does not allow: add \
                     {} on dynamodb:LeadingKeys {kind}#* to its Policies",
                    access.action, access.key, access.action
                ));
            }
        }
        for s in &statements {
            for action in &s.actions {
                let keys = s.keys.clone().unwrap_or_else(|| vec!["*".to_owned()]);
                for key in keys {
                    let used = did
                        .keys()
                        .any(|a| a.action == *action && like(&key, &a.key));
                    if !used {
                        problems.push(format!(
                            "{id}'s policy allows {action} on {key}, which none of {krate}'s sample \
                             events makes it do: remove it, or add the event that needs it"
                        ));
                    }
                }
            }
        }
    }
    let functions: BTreeSet<&String> = done.keys().collect();
    assert!(functions.len() >= 4, "every function ran: {functions:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn iam_string_like_is_read_as_iam_reads_it() {
    assert!(like("USER#*", "USER#7227c320"));
    assert!(like("LOGIN#*", "LOGIN#pair#abc"));
    assert!(like("*", ""));
    assert!(like("A?C", "ABC"));
    assert!(!like("USER#*", "EMAIL#ada@example.com"));
    assert!(!like("USER#", "USER#x"));
    assert!(!like("A?C", "AC"));
}
