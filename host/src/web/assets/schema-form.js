// The dashboard's form generated from a service's declared JSON Schema: one field per property
// of an object (of the property's kind), one field for anything else. Used by the publish page.

import { h } from './app.js';

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
export function schemaForm(schema, onInput) {
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
