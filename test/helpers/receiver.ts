/** A webhook receiver on loopback that records every delivery and answers as told. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Resolves once `n` deliveries arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

/** `respond` gets the delivery's index and returns the status to answer, or 'hang' to never answer. */
export async function startReceiver(
  respond: (index: number, d: Delivery) => number | 'hang' = () => 204,
): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const d: Delivery = { headers: req.headers, body, json: JSON.parse(body) };
      const answer = respond(deliveries.length, d);
      deliveries.push(d);
      waiters.splice(0).forEach((w) => w());
      if (answer === 'hang') return;
      res.statusCode = answer;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    deliveries,
    async waitFor(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (deliveries.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${deliveries.length} of ${n} deliveries arrived`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
      return deliveries;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
