/**
 * Explicit garbage collection for the byte-heavy pipelines. Chunk, compression and cipher buffers
 * are ArrayBuffers outside the JS heap; with a tiny JS heap V8 collects them late, so RSS grew to
 * several hundred MiB of garbage. A collection every few dozen MiB processed keeps it bounded.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gcFn === undefined) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') { gcFn = g; g(); return; }
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/** Calls collectGarbage once every `bytes` reported through add(). */
export class GcEvery {
  private n = 0;
  constructor(private bytes: number) {}
  add(b: number): void {
    this.n += b;
    if (this.n >= this.bytes) {
      this.n = 0;
      collectGarbage();
    }
  }
}
