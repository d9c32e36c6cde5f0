// The requests page (/requests): every request name with its responders and counters; ask one
// by hand.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, nodeUrl, post, hive } from '../app.js';

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

start(renderRequests);
