//! Whether a subscriber's declared payload type can accept what a publisher declares, by
//! comparing their JSON Schemas: the JSON types at each level, the properties the subscriber
//! requires, and the properties' own types, recursively.
//!
//! Contract: [`differences`] returns only definite differences, each a sentence naming the
//! path; a side that says nothing about a level (`true`, `{}`, a keyword this module does not
//! read) is taken to agree there. It follows local `$ref`s (`#/...`, as schemars writes them)
//! and `anyOf`/`oneOf` alternatives, goes at most [`MAX_DEPTH`] levels deep (recursive types
//! stop there) and reports at most [`MAX_DIFFERENCES`] differences.

use serde_json::Value;
use std::collections::BTreeSet;

/// How many levels of nesting are compared.
pub(crate) const MAX_DEPTH: usize = 16;

/// How many differences are reported at most.
pub(crate) const MAX_DIFFERENCES: usize = 3;

/// How many `$ref`s are followed in a row before giving up (a cycle of references).
const MAX_REF_HOPS: usize = 16;

/// The differences between what `publisher` may send and what `subscriber` accepts (both JSON
/// Schema documents); empty when the subscriber can accept everything the publisher declares,
/// or when the schemas do not say enough to tell.
pub(crate) fn differences(publisher: &Value, subscriber: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut walk = Walk {
        publisher_root: publisher,
        subscriber_root: subscriber,
        out: &mut out,
    };
    walk.compare(publisher, subscriber, "", 0);
    out.truncate(MAX_DIFFERENCES);
    out
}

struct Walk<'a, 'o> {
    publisher_root: &'a Value,
    subscriber_root: &'a Value,
    out: &'o mut Vec<String>,
}

impl<'a> Walk<'a, '_> {
    fn report(&mut self, difference: String) {
        if self.out.len() < MAX_DIFFERENCES && !self.out.contains(&difference) {
            self.out.push(difference);
        }
    }

    fn compare(&mut self, publisher: &'a Value, subscriber: &'a Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH || self.out.len() >= MAX_DIFFERENCES {
            return;
        }
        let publisher = resolve(publisher, self.publisher_root);
        let subscriber = resolve(subscriber, self.subscriber_root);
        // The publisher may send any one of its alternatives: each must be acceptable.
        if let Some(branches) = alternatives(publisher) {
            for branch in branches {
                self.compare(branch, subscriber, path, depth + 1);
            }
            return;
        }
        // The subscriber accepts any one of its alternatives: the publisher's type must fit
        // one. Compare with the alternatives whose JSON types overlap.
        if let Some(branches) = alternatives(subscriber) {
            let sent = types(publisher, self.publisher_root);
            let fitting: Vec<&Value> = branches
                .iter()
                .filter(|b| {
                    let accepted = types(resolve(b, self.subscriber_root), self.subscriber_root);
                    match (&sent, &accepted) {
                        (Some(sent), Some(accepted)) => sent.iter().all(|t| accepts(accepted, t)),
                        _ => true,
                    }
                })
                .collect();
            match fitting.as_slice() {
                [] => {
                    if let Some(sent) = sent {
                        let accepted = types(subscriber, self.subscriber_root)
                            .map(|t| list(&t))
                            .unwrap_or_else(|| "other types".to_owned());
                        self.report(format!(
                            "{}: the publisher sends {} where the subscriber accepts {accepted}",
                            place(path),
                            list(&sent)
                        ));
                    }
                }
                [only] => self.compare(publisher, only, path, depth + 1),
                // Several could fit: only a difference against all of them is definite.
                several => {
                    let definite = several.iter().all(|branch| {
                        let mut probe = Vec::new();
                        Walk {
                            publisher_root: self.publisher_root,
                            subscriber_root: self.subscriber_root,
                            out: &mut probe,
                        }
                        .compare(publisher, branch, path, depth + 1);
                        !probe.is_empty()
                    });
                    if definite {
                        self.compare(publisher, several[0], path, depth + 1);
                    }
                }
            }
            return;
        }
        let (Some(sent), Some(accepted)) = (
            types(publisher, self.publisher_root),
            types(subscriber, self.subscriber_root),
        ) else {
            return;
        };
        let refused: BTreeSet<String> = sent
            .iter()
            .filter(|t| !accepts(&accepted, t))
            .cloned()
            .collect();
        if !refused.is_empty() {
            let verb = if refused.len() < sent.len() {
                "may send"
            } else {
                "sends"
            };
            self.report(format!(
                "{}: the publisher {verb} {} where the subscriber accepts {}",
                place(path),
                list(&refused),
                list(&accepted)
            ));
            return;
        }
        if sent.contains("object") && accepted.contains("object") {
            self.compare_objects(publisher, subscriber, path, depth);
        }
        if sent.contains("array")
            && accepted.contains("array")
            && let (Some(p), Some(s)) = (publisher.get("items"), subscriber.get("items"))
        {
            self.compare(p, s, &format!("{path}/*"), depth + 1);
        }
    }

    fn compare_objects(
        &mut self,
        publisher: &'a Value,
        subscriber: &'a Value,
        path: &str,
        depth: usize,
    ) {
        let sent = publisher.get("properties").and_then(Value::as_object);
        let accepted = subscriber.get("properties").and_then(Value::as_object);
        let sends = |name: &str| sent.is_some_and(|m| m.contains_key(name));
        let takes = |name: &str| accepted.is_some_and(|m| m.contains_key(name));
        let sent_required = required(publisher);
        // A publisher that lists no properties and allows any says nothing about them.
        let publisher_silent = sent.is_none_or(serde_json::Map::is_empty)
            && publisher.get("additionalProperties").is_none();
        for name in required(subscriber) {
            if sent_required.contains(&name) {
                continue;
            }
            if sends(name) {
                self.report(format!(
                    "{}: the subscriber requires property `{name}`, which the publisher may leave out",
                    place(path)
                ));
            } else if !publisher_silent {
                self.report(format!(
                    "{}: the subscriber requires property `{name}`, which the publisher does not declare",
                    place(path)
                ));
            }
        }
        if subscriber.get("additionalProperties") == Some(&Value::Bool(false)) {
            for name in sent
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .filter(|k| !takes(k))
            {
                self.report(format!(
                    "{}: the publisher sends property `{name}`, which the subscriber refuses (it allows no other properties)",
                    place(path)
                ));
            }
        }
        for (name, sent_schema) in sent.into_iter().flatten() {
            if let Some(accepted_schema) = accepted.and_then(|m| m.get(name)) {
                self.compare(
                    sent_schema,
                    accepted_schema,
                    &format!("{path}/{name}"),
                    depth + 1,
                );
            }
        }
    }
}

/// Follows local `$ref`s (`#/$defs/Name`, any JSON pointer into the same document).
fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_HOPS {
        let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let Some(pointer) = target.strip_prefix('#') else {
            return schema;
        };
        match root.pointer(pointer) {
            Some(next) => schema = next,
            None => return schema,
        }
    }
    schema
}

/// A schema's `anyOf` or `oneOf` alternatives, if it is made of them alone (no `type` beside).
fn alternatives(schema: &Value) -> Option<&Vec<Value>> {
    if schema.get("type").is_some() {
        return None;
    }
    schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
        .filter(|branches| !branches.is_empty())
}

/// The JSON types a schema allows, if it says (`type`, or the values of `enum`/`const`, or the
/// union over `anyOf`/`oneOf` when every alternative says).
fn types(schema: &Value, root: &Value) -> Option<BTreeSet<String>> {
    types_at(schema, root, 0)
}

fn types_at(schema: &Value, root: &Value, depth: usize) -> Option<BTreeSet<String>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = resolve(schema, root);
    match schema.get("type") {
        Some(Value::String(t)) => return Some(BTreeSet::from([t.clone()])),
        Some(Value::Array(list)) => {
            return Some(
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            );
        }
        _ => {}
    }
    if let Some(value) = schema.get("const") {
        return Some(BTreeSet::from([type_of(value).to_owned()]));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| type_of(v).to_owned()).collect());
    }
    let branches = alternatives(schema)?;
    let mut all = BTreeSet::new();
    for branch in branches {
        all.extend(types_at(branch, root, depth + 1)?);
    }
    Some(all)
}

/// The JSON Schema type name of a value (`integer` for whole numbers).
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a set of accepted types takes `sent` (a `number` takes an `integer`).
fn accepts(accepted: &BTreeSet<String>, sent: &str) -> bool {
    accepted.contains(sent) || (sent == "integer" && accepted.contains("number"))
}

fn required(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn list(types: &BTreeSet<String>) -> String {
    types
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `the payload` for the root, `` at `/a/b` `` below it.
fn place(path: &str) -> String {
    if path.is_empty() {
        "the payload".to_owned()
    } else {
        format!("at `{path}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading(required: &[&str]) -> Value {
        json!({
            "type": "object",
            "properties": { "celsius": { "type": "number" }, "room": { "type": "string" } },
            "required": required,
        })
    }

    #[test]
    fn the_same_type_agrees() {
        assert!(differences(&reading(&["celsius"]), &reading(&["celsius"])).is_empty());
        // The publisher promising more than the subscriber needs is fine.
        assert!(differences(&reading(&["celsius", "room"]), &reading(&["celsius"])).is_empty());
    }

    #[test]
    fn another_top_level_type_is_named() {
        let found = differences(&json!({ "type": "string" }), &reading(&["celsius"]));
        assert_eq!(
            found,
            ["the payload: the publisher sends `string` where the subscriber accepts `object`"]
        );
    }

    #[test]
    fn an_integer_fits_a_number_but_not_the_other_way() {
        assert!(
            differences(&json!({ "type": "integer" }), &json!({ "type": "number" })).is_empty()
        );
        assert_eq!(
            differences(&json!({ "type": "number" }), &json!({ "type": "integer" })).len(),
            1
        );
    }

    #[test]
    fn a_required_property_the_publisher_may_omit_or_lacks_is_named() {
        let found = differences(&reading(&[]), &reading(&["celsius"]));
        assert_eq!(
            found,
            [
                "the payload: the subscriber requires property `celsius`, which the publisher may leave out"
            ]
        );
        let other = json!({ "type": "object", "properties": { "fahrenheit": { "type": "number" } }, "required": ["fahrenheit"] });
        let found = differences(&other, &reading(&["celsius"]));
        assert!(
            found[0].contains("`celsius`, which the publisher does not declare"),
            "{found:?}"
        );
    }

    #[test]
    fn property_types_are_compared_through_refs_with_their_path() {
        let publisher = json!({
            "type": "object",
            "properties": { "inner": { "$ref": "#/$defs/Inner" } },
            "required": ["inner"],
            "$defs": { "Inner": { "type": "object", "properties": { "level": { "type": "string" } }, "required": ["level"] } }
        });
        let subscriber = json!({
            "type": "object",
            "properties": { "inner": { "$ref": "#/$defs/Inner" } },
            "required": ["inner"],
            "$defs": { "Inner": { "type": "object", "properties": { "level": { "type": "integer" } }, "required": ["level"] } }
        });
        assert_eq!(
            differences(&publisher, &subscriber),
            [
                "at `/inner/level`: the publisher sends `string` where the subscriber accepts `integer`"
            ]
        );
    }

    #[test]
    fn an_optional_value_sent_to_a_required_one_may_be_null() {
        let publisher = json!({ "type": ["number", "null"] });
        let found = differences(&publisher, &json!({ "type": "number" }));
        assert_eq!(
            found,
            ["the payload: the publisher may send `null` where the subscriber accepts `number`"]
        );
        // schemars writes `Option<Struct>` as `anyOf: [{$ref}, {type: null}]`.
        let publisher = json!({ "anyOf": [{ "$ref": "#/$defs/R" }, { "type": "null" }], "$defs": { "R": reading(&["celsius"]) } });
        let found = differences(&publisher, &reading(&["celsius"]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("`null`"), "{found:?}");
        // ... and a subscriber taking an `Option` accepts both.
        let subscriber = json!({ "anyOf": [{ "$ref": "#/$defs/R" }, { "type": "null" }], "$defs": { "R": reading(&["celsius"]) } });
        assert!(differences(&publisher, &subscriber).is_empty());
        assert!(differences(&json!({ "type": "null" }), &subscriber).is_empty());
    }

    #[test]
    fn unknown_fields_refused_by_the_subscriber_are_named() {
        let mut subscriber = reading(&["celsius"]);
        subscriber["properties"]
            .as_object_mut()
            .unwrap()
            .remove("room");
        subscriber["additionalProperties"] = json!(false);
        let found = differences(&reading(&["celsius"]), &subscriber);
        assert!(
            found[0].contains("property `room`, which the subscriber refuses"),
            "{found:?}"
        );
    }

    #[test]
    fn a_side_that_says_nothing_agrees() {
        assert!(differences(&json!(true), &reading(&["celsius"])).is_empty());
        assert!(differences(&reading(&[]), &json!(true)).is_empty());
        assert!(differences(&json!({}), &json!({ "type": "string" })).is_empty());
    }

    #[test]
    fn enums_compare_by_their_values_types_and_arrays_by_items() {
        let publisher = json!({ "type": "array", "items": { "enum": ["low", "high"] } });
        let subscriber = json!({ "type": "array", "items": { "type": "integer" } });
        assert_eq!(
            differences(&publisher, &subscriber),
            ["at `/*`: the publisher sends `string` where the subscriber accepts `integer`"]
        );
    }

    #[test]
    fn a_recursive_type_ends() {
        let tree = json!({
            "$ref": "#/$defs/Tree",
            "$defs": { "Tree": { "type": "object", "properties": { "kids": { "type": "array", "items": { "$ref": "#/$defs/Tree" } } } } }
        });
        let cycle = json!({ "$ref": "#/a", "a": { "$ref": "#/a" } });
        assert!(differences(&tree, &tree).is_empty());
        assert!(differences(&cycle, &cycle).is_empty());
    }
}
