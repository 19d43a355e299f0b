/**
 * Closes a queue connection, but never waits long for it: with Redis down, a graceful close
 * would wait for a reconnection that may never come, and Ctrl-C must stop the server.
 */
export async function closeSoon(q: { close(): Promise<void>; disconnect(): Promise<void> }, ms = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  const outcome = await Promise.race([q.close().catch(() => undefined), gaveUp]);
  clearTimeout(timer);
  if (outcome === 'timeout') await q.disconnect().catch(() => undefined);
}
