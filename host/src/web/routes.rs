//! Which request goes to which handler (the table is in the module above), and the JSON error
//! for a request that matches none.

use super::api::{self, Action};
use super::pages::{self, Page};
use super::state::Web;
use super::{assets, live, metrics, reply, request, store, view};
use std::collections::HashMap;
use std::convert::Infallible;
use warp::Reply as _;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

type Route = BoxedFilter<(Response,)>;
/// A query string's names and values.
type Query = HashMap<String, String>;

/// The routes `$route, ...` as one filter: the first that takes the request answers it.
macro_rules! either {
    ($first:expr $(, $rest:expr)* $(,)?) => {
        $first $(.or($rest).unify())*
    };
}

/// One route: `route!(method state [path], filters... => answer)`, for `warp::path!(path)`
/// (`..` at its end leaves the rest of the path to the filters) and `warp::method()`, then the
/// filters (a query, the body...) in order, then the shared state. `answer` gets what the path
/// and the filters extract, then the state, and returns the response; after `then` it returns a
/// future of it, after `and_then` a future of a `Result` whose `Err` rejects the request (to the
/// next route, or [`refusal`]).
macro_rules! route {
    ($method:ident $web:ident [$($path:tt) / *] $(, $filter:expr)* => then $answer:expr) => {
        warp::path!($($path) / *).and(warp::$method())$(.and($filter))*.and(with($web)).then($answer)
    };
    ($method:ident $web:ident [$($path:tt) / *] $(, $filter:expr)* => and_then $answer:expr) => {
        warp::path!($($path) / *).and(warp::$method())$(.and($filter))*.and(with($web)).and_then($answer)
    };
    ($method:ident $web:ident [$($path:tt) / *] $(, $filter:expr)* => $answer:expr) => {
        warp::path!($($path) / *).and(warp::$method())$(.and($filter))*.and(with($web)).map($answer)
    };
}

/// Every route, with errors as JSON.
pub(super) fn all(web: Web) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    either![pages(&web), reads(&web), streams(&web), changes(&web)]
        .recover(refusal)
        .unify()
}

fn with(web: &Web) -> impl Filter<Extract = (Web,), Error = Infallible> + Clone + use<> {
    let web = web.clone();
    warp::any().map(move || web.clone())
}

fn page(web: &Web, page: Page) -> Response {
    let status = match &page {
        Page::Node(name)
            if !web
                .controller
                .snapshot()
                .nodes
                .iter()
                .any(|n| &n.name == name) =>
        {
            StatusCode::NOT_FOUND
        }
        _ => StatusCode::OK,
    };
    let mut hive = view::hive(web);
    // The feed too, so the page draws it at once (its event stream then adds only new ones).
    hive["events"] = serde_json::to_value(web.controller.events().recent()).unwrap_or_default();
    let name = hive["name"].as_str().unwrap_or_default().to_owned();
    let html = pages::render(&name, &page, &hive.to_string());
    warp::reply::with_status(warp::reply::html(html), status).into_response()
}

fn pages(web: &Web) -> Route {
    let favicon = warp::path!("favicon.ico").and(warp::get()).map(|| {
        warp::redirect::permanent(warp::http::Uri::from_static("/static/favicon.svg"))
            .into_response()
    });
    either![
        route!(get web [] => |w: Web| page(&w, Page::Hive)),
        route!(get web ["nodes"] => |w: Web| page(&w, Page::Nodes)),
        route!(get web ["nodes" / String] => |name, w: Web| page(&w, Page::Node(name))),
        route!(get web ["topics"] => |w: Web| page(&w, Page::Topics)),
        route!(get web ["publish"] => |w: Web| page(&w, Page::Publish)),
        route!(get web ["requests"] => |w: Web| page(&w, Page::Requests)),
        favicon,
        route!(get web ["static" / ..], warp::path::tail() =>
            then |tail: Tail, w: Web| assets::serve(w.static_dir(), tail.as_str().to_owned())),
    ]
    .boxed()
}

fn reads(web: &Web) -> Route {
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| "ok".into_response());
    either![
        route!(get web ["api" / "hive"] => |w: Web| api::hive(&w)),
        route!(get web ["api" / "nodes"] => |w: Web| api::nodes(&w)),
        route!(get web ["api" / "nodes" / String] => |name: String, w: Web| api::node(&w, &name)),
        route!(get web ["api" / "topics"] => |w: Web| api::topics(&w)),
        // `/api/topics/{service}/schema`, the service percent-encoded (it may hold `/`).
        route!(get web ["api" / "topics" / ..], warp::path::tail() =>
            and_then |tail: Tail, w: Web| async move { schema(&w, &tail) }),
        route!(get web ["api" / "mesh"] =>
            |w: Web| warp::reply::json(&w.controller.snapshot().mesh).into_response()),
        route!(get web ["api" / "requests"] => |w: Web| request::list(&w)),
        route!(get web ["api" / "nodes" / String / "store"], query() =>
            then |name, query, w: Web| store::list(w, name, query)),
        route!(get web ["api" / "nodes" / String / "store" / String] =>
            then |name, key, w: Web| store::get(w, name, key)),
        route!(get web ["api" / "nodes" / String / "query"], query() =>
            then |name, query, w: Web| store::query(w, name, query)),
        health,
        route!(get web ["metrics"] => |w: Web| metrics_text(&w)),
    ]
    .boxed()
}

/// `GET /api/topics/{service}/schema`; any other path under `/api/topics/` is not found.
fn schema(web: &Web, tail: &Tail) -> Result<Response, Rejection> {
    match tail.as_str().strip_suffix("/schema") {
        Some(service) if !service.is_empty() => Ok(api::schema(web, service)),
        _ => Err(warp::reject::not_found()),
    }
}

/// `GET /metrics`: the hive's counters and the web server's own, as Prometheus text.
fn metrics_text(web: &Web) -> Response {
    let mut text = metrics::render(&web.controller.snapshot(), &web.counters);
    text.push_str(&web.streams.metrics());
    text.push_str(&web.connections.metrics());
    text.push_str(&web.guesses.metrics());
    text.push_str(&web.in_hand.metrics());
    text.push_str(&request::metrics(web));
    warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4").into_response()
}

fn streams(web: &Web) -> Route {
    let upgrade = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    either![
        route!(get web ["api" / "events"] => |w: Web| live::events(&w)),
        route!(get web ["api" / "stream"] => |w: Web| live::snapshots(&w)),
        route!(get web ["api" / "nodes" / String / "log"], query() =>
            |name: String, query: Query, w: Web| live::log(&w, &name, &query)),
        route!(get web ["api" / "subscribe"], query(), upgrade =>
            |query: Query, ws, w: Web| live::subscribe(&w, &query, ws)),
    ]
    .boxed()
}

fn changes(web: &Web) -> Route {
    either![
        route!(post web ["api" / "publish" / ..], warp::path::tail(), warp::body::stream() =>
            then |service: Tail, body, w: Web| api::publish(w, service.as_str().to_owned(), Box::pin(body))),
        route!(post web ["api" / "nodes" / String / Action] =>
            then |name, action, w: Web| api::act(w, name, action)),
        route!(post web ["api" / "request" / ..], warp::path::tail(), query(), warp::body::stream() =>
            then |name: Tail, query, body, w: Web| request::ask(w, name.as_str().to_owned(), query, Box::pin(body))),
        route!(put web ["api" / "nodes" / String / "store" / String], warp::body::stream() =>
            then |name, key, body, w: Web| store::put(w, name, key, Box::pin(body))),
        route!(delete web ["api" / "nodes" / String / "store" / String] =>
            then |name, key, w: Web| store::delete(w, name, key)),
        route!(post web ["api" / "backup"], query() =>
            then |query, w: Web| store::backup(w, query)),
    ]
    .boxed()
}

/// The query string, as its names and values.
fn query() -> impl Filter<Extract = (Query,), Error = Rejection> + Clone {
    warp::query::<Query>()
}

/// Requests no route took: JSON errors that say what exists.
async fn refusal(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, message) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such page: the pages are /, /nodes, /topics, /publish and /requests; the API is under /api (see the README)",
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        (
            StatusCode::BAD_REQUEST,
            "the query string could not be read",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "wrong method: reads are GET, changes are POST (a store key also takes PUT and DELETE)",
        )
    } else {
        (StatusCode::BAD_REQUEST, "the request could not be handled")
    };
    Ok(reply::error(status, message))
}
