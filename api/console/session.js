// @ts-check
// The console's connection to the hub: the SDK client, and the API key, asked for when the hub
// answers 401/403 and kept in the tab's sessionStorage only.
import { ErrorCodes, ModelHub, ModelHubError } from '/sdk/index.js';
import { byId } from './dom.js';

const KEY_STORAGE = 'modelhub.apiKey';
/** The codes after which asking for (another) key may help. */
const KEY_CODES = [ErrorCodes.UNAUTHORIZED.code, ErrorCodes.FORBIDDEN.code];

export class Session {
  /** @type {ModelHub} */
  hub;

  constructor() {
    this.hub = this.connect();
  }

  /** Whether this tab holds a key (the snippets then say where to put yours). */
  get hasKey() {
    return Boolean(sessionStorage.getItem(KEY_STORAGE));
  }

  /** @returns {ModelHub} */
  connect() {
    const apiKey = sessionStorage.getItem(KEY_STORAGE) || undefined;
    byId('key-state').hidden = !apiKey;
    byId('key-forget').hidden = !apiKey;
    this.hub = new ModelHub({ url: location.origin, apiKey });
    return this.hub;
  }

  forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    this.connect();
  }

  /**
   * @param {string | null} message why the last key was refused, or null
   * @returns {Promise<void>}
   */
  askKey(message) {
    const dialog = /** @type {HTMLDialogElement} */ (byId('key-dialog'));
    const error = byId('key-error');
    error.hidden = !message;
    error.textContent = message ?? '';
    return new Promise((resolve) => {
      const form = byId('key-form');
      const input = /** @type {HTMLInputElement} */ (byId('key-input'));
      const onSubmit = () => {
        form.removeEventListener('submit', onSubmit);
        sessionStorage.setItem(KEY_STORAGE, input.value.trim());
        input.value = '';
        this.connect();
        resolve();
      };
      form.addEventListener('submit', onSubmit);
      dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
      if (!dialog.open) dialog.showModal();
    });
  }

  /**
   * Runs a call; when the hub wants a key (or another one), asks for it and tries again.
   * @template T
   * @param {(hub: ModelHub) => Promise<T>} call
   * @returns {Promise<T>}
   */
  async withKey(call) {
    for (;;) {
      try {
        return await call(this.hub);
      } catch (err) {
        if (!(err instanceof ModelHubError) || !KEY_CODES.some((c) => c === err.error_code)) throw err;
        await this.askKey(this.hasKey ? `The hub refused the key: ${err.error_msg}` : null);
      }
    }
  }
}
