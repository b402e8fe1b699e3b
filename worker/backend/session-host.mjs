// Runs one onnxruntime session on a worker thread. onnxruntime-node's session.run is
// synchronous on the calling thread, so running it here keeps the worker's event loop free
// (job locks, heartbeats, metrics) during long batches. Plain JS: no loader needed in a thread.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

const toWire = (outputs) => {
  const wire = {};
  const transfer = [];
  for (const [name, t] of Object.entries(outputs)) {
    wire[name] = { type: t.type, dims: t.dims, data: t.data };
    if (t.data?.buffer instanceof ArrayBuffer) transfer.push(t.data.buffer);
  }
  return { wire, transfer: [...new Set(transfer)] };
};

let session;
try {
  session = await ort.InferenceSession.create(workerData.modelPath, workerData.options);
  parentPort.postMessage({ type: 'ready', inputNames: session.inputNames, outputNames: session.outputNames });
} catch (err) {
  parentPort.postMessage({ type: 'ready', error: err instanceof Error ? err.message : String(err) });
}

parentPort.on('message', async (msg) => {
  if (msg.type === 'run') {
    try {
      const feeds = {};
      for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims);
      const { wire, transfer } = toWire(await session.run(feeds));
      parentPort.postMessage({ type: 'result', id: msg.id, outputs: wire }, transfer);
    } catch (err) {
      parentPort.postMessage({ type: 'result', id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  } else if (msg.type === 'release') {
    await session?.release();
    parentPort.postMessage({ type: 'released' });
  }
});
