/**
 * The run's webhook receiver. Its mode is a fault: `ok` answers 204 at once, `fail` answers 500,
 * `slow` answers 204 after a delay well inside the hub's timeout, `timeout` holds the request past
 * the hub's timeout and then drops the connection (never answering late). A delivery counts as
 * accepted only when a 2xx was written out to the hub (I4 counts those per webhook-id).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../shared/webhooks/signature.js';

export type ReceiverMode = 'ok' | 'fail' | 'slow' | 'timeout';

export interface Delivery {
  /** ms since the run started (received). */
  t: number;
  webhookId: string;
  mode: ReceiverMode;
  accepted: boolean;
  signatureOk: boolean;
  json: any;
}

export interface ChaosReceiver {
  url: string;
  deliveries: Delivery[];
  mode: ReceiverMode;
  close(): Promise<void>;
}

export async function startChaosReceiver(
  secret: string,
  clock: () => number,
  timing: { slowMs: number; holdMs: number },
  /** Told of each delivery once its answer is written (or its connection dropped). */
  onDone: (d: Delivery) => void = () => undefined,
): Promise<ChaosReceiver> {
  const receiver: ChaosReceiver = {
    url: '',
    deliveries: [],
    mode: 'ok',
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let signatureOk = true;
      try {
        verifyWebhook(secret, raw, req.headers);
      } catch {
        signatureOk = false;
      }
      let json: any = null;
      try {
        json = JSON.parse(raw);
      } catch {
        // recorded as null: the checker reports it
      }
      const mode = receiver.mode;
      const d: Delivery = {
        t: clock(),
        webhookId: String(req.headers['webhook-id'] ?? ''),
        mode,
        accepted: false,
        signatureOk,
        json,
      };
      receiver.deliveries.push(d);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        onDone(d);
      };
      res.on('finish', () => {
        if (res.statusCode >= 200 && res.statusCode < 300) d.accepted = true;
        finish();
      });
      res.on('close', finish);
      const answer = () => {
        if (res.destroyed || req.socket.destroyed) return;
        res.statusCode = 204;
        res.end();
      };
      switch (mode) {
        case 'ok':
          answer();
          break;
        case 'fail':
          res.statusCode = 500;
          res.end();
          break;
        case 'slow':
          setTimeout(answer, timing.slowMs);
          break;
        case 'timeout':
          setTimeout(() => req.socket.destroy(), timing.holdMs);
          break;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  receiver.url = `http://127.0.0.1:${port}/hook`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return receiver;
}
