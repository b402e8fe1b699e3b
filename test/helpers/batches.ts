/** Client helpers for batch tests: JSONL upload, poll until finished, read results. */
import { expect } from 'vitest';

export async function postJsonl(
  url: string,
  lines: string[],
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body: lines.join('\n') + '\n',
  });
  return { status: r.status, body: await r.json() };
}

/** Polls GET /v1/batches/:id until no item is queued or running. */
export async function pollBatch(
  baseUrl: string,
  id: string,
  headers: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(`${baseUrl}/v1/batches/${id}`, { headers });
    const body = await r.json();
    if (r.status !== 200) throw new Error(`GET batch: ${r.status} ${JSON.stringify(body)}`);
    if (body.counts.queued === 0 && body.counts.running === 0 && body.completed_at) return body;
    if (Date.now() > deadline) throw new Error(`batch ${id} unfinished: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Result lines of a batch, parsed. */
export async function results(
  baseUrl: string,
  id: string,
  order = 'completion',
  headers: Record<string, string> = {},
): Promise<any[]> {
  const r = await fetch(`${baseUrl}/v1/batches/${id}/results?order=${order}`, { headers });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/application\/x-ndjson/);
  const text = await r.text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}
