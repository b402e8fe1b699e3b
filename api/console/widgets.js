// @ts-check
// Pieces both pages use: status and weights badges, the spec error in words, copyable snippets.
import { ErrorCodes, ModelHubError } from '/sdk/index.js';
import { h } from './dom.js';

/** @typedef {import('/sdk/index.js').ModelSummary} ModelSummary */
/** @typedef {import('/sdk/index.js').ImageFormat} ImageFormat */

/** @type {Record<ModelSummary['status'], string>} */
const STATUS_TEXT = { ready: 'ready', no_workers: 'no workers', unavailable: 'unavailable' };

/** @param {string} text @param {string} kind */
const badge = (text, kind) => h('span', { class: `badge ${kind}` }, text);

/** @param {ModelSummary} m */
export const statusBadge = (m) => badge(STATUS_TEXT[m.status] ?? m.status, m.status);

/** @param {ModelSummary} m */
export const weightsBadge = (m) =>
  m.weights === 'test'
    ? badge('test weights', 'test')
    : m.weights === 'missing'
      ? badge('no weights', 'unavailable')
      : m.verification === 'verified'
        ? badge('verified weights', 'ready')
        : m.verification === 'unverified'
          ? badge('unverified weights', 'no_workers')
          : null;

/**
 * The weights file's digest, short, with the full sha256 on hover (where the catalog names one).
 * @param {ModelSummary} m
 */
export const digest = (m) =>
  m.weights_sha256
    ? h('code', { class: 'digest small', title: m.weights_sha256 }, m.weights_sha256.slice(0, 12))
    : null;

/**
 * The catalog marks test models in the description; the console shows a badge instead.
 * @param {string} d
 */
export const plainDescription = (d) => d.replace(/\s*\[TEST MODEL[^\]]*\]/, '');

/**
 * "JPEG, PNG, WEBP, GIF or TIFF": the formats the model's catalog entry lists.
 * @param {readonly ImageFormat[]} formats
 */
export function formatList(formats) {
  const names = formats.map((f) => f.toUpperCase());
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : (names[0] ?? '');
}

/**
 * What to do about an error, where the console can say more than the hub's message.
 * @param {number} code
 * @param {readonly ImageFormat[]} formats the model's accepted image formats (none: not an image model)
 * @returns {string | null}
 */
function hint(code, formats) {
  switch (code) {
    case ErrorCodes.INVALID_IMAGE.code:
      return `The file is not an image the hub can decode. Use a ${formatList(formats)} file.`;
    case ErrorCodes.UNSUPPORTED_IMAGE_FORMAT.code:
      return `This model accepts ${formatList(formats)} files.`;
    case ErrorCodes.IMAGE_TOO_LARGE.code:
      return 'The image is larger than this hub accepts (MODELHUB_MAX_IMAGE_BYTES / MODELHUB_MAX_IMAGE_PIXELS).';
    case ErrorCodes.BODY_TOO_LARGE.code:
      return 'The request is larger than this hub accepts (MODELHUB_MAX_BODY_BYTES).';
    case ErrorCodes.MODEL_UNAVAILABLE.code:
      return "The model's weights are not installed on this hub.";
    case ErrorCodes.QUEUE_FULL.code:
      return "The model's queue is full; try again in a few seconds.";
    case ErrorCodes.STORE_UNAVAILABLE.code:
      return 'The hub cannot reach its Redis right now.';
    default:
      return null;
  }
}

/**
 * The hub's spec error in words (or any other failure).
 * @param {unknown} err
 * @param {{ title?: string, formats?: readonly ImageFormat[] }} [options]
 */
export function errorBox(err, { title = 'The hub refused the request: ', formats = [] } = {}) {
  if (err instanceof ModelHubError) {
    const advice = hint(err.error_code, formats);
    return h(
      'div',
      { class: 'error', role: 'alert' },
      h('p', { class: 'error-title' }, title, h('span', { class: 'error-msg' }, err.error_msg)),
      advice ? h('p', {}, advice) : null,
      h(
        'p',
        { class: 'muted' },
        `error_code ${err.error_code} · HTTP ${err.status}${err.request_id ? ` · job ${err.request_id}` : ''}`,
      ),
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('p', { class: 'error-title' }, 'Something went wrong: ', h('span', { class: 'error-msg' }, message)),
  );
}

/**
 * A snippet with a Copy button (selects the text where the clipboard is refused).
 * @param {string} title
 * @param {string} text
 * @param {string} id
 */
export function copyable(title, text, id) {
  const pre = h('pre', { class: 'snippet', id }, text);
  /** @type {HTMLButtonElement} */
  const button = h(
    'button',
    {
      type: 'button',
      class: 'copy',
      on: {
        click: async () => {
          try {
            await navigator.clipboard.writeText(text);
            button.textContent = 'Copied';
          } catch {
            getSelection()?.selectAllChildren(pre);
            button.textContent = 'Selected: press Ctrl+C';
          }
          setTimeout(() => (button.textContent = 'Copy'), 1500);
        },
      },
    },
    'Copy',
  );
  return h('div', { class: 'snippet-box' }, h('div', { class: 'snippet-head' }, h('span', {}, title), button), pre);
}
