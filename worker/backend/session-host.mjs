// Runs one onnxruntime session on a worker thread. onnxruntime-node's session.run is
// synchronous on the calling thread, so running it here keeps the worker's event loop free
// (job locks, heartbeats, metrics) during long batches. Plain JavaScript, so the same file runs
// in a thread with no loader at all: beside the sources (tests) and beside the compiled
// threaded-session.js in dist/ (npm run build copies it there).
import { parentPort, workerData } from 'node:worker_threads';
import fs from 'node:fs';
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

// Linux thread ids of this thread and of the pool threads onnxruntime starts for the session,
// so CPU time per thread can be read from /proc (the benchmark does). Empty elsewhere.
const taskIds = () => {
  try {
    return fs.readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
};
const ownThreadId = () => {
  try {
    return Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return null;
  }
};

let session;
try {
  const before = new Set(taskIds());
  session = await ort.InferenceSession.create(workerData.modelPath, workerData.options);
  const threads = { host: ownThreadId(), pool: taskIds().filter((t) => !before.has(t)) };
  // Shapes as the file declares them (numbers, or names for dynamic dims): the worker checks them against the manifest.
  const shapes = (list) =>
    list.map((m) => ({ name: m.name, type: m.isTensor ? m.type : null, shape: m.isTensor ? [...m.shape] : [] }));
  parentPort.postMessage({
    type: 'ready',
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    threads,
    inputMetadata: shapes(session.inputMetadata),
    outputMetadata: shapes(session.outputMetadata),
  });
} catch (err) {
  parentPort.postMessage({ type: 'ready', error: err instanceof Error ? err.message : String(err) });
}

parentPort.on('message', async (msg) => {
  if (msg.type === 'run') {
    try {
      const feeds = {};
      for (const [name, f] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims);
      const { wire, transfer } = toWire(await session.run(feeds));
      // The inputs' buffers go back with the outputs (moved, not copied): the worker reuses them
      // for its next tensors instead of allocating page-sized buffers afresh.
      const inputs = [...new Set(Object.values(msg.feeds).map((f) => f.data?.buffer))].filter(
        (b) => b instanceof ArrayBuffer && !transfer.includes(b),
      );
      parentPort.postMessage({ type: 'result', id: msg.id, outputs: wire, inputs }, [...transfer, ...inputs]);
    } catch (err) {
      parentPort.postMessage({ type: 'result', id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  } else if (msg.type === 'release') {
    await session?.release();
    parentPort.postMessage({ type: 'released' });
  }
});
