//! The dashboard's pages: an HTML frame per page, filled and kept live by the page's own script
//! module, `assets/pages/<page>.js`, on top of the shared `assets/app.js`.
//!
//! The server writes what never changes while the page is open (the hive's name, the page's
//! title, the navigation); the script draws the rest from `/api/stream`, `/api/events` and the
//! log stream, so nothing reloads. Each page loads one module and preloads (`modulepreload`)
//! every module that one imports, so the browser fetches them side by side, not one import
//! after another.

/// One of the dashboard's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Page {
    /// `/`: the hive at a glance.
    Hive,
    /// `/nodes`: every node.
    Nodes,
    /// `/nodes/{name}`: one node, with its log.
    Node(String),
    /// `/topics`: who sends and who listens, as a graph.
    Topics,
    /// `/publish`: send a payload by hand, and watch messages.
    Publish,
    /// `/requests`: every request name with its responders and counters; ask one by hand.
    Requests,
}

impl Page {
    fn key(&self) -> &'static str {
        match self {
            Page::Hive => "hive",
            Page::Nodes | Page::Node(_) => "nodes",
            Page::Topics => "topics",
            Page::Publish => "publish",
            Page::Requests => "requests",
        }
    }

    /// The name `data-page` carries and the page's module is named after.
    fn module_key(&self) -> &'static str {
        match self {
            Page::Node(_) => "node",
            other => other.key(),
        }
    }

    /// The built-in modules the page's module imports, directly or not (paths under
    /// `/static/`): the page preloads them all. The tests check this against the modules.
    fn imports(&self) -> &'static [&'static str] {
        match self {
            Page::Publish => &["app.js", "schema-form.js"],
            _ => &["app.js"],
        }
    }

    fn title(&self) -> String {
        match self {
            Page::Hive => "Overview".to_owned(),
            Page::Nodes => "Nodes".to_owned(),
            Page::Node(name) => name.clone(),
            Page::Topics => "Topics".to_owned(),
            Page::Publish => "Publish".to_owned(),
            Page::Requests => "Requests".to_owned(),
        }
    }
}

/// The HTML of `page` for the hive named `hive`; `initial` is the hive's JSON (as
/// `/api/hive` gives it), embedded so the page draws at once, before its first live update.
pub(super) fn render(hive: &str, page: &Page, initial: &str) -> String {
    let initial = script_safe(initial);
    let hive = escape(hive);
    let title = escape(&page.title());
    let current = page.key();
    let node = match page {
        Page::Node(name) => format!(r#" data-node="{}""#, escape(name)),
        _ => String::new(),
    };
    let mut nav = String::new();
    for (key, href, label) in [
        ("hive", "/", "Overview"),
        ("nodes", "/nodes", "Nodes"),
        ("topics", "/topics", "Topics"),
        ("publish", "/publish", "Publish"),
        ("requests", "/requests", "Requests"),
    ] {
        let here = if key == current {
            r#" aria-current="page""#
        } else {
            ""
        };
        nav.push_str(&format!(r#"<a href="{href}"{here}>{label}</a>"#));
    }
    let page_key = page.module_key();
    let preloads: String = page
        .imports()
        .iter()
        .map(|module| format!("<link rel=\"modulepreload\" href=\"/static/{module}\">\n"))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {hive} · hivemind</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
{preloads}</head>
<body data-page="{page_key}"{node}>
<header class="top"><a class="brand" href="/"><img src="/static/favicon.svg" alt="" width="22" height="22"><span>{hive}</span></a>
<nav>{nav}</nav><span id="connection" class="connection" title="live updates">connecting…</span></header>
<main id="main"><noscript>The dashboard needs JavaScript; the same data is at <a href="/api/hive">/api/hive</a>.</noscript></main>
<script type="application/json" id="initial">{initial}</script>
<script type="module" src="/static/pages/{page_key}.js"></script>
</body></html>
"#
    )
}

/// The page a browser gets instead of a page it asked for without the key, on a hive that
/// listens beyond loopback: one field for the key, sent once to `POST /api/session` in a header
/// (the answer is a session cookie; the key is kept nowhere), then the page it asked for. Its
/// script and style are inline, allowed by `nonce` alone (the page's own CSP).
pub(super) fn key_page(hive: &str, nonce: &str) -> String {
    let hive = escape(hive);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Key · {hive} · hivemind</title>
<style nonce="{nonce}">body{{font:15px system-ui,sans-serif;background:#0f1115;color:#e6e6e6;display:grid;place-items:center;min-height:90vh}}form{{background:#181b22;padding:28px;border-radius:10px;display:grid;gap:12px;min-width:320px}}input,button{{font:inherit;padding:8px 10px;border-radius:6px;border:1px solid #333;background:#0f1115;color:inherit}}button{{background:#f5c542;color:#111;border:0;cursor:pointer}}#why{{color:#f27;min-height:1.2em}}</style>
</head>
<body>
<form id="key-form"><h1>{hive}</h1>
<label for="key">This hive needs its key (<code>[hive] key</code> in <code>config/hive.toml</code>).</label>
<input id="key" type="password" autocomplete="off" autofocus required>
<button type="submit">Open the dashboard</button><div id="why" role="status"></div></form>
<script nonce="{nonce}">
document.getElementById('key-form').addEventListener('submit', async (e) => {{
  e.preventDefault();
  const input = document.getElementById('key');
  const key = input.value.trim();
  input.value = '';
  const response = await fetch('/api/session', {{ method: 'POST', headers: {{ 'X-Hive-Key': key }} }});
  if (response.ok) {{ sessionStorage.setItem('hivemind-session', '1'); location.reload(); }}
  else document.getElementById('why').textContent = 'That is not the key of this hive.';
}});
</script>
</body></html>
"#
    )
}

/// JSON that cannot end its `<script>` element: `<`, `>` and `&` (found only inside JSON
/// strings) become `\u` escapes.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Escapes text for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_the_hive_and_node_names() {
        let page = render("<gotham>", &Page::Node("bat\"man".into()), "{}");
        assert!(page.contains("&lt;gotham&gt;"));
        assert!(page.contains(r#"data-node="bat&quot;man""#));
        assert!(page.contains(r#"data-page="node""#));
        assert!(!page.contains("<gotham>"));
    }

    #[test]
    fn the_current_page_is_marked_in_the_navigation() {
        let page = render("gotham", &Page::Topics, "{}");
        assert!(page.contains(r#"<a href="/topics" aria-current="page">Topics</a>"#));
        assert!(page.contains(r#"<a href="/nodes">Nodes</a>"#));
    }

    #[test]
    fn pages_hold_no_inline_script_or_style() {
        // The CSP (script-src 'self', style-src 'self') forbids both: only the JSON data block.
        let page = render("gotham", &Page::Node("batman".into()), "{}");
        assert_eq!(page.matches("<script").count(), 2, "{page}");
        assert!(page.contains(r#"<script type="application/json" id="initial">"#));
        assert!(page.contains(r#"<script type="module" src="/static/pages/node.js"></script>"#));
        assert!(page.contains(r#"<link rel="modulepreload" href="/static/app.js">"#));
        assert!(
            !page.contains("style=") && !page.contains("<style") && !page.contains(" onclick=")
        );
        let key = key_page("gotham", "n0nce");
        assert_eq!(key.matches(r#"nonce="n0nce""#).count(), 2);
    }

    #[test]
    fn the_requests_page_is_in_the_navigation_and_has_no_inline_script() {
        let page = render("gotham", &Page::Requests, "{}");
        assert!(page.contains(r#"<a href="/requests" aria-current="page">Requests</a>"#));
        assert!(page.contains(r#"data-page="requests""#));
        assert_eq!(page.matches("<script").count(), 2, "{page}");
    }

    /// Every page there is, for the tests that go over them all.
    fn every_page() -> [Page; 6] {
        [
            Page::Hive,
            Page::Nodes,
            Page::Node("batman".into()),
            Page::Topics,
            Page::Publish,
            Page::Requests,
        ]
    }

    #[test]
    fn each_page_loads_its_built_in_module_and_preloads_all_it_imports() {
        for page in every_page() {
            let module = format!("pages/{}.js", page.module_key());
            assert!(
                super::super::assets::built_in(&module).is_some(),
                "{module} is not built in"
            );
            let html = render("gotham", &page, "{}");
            assert!(
                html.contains(&format!(
                    r#"<script type="module" src="/static/{module}"></script>"#
                )),
                "{html}"
            );
            // What the module really imports, followed through the built-in modules.
            let mut wanted = Vec::new();
            let mut todo = vec![module.clone()];
            while let Some(next) = todo.pop() {
                for import in super::super::assets::module_imports(&next) {
                    if !wanted.contains(&import) {
                        todo.push(import.clone());
                        wanted.push(import);
                    }
                }
            }
            wanted.sort();
            let mut preloaded: Vec<String> =
                page.imports().iter().map(|m| (*m).to_owned()).collect();
            preloaded.sort();
            assert_eq!(
                preloaded, wanted,
                "what {module} imports is what it preloads"
            );
            for import in wanted {
                assert!(
                    html.contains(&format!(
                        r#"<link rel="modulepreload" href="/static/{import}">"#
                    )),
                    "{import} is not preloaded: {html}"
                );
            }
        }
    }

    #[test]
    fn the_embedded_hive_cannot_close_its_script() {
        let json = serde_json::json!({"error": "</script><script>alert(1)</script> & more"});
        let page = render("gotham", &Page::Hive, &json.to_string());
        assert!(!page.contains("</script><script>alert"));
        let start = page.find(r#"id="initial">"#).unwrap() + r#"id="initial">"#.len();
        let end = start + page[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back, json);
    }
}
