// hivemind dashboard, the part every page shares: the element builder, formatting, the
// streams (/api/stream, the hive every second; /api/events, the event feed; /api/subscribe,
// messages), the hive key, POSTs to the API and a node's buttons. Each page is an ES module of
// its own in pages/ that imports this one and calls `start` with its drawing function. Plain
// DOM, no framework, no build step, no network beyond the hive itself. A hive may override it
// with static/app.js (which must then export what the pages import).

/** Where each page draws itself. */
export const main = document.getElementById('main');
const connection = document.getElementById('connection');

// ---- the element builder and formatting -----------------------------------------------

/** Builds an element: h('td', {class: 'num'}, 'text', child...). Text is never parsed as HTML. */
export function h(tag, attrs, ...children) {
  const svg = ['svg', 'g', 'rect', 'path', 'text', 'polyline', 'a', 'title', 'circle'].includes(tag) && attrs && attrs.svg;
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === 'svg' || value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    // Through the CSSOM: the page's content security policy refuses style attributes.
    else if (key === 'style') el.style.cssText = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
export const s = (tag, attrs, ...children) => h(tag, Object.assign({ svg: true }, attrs), ...children);

const fmt = new Intl.NumberFormat('en');
export const num = (n) => fmt.format(n);
export const rate = (r) => (r === undefined ? '–' : r >= 100 ? fmt.format(Math.round(r)) : r.toFixed(r >= 10 ? 1 : 2));
export const clock = (iso) => {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
};
export const since = (iso) => {
  const d = new Date(iso);
  if (isNaN(d)) return null;
  const secs = Math.max(0, (Date.now() - d.getTime()) / 1000);
  if (secs < 60) return `${Math.floor(secs)} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return d.toLocaleString();
};
export const chip = (status) => h('span', { class: `chip ${status}`, 'data-status': status }, status);
export const nodeUrl = (name) => `/nodes/${encodeURIComponent(name)}`;
// Nodes of other hosts of the mesh carry their host; they are shown, not steered, from here.
export const remote = (n) => (n.host && hive && hive.host && n.host !== hive.host
  ? h('span', { class: 'chip host', title: 'a node of another host of the mesh' }, `on ${n.host}`) : null);
// What the node's name is shown with: its host if remote, `isolated` if in a process of its own.
export const badge = (n) => remote(n)
  || (n.isolated ? h('span', { class: 'chip host', title: 'runs in a process of its own (isolate = true)' }, 'isolated') : null);
export const nodeLink = (n, attrs) => (remote(n) ? h('span', attrs, n.name) : h('a', { ...attrs, href: nodeUrl(n.name) }, n.name));
// Two hosts may each have a node of one name: another host's node is counted as `name@host`.
export const nodeKey = (n, host) => (n.host && host && n.host !== host ? `${n.name}@${n.host}` : n.name);

// A node whose crate does not build (hm dev): what runs meanwhile, in one line.
export const buildLine = (n) => (n.build_error
  ? `source does not build, ${n.build_error.running_last_good ? 'running the last good version' : 'nothing to run until it builds'}`
  : null);
export const buildBadge = (n) => (n.build_error
  ? h('span', { class: 'chip build-failed', 'data-build': 'failed', title: 'the compiler\'s errors are on the node\'s page' }, 'does not build') : null);
/** The compiler's errors for a node, as cargo rendered them, under the one-line summary. */
export function buildPanel(n) {
  if (!n.build_error) return null;
  const b = n.build_error;
  const count = b.errors ? `${b.errors} error${b.errors === 1 ? '' : 's'}` : 'not built';
  return h('section', { class: 'panel build-error', id: 'build-error' },
    h('h2', {}, buildLine(n)),
    h('p', { class: 'sub' }, `${count} at ${clock(b.time)}. Fix them and save: hm dev rebuilds at once.`),
    h('pre', { class: 'error' }, b.rendered));
}

export function toast(message, ok) {
  const el = h('div', { class: ok ? 'toast ok' : 'toast', role: 'status' }, message);
  document.body.append(el);
  setTimeout(() => el.remove(), ok ? 2500 : 6000);
}

// ---- connections ---------------------------------------------------------------------------

// Browsers allow six connections per host, and a page kept in the back/forward cache keeps
// its streams open: after a few pages the next one would wait for a free connection. So every
// stream is closed when the page is left, and a page restored from that cache starts afresh.
const connections = [];
export function open(connection) {
  connections.push(connection);
  return connection;
}
window.addEventListener('pagehide', () => connections.forEach((c) => c.close()));
window.addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });

/** A WebSocket on /api/subscribe: every message whose service matches `pattern`. */
export function subscribe(pattern) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return open(new WebSocket(`${scheme}://${location.host}/api/subscribe?pattern=${encodeURIComponent(pattern)}`));
}

// ---- the hive key (only when the hive requires one) -----------------------------------

// The key is typed once per browser session and sent once, in a header, to POST /api/session,
// which answers with a session cookie (HttpOnly, SameSite=Strict, gone when the browser
// closes): the key itself is kept nowhere, and never goes into a URL.
const SESSION = 'hivemind-session';
localStorage.removeItem('hivemind-key'); // where earlier versions kept the key itself
function showKeyBox() {
  if (document.querySelector('.keybox')) return;
  const input = h('input', { type: 'password', placeholder: 'hive key', autocomplete: 'off' });
  const box = h('label', { class: 'keybox', title: '[hive] key from config/hive.toml, needed for changes' }, 'key', input);
  input.addEventListener('change', async () => {
    const key = input.value.trim();
    input.value = '';
    const response = await fetch('/api/session', { method: 'POST', headers: { 'X-Hive-Key': key } });
    if (response.ok) {
      sessionStorage.setItem(SESSION, '1');
      box.remove();
      toast('key accepted for this browser session', true);
    } else toast('that is not the key of this hive');
  });
  connection.before(box);
}

/** POSTs to the API; resolves to {ok, status, body}. */
export async function post(path, text) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: text,
  });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (response.status === 401) {
    sessionStorage.removeItem(SESSION);
    showKeyBox();
  }
  return { ok: response.ok, status: response.status, body };
}

// ---- live state -------------------------------------------------------------------------

export let hive = null;
export const hiveRates = []; // the hive's messages/s, one per snapshot, for the sparkline
export let events = [];
// Events drawn from the page's embedded snapshot, which the feed's stream sends again first.
const embeddedEvents = new Map(); // eventKey(event) -> how many
const eventKey = (e) => [e.time, e.kind, e.node, e.message].join('\u0000');

/**
 * Messages per second, as the hive computes them (one place, `rate` on each service and
 * subscription over its last 10 s): every page shows the same number for the same node.
 * A node's or the hive's rate is the sum; undefined until the hive has a rate for each part.
 */
export function rates() {
  const out = { service: new Map(), nodeSent: new Map(), nodeDelivered: new Map(), hive: undefined, hiveDelivered: undefined };
  if (!hive) return out;
  const sum = (items) => (items.length && items.every((i) => typeof i.rate === 'number')
    ? items.reduce((a, i) => a + i.rate, 0) : undefined);
  let total = 0, delivered = 0, known = true, knownDelivered = true;
  for (const node of hive.nodes) {
    const key = nodeKey(node, hive.host);
    for (const svc of node.services) if (typeof svc.rate === 'number') out.service.set(`${key}\u0000${svc.name}`, svc.rate);
    const sent = sum(node.services);
    const handled = sum(node.subscriptions);
    if (sent !== undefined) { out.nodeSent.set(key, sent); total += sent; } else if (node.services.length) known = false;
    if (handled !== undefined) { out.nodeDelivered.set(key, handled); delivered += handled; } else if (node.subscriptions.length) knownDelivered = false;
  }
  out.hive = known ? total : undefined;
  out.hiveDelivered = knownDelivered ? delivered : undefined;
  return out;
}

function setConnection(state, text) {
  connection.className = `connection ${state}`;
  connection.textContent = text;
}

function stream() {
  const source = open(new EventSource('/api/stream'));
  source.addEventListener('hive', (e) => {
    hive = JSON.parse(e.data);
    const r = rates();
    if (r.hive !== undefined) {
      hiveRates.push(r.hive);
      while (hiveRates.length > 60) hiveRates.shift();
    }
    if (hive.key_required && !sessionStorage.getItem(SESSION)) showKeyBox();
    setConnection('live', 'live');
    render();
  });
  source.onerror = () => setConnection('lost', 'reconnecting…');
}

function feed() {
  const source = open(new EventSource('/api/events'));
  source.addEventListener('hive-event', (e) => {
    const event = JSON.parse(e.data);
    const key = eventKey(event);
    const seen = embeddedEvents.get(key) || 0;
    if (seen) { // already drawn from the embedded snapshot
      if (seen === 1) embeddedEvents.delete(key); else embeddedEvents.set(key, seen - 1);
      return;
    }
    embeddedEvents.clear(); // past the replayed ones: everything from here on is new
    events.push(event);
    while (events.length > 200) events.shift();
    if (hive) render();
  });
}

// ---- node actions ------------------------------------------------------------------------

async function act(name, action, button) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = `${label}…`;
  try {
    const result = await post(`/api/nodes/${encodeURIComponent(name)}/${action}`, '');
    if (result.ok) toast(`${name}: ${action}d`, true);
    else toast(`${name}: ${action} failed: ${(result.body && result.body.error) || result.status}`);
  } catch (err) {
    toast(`${name}: ${action} failed: ${err}`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

export function actions(node) {
  const buttons = [];
  if (remote(node)) return buttons; // steered from its own host's page
  const button = (action, label, cls) =>
    h('button', { class: cls, 'data-action': action, 'data-node': node.name, onclick: (e) => act(node.name, action, e.currentTarget) }, label);
  if (node.status === 'disabled' || node.status === 'stopped') buttons.push(button('enable', 'Enable', 'primary'));
  else buttons.push(button('disable', 'Disable', 'danger'));
  if (node.status !== 'disabled') buttons.push(button('reload', 'Reload'));
  return buttons;
}

export function libraryLine(node) {
  const lib = node.library;
  if (!lib) return null;
  const parts = [h('code', {}, lib.type_name), ' from ', h('code', {}, lib.crate_name), ` · API ${lib.api_version}`];
  if (lib.hash) parts.push(' · build ', h('code', {}, String(lib.hash).slice(0, 12)));
  if (lib.modified) parts.push(` · built ${since(lib.modified) || lib.modified}`);
  return h('span', { title: lib.path }, parts);
}

export function reloadLine(node) {
  if (!['running', 'failed', 'stuck', 'crashed'].includes(node.status)) return null;
  const loaded = node.loaded_at ? since(node.loaded_at) : null;
  const loads = node.loads;
  if (!loaded && loads === undefined) return null;
  const text = [];
  if (loaded) text.push(`loaded ${loaded}`);
  if (loads !== undefined) text.push(`${loads} load${loads === 1 ? '' : 's'}`);
  const restarts = node.services.reduce((a, svc) => a + (svc.restarts || 0), 0);
  if (restarts) text.push(`${restarts} service restart${restarts === 1 ? '' : 's'}`);
  if (node.crashes) text.push(`${node.crashes} crash${node.crashes === 1 ? '' : 'es'}${node.last_crash ? ` (last: ${node.last_crash})` : ''}`);
  return h('span', {}, text.join(' · '));
}

// ---- drawing --------------------------------------------------------------------------------

let render = () => {};

/**
 * Draws the page with `draw` (which reads `hive` and fills `main`): at once from the hive the
 * page came with, then again on each snapshot of /api/stream. With `feed`, the event feed is
 * followed too (the overview's).
 */
export function start(draw, { feed: followFeed = false } = {}) {
  render = () => {
    if (!hive) return;
    try { draw(); } catch (err) { console.error(err); }
  };
  // The page comes with the hive as it was when served: draw it now, then follow the stream.
  const initial = document.getElementById('initial');
  if (initial) {
    try { hive = JSON.parse(initial.textContent); } catch (_) { hive = null; }
    if (hive && Array.isArray(hive.events)) {
      events = hive.events.slice(-200);
      for (const e of hive.events) embeddedEvents.set(eventKey(e), (embeddedEvents.get(eventKey(e)) || 0) + 1);
      delete hive.events;
    }
    render();
  }
  stream();
  if (followFeed) feed();
}
