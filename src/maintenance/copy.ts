/** copy: snapshots and every blob they need from one repository to another (re-encrypted with the destination key). */
import type { Repository } from '../repo/repository.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { decodeTree } from '../repo/tree.js';

export interface CopyResult { copied: { from: string; to: string }[]; skipped: string[]; blobsCopied: number; bytesCopied: number }

const sameSnapshot = (a: SnapshotWithId, b: SnapshotWithId) =>
  a.time === b.time && a.tree === b.tree && a.hostname === b.hostname && JSON.stringify([...a.paths].sort()) === JSON.stringify([...b.paths].sort());

export async function copySnapshots(src: Repository, dst: Repository, snaps: SnapshotWithId[], log: (s: string) => void = () => {}): Promise<CopyResult> {
  const existing = await dst.listSnapshots();
  const r: CopyResult = { copied: [], skipped: [], blobsCopied: 0, bytesCopied: 0 };
  try {
    for (const s of snaps) await copyOne(src, dst, s, existing, r, log);
  } catch (e) {
    await dst.discard(); // no temp files or open pack streams left behind
    throw e;
  }
  return r;
}

async function copyOne(src: Repository, dst: Repository, s: SnapshotWithId, existing: SnapshotWithId[], r: CopyResult, log: (s: string) => void): Promise<void> {
  if (existing.some((d) => sameSnapshot(d, s))) { r.skipped.push(s.id); return; }
  log(`copying snapshot ${s.id.slice(0, 8)} of ${JSON.stringify(s.paths)} at ${s.time}`);
  const stack = [s.tree];
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const plain = await src.loadBlob('tree', t);
    for (const n of decodeTree(plain, t)) {
      if (n.type === 'dir' && n.subtree) stack.push(n.subtree);
      if (n.type === 'file') {
        for (const b of n.content ?? []) {
          if (dst.hasBlob('data', b)) continue;
          const data = await src.loadBlob('data', b);
          await dst.saveBlob('data', b, data);
          r.blobsCopied++;
          r.bytesCopied += data.length;
        }
      }
    }
    if (await dst.saveBlob('tree', t, plain)) { r.blobsCopied++; r.bytesCopied += plain.length; }
  }
  await dst.flush();
  const { id, ...rest } = s;
  const nid = await dst.saveSnapshot({ ...rest, original: s.original ?? id });
  r.copied.push({ from: id, to: nid });
}
