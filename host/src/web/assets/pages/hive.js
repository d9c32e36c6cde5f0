// The overview (/): tiles with the hive's counts and rate, its nodes, the event feed.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, s, num, rate, clock, chip, nodeUrl, badge, nodeLink, nodeKey, buildBadge, hive, hiveRates, events, rates } from '../app.js';

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

start(renderHive, { feed: true });
