/**
 * Fault injection for the Jottacloud emulator: seeded PRNG, rate spec parsing, one-shot faults.
 *
 * Spec syntax (comma separated): `429=0.1,500=0.05,drop-upload=0.05,slow-ms=200[,slow=0.5]`.
 * - `<status>=<rate>` answers that HTTP status (with the host's error body) for a fraction of
 *   requests; 429 carries `Retry-After: 1`. Any 4xx/5xx status is accepted.
 *   `<status>@<prefix>=<rate>` limits it to endpoints whose stats name starts with <prefix>
 *   (e.g. `500@jfs=0.1`, `429@api.allocate=0.5`; see the `req.*` keys of the stats).
 * - `drop-upload=<rate>` closes the connection in the middle of an upload body, after storing
 *   a prefix of it (the client can resume from `resume_pos`).
 * - `slow-ms=<ms>` delays requests by that many milliseconds (`slow=<rate>` limits it to a
 *   fraction of requests; default all).
 */

/** mulberry32: small, fast, seedable PRNG returning floats in [0, 1). */
export function makePrng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultRates {
  /** Status faults: probability per request, optionally limited to an endpoint prefix. */
  statuses: Array<{ status: number; rate: number; scope?: string }>;
  dropUpload: number;
  slowMs: number;
  slowRate: number;
}

export function parseFaultSpec(spec: string | undefined): FaultRates {
  const rates: FaultRates = { statuses: [], dropUpload: 0, slowMs: 0, slowRate: 1 };
  if (!spec) return rates;
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) throw new Error(`bad fault spec element ${JSON.stringify(part)} (want key=value)`);
    const key = part.slice(0, eq).trim();
    const value = Number(part.slice(eq + 1).trim());
    if (!Number.isFinite(value) || value < 0) throw new Error(`bad fault value in ${JSON.stringify(part)}`);
    const sm = /^(\d{3})(?:@([a-z0-9._-]+))?$/i.exec(key);
    if (sm) {
      const status = Number(sm[1]);
      if (status < 400 || status > 599) throw new Error(`fault status must be 4xx/5xx: ${part}`);
      if (value > 1) throw new Error(`fault rate must be within [0,1]: ${part}`);
      rates.statuses.push(sm[2] ? { status, rate: value, scope: sm[2] } : { status, rate: value });
    } else if (key.toLowerCase() === 'drop-upload') {
      if (value > 1) throw new Error(`fault rate must be within [0,1]: ${part}`);
      rates.dropUpload = value;
    } else if (key.toLowerCase() === 'slow-ms') {
      rates.slowMs = value;
    } else if (key.toLowerCase() === 'slow') {
      if (value > 1) throw new Error(`fault rate must be within [0,1]: ${part}`);
      rates.slowRate = value;
    } else {
      throw new Error(`unknown fault kind ${JSON.stringify(key)}`);
    }
  }
  return rates;
}

/** A fault that fires on the next `count` matching requests, independent of the rates. */
export interface OneShotFault {
  /** HTTP status to answer, 'drop-upload', or 'corrupt-upload' (one byte of the body flipped in transit). */
  kind: number | 'drop-upload' | 'corrupt-upload';
  /** How many matching requests it hits (default 1). */
  count?: number;
  /**
   * Endpoint name prefix to match (see stats keys without the `req.` prefix, e.g. `jfs.get`,
   * `api.allocate`, `upload`); default: any endpoint (uploads only for drop-upload).
   */
  endpoint?: string;
  /** drop-upload: only uploads whose body is at least this many bytes. */
  minBytes?: number;
  /** drop-upload: absolute file offset at which to cut (default: middle of the body). */
  dropAt?: number;
  /** Status faults: let this many matching requests through first (default 0). */
  after?: number;
}

export class FaultInjector {
  rates: FaultRates;
  private rng: () => number;
  seed: number;
  private once: Array<OneShotFault & { remaining: number }> = [];

  constructor(spec: string | undefined, seed: number) {
    this.rates = parseFaultSpec(spec);
    this.seed = seed;
    this.rng = makePrng(seed);
  }

  setSpec(spec: string | undefined, seed?: number): void {
    this.rates = parseFaultSpec(spec);
    if (seed !== undefined) {
      this.seed = seed;
      this.rng = makePrng(seed);
    }
  }

  addOnce(f: OneShotFault): void {
    if (f.kind !== 'drop-upload' && f.kind !== 'corrupt-upload' && !(typeof f.kind === 'number' && f.kind >= 400 && f.kind <= 599)) {
      throw new Error(`bad one-shot fault kind ${String(f.kind)}`);
    }
    this.once.push({ ...f, remaining: f.count ?? 1 });
  }

  clear(): void {
    this.rates = parseFaultSpec(undefined);
    this.once = [];
  }

  random(): number {
    return this.rng();
  }

  /** Delay to apply to this request (0 = none). */
  slowDelay(): number {
    if (this.rates.slowMs <= 0) return 0;
    if (this.rates.slowRate >= 1 || this.rng() < this.rates.slowRate) return this.rates.slowMs;
    return 0;
  }

  /** Status to answer instead of serving the request, or null. */
  statusFault(endpoint: string): number | null {
    for (let i = 0; i < this.once.length; i++) {
      const f = this.once[i]!;
      if (typeof f.kind !== 'number') continue;
      if (f.endpoint && !endpoint.startsWith(f.endpoint)) continue;
      if (f.after !== undefined && f.after > 0) {
        f.after--;
        continue;
      }
      if (--f.remaining <= 0) this.once.splice(i, 1);
      return f.kind;
    }
    for (const { status, rate, scope } of this.rates.statuses) {
      if (scope !== undefined && !endpoint.startsWith(scope)) continue;
      if (rate > 0 && this.rng() < rate) return status;
    }
    return null;
  }

  /** Whether this upload's body gets one byte flipped in transit (one-shot faults only). */
  corruptUpload(length: number): boolean {
    if (length <= 0) return false;
    for (let i = 0; i < this.once.length; i++) {
      const f = this.once[i]!;
      if (f.kind !== 'corrupt-upload') continue;
      if (f.minBytes !== undefined && length < f.minBytes) continue;
      if (--f.remaining <= 0) this.once.splice(i, 1);
      return true;
    }
    return false;
  }

  /**
   * For an upload body of `length` bytes starting at file offset `start`: the absolute offset
   * at which to drop the connection, or null to let it through.
   */
  dropUploadAt(start: number, length: number): number | null {
    if (length <= 0) return null;
    for (let i = 0; i < this.once.length; i++) {
      const f = this.once[i]!;
      if (f.kind !== 'drop-upload') continue;
      if (f.endpoint && !'upload'.startsWith(f.endpoint)) continue;
      if (f.minBytes !== undefined && length < f.minBytes) continue;
      if (f.dropAt !== undefined && (f.dropAt <= start || f.dropAt >= start + length)) continue;
      if (--f.remaining <= 0) this.once.splice(i, 1);
      return f.dropAt ?? start + Math.floor(length / 2);
    }
    if (this.rates.dropUpload > 0 && this.rng() < this.rates.dropUpload) {
      const frac = 0.25 + this.rng() * 0.5;
      return start + Math.floor(length * frac);
    }
    return null;
  }
}
