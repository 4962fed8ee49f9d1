/** Writing a complete set of index files that replaces the old ones (prune, repair index). */
import type { Repository } from '../repo/repository.js';
import { encodeIndex, type IndexFilePack } from '../repo/index.js';

export const MAX_BLOBS_PER_INDEX = 50_000;

/** Write index files for `packs` (each file ≤ 50,000 blobs), recording `supersedes`. Returns the new ids. */
export async function writeIndexFiles(repo: Repository, packs: IndexFilePack[], supersedes: string[], before?: () => Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  let cur: IndexFilePack[] = [];
  let n = 0;
  const emit = async () => {
    if (cur.length === 0) return;
    await before?.();
    ids.push(await repo.saveUnpacked('index', encodeIndex({ supersedes, packs: cur })));
    cur = [];
    n = 0;
  };
  for (const p of packs) {
    if (n + p.blobs.length > MAX_BLOBS_PER_INDEX && cur.length) await emit();
    cur.push(p);
    n += p.blobs.length;
  }
  await emit();
  return ids;
}
