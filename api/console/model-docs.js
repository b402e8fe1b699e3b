// @ts-check
// A model's input and output documentation, and the try-it form's controls, all read from the
// model's catalog entry (its input JSON schema, output fields and accepted image formats).
import { h } from './dom.js';
import { formatList } from './widgets.js';

/**
 * The part of JSON Schema the console reads.
 * @typedef {object} FieldSchema
 * @property {string} [type]
 * @property {unknown[]} [enum]
 * @property {FieldSchema[]} [anyOf]
 * @property {unknown} [default]
 * @property {number} [minimum]
 * @property {number} [maximum]
 * @property {number} [maxLength]
 * @property {string} [description]
 */
/**
 * @typedef {object} InputSchema
 * @property {Record<string, FieldSchema>} [properties]
 * @property {string[]} [required]
 */
/**
 * @typedef {object} OptionControl
 * @property {string} name
 * @property {FieldSchema} schema
 * @property {boolean} required
 * @property {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} control
 * @property {HTMLLabelElement} label
 */

/** The console asks for compact mask encodings by default (the same masks, far smaller answers). */
/** @type {Record<string, string>} */
const CONSOLE_DEFAULTS = { mask_encoding: 'rle', encoding: 'rle' };

/** A text field long enough to be prose (the text models' sentences), shown as a text area. */
const LONG_TEXT = 1000;

/**
 * @param {FieldSchema} s
 * @returns {string}
 */
function typeOf(s) {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' | ');
  return s.type ?? 'any';
}

/**
 * @param {InputSchema} schema
 * @param {readonly import('/sdk/index.js').ImageFormat[]} formats
 */
export function inputDocs(schema, formats) {
  const required = new Set(schema.required ?? []);
  return h(
    'table',
    { class: 'grid compact docs' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'field'), h('th', {}, 'type'), h('th', {}, 'default / range'), h('th', {}, 'notes')),
    ),
    h(
      'tbody',
      {},
      Object.entries(schema.properties ?? {}).map(([name, s]) => {
        const range = [
          s.default !== undefined
            ? `default ${JSON.stringify(s.default)}`
            : required.has(name)
              ? 'required'
              : 'optional',
          s.minimum !== undefined || s.maximum !== undefined ? `${s.minimum ?? '…'} … ${s.maximum ?? '…'}` : null,
          s.maxLength ? `≤ ${s.maxLength} chars` : null,
        ]
          .filter(Boolean)
          .join(', ');
        const notes =
          name === 'image' && formats.length > 0
            ? `base64 of an image file (${formatList(formats)})`
            : (s.description ?? '');
        return h(
          'tr',
          {},
          h('td', { class: 'mono' }, name),
          h('td', { class: 'mono' }, typeOf(s)),
          h('td', {}, range),
          h('td', {}, notes),
        );
      }),
    ),
  );
}

/** @param {Record<string, string>} fields */
export function outputDocs(fields) {
  return h(
    'table',
    { class: 'grid compact docs' },
    h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, 'type and meaning'))),
    h(
      'tbody',
      {},
      Object.entries(fields).map(([name, text]) => h('tr', {}, h('td', { class: 'mono' }, name), h('td', {}, text))),
    ),
  );
}

/**
 * One form control per request field but the image, from the input's JSON schema.
 * @param {InputSchema} schema
 * @returns {OptionControl[]}
 */
export function optionControls(schema) {
  const required = new Set(schema.required ?? []);
  /** @type {OptionControl[]} */
  const controls = [];
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    if (name === 'image') continue;
    /** @type {unknown} */
    const initial = CONSOLE_DEFAULTS[name] ?? s.default;
    let control;
    if (s.enum) {
      control = h(
        'select',
        { name },
        s.enum.map((v) => h('option', { value: v, selected: v === initial }, String(v))),
      );
    } else if (s.type === 'boolean') {
      control = h('input', { type: 'checkbox', name, checked: initial === true });
    } else if (s.type === 'number' || s.type === 'integer') {
      control = h('input', {
        type: 'number',
        name,
        min: s.minimum,
        max: s.maximum,
        step: s.type === 'integer' ? 1 : 'any',
        placeholder: s.default !== undefined ? String(s.default) : 'model default',
        value: '',
      });
    } else if (s.type === 'string' && (s.maxLength ?? 0) > LONG_TEXT) {
      control = h('textarea', {
        name,
        rows: required.has(name) ? 3 : 2,
        required: required.has(name),
        placeholder: required.has(name) ? 'text' : 'optional',
      });
    } else {
      control = h('input', { type: 'text', name, value: initial ?? '', placeholder: s.default ?? '' });
    }
    controls.push({
      name,
      schema: s,
      required: required.has(name),
      control,
      label: h('label', { class: `option option-${name}` }, h('span', { class: 'option-name' }, name), control),
    });
  }
  return controls;
}

/**
 * The request's fields: only what the user set, or what differs from the hub's default.
 * @param {OptionControl[]} controls
 * @returns {Record<string, unknown>}
 */
export function collectOptions(controls) {
  /** @type {Record<string, unknown>} */
  const input = {};
  for (const { name, schema, required, control } of controls) {
    if (control instanceof HTMLInputElement && control.type === 'checkbox') {
      if (control.checked !== (schema.default ?? false)) input[name] = control.checked;
    } else if (control instanceof HTMLInputElement && control.type === 'number') {
      if (control.value !== '') input[name] = Number(control.value);
    } else if (control.value !== '' && (control.value !== schema.default || required)) {
      input[name] = control.value;
    }
  }
  return input;
}
