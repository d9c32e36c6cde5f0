//! The hive's web server: a page listing the nodes, and a small JSON API.
//!
//! | route                  | answer                                                  |
//! |------------------------|---------------------------------------------------------|
//! | `GET /`                | the page: the hive's nodes, services and subscriptions  |
//! | `GET /api/nodes`       | every node as JSON                                      |
//! | `GET /api/nodes/{name}`| one node, or 404 with a JSON error                      |
//! | `GET /api/topics`      | every service with its publishers and subscribers       |
//! | `GET /healthz`         | `ok`                                                    |

use crate::controller::{Controller, HiveSnapshot};
use crate::runtime::{NodeSnapshot, NodeStatus};
use anyhow::{Context as _, Result};
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use warp::Filter;
use warp::http::StatusCode;

/// Binds the hive's address, or says clearly why it cannot.
pub async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!(
            "cannot listen on {address}: is another hive running there? Stop it, or change [hive] port in config/hive.toml (0 picks a free port)"
        )
    })
}

/// Serves the page and the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<Controller>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(controller))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

fn routes(
    controller: Arc<Controller>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible>
+ Clone
+ Send
+ Sync
+ 'static {
    let with_controller = warp::any().map(move || controller.clone());
    let page = warp::path::end()
        .and(with_controller.clone())
        .map(|c: Arc<Controller>| warp::reply::html(render_page(&c.snapshot())));
    let nodes = warp::path!("api" / "nodes")
        .and(with_controller.clone())
        .map(|c: Arc<Controller>| warp::reply::json(&c.snapshot().nodes));
    let node = warp::path!("api" / "nodes" / String)
        .and(with_controller.clone())
        .map(|name: String, c: Arc<Controller>| {
            match c.snapshot().nodes.into_iter().find(|n| n.name == name) {
                Some(node) => warp::reply::with_status(warp::reply::json(&node), StatusCode::OK),
                None => not_found(&format!("there is no node named `{name}` in this hive")),
            }
        });
    let topics = warp::path!("api" / "topics")
        .and(with_controller)
        .map(|c: Arc<Controller>| warp::reply::json(&c.snapshot().topics));
    let health = warp::path!("healthz").map(|| "ok");
    let gets = warp::get().and(page.or(nodes).or(node).or(topics).or(health));
    gets.recover(|_rejection| async {
        Ok::<_, std::convert::Infallible>(not_found("no such page; try / or /api/nodes"))
    })
}

fn not_found(message: &str) -> warp::reply::WithStatus<warp::reply::Json> {
    warp::reply::with_status(
        warp::reply::json(&serde_json::json!({ "error": message })),
        StatusCode::NOT_FOUND,
    )
}

/// The hive's page, rendered on the server; it refreshes itself every few seconds.
fn render_page(hive: &HiveSnapshot) -> String {
    let mut html = String::with_capacity(4096);
    let name = escape(&hive.name);
    let _ = write!(
        html,
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="3">
<title>{name} · hivemind</title>
<style>{STYLE}</style></head>
<body><header><h1>{name}</h1><p>a hivemind hive · {count} node(s)</p></header><main>"#,
        count = hive.nodes.len()
    );
    if hive.nodes.is_empty() {
        html.push_str(
            "<p class=empty>No nodes yet. Create one with <code>hm create_node NAME</code> and enable it in <code>config/hive.toml</code>.</p>",
        );
    }
    for node in &hive.nodes {
        render_node(&mut html, node);
    }
    html.push_str("</main></body></html>\n");
    html
}

fn render_node(html: &mut String, node: &NodeSnapshot) {
    let status = match node.status {
        NodeStatus::Disabled => "disabled",
        NodeStatus::Loading => "loading",
        NodeStatus::Running => "running",
        NodeStatus::Failed => "failed",
        NodeStatus::Stuck => "stuck",
        NodeStatus::Stopped => "stopped",
    };
    let _ = write!(
        html,
        r#"<section class="node" id="node-{id}"><h2>{name} <span class="chip {status}">{status}</span></h2>"#,
        id = escape(&node.name),
        name = escape(&node.name),
    );
    if let Some(library) = &node.library {
        let _ = write!(
            html,
            "<p class=meta>{} · <code>{}</code> · API {}</p>",
            escape(&library.type_name),
            escape(&library.path.display().to_string()),
            escape(&library.api_version)
        );
    }
    if let Some(error) = &node.error {
        let _ = write!(html, "<pre class=error>{}</pre>", escape(error));
    }
    html.push_str("<div class=cols><div><h3>Services</h3>");
    if node.services.is_empty() {
        html.push_str("<p class=none>none</p>");
    }
    for service in &node.services {
        let _ = write!(
            html,
            "<p><code>{}</code> <span class=count>{} sent</span>{}</p>",
            escape(&service.name),
            service.sent,
            service
                .error
                .as_deref()
                .map(|e| format!(" <span class=bad>{}</span>", escape(e)))
                .unwrap_or_default()
        );
    }
    html.push_str("</div><div><h3>Subscriptions</h3>");
    if node.subscriptions.is_empty() {
        html.push_str("<p class=none>none</p>");
    }
    for subscription in &node.subscriptions {
        let _ = write!(
            html,
            "<p><code>{}</code> <span class=count>{} delivered · {} dropped · {} failed · {} panicked</span></p>",
            escape(&subscription.pattern),
            subscription.delivered,
            subscription.dropped,
            subscription.failed,
            subscription.panicked
        );
    }
    html.push_str("</div></div></section>");
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "
:root{--bg:#0f1419;--card:#171d24;--line:#263040;--text:#d8dee9;--dim:#8a96a8;--ok:#3fb950;--bad:#f85149;--warn:#d29922}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;background:var(--bg);color:var(--text)}
header{padding:24px 32px;border-bottom:1px solid var(--line)}h1{margin:0;font-size:26px}header p{margin:4px 0 0;color:var(--dim)}
main{padding:24px 32px;display:grid;gap:16px;grid-template-columns:repeat(auto-fill,minmax(420px,1fr))}
.node{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px}
h2{margin:0 0 4px;font-size:19px;display:flex;gap:10px;align-items:center}h3{margin:12px 0 4px;font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--dim)}
.meta{margin:0;color:var(--dim);font-size:13px}.cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}.cols p{margin:2px 0}
code{font:13px ui-monospace,monospace;background:#0b0f14;padding:1px 6px;border-radius:4px}
.count{color:var(--dim);font-size:12px;margin-left:6px}.none,.empty{color:var(--dim)}
.chip{font-size:12px;font-weight:600;padding:2px 10px;border-radius:999px;border:1px solid currentColor}
.running{color:var(--ok)}.failed{color:var(--bad)}.loading{color:var(--warn)}.disabled,.stopped{color:var(--dim)}
.error{white-space:pre-wrap;color:var(--bad);background:#1f1416;padding:8px 10px;border-radius:6px;font-size:12px}.bad{color:var(--bad);font-size:12px}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_nodes_report() {
        let hive = HiveSnapshot {
            name: "<gotham>".into(),
            nodes: vec![NodeSnapshot {
                error: Some("a <script> in an error".into()),
                ..NodeSnapshot::idle("batman", NodeStatus::Failed)
            }],
            topics: vec![],
        };
        let page = render_page(&hive);
        assert!(page.contains("&lt;gotham&gt;"));
        assert!(page.contains("a &lt;script&gt; in an error"));
        assert!(page.contains(r#"<span class="chip failed">failed</span>"#));
        assert!(!page.contains("<script>"));
    }
}
