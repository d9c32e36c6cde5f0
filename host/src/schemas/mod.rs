//! The payload types this host's nodes declared, as JSON Schemas: by service (what it sends)
//! and by subscription (what it accepts).
//!
//! Contract:
//! - [`Schemas::declare`] records what one running instance declared (replacing what an
//!   earlier instance of that node declared) and returns what is wrong with it: schemas it
//!   ignores (too long, not JSON, not a valid JSON Schema) and mismatches between
//!   subscribers and publishers not reported before (each is reported once per process).
//!   [`Schemas::forget`] drops a node's declarations when it stops.
//! - [`Schemas::check`] validates a payload published from outside (the HTTP API, `hm send`)
//!   against the service's declared schema. The bus never calls it: messages between nodes are
//!   not checked.
//! - [`Schemas::schema`] is what `GET /api/topics/{service}/schema` serves: the schema text
//!   exactly as the node sent it (property order included).
//!
//! When several nodes declare a type for one service, the first by node name is the service's
//! schema.

pub(crate) mod compare;

use crate::bus::Pattern;
use hivemind::abi::MAX_SCHEMA_BYTES;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;

/// How many mismatches are remembered as reported (so that each is reported once); past
/// this, a mismatch may be reported again.
pub(crate) const MAX_REMEMBERED_MISMATCHES: usize = 10_000;

/// What one instance declared, by id, as its runtime hands it over: the schema texts of its
/// services and of its subscriptions (`None`: no type declared).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DeclaredTypes {
    /// By service id.
    pub(crate) services: Vec<Option<String>>,
    /// By subscription id.
    pub(crate) subscriptions: Vec<Option<String>>,
}

/// One declared schema: its text, its value and its compiled validator.
struct Declared {
    text: Arc<str>,
    value: Value,
    validator: jsonschema::Validator,
}

/// What is wrong with one node's declarations.
#[derive(Debug, Default)]
pub(crate) struct Declaration {
    /// Schemas that were ignored, and why: one sentence each, naming the node and the service
    /// or subscription.
    pub(crate) ignored: Vec<String>,
    /// Subscribers that cannot accept what a publisher declares, not reported before.
    pub(crate) mismatches: Vec<Mismatch>,
}

/// A subscriber's declared type that cannot accept what a publisher declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The subscribing node.
    pub(crate) subscriber: String,
    /// Its subscription's pattern.
    pub(crate) pattern: String,
    /// The node offering the service.
    pub(crate) publisher: String,
    /// The service.
    pub(crate) service: String,
    /// What differs, one sentence each (see [`compare::differences`]).
    pub(crate) differences: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node `{}` subscribes to `{}` with a payload type that cannot accept what node `{}` declares for service `{}`: {}",
            self.subscriber,
            self.pattern,
            self.publisher,
            self.service,
            self.differences.join("; ")
        )
    }
}

/// A payload that does not match its service's declared schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The service it was published on.
    pub service: String,
    /// The node whose declared type it was checked against.
    pub node: String,
    /// Where in the payload the first problem is, as a JSON pointer (`""`: the payload itself).
    pub path: String,
    /// What the first problem is.
    pub reason: String,
    /// How many problems there are in all.
    pub problems: usize,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.path.is_empty() {
            "the payload".to_owned()
        } else {
            format!("at `{}`", self.path)
        };
        write!(
            f,
            "the payload does not match the type node `{}` declares for service `{}`: {place}: {}",
            self.node, self.service, self.reason
        )?;
        if self.problems > 1 {
            write!(f, " (and {} more problems)", self.problems - 1)?;
        }
        Ok(())
    }
}

/// One node's declarations.
#[derive(Default)]
struct NodeTypes {
    services: Vec<(Arc<str>, Arc<Declared>)>,
    subscriptions: Vec<(Pattern, Arc<Declared>)>,
}

#[derive(Default)]
struct Registry {
    nodes: BTreeMap<String, NodeTypes>,
    reported: HashSet<String>,
}

/// The declared payload types of this host's running nodes.
#[derive(Default)]
pub(crate) struct Schemas {
    registry: Mutex<Registry>,
}

impl Schemas {
    /// No declarations.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records what node `node` declared: `services` and `patterns` are its services' names
    /// and its subscriptions' patterns by id, `types` their schemas by the same ids.
    pub(crate) fn declare(
        &self,
        node: &str,
        services: &[Arc<str>],
        patterns: &[Pattern],
        types: &DeclaredTypes,
    ) -> Declaration {
        let mut declaration = Declaration::default();
        let mut declared = NodeTypes::default();
        for (name, text) in services.iter().zip(&types.services) {
            let Some(text) = text else { continue };
            match compile(text) {
                Ok(schema) => declared.services.push((name.clone(), Arc::new(schema))),
                Err(reason) => declaration.ignored.push(format!(
                    "node `{node}` declared a payload type for service `{name}` whose schema is ignored: {reason}"
                )),
            }
        }
        for (pattern, text) in patterns.iter().zip(&types.subscriptions) {
            let Some(text) = text else { continue };
            match compile(text) {
                Ok(schema) => declared
                    .subscriptions
                    .push((pattern.clone(), Arc::new(schema))),
                Err(reason) => declaration.ignored.push(format!(
                    "node `{node}` declared a payload type for its subscription `{}` whose schema is ignored: {reason}",
                    pattern.as_str()
                )),
            }
        }
        let mut registry = self.registry.lock();
        registry.nodes.insert(node.to_owned(), declared);
        declaration.mismatches = registry.new_mismatches(node);
        declaration
    }

    /// Drops what node `node` declared (it stopped).
    pub(crate) fn forget(&self, node: &str) {
        self.registry.lock().nodes.remove(node);
    }

    /// The schema of `service`, as the node declaring it sent it, with that node's name.
    pub(crate) fn schema(&self, service: &str) -> Option<(String, Arc<str>)> {
        let registry = self.registry.lock();
        registry
            .publisher_of(service)
            .map(|(node, declared)| (node.to_owned(), declared.text.clone()))
    }

    /// The services that have a declared schema.
    pub(crate) fn typed_services(&self) -> BTreeSet<String> {
        let registry = self.registry.lock();
        registry
            .nodes
            .values()
            .flat_map(|types| types.services.iter().map(|(name, _)| name.to_string()))
            .collect()
    }

    /// Checks `payload`, published on `service` from outside, against the service's declared
    /// schema; a service with none accepts anything.
    pub(crate) fn check(&self, service: &str, payload: &Value) -> Result<(), Violation> {
        let Some((node, declared)) = ({
            let registry = self.registry.lock();
            registry
                .publisher_of(service)
                .map(|(node, declared)| (node.to_owned(), declared.clone()))
        }) else {
            return Ok(());
        };
        let mut errors = declared.validator.iter_errors(payload);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        let path = first.instance_path().as_str().to_owned();
        let reason = first.to_string();
        let problems = 1 + errors.count();
        Err(Violation {
            service: service.to_owned(),
            node,
            path,
            reason,
            problems,
        })
    }
}

impl Registry {
    fn publisher_of(&self, service: &str) -> Option<(&str, &Arc<Declared>)> {
        self.nodes.iter().find_map(|(node, types)| {
            types
                .services
                .iter()
                .find(|(name, _)| &**name == service)
                .map(|(_, declared)| (node.as_str(), declared))
        })
    }

    /// The mismatches involving `node` (as subscriber or publisher) not reported before.
    fn new_mismatches(&mut self, node: &str) -> Vec<Mismatch> {
        let mut found = Vec::new();
        for (subscriber, sub_types) in &self.nodes {
            for (publisher, pub_types) in &self.nodes {
                if subscriber != node && publisher != node {
                    continue;
                }
                for (pattern, accepted) in &sub_types.subscriptions {
                    for (service, sent) in &pub_types.services {
                        if !pattern.matches(service) {
                            continue;
                        }
                        let differences = compare::differences(&sent.value, &accepted.value);
                        if differences.is_empty() {
                            continue;
                        }
                        found.push(Mismatch {
                            subscriber: subscriber.clone(),
                            pattern: pattern.as_str().to_owned(),
                            publisher: publisher.clone(),
                            service: service.to_string(),
                            differences,
                        });
                    }
                }
            }
        }
        if self.reported.len() >= MAX_REMEMBERED_MISMATCHES {
            self.reported.clear();
        }
        found.retain(|mismatch| self.reported.insert(mismatch.to_string()));
        found
    }
}

/// Parses and compiles one declared schema.
fn compile(text: &str) -> Result<Declared, String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "it is {} bytes, over the host's limit of {MAX_SCHEMA_BYTES} bytes",
            text.len()
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
    if !value.is_object() && !value.is_boolean() {
        return Err("it is neither a JSON object nor a boolean".to_owned());
    }
    let validator = jsonschema::validator_for(&value)
        .map_err(|e| format!("it is not a valid JSON Schema ({e})"))?;
    Ok(Declared {
        text: text.into(),
        value,
        validator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading() -> String {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Reading",
            "type": "object",
            "properties": { "celsius": { "type": "number" }, "room": { "type": "string" } },
            "required": ["celsius"],
        })
        .to_string()
    }

    fn typed(services: &[Option<String>], subscriptions: &[Option<String>]) -> DeclaredTypes {
        DeclaredTypes {
            services: services.to_vec(),
            subscriptions: subscriptions.to_vec(),
        }
    }

    #[test]
    fn a_declared_schema_is_served_as_sent_and_checks_payloads() {
        let schemas = Schemas::new();
        let report = schemas.declare(
            "sensor",
            &["temperature".into(), "untyped".into()],
            &[],
            &typed(&[Some(reading()), None], &[]),
        );
        assert!(report.ignored.is_empty() && report.mismatches.is_empty());
        let (node, text) = schemas.schema("temperature").unwrap();
        assert_eq!((node.as_str(), &*text), ("sensor", reading().as_str()));
        assert!(schemas.schema("untyped").is_none());
        assert_eq!(
            schemas.typed_services(),
            BTreeSet::from(["temperature".to_owned()])
        );

        assert_eq!(
            schemas.check("temperature", &json!({ "celsius": 20.5 })),
            Ok(())
        );
        assert_eq!(schemas.check("untyped", &json!("anything")), Ok(()));
        let violation = schemas
            .check("temperature", &json!({ "celsius": "warm", "room": 3 }))
            .unwrap_err();
        assert_eq!(violation.service, "temperature");
        assert_eq!(violation.node, "sensor");
        assert!(
            ["/celsius", "/room"].contains(&violation.path.as_str()),
            "{violation:?}"
        );
        assert_eq!(violation.problems, 2);
        let text = violation.to_string();
        assert!(
            text.contains("for service `temperature`") && text.contains("(and 1 more problems)"),
            "{text}"
        );
        let missing = schemas.check("temperature", &json!({})).unwrap_err();
        assert_eq!(missing.path, "");
        assert!(missing.reason.contains("celsius"), "{missing:?}");

        schemas.forget("sensor");
        assert!(schemas.schema("temperature").is_none());
        assert_eq!(schemas.check("temperature", &json!(1)), Ok(()));
    }

    #[test]
    fn broken_schemas_are_ignored_with_the_reason() {
        let schemas = Schemas::new();
        let long = format!("\"{}\"", "x".repeat(MAX_SCHEMA_BYTES));
        let report = schemas.declare(
            "n",
            &["a".into(), "b".into(), "c".into(), "e".into(), "f".into()],
            &[Pattern::new("d").unwrap()],
            &typed(
                &[
                    Some("{".into()),
                    Some("42".into()),
                    Some(r#"{"type": 12}"#.into()),
                    // Never fetched: the validator is built without remote references.
                    Some(r#"{"$ref": "http://127.0.0.1:9/elsewhere.json"}"#.into()),
                    Some(r#"{"$ref": "file:///etc/passwd"}"#.into()),
                ],
                &[Some(long)],
            ),
        );
        let ignored = report.ignored.join("\n");
        assert_eq!(report.ignored.len(), 6, "{ignored}");
        assert!(
            ignored.contains("service `e`") && ignored.contains("service `f`"),
            "{ignored}"
        );
        assert!(
            ignored.contains("service `a`") && ignored.contains("not JSON"),
            "{ignored}"
        );
        assert!(ignored.contains("neither a JSON object"), "{ignored}");
        assert!(ignored.contains("not a valid JSON Schema"), "{ignored}");
        assert!(
            ignored.contains("subscription `d`") && ignored.contains("limit"),
            "{ignored}"
        );
        assert!(schemas.schema("a").is_none());
    }

    #[test]
    fn a_mismatch_is_reported_once_naming_both_nodes() {
        let schemas = Schemas::new();
        let wants_room = json!({
            "type": "object",
            "properties": { "celsius": { "type": "number" }, "room": { "type": "string" } },
            "required": ["celsius", "room"],
        })
        .to_string();
        let subscriber = || {
            schemas.declare(
                "display",
                &[],
                &[
                    Pattern::new("temp*").unwrap(),
                    Pattern::new("other").unwrap(),
                ],
                &typed(&[], &[Some(wants_room.clone()), Some(wants_room.clone())]),
            )
        };
        assert!(subscriber().mismatches.is_empty(), "no publisher yet");
        let report = schemas.declare(
            "sensor",
            &["temperature".into()],
            &[],
            &typed(&[Some(reading())], &[]),
        );
        assert_eq!(report.mismatches.len(), 1, "{:?}", report.mismatches);
        let text = report.mismatches[0].to_string();
        assert_eq!(
            text,
            "node `display` subscribes to `temp*` with a payload type that cannot accept what node `sensor` declares for service `temperature`: the payload: the subscriber requires property `room`, which the publisher may leave out"
        );
        // A reload of either side with the same types says nothing again.
        assert!(subscriber().mismatches.is_empty());
        let again = schemas.declare(
            "sensor",
            &["temperature".into()],
            &[],
            &typed(&[Some(reading())], &[]),
        );
        assert!(again.mismatches.is_empty());
    }
}
