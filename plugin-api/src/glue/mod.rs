//! The glue between a [`Node`] type and the ABI: the exported root module, the objects the host
//! drives, panic containment; the per-thread "current node" that logging writes through is
//! [`crate::current`].
//!
//! Rules this module keeps, so that the host can unload a library for real:
//! - every entry point catches panics before they reach the boundary;
//! - the library's panic hook prints no backtrace (a symbolised backtrace pins memory for good);
//! - the only thread-locals are `const` `Cell`s (a raw pointer, a flag), which have no
//!   destructor and so never pin the library to a host thread.

use crate::Node;
use crate::abi::{
    CallbackError, DeclaredSchemas, HostBox, LogLevel, MessageView, NodeBox, NodeInit, NodeLib,
    NodeLib_Ref, NodeObject, NodeParts, RequestDecl, RequestErrorKind, RequestFailure,
    RequestOutcomes, RequestView, ServiceBox, ServiceDecl, ServiceObject, TimerDecl,
};
use crate::current::{HostScope, log_to_current_node};
use crate::message::Message;
use crate::node::{
    Context, ServiceEntry, ServiceFn, Services, SubscriptionFn, Subscriptions, TimerFn,
};
use crate::outcome::Flow;
use crate::request::{self, HandlerFn, Request, Requests, Waiting};
use crate::service::Service;
use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use abi_stable::prefix_type::WithMetadata;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Names a node type for export; implemented by [`export_node!`](crate::export_node).
pub trait NodeExport: Node {
    /// The node crate's package name.
    const CRATE_NAME: &'static str;
    /// The node type's name.
    const TYPE_NAME: &'static str;
}

struct ModuleFor<N>(std::marker::PhantomData<N>);

impl<N: NodeExport> ModuleFor<N> {
    const MODULE: &'static WithMetadata<NodeLib> = &WithMetadata::new(NodeLib {
        crate_name: RStr::from_str(N::CRATE_NAME),
        type_name: RStr::from_str(N::TYPE_NAME),
        new_node: new_node::<N>,
    });
}

/// The root module of node type `N`: what the host's loader gets from the library, and what
/// [`crate::testing`] drives in-process.
pub(crate) fn root_module<N: NodeExport>() -> NodeLib_Ref {
    NodeLib_Ref(ModuleFor::<N>::MODULE.static_as_prefix())
}

extern "C" fn root_module_loader<N: NodeExport>() -> RootModuleResult {
    __call_root_module_loader(root_module::<N>)
}

/// The root-module header for node type `N`, exported by [`export_node!`](crate::export_node).
pub const fn lib_header<N: NodeExport>() -> LibHeader {
    // SAFETY: `root_module_loader::<N>` returns the erased prefix of a `NodeLib_Ref`, which is the
    // module type named here, as `from_constructor` requires.
    unsafe {
        LibHeader::from_constructor::<NodeLib_Ref>(root_module_loader::<N>, CheckTypeLayout::Yes)
    }
}

/// Set by [`crate::testing`] only (never in a library `hm` loads): a panic outside a node
/// callback then goes to the previous hook, so that a failing test reads as usual.
static UNDER_TEST: AtomicBool = AtomicBool::new(false);

/// Called by [`crate::testing`] before it builds a node.
pub(crate) fn mark_under_test() {
    UNDER_TEST.store(true, Ordering::Relaxed);
}

fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let line = format!("panicked{place}: {}", panic_text(info.payload()));
            if log_to_current_node(LogLevel::Error, &line) {
                return;
            }
            if UNDER_TEST.load(Ordering::Relaxed) {
                previous(info);
            } else {
                eprintln!("hivemind node {line}");
            }
        }));
    });
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic with a non-string payload)".to_owned()
    }
}

/// Runs `call` with panics caught, turning both outcomes into the ABI's error type.
fn contain<T>(call: impl FnOnce() -> Result<T, String>) -> RResult<T, CallbackError> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(message)) => RResult::RErr(CallbackError {
            panicked: false,
            message: message.into(),
        }),
        Err(payload) => RResult::RErr(CallbackError {
            panicked: true,
            message: panic_text(payload.as_ref()).into(),
        }),
    }
}

extern "C" fn new_node<N: Node>(init: NodeInit<'_>) -> RResult<NodeParts, CallbackError> {
    install_panic_hook();
    let _scope = HostScope::enter(&init.host);
    contain(|| build_node::<N>(&init))
}

fn build_node<N: Node>(init: &NodeInit<'_>) -> Result<NodeParts, String> {
    let settings = serde_json::from_str(init.settings_json.as_str())
        .map_err(|e| format!("the host passed settings that are not JSON: {e}"))?;
    crate::store::Store::new(init.host.clone())
        .migrate(&N::migrations())
        .map_err(|e| e.to_string())?;
    let context = Context::new(init.name.as_str().to_owned(), settings, init.host.clone());
    let mut node = N::new(&context).map_err(|e| e.to_string())?;

    let mut services = Services::new(init.host.clone());
    node.services(&mut services);
    let mut subscriptions = Subscriptions::new();
    node.subscriptions(&mut subscriptions);
    let mut requests = Requests::new(init.host.clone());
    node.requests(&mut requests);
    let Requests {
        registered: handlers,
        waiting,
        ..
    } = requests;
    let (request_decls, handlers): (RVec<RequestDecl>, Vec<HandlerFn<N>>) = handlers
        .into_iter()
        .map(|(name, help, handler)| {
            let decl = RequestDecl {
                name: name.into(),
                help: help.into(),
            };
            (decl, handler)
        })
        .unzip();

    let Subscriptions { registered, timers } = subscriptions;
    let mut patterns = RVec::with_capacity(registered.len());
    let mut callbacks: Vec<SubscriptionFn<N>> = Vec::with_capacity(registered.len());
    let mut schemas = DeclaredSchemas::default();
    for (pattern, callback, schema) in registered {
        patterns.push(RString::from(pattern));
        callbacks.push(callback);
        schemas.subscriptions.push(schema.map(RString::from).into());
    }
    let (timer_decls, ticks): (RVec<TimerDecl>, Vec<TimerFn<N>>) = timers
        .into_iter()
        .map(|(name, every, callback)| {
            let decl = TimerDecl {
                name: name.into(),
                period_nanos: u64::try_from(every.as_nanos()).unwrap_or(u64::MAX),
            };
            (decl, callback)
        })
        .unzip();
    let entries = services.registered;
    let mut services = RVec::with_capacity(entries.len());
    for ServiceEntry {
        service,
        run,
        schema,
    } in entries
    {
        schemas.services.push(schema.map(RString::from).into());
        services.push(ServiceDecl {
            name: service.name().into(),
            runner: match run {
                Some(run) => ROption::RSome(ServiceBox::from_value(
                    ServiceRunner { service, run },
                    TD_Opaque,
                )),
                None => ROption::RNone,
            },
        });
    }
    let runner = NodeRunner {
        node,
        callbacks,
        ticks,
        host: init.host.clone(),
        handlers,
        waiting,
    };
    Ok(NodeParts {
        node: NodeBox::from_value(runner, TD_Opaque),
        services,
        subscriptions: patterns,
        timers: timer_decls,
        schemas,
        requests: request_decls,
    })
}

/// A node instance with its subscription, timer and request callbacks, driven by the host's
/// node thread.
struct NodeRunner<N> {
    node: N,
    callbacks: Vec<SubscriptionFn<N>>,
    ticks: Vec<TimerFn<N>>,
    host: HostBox,
    handlers: Vec<HandlerFn<N>>,
    waiting: std::sync::Arc<Waiting<N>>,
}

impl<N: Node> NodeObject for NodeRunner<N> {
    fn answer(&mut self, index: u32, view: RequestView<'_>) -> RResult<RString, RequestFailure> {
        let _scope = HostScope::deliver(&self.host);
        let Self { node, handlers, .. } = self;
        let name = view.name.as_str();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let handler = handlers.get_mut(index as usize).ok_or_else(|| {
                request::failure(
                    RequestErrorKind::NoResponder,
                    format!("this node has no request number {index} (`{name}`)"),
                )
            })?;
            let request = Request::new(
                name,
                view.node.as_str(),
                view.host.as_str(),
                view.args.as_str(),
            );
            handler(node, &request).map(RString::from)
        }));
        match outcome {
            Ok(Ok(reply)) => RResult::ROk(reply),
            Ok(Err(failure)) => RResult::RErr(failure),
            Err(payload) => RResult::RErr(request::failure(
                RequestErrorKind::Panicked,
                panic_text(payload.as_ref()),
            )),
        }
    }

    fn replied(&mut self, token: u64, outcome: RequestOutcomes) -> RResult<(), CallbackError> {
        let _scope = HostScope::deliver(&self.host);
        let Some(callback) = self.waiting.take(token) else {
            return RResult::ROk(());
        };
        let node = &mut self.node;
        contain(|| callback(node, outcome).map_err(|error| error.to_string()))
    }

    fn tick(&mut self, timer: u32) -> RResult<(), CallbackError> {
        let _scope = HostScope::deliver(&self.host);
        let Self { node, ticks, .. } = self;
        contain(|| {
            let tick = ticks
                .get_mut(timer as usize)
                .ok_or_else(|| format!("the host ticked timer {timer}, which this node lacks"))?;
            tick(node).map_err(|error| error.to_string())
        })
    }

    fn save_state(&mut self) -> RResult<ROption<RString>, CallbackError> {
        let _scope = HostScope::deliver(&self.host);
        let node = &mut self.node;
        contain(|| match node.save_state() {
            Ok(Some(state)) => Ok(ROption::RSome(state.to_string().into())),
            Ok(None) => Ok(ROption::RNone),
            Err(error) => Err(error.to_string()),
        })
    }

    fn restore_state(&mut self, state: RStr<'_>) -> RResult<(), CallbackError> {
        let _scope = HostScope::deliver(&self.host);
        let node = &mut self.node;
        contain(|| {
            let state = serde_json::from_str(state.as_str())
                .map_err(|e| format!("the saved state is not JSON: {e}"))?;
            node.restore_state(state).map_err(|error| error.to_string())
        })
    }

    fn deliver(
        &mut self,
        subscription: u32,
        message: MessageView<'_>,
    ) -> RResult<(), CallbackError> {
        let _scope = HostScope::deliver(&self.host);
        let Self {
            node, callbacks, ..
        } = self;
        contain(|| {
            let callback = callbacks
                .get_mut(subscription as usize)
                .ok_or_else(|| format!("this node has no subscription number {subscription}"))?;
            let message = Message::new(
                message.service.as_str(),
                message.node.as_str(),
                message.host.as_str(),
                message.payload.as_str(),
            );
            callback(node, &message).map_err(|error| error.to_string())
        })
    }
}

/// One service callback, driven by the host's thread for that service.
struct ServiceRunner {
    service: Service,
    run: ServiceFn,
}

impl ServiceObject for ServiceRunner {
    fn step(&mut self) -> RResult<Flow, CallbackError> {
        let _scope = HostScope::enter(self.service.host());
        let Self { service, run } = self;
        contain(|| run(service).map_err(|error| error.to_string()))
    }
}
