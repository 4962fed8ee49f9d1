/** dump: a file's content, or a directory as a tar stream (ustar + PAX headers for long names, ns times). */
import type { Writable } from 'node:stream';
import type { Repository } from '../repo/repository.js';
import { posixModeFromGo } from '../format/gomode.js';
import { parseTimeNs } from '../format/gotime.js';
import { decodeTree, type Node } from '../repo/tree.js';

async function write(out: Writable, b: Buffer): Promise<void> {
  if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
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
 * vanish, ".." removes one but never goes above the dumped directory, so no member of the
 * archive starts with "/" or "..", whatever names a tree holds.
 */
function memberPath(parent: readonly Buffer[], child: Buffer): Buffer[] {
  const out = [...parent];
  let start = 0;
  for (let i = 0; i <= child.length; i++) {
    if (i < child.length && child[i] !== 0x2f) continue;
    const c = child.subarray(start, i);
    start = i + 1;
    if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) { out.pop(); continue; }
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
 * Write `node` (and everything below it) as a tar archive; names are relative to the dumped dir.
 * A file whose content cannot be read is completed with zeros (the archive stays readable), a
 * directory whose tree cannot be read is left out below its own entry; each is passed to `onError`
 * (default: the first one throws at the end) and counted. Returns the number of such errors.
 */
export async function dumpTar(repo: Repository, root: Node, out: Writable, onError?: (path: string, e: Error) => void): Promise<number> {
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
        if (name.length) await write(out, header(Buffer.concat([name, SLASH]), n, '5', 0n, Buffer.alloc(0)));
        let children: Node[];
        try {
          children = decodeTree(await repo.loadBlob('tree', n.subtree!), n.subtree);
        } catch (e) {
          fail(name, e as Error);
          break;
        }
        for (const c of children) await rec(c, memberPath(comps, c.name));
        break;
      }
      case 'file': {
        const key = (n.links ?? 0n) > 1n && n.inode !== undefined ? `${n.inode}:${n.deviceId ?? 0n}` : '';
        const first = key ? links.get(key) : undefined;
        if (first) { await write(out, header(name, n, '1', 0n, first)); break; }
        if (key) links.set(key, name);
        const size = n.size ?? 0n;
        await write(out, header(name, n, '0', size, Buffer.alloc(0)));
        // exactly `size` bytes follow the header, whatever the content turns out to be
        let written = 0n;
        try {
          for (const id of n.content ?? []) {
            const b = await repo.loadBlob('data', id);
            const room = size > written ? size - written : 0n;
            const take = room < BigInt(b.length) ? Number(room) : b.length;
            if (take) await write(out, take < b.length ? b.subarray(0, take) : b);
            written += BigInt(b.length);
          }
          if (written !== size) throw new Error(`content is ${written} bytes, node says ${size}`);
        } catch (e) {
          fail(name, e as Error);
          for (let rest = size - written; rest > 0n;) {
            const k = rest > 1048576n ? 1048576 : Number(rest);
            await write(out, Buffer.alloc(k));
            rest -= BigInt(k);
          }
        }
        const pad = Number((512n - (size % 512n)) % 512n);
        if (pad) await write(out, Buffer.alloc(pad));
        break;
      }
      case 'symlink': await write(out, header(name, n, '2', 0n, n.linktarget ?? Buffer.alloc(0))); break;
      case 'chardev': await write(out, header(name, n, '3', 0n, Buffer.alloc(0))); break;
      case 'dev': await write(out, header(name, n, '4', 0n, Buffer.alloc(0))); break;
      case 'fifo': await write(out, header(name, n, '6', 0n, Buffer.alloc(0))); break;
      default: break;
    }
  };
  await rec(root, root.type !== 'dir' ? memberPath([], root.name) : []);
  await write(out, Buffer.alloc(1024));
  if (first && !onError) throw first;
  return errors;
}
