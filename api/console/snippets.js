// @ts-check
// Ready-to-copy snippets of the request the console just made (curl, SDK, CLI), and a JSON view
// that keeps long arrays short.

/**
 * The request the console made, as the snippets need it.
 * @typedef {object} SnippetRequest
 * @property {string} origin the hub's URL
 * @property {string} model
 * @property {Record<string, unknown>} input the spec input (its image, if any, empty: the snippets read the file)
 * @property {string} fileName the image file's name
 * @property {string} [jobId] the job the console ran
 * @property {boolean} hasKey whether the hub needs a key (the snippets read it from $MODELHUB_API_KEY)
 */

/** @param {unknown} s */
const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/**
 * The request's options (everything but the image) as JSON members, e.g. `,"max_detections":5`.
 * @param {Record<string, unknown>} options
 */
const optionMembers = (options) =>
  Object.entries(options)
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join('');

/** @param {SnippetRequest} request */
export function curlSnippet({ origin, model, input, fileName, jobId, hasKey }) {
  const auth = hasKey ? ` \\\n  -H "Authorization: Bearer $MODELHUB_API_KEY"` : '';
  const { image, ...options } = input;
  const body =
    image !== undefined
      ? `'{"input":{"image":"'"$(base64 -w0 ${shellQuote(fileName)})"'"${optionMembers(options)}}}'`
      : shellQuote(JSON.stringify({ input }));
  return [
    `# submit, holding the answer up to 30 s until the job finishes`,
    `curl -s ${origin}/v1/models/${model}/jobs -H 'Prefer: wait=30'${auth} \\\n  -H 'Content-Type: application/json' -d ${body}`,
    `# read the job (the one the console just ran: ${jobId ?? 'id from the answer above'})`,
    `curl -s ${origin}/v1/jobs/${jobId ?? '<id>'}${hasKey ? ' -H "Authorization: Bearer $MODELHUB_API_KEY"' : ''}`,
  ].join('\n');
}

/** @param {SnippetRequest} request */
export function sdkSnippet({ origin, model, input, fileName, hasKey }) {
  const { image, ...options } = input;
  const fields =
    image !== undefined
      ? [
          `image: (await readFile(${JSON.stringify(fileName)})).toString('base64')`,
          ...Object.entries(options).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
        ]
      : Object.entries(input).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  return [
    ...(image !== undefined ? [`import { readFile } from 'node:fs/promises';`] : []),
    `import { ModelHub } from '@modelhub/client'; // clients/typescript in the ModelHub repository`,
    ``,
    `const hub = new ModelHub({ url: ${JSON.stringify(origin)}${hasKey ? ', apiKey: process.env.MODELHUB_API_KEY' : ''} });`,
    `const job = await hub.submit(${JSON.stringify(model)}, { ${fields.join(', ')} });`,
    `const done = await hub.wait(job, { onUpdate: (j) => console.error(j.status) });`,
    `console.log(done.output); // or in one call: await hub.predict(${JSON.stringify(model)}, { … })`,
  ].join('\n');
}

/** @param {SnippetRequest} request */
export function cliSnippet({ origin, model, input, fileName, hasKey }) {
  const { image, first_sequence, second_sequence, ...options } = input;
  const args = ['npx modelhub', `--url ${origin}`, ...(hasKey ? ['--key "$MODELHUB_API_KEY"'] : []), 'predict', model];
  if (image !== undefined) args.push(shellQuote(fileName));
  if (first_sequence !== undefined) args.push(`--text ${shellQuote(first_sequence)}`);
  if (second_sequence) args.push(`--pair ${shellQuote(second_sequence)}`);
  for (const [k, v] of Object.entries(options))
    args.push(`-p ${shellQuote(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)}`);
  return args.join(' ');
}

/** JSON with arrays past `limit` items cut ("… 12,345 more") and long strings shortened. */
/**
 * @param {unknown} value
 * @param {number} [limit]
 */
export function previewJson(value, limit = 24) {
  /**
   * @param {unknown} v
   * @returns {unknown}
   */
  const seen = (v) => {
    if (Array.isArray(v)) {
      const head = v.slice(0, limit).map(seen);
      if (v.length > limit) head.push(`… ${(v.length - limit).toLocaleString('en')} more`);
      return head;
    }
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, seen(x)]));
    if (typeof v === 'string' && v.length > 400)
      return `${v.slice(0, 400)}… (${v.length.toLocaleString('en')} characters)`;
    return v;
  };
  return JSON.stringify(seen(value), null, 2);
}
