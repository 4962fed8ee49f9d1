/** The retry decorator: which failures it retries, how often, and what a retry of a remove means. */
import { expect, it } from 'vitest';
import { MemoryBackend } from '../../src/backend/memory.js';
import { NotFoundError, type Handle } from '../../src/backend/backend.js';
import { RetriesExhaustedError, RetryBackend, TransientError } from '../../src/backend/decorators/retry.js';
import type { RetryNotice } from '../../src/backend/net.js';

const h: Handle = { type: 'snapshots', name: 'a'.repeat(64) };

/** a memory backend whose next `n` calls of `op` fail with `err` (after doing the work, for remove) */
function flaky(op: 'load' | 'save' | 'remove' | 'list', n: number, err: () => Error, after = false) {
  const be = new MemoryBackend();
  let left = n;
  const orig = be[op].bind(be) as (...a: unknown[]) => Promise<unknown>;
  (be as unknown as Record<string, unknown>)[op] = async (...a: unknown[]) => {
    if (left > 0) {
      left--;
      if (after) await orig(...a);
      throw err();
    }
    return orig(...a);
  };
  return be;
}

it('retries transient failures with backoff, telling onRetry each time, then succeeds', async () => {
  const inner = flaky('load', 2, () => new TransientError('connect ECONNREFUSED'));
  await inner.save(h, Buffer.from('x'));
  const notices: RetryNotice[] = [];
  const be = new RetryBackend(inner, { baseDelayMs: 1, maxDelayMs: 2, onRetry: (r) => notices.push(r) });
  expect((await be.load(h)).toString()).toBe('x');
  expect(notices.map((r) => [r.retry, r.maxRetries, r.label])).toEqual([[1, 9, `load snapshots/${h.name}`], [2, 9, `load snapshots/${h.name}`]]);
  expect(be.stats.retries).toBe(2);
});

it('gives up after maxAttempts with one line naming the operation, the attempts and the last failure', async () => {
  const be = new RetryBackend(flaky('list', 100, () => new TransientError('HTTP 503 Service Unavailable', undefined, 503)), { maxAttempts: 3, baseDelayMs: 1 });
  const e = await be.list('index').catch((x: unknown) => x);
  expect(e).toBeInstanceOf(RetriesExhaustedError);
  expect((e as RetriesExhaustedError).status).toBe(503);
  expect((e as Error).message).toMatch(/^list index: giving up after 3 attempts \(\d+\.\ds\): HTTP 503 Service Unavailable$/);
});

it('does not retry other failures (not found, refused, programming errors)', async () => {
  let calls = 0;
  const inner = flaky('save', 5, () => { calls++; return new Error('HTTP 400 Bad Request'); });
  const be = new RetryBackend(inner, { baseDelayMs: 1 });
  await expect(be.save(h, Buffer.from('x'))).rejects.toThrow('HTTP 400 Bad Request');
  expect(calls).toBe(1);
  await expect(be.load({ type: 'index', name: 'b'.repeat(64) })).rejects.toBeInstanceOf(NotFoundError);
});

it('a remove whose first answer was lost and whose retry finds nothing has succeeded', async () => {
  const inner = flaky('remove', 1, () => new TransientError('socket hang up'), true);
  await inner.save(h, Buffer.from('x'));
  const be = new RetryBackend(inner, { baseDelayMs: 1 });
  await be.remove(h);
  await expect(inner.stat(h)).rejects.toBeInstanceOf(NotFoundError);
  // a first attempt's "not found" is still an error
  await expect(be.remove(h)).rejects.toBeInstanceOf(NotFoundError);
});

it('honours maxElapsedMs: no retry whose wait would pass the budget', async () => {
  const be = new RetryBackend(flaky('list', 100, () => new TransientError('reset', 60_000)), { maxAttempts: 10, maxElapsedMs: 1000 });
  await expect(be.list('keys')).rejects.toThrow(/giving up after 1 attempt /);
});
