//! Part of the ABI layer, beside `glue`: the per-thread "current node", which node's host the
//! code on this thread runs under, and
//! whether it is a delivery-thread callback (where nothing may block).
//!
//! The glue enters a [`HostScope`] around every call into node code; logging
//! ([`log_to_current_node`]) and the blocking-request check ([`on_delivery_thread`]) read it.
//! The one thread-local is a `const` of `Cell`s (a raw pointer, a flag): it has no destructor,
//! so it never pins the library to a host thread. This module names only [`crate::abi`], so
//! that the safe layer ([`Service`](crate::Service), the log macros) can use it without
//! depending on the rest of the glue.

use crate::abi::{HostBox, LogLevel};
use abi_stable::std_types::RStr;
use std::cell::Cell;

/// What runs on this thread right now. One thread-local (a library's thread-locals are reached
/// through a call into the dynamic loader each time): a delivery enters and leaves it once.
struct Running {
    /// The host of the node whose code runs on this thread right now (null outside callbacks).
    host: Cell<*const HostBox>,
    /// Whether the code running on this thread is a node's delivery-thread callback (a
    /// subscription, timer, request handler or reply callback), where nothing may block.
    delivering: Cell<bool>,
}

thread_local! {
    static RUNNING: Running = const {
        Running {
            host: Cell::new(std::ptr::null()),
            delivering: Cell::new(false),
        }
    };
}

/// Marks `host` as the current node's host for the duration of one entry call.
pub(crate) struct HostScope {
    previous: *const HostBox,
    was_delivering: bool,
}

impl HostScope {
    pub(crate) fn enter(host: &HostBox) -> Self {
        RUNNING.with(|running| Self {
            previous: running.host.replace(host),
            was_delivering: running.delivering.get(),
        })
    }

    /// Like [`HostScope::enter`], for a call on the node's delivery thread.
    pub(crate) fn deliver(host: &HostBox) -> Self {
        RUNNING.with(|running| Self {
            previous: running.host.replace(host),
            was_delivering: running.delivering.replace(true),
        })
    }
}

impl Drop for HostScope {
    fn drop(&mut self) {
        RUNNING.with(|running| {
            running.host.set(self.previous);
            running.delivering.set(self.was_delivering);
        });
    }
}

/// Whether this thread runs a node's delivery-thread callback right now.
pub(crate) fn on_delivery_thread() -> bool {
    RUNNING.with(|running| running.delivering.get())
}

/// Logs through the host of the node running on this thread; false if there is none.
pub(crate) fn log_to_current_node(level: LogLevel, line: &str) -> bool {
    let host = RUNNING.with(|running| running.host.get());
    if host.is_null() {
        return false;
    }
    // SAFETY: a non-null pointer was stored by a `HostScope` that borrows the `HostBox` for as
    // long as the pointer stays set; the scope restores the previous value before it ends.
    let host = unsafe { &*host };
    host.log(level, RStr::from_str(line));
    true
}
