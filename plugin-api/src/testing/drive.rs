//! What a test does to a running [`TestNode`] and reads back: it delivers messages to the
//! subscriptions whose patterns match, runs one iteration of a service or one timer tick,
//! asks the node's request handlers and sets what the node's own requests get, and reads
//! what the node sent, logged, slept and asked.

use super::error::TestError;
use super::host::{Canned, TEST_SENDER};
use super::node::TestNode;
use super::records::{Asked, LogLine, Sent};
use crate::Level;
use crate::abi::{MessageView, RequestView};
use crate::glue::NodeExport;
use crate::outcome::{Flow, RequestErrorKind};
use crate::request::{RequestError, args_json};
use abi_stable::std_types::{RResult, RStr};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl<N: NodeExport> TestNode<N> {
    /// Asks the node's handler of request `name` with `args`, as the node [`TEST_SENDER`]
    /// would, and returns the reply as JSON. The errors are those the asker would get in a
    /// hive: [`HandlerError`](RequestErrorKind::HandlerError) and
    /// [`Panicked`](RequestErrorKind::Panicked) with the handler's message,
    /// [`InvalidArgs`](RequestErrorKind::InvalidArgs) for arguments that do not decode,
    /// [`NoResponder`](RequestErrorKind::NoResponder) for a name the node does not answer,
    /// [`TooLarge`](RequestErrorKind::TooLarge) for a reply over `max_payload_bytes`.
    pub fn request<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        args: &T,
    ) -> Result<Value, RequestError> {
        self.request_from(TEST_SENDER, name, args)
    }

    /// Like [`request`](Self::request), asked by node `node`.
    pub fn request_from<T: Serialize + ?Sized>(
        &mut self,
        node: &str,
        name: &str,
        args: &T,
    ) -> Result<Value, RequestError> {
        let json = args_json(name, args)?;
        let Some(index) = self.requests.iter().position(|r| r.name.as_str() == name) else {
            return Err(RequestError::new(
                RequestErrorKind::NoResponder,
                format!("node `{}` does not answer request `{name}`", self.name),
            ));
        };
        let host = RStr::from_str(TEST_SENDER);
        let view = RequestView {
            name: RStr::from_str(name),
            node: RStr::from_str(node),
            host,
            args: RStr::from_str(&json),
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match self.node.answer(index, view).into_result() {
            Ok(reply) => {
                let limit = self.recorder.max_payload_bytes.load(Ordering::Relaxed);
                if reply.len() > limit {
                    return Err(RequestError::new(
                        RequestErrorKind::TooLarge,
                        format!(
                            "the reply of node `{}` to request `{name}` is {} bytes, over the hive's limit of {limit} bytes ([messages] max_payload_bytes)",
                            self.name,
                            reply.len()
                        ),
                    ));
                }
                Ok(serde_json::from_str(reply.as_str()).unwrap_or(Value::Null))
            }
            Err(failure) => {
                let error = RequestError::from_failure(failure);
                self.recorder.log(
                    Level::Error,
                    format!("request `{name}` failed: {}", error.message()),
                );
                Err(error)
            }
        }
    }

    /// Answers every request named `name` that the node asks from now on with `reply`.
    pub fn reply_to<T: Serialize + ?Sized>(&mut self, name: &str, reply: &T) {
        let json = serde_json::to_string(reply).unwrap_or_else(|_| "null".to_owned());
        self.recorder
            .record()
            .canned
            .insert(name.to_owned(), Canned::Reply(json));
    }

    /// Fails every request named `name` that the node asks from now on, with `kind` and
    /// `message` (to test how the node takes a timeout, a restart, a handler's error).
    pub fn fail_to(&mut self, name: &str, kind: RequestErrorKind, message: &str) {
        self.recorder
            .record()
            .canned
            .insert(name.to_owned(), Canned::Fail(kind, message.to_owned()));
    }

    /// Every request the node has asked, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.recorder.record().asked.clone()
    }

    /// Runs the reply callbacks of the node's [`Asker`](crate::Asker) asks so far, in the order
    /// asked, as the node's delivery thread would; returns how many ran. The first callback's
    /// error is returned (the others still run).
    pub fn deliver_replies(&mut self) -> Result<usize, TestError> {
        let mut ran = 0;
        let mut first_error = None;
        loop {
            let replies = std::mem::take(&mut self.recorder.record().replies);
            if replies.is_empty() {
                break;
            }
            for (token, outcome) in replies {
                ran += 1;
                if let RResult::RErr(error) = self.node.replied(token, outcome) {
                    let error = TestError::from_callback("a reply callback", &error);
                    self.recorder.log(Level::Error, error.message().to_owned());
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(ran),
        }
    }

    /// Sets the largest payload the node may send (the hive's `[messages] max_payload_bytes`).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.set_max_payload_bytes(4);
    /// let error = node.deliver("in-a", "too long").unwrap_err();
    /// assert!(error.message().contains("over the hive's limit of 4 bytes"), "{error}");
    /// ```
    pub fn set_max_payload_bytes(&mut self, bytes: usize) {
        self.recorder
            .max_payload_bytes
            .store(bytes, Ordering::Relaxed);
    }

    /// Delivers `payload` (anything `Serialize`) as sent on `service` by the node
    /// [`TEST_SENDER`], to every subscription whose pattern matches, in registration order.
    /// Returns how many subscriptions received it.
    ///
    /// Every matching subscription runs even when one fails, as in a hive; each failure is
    /// logged as the host logs it, and the first is returned.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.deliver("in-a", "hi").unwrap(), 1, "one subscription matched");
    /// assert_eq!(node.deliver("elsewhere", "hi").unwrap(), 0);
    /// ```
    pub fn deliver<T: Serialize + ?Sized>(
        &mut self,
        service: &str,
        payload: &T,
    ) -> Result<usize, TestError> {
        let json = serde_json::to_string(payload)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        self.deliver_json_from(TEST_SENDER, service, &json)
    }

    /// Like [`deliver`](Self::deliver), with the message coming from node `node`.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver_from("keypad", "in-a", "hi").unwrap();
    /// assert_eq!(node.logs()[0].message, "echo hi from keypad");
    /// ```
    pub fn deliver_from<T: Serialize + ?Sized>(
        &mut self,
        node: &str,
        service: &str,
        payload: &T,
    ) -> Result<usize, TestError> {
        let json = serde_json::to_string(payload)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        self.deliver_json_from(node, service, &json)
    }

    /// Like [`deliver`](Self::deliver), with the payload as JSON text, passed on as it is (a
    /// hive only carries valid JSON; this is checked).
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver_json("numbers", "41").unwrap();
    /// assert!(node.deliver_json("numbers", "{not json").is_err());
    /// ```
    pub fn deliver_json(&mut self, service: &str, json: &str) -> Result<usize, TestError> {
        self.deliver_json_from(TEST_SENDER, service, json)
    }

    fn deliver_json_from(
        &mut self,
        node: &str,
        service: &str,
        json: &str,
    ) -> Result<usize, TestError> {
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| TestError::usage(format!("the test's payload is not JSON: {e}")))?;
        let view = MessageView {
            service: RStr::from_str(service),
            node: RStr::from_str(node),
            payload: RStr::from_str(json),
            host: RStr::from_str(TEST_SENDER),
        };
        let mut matched = 0;
        let mut first_error = None;
        for (index, pattern) in self.subscriptions.iter().enumerate() {
            if !pattern.matches(service) {
                continue;
            }
            matched += 1;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if let RResult::RErr(error) = self.node.deliver(index, view) {
                let what = format!("subscription `{}`", pattern.as_str());
                let error = TestError::from_callback(&what, &error);
                self.recorder.log(
                    Level::Error,
                    format!("{} (on a message from `{service}`)", error.message()),
                );
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(matched),
        }
    }

    /// Runs one iteration of the service named `name` (a `sleep_for` inside returns at once);
    /// returns what it said: run again, or stop.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// assert_eq!(node.run_service("count").unwrap(), Flow::Continue);
    /// assert_eq!(node.sent_on("count"), [json!(1)]);
    /// assert!(node.run_service("out").is_err(), "a publisher has no loop");
    /// ```
    pub fn run_service(&mut self, name: &str) -> Result<Flow, TestError> {
        let node = &self.name;
        let Some((_, runner)) = self.services.iter_mut().find(|(n, _)| n == name) else {
            return Err(TestError::usage(format!(
                "node `{node}` has no service `{name}`; it has: {}",
                self.services
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some(runner) = runner else {
            return Err(TestError::usage(format!(
                "`{name}` of node `{node}` is a publisher: it has no loop to run; send on it from a callback"
            )));
        };
        runner
            .step()
            .into_result()
            .map_err(|e| TestError::from_callback(&format!("service `{name}`"), &e))
    }

    /// Runs the timer named `name` once, as its period's end would.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("numbers", &3).unwrap();
    /// node.tick("tick").unwrap();
    /// assert_eq!(node.logs()[0].message, "seen 3");
    /// ```
    pub fn tick(&mut self, name: &str) -> Result<(), TestError> {
        let Some(index) = self.timers.iter().position(|t| t.name.as_str() == name) else {
            return Err(TestError::usage(format!(
                "node `{}` has no timer `{name}`",
                self.name
            )));
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.node
            .tick(index)
            .into_result()
            .map_err(|e| TestError::from_callback(&format!("timer `{name}`"), &e))
    }

    /// Every message the node has sent, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.run_service("count").unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// let services: Vec<String> = node.sent().into_iter().map(|s| s.service).collect();
    /// assert_eq!(services, ["count", "out"]);
    /// ```
    pub fn sent(&self) -> Vec<Sent> {
        self.recorder.record().sent.clone()
    }

    /// Every message the node has sent, in order, forgetting them.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.take_sent().len(), 1);
    /// assert!(node.sent().is_empty());
    /// ```
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.recorder.record().sent)
    }

    /// The payloads the node has sent on `service`, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "one").unwrap();
    /// node.deliver("in-b", "two").unwrap();
    /// assert_eq!(node.sent_on("out"), [json!("one"), json!("two")]);
    /// ```
    pub fn sent_on(&self, service: &str) -> Vec<Value> {
        self.recorder
            .record()
            .sent
            .iter()
            .filter(|sent| sent.service == service)
            .map(Sent::payload)
            .collect()
    }

    /// Every line the node's log got, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.logs()[0].message, "echo hi from test");
    /// ```
    pub fn logs(&self) -> Vec<LogLine> {
        self.recorder.record().logs.clone()
    }

    /// Every line the node's log got, in order, forgetting them.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.deliver("in-a", "hi").unwrap();
    /// assert_eq!(node.take_logs().len(), 1);
    /// assert!(node.logs().is_empty());
    /// ```
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.recorder.record().logs)
    }

    /// Every duration the node's services asked to sleep for, in order.
    ///
    /// ```
    /// # use hivemind::prelude::*;
    /// # use hivemind::testing::*;
    /// # use std::time::Duration;
    /// # use hivemind::fixture::Echo;
    /// let mut node = TestNode::<Echo>::new().unwrap();
    /// node.run_service("count").unwrap(); // returns at once
    /// assert_eq!(node.sleeps(), [Duration::from_secs(1)]);
    /// ```
    pub fn sleeps(&self) -> Vec<Duration> {
        self.recorder.record().sleeps.clone()
    }
}
