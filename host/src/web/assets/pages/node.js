// A node's page (/nodes/<name>): its services, subscriptions, timers, settings and log.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, num, rate, clock, since, chip, remote, badge, buildBadge, buildPanel, open, subscribe, hive, rates, actions, libraryLine, reloadLine } from '../app.js';

const nodeName = document.body.dataset.node;
const lastPayload = new Map(); // service -> {payload, node, time}

/** A pattern that matches exactly `service` (glob characters put in brackets). */
const exactly = (service) => service.replace(/[*?[\]]/g, (c) => `[${c}]`);

const watching = new Set();
function watchPayloads(node) {
  for (const svc of node.services) {
    if (watching.has(svc.name)) continue;
    watching.add(svc.name);
    const socket = subscribe(exactly(svc.name));
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

start(renderNode);
