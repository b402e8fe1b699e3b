// The ModelHub console: a catalog of the hub's models and a page per model with its
// documentation and a try-it panel. It talks to the hub only through the TypeScript SDK
// (served at /sdk/), the same client users import, and through the public job API.
import { ModelHub, ModelHubError } from '/sdk/index.js';
import { h, fmt, download, base64ToBlob, blobToBase64 } from './dom.js';
import { drawOutput } from './draw.js';
import { cliSnippet, curlSnippet, previewJson, sdkSnippet } from './snippets.js';

const KEY_STORAGE = 'modelhub.apiKey';
const app = document.getElementById('app');
let hub = connect();
let stopPage = () => {};

function connect() {
  const apiKey = sessionStorage.getItem(KEY_STORAGE) || undefined;
  document.getElementById('key-state').hidden = !apiKey;
  document.getElementById('key-forget').hidden = !apiKey;
  return new ModelHub({ url: location.origin, apiKey });
}

// ---- API key: asked for when the hub answers 1101/1102, kept in sessionStorage only ----

function askKey(message) {
  const dialog = document.getElementById('key-dialog');
  const error = document.getElementById('key-error');
  error.hidden = !message;
  error.textContent = message ?? '';
  return new Promise((resolve) => {
    const form = document.getElementById('key-form');
    const input = document.getElementById('key-input');
    const onSubmit = () => {
      form.removeEventListener('submit', onSubmit);
      sessionStorage.setItem(KEY_STORAGE, input.value.trim());
      input.value = '';
      hub = connect();
      resolve();
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    if (!dialog.open) dialog.showModal();
  });
}

/** Runs a call; when the hub wants a key (or another one), asks for it and tries again. */
async function withKey(call) {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ModelHubError) || (err.error_code !== 1101 && err.error_code !== 1102)) throw err;
      await askKey(sessionStorage.getItem(KEY_STORAGE) ? `The hub refused the key: ${err.error_msg}` : null);
    }
  }
}

document.getElementById('key-forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  hub = connect();
  route();
});

// ---- routing: / is the catalog, /models/{name} a model's page ----

function navigate(path) {
  history.pushState(null, '', path);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', () => route());

function route() {
  stopPage();
  stopPage = () => {};
  const m = /^\/models\/([^/]+)\/?$/.exec(location.pathname);
  const page = m ? modelPage(decodeURIComponent(m[1])) : catalogPage();
  page.catch((err) => app.replaceChildren(errorBox(err)));
}

// ---- shared pieces ----

const STATUS_TEXT = { ready: 'ready', no_workers: 'no workers', unavailable: 'unavailable' };
const badge = (text, kind) => h('span', { class: `badge ${kind}` }, text);
const statusBadge = (m) => badge(STATUS_TEXT[m.status] ?? m.status, m.status);
const weightsBadge = (m) =>
  m.weights === 'test'
    ? badge('test weights', 'test')
    : m.weights === 'missing'
      ? badge('no weights', 'unavailable')
      : m.verification === 'verified'
        ? badge('verified weights', 'ready')
        : m.verification === 'unverified'
          ? badge('unverified weights', 'no_workers')
          : null;
/** The weights file's digest, short, with the full sha256 on hover (where the catalog names one). */
const digest = (m) =>
  m.weights_sha256
    ? h('code', { class: 'digest small', title: m.weights_sha256 }, m.weights_sha256.slice(0, 12))
    : null;
/** The catalog marks test models in the description; the console shows a badge instead. */
const plainDescription = (d) => d.replace(/\s*\[TEST MODEL[^\]]*\]/, '');

const HINTS = {
  1003: 'The file is not an image the hub can decode. Use a JPEG, PNG, WebP, GIF, TIFF or AVIF file.',
  1004: 'The image is larger than this hub accepts (MAX_IMAGE_BYTES / MAX_IMAGE_PIXELS).',
  1005: 'The request is larger than this hub accepts (MAX_BODY_BYTES).',
  1204: "The model's weights are not installed on this hub.",
  1401: "The model's queue is full; try again in a few seconds.",
  1501: 'The hub cannot reach its Redis right now.',
};

function errorBox(err, title = 'The hub refused the request: ') {
  if (err instanceof ModelHubError) {
    return h(
      'div',
      { class: 'error', role: 'alert' },
      h('p', { class: 'error-title' }, title, h('span', { class: 'error-msg' }, err.error_msg)),
      HINTS[err.error_code] ? h('p', {}, HINTS[err.error_code]) : null,
      h(
        'p',
        { class: 'muted' },
        `error_code ${err.error_code} · HTTP ${err.status}${err.request_id ? ` · job ${err.request_id}` : ''}`,
      ),
    );
  }
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h(
      'p',
      { class: 'error-title' },
      'Something went wrong: ',
      h('span', { class: 'error-msg' }, String(err?.message ?? err)),
    ),
  );
}

function copyable(title, text, id) {
  const pre = h('pre', { class: 'snippet', id }, text);
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
            getSelection().selectAllChildren(pre);
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

// ---- catalog ----

async function catalogPage() {
  document.title = 'Models · ModelHub';
  const tbody = h('tbody');
  const note = h('p', { class: 'muted small' });
  const usage = h('div', { class: 'usage' });
  app.replaceChildren(
    h(
      'section',
      {},
      h('h1', {}, 'Models'),
      h(
        'p',
        { class: 'lead' },
        'Every model this hub serves, with its live workers and queue. Open one to read its inputs and outputs and try it.',
      ),
      h(
        'table',
        { class: 'grid catalog' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Model', 'Task', 'Description', 'Status', 'Workers', 'Queue'].map((t) => h('th', {}, t)),
          ),
        ),
        tbody,
      ),
      note,
    ),
    h(
      'section',
      {},
      h('h2', {}, 'Your usage'),
      h(
        'p',
        { class: 'muted small' },
        'What your key holds against its quotas, from the counters a 429 (error_code 1402) is decided on.',
      ),
      usage,
    ),
  );
  let alive = true;
  stopPage = () => (alive = false);
  const refresh = async () => {
    const models = await withKey(() => hub.models());
    if (!alive) return;
    tbody.replaceChildren(
      ...models.map((m) =>
        h(
          'tr',
          { 'data-model': m.name },
          h(
            'td',
            {},
            h('a', { href: `/models/${encodeURIComponent(m.name)}`, 'data-link': true, class: 'model-link' }, m.name),
          ),
          h('td', {}, h('span', { class: 'task' }, m.task)),
          h('td', { class: 'description' }, plainDescription(m.description)),
          h('td', { class: 'status' }, statusBadge(m), ' ', weightsBadge(m), ' ', digest(m)),
          h('td', { class: 'num' }, m.workers),
          h(
            'td',
            { class: 'num queue' },
            m.queue ? `${m.queue.waiting} waiting · ${m.queue.active} running` : 'unknown',
          ),
        ),
      ),
    );
    note.textContent = `${models.length} models · live, refreshed ${new Date().toLocaleTimeString()}`;
    const mine = await withKey(() => hub.usage());
    if (alive) usage.replaceChildren(usageTable(mine));
  };
  await refresh();
  const timer = setInterval(
    () => refresh().catch((err) => (note.textContent = `Refresh failed: ${err.message}`)),
    5000,
  );
  stopPage = () => {
    alive = false;
    clearInterval(timer);
  };
}

/** A tenant's usage per model (only where it holds something), against its limits. */
function usageTable(u) {
  const limit = (n, unit) => (n === 0 ? 'no limit' : `${fmt(n)}${unit}`);
  const rows = Object.entries(u.models).filter(([, m]) => m.waiting.used > 0 || m.stored_bytes.used > 0);
  const who = h('p', {}, 'Tenant: ', h('strong', {}, u.tenant ?? 'open hub (no API keys)'));
  if (rows.length === 0) return h('div', {}, who, h('p', { class: 'muted' }, 'Nothing waiting or stored.'));
  return h(
    'div',
    {},
    who,
    h(
      'table',
      { class: 'grid usage-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Model', 'Waiting jobs', 'Stored bytes'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        ...rows.map(([name, m]) =>
          h(
            'tr',
            { 'data-usage-model': name },
            h('td', {}, name),
            h('td', { class: 'num' }, `${fmt(m.waiting.used)} of ${limit(m.waiting.limit, '')}`),
            h('td', { class: 'num' }, `${fmt(m.stored_bytes.used)} of ${limit(m.stored_bytes.limit, ' bytes')}`),
          ),
        ),
      ),
    ),
  );
}

// ---- a model's page ----

const IMAGE_TASKS = new Set([
  'image-classification',
  'object-detection',
  'semantic-segmentation',
  'instance-segmentation',
]);
/** The console asks for compact mask encodings by default (the same masks, far smaller answers). */
const CONSOLE_DEFAULTS = { mask_encoding: 'rle', encoding: 'rle' };

function typeOf(s) {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' | ');
  return s.type ?? 'any';
}

function inputDocs(schema) {
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
          name === 'image' ? 'base64 of an image file (JPEG, PNG, WebP, GIF, TIFF, AVIF)' : (s.description ?? '');
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

function outputDocs(fields) {
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

/** One form control per request option, from the input's JSON schema. */
function optionControls(schema, isImage) {
  const controls = [];
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    if (name === 'image') continue;
    const initial = CONSOLE_DEFAULTS[name] ?? s.default;
    let control;
    if (s.enum) {
      control = h(
        'select',
        { name },
        s.enum.map((v) => h('option', { value: v, selected: v === initial }, v)),
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
    } else if (!isImage && (name === 'first_sequence' || name === 'second_sequence')) {
      control = h('textarea', {
        name,
        rows: name === 'first_sequence' ? 3 : 2,
        required: name === 'first_sequence',
        placeholder: name === 'first_sequence' ? '双十一花呗提额在哪' : 'optional second sentence',
      });
    } else {
      control = h('input', { type: 'text', name, value: initial ?? '', placeholder: s.default ?? '' });
    }
    controls.push({
      name,
      schema: s,
      control,
      label: h('label', { class: `option option-${name}` }, h('span', { class: 'option-name' }, name), control),
    });
  }
  return controls;
}

/** The request's options: only what the user set, or what differs from the hub's default. */
function collectOptions(controls) {
  const input = {};
  for (const { name, schema, control } of controls) {
    if (control.type === 'checkbox') {
      if (control.checked !== (schema.default ?? false)) input[name] = control.checked;
    } else if (control.type === 'number') {
      if (control.value !== '') input[name] = Number(control.value);
    } else if (control.value !== '' && (control.value !== schema.default || name === 'first_sequence')) {
      input[name] = control.value;
    }
  }
  return input;
}

function imageSize(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

async function modelPage(name) {
  const detail = await withKey(() => hub.model(name));
  document.title = `${detail.name} · ModelHub`;
  const isImage = IMAGE_TASKS.has(detail.task);
  const schema = detail.input.schema;

  // Example input: downloadable as the JSON request body, and (images) as the image file.
  const exampleButtons = h(
    'div',
    { class: 'row' },
    h(
      'button',
      {
        type: 'button',
        on: {
          click: async () =>
            download(
              `${detail.name}-example.json`,
              new Blob([JSON.stringify(await withKey(() => hub.example(detail.name)), null, 2)], {
                type: 'application/json',
              }),
            ),
        },
      },
      'Download example input (JSON)',
    ),
    isImage
      ? h(
          'button',
          {
            type: 'button',
            on: {
              click: async () =>
                download(
                  `${detail.name}-example.png`,
                  base64ToBlob((await withKey(() => hub.example(detail.name))).image, 'image/png'),
                ),
            },
          },
          'Download example image',
        )
      : null,
    h(
      'button',
      { type: 'button', class: 'primary', id: 'use-example', on: { click: () => useExample() } },
      isImage ? 'Try the example image' : 'Fill in the example text',
    ),
  );

  // Try-it panel.
  const fileInput = isImage ? h('input', { type: 'file', id: 'file', name: 'file', accept: 'image/*' }) : null;
  const preview = h('div', { class: 'preview' });
  const controls = optionControls(schema, isImage);
  const runButton = h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Run');
  const cancelButton = h('button', { type: 'button', id: 'cancel-job', hidden: true }, 'Cancel job');
  const statusLine = h('p', { class: 'status-line', id: 'job-status', 'aria-live': 'polite' });
  const result = h('div', { id: 'result' });
  let chosen = null; // { blob, name, url }

  function choose(blob, fileName) {
    if (chosen?.url) URL.revokeObjectURL(chosen.url);
    chosen = { blob, name: fileName, url: URL.createObjectURL(blob) };
    const thumb = h('img', { src: chosen.url, alt: fileName, class: 'thumb' });
    const label = h('span', { class: 'muted small' }, `${fileName} · ${(blob.size / 1024).toFixed(1)} KiB`);
    thumb.addEventListener('error', () =>
      thumb.replaceWith(h('span', { class: 'no-preview' }, 'no preview: the browser cannot display this file')),
    );
    preview.replaceChildren(thumb, label);
  }
  fileInput?.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (file) choose(file, file.name);
  });

  async function useExample() {
    const example = await withKey(() => hub.example(detail.name));
    if (isImage) {
      if (fileInput) fileInput.value = '';
      choose(base64ToBlob(example.image, 'image/png'), `${detail.name}-example.png`);
    } else {
      for (const { name: field, control } of controls)
        if (example[field] !== undefined) control.value = String(example[field]);
    }
  }

  const form = h(
    'form',
    {
      class: 'try-it',
      id: 'try-it',
      on: {
        submit: (e) => {
          e.preventDefault();
          run().catch((err) => result.replaceChildren(errorBox(err)));
        },
      },
    },
    isImage ? h('label', { class: 'file' }, h('span', { class: 'option-name' }, 'image file'), fileInput) : null,
    preview,
    controls.length
      ? h(
          'fieldset',
          { class: 'options' },
          h('legend', {}, isImage ? 'options' : 'input'),
          controls.map((c) => c.label),
        )
      : null,
    h('div', { class: 'row' }, runButton, cancelButton, statusLine),
  );

  async function run() {
    const options = collectOptions(controls);
    let input;
    let image = null;
    if (isImage) {
      if (!chosen) throw new Error('Choose an image file first (or try the example image).');
      input = { image: await blobToBase64(chosen.blob), ...options };
      const size = await imageSize(chosen.url);
      if (size) image = { url: chosen.url, ...size };
    } else {
      input = options;
    }
    runButton.disabled = true;
    result.replaceChildren();
    const started = performance.now();
    let status = 'submitting';
    const tick = () => (statusLine.textContent = `${status} · ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const timer = setInterval(tick, 100);
    tick();
    const request = {
      origin: location.origin,
      model: detail.name,
      input: { ...input, ...(isImage ? { image: '' } : {}) },
      fileName: chosen?.name ?? 'image.png',
      hasKey: Boolean(sessionStorage.getItem(KEY_STORAGE)),
    };
    if (!isImage) request.input = input;
    let job;
    try {
      job = await withKey(() => hub.submit(detail.name, input));
      status = job.status;
      statusLine.dataset.jobId = job.id;
      // A queued job can be canceled (a model with no worker would otherwise wait for one).
      const id = job.id;
      cancelButton.hidden = false;
      cancelButton.onclick = () => hub.cancel(id).catch((err) => result.replaceChildren(errorBox(err)));
      job = await hub.wait(job, { holdS: 2, pollMs: 100, onUpdate: (j) => (status = j.status) });
      status = job.status;
    } catch (err) {
      status = 'refused';
      result.replaceChildren(
        errorBox(err),
        rawJson(
          err instanceof ModelHubError
            ? {
                success: false,
                error_code: err.error_code,
                error_msg: err.error_msg,
                ...(err.request_id ? { request_id: err.request_id } : {}),
              }
            : String(err),
        ),
        snippets({ ...request, jobId: undefined }),
      );
      return;
    } finally {
      clearInterval(timer);
      tick();
      runButton.disabled = false;
      cancelButton.hidden = true;
    }
    const m = job.metrics;
    statusLine.textContent =
      `${job.status} in ${((performance.now() - started) / 1000).toFixed(1)} s` +
      (m
        ? ` · queue ${fmt(m.queue_ms, 0)} ms · inference ${fmt(m.inference_ms, 0)} ms · batch of ${m.batch_size}`
        : '');
    statusLine.dataset.status = job.status;
    let drawing;
    if (job.status === 'succeeded') {
      drawing =
        isImage && !image
          ? h(
              'p',
              { class: 'muted' },
              'The browser cannot display this image, so the result is not drawn; see the JSON below.',
            )
          : await drawOutput(detail.task, job.output, image, detail.labels);
    } else {
      const e = job.output ?? { error_code: 2999, error_msg: `job ${job.status}` };
      drawing = errorBox(
        new ModelHubError({ success: false, ...e }, e.error_code === 2003 ? 409 : 500),
        job.status === 'canceled' ? 'The job was canceled: ' : 'The job failed: ',
      );
    }
    result.replaceChildren(
      h('div', { class: 'drawing' }, drawing),
      rawJson(job),
      snippets({ ...request, jobId: job.id }),
    );
  }

  function rawJson(value) {
    return h(
      'details',
      { class: 'raw', open: true },
      h(
        'summary',
        {},
        'Raw JSON',
        h(
          'button',
          {
            type: 'button',
            class: 'link small',
            on: {
              click: (e) => {
                e.preventDefault();
                download(
                  'modelhub-answer.json',
                  new Blob([JSON.stringify(value, null, 2)], { type: 'application/json' }),
                );
              },
            },
          },
          'download in full',
        ),
      ),
      h('pre', { class: 'json', id: 'raw-json' }, previewJson(value)),
    );
  }

  function snippets(request) {
    return h(
      'section',
      { class: 'snippets' },
      h('h3', {}, 'This request, ready to copy'),
      copyable('curl', curlSnippet(request), 'snippet-curl'),
      copyable('TypeScript SDK', sdkSnippet(request), 'snippet-sdk'),
      copyable('CLI', cliSnippet(request), 'snippet-cli'),
    );
  }

  app.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: '/', 'data-link': true }, 'Models'), ' / ', detail.name),
    h(
      'header',
      { class: 'model-head' },
      h('h1', {}, detail.name),
      h(
        'div',
        { class: 'badges' },
        h('span', { class: 'task' }, detail.task),
        statusBadge(detail),
        weightsBadge(detail),
        h(
          'span',
          { class: 'muted small' },
          `${detail.workers} worker${detail.workers === 1 ? '' : 's'} · ${detail.queue ? `${detail.queue.waiting} waiting · ${detail.queue.active} running` : 'queue unknown'}`,
        ),
      ),
      h('p', { class: 'lead' }, plainDescription(detail.description)),
      detail.weights === 'test'
        ? h(
            'p',
            { class: 'note' },
            'Test weights: a generated stand-in with the reference export’s signature answers here, so outputs have the right shape but are not real predictions. To serve the real model: ',
            h('code', {}, detail.make_real ?? 'drop the real weights in'),
          )
        : null,
      detail.weights_sha256
        ? h(
            'p',
            { class: 'muted small' },
            `Weights: ${detail.weights_file} · sha256 `,
            h('code', { class: 'digest' }, detail.weights_sha256),
            ` · ${detail.verification}`,
            detail.license ? ` · ${detail.license}` : '',
          )
        : null,
      detail.status !== 'ready'
        ? h(
            'p',
            { class: 'note' },
            detail.status === 'unavailable'
              ? 'This model’s weights are not installed: requests answer error 1204.'
              : 'No worker serves this model right now: jobs wait in its queue until one starts.',
          )
        : null,
    ),
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h2', {}, 'Input'), inputDocs(schema)),
      h('section', {}, h('h2', {}, 'Output'), outputDocs(detail.output.fields)),
    ),
    h('section', {}, h('h2', {}, 'Example input'), exampleButtons),
    h('section', { class: 'card' }, h('h2', {}, 'Try it'), form, result),
  );
}

route();
