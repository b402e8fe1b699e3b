/**
 * The cleanup after a request that failed on Redis. The cut that failed the request (a dropped
 * connection, a Redis restart) usually fails its cleanup too, within the same millisecond, and a
 * producer connection has no offline queue to hold the commands: so a cleanup that fails is tried
 * again in the background, with backoff, once Redis may answer again.
 */

/**
 * When a failed cleanup is tried again, ms after the try before: about 6 s in all, longer than a
 * reconnect after a dropped connection and than most Redis restarts.
 * @defaultValue 100 ms, doubling to 3.2 s
 */
export const CLEANUP_RETRY_DELAYS_MS: readonly number[] = [100, 200, 400, 800, 1600, 3200];

/**
 * Runs `cleanup` now; when it throws, again after each of `delays` until it succeeds, then
 * `onGiveUp` with the last error. Resolves once the first try has ended (true: it succeeded), so
 * a request's answer never waits for the retries. `cleanup` must be idempotent.
 */
export async function cleanUpOrRetry(
  cleanup: () => Promise<void>,
  onGiveUp: (err: unknown) => void,
  delays: readonly number[] = CLEANUP_RETRY_DELAYS_MS,
): Promise<boolean> {
  let last: unknown;
  const tried = () =>
    cleanup().then(
      () => true,
      (err: unknown) => ((last = err), false),
    );
  if (await tried()) return true;
  void (async () => {
    for (const ms of delays) {
      await new Promise((resolve) => setTimeout(resolve, ms).unref());
      if (await tried()) return;
    }
    onGiveUp(last);
  })();
  return false;
}
