// hivemind dashboard: draws each page from /api/stream (the hive, every second), /api/events
// (the event feed) and, on a node's page, its log stream. Plain DOM, no framework, no network
// beyond the hive itself. A hive may override it with static/app.js.
(() => {
  'use strict';

  const body = document.body;
  const page = body.dataset.page;
  const nodeName = body.dataset.node;
  const main = document.getElementById('main');
  const connection = document.getElementById('connection');

  // ---- small helpers -------------------------------------------------------------------

  /** Builds an element: h('td', {class: 'num'}, 'text', child...). Text is never parsed as HTML. */
  function h(tag, attrs, ...children) {
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
  const s = (tag, attrs, ...children) => h(tag, Object.assign({ svg: true }, attrs), ...children);

  const fmt = new Intl.NumberFormat('en');
  const num = (n) => fmt.format(n);
  const rate = (r) => (r === undefined ? '–' : r >= 100 ? fmt.format(Math.round(r)) : r.toFixed(r >= 10 ? 1 : 2));
  const clock = (iso) => {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
  };
  const since = (iso) => {
    const d = new Date(iso);
    if (isNaN(d)) return null;
    const secs = Math.max(0, (Date.now() - d.getTime()) / 1000);
    if (secs < 60) return `${Math.floor(secs)} s ago`;
    if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
    if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
    return d.toLocaleString();
  };
  const chip = (status) => h('span', { class: `chip ${status}`, 'data-status': status }, status);
  const nodeUrl = (name) => `/nodes/${encodeURIComponent(name)}`;
  // Nodes of other hosts of the mesh carry their host; they are shown, not steered, from here.
  const remote = (n) => (n.host && hive && hive.host && n.host !== hive.host
    ? h('span', { class: 'chip host', title: 'a node of another host of the mesh' }, `on ${n.host}`) : null);
  // What the node's name is shown with: its host if remote, `isolated` if in a process of its own.
  const badge = (n) => remote(n)
    || (n.isolated ? h('span', { class: 'chip host', title: 'runs in a process of its own (isolate = true)' }, 'isolated') : null);
  const nodeLink = (n, attrs) => (remote(n) ? h('span', attrs, n.name) : h('a', { ...attrs, href: nodeUrl(n.name) }, n.name));
  // Two hosts may each have a node of one name: another host's node is counted as `name@host`.
  const nodeKey = (n, host) => (n.host && host && n.host !== host ? `${n.name}@${n.host}` : n.name);

  // A node whose crate does not build (hm dev): what runs meanwhile, in one line.
  const buildLine = (n) => (n.build_error
    ? `source does not build, ${n.build_error.running_last_good ? 'running the last good version' : 'nothing to run until it builds'}`
    : null);
  const buildBadge = (n) => (n.build_error
    ? h('span', { class: 'chip build-failed', 'data-build': 'failed', title: 'the compiler\'s errors are on the node\'s page' }, 'does not build') : null);
  /** The compiler's errors for a node, as cargo rendered them, under the one-line summary. */
  function buildPanel(n) {
    if (!n.build_error) return null;
    const b = n.build_error;
    const count = b.errors ? `${b.errors} error${b.errors === 1 ? '' : 's'}` : 'not built';
    return h('section', { class: 'panel build-error', id: 'build-error' },
      h('h2', {}, buildLine(n)),
      h('p', { class: 'sub' }, `${count} at ${clock(b.time)}. Fix them and save: hm dev rebuilds at once.`),
      h('pre', { class: 'error' }, b.rendered));
  }

  function toast(message, ok) {
    const el = h('div', { class: ok ? 'toast ok' : 'toast', role: 'status' }, message);
    document.body.append(el);
    setTimeout(() => el.remove(), ok ? 2500 : 6000);
  }

  // ---- connections ---------------------------------------------------------------------------

  // Browsers allow six connections per host, and a page kept in the back/forward cache keeps
  // its streams open: after a few pages the next one would wait for a free connection. So every
  // stream is closed when the page is left, and a page restored from that cache starts afresh.
  const connections = [];
  function open(connection) {
    connections.push(connection);
    return connection;
  }
  window.addEventListener('pagehide', () => connections.forEach((c) => c.close()));
  window.addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });

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
  async function post(path, text) {
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

  let hive = null;
  const hiveRates = []; // the hive's messages/s, one per snapshot, for the sparkline
  let events = [];
  // Events drawn from the page's embedded snapshot, which the feed's stream sends again first.
  const embeddedEvents = new Map(); // eventKey(event) -> how many
  const eventKey = (e) => [e.time, e.kind, e.node, e.message].join('\u0000');
  const lastPayload = new Map(); // service -> {payload, node, time}

  /**
   * Messages per second, as the hive computes them (one place, `rate` on each service and
   * subscription over its last 10 s): every page shows the same number for the same node.
   * A node's or the hive's rate is the sum; undefined until the hive has a rate for each part.
   */
  function rates() {
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

  function actions(node) {
    const buttons = [];
    if (remote(node)) return buttons; // steered from its own host's page
    const button = (action, label, cls) =>
      h('button', { class: cls, 'data-action': action, 'data-node': node.name, onclick: (e) => act(node.name, action, e.currentTarget) }, label);
    if (node.status === 'disabled' || node.status === 'stopped') buttons.push(button('enable', 'Enable', 'primary'));
    else buttons.push(button('disable', 'Disable', 'danger'));
    if (node.status !== 'disabled') buttons.push(button('reload', 'Reload'));
    return buttons;
  }

  function libraryLine(node) {
    const lib = node.library;
    if (!lib) return null;
    const parts = [h('code', {}, lib.type_name), ' from ', h('code', {}, lib.crate_name), ` · API ${lib.api_version}`];
    if (lib.hash) parts.push(' · build ', h('code', {}, String(lib.hash).slice(0, 12)));
    if (lib.modified) parts.push(` · built ${since(lib.modified) || lib.modified}`);
    return h('span', { title: lib.path }, parts);
  }

  function reloadLine(node) {
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

  // ---- pages -------------------------------------------------------------------------------

  function sparkline(values) {
    const w = 160, hgt = 28;
    if (values.length < 2) return s('svg', { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none' });
    const max = Math.max(1, ...values);
    const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${hgt - 2 - (v / max) * (hgt - 4)}`).join(' ');
    return s('svg', { viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none' },
      s('polyline', { points: pts, fill: 'none', stroke: '#f0b429', 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
  }

  function tile(label, value, unit, extra, cls) {
    return h('div', { class: `tile ${cls || ''}` }, h('div', { class: 'label' }, label),
      h('div', { class: 'value' }, value, unit ? h('small', {}, unit) : null), extra || null);
  }

  function eventFeed() {
    if (!events.length) return h('p', { class: 'empty' }, 'Nothing has happened yet. Loads, reloads, failures and drops show here as they happen.');
    return h('ul', { class: 'feed' }, events.slice().reverse().map((e) =>
      h('li', {}, h('time', { datetime: e.time }, clock(e.time)), h('span', {}, h('span', { class: `kind ${e.kind}` }, e.kind)),
        h('span', { class: 'what' }, e.node ? [h('a', { href: nodeUrl(e.node) }, e.node), ': '] : null, e.message))));
  }

  function renderHive() {
    const r = rates();
    const running = hive.nodes.filter((n) => n.status === 'running').length;
    const failed = hive.nodes.filter((n) => n.status === 'failed').length;
    const dropped = hive.nodes.reduce((a, n) => a + n.subscriptions.reduce((b, sub) => b + sub.dropped, 0), 0);
    const sent = hive.nodes.reduce((a, n) => a + n.services.reduce((b, svc) => b + svc.sent, 0), 0);
    const nodes = hive.nodes.length
      ? h('table', { class: 'list-nodes' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Status'), h('th', { class: 'num' }, 'sent/s'), h('th', { class: 'num' }, 'handled/s'), h('th', { class: 'num' }, 'dropped'))),
        h('tbody', {}, hive.nodes.map((n) => h('tr', { 'data-node': nodeKey(n, hive.host) },
          h('td', {}, nodeLink(n, {}), badge(n)), h('td', {}, chip(n.status), buildBadge(n)),
          h('td', { class: 'num' }, n.services.length ? rate(r.nodeSent.get(nodeKey(n, hive.host))) : '·'),
          h('td', { class: 'num' }, n.subscriptions.length ? rate(r.nodeDelivered.get(nodeKey(n, hive.host))) : '·'),
          h('td', { class: 'num' }, num(n.subscriptions.reduce((a, sub) => a + sub.dropped, 0)))))))
      : h('p', { class: 'empty' }, 'No nodes yet. Create one with ', h('code', {}, 'hm create_node NAME'), ' and enable it in ', h('code', {}, 'config/hive.toml'), '.');
    main.replaceChildren(
      h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, hive.name), h('p', { class: 'sub' }, `${hive.nodes.length} node${hive.nodes.length === 1 ? '' : 's'} · ${hive.topics.length} service${hive.topics.length === 1 ? '' : 's'}`))),
      h('div', { class: 'tiles' },
        tile('Nodes running', `${running}`, `of ${hive.nodes.length}`),
        tile('Messages / s', rate(r.hive), null, sparkline(hiveRates)),
        tile('Handled / s', rate(r.hiveDelivered)),
        tile('Messages sent', num(sent)),
        tile('Dropped', num(dropped), null, null, dropped ? 'bad' : ''),
        tile('Failed nodes', `${failed}`, null, null, failed ? 'bad' : '')),
      h('div', { class: 'cols wide-left' },
        h('section', { class: 'panel' }, h('h2', {}, 'Nodes'), nodes),
        h('section', { class: 'panel' }, h('h2', {}, 'Events'), eventFeed())));
  }

  function renderNodes() {
    const r = rates();
    const cards = hive.nodes.map((n) => h('article', { class: `card ${n.status}`, 'data-node': nodeKey(n, hive.host) },
      h('div', { class: 'card-head' }, nodeLink(n, { class: 'name' }), chip(n.status), badge(n), buildBadge(n)),
      h('div', { class: 'facts' },
        h('div', {}, h('b', {}, n.services.length), h('span', {}, 'services')),
        h('div', {}, h('b', {}, n.subscriptions.length), h('span', {}, 'subscriptions')),
        (n.timers || []).length ? h('div', {}, h('b', {}, n.timers.length), h('span', {}, 'timers')) : null,
        h('div', {}, h('b', {}, n.services.length ? rate(r.nodeSent.get(nodeKey(n, hive.host))) : rate(r.nodeDelivered.get(nodeKey(n, hive.host)))),
          h('span', {}, n.services.length ? 'sent / s' : 'handled / s'))),
      h('div', { class: 'meta' }, libraryLine(n) || h('span', {}, n.status === 'disabled' ? 'not loaded: disabled in config/hive.toml' : 'no library loaded'), reloadLine(n)),
      n.error ? h('pre', { class: 'error' }, n.error) : null,
      n.build_error ? h('p', { class: 'build-line' }, buildLine(n), ': ', h('a', { href: nodeUrl(n.name) }, 'see the errors')) : null,
      h('div', { class: 'buttons' }, actions(n))));
    main.replaceChildren(
      h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Nodes'), h('p', { class: 'sub' }, `${hive.name} · ${hive.nodes.length} node${hive.nodes.length === 1 ? '' : 's'}`))),
      cards.length ? h('div', { class: 'cards' }, cards) : h('p', { class: 'empty panel' }, 'No nodes yet. Create one with ', h('code', {}, 'hm create_node NAME'), '.'));
  }

  /** A pattern that matches exactly `service` (glob characters put in brackets). */
  const exactly = (service) => service.replace(/[*?[\]]/g, (c) => `[${c}]`);

  const watching = new Set();
  function watchPayloads(node) {
    for (const svc of node.services) {
      if (watching.has(svc.name)) continue;
      watching.add(svc.name);
      const socket = open(new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/subscribe?pattern=${encodeURIComponent(exactly(svc.name))}`));
      socket.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.service) lastPayload.set(m.service, m);
      };
      socket.onclose = () => watching.delete(svc.name);
    }
  }

  let nodeView = null;
  function renderNode() {
    const n = hive.nodes.find((x) => x.name === nodeName && !remote(x));
    if (!nodeView) {
      nodeView = { top: h('div'), body: h('div', { style: 'display:grid;gap:20px' }), log: startLog() };
      main.replaceChildren(nodeView.top, nodeView.body, nodeView.log);
    }
    if (!n) {
      nodeView.top.replaceChildren(h('div', { class: 'page-head' }, h('h1', {}, nodeName)),
        h('p', { class: 'panel empty' }, `There is no node named ${nodeName} in this hive. `, h('a', { href: '/nodes' }, 'See all nodes.')));
      nodeView.body.replaceChildren();
      return;
    }
    if (n.status === 'running') watchPayloads(n);
    const r = rates();
    nodeView.top.replaceChildren(...[
      h('div', { class: 'page-head' },
        h('div', {}, h('h1', {}, n.name, chip(n.status), badge(n), buildBadge(n)), h('div', { class: 'meta', style: 'margin-top:6px' }, libraryLine(n), reloadLine(n))),
        h('div', { class: 'actions' }, actions(n))),
      n.error ? h('pre', { class: 'error', style: 'margin-top:12px' }, n.error) : null,
      buildPanel(n)].filter(Boolean));
    const services = n.services.length
      ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', { class: 'num' }, 'sent'), h('th', { class: 'num' }, 'per s'), h('th', {}, 'last payload'))),
        h('tbody', {}, n.services.map((svc) => {
          const last = svc.last_payload !== undefined ? { payload: svc.last_payload } : lastPayload.get(svc.name);
          return h('tr', {},
            h('td', {}, h('code', {}, svc.name), svc.error ? h('div', { class: 'bad', style: 'color:var(--bad);font-size:12px' }, svc.error) : (svc.kind === 'publisher' ? h('div', { class: 'sub' }, 'publisher') : (!svc.running && n.status === 'running' ? h('div', { class: 'sub' }, 'stopped') : null))),
            h('td', { class: 'num' }, num(svc.sent)), h('td', { class: 'num' }, rate(r.service.get(`${n.name}\u0000${svc.name}`))),
            h('td', {}, h('div', { class: 'payload', title: last ? JSON.stringify(last.payload) : '' }, last ? JSON.stringify(last.payload) : '–')));
        })))
      : h('p', { class: 'empty' }, 'No services.');
    const subscriptions = n.subscriptions.length
      ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Pattern'), h('th', {}, 'matches'), h('th', { class: 'num' }, 'delivered'), h('th', { class: 'num' }, 'dropped'), h('th', { class: 'num' }, 'errors'), h('th', { class: 'num' }, 'panics'))),
        h('tbody', {}, n.subscriptions.map((sub) => {
          // The services the hive matched to this pattern (its own glob matcher, /api/hive).
          const matches = sub.matches || [];
          return h('tr', {},
            h('td', {}, h('code', {}, sub.pattern)),
            h('td', {}, matches.length ? matches.map((m, i) => [i ? ', ' : '', h('code', {}, m)]) : h('span', { class: 'sub' }, 'no service yet')),
            h('td', { class: 'num' }, num(sub.delivered)), h('td', { class: `num ${sub.dropped ? 'bad' : ''}` }, num(sub.dropped)),
            h('td', { class: `num ${sub.failed ? 'bad' : ''}` }, num(sub.failed)), h('td', { class: `num ${sub.panicked ? 'bad' : ''}` }, num(sub.panicked)));
        })))
      : h('p', { class: 'empty' }, 'No subscriptions.');
    // Timers run on the node's own thread, between deliveries (add_timer).
    const timers = (n.timers || []).length
      ? h('table', { id: 'timers' }, h('thead', {}, h('tr', {}, h('th', {}, 'Timer'), h('th', { class: 'num' }, 'every'), h('th', { class: 'num' }, 'runs'), h('th', {}, 'last run'), h('th', { class: 'num' }, 'errors'), h('th', { class: 'num' }, 'panics'))),
        h('tbody', {}, n.timers.map((t) => h('tr', { 'data-timer': t.name },
          h('td', {}, h('code', {}, t.name)),
          h('td', { class: 'num' }, t.period_ms >= 1000 ? `${rate(t.period_ms / 1000)} s` : `${rate(t.period_ms)} ms`),
          h('td', { class: 'num' }, num(t.runs)),
          h('td', {}, t.last_run ? h('time', { datetime: t.last_run, title: t.last_run }, since(t.last_run) || clock(t.last_run)) : h('span', { class: 'sub' }, 'not yet')),
          h('td', { class: `num ${t.failed ? 'bad' : ''}` }, num(t.failed)), h('td', { class: `num ${t.panicked ? 'bad' : ''}` }, num(t.panicked))))))
      : null;
    nodeView.body.replaceChildren(...[
      h('div', { class: 'cols' }, h('section', { class: 'panel' }, h('h2', {}, 'Services'), services),
        h('section', { class: 'panel' }, h('h2', {}, 'Subscriptions'), subscriptions)),
      timers ? h('section', { class: 'panel' }, h('h2', {}, 'Timers'), timers) : null,
      h('section', { class: 'panel' }, h('h2', {}, 'Settings ', h('span', { style: 'text-transform:none;letter-spacing:0;color:var(--faint)' }, `[nodes.${n.name}] in config/hive.toml`)),
        h('pre', { class: 'settings' }, JSON.stringify(n.settings ?? {}, null, 2))),
      storePanel(n.name)].filter(Boolean));
  }

  // The node's store (docs/STORE.md): its first 50 keys with their values and each table's
  // rows, from GET /api/nodes/{name}/store, asked at most every 5 s (this page redraws on
  // every snapshot). One panel, kept across redraws.
  function storePanel(name) {
    const view = nodeView.store || (nodeView.store = { box: h('section', { class: 'panel', id: 'store' }, h('h2', {}, 'Store')), at: 0 });
    if (Date.now() - view.at < 5000) return view.box;
    view.at = Date.now();
    fetch(`/api/nodes/${encodeURIComponent(name)}/store?limit=50`).then((r) => (r.ok ? r.json() : null)).then((s) => {
      if (!s) return;
      const faint = { style: 'text-transform:none;letter-spacing:0;color:var(--faint)' };
      const head = h('h2', {}, 'Store ', h('span', faint, s.store.exists ? `data/${name}.db · ${num(s.store.bytes)} bytes · ${num(s.store.keys)} keys` : 'nothing stored yet'));
      const keys = s.entries.length
        ? h('table', { id: 'store-keys' }, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'value'))),
          h('tbody', {}, s.entries.map((e) => h('tr', {}, h('td', {}, h('code', {}, e.key)), h('td', {}, h('div', { class: 'payload', title: JSON.stringify(e.value) }, JSON.stringify(e.value)))))))
        : h('p', { class: 'empty' }, 'No keys.');
      const tables = (s.store.tables || []).length
        ? h('table', { id: 'store-tables' }, h('thead', {}, h('tr', {}, h('th', {}, 'Table'), h('th', { class: 'num' }, 'rows'))),
          h('tbody', {}, s.store.tables.map((t) => h('tr', {}, h('td', {}, h('code', {}, t.name)), h('td', { class: 'num' }, num(t.rows))))))
        : null;
      view.box.replaceChildren(...[head, keys, tables, s.next ? h('p', { class: 'sub' }, 'More keys: hm data get ', name) : null].filter(Boolean));
    }).catch(() => {});
    return view.box;
  }

  function logLine(text, fresh) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) +(ERROR|WARN|INFO|DEBUG|TRACE) (.*)$/.exec(text);
    const row = m
      ? h('div', {}, h('span', { class: 't' }, m[1].replace('T', ' ').slice(0, 23)), ' ', h('span', { class: m[2] }, m[2].padStart(5)), ' ', m[3])
      : h('div', {}, text);
    if (fresh) row.classList.add('new');
    return row;
  }

  function startLog() {
    const pane = h('div', { class: 'log', id: 'log', 'aria-live': 'polite' });
    const status = h('span', { class: 'hint' }, 'connecting…');
    let first = true;
    const source = open(new EventSource(`/api/nodes/${encodeURIComponent(nodeName)}/log?lines=300`));
    source.addEventListener('lines', (e) => {
      const lines = JSON.parse(e.data);
      const atBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 30;
      if (first && !lines.length) pane.append(h('div', { class: 'empty-log t' }, 'No lines yet: they appear here as the node writes them.'));
      if (lines.length) pane.querySelector('.empty-log')?.remove();
      pane.append(...lines.map((l) => logLine(l, !first)));
      while (pane.childElementCount > 3000) pane.firstElementChild.remove();
      if (atBottom || first) pane.scrollTop = pane.scrollHeight;
      first = false;
      status.textContent = 'streaming: new lines appear as they are written';
    });
    source.onerror = () => { status.textContent = 'reconnecting…'; };
    return h('section', { class: 'panel' }, h('div', { class: 'log-head' }, h('h2', {}, 'Log'), h('code', { class: 'sub' }, `${nodeName}.log`), status), pane);
  }

  function graph() {
    const topics = hive.topics;
    if (!topics.length) return h('p', { class: 'empty' }, 'No services yet: when nodes offer services, who sends and who listens is drawn here.');
    const status = new Map(hive.nodes.filter((n) => !remote(n)).map((n) => [n.name, n.status]));
    const senders = [...new Set(topics.flatMap((t) => t.publishers))].sort();
    const receivers = [...new Set(topics.flatMap((t) => t.subscribers))].sort();
    const services = topics.map((t) => t.service);
    const rowH = 46, top = 40, boxH = 30;
    const widthOf = (text, px) => Math.max(90, text.length * px + 28);
    const nodeW = Math.max(120, ...senders.concat(receivers).map((n) => widthOf(n, 8)));
    const svcW = Math.max(150, ...services.map((n) => widthOf(n, 7.4)));
    const gap = 150;
    const x0 = 10, x1 = x0 + nodeW + gap, x2 = x1 + svcW + gap;
    const width = x2 + nodeW + 10;
    const rows = Math.max(senders.length, receivers.length, services.length);
    const height = top + rows * rowH + 10;
    const yOf = (i, count) => top + (rows - count) * rowH / 2 + i * rowH;
    const ySender = new Map(senders.map((n, i) => [n, yOf(i, senders.length)]));
    const yService = new Map(services.map((n, i) => [n, yOf(i, services.length)]));
    const yReceiver = new Map(receivers.map((n, i) => [n, yOf(i, receivers.length)]));
    const curve = (ax, ay, bx, by, cls) => {
      const mid = (ax + bx) / 2;
      return s('path', { class: `edge ${cls}`, d: `M${ax},${ay + boxH / 2} C${mid},${ay + boxH / 2} ${mid},${by + boxH / 2} ${bx},${by + boxH / 2}` });
    };
    const edges = [];
    for (const t of topics) {
      for (const p of t.publishers) edges.push(curve(x0 + nodeW, ySender.get(p), x1, yService.get(t.service), 'out'));
      for (const sub of t.subscribers) edges.push(curve(x1 + svcW, yService.get(t.service), x2, yReceiver.get(sub), 'in'));
    }
    const nodeBox = (name, x, y) => s('a', { href: nodeUrl(name) },
      s('g', { class: `node ${status.get(name) || ''}` }, s('title', {}, `${name} (${status.get(name) || 'outside the config'})`),
        s('rect', { x, y, width: nodeW, height: boxH, rx: 6 }), s('text', { x: x + 12, y: y + 20 }, name)));
    const svcBox = (name, y) => s('g', { class: 'service' }, s('title', {}, name),
      s('rect', { x: x1, y, width: svcW, height: boxH, rx: 15 }), s('text', { x: x1 + 14, y: y + 19.5 }, name));
    const svgEl = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'services: who sends and who subscribes' },
      s('text', { class: 'col-title', x: x0, y: 16 }, 'sent by'),
      s('text', { class: 'col-title', x: x1, y: 16 }, 'service'),
      s('text', { class: 'col-title', x: x2, y: 16 }, 'subscribed by'),
      edges,
      senders.map((n) => nodeBox(n, x0, ySender.get(n))),
      services.map((n) => svcBox(n, yService.get(n))),
      receivers.map((n) => nodeBox(n, x2, yReceiver.get(n))));
    return h('div', { class: 'graph' }, svgEl);
  }

  function renderTopics() {
    const list = (names) => (names.length ? names.map((n, i) => [i ? ', ' : '', h('a', { href: nodeUrl(n) }, n)]) : h('span', { class: 'sub' }, 'nobody'));
    main.replaceChildren(
      h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Topics'), h('p', { class: 'sub' }, 'Every service name: who sends on it and whose subscriptions match it.'))),
      h('section', { class: 'panel' }, graph()),
      h('section', { class: 'panel' }, h('h2', {}, 'Services'), hive.topics.length
        ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Sent by'), h('th', {}, 'Subscribed by'))),
          h('tbody', {}, hive.topics.map((t) => h('tr', {}, h('td', {}, h('code', {}, t.service)), h('td', {}, list(t.publishers)), h('td', {}, list(t.subscribers))))))
        : h('p', { class: 'empty' }, 'No services yet.')));
  }

  // The publish page is built once; only the list of known services follows the hive.
  let publishView = null;
  function renderPublish() {
    if (!publishView) publishView = buildPublish();
    publishView.services.replaceChildren(...hive.topics.map((t) => h('option', { value: t.service })));
    publishView.known.replaceChildren(...(hive.topics.length
      ? ['services offered now: ', ...hive.topics.map((t) => h('button', { type: 'button', class: 'pick', 'data-service': t.service, onclick: () => publishView.pick(t.service) }, t.service, t.schema ? h('span', { class: 'sub' }, ' · typed') : null))]
      : ['no node offers a service yet: any name works, and reaches the subscriptions whose pattern matches it']));
    publishView.follow();
  }

  // ---- the form generated from a service's declared JSON Schema ------------------------

  /** Follows local `$ref`s (`#/$defs/Name`) within the schema document `root`. */
  function resolveRef(schema, root) {
    for (let hops = 0; schema && typeof schema === 'object' && typeof schema.$ref === 'string' && hops < 16; hops += 1) {
      if (!schema.$ref.startsWith('#')) break;
      let target = root;
      for (const part of schema.$ref.slice(1).split('/').filter(Boolean)) {
        const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
        target = target && typeof target === 'object' ? target[key] : undefined;
      }
      if (target === undefined) break;
      schema = target;
    }
    return schema;
  }

  /** What kind of input a property gets: {kind, nullable, values}. */
  function fieldKind(schema, root) {
    schema = resolveRef(schema, root);
    if (!schema || typeof schema !== 'object') return { kind: 'json', nullable: false };
    let nullable = false;
    // `Option<T>` is written `anyOf: [T, {type: null}]` (or `type: [T, "null"]`).
    const alts = schema.anyOf || schema.oneOf;
    if (Array.isArray(alts) && !schema.type) {
      const rest = alts.filter((a) => resolveRef(a, root).type !== 'null');
      nullable = rest.length < alts.length;
      if (rest.length === 1) return Object.assign(fieldKind(rest[0], root), nullable ? { nullable } : {});
      const consts = alts.map((a) => resolveRef(a, root)).filter((a) => a && 'const' in a);
      if (consts.length === alts.length) return { kind: 'enum', values: consts.map((a) => a.const), nullable: false };
      return { kind: 'json', nullable };
    }
    if (Array.isArray(schema.enum)) return { kind: 'enum', values: schema.enum, nullable: schema.enum.includes(null) };
    if ('const' in schema) return { kind: 'enum', values: [schema.const], nullable: false };
    let types = Array.isArray(schema.type) ? schema.type : (schema.type ? [schema.type] : []);
    if (types.includes('null')) { nullable = true; types = types.filter((t) => t !== 'null'); }
    const t = types.length === 1 ? types[0] : 'json';
    const kind = { string: 'string', integer: 'integer', number: 'number', boolean: 'boolean' }[t] || 'json';
    return { kind, nullable, schema };
  }

  /** One input for one value of the schema; `read()` gives the value, or undefined to leave it out. */
  function schemaInput(name, schema, root, required) {
    const info = fieldKind(schema, root);
    const id = `field-${name}`;
    const optional = !required || info.nullable;
    let input;
    let read;
    if (info.kind === 'boolean') {
      input = h('input', { id, type: 'checkbox', 'data-field': name });
      read = () => input.checked;
    } else if (info.kind === 'enum') {
      input = h('select', { id, 'data-field': name },
        optional ? h('option', { value: '' }, '(none)') : null,
        info.values.map((v, i) => h('option', { value: String(i) }, typeof v === 'string' ? v : JSON.stringify(v))));
      read = () => (input.value === '' ? undefined : info.values[Number(input.value)]);
    } else if (info.kind === 'integer' || info.kind === 'number') {
      input = h('input', { id, type: 'number', step: info.kind === 'integer' ? '1' : 'any', 'data-field': name, required: !optional });
      read = () => (input.value === '' ? undefined : Number(input.value));
    } else if (info.kind === 'string') {
      input = h('input', { id, type: 'text', 'data-field': name, required: !optional, autocomplete: 'off', spellcheck: 'false' });
      read = () => (input.value === '' && optional ? undefined : input.value);
    } else {
      input = h('textarea', { id, class: 'json-field', 'data-field': name, spellcheck: 'false', rows: 2 });
      read = () => {
        if (input.value.trim() === '') return undefined;
        try { return JSON.parse(input.value); } catch (_) { throw new Error(`${name}: not JSON`); }
      };
    }
    const described = resolveRef(schema, root) || {};
    const hint = [info.kind === 'json' ? 'JSON' : info.kind, optional ? 'optional' : 'required', described.description].filter(Boolean).join(' · ');
    const label = h('label', { class: 'schema-field' }, h('code', {}, name), h('span', { class: 'field-hint' }, hint), input);
    // A left-out optional value is sent as null where the type allows null and requires the key.
    const value = () => {
      const v = read();
      return v === undefined && required && info.nullable ? null : v;
    };
    return { label, input, value };
  }

  /** The form for `schema`: one field per property of an object, one field for anything else. */
  function schemaForm(schema, onInput) {
    const root = schema;
    const top = resolveRef(schema, root) || {};
    const props = top.properties && typeof top.properties === 'object' ? top.properties : null;
    const fields = props
      ? Object.entries(props).map(([name, sub]) => [name, schemaInput(name, sub, root, (top.required || []).includes(name))])
      : [[null, schemaInput('value', top, root, true)]];
    for (const [, f] of fields) {
      f.input.addEventListener('input', onInput);
      f.input.addEventListener('change', onInput);
    }
    const payload = () => {
      if (!props) return fields[0][1].value();
      const out = {};
      for (const [name, f] of fields) {
        const v = f.value();
        if (v !== undefined) out[name] = v;
      }
      return out;
    };
    return { element: h('div', { class: 'schema-fields' }, fields.map(([, f]) => f.label)), payload };
  }

  function buildPublish() {
    const services = h('datalist', { id: 'services' });
    // No placeholder: an example in the box looks like a filled-in value. The hint says what goes in.
    const service = h('input', { id: 'service', list: 'services', required: true, autocomplete: 'off' });
    const known = h('span', { class: 'field-hint', id: 'known-services' });
    const payload = h('textarea', { id: 'payload', spellcheck: 'false' });
    payload.value = '"Batman! We need help!"';
    const result = h('div', { class: 'result', id: 'publish-result' });
    const send = h('button', { class: 'primary', type: 'submit' }, 'Publish');
    // Filled from the service's schema when it declares one; the raw editor below stays.
    const generated = h('div', { id: 'schema-form', class: 'schema-form' });
    let shownFor = null;
    let typedNow = false;
    const showSchema = async () => {
      const name = service.value;
      const typed = !!(hive && hive.topics.some((t) => t.service === name && t.schema));
      if (name === shownFor && typed === typedNow) return;
      shownFor = name;
      typedNow = typed;
      generated.replaceChildren();
      generated.removeAttribute('data-service');
      if (!typed) return;
      let schema;
      try {
        const response = await fetch(`/api/topics/${encodeURIComponent(name)}/schema`);
        if (!response.ok || service.value !== name) return;
        schema = await response.json();
      } catch (_) { return; }
      const fill = () => {
        try {
          payload.value = JSON.stringify(form.payload(), null, 2);
          result.className = 'result';
          result.textContent = '';
        } catch (err) {
          result.className = 'result bad';
          result.textContent = err.message;
        }
      };
      const form = schemaForm(schema, fill);
      generated.replaceChildren(
        h('p', { class: 'field-hint' }, `${schema.title || 'the payload'}: fields from the type the service declares; they fill the JSON below, which you may still edit`),
        form.element);
      generated.dataset.service = name;
      fill();
    };
    service.addEventListener('change', showSchema);
    service.addEventListener('input', showSchema);
    const form = h('form', { class: 'form' },
      h('label', {}, 'Service name', h('span', { class: 'field-hint' }, 'the name the message goes out on, as if a service of that name had sent it'), service, known),
      generated,
      h('label', {}, 'Payload (JSON)', h('span', { class: 'field-hint' }, 'any JSON value: a string needs its quotes, like "Batman! We need help!"'), payload),
      h('div', { class: 'row' }, send, result));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try { JSON.parse(payload.value); } catch (err) {
        result.className = 'result bad';
        result.textContent = `not JSON: ${err.message}`;
        return;
      }
      send.disabled = true;
      try {
        const r = await post(`/api/publish/${encodeURIComponent(service.value)}`, payload.value);
        const warning = r.ok && r.body && r.body.warning;
        result.className = r.ok ? (warning ? 'result warn' : 'result ok') : 'result bad';
        result.textContent = r.ok
          ? `published on ${service.value} at ${new Date().toLocaleTimeString([], { hour12: false })}${warning ? `, with a warning: ${warning}` : ''}`
          : `${r.status}: ${(r.body && r.body.error) || 'refused'}`;
      } catch (err) {
        result.className = 'result bad';
        result.textContent = String(err);
      } finally { send.disabled = false; }
    });

    const pattern = h('input', { id: 'pattern', value: '*', style: 'flex:1' });
    const watchButton = h('button', { type: 'submit' }, 'Change');
    const rows = h('tbody');
    const count = h('span', { class: 'sub' }, '');
    let socket = null;
    let seen = 0;
    const watchForm = h('form', { class: 'row' }, h('label', { class: 'sub', for: 'pattern' }, 'pattern'), pattern, watchButton);
    // Watching starts with the page (pattern `*`: every message); a new pattern replaces it.
    const watch = () => {
      if (socket) socket.close();
      rows.replaceChildren();
      seen = 0;
      socket = open(new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/subscribe?pattern=${encodeURIComponent(pattern.value)}`));
      count.textContent = `watching ${pattern.value}`;
      socket.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.dropped !== undefined) { count.textContent = `watching ${pattern.value} · ${m.dropped} dropped (too fast to show)`; return; }
        seen += 1;
        rows.prepend(h('tr', {}, h('td', { class: 'sub' }, clock(m.time)), h('td', {}, h('code', {}, m.service)), h('td', {}, h('span', { class: 'mono' }, m.node)),
          h('td', {}, h('div', { class: 'payload' }, JSON.stringify(m.payload)))));
        while (rows.childElementCount > 200) rows.lastElementChild.remove();
        count.textContent = `watching ${pattern.value} · ${seen} message${seen === 1 ? '' : 's'}`;
      };
      socket.onerror = () => { count.textContent = 'the pattern was refused, or the hive is gone'; };
    };
    watchForm.addEventListener('submit', (e) => { e.preventDefault(); watch(); });
    pattern.addEventListener('change', watch);
    main.replaceChildren(
      h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Publish'), h('p', { class: 'sub' }, 'Send a payload on a service name, as if a node had sent it; watch what flows.'))),
      h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', {}, 'Publish a message'), form, services),
        h('section', { class: 'panel' }, h('h2', {}, 'Watch messages'),
          h('p', { class: 'sub' }, 'Every message whose service matches the pattern shows here as the hive routes it, yours included. Glob: * any run of characters, ? one character, [abc] one of them.'),
          watchForm, h('p', { id: 'watch-status' }, count),
          h('div', { class: 'messages' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'time'), h('th', {}, 'service'), h('th', {}, 'from'), h('th', {}, 'payload'))), rows)))));
    watch();
    const pick = (name) => { service.value = name; service.focus(); showSchema(); };
    // A service that starts (or stops) declaring a type while the page is open.
    const follow = () => { showSchema(); };
    return { services, known, pick, follow };
  }

  // The requests page: its form is built once; the table of names follows the hive.
  let requestsView = null;
  function renderRequests() {
    if (!requestsView) requestsView = buildRequests();
    const list = hive.requests || [];
    requestsView.names.replaceChildren(...list.map((r) => h('option', { value: r.name })));
    const errors = (r) => Object.entries(r.errors || {}).map(([kind, n]) => `${kind} ${n}`).join(', ');
    // A quantile from the cumulative histogram: the upper bound of the first bucket holding it.
    const clean = (x) => Number(x.toPrecision(6));
    const bound = (seconds) => (seconds === null ? '> 60 s' : seconds < 0.001 ? `≤ ${clean(seconds * 1e6)} µs` : seconds < 1 ? `≤ ${clean(seconds * 1e3)} ms` : `≤ ${seconds} s`);
    const quantile = (r, q) => {
      const hit = (r.latency || []).find(([, count]) => count >= q * r.asked);
      return hit ? bound(hit[0]) : '–';
    };
    const latency = (r) => (r.asked
      ? [h('div', {}, `p50 ${quantile(r, 0.5)}`), h('div', {}, `p99 ${quantile(r, 0.99)}`), h('div', { class: 'sub' }, `mean ${r.mean_ms.toFixed(2)} ms`)]
      : '–');
    requestsView.rows.replaceChildren(...list.map((r) => h('tr', { 'data-request': r.name },
      h('td', {}, h('button', { type: 'button', class: 'pick', onclick: () => requestsView.pick(r.name) }, r.name)),
      h('td', {}, r.responders.length ? r.responders.map((p, i) => [i ? ', ' : '', p.host === hive.host ? h('a', { href: nodeUrl(p.node) }, p.node) : `${p.node}@${p.host}`]) : h('span', { class: 'sub' }, 'nobody')),
      h('td', { class: 'sub' }, r.help || ''),
      h('td', { class: 'num' }, String(r.asked)),
      h('td', { class: 'num' }, r.failed ? [h('span', { class: 'bad' }, String(r.failed)), h('div', { class: 'sub' }, errors(r))] : '0'),
      h('td', { class: 'num' }, latency(r)))));
    requestsView.empty.hidden = list.length > 0;
  }

  function buildRequests() {
    const names = h('datalist', { id: 'request-names' });
    const name = h('input', { id: 'request-name', list: 'request-names', required: true, autocomplete: 'off' });
    const args = h('textarea', { id: 'request-args', spellcheck: 'false' });
    args.value = 'null';
    const timeout = h('input', { id: 'request-timeout', type: 'number', min: '1', max: '60000', value: '5000' });
    const all = h('input', { id: 'request-all', type: 'checkbox' });
    const send = h('button', { class: 'primary', type: 'submit' }, 'Ask');
    const result = h('div', { class: 'result', id: 'request-result' });
    const reply = h('pre', { class: 'reply', id: 'request-reply' });
    const form = h('form', { class: 'form' },
      h('label', {}, 'Request name', h('span', { class: 'field-hint' }, 'a name some node answers (the table lists them)'), name),
      h('label', {}, 'Arguments (JSON)', h('span', { class: 'field-hint' }, 'any JSON value: a string needs its quotes'), args),
      h('label', {}, 'Timeout (ms)', timeout),
      h('label', { class: 'check' }, all, 'ask every node that answers it'),
      h('div', { class: 'row' }, send, result), reply);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try { JSON.parse(args.value); } catch (err) {
        result.className = 'result bad';
        result.textContent = `not JSON: ${err.message}`;
        return;
      }
      send.disabled = true;
      reply.textContent = '';
      try {
        const query = `timeout_ms=${encodeURIComponent(timeout.value)}${all.checked ? '&all=true' : ''}`;
        const r = await post(`/api/request/${encodeURIComponent(name.value)}?${query}`, args.value);
        result.className = r.ok ? 'result ok' : 'result bad';
        if (r.ok) {
          result.textContent = r.body.replies ? `${r.body.replies.length} replies in ${r.body.ms.toFixed(1)} ms` : `${r.body.node} answered in ${r.body.ms.toFixed(1)} ms`;
          reply.textContent = JSON.stringify(r.body.replies || r.body.reply, null, 2);
        } else {
          result.textContent = `${r.status} ${(r.body && r.body.kind) || ''}: ${(r.body && r.body.error) || 'refused'}`;
        }
      } catch (err) {
        result.className = 'result bad';
        result.textContent = String(err);
      } finally { send.disabled = false; }
    });
    const rows = h('tbody', { id: 'request-rows' });
    const empty = h('p', { class: 'empty' }, 'No node answers requests yet: a node registers them with add_request.');
    main.replaceChildren(
      h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Requests'), h('p', { class: 'sub' }, 'Every request name the hive answers, who answers it, and how asking went; ask one by hand.'))),
      h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', {}, 'Names'),
          h('div', { class: 'requests-table' }, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Answered by'), h('th', {}, 'Help'), h('th', {}, 'Asked'), h('th', {}, 'Errors'), h('th', {}, 'Latency'))), rows)), empty),
        h('section', { class: 'panel' }, h('h2', {}, 'Ask'), form, names)));
    const pick = (n) => { name.value = n; name.focus(); };
    return { names, rows, empty, pick };
  }

  const pages = { hive: renderHive, nodes: renderNodes, node: renderNode, topics: renderTopics, publish: renderPublish, requests: renderRequests };
  function render() {
    if (!hive) return;
    try { (pages[page] || renderHive)(); } catch (err) { console.error(err); }
  }

  // The page comes with the hive as it was when served: draw it now, then follow the stream.
  const initial = document.getElementById('initial');
  if (initial) {
    try { hive = JSON.parse(initial.textContent); } catch (_) { hive = null; }
    if (hive && Array.isArray(hive.events)) {
      events = hive.events.slice(-200);
      for (const e of hive.events) embeddedEvents.set(eventKey(e), (embeddedEvents.get(eventKey(e)) || 0) + 1);
      delete hive.events;
    }
    if (hive) render();
  }
  stream();
  if (page === 'hive') feed();
})();
