// @ts-check
// The catalog (/): every model with its task, status, weights, live workers and queue, refreshed
// every 5 s, and the caller's usage against its quotas.
import { ErrorCodes } from '/sdk/index.js';
import { fmt, h } from './dom.js';
import { digest, plainDescription, statusBadge, weightsBadge } from './widgets.js';

/** @typedef {import('/sdk/index.js').Usage} Usage */

/** @param {import('./page.js').PageContext} page */
export async function catalogPage({ app, session, life }) {
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
        `What your key holds against its quotas, from the counters a 429 (error_code ${ErrorCodes.TENANT_QUOTA.code}) is decided on.`,
      ),
      usage,
    ),
  );
  const refresh = async () => {
    const models = await session.withKey((hub) => hub.models());
    if (!life.alive) return;
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
    const mine = await session.withKey((hub) => hub.usage());
    if (life.alive) usage.replaceChildren(usageTable(mine));
  };
  await refresh();
  const timer = setInterval(
    () => refresh().catch((err) => (note.textContent = `Refresh failed: ${err.message}`)),
    5000,
  );
  life.onStop(() => clearInterval(timer));
}

/**
 * A tenant's usage per model (only where it holds something), against its limits.
 * @param {Usage} u
 */
function usageTable(u) {
  /** @param {number} n @param {string} unit */
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
