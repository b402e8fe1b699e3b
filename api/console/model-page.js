// @ts-check
// A model's page (/models/{name}): its documentation, its example input, and a try-it panel
// that submits a job, waits for it, draws the answer and shows the request as curl, SDK and CLI.
import { ErrorCodes, ModelHubError, statusOfErrorCode } from '/sdk/index.js';
import { base64ToBlob, blobToBase64, download, fmt, h } from './dom.js';
import { drawOutput } from './draw.js';
import { collectOptions, inputDocs, optionControls, outputDocs } from './model-docs.js';
import { cliSnippet, curlSnippet, previewJson, sdkSnippet } from './snippets.js';
import { copyable, errorBox, plainDescription, statusBadge, weightsBadge } from './widgets.js';

/** @typedef {import('/sdk/index.js').ModelDetail} ModelDetail */
/** @typedef {import('/sdk/index.js').Job} Job */
/** @typedef {import('/sdk/index.js').SpecErrorBody} SpecErrorBody */
/** @typedef {import('./snippets.js').SnippetRequest} SnippetRequest */

/**
 * @param {string} url
 * @returns {Promise<{ width: number, height: number } | null>}
 */
function imageSize(url) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

/**
 * @param {import('./page.js').PageContext} page
 * @param {string} name
 */
export async function modelPage({ app, session }, name) {
  const detail = await session.withKey((hub) => hub.model(name));
  document.title = `${detail.name} · ModelHub`;
  const isImage = detail.modality === 'image';
  const formats = detail.image_formats;
  const schema = /** @type {import('./model-docs.js').InputSchema} */ (detail.input.schema);
  const example = () => session.withKey((hub) => hub.example(detail.name));
  /** @param {unknown} err @param {string} [title] */
  const refusal = (err, title) => errorBox(err, { formats, ...(title ? { title } : {}) });

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
              new Blob([JSON.stringify(await example(), null, 2)], { type: 'application/json' }),
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
                  base64ToBlob(/** @type {{ image: string }} */ (await example()).image, 'image/png'),
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

  // Try-it panel. The file chooser offers the formats the model accepts.
  /** @type {HTMLInputElement | null} */
  const fileInput = isImage
    ? h('input', { type: 'file', id: 'file', name: 'file', accept: formats.map((f) => `image/${f}`).join(',') })
    : null;
  const preview = h('div', { class: 'preview' });
  const controls = optionControls(schema);
  /** @type {HTMLButtonElement} */
  const runButton = h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Run');
  /** @type {HTMLButtonElement} */
  const cancelButton = h('button', { type: 'button', id: 'cancel-job', hidden: true }, 'Cancel job');
  /** @type {HTMLParagraphElement} */
  const statusLine = h('p', { class: 'status-line', id: 'job-status', 'aria-live': 'polite' });
  const result = h('div', { id: 'result' });
  /** @type {{ blob: Blob, name: string, url: string } | null} */
  let chosen = null;

  /** @param {Blob} blob @param {string} fileName */
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
    const input = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (await example()));
    if (isImage) {
      if (fileInput) fileInput.value = '';
      choose(base64ToBlob(String(input.image), 'image/png'), `${detail.name}-example.png`);
    } else {
      for (const { name: field, control } of controls)
        if (input[field] !== undefined) control.value = String(input[field]);
    }
  }

  const form = h(
    'form',
    {
      class: 'try-it',
      id: 'try-it',
      on: {
        /** @param {SubmitEvent} e */
        submit: (e) => {
          e.preventDefault();
          run().catch((err) => result.replaceChildren(refusal(err)));
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
    /** @type {Record<string, unknown>} */
    let input;
    /** @type {{ url: string, width: number, height: number } | null} */
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
    /** @type {SnippetRequest} */
    const request = {
      origin: location.origin,
      model: detail.name,
      input: isImage ? { ...input, image: '' } : input,
      fileName: chosen?.name ?? 'image.png',
      hasKey: session.hasKey,
    };
    /** @type {Job} */
    let job;
    try {
      job = await session.withKey((hub) => hub.submit(detail.name, /** @type {any} */ (input)));
      status = job.status;
      statusLine.dataset.jobId = job.id;
      // A queued job can be canceled (a model with no worker would otherwise wait for one).
      const id = job.id;
      cancelButton.hidden = false;
      cancelButton.onclick = () => session.hub.cancel(id).catch((err) => result.replaceChildren(refusal(err)));
      job = await session.hub.wait(job, { holdS: 2, pollMs: 100, onUpdate: (j) => (status = j.status) });
      status = job.status;
    } catch (err) {
      status = 'refused';
      result.replaceChildren(
        refusal(err),
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
    if (job.status === 'succeeded' && job.output) {
      drawing =
        isImage && !image
          ? h(
              'p',
              { class: 'muted' },
              'The browser cannot display this image, so the result is not drawn; see the JSON below.',
            )
          : await drawOutput(detail.task, job.output, image, detail.labels);
    } else {
      const e = /** @type {SpecErrorBody | undefined} */ (job.output) ?? {
        success: false,
        error_code: ErrorCodes.INTERNAL.code,
        error_msg: `job ${job.status}`,
      };
      drawing = refusal(
        new ModelHubError({ ...e, success: false }, statusOfErrorCode(e.error_code)),
        job.status === 'canceled' ? 'The job was canceled: ' : 'The job failed: ',
      );
    }
    result.replaceChildren(
      h('div', { class: 'drawing' }, drawing),
      rawJson(job),
      snippets({ ...request, jobId: job.id }),
    );
  }

  /** @param {unknown} value */
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
              /** @param {Event} e */
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

  /** @param {SnippetRequest} request */
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
              ? `This model’s weights are not installed: requests answer error ${ErrorCodes.MODEL_UNAVAILABLE.code}.`
              : 'No worker serves this model right now: jobs wait in its queue until one starts.',
          )
        : null,
    ),
    h(
      'div',
      { class: 'columns' },
      h('section', {}, h('h2', {}, 'Input'), inputDocs(schema, formats)),
      h('section', {}, h('h2', {}, 'Output'), outputDocs(detail.output.fields)),
    ),
    h('section', {}, h('h2', {}, 'Example input'), exampleButtons),
    h('section', { class: 'card' }, h('h2', {}, 'Try it'), form, result),
  );
}
