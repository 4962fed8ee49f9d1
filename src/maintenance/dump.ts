/** dump: a file's content, or a directory as a tar stream (ustar + PAX headers for long names, ns times) or a zip stream. */
import type { Writable } from 'node:stream';
import type { Repository } from '../repo/repository.js';
import { posixModeFromGo } from '../format/gomode.js';
import { parseTimeNs } from '../format/gotime.js';
import { decodeTree, type Node } from '../repo/tree.js';
import { ZipWriter } from '../format/zip.js';

/** the consumer went away (an HTTP client that disconnected): the dump stops, nothing is reported */
export class ClosedError extends Error {
  constructor() { super('output closed'); }
}
const isClosed = (e: unknown) => e instanceof ClosedError;

/** write, waiting while `out` is behind; rejects with ClosedError once `out` is destroyed (no wait forever) */
export async function write(out: Writable, b: Buffer): Promise<void> {
  if (out.destroyed) throw new ClosedError();
  if (out.write(b)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => { out.off('drain', ok); out.off('close', gone); if (e) reject(e); else resolve(); };
    const ok = () => done();
    const gone = () => done(new ClosedError());
    out.on('drain', ok);
    out.on('close', gone);
  });
}

export async function dumpFile(repo: Repository, n: Node, out: Writable): Promise<void> {
  for (const id of n.content ?? []) await write(out, await repo.loadBlob('data', id));
}

function octal(n: number | bigint, len: number): string {
  return `${n.toString(8).padStart(len - 1, '0')}\0`;
}

function header(name: Buffer, n: Node, typeflag: string, size: bigint, linkname: Buffer): Buffer {
  const h = Buffer.alloc(512);
  const pax: [string, Buffer][] = [];
  const mtimeNs = parseTimeNs(n.mtime);
  const sec = mtimeNs >= 0n ? mtimeNs / 1_000_000_000n : -((-mtimeNs + 999_999_999n) / 1_000_000_000n);
  const frac = mtimeNs - sec * 1_000_000_000n;
  pax.push(['mtime', Buffer.from(`${sec}${frac ? `.${frac.toString().padStart(9, '0').replace(/0+$/, '')}` : ''}`)]);
  const ascii = (b: Buffer) => b.every((c) => c < 0x80);
  if (name.length > 100 || !ascii(name)) pax.push(['path', name]);
  if (linkname.length > 100 || !ascii(linkname)) pax.push(['linkpath', linkname]);
  if (size > 0o77777777777n) pax.push(['size', Buffer.from(size.toString())]);
  name.copy(h, 0, 0, Math.min(100, name.length));
  h.write(octal(posixModeFromGo(n.mode, n.type), 8), 100, 'ascii');
  h.write(octal(n.uid, 8), 108, 'ascii');
  h.write(octal(n.gid, 8), 116, 'ascii');
  h.write(octal(size > 0o77777777777n ? 0n : size, 12), 124, 'ascii');
  h.write(octal(sec < 0n ? 0n : sec, 12), 136, 'ascii');
  h.write(typeflag, 156, 'ascii');
  linkname.copy(h, 157, 0, Math.min(100, linkname.length));
  h.write('ustar\x0000', 257, 'binary');
  h.write((n.user ?? '').slice(0, 31), 265, 'utf8');
  h.write((n.group ?? '').slice(0, 31), 297, 'utf8');
  if (n.type === 'dev' || n.type === 'chardev') {
    const dev = n.device ?? 0n;
    h.write(octal((dev >> 8n) & 0xfffn, 8), 329, 'ascii');
    h.write(octal((dev & 0xffn) | ((dev >> 12n) & 0xfff00n), 8), 337, 'ascii');
  }
  const blocks = [h];
  if (pax.length) {
    const body = Buffer.concat(pax.map(([k, v]) => {
      const rest = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from('\n')]);
      let len = rest.length + 1;
      while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
      return Buffer.concat([Buffer.from(String(len)), rest]);
    }));
    const ph = Buffer.alloc(512);
    ph.write('PaxHeader', 0, 'ascii');
    ph.write(octal(0o644, 8), 100, 'ascii');
    ph.write(octal(0, 8), 108, 'ascii');
    ph.write(octal(0, 8), 116, 'ascii');
    ph.write(octal(body.length, 12), 124, 'ascii');
    ph.write(octal(0, 12), 136, 'ascii');
    ph.write('x', 156, 'ascii');
    ph.write('ustar\x0000', 257, 'binary');
    checksum(ph);
    blocks.unshift(ph, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  checksum(h);
  return Buffer.concat(blocks);
}

function checksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let s = 0;
  for (const c of h) s += c;
  h.write(`${s.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

/**
 * The member name of `child` below the member `parent` (components, root = []), cleaned as restic
 * does (it joins with path.Join below "/" and makes the result relative): "" and "." components
 * vanish, ".." removes one but never goes above the dumped directory (nor below `floor` components: the top directory), so no member of the
 * archive starts with "/" or "..", whatever names a tree holds.
 */
function memberPath(parent: readonly Buffer[], child: Buffer, floor = 0): Buffer[] {
  const out = [...parent];
  let start = 0;
  for (let i = 0; i <= child.length; i++) {
    if (i < child.length && child[i] !== 0x2f) continue;
    const c = child.subarray(start, i);
    start = i + 1;
    if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) { if (out.length > floor) out.pop(); continue; }
    out.push(c);
  }
  return out;
}

const SLASH = Buffer.from('/');
function joinPath(p: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  p.forEach((c, i) => { if (i) parts.push(SLASH); parts.push(c); });
  return Buffer.concat(parts);
}

/**
 * One archive format's side of a directory dump: `walkArchive` calls these in archive order with the
 * cleaned member names (components joined by "/", relative to the dumped directory).
 */
export interface ArchiveFormat {
  /** false: a file with several hard links is written in full at each name (zip has no hard links) */
  readonly hardLinks: boolean;
  directory(name: Buffer, n: Node): Promise<void>;
  /** exactly `size` bytes, passed to `write` by `content` */
  file(name: Buffer, n: Node, size: bigint, content: (write: (b: Buffer) => Promise<void>) => Promise<void>): Promise<void>;
  hardlink(name: Buffer, n: Node, first: Buffer): Promise<void>;
  symlink(name: Buffer, n: Node, target: Buffer): Promise<void>;
  /** devices and FIFOs */
  special(name: Buffer, n: Node): Promise<void>;
  end(): Promise<void>;
}

/**
 * Walk `root` (and everything below it) into an archive format; names are relative to the dumped
 * dir (or below `top`). A file whose content cannot be read is completed with zeros (the archive stays readable), a
 * directory whose tree cannot be read is left out below its own entry; each is passed to `onError`
 * (default: the first one throws at the end) and counted. Returns the number of such errors.
 */
export interface WalkOptions {
  /** a file whose content cannot be read, a tree that cannot be loaded (default: the first one throws at the end) */
  onError?: (path: string, e: Error) => void;
  /** put every member below this directory name (its own entry first); default: relative to `root` */
  top?: Buffer;
  /** a file's bytes (default: its blobs one after another through `repo.loadBlob`) */
  content?: (n: Node) => AsyncIterable<Buffer>;
}

async function* blobsOf(repo: Repository, n: Node): AsyncGenerator<Buffer> {
  for (const id of n.content ?? []) yield await repo.loadBlob('data', id);
}

export async function walkArchive(repo: Repository, root: Node, fmt: ArchiveFormat, o: WalkOptions = {}): Promise<number> {
  const { onError } = o;
  const contentOf = o.content ?? ((n: Node) => blobsOf(repo, n));
  const links = new Map<string, Buffer>();
  let errors = 0;
  let first: Error | undefined;
  const fail = (name: Buffer, e: Error) => {
    errors++;
    first ??= new Error(`${name.toString()}: ${e.message}`);
    onError?.(name.toString(), e);
  };
  const rec = async (n: Node, comps: Buffer[]) => {
    const name = joinPath(comps);
    // a non-directory whose name cleans to the dumped directory itself has no member of its own
    if (!name.length && n.type !== 'dir') return;
    switch (n.type) {
      case 'dir': {
        if (name.length) await fmt.directory(name, n);
        let children: Node[];
        try {
          children = decodeTree(await repo.loadBlob('tree', n.subtree!), n.subtree);
        } catch (e) {
          fail(name, e as Error);
          break;
        }
        for (const c of children) await rec(c, memberPath(comps, c.name, floor));
        break;
      }
      case 'file': {
        const key = fmt.hardLinks && (n.links ?? 0n) > 1n && n.inode !== undefined ? `${n.inode}:${n.deviceId ?? 0n}` : '';
        const first = key ? links.get(key) : undefined;
        if (first) { await fmt.hardlink(name, n, first); break; }
        if (key) links.set(key, name);
        const size = n.size ?? 0n;
        // exactly `size` bytes reach the format, whatever the content turns out to be
        await fmt.file(name, n, size, async (w) => {
          let written = 0n;
          try {
            for await (const b of contentOf(n)) {
              const room = size > written ? size - written : 0n;
              const take = room < BigInt(b.length) ? Number(room) : b.length;
              if (take) await w(take < b.length ? b.subarray(0, take) : b);
              written += BigInt(b.length);
            }
            if (written !== size) throw new Error(`content is ${written} bytes, node says ${size}`);
          } catch (e) {
            if (isClosed(e)) throw e;
            fail(name, e as Error);
            for (let rest = size - written; rest > 0n;) {
              const k = rest > 1048576n ? 1048576 : Number(rest);
              await w(Buffer.alloc(k));
              rest -= BigInt(k);
            }
          }
        });
        break;
      }
      case 'symlink': await fmt.symlink(name, n, n.linktarget ?? Buffer.alloc(0)); break;
      case 'chardev': case 'dev': case 'fifo': await fmt.special(name, n); break;
      default: break;
    }
  };
  const start = o.top ? memberPath([], o.top) : root.type !== 'dir' ? memberPath([], root.name) : [];
  // ".." in a name never climbs out of `top` either
  const floor = o.top ? start.length : 0;
  await rec(root, start);
  await fmt.end();
  if (first && !onError) throw first;
  return errors;
}

const EMPTY = Buffer.alloc(0);

/** tar (ustar + PAX) as an archive format */
export function tarFormat(out: Writable): ArchiveFormat {
  return {
    hardLinks: true,
    directory: (name, n) => write(out, header(Buffer.concat([name, SLASH]), n, '5', 0n, EMPTY)),
    async file(name, n, size, content) {
      await write(out, header(name, n, '0', size, EMPTY));
      await content((b) => write(out, b));
      const pad = Number((512n - (size % 512n)) % 512n);
      if (pad) await write(out, Buffer.alloc(pad));
    },
    hardlink: (name, n, first) => write(out, header(name, n, '1', 0n, first)),
    symlink: (name, n, target) => write(out, header(name, n, '2', 0n, target)),
    special: (name, n) => write(out, header(name, n, n.type === 'chardev' ? '3' : n.type === 'dev' ? '4' : '6', 0n, EMPTY)),
    end: () => write(out, Buffer.alloc(1024)),
  };
}

/** Write `node` (and everything below it) as a tar archive (see walkArchive). */
export async function dumpTar(repo: Repository, root: Node, out: Writable, onError?: (path: string, e: Error) => void): Promise<number> {
  return walkArchive(repo, root, tarFormat(out), { onError });
}

/**
 * zip (stored entries, see format/zip.ts) as an archive format. `nameOf` turns a member path's bytes
 * into the UTF-8 name zip stores (the caller's reversible escaping of non-UTF-8 bytes). Hard links
 * are written in full at each name; symlinks as Info-ZIP link entries; devices and FIFOs, which zip
 * cannot represent, are left out.
 */
export function zipFormat(out: Writable, nameOf: (member: Buffer) => string): ArchiveFormat {
  const z = new ZipWriter((b) => write(out, b));
  const meta = (n: Node) => ({ mtime: Number(parseTimeNs(n.mtime) / 1_000_000_000n), perm: posixModeFromGo(n.mode, n.type) & 0o7777 });
  return {
    hardLinks: false,
    directory: (name, n) => z.directory(nameOf(name), meta(n)),
    file: (name, n, size, content) => z.file(nameOf(name), Number(size), meta(n), content),
    hardlink: () => Promise.reject(new Error('zip has no hard links')),
    symlink: (name, n, target) => z.symlink(nameOf(name), target, meta(n)),
    special: async () => {},
    end: () => z.finish(),
  };
}

/** Write `node` (and everything below it) as a zip archive (see walkArchive, zipFormat). */

