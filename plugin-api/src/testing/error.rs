//! Why a call into a [`TestNode`](super::TestNode) failed: a [`TestError`] says which
//! callback, how (an `Err`, a panic, or a test's own mistake: [`TestErrorKind`]) and with the
//! message `hm` would log.

use crate::abi::CallbackError;
use std::fmt;

/// What kind of failure a [`TestError`] is.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// assert_eq!(node.deliver("in-a", "fail").unwrap_err().kind(), TestErrorKind::Failed);
/// assert_eq!(node.deliver("in-a", "panic").unwrap_err().kind(), TestErrorKind::Panicked);
/// assert_eq!(node.run_service("nope").unwrap_err().kind(), TestErrorKind::Usage);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestErrorKind {
    /// The node's code returned an `Err`.
    Failed,
    /// The node's code panicked; the panic was caught in the node's glue, as in a hive.
    Panicked,
    /// The test asked for something the node does not have (a service or timer name), or gave
    /// settings or a payload that are not valid.
    Usage,
}

/// Why a call into a [`TestNode`](super::TestNode) failed.
///
/// ```
/// # use hivemind::prelude::*;
/// # use hivemind::testing::*;
/// # use std::time::Duration;
/// # use hivemind::fixture::Echo;
/// let mut node = TestNode::<Echo>::new().unwrap();
/// let error: TestError = node.deliver("in-a", "fail").unwrap_err();
/// assert_eq!(error.to_string(), "subscription `in-*` failed: told to fail");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestError {
    kind: TestErrorKind,
    message: String,
}

impl TestError {
    pub(super) fn usage(message: String) -> Self {
        Self {
            kind: TestErrorKind::Usage,
            message,
        }
    }

    pub(super) fn from_callback(what: &str, error: &CallbackError) -> Self {
        let (kind, how) = if error.panicked {
            (TestErrorKind::Panicked, "panicked")
        } else {
            (TestErrorKind::Failed, "failed")
        };
        Self {
            kind,
            message: format!("{what} {how}: {}", error.message),
        }
    }

    /// What kind of failure it is.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.tick("no-such-timer").unwrap_err().kind(), TestErrorKind::Usage);
    /// ```
    pub fn kind(&self) -> TestErrorKind {
        self.kind
    }

    /// Whether the node's code panicked.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert!(node.deliver("in-a", "panic").unwrap_err().panicked());
    /// assert!(!node.deliver("in-a", "fail").unwrap_err().panicked());
    /// ```
    pub fn panicked(&self) -> bool {
        self.kind == TestErrorKind::Panicked
    }

    /// What went wrong: which callback, how, and the node's error or panic message.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// let error = node.deliver("in-a", "panic").unwrap_err();
    /// assert_eq!(error.message(), "subscription `in-*` panicked: told to panic");
    /// // The panic's line is in the node's log, as in its log file in a hive.
    /// assert!(node.logs().iter().any(|l| l.message.starts_with("panicked at ")));
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TestError {}
