//! The hive's rules for names, in one place: which service names a node may register, and
//! the subscription patterns matched against them. The `hm` host applies them when it starts a
//! node and routes its messages, and [`crate::testing`] applies the same code, so a test
//! refuses and routes exactly what a hive would.
//!
//! Node code rarely needs this module: registering a service or a subscription is enough, and
//! a name or pattern the host refuses fails the node when it starts, with the reason.

use std::fmt;

pub use crate::pattern::{Pattern, PatternError};

/// Whether `name` may name a service: non-empty and printable (no control characters).
///
/// ```
/// use hivemind::names::is_service_name;
///
/// assert!(is_service_name("bat-signal/north"));
/// assert!(!is_service_name(""));
/// assert!(!is_service_name("bat\nsignal"));
/// ```
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_control)
}

/// Checks the service names node `node` registered, in registration order: each is non-empty
/// and printable ([`is_service_name`]), and no name comes twice.
///
/// ```
/// use hivemind::names::check_service_names;
///
/// assert!(check_service_names("gotham", ["bat-signal", "bat-signal-2"]).is_ok());
///
/// let twice = check_service_names("gotham", ["bat-signal", "bat-signal"]).unwrap_err();
/// assert_eq!(
///     twice.to_string(),
///     "node `gotham` registered the service `bat-signal` twice: service names are unique within a node"
/// );
/// let blank = check_service_names("gotham", [""]).unwrap_err();
/// assert_eq!(
///     blank.to_string(),
///     "node `gotham` registered a service named \"\": service names must be non-empty and printable"
/// );
/// ```
pub fn check_service_names<'a>(
    node: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ServiceNameError> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        let fault = if !is_service_name(name) {
            Some(Fault::Unprintable)
        } else if seen.contains(&name) {
            Some(Fault::Twice)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(ServiceNameError {
                node: node.to_owned(),
                service: name.to_owned(),
                fault,
            });
        }
        seen.push(name);
    }
    Ok(())
}

/// Why [`check_service_names`] refused a node's services: the node, the name and the rule it
/// breaks, in its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNameError {
    node: String,
    service: String,
    fault: Fault,
}

/// The rule a service name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Empty, or with a control character.
    Unprintable,
    /// Registered before by the same node.
    Twice,
}

impl fmt::Display for ServiceNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            node,
            service,
            fault,
        } = self;
        match fault {
            Fault::Unprintable => write!(
                f,
                "node `{node}` registered a service named {service:?}: service names must be non-empty and printable"
            ),
            Fault::Twice => write!(
                f,
                "node `{node}` registered the service `{service}` twice: service names are unique within a node"
            ),
        }
    }
}

impl std::error::Error for ServiceNameError {}

#[cfg(test)]
mod tests {
    use super::check_service_names;

    #[test]
    fn service_names_are_printable_and_unique() {
        assert!(check_service_names("n", []).is_ok());
        assert!(check_service_names("n", ["a", "b", "a-b/c", "über"]).is_ok());
        let unprintable = check_service_names("n", ["fine", "tab\there"]).unwrap_err();
        assert_eq!(
            unprintable.to_string(),
            "node `n` registered a service named \"tab\\there\": service names must be non-empty and printable"
        );
        let twice = check_service_names("n", ["a", "b", "a"]).unwrap_err();
        assert_eq!(
            twice.to_string(),
            "node `n` registered the service `a` twice: service names are unique within a node"
        );
    }
}
