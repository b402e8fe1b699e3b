/** Left-aligned columns; numbers right-aligned. */
export function table(header, rows) {
    const cells = [header, ...rows.map((r) => r.map(String))];
    const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
    const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
    return cells
        .map((r) => r
        .map((c, i) => i === r.length - 1 && !numeric[i] ? c : numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))
        .join('  '))
        .join('\n');
}
const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const num = (x, digits = 4) => Number(x.toFixed(digits));
export function modelsTable(models) {
    return table(['NAME', 'TASK', 'STATUS', 'WEIGHTS', 'WORKERS', 'WAITING', 'RUNNING', 'DESCRIPTION'], models.map((m) => [
        m.name,
        m.task,
        m.status,
        m.weights,
        m.workers,
        m.queue ? m.queue.waiting : '?',
        m.queue ? m.queue.active : '?',
        clip(m.description.replace(/\s*\[TEST MODEL[^\]]*\]/, ''), 60),
    ]));
}
/** A tenant's usage: one row per model where it holds anything, then the limits. */
export function usageTable(usage) {
    const limit = (n) => (n === 0 ? 'none' : String(n));
    const rows = Object.entries(usage.models)
        .filter(([, m]) => m.waiting.used > 0 || m.stored_bytes.used > 0 || m.batch_items.used > 0)
        .map(([name, m]) => [
        name,
        m.waiting.used,
        limit(m.waiting.limit),
        m.stored_bytes.used,
        limit(m.stored_bytes.limit),
        m.batches_in_flight,
        m.batch_items.used,
        limit(m.batch_items.limit),
    ]);
    const who = `tenant: ${usage.tenant ?? '(open hub)'}`;
    if (rows.length === 0)
        return `${who}\nnothing waiting or stored`;
    return `${who}\n${table(['MODEL', 'WAITING', 'LIMIT', 'STORED BYTES', 'LIMIT', 'BATCHES', 'BATCH ITEMS', 'LIMIT'], rows)}`;
}
export function jobTable(job) {
    const rows = [
        ['id', job.id],
        ['model', job.model],
        ['status', job.status],
        ['created', job.created_at],
    ];
    if (job.started_at)
        rows.push(['started', job.started_at]);
    if (job.completed_at)
        rows.push(['completed', job.completed_at]);
    if (job.metrics)
        rows.push([
            'queue / inference',
            `${job.metrics.queue_ms} ms / ${job.metrics.inference_ms} ms (batch of ${job.metrics.batch_size})`,
        ]);
    if (job.webhook)
        rows.push([
            'webhook',
            `${job.webhook.attempts} attempt(s), last ${job.webhook.last_status ?? '-'}, delivered ${job.webhook.delivered_at ?? 'no'}`,
        ]);
    const out = job.output;
    if (out && out.success === false)
        rows.push(['error', `${out.error_msg} (error_code ${out.error_code})`]);
    const width = Math.max(...rows.map(([k]) => k.length));
    return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
/** Ones in an uncompressed RLE mask (odd-indexed runs). */
const rleArea = (m) => m.counts.reduce((sum, run, i) => (i % 2 === 1 ? sum + run : sum), 0);
function maskArea(mask) {
    if (Array.isArray(mask))
        return String(mask.reduce((s, row) => s + row.filter(Boolean).length, 0));
    if (mask && typeof mask === 'object' && 'counts' in mask)
        return String(rleArea(mask));
    return 'png';
}
function vectorSummary(name, value) {
    const rows = typeof value === 'string'
        ? value.split(';').map((r) => r.split(',').map(Number))
        : Array.isArray(value[0])
            ? value
            : [value];
    const first = rows[0] ?? [];
    const norm = Math.sqrt(first.reduce((s, x) => s + x * x, 0));
    const shape = rows.length > 1 || name === 'all_hidden_outputs' ? `${rows.length} × ${first.length}` : `${first.length}`;
    return `${name}: dimension ${shape}, norm ${num(norm)}${rows.length > 1 ? ' (first position)' : ''}, first values ${first
        .slice(0, 5)
        .map((x) => num(x))
        .join(', ')}`;
}
/** A few lines that say what a spec output holds; falls back to key names for unknown shapes. */
export function outputSummary(output) {
    if ('class_probs' in output) {
        const probs = Object.entries(output.class_probs)
            .sort((a, b) => b[1] - a[1])
            .slice(0, 5);
        return (`class ${output.class} (${output.class_name})\n` +
            table(['CLASS', 'PROBABILITY'], probs.map(([k, p]) => [k, Number(p.toPrecision(4))])));
    }
    if ('detection_boxes' in output) {
        const boxes = output.detection_boxes;
        const names = output.detection_class_names;
        const scores = output.detection_scores;
        const masks = output.detection_masks;
        const header = ['#', 'CLASS', 'SCORE', 'BOX [y1, x1, y2, x2]', ...(masks ? ['MASK PIXELS'] : [])];
        const rows = boxes.map((b, i) => [
            i + 1,
            `${names[i]} (${output.detection_classes[i]})`,
            num(scores[i], 3),
            `[${b.map((v) => num(v, 1)).join(', ')}]`,
            ...(masks ? [maskArea(masks[i])] : []),
        ]);
        return `${boxes.length} detection(s)` + (rows.length ? `\n${table(header, rows)}` : '');
    }
    if ('preds' in output) {
        const preds = output.preds;
        const counts = new Map();
        let size = '';
        if (Array.isArray(preds) && Array.isArray(preds[0])) {
            for (const row of preds)
                for (const c of row)
                    counts.set(c, (counts.get(c) ?? 0) + 1);
            size = `${preds.length} × ${preds[0].length}`;
        }
        else if (Array.isArray(preds)) {
            for (const m of preds) {
                counts.set(m.class, rleArea(m));
                size = `${m.size[0]} × ${m.size[1]}`;
            }
        }
        else {
            return `class map: PNG ${preds.size.join(' × ')}`;
        }
        const total = [...counts.values()].reduce((a, b) => a + b, 0);
        const rows = [...counts.entries()]
            .sort((a, b) => b[1] - a[1])
            .map(([c, n]) => [c, n, `${num((100 * n) / total, 1)} %`]);
        return `class map ${size}\n${table(['CLASS', 'PIXELS', 'SHARE'], rows)}`;
    }
    const vectors = ['pool_output', 'first_token_output', 'all_hidden_outputs'].filter((k) => k in output);
    if (vectors.length)
        return vectors.map((k) => vectorSummary(k, output[k])).join('\n');
    return Object.keys(output).join(', ');
}
