//! The dashboard in a real headless Chromium: the example nodes show up, a click on Disable
//! changes a node's status without reloading the page, the node page's log grows by itself,
//! and every page is saved as a screenshot in `target/test-output/dashboard/` for people to
//! look at.
//!
//! At first sight, with live updates held back so only what the page came with can show: the
//! overview draws its nodes and its event feed at once (never "Nothing has happened yet" when
//! things have happened), and every page shows the rate the hive computed for a node (one
//! place). The publish page has no example posing as a value in its fields and watches
//! messages from the start, without a click.
//!
//! Every page loads its own script module (with the shared ones it imports) and draws itself
//! with no error, no failed load and nothing against the content security policy.

use hivemind_tests::browser::Browser;
use hivemind_tests::{Hive, output_dir};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Run before each page's own scripts: live updates never arrive (EventSource and WebSocket
/// connect nowhere), and any moment the page says "Nothing has happened yet" is noted.
const FROZEN: &str = r#"
window.sawNothingYet = false;
new MutationObserver(() => {
  if (document.body && document.body.textContent.includes('Nothing has happened yet')) window.sawNothingYet = true;
}).observe(document, { subtree: true, childList: true, characterData: true });
window.EventSource = class { constructor() {} addEventListener() {} close() {} };
window.WebSocket = class { constructor() {} close() {} };
"#;

/// A script fragment: `shown(r)`, a rate as the page formats it, and `embedded(node)`, the
/// node's rate (sum of its services' `rate`) in the snapshot the page came with.
const RATES: &str = r#"
const fmt = new Intl.NumberFormat('en');
const shown = (r) => (r === undefined ? '–' : r >= 100 ? fmt.format(Math.round(r)) : r.toFixed(r >= 10 ? 1 : 2));
const hive = JSON.parse(document.getElementById('initial').textContent);
const embedded = (name) => {
  const services = hive.nodes.find((n) => n.name === name).services;
  return services.every((s) => typeof s.rate === 'number') ? services.reduce((a, s) => a + s.rate, 0) : undefined;
};
"#;

#[test]
fn the_dashboard_shows_steers_and_streams_the_example_hive() {
    let shots = output_dir("dashboard");
    let hive = Hive::new();
    hive.configure(
        "[nodes.batsignal]\nenabled = true\ninterval_secs = 0.4\n\n[nodes.batman]\nenabled = true\n",
    );
    hive.install("batsignal");
    hive.install("batman");
    let running = hive.run(&[]);
    let browser = Browser::start(1360, 860);

    // Overview: both nodes, live rates, the event feed.
    browser.open(&format!("{}/", running.url));
    browser.wait_until(
        "the overview lists both nodes and the feed has their loads",
        WAIT,
        "return document.querySelectorAll('tr[data-node]').length === 2 \
         && document.querySelectorAll('.feed li').length >= 2 \
         && document.querySelector('.tile .value').textContent.startsWith('2');",
    );
    // Let a few snapshots arrive so the rates and the sparkline have data.
    std::thread::sleep(Duration::from_millis(3500));
    browser.screenshot(&shots.join("overview.png"));

    // First sight, from the embedded snapshot alone.
    let frozen = browser.before_each_page(FROZEN);
    browser.open(&format!("{}/", running.url));
    let first = browser.eval(&format!(
        "{RATES} return {{ rows: document.querySelectorAll('tr[data-node]').length, \
           feed: document.querySelectorAll('.feed li').length, nothingYet: window.sawNothingYet, \
           rate: document.querySelector('tr[data-node=batsignal] td:nth-child(3)').textContent, \
           expected: shown(embedded('batsignal')) }};"
    ));
    assert_eq!(first["rows"], 2, "both nodes at first paint: {first}");
    assert!(
        first["feed"].as_u64().unwrap() >= 2,
        "the feed (both loads) at first paint: {first}"
    );
    assert_eq!(
        first["nothingYet"], false,
        "the overview never said nothing had happened: {first}"
    );
    assert_ne!(first["rate"], "–", "the hive has a rate by now: {first}");
    assert_eq!(
        first["rate"], first["expected"],
        "the overview shows the hive's rate"
    );
    browser.open(&format!("{}/nodes", running.url));
    let cards = browser.eval(&format!(
        "{RATES} return {{ rate: document.querySelector('article.card[data-node=batsignal] .facts div:nth-child(3) b').textContent, \
           expected: shown(embedded('batsignal')) }};"
    ));
    assert_eq!(
        cards["rate"], cards["expected"],
        "the nodes page shows the same rate: {cards}"
    );
    browser.open(&format!("{}/nodes/batsignal", running.url));
    let node = browser.eval(&format!(
        "{RATES} return {{ rate: document.querySelector('main table tbody tr td:nth-child(3)').textContent, \
           expected: shown(embedded('batsignal')) }};"
    ));
    assert_eq!(
        node["rate"], node["expected"],
        "the node's page shows the same rate: {node}"
    );
    browser.forget_script(&frozen);

    // Nodes: both example nodes, then Disable on batman changes its chip in place.
    browser.open(&format!("{}/nodes", running.url));
    browser.wait_until(
        "both example nodes are shown as running",
        WAIT,
        "return ['batsignal', 'batman'].every(n => { \
           const chip = document.querySelector(`article.card[data-node=${n}] .chip`); \
           return chip && chip.dataset.status === 'running'; });",
    );
    browser.screenshot(&shots.join("nodes.png"));
    browser.eval("window.stillTheSamePage = true; return true;");
    browser.click("button[data-action=disable][data-node=batman]");
    browser.wait_until(
        "batman's status turns to disabled",
        WAIT,
        "const chip = document.querySelector('article.card[data-node=batman] .chip'); \
         return chip !== null && chip.dataset.status === 'disabled';",
    );
    assert_eq!(
        browser.eval("return window.stillTheSamePage === true;"),
        true,
        "the page was reloaded"
    );
    assert_eq!(running.node("batman")["status"], "disabled");
    // The toast fades; the enable button takes the place of disable.
    browser.wait_until(
        "an Enable button is offered for batman",
        WAIT,
        "return document.querySelector('button[data-action=enable][data-node=batman]') !== null;",
    );
    browser.screenshot(&shots.join("nodes-after-disable.png"));
    browser.click("button[data-action=enable][data-node=batman]");
    browser.wait_until(
        "batman runs again",
        WAIT,
        "const chip = document.querySelector('article.card[data-node=batman] .chip'); \
         return chip !== null && chip.dataset.status === 'running';",
    );

    // batsignal's page: its log grows while the page is open.
    browser.open(&format!("{}/nodes/batsignal", running.url));
    browser.wait_until(
        "the log pane shows lines",
        WAIT,
        "return document.querySelectorAll('#log > div').length > 0;",
    );
    let before = browser.eval("return document.querySelectorAll('#log > div').length;");
    browser.eval("window.stillTheSamePage = true; return true;");
    browser.wait_until(
        "new log lines arrive without a reload",
        WAIT,
        &format!(
            "return window.stillTheSamePage === true \
             && document.querySelectorAll('#log > div').length >= {} + 2 \
             && document.querySelector('#log > div:last-child').textContent.includes('the bat signal is shining');",
            before.as_u64().unwrap()
        ),
    );
    browser.wait_until(
        "the last payload of bat-signal-main is shown",
        WAIT,
        "return [...document.querySelectorAll('.payload')].some(p => p.textContent.includes('Batman! We need help!'));",
    );
    browser.screenshot(&shots.join("node-batsignal.png"));

    // batman's page: his store panel shows his count of saves, as the store holds it.
    browser.open(&format!("{}/nodes/batman", running.url));
    browser.wait_until(
        "batman's store panel lists `saves` with a count",
        WAIT,
        "const row = [...document.querySelectorAll('#store-keys tbody tr')] \
           .find(r => r.querySelector('code')?.textContent === 'saves'); \
         return row !== undefined && Number(row.querySelector('.payload').textContent) >= 1 \
           && document.querySelector('#store h2').textContent.includes('data/batman.db');",
    );

    browser.open(&format!("{}/topics", running.url));
    browser.wait_until(
        "the topic graph is drawn",
        WAIT,
        "return document.querySelectorAll('.graph svg .service').length === 1 \
         && document.querySelectorAll('.graph svg .edge').length >= 1;",
    );
    browser.screenshot(&shots.join("topics.png"));

    // Publish by hand, watching the service at the same time.
    browser.open(&format!("{}/publish", running.url));
    browser.wait_until(
        "the publish form is ready",
        WAIT,
        "return document.querySelector('#service') !== null;",
    );
    let form = browser.eval(
        "const s = document.querySelector('#service'); \
         return { placeholder: s.getAttribute('placeholder'), value: s.value, \
           known: document.querySelector('#known-services').textContent };",
    );
    assert_eq!(
        form["placeholder"],
        serde_json::Value::Null,
        "no example poses as a value"
    );
    assert_eq!(form["value"], "");
    assert!(
        form["known"].as_str().unwrap().contains("bat-signal-main"),
        "the services offered are named: {form}"
    );
    browser.wait_until(
        "the watcher runs without a click",
        WAIT,
        "return document.querySelector('#watch-status').textContent.startsWith('watching *');",
    );
    browser.eval(
        "document.querySelector('#service').value = 'bat-signal-manual'; \
         document.querySelector('#payload').value = '{\"from\": \"the dashboard\"}'; return true;",
    );
    std::thread::sleep(Duration::from_millis(300));
    browser.click("form.form button[type=submit]");
    browser.wait_until(
        "the message is published and seen by the watcher",
        WAIT,
        "return document.querySelector('#publish-result').className.includes('ok') \
         && [...document.querySelectorAll('.messages .payload')].some(p => p.textContent.includes('the dashboard'));",
    );
    browser.screenshot(&shots.join("publish.png"));

    for name in [
        "overview",
        "nodes",
        "nodes-after-disable",
        "node-batsignal",
        "topics",
        "publish",
    ] {
        let size = std::fs::metadata(shots.join(format!("{name}.png")))
            .unwrap()
            .len();
        assert!(size > 10_000, "{name}.png is only {size} bytes");
    }
}

/// Run before each page's own scripts: every Content-Security-Policy violation is counted.
const CSP_WATCH: &str = r#"
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective));
"#;

/// A service that declares its payload type gets a form built from its JSON Schema on the
/// publish page: one field per property, of the property's kind, filling the raw JSON editor
/// (which stays); what it publishes reaches the subscribers, and nothing breaks the page's
/// content security policy. A node's page lists its timers with their counts.
#[test]
fn the_publish_page_builds_a_form_from_a_declared_schema() {
    let shots = output_dir("dashboard-schema-form");
    let hive = Hive::new();
    let tap = hive.file("tap.jsonl");
    hive.configure(&format!(
        "[nodes.sensor]\nenabled = true\nlibrary = \"probe\"\npublish_to = \"readings\"\npublisher_type = \"reading\"\n\n\
         [nodes.tap]\nenabled = true\nlibrary = \"probe\"\nsubscriptions = [\"readings\"]\npublish_to = \"plain\"\ntick_ms = 100\nrecord = {}\n",
        hivemind_tests::toml_path(&tap)
    ));
    hive.install("probe");
    let running = hive.run(&[]);
    assert!(
        hivemind_tests::eventually(WAIT, || ["sensor", "tap"]
            .iter()
            .all(|n| running.node(n)["status"] == "running")),
        "{}",
        running.stderr()
    );
    let browser = Browser::start(1360, 860);
    browser.before_each_page(CSP_WATCH);
    browser.open(&format!("{}/publish", running.url));
    browser.wait_until(
        "the typed service is offered",
        WAIT,
        "return document.querySelector('#known-services').textContent.includes('readings');",
    );
    browser.click("button.pick[data-service=readings]");
    browser.wait_until(
        "the fields of Reading are shown",
        WAIT,
        "return document.querySelector('#schema-form[data-service=readings] #field-celsius') !== null;",
    );
    let fields = browser.eval(
        "const f = (id) => document.querySelector(`#field-${id}`); \
         return { celsius: f('celsius').type, room: f('room').type, faulty: f('faulty').type, \
           required: f('celsius').required, optional: f('room').required, \
           hint: f('celsius').parentElement.textContent, \
           raw: document.querySelector('#payload') !== null };",
    );
    assert_eq!(fields["celsius"], "number", "{fields}");
    assert_eq!(fields["room"], "text", "{fields}");
    assert_eq!(fields["faulty"], "checkbox", "{fields}");
    assert_eq!(fields["required"], true, "celsius is required: {fields}");
    assert_eq!(fields["optional"], false, "room may be left out: {fields}");
    assert!(
        fields["hint"]
            .as_str()
            .unwrap()
            .contains("Degrees Celsius."),
        "the doc comment is the field's hint: {fields}"
    );
    assert_eq!(fields["raw"], true, "the raw JSON editor stays");

    // Typing in the fields writes the payload.
    browser.eval(
        "const set = (id, v) => { const el = document.querySelector(`#field-${id}`); el.value = v; \
           el.dispatchEvent(new Event('input', { bubbles: true })); }; \
         set('celsius', '21.5'); set('room', 'hall'); return true;",
    );
    let payload = browser.eval("return JSON.parse(document.querySelector('#payload').value);");
    assert_eq!(
        payload,
        serde_json::json!({ "celsius": 21.5, "room": "hall", "faulty": false })
    );
    browser.screenshot(&shots.join("publish-form.png"));
    browser.click("form.form button[type=submit]");
    browser.wait_until(
        "it is published, with no warning",
        WAIT,
        "const r = document.querySelector('#publish-result'); \
         return r.className === 'result ok' && r.textContent.startsWith('published on readings');",
    );
    assert!(
        hivemind_tests::eventually(WAIT, || hivemind_tests::received_from(&tap, "readings")
            == [serde_json::json!({ "celsius": 21.5, "room": "hall", "faulty": false })]),
        "{:?}",
        hivemind_tests::records(&tap)
    );

    // A payload edited by hand into the wrong type is published with the hive's warning shown.
    browser
        .eval("document.querySelector('#payload').value = '{\"celsius\": \"warm\"}'; return true;");
    browser.click("form.form button[type=submit]");
    browser.wait_until(
        "the warning is shown",
        WAIT,
        "const r = document.querySelector('#publish-result'); \
         return r.className === 'result warn' && r.textContent.includes('/celsius');",
    );

    // A service with no declared type: no generated fields, the raw editor alone.
    browser.click("button.pick[data-service=plain]");
    browser.wait_until(
        "the generated fields are gone",
        WAIT,
        "return document.querySelector('#schema-form').childElementCount === 0;",
    );
    assert_eq!(
        browser.eval("return window.cspViolations;"),
        serde_json::json!([]),
        "nothing on the page breaks its content security policy"
    );

    // The tap's timer is counted on its page, and its count goes up without a reload.
    browser.open(&format!("{}/nodes/tap", running.url));
    browser.wait_until(
        "the timer is listed with its runs",
        WAIT,
        "const row = document.querySelector('#timers tr[data-timer=tick]'); \
         return row !== null && Number(row.children[2].textContent.replace(/,/g, '')) > 0;",
    );
    let first = browser.eval(
        "return Number(document.querySelector('#timers tr[data-timer=tick]').children[2].textContent.replace(/,/g, ''));",
    );
    browser.wait_until(
        "the count goes up",
        WAIT,
        &format!(
            "return Number(document.querySelector('#timers tr[data-timer=tick]').children[2].textContent.replace(/,/g, '')) > {first};"
        ),
    );
    browser.screenshot(&shots.join("node-timers.png"));
}

/// Run before each page's own scripts: every script error, failed load (a module, a preload),
/// rejected promise, `console.error` (where a page's drawing reports what threw) and
/// Content-Security-Policy violation is noted in `window.pageErrors`.
const ERROR_WATCH: &str = r#"
window.pageErrors = [];
window.addEventListener('error', (e) => {
  const from = e.target && e.target !== window ? (e.target.src || e.target.href) : null;
  window.pageErrors.push(from ? `could not load ${from}` : `${e.message} (${e.filename}:${e.lineno})`);
}, true);
window.addEventListener('unhandledrejection', (e) => window.pageErrors.push(`rejected: ${e.reason}`));
const consoleError = console.error;
console.error = (...args) => { window.pageErrors.push(args.map(String).join(' ')); consoleError.apply(console, args); };
document.addEventListener('securitypolicyviolation', (e) => window.pageErrors.push(`CSP ${e.violatedDirective}: ${e.blockedURI}`));
"#;

/// Each page is an ES module of its own importing the shared `app.js`: every one of them loads,
/// draws what makes it that page, goes live on the hive's stream, and reports no error at all.
#[test]
fn every_page_loads_its_module_and_draws_itself_without_an_error() {
    let hive = Hive::new();
    hive.configure(
        "[nodes.batsignal]\nenabled = true\ninterval_secs = 0.4\n\n[nodes.batman]\nenabled = true\n",
    );
    hive.install("batsignal");
    hive.install("batman");
    let running = hive.run(&[]);
    let browser = Browser::start(1360, 860);
    browser.before_each_page(ERROR_WATCH);
    for (path, module, drawn) in [
        (
            "/",
            "hive",
            "document.querySelector('main h1')?.textContent === 'test-hive' \
             && document.querySelectorAll('.tile').length === 6 \
             && document.querySelectorAll('tr[data-node]').length === 2",
        ),
        (
            "/nodes",
            "nodes",
            "document.querySelectorAll('article.card[data-node]').length === 2 \
             && document.querySelector('button[data-node=batman]') !== null",
        ),
        (
            "/nodes/batsignal",
            "node",
            "document.querySelector('main h1')?.textContent.startsWith('batsignal') \
             && document.querySelector('#log') !== null \
             && document.querySelector('pre.settings') !== null",
        ),
        (
            "/topics",
            "topics",
            "document.querySelector('main h1')?.textContent === 'Topics' \
             && document.querySelectorAll('.graph svg .service').length === 1",
        ),
        (
            "/publish",
            "publish",
            "document.querySelector('#service') !== null \
             && document.querySelector('#watch-status').textContent.startsWith('watching *')",
        ),
        (
            "/requests",
            "requests",
            "document.querySelector('main h1')?.textContent === 'Requests' \
             && document.querySelector('#request-rows') !== null \
             && document.querySelector('#request-name') !== null",
        ),
    ] {
        browser.open(&format!("{}{path}", running.url));
        let settled = format!(
            "return window.pageErrors.length > 0 || (({drawn}) \
               && document.querySelector('#connection').textContent === 'live');"
        );
        let done = hivemind_tests::eventually(WAIT, || browser.eval(&settled) == true);
        let seen = browser.eval(&format!(
            "return {{ errors: window.pageErrors, drawn: !!({drawn}), \
               connection: document.querySelector('#connection').textContent, \
               scripts: performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname) \
                 .filter((p) => p.endsWith('.js')) }};"
        ));
        assert_eq!(seen["errors"], serde_json::json!([]), "{path}: {seen}");
        assert!(
            done && seen["drawn"] == true,
            "{path} did not draw itself: {seen}"
        );
        assert_eq!(seen["connection"], "live", "{path} did not go live: {seen}");
        // Its own module and the shared one, each fetched once (the preload is what the
        // import uses).
        let scripts: Vec<&str> = seen["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        let own = format!("/static/pages/{module}.js");
        for wanted in [own.as_str(), "/static/app.js"] {
            assert_eq!(
                scripts.iter().filter(|s| **s == wanted).count(),
                1,
                "{path}: {wanted} fetched once: {seen}"
            );
        }
    }
}
