/** repair index: rebuild the index from pack headers alone (restic's rebuild-index). */
import type { Repository } from '../repo/repository.js';
import { mapLimit } from '../repo/repository.js';
import type { IndexFilePack } from '../repo/index.js';
import { writeIndexFiles } from './indexwriter.js';

export interface RepairResult { packs: number; badPacks: { id: string; error: string }[]; indexFilesOld: number; indexFilesNew: number }

export async function repairIndex(repo: Repository, log: (s: string) => void = () => {}): Promise<RepairResult> {
  const old = (await repo.backend.list('index')).map((f) => f.name);
  const packs = await repo.backend.list('data');
  log(`reading pack headers of ${packs.length} packs...`);
  const good: IndexFilePack[] = [];
  const bad: { id: string; error: string }[] = [];
  await mapLimit(packs, Math.max(4, repo.backend.properties.connections), async (p) => {
    try {
      good.push({ id: p.name, blobs: await repo.loadPackHeader(p.name, p.size) });
    } catch (e) {
      bad.push({ id: p.name, error: (e as Error).message });
    }
  });
  good.sort((a, b) => (a.id < b.id ? -1 : 1));
  const ids = await writeIndexFiles(repo, good, old);
  for (const f of old) if (!ids.includes(f)) await repo.backend.remove({ type: 'index', name: f }).catch(() => {});
  return { packs: good.length, badPacks: bad, indexFilesOld: old.length, indexFilesNew: ids.length };
}
