// The topics page (/topics): who sends on each service and who listens, as a graph and a table.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, s, nodeUrl, remote, hive } from '../app.js';

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

start(renderTopics);
