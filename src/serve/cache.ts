/** A least-recently-used map bounded by the bytes its values weigh (Map keeps insertion order). */
export class ByteLru<V> {
  private map = new Map<string, { v: V; w: number }>();
  private used = 0;
  constructor(readonly capacity: number) {}

  get(k: string): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    this.map.set(k, e);
    return e.v;
  }

  /** a value heavier than the whole capacity is not kept */
  set(k: string, v: V, weight: number): void {
    const old = this.map.get(k);
    if (old) { this.used -= old.w; this.map.delete(k); }
    if (weight > this.capacity) return;
    this.map.set(k, { v, w: weight });
    this.used += weight;
    for (const [key, e] of this.map) {
      if (this.used <= this.capacity) break;
      this.map.delete(key);
      this.used -= e.w;
    }
  }

  get bytes(): number { return this.used; }
  get size(): number { return this.map.size; }
}

/**
 * Loads shared by concurrent callers: two requests for the same blob while it is being read cause one
 * read (a client that opens a file with several ranged requests at once).
 */
export class Inflight<V> {
  private pending = new Map<string, Promise<V>>();
  run(k: string, f: () => Promise<V>): Promise<V> {
    let p = this.pending.get(k);
    if (!p) {
      p = f().finally(() => this.pending.delete(k));
      this.pending.set(k, p);
    }
    return p;
  }
}
