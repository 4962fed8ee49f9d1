import {
  AlreadyExistsError, type Backend, partsOf, type FileInfo, type FileType, type Handle, layoutPath, NotFoundError,
} from './backend.js';
import { ID_RE } from '../util/ids.js';

/** An in-memory backend, for tests and for the conformance suite. */
export class MemoryBackend implements Backend {
  readonly location = 'memory:';
  readonly properties = { connections: 4, atomicWrites: true };
  private files = new Map<string, Buffer>();

  async create(): Promise<void> {
    if (this.files.has('config')) throw new AlreadyExistsError('repository already exists');
  }

  async save(h: Handle, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const k = layoutPath(h);
    if (this.files.has(k)) {
      if (h.type === 'config') throw new AlreadyExistsError('config already exists');
      return;
    }
    this.files.set(k, Buffer.concat(partsOf(data)));
  }

  async load(h: Handle, offset = 0, length?: number): Promise<Buffer> {
    const f = this.files.get(layoutPath(h));
    if (!f) throw new NotFoundError(h);
    const end = length === undefined ? f.length : offset + length;
    if (end > f.length) throw new Error(`short read of ${layoutPath(h)}`);
    return Buffer.from(f.subarray(offset, end));
  }

  async stat(h: Handle): Promise<FileInfo> {
    const f = this.files.get(layoutPath(h));
    if (!f) throw new NotFoundError(h);
    return { name: h.name, size: f.length };
  }

  async list(type: FileType): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    for (const [k, v] of this.files) {
      if (type === 'config') {
        if (k === 'config') out.push({ name: 'config', size: v.length });
        continue;
      }
      if (!k.startsWith(`${type}/`)) continue;
      const name = k.slice(k.lastIndexOf('/') + 1);
      if (ID_RE.test(name)) out.push({ name, size: v.length });
    }
    return out;
  }

  async remove(h: Handle): Promise<void> {
    if (!this.files.delete(layoutPath(h))) throw new NotFoundError(h);
  }

  async close(): Promise<void> {}
}
