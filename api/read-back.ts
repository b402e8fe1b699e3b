/**
 * Reading a job back until it is done, at growing intervals: what a wait falls back on when the
 * event or notice that should end it may never come (api/finish-waits.ts, api/job-finish-events.ts).
 */
export interface ReadBackOptions {
  /** First read-back, ms; doubled each time up to `maxMs`. @defaultValue 1000 */
  firstMs?: number;
  /** @defaultValue 5000 */
  maxMs?: number;
  /** Read once at once too, before the first interval. @defaultValue false */
  now?: boolean;
}

/**
 * Calls `onDone` once `isDone` says true (a failed read counts as not done). Returns a stop: after
 * it, nothing more is read, and a read under way then neither calls `onDone` nor schedules another.
 */
export function readBackUntilDone(
  isDone: () => Promise<boolean>,
  onDone: () => void,
  options: ReadBackOptions = {},
): () => void {
  let delay = options.firstMs ?? 1000;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    timer = setTimeout(check, delay);
    delay = Math.min(delay * 2, options.maxMs ?? 5000);
  };
  function check() {
    void isDone()
      .catch(() => false)
      .then((finished) => {
        if (stopped) return;
        if (finished) onDone();
        else schedule();
      });
  }
  if (options.now) check();
  else schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
