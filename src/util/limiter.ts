/**
 * The one rate limiter and the one semaphore of the code base: the backend limits decorator
 * (src/backend/decorators/limits.ts) and the Jottacloud HTTP layer both use these.
 */

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A byte-rate limiter (GCRA: the generic cell rate algorithm). `next` is the time at which the
 * bytes let through so far would have finished at `rate`; a caller may run ahead of it by at most
 * `burstMs`. Reservations are taken in call order, so callers are served first come, first served,
 * without a queue of their own; one shared instance paces every connection of a process.
 */
export class RateLimiter {
  private next = 0;
  /** @param rate bytes per second (> 0); @param burstMs how far ahead of the rate a caller may run */
  constructor(readonly rate: number, readonly burstMs = 1000) {
    if (!(rate > 0)) throw new RangeError(`rate must be positive, got ${rate}`);
  }

  /** account for `bytes` now; returns how long (ms) the caller should wait before sending them */
  reserve(bytes: number): number {
    const now = Date.now();
    this.next = Math.max(this.next, now) + (bytes / this.rate) * 1000;
    return Math.max(0, this.next - now - this.burstMs);
  }

  /** wait until `bytes` may pass */
  async take(bytes: number): Promise<void> {
    const wait = this.reserve(bytes);
    if (wait > 0) await sleep(wait);
  }

  /** resolves once what was reserved so far is within the burst (backpressure for a stream) */
  async ready(): Promise<void> {
    const wait = this.next - Date.now() - this.burstMs;
    if (wait > 0) await sleep(wait);
  }
}

/** A counting semaphore: acquire() resolves to a release function (idempotent); run() wraps a call. */
export class Semaphore {
  private waiters: Array<() => void> = [];
  private active = 0;
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  }

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    else this.active++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // the slot passes straight to the next waiter (active stays counted)
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    };
  }

  async run<T>(f: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await f();
    } finally {
      release();
    }
  }
}
