// The publish page (/publish): publish a payload by hand (with fields from the service's
// declared schema when it has one) and watch the messages that match a pattern.
// A module of the dashboard: it draws into `main` what `start` (../app.js) hands it.

import { start, main, h, clock, subscribe, post, hive } from '../app.js';
import { schemaForm } from '../schema-form.js';

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
    socket = subscribe(pattern.value);
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

start(renderPublish);
