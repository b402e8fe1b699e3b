// The one file every offload pool thread runs (Piscina's `filename`): it loads the task module
// named in workerData and calls the named function with the task's argument. Plain JavaScript,
// so it runs in a thread with no loader: beside the compiled .js modules in dist/ (npm run build
// copies it there) and beside the .ts sources, where it registers tsx for the thread first
// (tests and `tsx` runs: a thread does not inherit its process's loader hooks).
import { workerData } from 'node:worker_threads';

async function load(url) {
  if (url.endsWith('.ts')) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  return import(url);
}

const tasks = await load(workerData.module);

export default function run({ fn, arg }) {
  const task = tasks[fn];
  if (typeof task !== 'function') throw new Error(`offload task module has no function ${fn}`);
  return task(arg);
}
