// The nodes page (/nodes): a card per node with its facts and its buttons.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, rate, chip, nodeUrl, badge, nodeLink, nodeKey, buildLine, buildBadge, hive, rates, actions, libraryLine, reloadLine } from '../app.js';

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

start(renderNodes);
