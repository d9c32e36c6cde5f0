//! Which request goes to which handler (the table is in the module above), and the JSON error
//! for a request that matches none.

use super::api::Action;
use super::pages::{self, Page};
use super::{Web, api, assets, live, metrics, request};
use std::collections::HashMap;
use std::convert::Infallible;
use warp::Reply as _;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

type Route = BoxedFilter<(Response,)>;

/// Every route, with errors as JSON.
pub(super) fn all(web: Web) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let routes = pages(&web)
        .or(reads(&web))
        .unify()
        .or(streams(&web))
        .unify()
        .or(changes(&web))
        .unify();
    routes.recover(refusal).unify()
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
    let mut hive = api::hive_value(web);
    // The feed too, so the page draws it at once (its event stream then adds only new ones).
    hive["events"] = serde_json::to_value(web.controller.events().recent()).unwrap_or_default();
    let name = hive["name"].as_str().unwrap_or_default().to_owned();
    let html = pages::render(&name, &page, &hive.to_string());
    warp::reply::with_status(warp::reply::html(html), status).into_response()
}

fn pages(web: &Web) -> Route {
    let hive = warp::path::end()
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| page(&w, Page::Hive));
    let nodes = warp::path!("nodes")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| page(&w, Page::Nodes));
    let node = warp::path!("nodes" / String)
        .and(warp::get())
        .and(with(web))
        .map(|name: String, w: Web| page(&w, Page::Node(name)));
    let topics = warp::path!("topics")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| page(&w, Page::Topics));
    let publish = warp::path!("publish")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| page(&w, Page::Publish));
    let requests = warp::path!("requests")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| page(&w, Page::Requests));
    let favicon = warp::path!("favicon.ico").and(warp::get()).map(|| {
        warp::redirect::permanent(warp::http::Uri::from_static("/static/favicon.svg"))
            .into_response()
    });
    let files = warp::path("static")
        .and(warp::path::tail())
        .and(warp::get())
        .and(with(web))
        .then(|tail: warp::path::Tail, w: Web| {
            assets::serve(w.static_dir(), tail.as_str().to_owned())
        });
    (hive
        .or(nodes)
        .unify()
        .or(node)
        .unify()
        .or(topics)
        .unify()
        .or(publish)
        .unify()
        .or(requests)
        .unify()
        .or(favicon)
        .unify()
        .or(files)
        .unify())
    .boxed()
}

fn reads(web: &Web) -> Route {
    let hive = warp::path!("api" / "hive")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| api::hive(&w));
    let nodes = warp::path!("api" / "nodes")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| api::nodes(&w));
    let node = warp::path!("api" / "nodes" / String)
        .and(warp::get())
        .and(with(web))
        .map(|name: String, w: Web| api::node(&w, &name));
    let topics = warp::path!("api" / "topics")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| api::topics(&w));
    // `/api/topics/{service}/schema`, the service percent-encoded (it may hold `/`).
    let schema = warp::path("api")
        .and(warp::path("topics"))
        .and(warp::path::tail())
        .and(warp::get())
        .and(with(web))
        .and_then(|tail: warp::path::Tail, w: Web| async move {
            match tail.as_str().strip_suffix("/schema") {
                Some(service) if !service.is_empty() => Ok(api::schema(&w, service)),
                _ => Err(warp::reject::not_found()),
            }
        });
    let mesh = warp::path!("api" / "mesh")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| warp::reply::json(&w.controller.snapshot().mesh).into_response());
    let requests = warp::path!("api" / "requests")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| request::list(&w));
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| "ok".into_response());
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| {
            let mut text = metrics::render(&w.controller.snapshot(), &w.counters);
            text.push_str(&w.streams.metrics());
            text.push_str(&w.connections.metrics());
            text.push_str(&request::metrics(&w));
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                .into_response()
        });
    (hive
        .or(nodes)
        .unify()
        .or(node)
        .unify()
        .or(topics)
        .unify()
        .or(schema)
        .unify()
        .or(mesh)
        .unify()
        .or(requests)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify())
    .boxed()
}

fn streams(web: &Web) -> Route {
    let events = warp::path!("api" / "events")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| live::events(&w));
    let snapshots = warp::path!("api" / "stream")
        .and(warp::get())
        .and(with(web))
        .map(|w: Web| live::snapshots(&w));
    let log = warp::path!("api" / "nodes" / String / "log")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with(web))
        .map(|name: String, query: HashMap<String, String>, w: Web| live::log(&w, &name, &query));
    let upgrade = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    let subscribe = warp::path!("api" / "subscribe")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(upgrade)
        .and(with(web))
        .map(|query: HashMap<String, String>, ws, w: Web| live::subscribe(&w, &query, ws));
    (events
        .or(snapshots)
        .unify()
        .or(log)
        .unify()
        .or(subscribe)
        .unify())
    .boxed()
}

fn changes(web: &Web) -> Route {
    let publish = warp::path("api")
        .and(warp::path("publish"))
        .and(warp::path::tail())
        .and(warp::post())
        .and(warp::body::stream())
        .and(with(web))
        .then(|service: warp::path::Tail, body, w: Web| async move {
            api::publish(w, service.as_str().to_owned(), Box::pin(body)).await
        });
    let act = warp::path!("api" / "nodes" / String / Action)
        .and(warp::post())
        .and(with(web))
        .then(|name: String, action, w: Web| api::act(w, name, action));
    let ask = warp::path("api")
        .and(warp::path("request"))
        .and(warp::path::tail())
        .and(warp::post())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::body::stream())
        .and(with(web))
        .then(
            |name: warp::path::Tail, query: HashMap<String, String>, body, w: Web| async move {
                request::ask(w, name.as_str().to_owned(), query, Box::pin(body)).await
            },
        );
    publish.or(act).unify().or(ask).unify().boxed()
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
            "wrong method: reads are GET, changes are POST",
        )
    } else {
        (StatusCode::BAD_REQUEST, "the request could not be handled")
    };
    Ok(api::error(status, message))
}
