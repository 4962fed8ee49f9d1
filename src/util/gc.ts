/**
 * Explicit garbage collection for the byte-heavy pipelines. Chunk, compression and cipher buffers
 * are ArrayBuffers outside the JS heap; with a tiny JS heap V8 collects them late, so RSS grew to
 * several hundred MiB of garbage. A collection every few dozen MiB processed keeps it bounded.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: ((o?: { type: 'minor' | 'major' }) => void) | null | undefined;

/** minor: a young-generation collection, cheap, frees short-lived buffers; major: everything */
export function collectGarbage(type: 'minor' | 'major' = 'major'): void {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as typeof gcFn;
    } catch {
      gcFn = null;
    }
  }
  // gc({ type: 'major' }) leaves old-generation garbage in place in Node 20.20 (V8 11.3: a heap of
  // 76 MiB of dead objects stays 76 MiB; gc() with no argument frees it)
  if (type === 'major') gcFn?.();
  else gcFn?.({ type });
}

/** Calls collectGarbage once every `bytes` reported through add(). */
export class GcEvery {
  private n = 0;
  constructor(private bytes: number, private type: 'minor' | 'major' = 'major') {}
  add(b: number): void {
    this.n += b;
    if (this.n >= this.bytes) {
      this.n = 0;
      collectGarbage(this.type);
    }
  }
}
