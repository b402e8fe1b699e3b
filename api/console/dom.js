// @ts-check
// Small DOM helpers: h('tag', { attrs, on: { click } }, ...children). Text is always set as text.

/** @typedef {Node | string | number | null | undefined | false | any[]} Child (arrays of children, nested) */
/** @typedef {Record<string, unknown> & { on?: Record<string, (e: any) => unknown> }} Attrs */

/**
 * An element (`svg:` prefix: an SVG element) with attributes, listeners and children.
 * @param {string} tag
 * @param {Attrs | null} [attrs]
 * @param {...Child} children
 * @returns {any} the element (HTML or SVG: callers know which they asked for)
 */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on')
      for (const [ev, fn] of Object.entries(/** @type {Attrs['on']} */ (v) ?? {})) el.addEventListener(ev, fn);
    else if (k === 'class') el.setAttribute('class', String(v));
    // Through the CSSOM: the page's CSP refuses style attributes.
    else if (k === 'style') /** @type {HTMLElement} */ (el).style.cssText = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (!svg && k in el && typeof v !== 'string') /** @type {any} */ (el)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {Child[]} children
 * @returns {E}
 */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * An element of the page that must be there (index.html holds it).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

/** @param {number} x @param {number} [digits] */
export const fmt = (x, digits = 3) => (Number.isInteger(x) ? String(x) : Number(x).toFixed(digits));
/** @param {number} p */
export const pct = (p) => `${(p * 100).toFixed(p > 0.001 && p < 0.999 ? 1 : 2)} %`;

/**
 * A distinct colour per class id.
 * @param {number} id
 * @param {number} [alpha]
 */
export function colorOf(id, alpha = 1) {
  const hue = (id * 137.508 + 20) % 360;
  return `hsla(${hue.toFixed(0)}, 85%, 48%, ${alpha})`;
}

/**
 * @param {number} id
 * @returns {[number, number, number]}
 */
export function rgbOf(id) {
  const hue = ((id * 137.508 + 20) % 360) / 360;
  const s = 0.85;
  const l = 0.48;
  /** @param {number} n */
  const f = (n) => {
    const k = (n + hue * 12) % 12;
    const a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** @param {string} name @param {Blob} blob */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** @param {string} b64 @param {string} type */
export function base64ToBlob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

/**
 * @param {Blob} blob
 * @returns {Promise<string>}
 */
export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
